package net

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	stdnet "net"
	"sync/atomic"
	"testing"
	"time"
)

// selfSigned makes a certificate for 127.0.0.1 and a pool that trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "ledge test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []stdnet.IP{stdnet.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

func TestTLSUsesPortableTransport(t *testing.T) {
	cert, pool := selfSigned(t)
	big := bytes.Repeat([]byte("tls!"), 64<<10)
	var released atomic.Int32
	h := &funcHandler{data: func(c *Conn, in []byte) (int, error) {
		n, err := lineEcho(c, in)
		if n > 0 && bytes.Contains(in[:n], []byte("big\n")) {
			c.WriteRef(big, func() { released.Add(1) })
		}
		return n, err
	}}
	tc := transportCase{name: "portable", opts: Options{TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}}}
	s := start(t, tc, h, nil)
	nc, err := tls.DialWithDialer(&stdnet.Dialer{Timeout: testTimeout}, "tcp", s.Addr().String(), &tls.Config{RootCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(testTimeout))
	r := bufio.NewReader(nc)
	for _, msg := range []string{"hello\n", "over tls\n"} {
		io.WriteString(nc, msg)
		if got := readLine(t, r); got != msg {
			t.Fatalf("got %q", got)
		}
	}
	io.WriteString(nc, "big\n")
	if got := readLine(t, r); got != "big\n" {
		t.Fatalf("got %q", got)
	}
	got := make([]byte, len(big))
	if _, err := io.ReadFull(r, got); err != nil || !bytes.Equal(got, big) {
		t.Fatalf("big payload: %v", err)
	}
	waitFor(t, "release", func() bool { return released.Load() == 1 })
}
