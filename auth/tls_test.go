package auth_test

import (
	"crypto/tls"
	"os"
	"testing"

	"github.com/ledgemq/ledge/auth"
	"github.com/ledgemq/ledge/auth/authtest"
)

func TestServerTLSReload(t *testing.T) {
	ca := authtest.NewCA(t, "ca")
	c1 := ca.Server()
	dir := t.TempDir()
	cert, key := dir+"/c.pem", dir+"/k.pem"
	cp := func(from, to string) {
		b, _ := os.ReadFile(from)
		os.WriteFile(to, b, 0o600)
	}
	cp(c1.CertFile, cert)
	cp(c1.KeyFile, key)
	st, err := auth.NewServerTLS(auth.TLSFiles{Cert: cert, Key: key, CA: ca.CertFile})
	if err != nil {
		t.Fatal(err)
	}
	serial := func() string {
		ln, err := tls.Listen("tcp", "127.0.0.1:0", st.Config())
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			c, err := ln.Accept()
			if err == nil {
				c.(*tls.Conn).Handshake()
				c.Close()
			}
		}()
		c, err := tls.Dial("tcp", ln.Addr().String(), authtest.ClientTLS(ca, nil))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	first := serial()
	os.WriteFile(cert, []byte("garbage"), 0o600)
	if err := st.Reload(); err == nil {
		t.Fatal("a broken certificate was loaded")
	}
	if got := serial(); got != first {
		t.Fatal("a failed reload changed the certificate")
	}
	c2 := ca.Server()
	cp(c2.CertFile, cert)
	cp(c2.KeyFile, key)
	if err := st.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := serial(); got == first {
		t.Fatal("the reloaded certificate is not served")
	}
	if st.Config().MinVersion != tls.VersionTLS12 {
		t.Error("TLS below 1.2 allowed")
	}
}

func TestTLSFilesChecks(t *testing.T) {
	for _, f := range []auth.TLSFiles{{Cert: "x"}, {Key: "y"}, {Cert: "x", Key: "y", RequireClientCert: true}} {
		if f.Check() == nil {
			t.Errorf("%+v accepted", f)
		}
	}
	ca := authtest.NewCA(t, "ca")
	cl := ca.Client("me")
	cfg, err := auth.TLSFiles{CA: ca.CertFile, Cert: cl.CertFile, Key: cl.KeyFile}.ClientConfig()
	if err != nil || cfg.RootCAs == nil || len(cfg.Certificates) != 1 {
		t.Fatalf("client config: %v", err)
	}
}
