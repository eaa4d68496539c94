package dbconn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/ovn-kubernetes/libovsdb/client"

	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/sbdb"
)

// Environment variables naming the TLS files for ssl: endpoints (the CLI's
// --ca-cert, --cert and --private-key flags set the same).
const (
	EnvCACert     = "OVLMGR_CA_CERT"
	EnvCert       = "OVLMGR_CERT"
	EnvPrivateKey = "OVLMGR_PRIVATE_KEY"
)

// ErrNoTLS: an ssl: endpoint was given without certificates.
var ErrNoTLS = errors.New("ssl endpoint without certificates")

// TLSFiles are the PEM files of a client identity: the CA that signed the
// servers, this client's certificate and its private key.
type TLSFiles struct {
	CA, Cert, Key string
}

// Empty reports whether no file is set.
func (f TLSFiles) Empty() bool { return f.CA == "" && f.Cert == "" && f.Key == "" }

// Config loads the files into a client tls.Config (mutual TLS: the server
// must present a certificate of the CA; this client presents Cert).
func (f TLSFiles) Config() (*tls.Config, error) {
	var missing []string
	for _, p := range []struct{ name, v string }{{"CA certificate (--ca-cert, " + EnvCACert + ")", f.CA},
		{"certificate (--cert, " + EnvCert + ")", f.Cert}, {"private key (--private-key, " + EnvPrivateKey + ")", f.Key}} {
		if p.v == "" {
			missing = append(missing, p.name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: missing %s", ErrNoTLS, strings.Join(missing, ", "))
	}
	ca, err := os.ReadFile(f.CA)
	if err != nil {
		return nil, fmt.Errorf("TLS CA certificate: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("TLS CA certificate %s: no PEM certificate in it", f.CA)
	}
	pair, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return nil, fmt.Errorf("TLS certificate %s with key %s: %w", f.Cert, f.Key, err)
	}
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, nil
}

var (
	tlsMu       sync.Mutex
	tlsDefault  *tls.Config
	tlsDefFiles TLSFiles
)

// SetTLSFiles sets the identity used for ssl: endpoints when Options.TLS is
// nil (the CLI's flags). Empty fields fall back to the OVLMGR_* variables.
func SetTLSFiles(f TLSFiles) {
	tlsMu.Lock()
	defer tlsMu.Unlock()
	tlsDefFiles, tlsDefault = f, nil
}

// TLSFilesFromEnv returns what SetTLSFiles set, completed from
// OVLMGR_CA_CERT, OVLMGR_CERT and OVLMGR_PRIVATE_KEY.
func TLSFilesFromEnv() TLSFiles {
	tlsMu.Lock()
	f := tlsDefFiles
	tlsMu.Unlock()
	return f.orEnv()
}

func (f TLSFiles) orEnv() TLSFiles {
	if f.CA == "" {
		f.CA = os.Getenv(EnvCACert)
	}
	if f.Cert == "" {
		f.Cert = os.Getenv(EnvCert)
	}
	if f.Key == "" {
		f.Key = os.Getenv(EnvPrivateKey)
	}
	return f
}

// defaultTLS returns the process's identity for ssl: endpoints, loading
// it once.
func defaultTLS() (*tls.Config, error) {
	tlsMu.Lock()
	defer tlsMu.Unlock()
	if tlsDefault != nil {
		return tlsDefault, nil
	}
	cfg, err := tlsDefFiles.orEnv().Config()
	if err != nil {
		return nil, err
	}
	tlsDefault = cfg
	return cfg, nil
}

func anySSL(eps []string) bool {
	for _, ep := range eps {
		if strings.HasPrefix(ep, "ssl:") {
			return true
		}
	}
	return false
}

// PermissionError is the OVSDB error a server (RBAC) or the ovlmgr control
// service returns for a write the client's identity may not do.
const PermissionError = "permission error"

// IsPermission reports whether err is a transaction refused with an OVSDB
// permission error, and returns its details.
func IsPermission(err error) (string, bool) {
	var te *TxError
	if errors.As(err, &te) && te.Op != nil && te.Op.Error == PermissionError {
		return te.Op.Details, true
	}
	return "", false
}

// ClientTLS returns the process's client identity for ssl: endpoints
// (SetTLSFiles, then the OVLMGR_* variables), for code that speaks OVSDB
// without libovsdb (the lock probe of ovn/health).
func ClientTLS() (*tls.Config, error) {
	cfg, err := defaultTLS()
	if err != nil {
		return nil, err
	}
	return cfg.Clone(), nil
}

type tlsKey struct{}

// WithTLS returns ctx carrying cfg as the client identity for ssl:
// endpoints reached with it (code that takes no Options: the lock probe).
func WithTLS(ctx context.Context, cfg *tls.Config) context.Context {
	if cfg == nil {
		return ctx
	}
	return context.WithValue(ctx, tlsKey{}, cfg)
}

// ContextTLS returns the identity ctx carries (WithTLS), else ClientTLS.
func ContextTLS(ctx context.Context) (*tls.Config, error) {
	if cfg, ok := ctx.Value(tlsKey{}).(*tls.Config); ok {
		return cfg.Clone(), nil
	}
	return ClientTLS()
}

// ConnectNBTLS is ConnectNB with the identity cfg (nil: the process's).
func ConnectNBTLS(ctx context.Context, endpoints string, cfg *tls.Config) (client.Client, error) {
	return connectModel(ctx, nbdb.FullDatabaseModel, endpoints, Options{What: "NB", TLS: cfg})
}

// ConnectSBTLS is ConnectSB with the identity cfg (nil: the process's).
func ConnectSBTLS(ctx context.Context, endpoints string, cfg *tls.Config) (client.Client, error) {
	return connectModel(ctx, sbdb.FullDatabaseModel, endpoints, Options{What: "SB", TLS: cfg})
}
