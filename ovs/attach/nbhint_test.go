package attach

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
)

// TestNBHintFiles: a hint is read from a regular file only, never through
// a symlink; a hint naming TLS files that are not regular files (a FIFO,
// which would hold the ADD) starts no connection.
func TestNBHintFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, NBHintFile)
	h := nbHint{NB: "ssl:198.18.0.1:6645"}
	writeNBHint(path, h)
	if got, ok := readNBHint(path); !ok || got != h {
		t.Fatalf("hint as written: %+v, %v; want %+v", got, ok, h)
	}
	elsewhere := filepath.Join(t.TempDir(), "planted.json")
	if err := os.Rename(path, elsewhere); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(elsewhere, path); err != nil {
		t.Fatal(err)
	}
	if got, ok := readNBHint(path); ok {
		t.Errorf("hint through a symlink: %+v; want none", got)
	}
	fifo := filepath.Join(dir, "ca.pem")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan *earlyNB, 1)
	go func() {
		done <- startNB(t.Context(), nbHint{NB: "ssl:198.18.0.1:6645", TLS: dbconn.TLSFiles{CA: fifo, Cert: fifo, Key: fifo}})
	}()
	select {
	case e := <-done:
		if e != nil {
			e.discard()
			t.Error("a hint naming a FIFO for its TLS files started a connection")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("startNB hangs on a hint naming a FIFO")
	}
}
