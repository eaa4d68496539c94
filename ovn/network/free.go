package network

import "github.com/ovlmgr/ovlmgr/ovn/nbdb"

// FreeOf is Network.Free for one of our switches read with at least its
// name, other_config and external_ids, holding ports container ports: for
// callers that count ports themselves (the exporter reads trimmed columns
// of every switch and port once per scrape).
func FreeOf(ls *nbdb.LogicalSwitch, ports int) int { return fromRow(ls, ports).Free }
