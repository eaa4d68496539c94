package trace

import (
	"net/netip"
	"os"
	"strings"
	"testing"
)

func sample(t *testing.T, name string) *Logical {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return parseLogical(string(b))
}

// The samples are real ovn-trace 23.03 --detailed outputs (--ct=new,trk):
// networks web and db on router t1, a deny policy on db for tcp/22,
// network other on router t2.
func TestParseLogical(t *testing.T) {
	l := sample(t, "acl-drop.txt")
	if l.Drop == nil || l.Drop.Stage != "ls_out_acl" || l.DropDatapath != "db" || l.Drop.Priority != 2201 || l.Drop.UUID != "6fb69038" {
		t.Fatalf("acl drop: %+v in %q", l.Drop, l.DropDatapath)
	}
	if l.Drop.Match != "outport == @ovl_db && ip4 && tcp && tcp.dst == 22" {
		t.Errorf("match %q", l.Drop.Match)
	}
	if len(l.Outputs) != 0 {
		t.Errorf("outputs %v; want none", l.Outputs)
	}
	to := &Endpoint{Port: "ovl-c", Name: "c", BoundOn: "n2"}
	if h := strings.Join(hops(l, to), " -> "); h != "network web -> router t1 -> network db" {
		t.Errorf("hops %q", h)
	}

	l = sample(t, "router-delivered.txt")
	if l.Drop != nil || len(l.Outputs) != 1 || l.Outputs[0] != "ovl-c" {
		t.Fatalf("delivered: drop %+v outputs %v", l.Drop, l.Outputs)
	}
	if h := strings.Join(hops(l, to), " -> "); h != "network web -> router t1 -> network db -> container c on node n2" {
		t.Errorf("hops %q", h)
	}

	l = sample(t, "port-security.txt")
	if l.Drop == nil || l.Drop.Stage != "ls_in_apply_port_sec" || l.DropDatapath != "web" {
		t.Fatalf("port security: %+v", l.Drop)
	}
	l = sample(t, "no-route.txt")
	if l.Drop == nil || l.Drop.Stage != "lr_in_ip_routing" || l.DropDatapath != "t1" {
		t.Fatalf("no route: %+v", l.Drop)
	}
}

// A deny policy logs its verdicts: ovn-trace prints the ACL's log() and no
// drop; line (real 23.03 output).
func TestParseLoggedDrop(t *testing.T) {
	l := sample(t, "acl-drop-logged.txt")
	if l.Drop == nil || l.Drop.Stage != "ls_out_acl" || l.DropDatapath != "ts9449d" || l.Drop.Priority != 2201 || l.Drop.UUID != "2714c33a" {
		t.Fatalf("logged acl drop: %+v in %q", l.Drop, l.DropDatapath)
	}
	if len(l.Outputs) != 0 {
		t.Errorf("outputs %v; want none", l.Outputs)
	}
}

func TestParseImplicitDrop(t *testing.T) {
	l := parseLogical(`# icmp,...
ingress(dp="web", inport="ovl-a")
---------------------------------
 0. ls_in_check_port_sec (northd.c:8432): 1, priority 50, uuid 9031bf94
    next;
 3. ls_in_lookup_fdb: no match (implicit drop)
`)
	if l.Drop == nil || !l.Drop.Implicit || l.Drop.Stage != "ls_in_lookup_fdb" {
		t.Fatalf("implicit drop: %+v", l.Drop)
	}
}

func TestExplainWithoutDatabases(t *testing.T) {
	from := &Endpoint{Port: "ovl-a", Name: "a", Network: "web", Router: "t1", MAC: "0a:00:00:00:01:0a", IP: netip.MustParseAddr("198.19.1.10")}
	for _, tc := range []struct {
		file, reason string
		to           *Endpoint
		srcIP        string
	}{
		{"port-security.txt", "port security: source 198.19.1.9 is not container a's address (198.19.1.10)",
			&Endpoint{Port: "ovl-b", Network: "web", Router: "t1", IP: netip.MustParseAddr("198.19.1.11"), BoundOn: "n2"}, "198.19.1.9"},
		{"no-route.txt", "no route: networks web and other are on different routers (t1 and t2)",
			&Endpoint{Port: "ovl-d", Network: "other", Router: "t2", IP: netip.MustParseAddr("198.19.3.13"), BoundOn: "n2"}, "198.19.1.10"},
		{"router-delivered.txt", "destination container c has no port bound on any node (created for node n2",
			&Endpoint{Port: "ovl-c", Name: "c", Network: "db", Router: "t1", IP: netip.MustParseAddr("198.19.2.12"), Node: "n2"}, "198.19.1.10"},
	} {
		res := &Result{From: from, To: tc.to, Logical: sample(t, tc.file)}
		explain(t.Context(), nil, nil, res, from.MAC, netip.MustParseAddr(tc.srcIP))
		if res.Verdict != Dropped || !strings.Contains(res.Reason, tc.reason) {
			t.Errorf("%s: %s %q; want dropped %q", tc.file, res.Verdict, res.Reason, tc.reason)
		}
	}
	to := &Endpoint{Port: "ovl-c", Name: "c", Network: "db", Router: "t1", IP: netip.MustParseAddr("198.19.2.12"), BoundOn: "n2"}
	res := &Result{From: from, To: to, Logical: sample(t, "router-delivered.txt")}
	explain(t.Context(), nil, nil, res, from.MAC, from.IP)
	if res.Verdict != Delivered || res.Reason != "" {
		t.Errorf("delivered: %s %q", res.Verdict, res.Reason)
	}
}

func TestRequestValidate(t *testing.T) {
	for _, tc := range []struct {
		r   Request
		err string
	}{
		{Request{From: "a", To: "b"}, ""},
		{Request{From: "a", To: "b", Proto: "TCP"}, ""},
		{Request{From: "a"}, "FROM and TO are required"},
		{Request{From: "a", To: "b", Proto: "sctp"}, `proto "sctp": allowed are icmp, tcp, udp`},
		{Request{From: "a", To: "b", Port: 22}, "port 22: only with proto tcp or udp"},
		{Request{From: "a", To: "b", Proto: "udp", Port: 70000}, "port 70000: allowed 1..65535"},
		{Request{From: "a", To: "b", SrcIP: netip.MustParseAddr("fd00::1")}, ""},
		{Request{From: "a", To: "b", SrcIP: netip.MustParseAddr("::ffff:198.18.0.1")}, "want a plain IPv4 or IPv6 address"},
		{Request{From: "a", To: "b", SrcMAC: "0a:00:00:00:00:01 || 1"}, `source mac "0a:00:00:00:00:01 || 1": want a MAC`},
		{Request{From: "a", To: "b", SrcMAC: "0A:00:00:00:00:01"}, ""},
	} {
		err := tc.r.Validate()
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%+v: %v; want %q", tc.r, err, tc.err)
		}
	}
	r6 := Request{From: "a", To: "b", SrcIP: netip.MustParseAddr("fd00::1")}
	if _ = r6.Validate(); !r6.IPv6 {
		t.Errorf("an IPv6 source IP does not make an IPv6 trace")
	}
	if got, want := microflow("p1", "0a:58:c6:12:00:05", "0a:58:c6:12:00:01", netip.MustParseAddr("fd00::5"), netip.MustParseAddr("fd00::6"), "icmp", 0),
		`inport == "p1" && eth.src == 0a:58:c6:12:00:05 && eth.dst == 0a:58:c6:12:00:01 && ip6.src == fd00::5 && ip6.dst == fd00::6 && ip.ttl == 64 && icmp6.type == 128 && icmp6.code == 0`; got != want {
		t.Errorf("IPv6 microflow\n %s\nwant\n %s", got, want)
	}
	r := Request{From: "a", To: "b", Proto: "tcp"}
	_ = r.Validate()
	if r.Port != 80 || r.Proto != "tcp" {
		t.Errorf("tcp default port: %+v", r)
	}
}

func TestMicroflow(t *testing.T) {
	got := microflow("ovl-a", "0a:00:00:00:01:0a", "0a:58:c6:13:01:01", netip.MustParseAddr("198.19.1.10"), netip.MustParseAddr("198.19.2.12"), "tcp", 22)
	want := `inport == "ovl-a" && eth.src == 0a:00:00:00:01:0a && eth.dst == 0a:58:c6:13:01:01 && ip4.src == 198.19.1.10 && ip4.dst == 198.19.2.12 && ip.ttl == 64 && tcp && tcp.src == 33333 && tcp.dst == 22`
	if got != want {
		t.Errorf("microflow\n got %s\nwant %s", got, want)
	}
}
