package events

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ovn-kubernetes/libovsdb/cache"
	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/owner"
	"github.com/ovlmgr/ovlmgr/ovn/sbdb"
)

// Options configure Follow.
type Options struct {
	// NB and SB are connections of Follow's own: it adds monitors and
	// cache handlers to them. The caller closes them afterwards.
	NB, SB client.Client
	// Sources supply the nodes' ovn-controller logs (nil: no verdicts).
	Sources []LogSource
	Filter  Filter
}

// change is one row event of a monitored table, handled in order.
type change struct {
	table    string
	old, new model.Model // new nil: deleted; old nil: added
}

// portState is what Follow remembers of a container port.
type portState struct {
	name, network, node, container string
	ip                             netip.Addr
	up, announced                  bool
	display                        string
}

// Follow sends what happens from now on to emit (called from one goroutine
// at a time) until ctx ends or a monitor fails. It returns once ctx ends;
// ready, when not nil, is closed once the monitors are in place (events
// after that moment are seen).
func Follow(ctx context.Context, o Options, emit func(Event), ready chan<- struct{}) error {
	res := NewResolver(o.NB)
	var mu sync.Mutex
	send := func(e Event) {
		if !o.Filter.Match(e) {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		emit(e)
	}
	changes := make(chan change, 4096)
	handler := func(tables ...string) *cache.EventHandlerFuncs {
		want := map[string]bool{}
		for _, t := range tables {
			want[t] = true
		}
		push := func(table string, old, new model.Model) {
			if want[table] {
				select {
				case changes <- change{table, old, new}:
				case <-ctx.Done():
				}
			}
		}
		return &cache.EventHandlerFuncs{
			AddFunc:    func(t string, m model.Model) { push(t, nil, m) },
			UpdateFunc: func(t string, old, new model.Model) { push(t, old, new) },
			DeleteFunc: func(t string, m model.Model) { push(t, m, nil) },
		}
	}
	o.NB.Cache().AddEventHandler(handler(nbdb.LogicalSwitchPortTable))
	o.SB.Cache().AddEventHandler(handler(sbdb.ChassisTable, sbdb.PortBindingTable))

	lsp := &nbdb.LogicalSwitchPort{}
	sel := owner.Selector(owner.KindPort)
	if _, err := o.NB.Monitor(ctx, o.NB.NewMonitor(client.WithConditionalTable(lsp,
		[]model.Condition{{Field: &lsp.ExternalIDs, Function: ovsdb.ConditionIncludes, Value: sel}},
		&lsp.Name, &lsp.ExternalIDs, &lsp.Up, &lsp.Addresses, &lsp.DynamicAddresses))); err != nil {
		return fmt.Errorf("events: monitor NB ports: %w", err)
	}
	ch, enc, pb := &sbdb.Chassis{}, &sbdb.Encap{}, &sbdb.PortBinding{}
	if _, err := o.SB.Monitor(ctx, o.SB.NewMonitor(
		client.WithTable(ch, &ch.Name, &ch.Hostname, &ch.Encaps),
		client.WithTable(enc, &enc.IP),
		client.WithTable(pb, &pb.LogicalPort, &pb.Chassis))); err != nil {
		return fmt.Errorf("events: monitor SB chassis and bindings: %w", err)
	}
	// Rows present when the monitors started are the starting state, not events.
	initial := map[string]bool{}
	for _, t := range []struct {
		c     client.Client
		table string
	}{{o.NB, nbdb.LogicalSwitchPortTable}, {o.SB, sbdb.ChassisTable}, {o.SB, sbdb.PortBindingTable}} {
		tc := t.c.Cache()
		if tc == nil { // the connection dropped since the monitor started
			return fmt.Errorf("events: read the starting rows of %s: %w", t.table, client.ErrNotConnected)
		}
		if rc := tc.Table(t.table); rc != nil {
			for _, u := range rc.Rows() {
				initial[t.table+"/"+u.(interface{ GetUUID() string }).GetUUID()] = true
			}
		}
	}
	_ = res.Refresh(ctx)

	var wg sync.WaitGroup
	for _, src := range o.Sources {
		wg.Add(1)
		go func(src LogSource) {
			defer wg.Done()
			followLog(ctx, src, res, send)
		}(src)
	}
	if ready != nil {
		close(ready)
	}
	f := &follower{res: res, sb: o.SB, send: send, initial: initial,
		ports: map[string]*portState{}, byName: map[string]*portState{}, chassis: map[string][2]string{}}
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return nil
		case c := <-changes:
			f.handle(ctx, c)
		}
	}
}

// followLog turns a source's acl_log lines into verdict events.
func followLog(ctx context.Context, src LogSource, res *Resolver, send func(Event)) {
	lines := make(chan LogLine, 256)
	go func() {
		for ctx.Err() == nil {
			_ = src.Read(ctx, false, true, lines)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second): // a log not there yet
			}
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case l := <-lines:
			if h, ok := ParseACLLog(l.Line); ok {
				send(res.VerdictEvent(ctx, h, l.Node))
			}
		}
	}
}

type follower struct {
	res     *Resolver
	sb      client.Client
	send    func(Event)
	initial map[string]bool
	ports   map[string]*portState // by NB UUID
	byName  map[string]*portState
	chassis map[string][2]string // SB UUID -> name, hostname
}

func (f *follower) handle(ctx context.Context, c change) {
	row := c.new
	if row == nil {
		row = c.old
	}
	uuid := row.(interface{ GetUUID() string }).GetUUID()
	silent := false
	if c.old == nil && f.initial[c.table+"/"+uuid] {
		delete(f.initial, c.table+"/"+uuid)
		silent = true
	}
	switch c.table {
	case nbdb.LogicalSwitchPortTable:
		f.port(ctx, uuid, c, silent)
	case sbdb.ChassisTable:
		f.chassisRow(uuid, c, silent)
	case sbdb.PortBindingTable:
		f.binding(c, silent)
	}
}

func portFrom(l *nbdb.LogicalSwitchPort) portState {
	ids := l.ExternalIDs
	st := portState{name: l.Name, network: ids[owner.KeyNetwork], node: ids[owner.KeyNode], container: ids[owner.KeyContainer],
		up: l.Up != nil && *l.Up}
	addrs := append([]string{}, l.Addresses...)
	if l.DynamicAddresses != nil {
		addrs = append(addrs, *l.DynamicAddresses)
	}
	for _, a := range addrs {
		for _, x := range strings.Fields(a) {
			if ip, err := netip.ParseAddr(x); err == nil && ip.Is4() && !st.ip.IsValid() {
				st.ip = ip
			}
		}
	}
	return st
}

func (f *follower) portEvent(st *portState, k Kind, text string) {
	e := Event{Time: time.Now(), Kind: k, Network: st.network, Node: st.node, Container: st.display, Port: st.name, Text: text}
	if st.ip.IsValid() {
		e.IP = st.ip.String()
	}
	f.send(e)
}

func (f *follower) port(ctx context.Context, uuid string, c change, silent bool) {
	if c.new == nil {
		st := f.ports[uuid]
		if st == nil {
			return
		}
		delete(f.ports, uuid)
		delete(f.byName, st.name)
		if st.ip.IsValid() {
			defer f.res.notePort(portInfo{name: st.name}, st.ip, true)
		}
		if st.display == "" {
			st.display = f.res.Name(ctx, st.network, st.container, st.ip)
		}
		if !st.announced {
			// Never up: an ADD that failed and was undone, or a port removed
			// before its node bound it.
			f.portEvent(st, Detached, fmt.Sprintf("container %s detached from network %s on node %s before its port came up (%s)", st.display, st.network, st.node, st.ip))
			return
		}
		f.portEvent(st, Detached, fmt.Sprintf("container %s detached from network %s on node %s (%s)", st.display, st.network, st.node, st.ip))
		return
	}
	now := portFrom(c.new.(*nbdb.LogicalSwitchPort))
	st := f.ports[uuid]
	if st == nil {
		cp := now
		st = &cp
		f.ports[uuid], f.byName[st.name] = st, st
		if st.ip.IsValid() {
			f.res.notePort(portInfo{name: st.name, network: st.network, node: st.node, container: st.container}, st.ip, false)
		}
		if silent {
			// Already there: announced if already up, else once it comes up.
			st.announced = st.up
			return
		}
		st.up = false
	}
	// A reconnect re-adds known rows: they are handled as updates.
	wasUp := st.up
	if now.ip.IsValid() && now.ip != st.ip {
		f.res.notePort(portInfo{name: st.name, network: st.network, node: st.node, container: st.container}, now.ip, false)
	}
	st.ip, st.up = now.ip, now.up
	switch {
	case st.up && !st.announced:
		st.announced = true
		st.display = f.res.Name(ctx, st.network, st.container, st.ip)
		f.portEvent(st, Attached, fmt.Sprintf("container %s attached to network %s on node %s: %s", st.display, st.network, st.node, st.ip))
	case st.up && !wasUp:
		f.portEvent(st, PortUp, fmt.Sprintf("port of %s on network %s is up on node %s", f.display(ctx, st), st.network, st.node))
	case !st.up && wasUp:
		f.portEvent(st, PortDown, fmt.Sprintf("port of %s on network %s is down on node %s", f.display(ctx, st), st.network, st.node))
	}
}

func (f *follower) display(ctx context.Context, st *portState) string {
	if st.display == "" {
		st.display = f.res.Name(ctx, st.network, st.container, st.ip)
	}
	return st.display
}

func (f *follower) chassisRow(uuid string, c change, silent bool) {
	if c.new == nil {
		ch := c.old.(*sbdb.Chassis)
		delete(f.chassis, uuid)
		f.send(Event{Time: time.Now(), Kind: ChassisLeft, Node: ch.Name,
			Text: fmt.Sprintf("node %s left (chassis %s, hostname %s)", ch.Name, ch.Name, ch.Hostname)})
		return
	}
	ch := c.new.(*sbdb.Chassis)
	_, known := f.chassis[uuid]
	f.chassis[uuid] = [2]string{ch.Name, ch.Hostname}
	if silent || known {
		return
	}
	var ips []string
	for _, e := range ch.Encaps {
		enc := &sbdb.Encap{UUID: e}
		if err := f.sb.Get(context.Background(), enc); err == nil {
			ips = append(ips, enc.IP)
		}
	}
	f.send(Event{Time: time.Now(), Kind: ChassisJoined, Node: ch.Name,
		Text: fmt.Sprintf("node %s joined (chassis %s, hostname %s, encap %s)", ch.Name, ch.Name, ch.Hostname, strings.Join(ips, ","))})
}

func (f *follower) chassisName(uuid *string) string {
	if uuid == nil {
		return ""
	}
	if c, ok := f.chassis[*uuid]; ok {
		return c[0]
	}
	ch := &sbdb.Chassis{UUID: *uuid}
	if err := f.sb.Get(context.Background(), ch); err == nil {
		return ch.Name
	}
	return *uuid
}

func (f *follower) binding(c change, silent bool) {
	if silent {
		return
	}
	var was, is string
	var name string
	if c.old != nil {
		p := c.old.(*sbdb.PortBinding)
		was, name = f.chassisName(p.Chassis), p.LogicalPort
	}
	if c.new != nil {
		p := c.new.(*sbdb.PortBinding)
		is, name = f.chassisName(p.Chassis), p.LogicalPort
	}
	st := f.byName[name]
	if st == nil || was == is {
		return
	}
	who := st.display
	if who == "" {
		who = dns0(st)
	}
	if was != "" {
		f.portEvent(st, Unbound, fmt.Sprintf("port of %s on network %s unbound from node %s", who, st.network, was))
	}
	if is != "" {
		f.portEvent(st, Bound, fmt.Sprintf("port of %s on network %s bound on node %s", who, st.network, is))
	}
}

// dns0 is a port's name before its DNS name is known: its short container ID.
func dns0(st *portState) string {
	if len(st.container) > 12 {
		return st.container[:12]
	}
	return st.container
}

// History returns the verdicts the sources' logs hold now (read once, not
// followed), in time order, filtered by f. NB and SB keep no history of
// ports or nodes, so History has none of those.
func History(ctx context.Context, nb client.Client, sources []LogSource, f Filter) ([]Event, error) {
	res := NewResolver(nb)
	_ = res.Refresh(ctx)
	var out []Event
	var firstErr error
	for _, src := range sources {
		lines := make(chan LogLine, 256)
		errc := make(chan error, 1)
		go func() { errc <- src.Read(ctx, true, false, lines); close(lines) }()
		for l := range lines {
			if h, ok := ParseACLLog(l.Line); ok {
				if e := res.VerdictEvent(ctx, h, l.Node); f.Match(e) {
					out = append(out, e)
				}
			}
		}
		if err := <-errc; err != nil && firstErr == nil {
			firstErr = err
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out, firstErr
}
