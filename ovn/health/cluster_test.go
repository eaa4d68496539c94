package health

import (
	"testing"
	"time"
)

func TestParseClusterStatus(t *testing.T) {
	out := `aeb9
Name: OVN_Northbound
Cluster ID: 1763 (17634b2e-0d4e-4a40-a2ed-1a2f8d2f4b11)
Server ID: aeb9 (aeb9c0de-0000-4000-8000-000000000000)
Address: tcp:198.18.0.2:6643
Status: cluster member
Role: leader
Term: 4
Leader: self
Vote: self

Last Election started 2331 ms ago, reason: leadership_transfer
Last Election won: 2330 ms ago
Election timer: 1000
Log: [2, 9]
`
	st := ParseClusterStatus(out)
	want := RaftStatus{Status: "cluster member", Role: "leader", Term: 4, ElectionTimer: 1000,
		LastElectionWon: 2330 * time.Millisecond, LastElection: 2331 * time.Millisecond}
	if *st != want {
		t.Errorf("ParseClusterStatus = %+v; want %+v", *st, want)
	}
	if st := ParseClusterStatus("Role: follower\nTerm: 2\n"); st.LastElectionWon != -1 || st.Role != "follower" || st.Term != 2 {
		t.Errorf("follower without elections = %+v", *st)
	}
}
