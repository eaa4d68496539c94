package integration

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/ovlmgr/ovlmgr/lab"
	"github.com/ovlmgr/ovlmgr/ovn/gateway"
)

// BenchmarkGatewayFailover: the active gateway node n1 dies (its
// ovn-controller and ovs-vswitchd are killed -9) 10 times; n2 takes over,
// then n1 is restarted and the gateway returns to it (the higher priority)
// before the next run. A container on n3 sends a UDP
// datagram every 10 ms to the outside host throughout; per run the
// failover time is the longest gap between consecutive datagrams received
// around the kill, and the lost datagrams are those never received.
func BenchmarkGatewayFailover(b *testing.B) {
	w := gwSetup(b, "gbf")
	gwActive(b, w, "n1", 10*time.Second)
	if _, err := gwDialRetry(w.ctr, w.srv, 15*time.Second); err != nil {
		b.Fatal(err)
	}
	recv := gwUDPSink(b, w.l.External, net.JoinHostPort(w.l.External.HostIP, "9000"))
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	const interval = 10 * time.Millisecond
	var gaps []time.Duration
	var lostTotal int
	for run := 0; run < 10; run++ {
		active := "n1"
		gwActive(b, w, active, 30*time.Second)
		recv.reset()
		stop := gwUDPStream(b, w.ctr, net.JoinHostPort(w.l.External.HostIP, "9000"), interval)
		time.Sleep(500 * time.Millisecond) // a steady stream first
		for _, d := range []string{"ovn-controller", "ovs-vswitchd"} {
			if err := w.l.Kill(ctx, active, d); err != nil {
				b.Fatal(err)
			}
		}
		// Wait for the stream to come back (bounded), then a steady tail.
		deadline := time.Now().Add(30 * time.Second)
		for recv.sinceLast() < 0 || !recv.flowing(5) {
			if time.Now().After(deadline) {
				g, _ := gateway.Get(ctx, w.nb, "r1")
				now, aerr := gateway.Active(ctx, w.sb, g)
				_, derr := gwDial(w.ctr, w.srv, time.Second)
				bfd, _ := w.l.Nodes[2].Command(ctx, "ovs-appctl", "bfd/show").CombinedOutput()
				b.Fatalf("run %d: no datagram through the standby 30s after %s died (active now %q %v; TCP dial: %v)\nn3 bfd/show:\n%s", run+1, active, now, aerr, derr, bfd)
			}
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(300 * time.Millisecond)
		sent := stop()
		time.Sleep(200 * time.Millisecond)
		gap, got := recv.stats()
		lost := sent - got
		gaps = append(gaps, gap)
		lostTotal += lost
		b.Logf("run %d: %s killed, longest gap %d ms, %d of %d datagrams lost", run+1, active, gap.Milliseconds(), lost, sent)
		gwActive(b, w, "n2", 10*time.Second)
		// Bring the node back: ovs-vswitchd first (its Restart reports the
		// still-dead ovn-controller), then ovn-controller, which waits for a
		// healthy lab; the gateway then moves back to n1.
		_ = w.l.Restart(ctx, active, "ovs-vswitchd", lab.RestartOptions{})
		if err := w.l.Restart(ctx, active, "ovn-controller", lab.RestartOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("gateway failover over %d kills of the active node: p50 %d ms, max %d ms; datagrams lost (one every 10 ms) %d per failover on average, %d in total (load %s)",
		len(gaps), percentile(gaps, 50).Milliseconds(), percentile(gaps, 100).Milliseconds(), lostTotal/len(gaps), lostTotal, loadavg())
	b.ReportMetric(percentile(gaps, 50).Seconds()*1000, "failover-p50-ms")
	b.ReportMetric(float64(lostTotal)/float64(len(gaps)), "lost-per-failover")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkGatewayThroughput: TCP from a container on n3 to the outside
// host through the gateway on n1 (SNAT), against TCP from the same
// container to a container on n1 (Geneve, no NAT): bytes/s of each (median
// of 3 transfers of 64 MiB) and their ratio; then TCP connect latency
// (p50 of 200 connects) to each.
func BenchmarkGatewayThroughput(b *testing.B) {
	w := gwSetup(b, "gbt")
	gwActive(b, w, "n1", 10*time.Second)
	if _, err := gwDialRetry(w.ctr, w.srv, 15*time.Second); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	peer := newContainer(b, newRuntime(b, w.l.Nodes[0]), confList(b, "web", "1.0.0", nil))
	peer.mustAdd(b, ctx)
	const size = 64 << 20
	extAddr := net.JoinHostPort(w.l.External.HostIP, "9001")
	gwSinkTCP(b, w.l.External, extAddr)
	peerAddr := net.JoinHostPort(peer.ip().String(), "9001")
	gwSinkTCPIn(b, peer, peerAddr)
	rate := func(addr string) float64 {
		var rs []float64
		for i := 0; i < 3; i++ {
			d, err := gwSend(w.ctr, addr, size)
			if err != nil {
				b.Fatal(err)
			}
			rs = append(rs, float64(size)*8/d.Seconds()/1e6)
		}
		sort.Float64s(rs)
		return rs[1]
	}
	ext, c2c := rate(extAddr), rate(peerAddr)
	connect := func(addr string) time.Duration {
		var ds []time.Duration
		for i := 0; i < 200; i++ {
			err := w.ctr.ns.Do(func(ns.NetNS) error {
				t0 := time.Now()
				c, err := net.DialTimeout("tcp4", addr, 2*time.Second)
				if err != nil {
					return err
				}
				ds = append(ds, time.Since(t0))
				return c.Close()
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		return percentile(ds, 50)
	}
	cExt, cC2C := connect(extAddr), connect(peerAddr)
	b.Logf("egress through the gateway %.0f Mbit/s, container to container (n3 -> n1) %.0f Mbit/s, ratio %.2f; TCP connect p50 %d us through the gateway, %d us container to container (load %s)",
		ext, c2c, ext/c2c, cExt.Microseconds(), cC2C.Microseconds(), loadavg())
	b.ReportMetric(ext, "egress-Mbit/s")
	b.ReportMetric(c2c, "c2c-Mbit/s")
	b.ReportMetric(ext/c2c, "egress/c2c")
	b.ReportMetric(float64(cExt.Microseconds()), "egress-connect-us")
	b.ReportMetric(float64(cC2C.Microseconds()), "c2c-connect-us")
	b.ReportMetric(0, "ns/op")
}

// gwSinkTCP accepts connections on addr in the outside namespace and reads
// each to the end.
func gwSinkTCP(t testing.TB, x *lab.External, addr string) {
	t.Helper()
	var ln net.Listener
	if err := x.Do(func() error { var err error; ln, err = net.Listen("tcp4", addr); return err }); err != nil {
		t.Fatal(err)
	}
	gwServeSink(t, ln)
}

// gwSinkTCPIn is gwSinkTCP in a container.
func gwSinkTCPIn(t testing.TB, c *container, addr string) {
	t.Helper()
	var ln net.Listener
	if err := c.ns.Do(func(ns.NetNS) error { var err error; ln, err = net.Listen("tcp4", addr); return err }); err != nil {
		t.Fatal(err)
	}
	gwServeSink(t, ln)
}

func gwServeSink(t testing.TB, ln net.Listener) {
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				n, _ := io.Copy(io.Discard, c)
				var ack [8]byte
				binary.BigEndian.PutUint64(ack[:], uint64(n))
				_, _ = c.Write(ack[:])
			}()
		}
	}()
}

// gwSend sends n bytes from the container to a sink and returns the time
// until the sink acknowledged all of them.
func gwSend(c *container, addr string, n int) (time.Duration, error) {
	var d time.Duration
	err := c.ns.Do(func(ns.NetNS) error {
		conn, err := net.DialTimeout("tcp4", addr, 5*time.Second)
		if err != nil {
			return err
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(60 * time.Second))
		buf := bytes.Repeat([]byte("ovlmgr-"), 1<<14)
		t0 := time.Now()
		for sent := 0; sent < n; {
			k, err := conn.Write(buf[:min(len(buf), n-sent)])
			if err != nil {
				return fmt.Errorf("write after %d bytes: %w", sent, err)
			}
			sent += k
		}
		if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
			return err
		}
		var ack [8]byte
		if _, err := io.ReadFull(conn, ack[:]); err != nil {
			return fmt.Errorf("ack: %w", err)
		}
		d = time.Since(t0)
		if got := binary.BigEndian.Uint64(ack[:]); got != uint64(n) {
			return fmt.Errorf("sink received %d of %d bytes", got, n)
		}
		return nil
	})
	return d, err
}

// gwUDPRecv counts sequence-numbered datagrams and the longest gap between
// consecutive arrivals.
type gwUDPRecv struct {
	mu      sync.Mutex
	got     map[uint64]bool
	last    time.Time
	maxGap  time.Duration
	recent  int // datagrams since the last gap > 100 ms
	started bool
}

func gwUDPSink(t testing.TB, x *lab.External, addr string) *gwUDPRecv {
	t.Helper()
	var pc net.PacketConn
	if err := x.Do(func() error { var err error; pc, err = net.ListenPacket("udp4", addr); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	s := &gwUDPRecv{got: map[uint64]bool{}}
	go func() {
		buf := make([]byte, 64)
		for {
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if n < 8 {
				continue
			}
			now := time.Now()
			s.mu.Lock()
			s.got[binary.BigEndian.Uint64(buf[:8])] = true
			if s.started {
				gap := now.Sub(s.last)
				if gap > s.maxGap {
					s.maxGap = gap
				}
				if gap > 100*time.Millisecond {
					s.recent = 0
				}
			}
			s.recent++
			s.started, s.last = true, now
			s.mu.Unlock()
		}
	}()
	return s
}

func (s *gwUDPRecv) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got, s.maxGap, s.recent, s.started = map[uint64]bool{}, 0, 0, false
}

// sinceLast is the time since the last datagram (-1 before the first).
func (s *gwUDPRecv) sinceLast() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started {
		return -1
	}
	return time.Since(s.last)
}

// flowing: the current stream has a longest gap behind it and n datagrams
// since, and the last one is fresh.
func (s *gwUDPRecv) flowing(n int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxGap > 100*time.Millisecond && s.recent >= n && time.Since(s.last) < 100*time.Millisecond
}

func (s *gwUDPRecv) stats() (time.Duration, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxGap, len(s.got)
}

// gwUDPStream sends a datagram with a sequence number every interval from
// the container to addr until the returned stop is called, which returns
// how many were sent.
func gwUDPStream(t testing.TB, c *container, addr string, interval time.Duration) func() int {
	t.Helper()
	var conn net.Conn
	if err := c.ns.Do(func(ns.NetNS) error { var err error; conn, err = net.Dial("udp4", addr); return err }); err != nil {
		t.Fatal(err)
	}
	var sent atomic.Int64
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tk := time.NewTicker(interval)
		defer tk.Stop()
		var b [8]byte
		for seq := uint64(0); ; seq++ {
			select {
			case <-done:
				return
			case <-tk.C:
			}
			binary.BigEndian.PutUint64(b[:], seq)
			_, _ = conn.Write(b[:])
			sent.Add(1)
		}
	}()
	return func() int {
		close(done)
		<-finished
		conn.Close()
		return int(sent.Load())
	}
}
