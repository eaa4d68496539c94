package diagnose

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ovlmgr/ovlmgr/ovn/health"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
)

// Thresholds of the cluster checks.
const (
	// MinElectionTimer: below it a loaded member misses heartbeats and the
	// cluster goes leaderless (ovs-issues#348 at scale); 1000 ms is the
	// default and fine for a small cluster.
	MinElectionTimer = 1000
	// RecentElection: a leader elected this recently (after term 1) means a
	// leader change just happened.
	RecentElection = time.Minute
	// MaxIndexLag: a member this many log entries behind its leader is not
	// keeping up.
	MaxIndexLag = 1000
)

// raftChecks checks a clustered database (several endpoints): quorum (how
// many members are connected to the cluster), that all members belong to
// one cluster and keep up with the leader, and, with the members' control
// sockets (ctls, in endpoint order), their election timers and how
// recently the leader changed. Each failure says what to do.
func raftChecks(ctx context.Context, what, dbName, endpoints string, ctls []string) []Check {
	eps, err := dbconn.ParseEndpoints(endpoints)
	if err != nil || len(eps) < 2 {
		return nil
	}
	name := strings.ToLower(what) + " cluster"
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var (
		connected, leaders int
		down, cids         []string
		leaderIndex        int
		states             []health.MemberState
	)
	for _, ep := range eps {
		st := health.Member(cctx, ep, dbName)
		states = append(states, st)
		switch {
		case st.Err != nil:
			down = append(down, ep+" (unreachable)")
			continue
		case !st.Connected:
			down = append(down, ep+" (not connected to the cluster)")
		default:
			connected++
		}
		if st.Leader && st.Connected {
			leaders++
			leaderIndex = st.Index
		}
		if st.CID != "" && !contains(cids, st.CID) {
			cids = append(cids, st.CID)
		}
	}
	quorum := len(eps)/2 + 1
	var out []Check
	switch {
	case connected < quorum:
		out = append(out, Failf(AreaCluster, name, fmt.Sprintf("start the members that are down (in a lab: ovlmgr lab restart central %sK); a cluster needs %d of %d to write", strings.ToLower(what), quorum, len(eps)),
			"%s cluster has lost quorum: %d of %d members connected; down: %s", what, connected, len(eps), strings.Join(down, ", ")))
	case leaders == 0:
		out = append(out, Failf(AreaCluster, name, "wait a few election timeouts; if it stays leaderless, check the members' logs and load",
			"%s cluster has no leader (election under way?): %d of %d members connected", what, connected, len(eps)))
	case len(down) > 0:
		out = append(out, Warnf(AreaCluster, name, "start or reconnect "+strings.Join(down, ", ")+": one more failure and the cluster cannot write",
			"%s cluster has quorum but only %d of %d members connected", what, connected, len(eps)))
	default:
		out = append(out, Okf(AreaCluster, name, "%s cluster: %d of %d members connected, one leader", what, connected, len(eps)))
	}
	if len(cids) > 1 {
		out = append(out, Failf(AreaCluster, name+" id", fmt.Sprintf("point --%s at the members of one cluster", strings.ToLower(what)),
			"%s endpoints belong to %d different clusters (cluster ids %s)", what, len(cids), strings.Join(cids, ", ")))
	}
	for _, st := range states {
		if st.Err == nil && leaders > 0 && !st.Leader && leaderIndex-st.Index > MaxIndexLag {
			out = append(out, Warnf(AreaCluster, name+" lag", "check that member's disk, CPU and network",
				"%s member %s is %d log entries behind its leader", what, st.Endpoint, leaderIndex-st.Index))
		}
	}
	if len(ctls) == 0 {
		return out
	}
	timers := map[int]bool{}
	var recent []string
	for i, ctl := range ctls {
		rs, err := health.ClusterStatus(cctx, ctl, dbName)
		if err != nil {
			continue // down members are reported above
		}
		timers[rs.ElectionTimer] = true
		if rs.ElectionTimer > 0 && rs.ElectionTimer < MinElectionTimer {
			out = append(out, Warnf(AreaCluster, name+" election timer",
				fmt.Sprintf("raise it on the leader: ovs-appctl -t %s cluster/change-election-timer %s %d (doubling at most per call)", ctl, dbName, 2*rs.ElectionTimer),
				"%s member %d has a %d ms election timer: a loaded member then misses heartbeats and the cluster goes leaderless", what, i+1, rs.ElectionTimer))
		}
		if rs.Role == "leader" && rs.Term > 1 && rs.LastElectionWon >= 0 && rs.LastElectionWon < RecentElection {
			recent = append(recent, fmt.Sprintf("member %d became leader %s ago (term %d)", i+1, rs.LastElectionWon.Round(time.Second), rs.Term))
		}
	}
	if len(timers) > 1 {
		out = append(out, Warnf(AreaCluster, name+" election timer", "set one timer on the leader (cluster/change-election-timer): it applies to all members",
			"%s members disagree on the election timer", what))
	}
	if len(recent) > 0 {
		out = append(out, Warnf(AreaCluster, name+" leader change",
			"a member died or was slow; if leaders keep changing, check the members' load and raise the election timer",
			"%s leader changed recently: %s", what, strings.Join(recent, ", ")))
	}
	return out
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
