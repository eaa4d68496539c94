package node

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// VswitchdHeapTunables is the GLIBC_TUNABLES setting ovs-vswitchd should run
// with on a userspace datapath node whose ports carry jumbo frames. OVS 3.1
// reads a port in batches of 32 frames into buffers of the port's MTU and
// frees the ones a batch did not fill; at MTU 9000 that is more than glibc's
// default 128 KiB trim threshold, so the heap is shrunk (brk, a TLB flush on
// every core) and grown again (page faults) on every poll: 230,000-360,000
// brk calls in one BenchmarkThroughput run against about 520 with this
// setting, and 1.3-2.3x the datapath's CPU a byte across nodes (docs/cni.md,
// Throughput). A 16 MiB threshold keeps those pages in the heap.
const VswitchdHeapTunables = "glibc.malloc.trim_threshold=16777216"

// rxBatch is OVS's NETDEV_MAX_BURST, the frames one receive call reads.
const rxBatch = 32

// defaultTrimThreshold is glibc's M_TRIM_THRESHOLD when nothing sets it.
const defaultTrimThreshold = 128 << 10

// rxBufOverhead is what a receive buffer holds beyond the MTU: OVS's
// headroom and packet header, about 300 bytes.
const rxBufOverhead = 300

// HeapTrimMTU is the smallest MTU at which a receive batch's buffers pass
// glibc's default trim threshold.
const HeapTrimMTU = defaultTrimThreshold/rxBatch - rxBufOverhead

// HeapTrimWarning says how to start ovs-vswitchd when datapath is "netdev",
// mtu (the encap interface's) is at least HeapTrimMTU and environ
// (ovs-vswitchd's environment, as in /proc/PID/environ) leaves glibc's trim
// threshold at or below one receive batch; "" otherwise.
func HeapTrimWarning(datapath string, mtu int, environ []string) string {
	if datapath != "netdev" || mtu < HeapTrimMTU {
		return ""
	}
	trim := trimThreshold(environ)
	if trim > rxBatch*(mtu+rxBufOverhead) {
		return ""
	}
	return fmt.Sprintf("ovs-vswitchd runs with a glibc heap trim threshold of %d bytes (128 KiB unless GLIBC_TUNABLES sets it) on a node whose encap interface has MTU %d: "+
		"the userspace datapath's receive batches (32 buffers of the MTU) shrink and regrow its heap on every poll (brk calls and TLB flushes; "+
		"1.3-2.3x the CPU a byte across nodes measured at MTU 9000); start ovs-vswitchd with GLIBC_TUNABLES=%s "+
		"(on Debian: a line `GLIBC_TUNABLES=%s` in /etc/default/openvswitch-switch), then restart it", trim, mtu, VswitchdHeapTunables, VswitchdHeapTunables)
}

// trimThreshold is the malloc trim threshold environ gives a glibc program
// (GLIBC_TUNABLES' glibc.malloc.trim_threshold, or the older
// MALLOC_TRIM_THRESHOLD_), or glibc's default.
func trimThreshold(environ []string) int {
	n := defaultTrimThreshold
	parse := func(v string) {
		if x, err := strconv.ParseUint(v, 0, 63); err == nil {
			n = int(x)
		}
	}
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "MALLOC_TRIM_THRESHOLD_":
			parse(v)
		case "GLIBC_TUNABLES":
			for _, t := range strings.Split(v, ":") {
				if name, val, ok := strings.Cut(t, "="); ok && name == "glibc.malloc.trim_threshold" {
					parse(val)
				}
			}
		}
	}
	return n
}

// VswitchdHeapWarning is HeapTrimWarning for the ovs-vswitchd whose pidfile
// is in runDir (its OVS_RUNDIR, where ovs-ctl and the lab put the database
// socket too); "" when that process cannot be read.
func VswitchdHeapWarning(datapath, runDir string, mtu int) string {
	pid, err := os.ReadFile(filepath.Join(runDir, "ovs-vswitchd.pid"))
	if err != nil {
		return ""
	}
	env, err := os.ReadFile("/proc/" + strings.TrimSpace(string(pid)) + "/environ")
	if err != nil {
		return ""
	}
	return HeapTrimWarning(datapath, mtu, strings.Split(string(env), "\x00"))
}
