package network_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/ovlmgr/ovlmgr/lab/ovsdbtest"
	"github.com/ovlmgr/ovlmgr/ovn/encrypt"
	"github.com/ovlmgr/ovlmgr/ovn/names"
	"github.com/ovlmgr/ovlmgr/ovn/network"
)

// TestPathMTU: the deployment's underlay path MTU only goes down (a node
// with a smaller path lowers it, a larger one leaves it), is created
// before ovn-northd made NB_Global, survives concurrent recorders, and
// refuses values outside 1280-9000 naming the field.
func TestPathMTU(t *testing.T) {
	srv := ovsdbtest.StartNB(t)
	nb := connect(t, srv)
	ctx := context.Background()
	if got, err := network.PathMTU(ctx, nb); err != nil || got != 0 {
		t.Fatalf("PathMTU on an empty NB = %d, %v; want 0, nil", got, err)
	}
	if got, err := network.LowerPathMTU(ctx, nb, 1450); err != nil || got != 1450 {
		t.Fatalf("LowerPathMTU(1450) = %d, %v; want 1450", got, err)
	}
	if got, err := network.LowerPathMTU(ctx, nb, 1500); err != nil || got != 1450 {
		t.Fatalf("LowerPathMTU(1500) after 1450 = %d, %v; want 1450 (never raised)", got, err)
	}
	// Nodes joining at once: the smallest wins.
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i, m := range []int{1420, 1400, 1440, 1410} {
		wg.Add(1)
		go func(i, m int) {
			defer wg.Done()
			c := connect(t, srv)
			_, errs[i] = network.LowerPathMTU(ctx, c, m)
		}(i, m)
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if got, err := network.PathMTU(ctx, nb); err != nil || got != 1400 {
		t.Fatalf("PathMTU after concurrent lowers = %d, %v; want 1400", got, err)
	}
	var fe *names.FieldError
	if _, err := network.LowerPathMTU(ctx, nb, 1000); !errors.As(err, &fe) || fe.Field != "path mtu" {
		t.Fatalf("LowerPathMTU(1000) = %v; want a FieldError on path mtu", err)
	}
	// Encrypted tunnels are part of what sets container MTUs.
	if u, err := network.ReadUnderlay(ctx, nb); err != nil || u != (network.Underlay{PathMTU: 1400}) {
		t.Fatalf("ReadUnderlay = %+v, %v; want path MTU 1400, not encrypted", u, err)
	}
	if err := encrypt.Set(ctx, nb, true); err != nil {
		t.Fatal(err)
	}
	if u, err := network.ReadUnderlay(ctx, nb); err != nil || u != (network.Underlay{PathMTU: 1400, Encrypted: true}) {
		t.Fatalf("ReadUnderlay with encryption on = %+v, %v; want path MTU 1400, encrypted", u, err)
	}
}
