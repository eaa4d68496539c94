package lab

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTLSDefault: a lab is a TLS lab unless it asks for a plain one
// (Options.Insecure, OVLMGR_LAB_INSECURE=1; Options.TLS wins over the
// variable); a TLS lab without an ovlmgr binary for its control service is
// refused with ErrNoControlBin; TLS and Insecure together are refused; the
// nodes of a routed TLS lab leave the path MTU to the admin (the control
// service lets no node write NB_Global), those of a plain one record it at
// join.
func TestTLSDefault(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "ovlmgr")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvInsecure, "")
	t.Setenv(EnvControlBin, "")
	routed := func(o Options) Options {
		o.Nodes, o.Underlays, o.WANMTU, o.Gateways, o.Dir = 4, 2, 1400, []string{"none"}, "/tmp/x"
		return o
	}
	o := routed(Options{ControlBin: bin})
	if err := o.defaults(); err != nil {
		t.Fatal(err)
	}
	l := plan(o)
	if l.TLS == nil || l.TLS.ControlBin != bin || !strings.HasPrefix(l.SBTCP, "ssl:") || !l.nodesUseControl() || l.nodeNB() != l.TLS.ControlNB {
		t.Fatalf("default lab: TLS %+v, SB %s, nodes' NB %s; want a TLS lab with the control service from %s as the nodes' NB", l.TLS, l.SBTCP, l.nodeNB(), bin)
	}
	if l.joinPathMTU() != 0 {
		t.Errorf("TLS lab: nodes record path MTU %d at join; want 0 (the admin records it)", l.joinPathMTU())
	}
	if env := strings.Join(l.Nodes[0].Env, " "); !strings.Contains(env, "OVLMGR_CERT="+filepath.Join(l.Nodes[0].Dir, "pki", "n1.pem")) {
		t.Errorf("n1's environment %s; want its certificate", env)
	}
	o = routed(Options{})
	if err := o.defaults(); !errors.Is(err, ErrNoControlBin) {
		t.Errorf("TLS lab without a control binary: %v; want ErrNoControlBin", err)
	}
	t.Setenv(EnvControlBin, bin)
	o = routed(Options{})
	if err := o.defaults(); err != nil || o.ControlBin != bin {
		t.Errorf("control binary from %s: %q, %v; want %s", EnvControlBin, o.ControlBin, err, bin)
	}
	o = routed(Options{TLS: true, Insecure: true})
	if err := o.defaults(); err == nil || !strings.Contains(err.Error(), "TLS and Insecure together") {
		t.Errorf("TLS and Insecure: %v; want refused", err)
	}
	t.Setenv(EnvInsecure, "1")
	o = routed(Options{})
	if err := o.defaults(); err != nil || !o.Insecure {
		t.Fatalf("%s=1: insecure %v, %v; want a plain lab", EnvInsecure, o.Insecure, err)
	}
	if l := plan(o); l.TLS != nil || !strings.HasPrefix(l.SBTCP, "tcp:") || l.joinPathMTU() != 1400 || l.nodeNB() != l.NB {
		t.Errorf("plain lab: TLS %+v, SB %s, join path MTU %d, nodes' NB %s; want plain TCP, 1400, the NB", l.TLS, l.SBTCP, l.joinPathMTU(), l.nodeNB())
	}
	o = routed(Options{TLS: true})
	if err := o.defaults(); err != nil || o.Insecure {
		t.Errorf("Options.TLS with %s=1: insecure %v, %v; want a TLS lab", EnvInsecure, o.Insecure, err)
	}
}
