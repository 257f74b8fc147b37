package bridge

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/ledgemq/ledge/auth"
)

// writeCert makes a key pair signed by parent (self-signed when parent is
// nil) and writes name.pem and name-key.pem into dir.
func writeCert(t *testing.T, dir, name string, ca bool, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		IsCA:                  ca,
		BasicConstraintsValid: true,
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	kb, _ := x509.MarshalECPrivateKey(key)
	os.WriteFile(filepath.Join(dir, name+".pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(filepath.Join(dir, name+"-key.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return cert, key
}

// TestTLSWithClientCertAndToken: an upstream that requires TLS, a client
// certificate and a token is reached with the uplink's CA, certificate and
// token.
func TestTLSWithClientCertAndToken(t *testing.T) {
	dir := t.TempDir()
	ca, caKey := writeCert(t, dir, "ca", true, nil, nil)
	writeCert(t, dir, "server", false, ca, caKey)
	writeCert(t, dir, "client", false, ca, caKey)
	tc, err := server.GenTLSConfig(&server.TLSConfigOpts{
		CertFile: filepath.Join(dir, "server.pem"), KeyFile: filepath.Join(dir, "server-key.pem"),
		CaFile: filepath.Join(dir, "ca.pem"), Verify: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	up := startUpstream(t, func(o *server.Options) {
		o.TLS, o.TLSVerify, o.TLSConfig, o.TLSTimeout = true, true, tc, 2
		o.Authorization = "s3cret"
	})
	e := openEdge(t, t.TempDir(), false)
	u := quickUplink("cloud", "tls://"+up.url()[len("nats://"):])
	u.Subjects = []string{"sec.>"}
	u.Token = "s3cret"
	u.TLS = auth.TLSFiles{CA: filepath.Join(dir, "ca.pem"), Cert: filepath.Join(dir, "client.pem"), Key: filepath.Join(dir, "client-key.pem")}
	e.startBridge(u)
	waitFor(t, 10*time.Second, "uplink up over TLS", func() bool { return e.status("cloud").State == "up" })
	if s := e.status("cloud"); s.Mode != "jetstream" {
		t.Errorf("mode %q over TLS", s.Mode)
	}

	bad := quickUplink("nocert", "tls://"+up.url()[len("nats://"):])
	bad.Subjects = []string{"nocert.>"}
	bad.Token = "s3cret"
	bad.TLS.CA = filepath.Join(dir, "ca.pem")
	e2 := openEdge(t, t.TempDir(), false)
	e2.startBridge(bad)
	waitFor(t, 10*time.Second, "refused without a client certificate", func() bool {
		s := e2.status("nocert")
		return s.State != "up" && s.LastError != ""
	})
	t.Logf("without a client certificate: %s", e2.status("nocert").LastError)
}
