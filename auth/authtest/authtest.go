// Package authtest makes what the tests of auth and of the gateways need
// to exercise authentication for real: certificate authorities and
// certificates made with crypto/x509 in the test, written to PEM files,
// and users files. It is for tests only.
package authtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ledgemq/ledge/auth"
)

var serial atomic.Int64

// CA is a certificate authority made for one test.
type CA struct {
	t    testing.TB
	dir  string
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	// CertFile is the CA's certificate in PEM, to trust or to verify
	// clients with.
	CertFile string
	// Pool holds the CA's certificate.
	Pool *x509.CertPool
}

// NewCA makes a CA named name, with its files in a temporary folder.
func NewCA(t testing.TB, name string) *CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial.Add(1)),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	ca := &CA{t: t, dir: t.TempDir(), cert: cert, key: key, Pool: x509.NewCertPool()}
	ca.Pool.AddCert(cert)
	ca.CertFile = ca.write(strings.ReplaceAll(name, " ", "_")+"-ca.pem", "CERTIFICATE", der)
	return ca
}

func (ca *CA) write(name, kind string, der []byte) string {
	p := filepath.Join(ca.dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		ca.t.Fatal(err)
	}
	return p
}

// Cert is a certificate the CA issued, with its key.
type Cert struct {
	CertFile, KeyFile string
	TLS               tls.Certificate
	Leaf              *x509.Certificate
}

// Server issues a server certificate for 127.0.0.1, ::1 and localhost
// (and any other names given).
func (ca *CA) Server(names ...string) *Cert {
	return ca.issue("server", append([]string{"localhost"}, names...), x509.ExtKeyUsageServerAuth)
}

// Client issues a client certificate whose subject CN is cn, with the DNS
// names given as SANs.
func (ca *CA) Client(cn string, sans ...string) *Cert {
	return ca.issue(cn, sans, x509.ExtKeyUsageClientAuth)
}

func (ca *CA) issue(cn string, dns []string, usage x509.ExtKeyUsage) *Cert {
	ca.t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		ca.t.Fatal(err)
	}
	n := serial.Add(1)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(n),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		DNSNames:     dns,
	}
	if usage == x509.ExtKeyUsageServerAuth {
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		ca.t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		ca.t.Fatal(err)
	}
	base := strings.NewReplacer(" ", "_", "/", "_").Replace(cn) + "-" + big.NewInt(n).String()
	c := &Cert{
		CertFile: ca.write(base+".pem", "CERTIFICATE", der),
		KeyFile:  ca.write(base+"-key.pem", "EC PRIVATE KEY", kder),
	}
	c.TLS, err = tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		ca.t.Fatal(err)
	}
	c.Leaf, _ = x509.ParseCertificate(der)
	return c
}

// ClientTLS returns a client configuration that trusts ca and presents
// cert (when not nil).
func ClientTLS(ca *CA, cert *Cert) *tls.Config {
	cfg := &tls.Config{RootCAs: ca.Pool, MinVersion: tls.VersionTLS12, ServerName: "localhost"}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{cert.TLS}
	}
	return cfg
}

// Policy parses a users file written in the test. Passwords may be given
// in clear as "password = plain:SECRET": they are hashed here, at the
// lowest bcrypt cost, so tests stay fast.
func Policy(t testing.TB, text string) *auth.Policy {
	t.Helper()
	p, err := auth.Parse("test-users", strings.NewReader(HashPlain(t, text)))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// HashPlain replaces each "plain:SECRET" with the bcrypt hash of SECRET.
func HashPlain(t testing.TB, text string) string {
	t.Helper()
	var b strings.Builder
	for _, line := range strings.SplitAfter(text, "\n") {
		k, v, ok := strings.Cut(line, "=")
		if ok && strings.TrimSpace(k) == "password" {
			if pw, isPlain := strings.CutPrefix(strings.TrimSpace(v), "plain:"); isPlain {
				h, err := auth.HashPassword(pw, 4)
				if err != nil {
					t.Fatal(err)
				}
				line = k + "= " + h + "\n"
			}
		}
		b.WriteString(line)
	}
	return b.String()
}

// WriteFile writes a users file (plain passwords hashed) into a temporary
// folder and returns its path.
func WriteFile(t testing.TB, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "users")
	if err := os.WriteFile(p, []byte(HashPlain(t, text)), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
