package dbops

import (
	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"
)

// Monitored is a client whose own long-lived monitor keeps some tables'
// columns in its cache (the node's CNI server: ovs/attach's Session).
// SelectRows answers a select from that cache when Holds says the monitor
// keeps every column the select asks for and the cache has rows matching
// its conditions; otherwise (no match: a row made a moment ago may not
// have reached the monitor yet) it asks the server, as for any other
// client. Rows from the cache are as current as the monitor's last update.
type Monitored interface {
	client.Client
	// Holds reports whether the monitor is live and keeps columns
	// ("_uuid" is always kept) of table.
	Holds(table string, columns []string) bool
	// Fresh is the client without its cache reads: every read goes to
	// the server (for a read that must follow a write of its own).
	Fresh() client.Client
}

// Fresh returns c's reads-from-the-server client when c is Monitored,
// else c: for reads that must see a write just made (a re-read after a
// transaction), which a monitor may not have carried yet.
func Fresh(c client.Client) client.Client {
	if m, ok := c.(Monitored); ok {
		return m.Fresh()
	}
	return c
}

// cachedRows answers SelectRows from m's cache (see Monitored); ok false
// sends the select to the server.
func cachedRows[T any, PT modelPtr[T]](m Monitored, where []ovsdb.Condition, fields ...func(PT) []any) (_ []*T, ok bool) {
	table, err := TableOf[T, PT](m)
	if err != nil {
		return nil, false
	}
	cols, err := fieldColumns(m, fields)
	if err != nil || len(cols) == 0 || !m.Holds(table, cols) {
		return nil, false // no columns named: every column, more than a monitor keeps
	}
	tc := m.Cache()
	if tc == nil {
		return nil, false
	}
	rc := tc.Table(table)
	if rc == nil {
		return nil, false
	}
	rows, err := rc.RowsByCondition(where)
	if err != nil || len(rows) == 0 {
		return nil, false
	}
	out := make([]*T, 0, len(rows))
	for _, r := range rows { // clones: the caller may change them
		t, ok := r.(PT)
		if !ok {
			return nil, false
		}
		out = append(out, (*T)(t))
	}
	return out, true
}
