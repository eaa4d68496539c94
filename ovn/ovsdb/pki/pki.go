// Package pki issues the certificates of ovlmgr's control plane with Go's
// crypto/x509 (no openssl): two certificate authorities and the
// certificates they sign.
//
// The two CAs are what least privilege rests on (docs/security.md):
//
//   - the control CA signs the OVSDB servers (NB, SB, RAFT members), the
//     admin (the ovlmgr CLI) and the control service. The NB trusts this CA
//     only, so no node certificate is ever accepted by the NB.
//   - the node CA signs one certificate per node whose common name is the
//     node's chassis name (system-id). The SB trusts both CAs and gives
//     node connections OVN's `ovn-controller` RBAC role, which checks the
//     common name against the Chassis rows written; the control service
//     trusts the node CA and takes the common name as the node's identity.
//
// Files in a PKI directory: control-ca.pem, control-ca-key.pem, node-ca.pem,
// node-ca-key.pem. An issued certificate is NAME.pem, NAME-key.pem (0600)
// and ca.pem (the CA that verifies servers: the control CA) in its
// output directory.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"time"
)

// Role is what a certificate is for; it is the certificate's
// OrganizationalUnit (ovlmgr-ROLE) and picks the CA that signs it.
type Role string

// Roles.
const (
	// RoleAdmin: the ovlmgr CLI of an operator (control CA; NB and SB).
	RoleAdmin Role = "admin"
	// RoleControl: the control service that writes the NB for nodes (control CA).
	RoleControl Role = "control"
	// RoleServer: an OVSDB server or RAFT member (control CA; server and client auth).
	RoleServer Role = "server"
	// RoleNode: a node, common name = its chassis name (node CA).
	RoleNode Role = "node"
)

// Roles lists every role, in the order the CLI shows them.
var Roles = []Role{RoleAdmin, RoleControl, RoleServer, RoleNode}

// CA names.
const (
	ControlCA = "control"
	NodeCA    = "node"
)

// DefaultValidity of an issued certificate, and of a CA.
const (
	DefaultValidity   = 365 * 24 * time.Hour
	DefaultCAValidity = 10 * 365 * 24 * time.Hour
)

// ErrNoCA: the PKI directory has no CA of that name (run `ovlmgr pki init`).
var ErrNoCA = errors.New("no CA")

// ErrExists: init would overwrite an existing CA.
var ErrExists = errors.New("already exists")

var cnRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// CAFor returns the CA that signs certificates of role r.
func CAFor(r Role) string {
	if r == RoleNode {
		return NodeCA
	}
	return ControlCA
}

// ParseRole checks s against Roles.
func ParseRole(s string) (Role, error) {
	for _, r := range Roles {
		if string(r) == s {
			return r, nil
		}
	}
	return "", fmt.Errorf("role %q: allowed admin, control, server, node", s)
}

// CA is a loaded certificate authority.
type CA struct {
	Name string
	Cert *x509.Certificate
	PEM  []byte
	key  crypto.Signer
}

func caFiles(dir, name string) (cert, key string) {
	return filepath.Join(dir, name+"-ca.pem"), filepath.Join(dir, name+"-ca-key.pem")
}

// CAFile returns the path of CA name's certificate in dir.
func CAFile(dir, name string) string { c, _ := caFiles(dir, name); return c }

// Init creates the control and node CAs in dir. It refuses (ErrExists) when
// either exists unless force is set (a new CA invalidates every
// certificate the old one signed: that is how a CA is rotated).
func Init(dir string, validity time.Duration, force bool) error {
	if validity <= 0 {
		validity = DefaultCAValidity
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("pki init %s: %w", dir, err)
	}
	for _, name := range []string{ControlCA, NodeCA} {
		if _, err := InitCA(dir, name, validity, force); err != nil {
			return err
		}
	}
	return nil
}

// InitCA creates (or with force replaces) one CA in dir.
func InitCA(dir, name string, validity time.Duration, force bool) (*CA, error) {
	certF, keyF := caFiles(dir, name)
	if !force {
		if _, err := os.Stat(certF); err == nil {
			return nil, fmt.Errorf("pki init: %s CA %s %w (rotate it with --force: every certificate it signed must then be issued again)", name, certF, ErrExists)
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki init %s CA: %w", name, err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "ovlmgr " + name + " CA", Organization: []string{"ovlmgr"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("pki init %s CA: %w", name, err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := writeFile(keyF, keyPEM, 0o600); err != nil {
		return nil, err
	}
	if err := writeFile(certF, certPEM, 0o644); err != nil {
		return nil, err
	}
	cert, _ := x509.ParseCertificate(der)
	return &CA{Name: name, Cert: cert, PEM: certPEM, key: key}, nil
}

// LoadCA reads CA name from dir.
func LoadCA(dir, name string) (*CA, error) {
	certF, keyF := caFiles(dir, name)
	certPEM, err := os.ReadFile(certF)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("pki %s: %w %s (run `ovlmgr pki init --dir %s`)", dir, ErrNoCA, name, dir)
		}
		return nil, fmt.Errorf("pki: read %s CA: %w", name, err)
	}
	cert, err := ParseCert(certPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: %s: %w", certF, err)
	}
	keyPEM, err := os.ReadFile(keyF)
	if err != nil {
		return nil, fmt.Errorf("pki: read %s CA key: %w", name, err)
	}
	b, _ := pem.Decode(keyPEM)
	if b == nil {
		return nil, fmt.Errorf("pki: %s: no PEM block", keyF)
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("pki: %s: %w", keyF, err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("pki: %s: not a signing key", keyF)
	}
	return &CA{Name: name, Cert: cert, PEM: certPEM, key: signer}, nil
}

// Request is one certificate to issue.
type Request struct {
	// Name is the common name: a node's chassis name, "admin", a server's name.
	Name string
	Role Role
	// IPs and DNSNames are the subject alternative names (servers: every
	// address clients dial).
	IPs      []net.IP
	DNSNames []string
	Validity time.Duration
}

// Issued is a certificate and its key, PEM encoded.
type Issued struct {
	Cert    *x509.Certificate
	CertPEM []byte
	KeyPEM  []byte
}

// Issue signs a new key pair for r. Every issue makes a new key: issuing
// again is how a certificate is rotated.
func (ca *CA) Issue(r Request) (*Issued, error) {
	if !cnRE.MatchString(r.Name) {
		return nil, fmt.Errorf("pki issue: name %q: use 1-63 of A-Z a-z 0-9 . _ -, starting with a letter or digit", r.Name)
	}
	if CAFor(r.Role) != ca.Name {
		return nil, fmt.Errorf("pki issue %s: role %q is signed by the %s CA, not the %s CA", r.Name, r.Role, CAFor(r.Role), ca.Name)
	}
	if r.Validity <= 0 {
		r.Validity = DefaultValidity
	}
	if r.Role == RoleNode && !slices.Contains(r.DNSNames, r.Name) {
		// The chassis name as a DNS name too: strongSwan (OVN's IPsec,
		// ovs-monitor-ipsec) matches a peer's identity against the
		// subject alternative names, not the common name.
		r.DNSNames = append([]string{r.Name}, r.DNSNames...)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki issue %s: %w", r.Name, err)
	}
	now := time.Now()
	notAfter := now.Add(r.Validity)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: r.Name, Organization: []string{"ovlmgr"}, OrganizationalUnit: []string{"ovlmgr-" + string(r.Role)}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyAgreement,
		// OVSDB servers (and RAFT members) also dial; clients only dial. ovsdb-server
		// checks neither, Go does: every certificate may be both.
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		IPAddresses: r.IPs,
		DNSNames:    r.DNSNames,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, fmt.Errorf("pki issue %s: %w", r.Name, err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, err
	}
	cert, _ := x509.ParseCertificate(der)
	return &Issued{Cert: cert, CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), KeyPEM: keyPEM}, nil
}

// Files are the paths of an issued certificate.
type Files struct {
	CA   string `json:"caCert"`
	Cert string `json:"cert"`
	Key  string `json:"privateKey"`
}

// FilesIn returns where IssueTo writes name's files in out.
func FilesIn(out, name string) Files {
	return Files{CA: filepath.Join(out, "ca.pem"), Cert: filepath.Join(out, name+".pem"), Key: filepath.Join(out, name+"-key.pem")}
}

// IssueTo loads the CA of r.Role from dir, issues r and writes
// out/NAME.pem, out/NAME-key.pem (0600) and out/ca.pem (the control CA,
// which verifies servers). Files are replaced atomically, so daemons that
// re-read them (ovsdb-server, ovn-controller) never see half a file.
func IssueTo(dir, out string, r Request) (Files, *Issued, error) {
	ca, err := LoadCA(dir, CAFor(r.Role))
	if err != nil {
		return Files{}, nil, err
	}
	ctl := ca
	if ca.Name != ControlCA {
		if ctl, err = LoadCA(dir, ControlCA); err != nil {
			return Files{}, nil, err
		}
	}
	is, err := ca.Issue(r)
	if err != nil {
		return Files{}, nil, err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return Files{}, nil, fmt.Errorf("pki issue %s: %w", r.Name, err)
	}
	f := FilesIn(out, r.Name)
	if err := writeFile(f.Key, is.KeyPEM, 0o600); err != nil {
		return Files{}, nil, err
	}
	if err := writeFile(f.Cert, is.CertPEM, 0o644); err != nil {
		return Files{}, nil, err
	}
	if err := writeFile(f.CA, ctl.PEM, 0o644); err != nil {
		return Files{}, nil, err
	}
	return f, is, nil
}

// Bundle writes the certificates of the named CAs of dir into one PEM file
// (an ovsdb-server that accepts clients of both CAs: the SB).
func Bundle(dir, out string, names ...string) error {
	var all []byte
	for _, n := range names {
		b, err := os.ReadFile(CAFile(dir, n))
		if err != nil {
			return fmt.Errorf("pki bundle: %w", err)
		}
		all = append(all, b...)
	}
	return writeFile(out, all, 0o644)
}

// Info describes a certificate for `ovlmgr pki show`.
type Info struct {
	Name     string    `json:"name"`
	Role     string    `json:"role"`
	Issuer   string    `json:"issuer"`
	Serial   string    `json:"serial"`
	NotAfter time.Time `json:"notAfter"`
	IPs      []string  `json:"ips,omitempty"`
	IsCA     bool      `json:"isCA,omitempty"`
}

// RoleOf returns the role written in c (empty when it has none).
func RoleOf(c *x509.Certificate) Role {
	for _, ou := range c.Subject.OrganizationalUnit {
		if len(ou) > 7 && ou[:7] == "ovlmgr-" {
			if r, err := ParseRole(ou[7:]); err == nil {
				return r
			}
		}
	}
	return ""
}

// Describe returns what a certificate says.
func Describe(c *x509.Certificate) Info {
	in := Info{Name: c.Subject.CommonName, Role: string(RoleOf(c)), Issuer: c.Issuer.CommonName,
		Serial: c.SerialNumber.Text(16), NotAfter: c.NotAfter.UTC(), IsCA: c.IsCA}
	for _, ip := range c.IPAddresses {
		in.IPs = append(in.IPs, ip.String())
	}
	return in
}

// ReadCert reads the first certificate of a PEM file.
func ReadCert(file string) (*x509.Certificate, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read certificate: %w", err)
	}
	c, err := ParseCert(b)
	if err != nil {
		return nil, fmt.Errorf("certificate %s: %w", file, err)
	}
	return c, nil
}

// ParseCert parses the first certificate of PEM data.
func ParseCert(b []byte) (*x509.Certificate, error) {
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return nil, errors.New("no PEM certificate")
		}
		if blk.Type == "CERTIFICATE" {
			return x509.ParseCertificate(blk.Bytes)
		}
	}
}

// ParseIPs parses addresses for Request.IPs.
func ParseIPs(ss []string) ([]net.IP, error) {
	var out []net.IP
	for _, s := range ss {
		ip := net.ParseIP(s)
		if ip == nil {
			return nil, fmt.Errorf("ip %q: not an IP address", s)
		}
		if !slices.ContainsFunc(out, ip.Equal) {
			out = append(out, ip)
		}
	}
	return out, nil
}

func encodeKey(k *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("pki: encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	return n.Add(n, big.NewInt(1))
}

func writeFile(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return fmt.Errorf("pki: write %s: %w", path, err)
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return fmt.Errorf("pki: write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("pki: write %s: %w", path, err)
	}
	return nil
}
