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
		over     int
		want     int
	}{
		{"198.18.0.2", 1500, 58, 1442},
		{"198.18.0.2", 9000, 58, 8942},
		{"fd00::2", 1500, 78, 1422},
	} {
		ip := netip.MustParseAddr(tc.underlay)
		if got := mtu.GeneveOverhead(ip); got != tc.over {
			t.Errorf("GeneveOverhead(%s) = %d, want %d", tc.underlay, got, tc.over)
		}
		if got := mtu.Container(tc.link, ip); got != tc.want {
			t.Errorf("Container(%d, %s) = %d, want %d", tc.link, tc.underlay, got, tc.want)
		}
	}
}
