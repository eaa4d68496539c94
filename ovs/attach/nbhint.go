package attach

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/ovn-kubernetes/libovsdb/client"

	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovs/runfile"
)

// NBHintFile is the file, beside the node's Open_vSwitch db socket, where
// a call without a session notes how it reached the NB: the endpoint and
// the node's TLS files it read from the local db (nbHint).
const NBHintFile = "ovlmgr-nb-hint.json"

// nbHint is how a call reached the NB: the endpoint and the TLS files of
// the identity it used (none: the process's own). The next call without a
// session starts its NB connection from it while it connects the local
// db, and uses that connection only when the local db then says the same:
// the hint saves the wait, never decides where or as whom to connect.
type nbHint struct {
	NB  string          `json:"nb"`
	TLS dbconn.TLSFiles `json:"tls"`
}

// nbHintPath is where the hint of the Open_vSwitch db at ovsEP lives, ""
// for a db that is not a unix: socket.
func nbHintPath(ovsEP string) string { return besideDB(ovsEP, NBHintFile) }

// besideDB is the path of file in the directory of the Open_vSwitch db
// socket at ovsEP (default dbconn.DefaultOVS()): where a call without a
// session keeps what the next call on this node reads. "" for a db that is
// not one unix: socket.
func besideDB(ovsEP, file string) string {
	if ovsEP == "" {
		ovsEP = dbconn.DefaultOVS()
	}
	sock, ok := strings.CutPrefix(ovsEP, "unix:")
	if !ok || strings.Contains(sock, ",") {
		return ""
	}
	return filepath.Join(filepath.Dir(sock), file)
}

// readNBHint reads the hint at path; false when there is none usable.
func readNBHint(path string) (nbHint, bool) {
	var h nbHint
	if path == "" {
		return h, false
	}
	f, err := runfile.Open(path, os.O_RDONLY, 0)
	if err != nil {
		return nbHint{}, false
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, maxNBHint))
	if err != nil || json.Unmarshal(raw, &h) != nil || h.NB == "" {
		return nbHint{}, false
	}
	return h, true
}

// writeNBHint replaces the hint at path with h (owner-only, atomically);
// a failure only costs the next call its head start.
func writeNBHint(path string, h nbHint) {
	raw, err := json.Marshal(h)
	if err != nil {
		return
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+NBHintFile+"-*")
	if err != nil {
		return
	}
	_, werr := f.Write(raw)
	if cerr := f.Close(); werr != nil || cerr != nil || os.Rename(f.Name(), path) != nil {
		_ = os.Remove(f.Name())
	}
}

// earlyNB is an NB connection started from a hint.
type earlyNB struct {
	hint   nbHint
	cancel context.CancelFunc
	done   chan struct{}
	nb     client.Client
	err    error
	taken  bool
	// elsewhere: the caller was in another network namespace than the
	// goroutine that would connect, so it did not (take: not used).
	elsewhere bool
}

// maxNBHint bounds the hint read (it is a few hundred bytes).
const maxNBHint = 64 << 10

// startNB starts connecting the NB as h says, beside the caller (from the
// caller's network namespace, see dbconn.Beside); nil when h's TLS files
// cannot be loaded or are not all regular files (a FIFO would hold the
// caller: what the hint names is checked against the local db only later).
func startNB(ctx context.Context, h nbHint) *earlyNB {
	var cfg *tls.Config
	if !h.TLS.Empty() {
		for _, p := range []string{h.TLS.CA, h.TLS.Cert, h.TLS.Key} {
			if fi, err := os.Stat(p); err != nil || !fi.Mode().IsRegular() {
				return nil
			}
		}
		c, err := h.TLS.Config()
		if err != nil {
			return nil
		}
		cfg = c
	}
	cctx, cancel := context.WithTimeout(ctx, connectTimeout)
	e := &earlyNB{hint: h, cancel: cancel, done: make(chan struct{})}
	dbconn.Beside(func(here bool) {
		defer close(e.done)
		if e.elsewhere = !here; here {
			e.nb, e.err = dbconn.ConnectNBTLS(cctx, h.NB, cfg)
		}
	})
	return e
}

// take returns the connection's outcome when it was started as want says
// (used: the caller owns the connection); otherwise it closes it and
// returns used false.
func (e *earlyNB) take(want nbHint) (nb client.Client, used bool, err error) {
	if e == nil || e.taken {
		return nil, false, nil
	}
	if e.hint != want {
		e.discard()
		return nil, false, nil
	}
	<-e.done
	e.cancel()
	e.taken = true
	if e.elsewhere {
		return nil, false, nil
	}
	return e.nb, true, e.err
}

// discard stops the connection and closes it if it was made, unless take
// handed it on. Idempotent.
func (e *earlyNB) discard() {
	if e == nil || e.taken {
		return
	}
	e.taken = true
	e.cancel()
	<-e.done
	if e.nb != nil {
		e.nb.Close()
	}
}

// nbStart is a call's way to the NB: without a session, started from the
// node's hint before the local db is read.
type nbStart struct {
	early *earlyNB
	// path is the hint's file, "" when the call neither reads nor writes
	// one (a session, or a db that is not a unix: socket).
	path   string
	hint   nbHint
	hinted bool
}

// startFromHint starts the NB connection of a call without a session from
// the hint of the Open_vSwitch db at ovsEP, when there is one that agrees
// with nbEP (the call's own endpoint, if given). The caller ends it with
// connect or discard.
func startFromHint(ctx context.Context, s *Session, nbEP, ovsEP string) *nbStart {
	st := &nbStart{}
	if s != nil { // the session keeps its NB connection across calls
		return st
	}
	st.path = nbHintPath(ovsEP)
	if st.hint, st.hinted = readNBHint(st.path); st.hinted && (nbEP == "" || nbEP == st.hint.NB) {
		st.early = startNB(ctx, st.hint)
	}
	return st
}

// connect returns the NB client for nd: the early connection when the
// local db (nd) names the same endpoint and identity as the hint, else a
// fresh one (connectNB), after which the hint is rewritten.
func (st *nbStart) connect(ctx context.Context, nd *node) (client.Client, error) {
	want := nbHint{NB: nd.nbEP, TLS: nd.tlsFiles}
	if nb, used, err := st.early.take(want); used {
		nd.nbEarly = true
		return nb, nbUnavailable(err)
	}
	nb, err := connectNB(ctx, nd)
	if err == nil && st.path != "" && (!st.hinted || st.hint != want) {
		writeNBHint(st.path, want)
	}
	return nb, err
}

// discard closes an early connection connect did not hand on.
func (st *nbStart) discard() { st.early.discard() }
