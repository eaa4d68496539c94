package diagnose

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ovlmgr/ovlmgr/lab/ovsdbtest"
)

// TestClusterLeader: with a clustered NB, diagnose names the leader and
// each member's role, warns about a member that is down, and fails when
// the cluster has lost its quorum.
func TestClusterLeader(t *testing.T) {
	cl := ovsdbtest.StartNBCluster(t)
	eps, cmds := cl.Endpoints, cl.Cmds
	sb := ovsdbtest.StartSB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	nbList := strings.Join(eps, ",")
	var c *Check
	deadline := time.Now().Add(20 * time.Second)
	for {
		r, _ := Cluster(ctx, Options{NB: nbList, SB: sb.Endpoint})
		c = r.Find("nb")
		if c.Status == OK && strings.Count(c.Detail, " leader") == 1 && strings.Count(c.Detail, " follower") == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster never healthy: %+v", c)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("healthy: %s", c.Detail)
	// Stop one follower: still a leader, the member is reported.
	stop := -1
	for i, ep := range eps {
		if strings.Contains(c.Detail, ep+" follower") {
			stop = i
			break
		}
	}
	_ = cmds[stop].Process.Kill()
	_ = cmds[stop].Wait()
	r, _ := Cluster(ctx, Options{NB: nbList, SB: sb.Endpoint})
	c = r.Find("nb")
	if c.Status != Warn || !strings.Contains(c.Detail, eps[stop]+" unreachable") || !strings.Contains(c.Fix, eps[stop]) {
		t.Errorf("one member down: %+v", c)
	}
	// Stop another: no quorum.
	for i := range cmds {
		if i != stop {
			_ = cmds[i].Process.Kill()
			_ = cmds[i].Wait()
			break
		}
	}
	r, _ = Cluster(ctx, Options{NB: nbList, SB: sb.Endpoint})
	if c = r.Find("nb"); c.Status != Fail || !strings.Contains(c.Detail, "NB has no reachable leader") || !strings.Contains(c.Fix, "quorum") {
		t.Errorf("no quorum: %+v", c)
	}
	t.Logf("no quorum: %s", c.Detail)
}
