package main

import (
	"errors"
	"strings"

	"github.com/ovlmgr/ovlmgr/ovn/names"
	"github.com/ovlmgr/ovlmgr/ovn/network"
	"github.com/ovlmgr/ovlmgr/ovn/router"
	"github.com/ovlmgr/ovlmgr/ovs/node"
	"github.com/ovlmgr/ovlmgr/ovs/nodegc"
)

// flagOf maps the inputs named by library errors (*names.FieldError: spec
// fields and config keys, in domain terms) to the flags that set them. It
// is the one place where the CLI puts its flag names into library errors.
var flagOf = map[string]string{
	"network":             "--net",
	"router":              "--router",
	"subnet":              "--subnet",
	"ipv6 subnet":         "--subnet",
	"gateway":             "--gateway",
	"exclude":             "--exclude",
	"mtu":                 "--mtu",
	"label":               "--label",
	"domain":              "--domain",
	"isolation":           "--isolation",
	"container names":     "--container-names",
	"allow":               "--allow",
	"vip":                 "--vip",
	"backend":             "--backend",
	"selector":            "--selector",
	"health check":        "--health-check",
	"target port":         "--target-port",
	"deny":                "--deny",
	"proto":               "--proto",
	"port":                "--port",
	"from":                "--from",
	"priority":            "--priority",
	"source ip":           "--src-ip",
	"source mac":          "--src-mac",
	"datapath":            "--datapath",
	"southbound endpoint": "--sb",
	"northbound endpoint": "--nb",
	"encap ip":            "--encap-ip",
	"path mtu":            "--path-mtu",
	"transit ip":          "--ip",
	"transit switch":      "--transit",
	"gateway nodes":       "--nodes",
	"system id":           "--system-id",
	"hostname":            "--hostname",
	"may exist":           "--may-exist",
	"node trace":          "--on-node",
	"container":           "--container",
	"external net":        "--external-net",
	"external ip":         "--ip",
	"next hop":            "--next-hop",
	"external net6":       "--external-net6",
	"external ip6":        "--ip6",
	"next hop6":           "--next-hop6",
	"nodes":               "--nodes",
	"physnet":             "--physnet",
	"no snat":             "--no-snat",
	"external interface":  "--external-iface",
	"external bridge":     "--external-bridge",
}

// flagName is the flag of a library input, or the input's own name when no
// flag sets it.
func flagName(field string) string {
	if f, ok := flagOf[field]; ok {
		return f
	}
	return field
}

// withFlagHints renders err as the CLI shows it: each input a library
// error names (a *names.FieldError in its chain) is named by its flag.
func withFlagHints(err error) string {
	msg := err.Error()
	for _, fe := range fieldErrors(err) {
		msg = strings.Replace(msg, fe.Error(), fe.Render(flagName), 1)
	}
	if h := flagHint(err); h != "" {
		msg += " (" + h + ")"
	}
	return msg
}

// flagHint is what the CLI adds to a refusal a flag overrides.
func flagHint(err error) string {
	var inUse *network.PortsInUseError
	switch {
	case errors.Is(err, router.ErrAttached):
		return "detach them, or use --force to detach and delete"
	case errors.As(err, &inUse):
		return "remove the containers, or use --force to delete the ports too"
	case errors.Is(err, node.ErrOtherRemote):
		return "use --force to replace it"
	case errors.Is(err, node.ErrBridgeInUse):
		return "or use --force"
	case errors.Is(err, nodegc.ErrNoNB):
		return "give one with --nb"
	}
	return ""
}

// fieldErrors returns the *names.FieldError values in err's chain (and
// trees, for joined errors).
func fieldErrors(err error) []*names.FieldError {
	var out []*names.FieldError
	var walk func(error)
	walk = func(e error) {
		for e != nil {
			if fe, ok := e.(*names.FieldError); ok {
				out = append(out, fe)
			}
			switch u := e.(type) {
			case interface{ Unwrap() []error }:
				for _, x := range u.Unwrap() {
					walk(x)
				}
				return
			default:
				e = errors.Unwrap(e)
			}
		}
	}
	walk(err)
	return out
}
