package port_test

import (
	"net/netip"
	"testing"

	"github.com/ovlmgr/ovlmgr/ovn/port"
)

func TestInExcludeIPs(t *testing.T) {
	const list = "198.18.0.1 198.18.0.10..198.18.0.20 junk 198.18.1.5..nope"
	for ip, want := range map[string]bool{
		"198.18.0.1": true, "198.18.0.10": true, "198.18.0.15": true, "198.18.0.20": true,
		"198.18.0.2": false, "198.18.0.21": false, "198.18.1.5": false,
	} {
		if got := port.InExcludeIPs(list, netip.MustParseAddr(ip)); got != want {
			t.Errorf("InExcludeIPs(%q, %s) = %v, want %v", list, ip, got, want)
		}
	}
}
