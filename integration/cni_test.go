package integration

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"
)

// TestCNICrossNode: containers on all three nodes of one network reach each
// other (ping, 1 MiB TCP, DF ping at full MTU), over every spec version.
func TestCNICrossNode(t *testing.T) {
	l := sharedLab(t)
	nb := cniNB(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for i, ver := range cniVersions {
		t.Run(ver, func(t *testing.T) {
			name := fmt.Sprintf("cx%d-%d", os.Getpid()%10000, i)
			cniNetwork(t, nb, name, fmt.Sprintf("198.19.%d.0/24", 200+i))
			var ctrs []*container
			for _, node := range l.Nodes[:3] {
				c := newContainer(t, newRuntime(t, node), confList(t, name, ver, nil))
				c.mustAdd(t, ctx)
				ctrs = append(ctrs, c)
			}
			for i, a := range ctrs {
				b := ctrs[(i+1)%len(ctrs)]
				if err := a.ping(ctx, b.ip()); err != nil {
					t.Fatal(err)
				}
			}
			a, b := ctrs[0], ctrs[2]
			if err := tcpTransfer(ctx, b, a, 1<<20+12345); err != nil {
				t.Fatalf("TCP %s -> %s: %v", a.id, b.id, err)
			}
			mtu := a.mtu(t)
			if want := l.UnderlayMTU - 58; mtu != want {
				t.Errorf("container MTU %d; want underlay %d - 58 = %d", mtu, l.UnderlayMTU, want)
			}
			if err := a.ping(ctx, b.ip(), "-M", "do", "-s", fmt.Sprint(mtu-28)); err != nil {
				t.Fatalf("DF ping at full MTU %d: %v", mtu, err)
			}
		})
	}
}
