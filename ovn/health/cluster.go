package health

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"github.com/ovn-kubernetes/libovsdb/ovsdb/serverdb"

	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
)

// MemberState is what one database server says of one of its databases in
// its _Server database: its model (standalone, clustered, relay), whether
// it is the cluster's leader and connected to the cluster, and the last
// log index it has. Err is set when the server could not be asked.
type MemberState struct {
	Endpoint  string
	Model     string
	Leader    bool
	Connected bool
	Index     int
	SID, CID  string
	Err       error
}

// Member reads the _Server row of database dbName at one endpoint (a
// single server, not a comma list) on a connection of its own.
func Member(ctx context.Context, endpoint, dbName string) MemberState {
	st := MemberState{Endpoint: endpoint}
	m, err := serverdb.FullDatabaseModel()
	if err != nil {
		st.Err = err
		return st
	}
	c, err := dbconn.Connect(ctx, m, endpoint, dbconn.Options{What: "_Server"})
	if err != nil {
		st.Err = err
		return st
	}
	defer c.Close()
	d := &serverdb.Database{Name: dbName}
	var rows []*serverdb.Database
	if err := dbconn.Select(ctx, c, d, &rows, model.Condition{Field: &d.Name, Function: ovsdb.ConditionEqual, Value: dbName}); err != nil {
		st.Err = err
		return st
	}
	if len(rows) == 0 {
		st.Err = fmt.Errorf("%s serves no database %s", endpoint, dbName)
		return st
	}
	r := rows[0]
	st.Model, st.Leader, st.Connected = r.Model, r.Leader, r.Connected
	if r.Index != nil {
		st.Index = *r.Index
	}
	if r.Sid != nil {
		st.SID = *r.Sid
	}
	if r.Cid != nil {
		st.CID = *r.Cid
	}
	return st
}

// RaftStatus is what a clustered ovsdb-server's cluster/status says of one
// database (over its unixctl control socket).
type RaftStatus struct {
	Status        string // "cluster member", "joining cluster", "leaving cluster", ...
	Role          string // leader, follower, candidate
	Term          int
	ElectionTimer int // ms
	// LastElectionWon is how long ago this member last won an election
	// (-1: never, as far as it remembers).
	LastElectionWon time.Duration
	// LastElection is how long ago this member last started an election
	// (-1 when it reports none).
	LastElection time.Duration
}

// ClusterStatus asks the ovsdb-server behind the unixctl socket ctl for
// cluster/status of database dbName (JSON-RPC on the socket, as ovs-appctl
// does, no program run).
func ClusterStatus(ctx context.Context, ctl, dbName string) (*RaftStatus, error) {
	out, err := unixctl(ctx, ctl, "cluster/status", dbName)
	if err != nil {
		return nil, err
	}
	return ParseClusterStatus(out), nil
}

// The cluster/status patterns, compiled on first use: this package's init
// runs in every CNI plugin call, which never reads a cluster's status.
var (
	raftField   = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`(?m)^(Status|Role|Term|Election timer): (.*)$`) })
	raftStarted = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`(?m)^Last Election started (\d+) ms ago`) })
	raftWon     = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`(?m)^Last Election won: (\d+) ms ago`) })
)

// ParseClusterStatus reads the text of ovsdb-server's cluster/status.
func ParseClusterStatus(out string) *RaftStatus {
	st := &RaftStatus{LastElectionWon: -1, LastElection: -1}
	for _, f := range raftField().FindAllStringSubmatch(out, -1) {
		v := strings.TrimSpace(f[2])
		switch f[1] {
		case "Status":
			st.Status = v
		case "Role":
			st.Role = v
		case "Term":
			st.Term, _ = strconv.Atoi(v)
		case "Election timer":
			st.ElectionTimer, _ = strconv.Atoi(v)
		}
	}
	if m := raftStarted().FindStringSubmatch(out); m != nil {
		ms, _ := strconv.Atoi(m[1])
		st.LastElection = time.Duration(ms) * time.Millisecond
	}
	if m := raftWon().FindStringSubmatch(out); m != nil {
		ms, _ := strconv.Atoi(m[1])
		st.LastElectionWon = time.Duration(ms) * time.Millisecond
	}
	return st
}

// unixctl sends one command to an OVS daemon's control socket (JSON-RPC 1.0
// over a unix stream socket) and returns its reply text.
func unixctl(ctx context.Context, ctl, method string, params ...string) (string, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", ctl)
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", ctl, method, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	} else {
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	}
	if params == nil {
		params = []string{}
	}
	if err := json.NewEncoder(c).Encode(map[string]any{"id": 0, "method": method, "params": params}); err != nil {
		return "", fmt.Errorf("%s %s: %w", ctl, method, err)
	}
	var reply struct {
		Result *string          `json:"result"`
		Error  *json.RawMessage `json:"error"`
	}
	if err := json.NewDecoder(c).Decode(&reply); err != nil {
		return "", fmt.Errorf("%s %s: %w", ctl, method, err)
	}
	if reply.Error != nil && string(*reply.Error) != "null" {
		var msg string
		if json.Unmarshal(*reply.Error, &msg) != nil {
			msg = string(*reply.Error)
		}
		return "", fmt.Errorf("%s %s: %s", ctl, method, strings.TrimSpace(msg))
	}
	if reply.Result == nil {
		return "", nil
	}
	return *reply.Result, nil
}
