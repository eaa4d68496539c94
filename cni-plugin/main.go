// Command ovlmgr-cni is the CNI plugin that puts containers on ovlmgr
// overlay networks (OVN logical switch ports, veths plugged into br-int).
// `ovlmgr-cni serve` runs the node's CNI server (see cni-plugin/plugin).
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/containernetworking/cni/pkg/skel"

	"github.com/ovlmgr/ovlmgr/cni-plugin/plugin"
)

func main() {
	if plugin.RefillMain() { // the detached pool refill an ADD started
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		os.Exit(serve(os.Args[2:]))
	}
	plugin.SetOneVerbGC()
	// No "about" text: without CNI_COMMAND the plugin answers with CNI
	// error code 4 (invalid environment) as a runtime expects.
	skel.PluginMainFuncs(plugin.Funcs(), plugin.VersionInfo(), "")
}

// serve runs the node's CNI server until SIGTERM or SIGINT.
func serve(args []string) int {
	fs := flag.NewFlagSet("ovlmgr-cni serve", flag.ContinueOnError)
	ovs := fs.String("ovs", "", "the node's Open_vSwitch db, unix:PATH (default $OVS_RUNDIR/db.sock, /var/run/openvswitch/db.sock); the server's socket goes beside it")
	pidfile := fs.String("pidfile", "", "write the server's PID to this file once it listens (removed when it exits)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "ovlmgr-cni serve: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	lg := log.New(os.Stderr, "ovlmgr-cni serve: ", log.LstdFlags)
	s := &plugin.Server{OVS: *ovs, Log: lg.Printf}
	var pidErr error
	if *pidfile != "" {
		s.Listening = func(string) {
			if pidErr = os.WriteFile(*pidfile, []byte(fmt.Sprintf("%d\n", os.Getpid())), 0o644); pidErr != nil {
				lg.Printf("pidfile: %v", pidErr)
				stop()
			}
		}
		defer os.Remove(*pidfile)
	}
	if err := s.Serve(ctx); err != nil {
		lg.Print(err)
		return 1
	}
	if pidErr != nil {
		return 1
	}
	return 0
}
