package dbconn

import (
	"context"
	"fmt"

	"github.com/ovn-kubernetes/libovsdb/client"

	"github.com/ovlmgr/ovlmgr/ovn/icnbdb"
	"github.com/ovlmgr/ovlmgr/ovn/icsbdb"
)

// EnvICNB and EnvICSB name the OVN Interconnection databases (the global
// IC-NB and IC-SB shared by linked sites) for ovlmgr's site commands.
const (
	EnvICNB = "OVLMGR_IC_NB"
	EnvICSB = "OVLMGR_IC_SB"
)

// ConnectICNB connects to the global OVN_IC_Northbound database at
// endpoints (a comma list). No tables are monitored.
func ConnectICNB(ctx context.Context, endpoints string) (client.Client, error) {
	m, err := icnbdb.FullDatabaseModel()
	if err != nil {
		return nil, fmt.Errorf("IC-NB model: %w", err)
	}
	return Connect(ctx, m, endpoints, Options{What: "IC-NB"})
}

// ConnectICSB connects to the global OVN_IC_Southbound database.
func ConnectICSB(ctx context.Context, endpoints string) (client.Client, error) {
	m, err := icsbdb.FullDatabaseModel()
	if err != nil {
		return nil, fmt.Errorf("IC-SB model: %w", err)
	}
	return Connect(ctx, m, endpoints, Options{What: "IC-SB"})
}
