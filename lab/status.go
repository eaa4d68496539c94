package lab

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"

	"github.com/ovlmgr/ovlmgr/ovn/chassis"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovs/vsdb"
)

// DaemonStatus is one daemon of the lab.
type DaemonStatus struct {
	Node  string `json:"node"`
	Name  string `json:"name"`
	PID   int    `json:"pid,omitempty"`
	Alive bool   `json:"alive"`
}

// Tunnel is one Geneve tunnel interface on a node.
type Tunnel struct {
	Node       string `json:"node"`
	RemoteIP   string `json:"remoteIP"`
	RemoteNode string `json:"remoteNode,omitempty"`
	Egress     string `json:"egress"` // status:tunnel_egress_iface
}

// Status is a lab's health: daemons, chassis, tunnels and the problems found.
type Status struct {
	Name    string            `json:"name"`
	Dir     string            `json:"dir"`
	NB      string            `json:"nb"`
	SB      string            `json:"sb"`
	Daemons []DaemonStatus    `json:"daemons"`
	Chassis []chassis.Chassis `json:"chassis"`
	Tunnels []Tunnel          `json:"tunnels"`
	// Members and Northds are set for a clustered lab (--central 3).
	Members  []MemberStatus `json:"members,omitempty"`
	Northds  []NorthdStatus `json:"northds,omitempty"`
	Problems []string       `json:"problems"`
}

// Healthy reports whether no problem was found.
func (s *Status) Healthy() bool { return len(s.Problems) == 0 }

// Status checks the lab's daemons, SB chassis and tunnels once.
func (l *Lab) Status(ctx context.Context) (*Status, error) {
	c := &checker{l: l, detail: true}
	defer c.close()
	return c.check(ctx), nil
}

// checker keeps database clients open across repeated checks.
type checker struct {
	l *Lab
	// detail asks cluster members for role, term and election timer
	// (ovs-appctl cluster/status) and ovn-northds for their state.
	detail bool
	sb     client.Client
	ovs    map[string]client.Client
}

func (c *checker) close() {
	if c.sb != nil {
		c.sb.Close()
	}
	for _, oc := range c.ovs {
		oc.Close()
	}
}

func (c *checker) daemons() ([]DaemonStatus, []string) {
	var out []DaemonStatus
	var probs []string
	all := c.l.centralDaemons()
	for _, n := range c.l.Nodes {
		all = append(all, n.daemons()...)
	}
	for _, d := range all {
		ds := DaemonStatus{Node: d.Node, Name: d.Name}
		if pid, err := d.pid(); err == nil {
			ds.PID, ds.Alive = pid, true
		} else {
			probs = append(probs, err.Error())
		}
		out = append(out, ds)
	}
	return out, probs
}

func (c *checker) check(ctx context.Context) *Status {
	l := c.l
	st := &Status{Name: l.Name, Dir: l.Dir, NB: l.NB, SB: l.SB, Chassis: []chassis.Chassis{}, Tunnels: []Tunnel{}}
	st.Daemons, st.Problems = c.daemons()
	// Each table comes from the database it is about, whichever other
	// daemon is down: chassis from the SB, tunnels from each node's
	// Open_vSwitch db. A database whose server is down is not asked.
	alive := map[string]bool{}
	for _, d := range st.Daemons {
		alive[d.Node+"/"+d.Name] = d.Alive
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var err error
	if l.Central > 1 {
		st.Members, st.Northds = l.cluster(cctx, c.detail)
		st.Problems = append(st.Problems, clusterProblems(st.Members)...)
		for _, m := range st.Members {
			alive["central/ovsdb-server-"+strings.ToLower(m.DB)] = alive["central/ovsdb-server-"+strings.ToLower(m.DB)] || m.Alive
		}
	}
	if c.sb == nil && alive["central/ovsdb-server-sb"] {
		if c.sb, err = dbconn.ConnectSB(cctx, l.SB); err != nil {
			st.Problems = append(st.Problems, fmt.Sprintf("SB unreachable at %s: %v", l.SB, err))
		}
	}
	if c.sb != nil && alive["central/ovsdb-server-sb"] {
		chs, err := chassis.List(cctx, c.sb)
		if err != nil {
			st.Problems = append(st.Problems, fmt.Sprintf("SB at %s: %v", l.SB, err))
		} else {
			st.Chassis = chs
			c.chassisProblems(st)
		}
	}
	c.tunnels(cctx, st, alive)
	sort.Slice(st.Tunnels, func(i, j int) bool {
		a, b := st.Tunnels[i], st.Tunnels[j]
		return a.Node+" "+a.RemoteIP < b.Node+" "+b.RemoteIP
	})
	return st
}

// chassisProblems compares the SB chassis just read with the lab's nodes.
func (c *checker) chassisProblems(st *Status) {
	l := c.l
	chs := st.Chassis
	byName := map[string]chassis.Chassis{}
	for _, ch := range chs {
		byName[ch.Name] = ch
	}
	for _, n := range l.Nodes {
		ch, ok := byName[n.SystemID]
		switch {
		case !ok:
			st.Problems = append(st.Problems, fmt.Sprintf("%s: chassis %s not registered in SB", n.Name, n.SystemID))
		case !ch.Connected:
			st.Problems = append(st.Problems, fmt.Sprintf("%s: chassis %s not connected", n.Name, n.SystemID))
		case len(ch.Encaps) != 1 || ch.Encaps[0].Type != "geneve" || ch.Encaps[0].IP != n.Tunnel():
			st.Problems = append(st.Problems, fmt.Sprintf("%s: chassis %s encaps %v, want geneve %s", n.Name, n.SystemID, ch.Encaps, n.Tunnel()))
		}
	}
}

// tunnels lists each node's Geneve tunnels from its Open_vSwitch db (when
// that node's ovsdb-server runs).
func (c *checker) tunnels(cctx context.Context, st *Status, alive map[string]bool) {
	l := c.l
	ipNode := l.encapIPs()
	var err error
	if c.ovs == nil {
		c.ovs = map[string]client.Client{}
	}
	for _, n := range l.Nodes {
		if !alive[n.Name+"/ovsdb-server"] {
			continue
		}
		oc := c.ovs[n.Name]
		if oc == nil {
			if oc, err = vsdb.Connect(cctx, n.OVS); err != nil {
				st.Problems = append(st.Problems, fmt.Sprintf("%s: %v", n.Name, err))
				continue
			}
			c.ovs[n.Name] = oc
		}
		ifs, err := vsdb.Interfaces(cctx, oc, "geneve")
		if err != nil {
			st.Problems = append(st.Problems, fmt.Sprintf("%s: %v", n.Name, err))
			continue
		}
		seen := map[string]bool{}
		for _, i := range ifs {
			t := Tunnel{Node: n.Name, RemoteIP: i.Options["remote_ip"], Egress: i.Status["tunnel_egress_iface"]}
			t.RemoteNode = ipNode[t.RemoteIP]
			st.Tunnels = append(st.Tunnels, t)
			seen[t.RemoteIP] = true
			if t.Egress != PhysBridge {
				st.Problems = append(st.Problems, fmt.Sprintf("%s: tunnel to %s egresses %q, want %s", n.Name, t.RemoteIP, t.Egress, PhysBridge))
			}
		}
		for _, m := range l.Nodes {
			if m != n && !seen[m.Tunnel()] {
				st.Problems = append(st.Problems, fmt.Sprintf("%s: no tunnel to %s (%s)", n.Name, m.Name, m.Tunnel()))
			}
		}
	}
}

// waitReady polls until the lab is healthy; it fails fast, with the log
// tail, when a daemon dies, and on ctx's deadline names what is missing.
func (l *Lab) waitReady(ctx context.Context) error {
	c := &checker{l: l}
	defer c.close()
	for {
		st := c.check(ctx)
		if st.Healthy() {
			return nil
		}
		for _, d := range st.Daemons {
			if !d.Alive {
				for _, dd := range l.allDaemons() {
					if dd.Node == d.Node && dd.Name == d.Name {
						return fmt.Errorf("%s on %s exited\n%s", d.Name, d.Node, dd.lastLines(10))
					}
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("lab %s not ready: %s", l.Name, strings.Join(st.Problems, "; "))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (l *Lab) allDaemons() []*daemon {
	all := l.centralDaemons()
	for _, n := range l.Nodes {
		all = append(all, n.daemons()...)
	}
	return all
}
