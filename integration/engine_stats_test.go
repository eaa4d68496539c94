package integration

import "testing"

// TestEngineRecomputes: the churn benchmark's reading of ovn-controller's
// inc-engine/show-stats finds the node asked for and not its neighbours.
func TestEngineRecomputes(t *testing.T) {
	stats := `Node: SB_dns
- recompute:          166
- compute:              0
- abort:                0
Node: logical_flow_output
- recompute:           20
- compute:             50
- abort:                4
Node: ct_zones
- recompute:            4
- compute:             34
- abort:                0
`
	if n, ok := engineRecomputes(stats, "logical_flow_output"); !ok || n != 20 {
		t.Errorf("logical_flow_output: %d, %v; want 20, true", n, ok)
	}
	if n, ok := engineRecomputes(stats, "ct_zones"); !ok || n != 4 {
		t.Errorf("ct_zones: %d, %v; want 4, true", n, ok)
	}
	if _, ok := engineRecomputes(stats, "lflow_output"); ok {
		t.Error("a node that is not there was found")
	}
	if _, ok := engineRecomputes("Node: logical_flow_output\nNode: x\n- recompute: 3\n", "logical_flow_output"); ok {
		t.Error("the next node's count was taken")
	}
}
