package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbconn"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/pki"
	"github.com/ovlmgr/ovlmgr/ovn/sbdb"
)

// A TLS lab (Options.TLS, `lab up --tls`) runs the control plane as
// docs/security.md describes: lab up creates the two CAs (pki.Init) in
// Dir/pki and issues
//
//   - central/pki/server.pem: every NB and SB ovsdb-server (all member IPs);
//   - pki/admin/admin.pem: the admin identity (`lab env` exports it);
//   - nN/pki/nN.pem: node nN's identity (node CA, common name = chassis name),
//     set in the node's Open_vSwitch SSL row by join (ovn-controller reads it)
//     and in the node's environment (OVLMGR_CA_CERT, OVLMGR_CERT, OVLMGR_PRIVATE_KEY).
//
// The NB listens on pssl:6641 and trusts the control CA only: a node's
// certificate is refused. The SB listens on pssl:6642 through an SB
// Connection row with role "ovn-controller" (OVN's RBAC: a chassis may only
// write its own Chassis, Encap and Chassis_Private rows) and trusts both
// CAs. ovn-northd and the admin use the unix sockets in central/. RAFT
// links between members of a clustered lab are TLS too (raftScheme).
type TLS struct {
	// PKI is the directory of the CAs (pki.Init).
	PKI string `json:"pki"`
	// Admin is the admin identity's files.
	Admin pki.Files `json:"admin"`
	// Server is the ovsdb-servers' identity; SBCA trusts both CAs.
	Server pki.Files `json:"server"`
	SBCA   string    `json:"sbCA"`
	// ControlBin runs the control service (empty: none); Control is its
	// identity and ControlNB the endpoints nodes use as their NB.
	ControlBin string    `json:"controlBin,omitempty"`
	Control    pki.Files `json:"control"`
	ControlNB  string    `json:"controlNB,omitempty"`
	// SharedControlCA, in a site of a multi-site lab, is the PKI directory
	// whose control CA the whole multi-site lab shares (sites.go): issueTLS
	// copies it into PKI and creates only the site's own node CA.
	SharedControlCA string `json:"sharedControlCA,omitempty"`
}

// Control service ports on the central address (one per instance).
var controlPorts = []string{"6645", "6646"}

// EnvInsecure=1 makes a lab whose Options say neither TLS nor Insecure a
// plain lab (the integration suite's plain mode, hand runs); EnvControlBin
// is the ovlmgr binary for the control service when Options.ControlBin is
// empty.
const (
	EnvInsecure   = "OVLMGR_LAB_INSECURE"
	EnvControlBin = "OVLMGR_LAB_CONTROL_BIN"
)

// ErrNoControlBin: a TLS lab needs an ovlmgr binary to run its control
// service, and none was given or found.
var ErrNoControlBin = errors.New("set Options.ControlBin or " + EnvControlBin + " to an ovlmgr binary, or ask for a plain lab (Options.Insecure, " + EnvInsecure + "=1, `lab up --insecure`)")

// sbTarget is the SB's listener for nodes (an SB Connection row).
const sbTarget = "pssl:6642"

// resolveTLS decides between a TLS lab (the default) and a plain one, and
// finds the control service's binary: Options.ControlBin, else
// $OVLMGR_LAB_CONTROL_BIN, else the running program when it is ovlmgr
// (the CLI's `lab up`).
func (o *Options) resolveTLS() error {
	if o.TLS && o.Insecure {
		return fmt.Errorf("lab %s: TLS and Insecure together: choose one", o.Name)
	}
	if !o.TLS && !o.Insecure && os.Getenv(EnvInsecure) == "1" {
		o.Insecure = true
	}
	if o.Insecure {
		return nil
	}
	if o.ControlBin == "" {
		o.ControlBin = os.Getenv(EnvControlBin)
	}
	if o.ControlBin == "" {
		if exe, err := os.Executable(); err == nil && filepath.Base(exe) == "ovlmgr" {
			o.ControlBin = exe
		}
	}
	if o.ControlBin == "" {
		return fmt.Errorf("lab %s: a TLS lab runs the control service, which needs the ovlmgr binary: %w", o.Name, ErrNoControlBin)
	}
	if !executable(o.ControlBin) {
		return fmt.Errorf("lab %s: control service binary %q: not an executable file: %w", o.Name, o.ControlBin, ErrNoControlBin)
	}
	return nil
}

// planTLS switches the underlay endpoints to ssl: and names the files.
func (l *Lab) planTLS(on bool, controlBin string) {
	if !on {
		return
	}
	d := filepath.Join(l.Dir, "pki")
	l.TLS = &TLS{PKI: d, Admin: pki.FilesIn(filepath.Join(d, "admin"), "admin"),
		Server: pki.FilesIn(filepath.Join(l.CentralDir, "pki"), "server"), SBCA: filepath.Join(l.CentralDir, "pki", "sb-ca.pem"),
		ControlBin: controlBin, Control: pki.FilesIn(filepath.Join(l.CentralDir, "pki"), "control")}
	if controlBin != "" {
		var eps []string
		for _, p := range controlPorts {
			eps = append(eps, "ssl:"+CentralIP+":"+p)
		}
		l.TLS.ControlNB = strings.Join(eps, ",")
	}
	l.NBTCP = strings.ReplaceAll(l.NBTCP, "tcp:", "ssl:")
	l.SBTCP = strings.ReplaceAll(l.SBTCP, "tcp:", "ssl:")
	l.nodeTLSEnv()
}

// nodeTLSEnv puts each node's identity files (named by its system-id) in
// its environment (OVLMGR_CA_CERT, OVLMGR_CERT, OVLMGR_PRIVATE_KEY),
// replacing earlier ones: a site's nodes get their system-ids after plan.
func (l *Lab) nodeTLSEnv() {
	if l.TLS == nil {
		return
	}
	for _, n := range l.Nodes {
		var env []string
		for _, e := range n.Env {
			k, _, _ := strings.Cut(e, "=")
			if k != dbconn.EnvCACert && k != dbconn.EnvCert && k != dbconn.EnvPrivateKey {
				env = append(env, e)
			}
		}
		f := n.TLSFiles()
		n.Env = append(env, dbconn.EnvCACert+"="+f.CA, dbconn.EnvCert+"="+f.Cert, dbconn.EnvPrivateKey+"="+f.Key)
	}
}

// TLSFiles returns the node's identity files (in a TLS lab).
func (n *Node) TLSFiles() dbconn.TLSFiles {
	f := pki.FilesIn(filepath.Join(n.Dir, "pki"), n.SystemID)
	return dbconn.TLSFiles{CA: f.CA, Cert: f.Cert, Key: f.Key}
}

// AdminTLS returns the admin identity (zero in a plain lab).
func (l *Lab) AdminTLS() dbconn.TLSFiles {
	if l.TLS == nil {
		return dbconn.TLSFiles{}
	}
	return dbconn.TLSFiles{CA: l.TLS.Admin.CA, Cert: l.TLS.Admin.Cert, Key: l.TLS.Admin.Key}
}

// issueTLS creates the CAs and every certificate of the lab.
func (l *Lab) issueTLS() error {
	if l.TLS == nil {
		return nil
	}
	t := l.TLS
	if t.SharedControlCA != "" {
		if err := shareControlCA(t.SharedControlCA, t.PKI); err != nil {
			return fmt.Errorf("lab %s: %w", l.Name, err)
		}
		if _, err := pki.InitCA(t.PKI, pki.NodeCA, pki.DefaultCAValidity, false); err != nil {
			return fmt.Errorf("lab %s: %w", l.Name, err)
		}
	} else if err := pki.Init(t.PKI, 0, false); err != nil {
		return fmt.Errorf("lab %s: %w", l.Name, err)
	}
	var ips []net.IP
	for _, m := range l.members() {
		ips = append(ips, net.ParseIP(m.IP))
	}
	year := 365 * 24 * time.Hour
	if _, _, err := pki.IssueTo(t.PKI, filepath.Dir(t.Server.Cert), pki.Request{Name: "server", Role: pki.RoleServer, IPs: ips, Validity: year}); err != nil {
		return fmt.Errorf("lab %s: %w", l.Name, err)
	}
	if _, _, err := pki.IssueTo(t.PKI, filepath.Dir(t.Control.Cert), pki.Request{Name: "control", Role: pki.RoleControl, IPs: ips, Validity: year}); err != nil {
		return fmt.Errorf("lab %s: %w", l.Name, err)
	}
	if err := pki.Bundle(t.PKI, t.SBCA, pki.ControlCA, pki.NodeCA); err != nil {
		return fmt.Errorf("lab %s: %w", l.Name, err)
	}
	if _, _, err := pki.IssueTo(t.PKI, filepath.Dir(t.Admin.Cert), pki.Request{Name: "admin", Role: pki.RoleAdmin, Validity: year}); err != nil {
		return fmt.Errorf("lab %s: %w", l.Name, err)
	}
	for _, n := range l.Nodes {
		if _, _, err := pki.IssueTo(t.PKI, filepath.Dir(n.TLSFiles().Cert), pki.Request{Name: n.SystemID, Role: pki.RoleNode, Validity: year}); err != nil {
			return fmt.Errorf("lab %s: node %s: %w", l.Name, n.Name, err)
		}
	}
	return nil
}

// shareControlCA copies the control CA (certificate and key) of PKI
// directory from into PKI directory to.
func shareControlCA(from, to string) error {
	if err := os.MkdirAll(to, 0o700); err != nil {
		return fmt.Errorf("shared control CA: %w", err)
	}
	cert := pki.CAFile(from, pki.ControlCA)
	key := strings.TrimSuffix(cert, ".pem") + "-key.pem"
	for _, f := range []struct {
		path string
		mode os.FileMode
	}{{cert, 0o644}, {key, 0o600}} {
		b, err := os.ReadFile(f.path)
		if err != nil {
			return fmt.Errorf("shared control CA: %w", err)
		}
		if err := os.WriteFile(filepath.Join(to, filepath.Base(f.path)), b, f.mode); err != nil {
			return fmt.Errorf("shared control CA: %w", err)
		}
	}
	return nil
}

// withTLS turns the central ovsdb-servers' TCP listeners into TLS ones:
// NB pssl: trusting the control CA; SB from its Connection rows (RBAC),
// trusting both CAs.
func (l *Lab) withTLS(ds []*daemon) []*daemon {
	if l.TLS == nil {
		return ds
	}
	for _, d := range ds {
		if d.bin != "ovsdb-server" {
			continue
		}
		sb := strings.HasPrefix(d.Name, "ovsdb-server-sb")
		ca := l.TLS.Server.CA
		if sb {
			ca = l.TLS.SBCA
		}
		var args []string
		for _, a := range d.args {
			if strings.HasPrefix(a, "--remote=ptcp:") {
				if sb {
					a = "--remote=db:OVN_Southbound,SB_Global,connections"
				} else {
					a = "--remote=pssl:" + strings.TrimPrefix(a, "--remote=ptcp:")
				}
			}
			args = append(args, a)
		}
		d.args = append(args, "--private-key="+l.TLS.Server.Key, "--certificate="+l.TLS.Server.Cert, "--ca-cert="+ca)
	}
	if l.TLS.ControlBin == "" {
		return ds
	}
	// The control service: two instances next to the NB (member 1's
	// namespace), relaying to the NB's unix sockets.
	c := l.TLS.Control
	for i, port := range controlPorts {
		ds = append(ds, &daemon{Node: Central, Name: fmt.Sprintf("ovlmgr-control%d", i+1), bin: l.TLS.ControlBin, dir: l.CentralDir,
			ns: l.CentralNetNS, goDaemon: true,
			args: []string{"--nb", l.NB, "--ca-cert", c.CA, "--cert", c.Cert, "--private-key", c.Key,
				"control", "serve", "--listen", "ssl:" + CentralIP + ":" + port, "--node-ca", pki.CAFile(l.TLS.PKI, pki.NodeCA)}})
	}
	return ds
}

// nodesUseControl: the lab's nodes write the NB through the control service.
func (l *Lab) nodesUseControl() bool { return l.TLS != nil && l.TLS.ControlNB != "" }

// nodeNB is the NB endpoint nodes record for the CNI plugin: the control
// service in a TLS lab that runs it, else the NB's unix socket (the lab's
// shortcut: node namespaces share this machine's filesystem).
func (l *Lab) nodeNB() string {
	if l.nodesUseControl() {
		return l.TLS.ControlNB
	}
	return l.NB
}

// sbConnection writes the SB listener for nodes: an SB Connection row
// pssl:6642 with role ovn-controller, referenced from SB_Global (created
// here when ovn-northd has not yet).
func (l *Lab) sbConnection(ctx context.Context) error {
	if l.TLS == nil {
		return nil
	}
	sb, err := dbconn.ConnectSB(ctx, l.SB)
	if err != nil {
		return fmt.Errorf("lab %s: SB listener: %w", l.Name, err)
	}
	defer sb.Close()
	var last error
	for attempt := 0; attempt < 5; attempt++ {
		var globals []*sbdb.SBGlobal
		if err := dbconn.Select(ctx, sb, &sbdb.SBGlobal{}, &globals); err != nil {
			return fmt.Errorf("lab %s: SB listener: %w", l.Name, err)
		}
		conn := &sbdb.Connection{UUID: "newconn", Target: sbTarget, Role: "ovn-controller"}
		ops, err := sb.Create(conn)
		if err != nil {
			return err
		}
		var more []ovsdb.Operation
		if len(globals) == 0 {
			// SB_Global holds one row at most: if ovn-northd creates it
			// first, this insert fails and the next attempt adds to its row.
			more, err = sb.Create(&sbdb.SBGlobal{UUID: "newglobal", Connections: []string{conn.UUID}})
		} else {
			g := globals[0]
			more, err = sb.Where(g).Mutate(g, model.Mutation{Field: &g.Connections, Mutator: ovsdb.MutateOperationInsert, Value: []string{conn.UUID}})
		}
		if err != nil {
			return err
		}
		if _, last = dbconn.Transact(ctx, sb, append(ops, more...)...); last == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("lab %s: SB listener %s: %w", l.Name, sbTarget, last)
}

// joinTLS is the node's identity for join (set in its Open_vSwitch SSL
// row, which ovn-controller reads), as `ovlmgr node join --ca-cert --cert
// --private-key` gives it; empty in a plain lab.
func (l *Lab) joinTLS(n *Node) dbconn.TLSFiles {
	if l.TLS == nil {
		return dbconn.TLSFiles{}
	}
	return n.TLSFiles()
}

// tlsEnv is the admin identity for `lab env`.
func (l *Lab) tlsEnv() string {
	if l.TLS == nil {
		return ""
	}
	a := l.TLS.Admin
	return fmt.Sprintf("export %s=%s\nexport %s=%s\nexport %s=%s\n", dbconn.EnvCACert, a.CA, dbconn.EnvCert, a.Cert, dbconn.EnvPrivateKey, a.Key)
}

// raftScheme is how RAFT members of a clustered lab talk: ssl (with the
// servers' certificates and CAs) in a TLS lab, else tcp.
func (l *Lab) raftScheme() string {
	if l.TLS != nil {
		return "ssl"
	}
	return "tcp"
}
