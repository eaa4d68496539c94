package attach

import (
	"errors"
	"fmt"
	"strings"

	ovnport "github.com/ovlmgr/ovlmgr/ovn/port"
)

// Kinds of failure a caller branches on (errors.Is). They come wrapped in
// an *Error whose text describes the case; the CNI plugin maps them to CNI
// codes, the CLI prints the text.
var (
	// ErrNodeNotJoined: the local Open_vSwitch db lacks what `node join`
	// writes (system-id, a usable ovn-encap-ip).
	ErrNodeNotJoined = errors.New("node has not joined OVN")
	// ErrNoNB: no Northbound endpoint was given and the node has none.
	ErrNoNB = errors.New("no Northbound endpoint")
	// ErrUnavailable: a database could not be reached or read, or OVN
	// cannot answer now; trying again later may work.
	ErrUnavailable = errors.New("unavailable")
	// ErrBadNetNS: the network namespace path is empty or not a netns.
	ErrBadNetNS = errors.New("not a network namespace")
	// ErrExists: the container interface already exists in the netns.
	ErrExists = errors.New("interface already exists")
	// ErrAddressRefused: a requested address cannot be used on the network.
	ErrAddressRefused = errors.New("address refused")
	// ErrCheckFailed: Check found the attachment differs from what was made,
	// or ovn-controller not running.
	ErrCheckFailed = errors.New("attachment check failed")
)

// Error is a failure of one Kind (one of the sentinels above) with the
// text describing it and the underlying error, if any. Its text is Msg
// alone; errors.Is matches Kind and anything Err wraps.
type Error struct {
	Kind error
	Msg  string
	Err  error
}

func (e *Error) Error() string { return e.Msg }

// Unwrap returns Kind and Err.
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

func newErr(kind error, msg string, cause error) *Error {
	return &Error{Kind: kind, Msg: msg, Err: cause}
}

// NetNSError is a network namespace path that is empty (Path "") or not a
// network namespace; it is ErrBadNetNS.
type NetNSError struct {
	Path string
	Err  error
}

func (e *NetNSError) Error() string { return e.Describe("netns") }

// Describe renders the error naming the input by name (the CNI plugin's
// CNI_NETNS, the CLI's --netns).
func (e *NetNSError) Describe(name string) string {
	if e.Path == "" {
		return name + ": empty; want the path of the container's network namespace"
	}
	return fmt.Sprintf("%s %q: %v; want the path of the container's network namespace", name, e.Path, e.Err)
}

// Unwrap returns ErrBadNetNS and the cause.
func (e *NetNSError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrBadNetNS}
	}
	return []error{ErrBadNetNS, e.Err}
}

// LeftoverError is a failed Attach whose undo could not remove the NB port:
// Err is why Attach failed, Leftover names the port that stays. Its text is
// Err's, followed by ", and " and Leftover's unless Err already names it.
type LeftoverError struct {
	Err      error
	Leftover *ovnport.LeftoverError
}

func (e *LeftoverError) Error() string {
	msg := e.Err.Error()
	if lo := e.Leftover.Error(); !strings.Contains(msg, lo) {
		msg += ", and " + lo
	}
	return msg
}

// Unwrap returns Err and Leftover.
func (e *LeftoverError) Unwrap() []error { return []error{e.Err, e.Leftover} }

// withLeftover returns err carrying the *ovnport.LeftoverError found in
// cause, if any (err itself when it already carries one).
func withLeftover(err, cause error) error {
	var lo *ovnport.LeftoverError
	if err == nil || !errors.As(cause, &lo) {
		return err
	}
	var already *LeftoverError
	if errors.As(err, &already) {
		return err
	}
	return &LeftoverError{Err: err, Leftover: lo}
}

// GCError lists what GC could not remove.
type GCError struct {
	Network string
	Errs    []error
}

func (e *GCError) Error() string {
	return fmt.Sprintf("GC of network %s: %d error(s): %s", e.Network, len(e.Errs), strings.Join(e.Details(), "; "))
}

// Details are the texts of the individual failures.
func (e *GCError) Details() []string {
	out := make([]string, len(e.Errs))
	for i, err := range e.Errs {
		out[i] = err.Error()
	}
	return out
}

// Unwrap returns the individual failures.
func (e *GCError) Unwrap() []error { return e.Errs }
