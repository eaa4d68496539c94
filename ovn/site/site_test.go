package site_test

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"

	"github.com/ovlmgr/ovlmgr/lab/ovsdbtest"
	"github.com/ovlmgr/ovlmgr/lab/prereq"
	"github.com/ovlmgr/ovlmgr/ovn/icnbdb"
	"github.com/ovlmgr/ovlmgr/ovn/names"
	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/network"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
	"github.com/ovlmgr/ovlmgr/ovn/router"
	"github.com/ovlmgr/ovlmgr/ovn/site"
)

// deployment is one site's NB (with the NB_Global row ovn-northd would
// make) and a router r1 with one network.
func deployment(t *testing.T, ctx context.Context, subnet string) client.Client {
	t.Helper()
	srv := ovsdbtest.StartNB(t)
	nb, err := dbconn.ConnectNB(ctx, srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nb.Close)
	tx := dbops.NewTx(nb)
	tx.Create(&nbdb.NBGlobal{})
	if err := tx.Transact(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := router.Create(ctx, nb, "r1", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := network.Create(ctx, nb, network.Spec{Name: "net" + strings.ReplaceAll(strings.Split(subnet, "/")[0], ".", ""), Subnet: subnet, Router: "r1"}); err != nil {
		t.Fatal(err)
	}
	return nb
}

// TestJoinAndLink on real ovsdb-servers (two sites' NBs and the global
// IC-NB; no ovn-ic): join names the zone and turns route exchange on, and
// refuses another name; a link needs a joined site, publishes the router's
// subnets on the transit switch (created in IC-NB), and fails naming
// ovn-ic when the transit switch never appears in the site's NB; a second
// site's link with an overlapping subnet is refused naming the first
// site's router before anything is written.
func TestJoinAndLink(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	prereq.Files(t, "/usr/share/ovn/ovn-ic-nb.ovsschema", "/usr/share/ovn/ovn-ic-sb.ovsschema")
	icSrv := ovsdbtest.Start(t, "/usr/share/ovn/ovn-ic-nb.ovsschema")
	icnb, err := dbconn.ConnectICNB(ctx, icSrv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(icnb.Close)
	a := deployment(t, ctx, "198.19.1.0/24")
	b := deployment(t, ctx, "198.19.1.128/25")
	spec := site.LinkSpec{Router: "r1", Transit: "ts1", IP: netip.MustParsePrefix("198.18.254.1/24"), Nodes: []string{"a-n1"}, Wait: 200 * time.Millisecond}
	if _, err := site.LinkRouter(ctx, a, icnb, spec); !errors.Is(err, site.ErrNotJoined) {
		t.Fatalf("link before join: %v, want ErrNotJoined", err)
	}
	if err := site.Join(ctx, a, "east"); err != nil {
		t.Fatal(err)
	}
	gs, err := dbops.SelectRows[nbdb.NBGlobal](ctx, a, nil)
	if err != nil || gs[0].Name != "east" || gs[0].Options[site.OptRouteAdv] != "true" || gs[0].Options[site.OptRouteLearn] != "true" {
		t.Fatalf("NB_Global after join: %+v, %v", gs, err)
	}
	var fe *names.FieldError
	if err := site.Join(ctx, a, "west"); !errors.As(err, &fe) || !strings.Contains(err.Error(), `already site "east"`) {
		t.Fatalf("join as west after east: %v, want a refusal naming east", err)
	}
	if _, err := site.LinkRouter(ctx, a, icnb, spec); !errors.Is(err, site.ErrNoTransit) {
		t.Fatalf("link without ovn-ic: %v, want ErrNoTransit", err)
	}
	tss, err := dbops.SelectRows[icnbdb.TransitSwitch](ctx, icnb, nil)
	if err != nil || len(tss) != 1 || tss[0].ExternalIDs[site.KeySubnets+"east/r1"] != "198.19.1.0/24" {
		t.Fatalf("IC-NB transit switches after link: %+v, %v; want ts1 with east/r1's subnets", tss, err)
	}
	from, err := site.ResolveFrom(ctx, icnb, []string{"east/net1981910", "198.19.9.0/24", "web", "any"})
	if err != nil || strings.Join(from, " ") != "198.19.1.0/24 198.19.9.0/24 web any" {
		t.Fatalf("ResolveFrom: %v, %v; want east's network as its subnet, the rest as given", from, err)
	}
	if _, err := site.ResolveFrom(ctx, icnb, []string{"east/nope"}); !errors.As(err, &fe) || fe.Field != "from" || !strings.Contains(err.Error(), "known: east/net1981910") {
		t.Fatalf("ResolveFrom(east/nope): %v; want a FieldError on from listing east/net1981910", err)
	}
	if err := site.Join(ctx, b, "west"); err != nil {
		t.Fatal(err)
	}
	spec.IP = netip.MustParsePrefix("198.18.254.2/24")
	_, err = site.LinkRouter(ctx, b, icnb, spec)
	if !errors.Is(err, site.ErrOverlap) || !strings.Contains(err.Error(), "198.19.1.128/25 overlaps 198.19.1.0/24 of router r1 in site east") {
		t.Fatalf("west's overlapping link: %v, want ErrOverlap naming east's r1", err)
	}
	links, err := site.Links(ctx, b)
	if err != nil || len(links) != 0 {
		t.Fatalf("west's links after the refusal: %v, %v; want none", links, err)
	}
}
