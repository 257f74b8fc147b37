package mqttgw

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	stdnet "net"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	lnet "github.com/ledgemq/ledge/net"
)

// listen serves g's gateway on another listener (WebSocket or TLS) and
// returns its address.
func (g *gateway) listen(t *testing.T, h lnet.Handler, opts lnet.Options) string {
	t.Helper()
	opts.MaxInput = g.srv.MaxInput()
	ln, err := lnet.Listen("tcp", "127.0.0.1:0", h, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = ln.Shutdown(ctx)
	})
	return ln.Addr().String()
}

// A browser-style client over WebSocket (paho's ws:// transport) talks
// with a device on plain TCP.
func TestWebSocketClients(t *testing.T) {
	forEachTransport(t, func(t *testing.T, portable bool) {
		g := startGateway(t, portable, Options{}, "")
		wsAddr := g.listen(t, g.srv.WebSocketHandler(), lnet.Options{Portable: portable})
		in := newInbox()
		dash := client311(t, "", "dashboard", true, func(o *paho.ClientOptions) {
			o.Servers = nil
			o.AddBroker("ws://" + wsAddr + "/mqtt")
		})
		wait(t, dash.Subscribe("site/+/temp", 1, in.handler))
		dev := client311(t, g.addr, "device", true)
		big := make([]byte, 100<<10) // several frames' worth
		wait(t, dev.Publish("site/7/temp", 1, false, big))
		if m := in.next(t); m.Topic() != "site/7/temp" || len(m.Payload()) != len(big) {
			t.Fatalf("got %s with %d bytes", m.Topic(), len(m.Payload()))
		}
		wait(t, dash.Publish("site/7/setpoint", 1, false, "19"))
	})
}

func TestWebSocketRefusesAPlainHTTPRequest(t *testing.T) {
	g := startGateway(t, false, Options{}, "")
	wsAddr := g.listen(t, g.srv.WebSocketHandler(), lnet.Options{})
	c, err := stdnet.Dial("tcp", wsAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 256)
	n, _ := c.Read(buf)
	if string(buf[:12]) != "HTTP/1.1 400" {
		t.Fatalf("answer %q", buf[:n])
	}
}

func TestTLSClients(t *testing.T) {
	g := startGateway(t, false, Options{}, "")
	cert := selfSigned(t)
	tlsAddr := g.listen(t, g.srv.Handler(), lnet.Options{TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}})
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	in := newInbox()
	c := client311(t, "", "secure", true, func(o *paho.ClientOptions) {
		o.Servers = nil
		o.AddBroker("tls://" + tlsAddr)
		o.SetTLSConfig(&tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	})
	wait(t, c.Subscribe("s/#", 1, in.handler))
	wait(t, c.Publish("s/x", 1, false, "over tls"))
	if m := in.next(t); string(m.Payload()) != "over tls" {
		t.Fatalf("got %q", m.Payload())
	}
}

func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "ledge test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []stdnet.IP{stdnet.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}
