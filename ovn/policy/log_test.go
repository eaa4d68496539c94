package policy_test

import (
	"context"
	"testing"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/owner"
	"github.com/ovlmgr/ovlmgr/ovn/policy"
)

// TestDenyLogs: every ACL that drops traffic logs through the rate-limiting
// meter (so `ovlmgr events` sees denied connections): a default-deny
// network's drop (set at create and by SetIsolation) and a deny policy
// without --log. An allow without --log does not log.
func TestDenyLogs(t *testing.T) {
	_, c := nb(t)
	ctx := context.Background()
	addNetwork(t, c, "web", "198.18.1.0/24", "")
	addNetwork(t, c, "app", "198.18.2.0/24", "")
	if err := policy.SetIsolation(ctx, c, "app", policy.DefaultDeny); err != nil {
		t.Fatal(err)
	}
	for _, s := range []policy.Spec{
		{Name: "no-db", Network: "web", Action: policy.Deny, Proto: "tcp", Port: "5432", Priority: 100},
		{Name: "quiet", Network: "web", Action: policy.Allow, Proto: "tcp", Port: "80", Priority: 100},
	} {
		if _, err := policy.Create(ctx, c, s); err != nil {
			t.Fatal(err)
		}
	}
	if n := count[nbdb.Meter](t, c, dbops.NameIs(policy.LogMeter)); n != 1 {
		t.Fatalf("log meters = %d, want 1", n)
	}
	acls, err := dbops.SelectRows[nbdb.ACL](ctx, c, []ovsdb.Condition{dbops.Includes(map[string]string{owner.KeyOwner: owner.Owner})})
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, a := range acls {
		logged := a.Log && a.Meter != nil && *a.Meter == policy.LogMeter && a.Severity != nil && *a.Severity == nbdb.ACLSeverityWarning
		switch {
		case a.Action == nbdb.ACLActionDrop:
			seen++
			if !logged {
				t.Errorf("drop ACL of %s %s does not log through %s at warning: log=%v meter=%v severity=%v", a.ExternalIDs[owner.KeyKind], a.ExternalIDs[owner.KeyName], policy.LogMeter, a.Log, a.Meter, a.Severity)
			}
		case a.ExternalIDs[owner.KeyName] == "quiet" && a.Log:
			t.Errorf("allow policy without --log logs")
		}
	}
	if seen != 2 {
		t.Errorf("drop ACLs = %d, want 2 (app's default-deny, policy no-db)", seen)
	}
}
