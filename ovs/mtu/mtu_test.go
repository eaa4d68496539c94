package mtu_test

import (
	"net/netip"
	"testing"

	"github.com/ovlmgr/ovlmgr/ovs/mtu"
)

func TestGeneveOverheadByFamily(t *testing.T) {
	for _, tc := range []struct {
		underlay string
		link     int
		enc      bool
		over     int
		want     int
	}{
		{"198.18.0.2", 1500, false, 58, 1442},
		{"198.18.0.2", 9000, false, 58, 8942},
		{"fd00::2", 1500, false, 78, 1422},
		{"198.18.0.2", 1500, true, 58 + 46, 1396},
		{"fd00::2", 1500, true, 78 + 46, 1376},
	} {
		ip := netip.MustParseAddr(tc.underlay)
		if got := mtu.Overhead(ip, tc.enc); got != tc.over {
			t.Errorf("Overhead(%s, encrypted %v) = %d, want %d", tc.underlay, tc.enc, got, tc.over)
		}
		if got := mtu.Container(tc.link, ip, tc.enc); got != tc.want {
			t.Errorf("Container(%d, %s, encrypted %v) = %d, want %d", tc.link, tc.underlay, tc.enc, got, tc.want)
		}
	}
}
