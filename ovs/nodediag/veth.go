package nodediag

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/safchain/ethtool"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// ContainerSide is the container end of a host-side veth.
type ContainerSide struct {
	// NetNS is a path that opens the container's network namespace.
	NetNS string `json:"netns"`
	Name  string `json:"name"`
	Index int    `json:"index"`
	MTU   int    `json:"mtu"`
}

// handleAt returns a netlink handle in the namespace at path ("" = current).
func handleAt(path string) (*netlink.Handle, error) {
	if path == "" {
		return netlink.NewHandle()
	}
	h0, err := netns.GetFromPath(path)
	if err != nil {
		return nil, fmt.Errorf("open network namespace %s: %w", path, err)
	}
	defer h0.Close()
	h, err := netlink.NewHandleAt(h0)
	if err != nil {
		return nil, fmt.Errorf("netlink in %s: %w", path, err)
	}
	return h, nil
}

// inNS runs f in the namespace at path ("" = current).
func inNS(path string, f func() error) error {
	if path == "" {
		return f()
	}
	return ns.WithNetNSPath(path, func(ns.NetNS) error { return f() })
}

// nsCandidates lists paths of network namespaces that may hold container
// ends: named namespaces and those of running processes, each namespace once.
func nsCandidates() []string {
	var out []string
	seen := map[uint64]bool{}
	add := func(p string) {
		var st syscall.Stat_t
		if err := syscall.Stat(p, &st); err != nil || seen[st.Ino] {
			return
		}
		seen[st.Ino] = true
		out = append(out, p)
	}
	for _, dir := range []string{"/var/run/netns", "/run/netns"} {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			add(filepath.Join(dir, e.Name()))
		}
	}
	procs, _ := os.ReadDir("/proc")
	for _, e := range procs {
		if n := e.Name(); n[0] >= '0' && n[0] <= '9' {
			add(filepath.Join("/proc", n, "ns", "net"))
		}
	}
	return out
}

// findContainerSide finds the peer of veth host (a link in h's namespace):
// the namespace h knows under the veth's link-netnsid, and the link with the
// peer index there.
func findContainerSide(h *netlink.Handle, host netlink.Link, cands []string) (*ContainerSide, error) {
	a := host.Attrs()
	if a.NetNsID < 0 {
		return nil, fmt.Errorf("veth %s: its peer is in the same namespace", a.Name)
	}
	for _, p := range cands {
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		id, err := h.GetNetNsIdByFd(int(f.Fd()))
		f.Close()
		if err != nil || id != a.NetNsID {
			continue
		}
		ph, err := handleAt(p)
		if err != nil {
			return nil, err
		}
		l, err := ph.LinkByIndex(a.ParentIndex)
		ph.Close()
		if err != nil {
			return nil, fmt.Errorf("veth %s: peer index %d in %s: %w", a.Name, a.ParentIndex, p, err)
		}
		return &ContainerSide{NetNS: p, Name: l.Attrs().Name, Index: l.Attrs().Index, MTU: l.Attrs().MTU}, nil
	}
	return nil, fmt.Errorf("veth %s: the container's network namespace was not found", a.Name)
}

// FindContainerSide finds the container end of the host-side veth hostIf in
// the node namespace nodeNS ("" = current).
func FindContainerSide(nodeNS, hostIf string) (*ContainerSide, error) {
	h, err := handleAt(nodeNS)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	l, err := h.LinkByName(hostIf)
	if err != nil {
		return nil, fmt.Errorf("find %s: %w", hostIf, err)
	}
	return findContainerSide(h, l, nsCandidates())
}

// txChecksumOn reports the TX checksum offload features that are on for
// link name in the namespace at path.
func txChecksumOn(path, name string) ([]string, error) {
	var on []string
	err := inNS(path, func() error {
		e, err := ethtool.NewEthtool()
		if err != nil {
			return err
		}
		defer e.Close()
		feats, err := e.Features(name)
		if err != nil {
			return fmt.Errorf("ethtool features of %s: %w", name, err)
		}
		for k, v := range feats {
			if v && strings.HasPrefix(k, "tx-checksum") {
				on = append(on, k)
			}
		}
		return nil
	})
	return on, err
}
