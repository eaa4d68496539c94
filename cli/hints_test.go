package main

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ovlmgr/ovlmgr/ovn/names"
	"github.com/ovlmgr/ovlmgr/ovn/network"
	"github.com/ovlmgr/ovlmgr/ovn/router"
	"github.com/ovlmgr/ovlmgr/ovs/node"
	"github.com/ovlmgr/ovlmgr/ovs/nodegc"
)

// TestFlagHints: library errors name inputs in domain terms; the CLI shows
// them by their flags, wherever they sit in the chain.
func TestFlagHints(t *testing.T) {
	fe := names.Bad("subnet", "198.19.0.5/24", "host bits set")
	joined := errors.Join(errors.New("first"), fmt.Errorf("b: %w", names.Bad("network", "x y", "must match")))
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fe, `--subnet "198.19.0.5/24": host bits set`},
		{fmt.Errorf("create network %q: %w", "web", fe), `create network "web": --subnet "198.19.0.5/24": host bits set`},
		{usageError{fmt.Errorf("x: %w", names.Missing("router", "a name"))}, "x: --router is required: a name"},
		{joined, "first\nb: --net \"x y\": must match"},
		{names.Bad("unknown field", 3, "kept as is"), "unknown field 3: kept as is"},
		{names.Bad("port", 22, "only with {proto} tcp or udp"), "--port 22: only with --proto tcp or udp"},
		{errors.New("plain"), "plain"},
		{fmt.Errorf("s: %w", &names.FieldError{Problem: "no {backend} and no {selector}"}), "s: no --backend and no --selector"},
		{fmt.Errorf("node gc: %w: the local Open_vSwitch db x has no external_ids:ovlmgr.io/nb", nodegc.ErrNoNB), "node gc: no NB endpoint: the local Open_vSwitch db x has no external_ids:ovlmgr.io/nb (give one with --nb)"},
		{fmt.Errorf("node join: ovn-remote=a, not b: %w", node.ErrOtherRemote), "node join: ovn-remote=a, not b: refusing to replace it (use --force to replace it)"},
		{names.Says("system id", "taken", "is already used; choose another {system id}"), `--system-id "taken" is already used; choose another --system-id`},
		{&network.PortsInUseError{Network: "web", Ports: []string{"c1"}}, `delete network "web": 1 container port(s) still attached: c1 (remove the containers, or use --force to delete the ports too)`},
		{fmt.Errorf("delete router %q: %w: %s", "r", router.ErrAttached, "web"), `delete router "r": networks attached: web (detach them, or use --force to detach and delete)`},
	} {
		if got := withFlagHints(tc.err); got != tc.want {
			t.Errorf("withFlagHints(%q) = %q; want %q", tc.err, got, tc.want)
		}
	}
	if got := fe.Error(); got != `subnet "198.19.0.5/24": host bits set` {
		t.Errorf("library text = %q; want the domain name", got)
	}
	if got := names.Bad("port", 22, "only with {proto} tcp or udp").Error(); got != "port 22: only with proto tcp or udp" {
		t.Errorf("library text = %q; want the domain names", got)
	}
}

// TestTraceFlagHints: a bad trace request is refused before any database
// is contacted, naming the flag.
func TestTraceFlagHints(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"trace", "a", "b", "--proto", "sctp"}, `ovlmgr: --proto "sctp": allowed are icmp, tcp, udp`},
		{[]string{"trace", "a", "b", "--port", "22"}, "ovlmgr: --port 22: only with --proto tcp or udp"},
		{[]string{"trace", "a", "b", "--src-mac", "zz"}, `ovlmgr: --src-mac "zz": want a MAC`},
	} {
		var out, errb bytes.Buffer
		code := run(append([]string{"ovlmgr", "--nb", "unix:/nonexistent"}, tc.args...), &out, &errb)
		if code != 2 || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%v: exit %d, %q; want 2 and %q", tc.args, code, errb.String(), tc.want)
		}
	}
}
