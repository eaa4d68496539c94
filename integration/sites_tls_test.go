package integration

import (
	"context"
	"crypto/tls"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"

	"github.com/ovlmgr/ovlmgr/lab"
	"github.com/ovlmgr/ovlmgr/lab/nsexec"
	"github.com/ovlmgr/ovlmgr/lab/prereq"
	"github.com/ovlmgr/ovlmgr/ovn/icnbdb"
	"github.com/ovlmgr/ovlmgr/ovn/icsbdb"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/pki"
)

// TestSitesTLSRefused: in a TLS multi-site lab (one node per site), from
// site 1's router namespace (where its ovn-ic runs) over the WAN, the
// global IC-NB and IC-SB refuse plain TCP, an admin certificate of another
// CA and a node's certificate (site 2's node CA); the admin certificates of
// both sites and site 1's ovn-ic certificate open both. `ovlmgr site init`,
// `list`, `sync`, `link` and `unlink` work on the ssl: endpoints with the
// global --ca-cert/--cert/--private-key, and `site list` fails without
// them. (Each site's ovn-ic registered over ssl: before UpSites returned:
// the IC databases listen on nothing else.)
func TestSitesTLSRefused(t *testing.T) {
	needLab(t)
	prereq.Bins(t, "ovn-ic")
	prereq.Files(t, "/usr/share/ovn/ovn-ic-nb.ovsschema", "/usr/share/ovn/ovn-ic-sb.ovsschema")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	ss, err := lab.UpSites(ctx, lab.SitesOptions{Name: uniqueName("ict"), Sites: 2, Nodes: 1, TLS: true,
		ControlBin: filepath.Join(cniPluginDir(t), "ovlmgr")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ss.Down(context.Background()); err != nil {
			t.Errorf("sites down: %v", err)
		}
	})
	a, b := ss.Site(1), ss.Site(2)
	if ss.TLS == nil || !strings.HasPrefix(ss.ICNBTCP, "ssl:") || !strings.HasPrefix(ss.ICSBTCP, "ssl:") {
		t.Errorf("TLS multi-site lab: IC endpoints %s %s, want ssl:", ss.ICNBTCP, ss.ICSBTCP)
	}
	nbm, err := icnbdb.FullDatabaseModel()
	if err != nil {
		t.Fatal(err)
	}
	sbm, err := icsbdb.FullDatabaseModel()
	if err != nil {
		t.Fatal(err)
	}
	wan := func(scheme, port string) string { return scheme + ":" + lab.GlobalIP + ":" + port }
	plainNB, plainSB := wan("tcp", lab.ICNBPort), wan("tcp", lab.ICSBPort)
	sslNB, sslSB := wan("ssl", lab.ICNBPort), wan("ssl", lab.ICSBPort)

	rogue := t.TempDir()
	if err := pki.Init(rogue, 0, false); err != nil {
		t.Fatal(err)
	}
	rf, _, err := pki.IssueTo(rogue, filepath.Join(rogue, "admin"), pki.Request{Name: "admin", Role: pki.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(rf.Cert, rf.Key)
	if err != nil {
		t.Fatal(err)
	}
	adminA, adminB := tlsFor(t, a.AdminTLS()), tlsFor(t, b.AdminTLS())
	rogueCfg := &tls.Config{RootCAs: adminA.RootCAs, Certificates: []tls.Certificate{pair}}
	nodeB := tlsFor(t, b.Nodes[0].TLSFiles())
	nodeB.RootCAs = adminA.RootCAs // trusts the global servers: only they can refuse
	// Present it even though the servers ask for the control CA's clients.
	nodeB.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &nodeB.Certificates[0], nil }

	for _, tc := range []struct {
		what string
		m    model.ClientDBModel
		ep   string
		cfg  *tls.Config
		ok   bool
	}{
		{"plain TCP to IC-NB", nbm, plainNB, nil, false},
		{"plain TCP to IC-SB", sbm, plainSB, nil, false},
		{"another CA's admin to IC-NB", nbm, sslNB, rogueCfg, false},
		{"site 2's node to IC-SB", sbm, sslSB, nodeB, false},
		{"site 1's admin to IC-NB", nbm, sslNB, adminA, true},
		{"site 1's admin to IC-SB", sbm, sslSB, adminA, true},
		{"site 2's admin to IC-NB", nbm, sslNB, adminB, true},
		{"site 1's ovn-ic to IC-SB", sbm, sslSB, tlsFor(t, ss.ICTLS(a)), true},
	} {
		c, err := connectFromNS(ctx, a.RouterNetNS, tc.m, tc.ep, tc.cfg)
		if err == nil {
			// A refused TLS client may connect and lose the connection on
			// its first call: read something.
			if tc.m.Name() == nbm.Name() {
				var rows []*icnbdb.ICNBGlobal
				err = dbconn.Select(ctx, c, &icnbdb.ICNBGlobal{}, &rows)
			} else {
				var rows []*icsbdb.AvailabilityZone
				err = dbconn.Select(ctx, c, &icsbdb.AvailabilityZone{}, &rows)
			}
			c.Close()
		}
		judgeConnect(t, tc.what, tc.ok, err)
	}

	// The CLI over the WAN, from site 1's router namespace.
	bin := filepath.Join(cniPluginDir(t), "ovlmgr")
	f := a.AdminTLS()
	ic := []string{"--ic-nb", sslNB, "--ic-sb", sslSB}
	run := func(withTLS bool, args ...string) (string, error) {
		full := []string{"--timeout", "5s", "--nb", a.NB} // the site's NB: its unix socket
		if withTLS {
			full = append(full, "--ca-cert", f.CA, "--cert", f.Cert, "--private-key", f.Key)
		}
		// Nothing from the environment: only the flags.
		env := []string{dbconn.EnvCACert + "=", dbconn.EnvCert + "=", dbconn.EnvPrivateKey + "="}
		out, err := nsexec.Command(ctx, a.RouterNetNS, env, bin, append(full, args...)...).CombinedOutput()
		return string(out), err
	}
	if out, err := run(true, append([]string{"site", "init"}, ic...)...); err != nil {
		t.Errorf("site init over ssl: %v: %s", err, out)
	}
	out, err := run(true, append([]string{"site", "list"}, ic...)...)
	if err != nil || !strings.Contains(out, a.Name) || !strings.Contains(out, b.Name) {
		t.Errorf("site list over ssl: %v: %q, want sites %s and %s", err, out, a.Name, b.Name)
	}
	if out, err := run(true, append([]string{"site", "sync"}, ic...)...); err != nil {
		t.Errorf("site sync over ssl: %v: %s", err, out)
	}
	// link and unlink write IC-NB over ssl: (and wait for site 1's ovn-ic,
	// itself on ssl:, to key the transit port).
	if out, err := run(true, "router", "create", "r1"); err != nil {
		t.Fatalf("router create: %v: %s", err, out)
	}
	link := append([]string{"site", "link", "r1", "--transit", "ts1", "--ip", "198.18.254.1/24", "--nodes", a.Nodes[0].SystemID}, ic...)
	if out, err := run(true, link...); err != nil {
		t.Errorf("site link over ssl: %v: %s", err, out)
	}
	if out, err := run(true, append([]string{"site", "unlink", "r1", "--transit", "ts1"}, ic...)...); err != nil {
		t.Errorf("site unlink over ssl: %v: %s", err, out)
	}
	if out, err := run(false, append([]string{"site", "list"}, ic...)...); err == nil || !strings.Contains(out, "--ca-cert") {
		t.Errorf("site list over ssl: without certificates: %v %q, want an error naming --ca-cert", err, out)
	}
}

// connectFromNS connects a database at ep from the network namespace at
// nsPath with cfg (nil: plain TCP).
func connectFromNS(ctx context.Context, nsPath string, m model.ClientDBModel, ep string, cfg *tls.Config) (client.Client, error) {
	var c client.Client
	err := ns.WithNetNSPath(nsPath, func(ns.NetNS) error {
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		var err error
		c, err = dbconn.Connect(cctx, m, ep, dbconn.Options{TLS: cfg})
		return err
	})
	return c, err
}
