package dbconn

import (
	"context"
	"fmt"

	"github.com/ovn-kubernetes/libovsdb/client"

	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/sbdb"
)

// ConnectNB connects to the OVN Northbound database at endpoints (a comma
// list; see ResolveNB for defaults). No tables are monitored.
func ConnectNB(ctx context.Context, endpoints string) (client.Client, error) {
	m, err := nbdb.FullDatabaseModel()
	if err != nil {
		return nil, fmt.Errorf("NB model: %w", err)
	}
	return Connect(ctx, m, endpoints, Options{What: "NB"})
}

// ConnectSB connects to the OVN Southbound database at endpoints. No tables
// are monitored.
func ConnectSB(ctx context.Context, endpoints string) (client.Client, error) {
	m, err := sbdb.FullDatabaseModel()
	if err != nil {
		return nil, fmt.Errorf("SB model: %w", err)
	}
	return Connect(ctx, m, endpoints, Options{What: "SB"})
}
