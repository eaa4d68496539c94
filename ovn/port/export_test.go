package port

import (
	"context"
	"testing"

	"github.com/ovn-kubernetes/libovsdb/client"
)

// MustList lists every container port or fails the test.
func MustList(t *testing.T, ctx context.Context, nb client.Client) []*Port {
	t.Helper()
	ps, err := List(ctx, nb, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	return ps
}
