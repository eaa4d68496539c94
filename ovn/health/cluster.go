package health

import (
	"context"
	"fmt"

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
