// Command prevplugin is a test CNI plugin that runs before ovlmgr-cni in a
// chain: ADD returns a fixed result (an interface and an address that exist
// nowhere), so tests can check ovlmgr-cni keeps a prevResult.
package main

import (
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
)

func main() {
	skel.PluginMainFuncs(skel.CNIFuncs{
		Add: func(args *skel.CmdArgs) error {
			n, err := types.ParseCIDR("198.18.99.1/32")
			if err != nil {
				return err
			}
			cv, err := (&version.ConfigDecoder{}).Decode(args.StdinData)
			if err != nil {
				return err
			}
			r := &current.Result{CNIVersion: current.ImplementedSpecVersion,
				Interfaces: []*current.Interface{{Name: "fake0", Mac: "0a:00:00:00:00:99"}},
				IPs:        []*current.IPConfig{{Interface: current.Int(0), Address: *n}}}
			return types.PrintResult(r, cv)
		},
		Del:   func(*skel.CmdArgs) error { return nil },
		Check: func(*skel.CmdArgs) error { return nil },
	}, version.All, "")
}
