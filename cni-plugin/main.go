// Command ovlmgr-cni is the CNI plugin that puts containers on ovlmgr
// overlay networks (OVN logical switch ports, veths plugged into br-int).
package main

import (
	"github.com/containernetworking/cni/pkg/skel"

	"github.com/ovlmgr/ovlmgr/cni-plugin/plugin"
)

func main() {
	if plugin.RefillMain() { // the detached pool refill an ADD started
		return
	}
	// No "about" text: without CNI_COMMAND the plugin answers with CNI
	// error code 4 (invalid environment) as a runtime expects.
	skel.PluginMainFuncs(plugin.Funcs(), plugin.VersionInfo(), "")
}
