package owner_test

import (
	"testing"

	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/owner"
)

// The interface hash names host veths and legacy NB ports that already
// exist on nodes: it must never change.
func TestInterfaceHash(t *testing.T) {
	for _, c := range []struct{ id, ifName, want string }{
		{"abc", "eth0", "538f587a23655f38bbcd8344b3c3eab0963f28045c7aa32182e0c7ae75d90366"},
	} {
		if got := owner.InterfaceHash(c.id, c.ifName); got != c.want {
			t.Errorf("InterfaceHash(%q, %q) = %s, want %s", c.id, c.ifName, got, c.want)
		}
	}
	if owner.InterfaceHash("abc", "eth0") == owner.InterfaceHash("abc", "eth1") {
		t.Error("two ifnames of one container hash alike")
	}
}

func TestIDs(t *testing.T) {
	got := owner.IDs(owner.KindPort, "p1", map[string]string{owner.KeyContainer: "abc"})
	want := map[string]string{owner.KeyOwner: owner.Owner, owner.KeyKind: owner.KindPort, owner.KeyName: "p1", owner.KeyContainer: "abc"}
	if len(got) != len(want) {
		t.Fatalf("IDs = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("IDs[%s] = %q, want %q", k, got[k], v)
		}
	}
}
