package plugin

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/ovlmgr/ovlmgr/ovn/names"
	"github.com/ovlmgr/ovlmgr/ovn/network"
	ovnport "github.com/ovlmgr/ovlmgr/ovn/port"
	"github.com/ovlmgr/ovlmgr/ovn/publish"
	"github.com/ovlmgr/ovlmgr/ovs/attach"
	ovsport "github.com/ovlmgr/ovlmgr/ovs/port"
)

// TestCNIErrorCodes is the mapping table of cniError: each kind of failure
// of ovs/attach (and the sentinels it passes on) gets its CNI code, by
// errors.Is/As, whatever its text; the message keeps the error's text,
// preceded by the config key or variable at fault.
func TestCNIErrorCodes(t *testing.T) {
	kind := func(k error, msg string, cause error) error { return &attach.Error{Kind: k, Msg: msg, Err: cause} }
	// Texts that would mislead a text matcher: the code must come from the kind.
	leftover := &ovnport.LeftoverError{Port: "ovl-x", Err: context.DeadlineExceeded}
	for _, tc := range []struct {
		name string
		err  error
		code uint
		msg  string // the whole message ("" = the error's text)
	}{
		{"not joined", kind(attach.ErrNodeNotJoined, "local Open_vSwitch db x has no external_ids:system-id", nil), CodeNodeNotJoined,
			"local Open_vSwitch db x has no external_ids:system-id (run ovlmgr node join)"},
		{"encap ip not an IP", kind(attach.ErrNodeNotJoined, "node's external_ids:ovn-encap-ip \"\": not an IP", errors.New("bad")), CodeNodeNotJoined,
			"node's external_ids:ovn-encap-ip \"\": not an IP (run ovlmgr node join)"},
		{"no NB endpoint", kind(attach.ErrNoNB, "no Northbound endpoint given", nil), types.ErrInvalidNetworkConfig, `config key "nb": no Northbound endpoint given (run ovlmgr node join --nb ...)`},
		{"network not found", fmt.Errorf("network %q: %w", "web", network.ErrNotFound), types.ErrInvalidNetworkConfig, `config key "network": network "web": no such network`},
		{"port's network not found", fmt.Errorf("network %q: %w", "web", ovnport.ErrNetworkNotFound), types.ErrInvalidNetworkConfig, `config key "network": network "web": network not found`},
		{"subnet full", fmt.Errorf("network web: %w (outside the gateway)", ovnport.ErrNoAddress), CodeNoAddress, ""},
		{"address in use", fmt.Errorf("ip 198.19.0.9: %w", ovnport.ErrAddressInUse), CodeAddressRefused, ""},
		{"mac refused", fmt.Errorf("mac 01:00:5e:00:00:01: %w", ovnport.ErrMACRefused), CodeAddressRefused, ""},
		{"ip refused", fmt.Errorf("port: %w", ovnport.ErrIPRefused), CodeAddressRefused, ""},
		{"requested ip outside", kind(attach.ErrAddressRefused, "requested ip 10.0.0.1: outside network web subnet 198.19.0.0/24", nil), CodeAddressRefused, ""},
		{"port exists", fmt.Errorf("port ovl-x: %w", ovnport.ErrExists), CodeExists, ""},
		{"interface exists", kind(attach.ErrExists, "interface eth0 already exists in /run/netns/x", nil), CodeExists, ""},
		{"link exists", fmt.Errorf("veth: %w", ovsport.ErrLinkExists), CodeExists, ""},
		{"db unreachable", kind(attach.ErrUnavailable, "OVN Northbound: connection refused", errors.New("refused")), types.ErrTryAgainLater, ""},
		{"unavailable wins over what it wraps", kind(attach.ErrUnavailable, "ovn-northd holds no lock: ip in use", fmt.Errorf("x: %w", ovnport.ErrAddressInUse)), types.ErrTryAgainLater, ""},
		{"no IPAM answer", fmt.Errorf("port ovl-x: %w", ovnport.ErrNoIPAM), types.ErrTryAgainLater, ""},
		{"not ovn-installed", fmt.Errorf("port ovl-x: %w", &ovsport.NotReadyError{Name: "veth1", Reason: "not claimed"}), types.ErrTryAgainLater, ""},
		{"deadline", fmt.Errorf("wait: %w", context.DeadlineExceeded), types.ErrTryAgainLater, ""},
		{"bad netns", &attach.NetNSError{Path: "/run/netns/gone", Err: errors.New("no such file or directory")}, types.ErrInvalidEnvironmentVariables,
			`CNI_NETNS "/run/netns/gone": no such file or directory; want the path of the container's network namespace`},
		{"empty netns", &attach.NetNSError{}, types.ErrInvalidEnvironmentVariables, "CNI_NETNS: empty; want the path of the container's network namespace"},
		{"check failed wins over a deadline it wraps", kind(attach.ErrCheckFailed, "NB port: timeout", context.DeadlineExceeded), CodeInternal, ""},
		{"leftover: the code of why Attach failed", &attach.LeftoverError{Err: fmt.Errorf("x: %w", ovnport.ErrNoAddress), Leftover: leftover}, CodeNoAddress, ""},
		{"leftover of an internal failure stays internal", &attach.LeftoverError{Err: errors.New("veth: boom"), Leftover: leftover}, CodeInternal, ""},
		{"published port taken", names.Bad("portMappings", names.Shown("8080:80/tcp"), "%w: by container a", publish.ErrConflict), CodePortConflict, ""},
		{"port mapping refused", names.Bad("portMappings", names.Shown("127.0.0.1:8080:80/tcp"), "%w: hostIP", publish.ErrRefused), types.ErrInvalidNetworkConfig,
			`runtimeConfig key "portMappings": portMappings 127.0.0.1:8080:80/tcp: port mapping refused: hostIP`},
		{"unknown", errors.New("ip outside the gateway broadcast network address already exists in"), CodeInternal, ""},
		{"config error kept", types.NewError(types.ErrDecodingFailure, "decode config: bad", ""), types.ErrDecodingFailure, "decode config: bad"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var te *types.Error
			if !errors.As(cniError(tc.err), &te) {
				t.Fatalf("cniError(%v) is not a *types.Error", tc.err)
			}
			want := tc.msg
			if want == "" {
				want = tc.err.Error()
			}
			if te.Code != tc.code || te.Msg != want {
				t.Errorf("cniError(%q) = code %d %q; want code %d %q", tc.err, te.Code, te.Msg, tc.code, want)
			}
		})
	}
	if cniError(nil) != nil {
		t.Error("cniError(nil) is not nil")
	}
	// A leftover NB port is named in the message.
	lo := cniError(&attach.LeftoverError{Err: errors.New("veth: boom"), Leftover: leftover}).(*types.Error)
	if !strings.HasSuffix(lo.Msg, ", and "+leftover.Error()) {
		t.Errorf("leftover message %q; want it to end with %q", lo.Msg, ", and "+leftover.Error())
	}
	// GC lists what it could not remove as details.
	gc := cniError(&attach.GCError{Network: "web", Errs: []error{errors.New("a"), errors.New("b")}}).(*types.Error)
	if gc.Code != CodeInternal || gc.Msg != "GC of network web: 2 error(s)" || gc.Details != "a; b" {
		t.Errorf("GC error = %d %q %q; want 100 \"GC of network web: 2 error(s)\" \"a; b\"", gc.Code, gc.Msg, gc.Details)
	}
}
