package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/ovlmgr/ovlmgr/ovn/icsbdb"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/pki"
	"github.com/ovlmgr/ovlmgr/ovn/site"
	"github.com/ovlmgr/ovlmgr/ovs/node"
)

// A multi-site lab (`lab up --sites N`) is N complete labs (sites), each
// with its own central (NB, SB, ovn-northd) and nodes, plus the global
// OVN Interconnection databases:
//
//   - global namespace <name>-g: Linux bridge br-wan 198.18.250.1/24 (the
//     WAN between sites), IC-NB and IC-SB ovsdb-servers on 198.18.250.1
//     (6645, 6646) and unix sockets;
//   - site k is the lab <name><k> under <dir>/s<k>, routed: its nodes on
//     198.18.(10k+1).0/24 behind its router namespace <name><k>-r, whose
//     leg wan0 (198.18.250.(10+k)) sits on br-wan; the global namespace
//     routes each site's node subnet to that site's router;
//   - node n1 of each site is its interconnection gateway
//     (ovn-is-interconn=true); the site has joined as availability zone
//     <name><k> (site.Join) and runs its ovn-ic in its router namespace
//     (NB/SB over unix sockets, IC databases over the WAN).
//
// A TLS multi-site lab (the default) has one control CA for the whole lab
// (<dir>/pki): the global databases listen on pssl: only, with a server
// certificate for 198.18.250.1 (global/pki), and trust that control CA
// alone; every site's servers, admin and control service are signed by it
// and each site's ovn-ic connects with ssl: and its own certificate
// (central/pki/ovn-ic.pem, role admin). Each site keeps its own node CA,
// so a node is refused by the IC databases and by every other site.
// docs/security.md ("TLS between sites") says why.
//
// Each site's central keeps 198.18.0.1 inside its own namespaces: only
// node underlays and the router legs are routed between sites.
const (
	SitesFile   = "sites.json"
	WANCIDR     = "198.18.250.0/24"
	GlobalIP    = "198.18.250.1"
	ICNBPort    = "6645"
	ICSBPort    = "6646"
	MaxSites    = 5
	wanBridge   = "br-wan"
	wanMACBase  = "02:00:c6:12:fa:"
	siteWANVeth = "wan0"
)

// SitesOptions configure UpSites.
type SitesOptions struct {
	// Name (1-7 of a-z 0-9, starting with a letter; site k is Name+k).
	Name string
	// Sites (2 to MaxSites) and Nodes per site (default 2).
	Sites, Nodes int
	Log          io.Writer
	// TLS, Insecure and ControlBin: as Options, for every site and the
	// global databases (TLS by default, each site with its control service).
	TLS        bool
	Insecure   bool
	ControlBin string
}

// Sites is a running multi-site lab, saved in Dir/sites.json.
type Sites struct {
	Name     string `json:"name"`
	Dir      string `json:"dir"`
	GlobalNS string `json:"globalNetNS"`
	// ICNB and ICSB are the global databases' unix endpoints (usable from
	// every namespace); ICNBTCP and ICSBTCP the same over the WAN (ssl:
	// endpoints in a TLS multi-site lab).
	ICNB    string `json:"icNB"`
	ICSB    string `json:"icSB"`
	ICNBTCP string `json:"icNBTCP"`
	ICSBTCP string `json:"icSBTCP"`
	// TLS is set in a TLS multi-site lab.
	TLS *SitesTLS `json:"tls,omitempty"`
	// SiteDirs are the sites' lab directories (Load each).
	SiteDirs []string `json:"siteDirs"`
	Labs     []*Lab   `json:"-"`
	log      io.Writer
}

// SitesTLS are the certificates of a TLS multi-site lab's global part.
type SitesTLS struct {
	// PKI holds the control CA every site shares.
	PKI string `json:"pki"`
	// Server is the global databases' identity (IP SAN 198.18.250.1).
	Server pki.Files `json:"server"`
}

// ICTLS returns the identity site l's ovn-ic presents to the global
// databases (zero in a plain lab); an admin of any site may use its own
// (Lab.AdminTLS) the same way.
func (s *Sites) ICTLS(l *Lab) dbconn.TLSFiles {
	if s.TLS == nil || l.TLS == nil {
		return dbconn.TLSFiles{}
	}
	f := pki.FilesIn(filepath.Join(l.CentralDir, "pki"), "ovn-ic")
	return dbconn.TLSFiles{CA: f.CA, Cert: f.Cert, Key: f.Key}
}

// SiteName is the site (availability zone and lab) name of site k.
func SiteName(name string, k int) string { return name + strconv.Itoa(k) }

func (s *Sites) logf(format string, args ...any) {
	if s.log != nil {
		fmt.Fprintf(s.log, format+"\n", args...)
	}
}

func (s *Sites) globalDaemons() []*daemon {
	d := filepath.Join(s.Dir, "global")
	env := []string{"OVS_RUNDIR=" + d, "OVS_DBDIR=" + d, "OVS_LOGDIR=" + d, "OVN_RUNDIR=" + d, "OVN_DBDIR=" + d, "OVN_LOGDIR=" + d}
	db := func(which, port string) *daemon {
		remote := "--remote=ptcp:" + port + ":" + GlobalIP
		var tlsArgs []string
		if s.TLS != nil {
			// TLS only over the WAN; clients of the control CA only.
			remote = "--remote=pssl:" + port + ":" + GlobalIP
			tlsArgs = []string{"--private-key=" + s.TLS.Server.Key, "--certificate=" + s.TLS.Server.Cert,
				"--ca-cert=" + pki.CAFile(s.TLS.PKI, pki.ControlCA)}
		}
		return &daemon{Node: "global", Name: "ovsdb-server-" + which, bin: "ovsdb-server", dir: d, ns: s.GlobalNS, env: env,
			args: append([]string{filepath.Join(d, which+".db"), "--remote=punix:" + filepath.Join(d, which+".sock"),
				remote, "--unixctl=" + filepath.Join(d, "ovsdb-server-"+which+".ctl")}, tlsArgs...)}
	}
	return []*daemon{db("ic-nb", ICNBPort), db("ic-sb", ICSBPort)}
}

// ovnIC is site l's ovn-ic daemon (in its router namespace).
func (s *Sites) ovnIC(l *Lab) *daemon {
	c := l.CentralDir
	env := []string{"OVS_RUNDIR=" + c, "OVS_DBDIR=" + c, "OVS_LOGDIR=" + c, "OVN_RUNDIR=" + c, "OVN_DBDIR=" + c, "OVN_LOGDIR=" + c}
	args := []string{"--ovnnb-db=" + l.NB, "--ovnsb-db=" + l.SB, "--ic-nb-db=" + s.ICNBTCP, "--ic-sb-db=" + s.ICSBTCP,
		"--unixctl=" + filepath.Join(c, "ovn-ic.ctl")}
	if f := s.ICTLS(l); !f.Empty() {
		args = append(args, "--private-key="+f.Key, "--certificate="+f.Cert, "--ca-cert="+f.CA)
	}
	return &daemon{Node: l.Name, Name: "ovn-ic", bin: "ovn-ic", dir: c, ns: l.RouterNetNS, env: env, args: args}
}

// Site returns site k (1-based).
func (s *Sites) Site(k int) *Lab { return s.Labs[k-1] }

// UpSites brings up a multi-site lab; on failure it removes what it made.
func UpSites(ctx context.Context, o SitesOptions) (*Sites, error) {
	if o.Nodes == 0 {
		o.Nodes = 2
	}
	if len(o.Name) > 7 || !nameRE.MatchString(o.Name) {
		return nil, fmt.Errorf("lab name %q: use 1-7 of a-z 0-9, starting with a letter (a multi-site lab's site k is NAME+k)", o.Name)
	}
	if o.Sites < 2 || o.Sites > MaxSites {
		return nil, fmt.Errorf("lab sites %d: allowed 2 to %d", o.Sites, MaxSites)
	}
	if o.Nodes < 1 || o.Nodes > 9 {
		return nil, fmt.Errorf("lab nodes %d per site: allowed 1 to 9", o.Nodes)
	}
	if err := Check(); err != nil {
		return nil, err
	}
	tls := Options{Name: o.Name, TLS: o.TLS, Insecure: o.Insecure, ControlBin: o.ControlBin}
	if err := tls.resolveTLS(); err != nil {
		return nil, err
	}
	o.Insecure, o.ControlBin = tls.Insecure, tls.ControlBin
	if _, err := lookBin("ovn-ic"); err != nil {
		return nil, fmt.Errorf("missing ovn-ic: run `make deps` (apt-get install ovn-ic ovn-ic-db)")
	}
	dir := PathFor(o.Name)
	if err := os.MkdirAll(DefaultRoot, 0o755); err != nil {
		return nil, err
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, fmt.Errorf("lab %q: directory %s already exists (a lab of that name is up: `ovlmgr lab down --name %s`)", o.Name, dir, o.Name)
	}
	s := &Sites{Name: o.Name, Dir: dir, GlobalNS: filepath.Join(NetNSDir, o.Name+"-g"), log: o.Log,
		ICNB: "unix:" + filepath.Join(dir, "global", "ic-nb.sock"), ICSB: "unix:" + filepath.Join(dir, "global", "ic-sb.sock"),
		ICNBTCP: "tcp:" + GlobalIP + ":" + ICNBPort, ICSBTCP: "tcp:" + GlobalIP + ":" + ICSBPort}
	if !o.Insecure {
		s.TLS = &SitesTLS{PKI: filepath.Join(dir, "pki"), Server: pki.FilesIn(filepath.Join(dir, "global", "pki"), "server")}
		s.ICNBTCP, s.ICSBTCP = "ssl:"+GlobalIP+":"+ICNBPort, "ssl:"+GlobalIP+":"+ICSBPort
	}
	for k := 1; k <= o.Sites; k++ {
		s.SiteDirs = append(s.SiteDirs, filepath.Join(dir, "s"+strconv.Itoa(k)))
	}
	if err := s.save(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	start := time.Now()
	if err := s.up(ctx, o); err != nil {
		if derr := s.Down(context.Background()); derr != nil {
			err = fmt.Errorf("%w (cleanup: %v)", err, derr)
		}
		return nil, err
	}
	s.logf("lab %s: %d sites ready in %.1fs (IC-NB %s, IC-SB %s)", s.Name, o.Sites, time.Since(start).Seconds(), s.ICNB, s.ICSB)
	return s, nil
}

func (s *Sites) save() error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(s.Dir, SitesFile), data, 0o644)
}

func (s *Sites) up(ctx context.Context, o SitesOptions) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 3*time.Minute)
		defer cancel()
	}
	if err := os.Mkdir(filepath.Join(s.Dir, "global"), 0o755); err != nil {
		return err
	}
	if _, err := createNetNS(filepath.Base(s.GlobalNS)); err != nil {
		return err
	}
	gh, closeG, err := handleAt(s.GlobalNS)
	if err != nil {
		return err
	}
	defer closeG()
	if err := linkUp(gh, "lo"); err != nil {
		return err
	}
	mac, _ := net.ParseMAC(wanMACBase + "01")
	if err := gh.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: wanBridge, HardwareAddr: mac, MTU: DefaultMTU}}); err != nil {
		return fmt.Errorf("global: add bridge %s: %w", wanBridge, err)
	}
	if err := addAddrUp(gh, wanBridge, GlobalIP+"/24"); err != nil {
		return fmt.Errorf("global: %w", err)
	}
	if err := writeSysctl(s.GlobalNS, "/proc/sys/net/ipv4/ip_forward", "1"); err != nil {
		return fmt.Errorf("global: enable forwarding: %w", err)
	}
	for _, which := range []string{"ic-nb", "ic-sb"} {
		if err := createDB(ctx, filepath.Join(s.Dir, "global", which+".db"), "/usr/share/ovn/ovn-"+which+".ovsschema"); err != nil {
			return fmt.Errorf("global: %w", err)
		}
	}
	if err := s.issueTLS(); err != nil {
		return err
	}
	for _, d := range s.globalDaemons() {
		if err := d.start(ctx); err != nil {
			return err
		}
	}
	icnb, err := dbconn.ConnectICNB(ctx, s.ICNB)
	if err != nil {
		return err
	}
	defer icnb.Close()
	icsb, err := dbconn.ConnectICSB(ctx, s.ICSB)
	if err != nil {
		return err
	}
	defer icsb.Close()
	if err := site.Init(ctx, icnb, icsb); err != nil {
		return err
	}
	s.logf("lab %s: global IC databases up (%s, %s)", s.Name, s.ICNBTCP, s.ICSBTCP)
	for k := 1; k <= len(s.SiteDirs); k++ {
		l, err := upSiteLab(ctx, Options{Name: SiteName(s.Name, k), Dir: s.SiteDirs[k-1], Nodes: o.Nodes, Gateways: []string{"none"}, Log: o.Log,
			TLS: !o.Insecure, Insecure: o.Insecure, ControlBin: o.ControlBin}, k, s.TLS)
		if l != nil {
			s.Labs = append(s.Labs, l)
		}
		if err != nil {
			return fmt.Errorf("site %d: %w", k, err)
		}
		if err := s.plugSite(gh, l, k); err != nil {
			return fmt.Errorf("site %s: %w", l.Name, err)
		}
		if err := s.joinSite(ctx, l); err != nil {
			return fmt.Errorf("site %s: %w", l.Name, err)
		}
	}
	return s.waitSites(ctx, icsb)
}

// upSiteLab is Up for site k: a routed lab whose one underlay is
// 198.18.(10k+1).0/24.
func upSiteLab(ctx context.Context, o Options, k int, st *SitesTLS) (*Lab, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	l := plan(o)
	if l.TLS != nil && st != nil {
		l.TLS.SharedControlCA = st.PKI
	}
	l.RouterNetNS = filepath.Join(NetNSDir, o.Name+"-r")
	l.Underlays = 1
	for i, n := range l.Nodes {
		// Chassis names must be unique across linked sites (IC-SB lists
		// every site's gateways; each site sees the others' as chassis).
		n.SystemID = o.Name + "-" + n.Name
		n.Underlay = 10*k + 1
		n.EncapIP = fmt.Sprintf("198.18.%d.%d", n.Underlay, 11+i)
	}
	l.nodeTLSEnv()
	if err := os.MkdirAll(l.CentralDir, 0o755); err != nil {
		return nil, err
	}
	if err := l.save(); err != nil {
		return nil, err
	}
	if err := l.up(ctx); err != nil {
		return l, err
	}
	return l, nil
}

// plugSite connects site k's router to the WAN bridge and routes between them.
func (s *Sites) plugSite(gh *netlink.Handle, l *Lab, k int) error {
	gns, err := netns.GetFromPath(s.GlobalNS)
	if err != nil {
		return err
	}
	defer gns.Close()
	rh, closeR, err := handleAt(l.RouterNetNS)
	if err != nil {
		return err
	}
	defer closeR()
	gEnd := "to-s" + strconv.Itoa(k)
	mac, _ := net.ParseMAC(fmt.Sprintf("%s%02x", wanMACBase, 0x10+k))
	if err := rh.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: siteWANVeth, MTU: DefaultMTU, HardwareAddr: mac},
		PeerName: gEnd, PeerNamespace: netlink.NsFd(gns)}); err != nil {
		return fmt.Errorf("add veth %s<->%s: %w", siteWANVeth, gEnd, err)
	}
	if err := attachUp(gh, gEnd, wanBridge); err != nil {
		return err
	}
	ip := fmt.Sprintf("198.18.250.%d", 10+k)
	if err := addAddrUp(rh, siteWANVeth, ip+"/24"); err != nil {
		return err
	}
	if err := routeVia(rh, siteWANVeth, routedPrefix, GlobalIP); err != nil {
		return err
	}
	for _, u := range l.underlayNums() {
		if err := routeVia(gh, wanBridge, fmt.Sprintf("198.18.%d.0/24", u), ip); err != nil {
			return err
		}
	}
	return nil
}

// joinSite names the site's availability zone, makes n1 its
// interconnection gateway and starts its ovn-ic.
func (s *Sites) joinSite(ctx context.Context, l *Lab) error {
	nb, err := dbconn.ConnectNB(ctx, l.NB)
	if err != nil {
		return err
	}
	defer nb.Close()
	if err := site.Join(ctx, nb, l.Name); err != nil {
		return err
	}
	if err := node.SetICGateway(ctx, l.Nodes[0].OVS, true); err != nil {
		return err
	}
	if s.TLS != nil && l.TLS != nil {
		// Signed by the shared control CA (copied into the site's PKI).
		out := filepath.Dir(s.ICTLS(l).Cert)
		if _, _, err := pki.IssueTo(l.TLS.PKI, out, pki.Request{Name: "ovn-ic", Role: pki.RoleAdmin, Validity: 365 * 24 * time.Hour}); err != nil {
			return fmt.Errorf("ovn-ic certificate: %w", err)
		}
	}
	return s.ovnIC(l).start(ctx)
}

// issueTLS creates the multi-site lab's control CA and the global
// databases' server certificate (IP SAN 198.18.250.1).
func (s *Sites) issueTLS() error {
	if s.TLS == nil {
		return nil
	}
	if err := os.MkdirAll(s.TLS.PKI, 0o700); err != nil {
		return fmt.Errorf("lab %s: %w", s.Name, err)
	}
	if _, err := pki.InitCA(s.TLS.PKI, pki.ControlCA, pki.DefaultCAValidity, false); err != nil {
		return fmt.Errorf("lab %s: %w", s.Name, err)
	}
	if _, _, err := pki.IssueTo(s.TLS.PKI, filepath.Dir(s.TLS.Server.Cert), pki.Request{Name: "server", Role: pki.RoleServer,
		IPs: []net.IP{net.ParseIP(GlobalIP)}, Validity: 365 * 24 * time.Hour}); err != nil {
		return fmt.Errorf("lab %s: global databases: %w", s.Name, err)
	}
	return nil
}

// waitSites waits until every site's ovn-ic registered its zone and its
// gateway in IC-SB.
func (s *Sites) waitSites(ctx context.Context, c client.Client) error {
	for {
		azs, err1 := dbops.Count[icsbdb.AvailabilityZone](ctx, c, nil)
		gws, err2 := dbops.Count[icsbdb.Gateway](ctx, c, nil)
		if err := errors.Join(err1, err2); err != nil {
			return err
		}
		if azs == len(s.Labs) && gws == len(s.Labs) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("lab %s: %d of %d sites and %d gateways registered in IC-SB: is ovn-ic running? (see its log in each site's central/ovn-ic.log)", s.Name, azs, len(s.Labs), gws)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// LoadSites re-opens a running multi-site lab by name, or nil, nil when
// no multi-site lab of that name exists.
func LoadSites(name string) (*Sites, error) {
	data, err := os.ReadFile(filepath.Join(PathFor(name), SitesFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var s Sites
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("load lab %s: %s: %w", name, SitesFile, err)
	}
	for _, d := range s.SiteDirs {
		if l, err := Load(d); err == nil {
			s.Labs = append(s.Labs, l)
		}
	}
	return &s, nil
}

// SetLog sets where progress lines go.
func (s *Sites) SetLog(w io.Writer) { s.log = w }

// Down stops every site's ovn-ic, takes every site down, then the global
// databases and namespace, and removes the directory. It is idempotent.
func (s *Sites) Down(ctx context.Context) error {
	var errs []error
	for _, l := range s.Labs {
		if err := s.ovnIC(l).stop(); err != nil {
			errs = append(errs, err)
		}
	}
	for _, d := range s.SiteDirs {
		l, err := Load(d)
		if err != nil {
			continue // never came up, or already down
		}
		if err := l.Down(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	for _, d := range s.globalDaemons() {
		if err := d.stop(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := deleteNetNS(s.GlobalNS); err != nil {
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		if err := os.RemoveAll(s.Dir); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("lab %q down: %w", s.Name, errors.Join(errs...))
	}
	s.logf("lab %s: down", s.Name)
	return nil
}

// ICEnv returns the environment block for the global IC databases.
func (s *Sites) ICEnv() string {
	return fmt.Sprintf("export %s=%s\nexport %s=%s\n", dbconn.EnvICNB, s.ICNB, dbconn.EnvICSB, s.ICSB)
}

// writeSysctl writes a /proc/sys file inside namespace nsPath.
func writeSysctl(nsPath, file, value string) error {
	return ns.WithNetNSPath(nsPath, func(ns.NetNS) error { return os.WriteFile(file, []byte(value), 0o644) })
}

// SiteStatus is one site's lab status with its ovn-ic.
type SiteStatus struct {
	Site   string       `json:"site"`
	OVNIC  DaemonStatus `json:"ovnIC"`
	Status *Status      `json:"status"`
}

// Status reads every site's status and whether its ovn-ic and the global
// databases run; problems name the site.
func (s *Sites) Status(ctx context.Context) ([]SiteStatus, []string, error) {
	var out []SiteStatus
	var problems []string
	for _, d := range s.globalDaemons() {
		if _, err := d.pid(); err != nil {
			problems = append(problems, err.Error())
		}
	}
	for _, l := range s.Labs {
		st, err := l.Status(ctx)
		if err != nil {
			return nil, nil, err
		}
		d := s.ovnIC(l)
		ds := DaemonStatus{Node: l.Name, Name: d.Name}
		if pid, err := d.pid(); err == nil {
			ds.PID, ds.Alive = pid, true
		} else {
			problems = append(problems, err.Error())
		}
		for _, p := range st.Problems {
			problems = append(problems, l.Name+": "+p)
		}
		out = append(out, SiteStatus{Site: l.Name, OVNIC: ds, Status: st})
	}
	return out, problems, nil
}
