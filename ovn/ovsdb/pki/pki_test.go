package pki

import (
	"crypto/x509"
	"errors"
	"net"
	"os"
	"slices"
	"testing"
	"time"
)

// TestIssue: node certificates chain to the node CA only, everything else
// to the control CA only; the role and the name are in the certificate;
// keys are private files; init does not overwrite a CA.
func TestIssue(t *testing.T) {
	dir := t.TempDir()
	if err := Init(dir, 0, false); err != nil {
		t.Fatal(err)
	}
	if err := Init(dir, 0, false); !errors.Is(err, ErrExists) {
		t.Fatalf("second init: %v, want ErrExists", err)
	}
	pool := func(name string) *x509.CertPool {
		p := x509.NewCertPool()
		b, err := os.ReadFile(CAFile(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		p.AppendCertsFromPEM(b)
		return p
	}
	ctl, node := pool(ControlCA), pool(NodeCA)
	for _, tc := range []struct {
		role      Role
		name      string
		trustedBy *x509.CertPool
		not       *x509.CertPool
	}{
		{RoleNode, "n1", node, ctl},
		{RoleAdmin, "admin", ctl, node},
		{RoleServer, "central", ctl, node},
		{RoleControl, "control", ctl, node},
	} {
		out := t.TempDir()
		f, is, err := IssueTo(dir, out, Request{Name: tc.name, Role: tc.role, IPs: []net.IP{net.ParseIP("198.18.0.1")}, Validity: time.Hour})
		if err != nil {
			t.Fatalf("%s: %v", tc.role, err)
		}
		c, err := ReadCert(f.Cert)
		if err != nil {
			t.Fatal(err)
		}
		if c.Subject.CommonName != tc.name || RoleOf(c) != tc.role {
			t.Errorf("%s: cert names %q role %q", tc.role, c.Subject.CommonName, RoleOf(c))
		}
		// A node's chassis name is also its DNS name (what OVN's IPsec
		// peers match); other roles get only the names asked for.
		if wantDNS := tc.role == RoleNode; slices.Equal(c.DNSNames, []string{tc.name}) != wantDNS || (!wantDNS && len(c.DNSNames) != 0) {
			t.Errorf("%s: DNS names %q", tc.role, c.DNSNames)
		}
		opts := x509.VerifyOptions{Roots: tc.trustedBy, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
		if _, err := c.Verify(opts); err != nil {
			t.Errorf("%s: not verified by its CA: %v", tc.role, err)
		}
		opts.Roots = tc.not
		if _, err := c.Verify(opts); err == nil {
			t.Errorf("%s: verified by the other CA", tc.role)
		}
		if st, _ := os.Stat(f.Key); st.Mode().Perm() != 0o600 {
			t.Errorf("%s: key mode %v, want 0600", tc.role, st.Mode().Perm())
		}
		if is.Cert.NotAfter.After(time.Now().Add(2 * time.Hour)) {
			t.Errorf("%s: validity ignored: %v", tc.role, is.Cert.NotAfter)
		}
		// ca.pem verifies servers: it is the control CA for every role.
		ca, _ := ReadCert(f.CA)
		if ca.Subject.CommonName != "ovlmgr control CA" {
			t.Errorf("%s: ca.pem is %q", tc.role, ca.Subject.CommonName)
		}
	}
	if _, err := (&CA{Name: ControlCA, Cert: &x509.Certificate{}}).Issue(Request{Name: "n1", Role: RoleNode}); err == nil {
		t.Error("control CA issued a node certificate")
	}
	if _, err := ParseRole("root"); err == nil {
		t.Error("role root accepted")
	}
}
