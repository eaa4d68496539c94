package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/ovlmgr/ovlmgr/ovs/attach"
	"github.com/ovlmgr/ovlmgr/ovs/cnistats"
)

// Funcs returns the verbs for skel.PluginMainFuncs.
func Funcs() skel.CNIFuncs {
	return skel.CNIFuncs{Add: recorded(cnistats.Add, CmdAdd), Del: recorded(cnistats.Del, CmdDel),
		Check: recorded(cnistats.Check, CmdCheck), Status: recorded(cnistats.Status, CmdStatus), GC: recorded(cnistats.GC, CmdGC)}
}

// CmdAdd is CNI ADD: forwarded to the node's CNI server when one listens
// (serve.go), else add here; the result is printed in the config's version.
func CmdAdd(args *skel.CmdArgs) error {
	c, err := ParseConfig(args.StdinData)
	if err != nil {
		return err
	}
	if served, err := forward(verbAdd, args, c); served {
		return err
	}
	out, after, err := add(context.Background(), args, c, nil, nil)
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(out)
	after(err == nil)
	return err
}

// add runs ADD for args (config c): Attach, then the result (appended to
// any prevResult) in the config's version. sess lends the node's database
// connections (the CNI server) or is nil. after, called once the result is
// out (with whether it went out), refills this node's pool and closes what
// Attach left to close: with refill (the server's), else in a detached
// child of this process.
func add(ctx context.Context, args *skel.CmdArgs, c *Config, sess *attach.Session,
	refill func(*attach.Session, *Config, []*os.File)) (out []byte, after func(sent bool), err error) {
	log := newLogger(c, "ADD", args.ContainerID, args.IfName)
	start := time.Now()
	defer func() {
		if err != nil {
			log.Errorf("%v", err)
			log.close()
		} else {
			log.Infof("done in %s", time.Since(start).Round(time.Millisecond))
		}
	}()
	req, err := parseRequest(c, args.Args)
	if err != nil {
		return nil, nil, err
	}
	prev, err := resultFromPrev(c)
	if err != nil {
		return nil, nil, err
	}
	a, err := attach.Attach(ctx, attach.AttachRequest{Network: c.Network, NB: c.NB, OVS: c.OVS, MTU: c.MTU, ReadyTimeout: c.ReadyTimeout.Duration,
		ContainerID: args.ContainerID, IfName: args.IfName, NetNS: args.Netns, IP: req.IP, IP6: req.IP6, MAC: req.MAC,
		Aliases: c.RuntimeConfig.Aliases, PodName: req.PodName, Labels: c.RuntimeConfig.Labels,
		PortMappings: c.RuntimeConfig.PortMappings, Config: c.Name, Session: sess}, log)
	if err != nil {
		return nil, nil, cniError(err)
	}
	out, err = printed(resultOf(a, prev), c.CNIVersion)
	if err != nil {
		closeAll(a.Linger)
		return nil, nil, err
	}
	// This node's pool of the network back to size, unless the ADD asked
	// for its own address or MAC (it took no pool port).
	pooled := !req.IP.IsValid() && !req.IP6.IsValid() && req.MAC == nil
	return out, func(sent bool) {
		defer log.close()
		if pooled && sent {
			if refill != nil {
				refill(sess, c, a.Linger)
				return
			}
			// The child also takes the files whose close would hold up ADD's exit.
			spawnRefill(c, log, a.Linger)
		}
		closeAll(a.Linger)
	}, nil
}

// resultOf is the CNI result of an attachment, appended to prev if any.
func resultOf(a *attach.Attachment, prev *current.Result) *current.Result {
	res := &current.Result{CNIVersion: current.ImplementedSpecVersion}
	if prev != nil {
		res = prev
	}
	hostIdx := len(res.Interfaces)
	res.Interfaces = append(res.Interfaces,
		&current.Interface{Name: a.Host, Mac: a.HostMAC, Mtu: a.MTU},
		&current.Interface{Name: a.IfName, Mac: a.MAC, Mtu: a.MTU, Sandbox: a.NetNS})
	if a.Address.IsValid() {
		res.IPs = append(res.IPs, &current.IPConfig{
			Interface: current.Int(hostIdx + 1),
			Address:   net.IPNet{IP: a.Address.Addr().AsSlice(), Mask: net.CIDRMask(a.Address.Bits(), 32)},
			Gateway:   a.Gateway.AsSlice(),
		})
	}
	if a.Address6.IsValid() {
		ipc := &current.IPConfig{
			Interface: current.Int(hostIdx + 1),
			Address:   net.IPNet{IP: a.Address6.Addr().AsSlice(), Mask: net.CIDRMask(a.Address6.Bits(), 128)},
		}
		if a.Gateway6.IsValid() {
			ipc.Gateway = a.Gateway6.AsSlice()
		}
		res.IPs = append(res.IPs, ipc)
	}
	if len(a.Nameservers) > 0 {
		res.DNS.Nameservers = append(res.DNS.Nameservers, a.Nameservers...)
		res.DNS.Search = append(res.DNS.Search, a.Search...)
	}
	if a.Gateway.IsValid() && a.Address.IsValid() {
		res.Routes = append(res.Routes, &types.Route{Dst: net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}, GW: a.Gateway.AsSlice()})
	}
	if a.Gateway6.IsValid() {
		res.Routes = append(res.Routes, &types.Route{Dst: net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}, GW: a.Gateway6.AsSlice()})
	}
	return res
}

// printed is what types.PrintResult writes for res in version v.
func printed(res types.Result, v string) ([]byte, error) {
	r, err := res.GetAsVersion(v)
	if err != nil {
		return nil, err
	}
	return json.MarshalIndent(r, "", "    ")
}

// CmdDel is CNI DEL (attach.Detach), forwarded to the node's CNI server
// when one listens.
func CmdDel(args *skel.CmdArgs) error {
	c, err := ParseConfig(args.StdinData)
	if err != nil {
		return err
	}
	if served, err := forward(verbDel, args, c); served {
		return err
	}
	return del(context.Background(), args, c, nil)
}

// del runs DEL for args (config c); sess as for add.
func del(ctx context.Context, args *skel.CmdArgs, c *Config, sess *attach.Session) (err error) {
	log := newLogger(c, "DEL", args.ContainerID, args.IfName)
	defer log.close()
	start := time.Now()
	defer func() {
		if err != nil {
			log.Errorf("%v", err)
		} else {
			log.Infof("done in %s", time.Since(start).Round(time.Millisecond))
		}
	}()
	var ips []net.IP
	if prev, _ := resultFromPrev(c); prev != nil {
		for _, ipc := range prev.IPs {
			if v4 := ipc.Address.IP.To4(); v4 != nil {
				ips = append(ips, v4)
			} else if ipc.Address.IP != nil {
				ips = append(ips, ipc.Address.IP)
			}
		}
	}
	req, _ := parseRequest(c, args.Args) // only its pod name matters here
	return cniError(attach.Detach(ctx, attach.DetachRequest{Network: c.Network, NB: c.NB, OVS: c.OVS, Timeout: c.ReadyTimeout.Duration,
		ContainerID: args.ContainerID, IfName: args.IfName, NetNS: args.Netns, PrevIPs: ips,
		Aliases: c.RuntimeConfig.Aliases, PodName: req.PodName, Session: sess}, log))
}

// CmdCheck verifies what ADD made, from prevResult.
func CmdCheck(args *skel.CmdArgs) error {
	c, err := ParseConfig(args.StdinData)
	if err != nil {
		return err
	}
	log := newLogger(c, "CHECK", args.ContainerID, args.IfName)
	defer log.close()
	err = check(c, args)
	if err != nil {
		log.Errorf("%v", err)
	}
	return err
}

// check reads what ADD returned from prevResult: the address on the
// interface named IfName in the sandbox, and has attach.Check verify it.
func check(c *Config, args *skel.CmdArgs) error {
	prev, err := resultFromPrev(c)
	if err != nil {
		return err
	}
	if prev == nil {
		return cniErr(types.ErrInvalidNetworkConfig, "CHECK needs prevResult")
	}
	var addr, addr6 netip.Prefix
	var mac string
	mtu := 0
	for _, ipc := range prev.IPs {
		if ipc.Interface == nil || *ipc.Interface < 0 || *ipc.Interface >= len(prev.Interfaces) {
			continue
		}
		ifc := prev.Interfaces[*ipc.Interface]
		if ifc.Name == args.IfName && ifc.Sandbox != "" {
			ones, _ := ipc.Address.Mask.Size()
			if v4 := ipc.Address.IP.To4(); v4 != nil {
				a, _ := netip.AddrFromSlice(v4)
				addr, mac, mtu = netip.PrefixFrom(a, ones), ifc.Mac, ifc.Mtu
			} else if a, ok := netip.AddrFromSlice(ipc.Address.IP); ok {
				addr6, mac, mtu = netip.PrefixFrom(a, ones), ifc.Mac, ifc.Mtu
			}
		}
	}
	if !addr.IsValid() && !addr6.IsValid() {
		return cniErr(types.ErrInvalidNetworkConfig, fmt.Sprintf("prevResult has no address for interface %s", args.IfName))
	}
	return cniError(attach.Check(context.Background(), attach.CheckRequest{Network: c.Network, NB: c.NB, OVS: c.OVS, Timeout: c.ReadyTimeout.Duration,
		ContainerID: args.ContainerID, IfName: args.IfName, NetNS: args.Netns, Address: addr, Address6: addr6, MAC: mac, MTU: mtu,
		PortMappings: c.RuntimeConfig.PortMappings}))
}

// CmdStatus answers whether an ADD would work now: 0, or 50 naming why not
// (configuration errors keep their code 7).
func CmdStatus(args *skel.CmdArgs) error {
	c, err := ParseConfig(args.StdinData)
	if err != nil {
		return err
	}
	err = attach.Status(context.Background(), attach.StatusRequest{Network: c.Network, NB: c.NB, OVS: c.OVS})
	if err == nil {
		return nil
	}
	if ce := cniError(err).(*types.Error); ce.Code == types.ErrInvalidNetworkConfig {
		return ce
	}
	return cniErr(CodePluginNotAvailable, err.Error())
}

// CmdGC removes this node's ports of this network whose container ID and
// ifname are not in cni.dev/valid-attachments (or cni.dev/attachments).
func CmdGC(args *skel.CmdArgs) error {
	c, err := ParseConfig(args.StdinData)
	if err != nil {
		return err
	}
	log := newLogger(c, "GC", "-", "-")
	defer log.close()
	var valid []attach.Ref
	for _, a := range append(append([]types.GCAttachment{}, c.ValidAttachments...), c.Attachments...) {
		valid = append(valid, attach.Ref{ContainerID: a.ContainerID, IfName: a.IfName})
	}
	return cniError(attach.GC(context.Background(), attach.GCRequest{Network: c.Network, NB: c.NB, OVS: c.OVS, Timeout: c.ReadyTimeout.Duration, Valid: valid, Config: c.Name}, log))
}
