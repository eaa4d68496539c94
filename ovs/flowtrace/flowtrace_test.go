package flowtrace

import (
	"os"
	"strings"
	"testing"
)

func sample(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Samples are real ofproto/trace outputs from a lab node (br-int of OVN
// 23.03 on OVS 3.1, userspace datapath).
func TestParse(t *testing.T) {
	for _, tc := range []struct {
		file          string
		dropped       bool
		remote, via   string
		reason, warns string
	}{
		{file: "tunnel.txt", remote: "198.18.0.12", via: "br-phy"},
		{file: "via-system-port.txt", remote: "198.18.0.12", via: "ul0"},
		{file: "neigh-miss.txt", dropped: true, remote: "198.18.0.12", via: "br-phy", reason: "neighbour cache miss", warns: "first packet is dropped"},
		{file: "ul0-neigh-miss.txt", dropped: true, remote: "198.18.0.12", via: "ul0", reason: "neighbour cache miss", warns: "on br-phy"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			r := parse(sample(t, tc.file), "br-int")
			if r.Dropped != tc.dropped || r.TunnelRemote != tc.remote || r.TunnelEgress != tc.via {
				t.Errorf("got dropped %v tunnel %q via %q; want %v %q %q (actions %s)", r.Dropped, r.TunnelRemote, r.TunnelEgress, tc.dropped, tc.remote, tc.via, r.DatapathActions)
			}
			if !strings.Contains(r.Reason, tc.reason) {
				t.Errorf("reason %q; want %q", r.Reason, tc.reason)
			}
			if !strings.Contains(strings.Join(r.Warnings, ";"), tc.warns) {
				t.Errorf("warnings %q; want %q", r.Warnings, tc.warns)
			}
		})
	}
}

func TestParseLocalDrop(t *testing.T) {
	out := `bridge("br-int")
----------------
 0. in_port=5, priority 100
    resubmit(,8)
 8. priority 0
    drop

Final flow: unchanged
Megaflow: recirc_id=0,eth,ip,in_port=5,nw_frag=no
Datapath actions: drop
`
	r := parse(out, "br-int")
	if !r.Dropped || r.Reason != "dropped by br-int OpenFlow table 8" {
		t.Errorf("got %+v", r)
	}
	out = strings.Replace(out, "    drop\n", "    output:7\n", 1)
	out = strings.Replace(out, "Datapath actions: drop", "Datapath actions: 3", 1)
	r = parse(out, "br-int")
	if r.Dropped || len(r.OutPorts) != 1 || r.OutPorts[0] != 7 || r.TunnelRemote != "" {
		t.Errorf("local output: got %+v", r)
	}
}
