package vagrant

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ovlmgr/ovlmgr/lab/prereq"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/pki"
)

// TestProvisionIPsecChecks runs provision.sh's ipsec step against certificates made by ovlmgr's PKI (files under a
// temporary root): a missing file, a certificate of another chassis, one without the chassis name as DNS name (which
// strongSwan needs), one from another node CA each stop it with its message before anything is written; a good one
// passes every certificate check and reaches the package check (openvswitch-ipsec is not on this machine; where it is,
// the good certificate must only not be refused: the step would go on to configure this machine's OVS).
func TestProvisionIPsecChecks(t *testing.T) {
	prereq.Bins(t, "bash", "openssl")
	dir := t.TempDir()
	if err := pki.Init(dir, 0, false); err != nil {
		t.Fatal(err)
	}
	other := t.TempDir()
	if err := pki.Init(other, 0, false); err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(pki.CAFile(dir, pki.NodeCA))
	if err != nil {
		t.Fatal(err)
	}
	issue := func(pkiDir, name string, dns ...string) (cert, key []byte) {
		t.Helper()
		f, _, err := pki.IssueTo(pkiDir, t.TempDir(), pki.Request{Name: name, Role: pki.RoleNode, DNSNames: dns})
		if err != nil {
			t.Fatal(err)
		}
		cert, _ = os.ReadFile(f.Cert)
		key, _ = os.ReadFile(f.Key)
		return cert, key
	}
	type files struct{ cert, key, ca []byte }
	good := func() files { c, k := issue(dir, "worker2", "worker2"); return files{c, k, caPEM} }
	for _, tc := range []struct {
		name  string
		files files
		want  string
	}{
		{"no certificate", files{nil, []byte("k"), caPEM}, "/etc/ovlmgr/ipsec/worker2.pem is missing: issue the chassis certificate"},
		{"no CA", func() files { f := good(); f.ca = nil; return f }(), "/etc/ovlmgr/ipsec/node-ca.pem is missing"},
		{"other chassis", func() files { c, k := issue(dir, "worker9", "worker2"); return files{c, k, caPEM} }(),
			"has common name 'worker9', not the chassis name worker2"},
		{"no dns name", func() files { c, k := withoutSAN(t, dir, "worker2"); return files{c, k, caPEM} }(),
			"has no DNS name worker2: strongSwan matches the peer's identity"},
		{"other node CA", func() files { c, k := issue(other, "worker2", "worker2"); return files{c, k, caPEM} }(),
			"is not signed by"},
		{"good", good(), "openvswitch-ipsec is not installed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			ipsecDir := filepath.Join(root, "etc/ovlmgr/ipsec")
			if err := os.MkdirAll(ipsecDir, 0o700); err != nil {
				t.Fatal(err)
			}
			for name, b := range map[string][]byte{"worker2.pem": tc.files.cert, "worker2-key.pem": tc.files.key, "node-ca.pem": tc.files.ca} {
				if b != nil {
					if err := os.WriteFile(filepath.Join(ipsecDir, name), b, 0o600); err != nil {
						t.Fatal(err)
					}
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, "bash", "provision.sh", "ipsec")
			cmd.Env = append(os.Environ(), "OVLMGR_ROOT="+root, "OVLMGR_NODE=worker2", "OVLMGR_SYSTEM_ID=worker2")
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			installed := exec.Command("dpkg-query", "-W", "-f=${Status}", "openvswitch-ipsec").Run() == nil
			if tc.name == "good" && installed {
				// Past the checks it would configure this machine's OVS: here only its certificate must not be refused.
				if strings.Contains(stderr.String(), "/etc/ovlmgr/ipsec/") {
					t.Errorf("a good certificate refused: %s", stderr.String())
				}
				return
			}
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
				t.Fatalf("provision.sh ipsec: %v (want exit 1)\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
			}
			if !strings.Contains(stderr.String(), "ERROR: ") || !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("stderr = %q, want %q", stderr.String(), tc.want)
			}
			for _, f := range []string{"etc/ovlmgr/ipsec/ipsec.secrets", "etc/strongswan.d/ovlmgr-ipsec.conf"} {
				if _, err := os.Stat(filepath.Join(root, f)); err == nil {
					t.Errorf("%s written by a run that failed its checks", f)
				}
			}
		})
	}
}

// withoutSAN signs a node certificate for name with the node CA of dir and
// no subject alternative name, as ovlmgr's PKI issued them before it added
// the chassis name as a DNS name (and a subject that is only the CN, which
// the step must still read).
func withoutSAN(t *testing.T, dir, name string) (cert, key []byte) {
	t.Helper()
	ca, err := pki.LoadCA(dir, pki.NodeCA)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(mustRead(t, filepath.Join(dir, pki.NodeCA+"-ca-key.pem")))
	if b == nil {
		t.Fatal("node CA key: no PEM block")
	}
	caKey, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &k.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd})
}

func mustRead(t *testing.T, f string) []byte {
	t.Helper()
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
