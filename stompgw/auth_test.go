package stompgw

import (
	"crypto/tls"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3"

	"github.com/ledgemq/ledge/auth"
	"github.com/ledgemq/ledge/auth/authtest"
	lnet "github.com/ledgemq/ledge/net"
)

const stompUsers = `
[group devices]
publish = site/%u/#
subscribe = site/%u/#

[user dev-7]
password = plain:pw7
groups = devices

[user app]
password = plain:app
publish = orders.>
subscribe = orders.>
amqp-configure = ^(orders|amq\.gen-.*)$
amqp-write = ^(orders|amq\.default|amq\.topic|amq\.gen-.*)$
amqp-read = ^(orders|amq\.topic|amq\.gen-.*)$

[user root]
password = plain:root
roles = admin

[user cert-dev]
cert = dev-9.plant.example
groups = devices
`

func newAuth(t testing.TB, users string) *auth.Service {
	t.Helper()
	svc := auth.New(auth.Options{Policy: authtest.Policy(t, users), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	t.Cleanup(svc.Close)
	return svc
}

func TestLogin(t *testing.T) {
	g := startGateway(t, false, Options{Auth: newAuth(t, stompUsers)}, "")
	if _, err := stomp.Dial("tcp", g.addr, stomp.ConnOpt.Login("app", "wrong"), stomp.ConnOpt.Logger(quietStomp{})); err == nil {
		t.Fatal("wrong passcode accepted")
	}
	r := dialRaw(t, g.addr)
	r.send("CONNECT\naccept-version:1.2\nlogin:app\n\n\x00")
	r.readError("access refused")
	r = dialRaw(t, g.addr)
	r.send("CONNECT\naccept-version:1.2\n\n\x00")
	r.readError("access refused")
	// The passcode is checked off the loop; frames behind the CONNECT
	// wait for it and keep their order.
	r = dialRaw(t, g.addr)
	r.send("CONNECT\naccept-version:1.2\nlogin:app\npasscode:app\n\n\x00SEND\ndestination:/queue/orders\nreceipt:r1\n\nx\x00")
	if f := r.read(); f.Command != "CONNECTED" {
		t.Fatalf("%s %v", f.Command, f.Header)
	}
	if f := r.read(); f.Command != "RECEIPT" || f.Header.Get("receipt-id") != "r1" {
		t.Fatalf("%s %v", f.Command, f.Header)
	}
	c := dial(t, g.addr, stomp.ConnOpt.Login("app", "app"))
	must(t, c.Send("/queue/orders", "", nil, stomp.SendOpt.Receipt))
}

// A user limited to site/%u/# sends and subscribes there on /topic, and
// is refused elsewhere with an ERROR, as an AMQP connection would be.
func TestSiteUserOnSTOMP(t *testing.T) {
	g := startGateway(t, false, Options{Auth: newAuth(t, stompUsers)}, "")
	dev := dial(t, g.addr, stomp.ConnOpt.Login("dev-7", "pw7"))
	sub, err := dev.Subscribe("/topic/site.dev-7.#", stomp.AckAuto)
	must(t, err)
	// The subscription is in place once the device's own message comes
	// through it.
	must(t, dev.Send("/topic/site.dev-7.sync", "", []byte("sync"), stomp.SendOpt.Receipt))
	if m := next(t, sub); string(m.Body) != "sync" {
		t.Fatalf("got %q", m.Body)
	}
	root := dial(t, g.addr, stomp.ConnOpt.Login("root", "root"))
	must(t, root.Send("/topic/site.dev-8.temp", "", []byte("not yours"), stomp.SendOpt.Receipt))
	must(t, root.Send("/topic/site.dev-7.temp", "", []byte("yours"), stomp.SendOpt.Receipt))
	if m := next(t, sub); string(m.Body) != "yours" {
		t.Fatalf("got %q", m.Body)
	}
	for _, frames := range []string{
		"SEND\ndestination:/topic/site.dev-8.temp\n\nx\x00",        // another device's subject
		"SUBSCRIBE\nid:1\ndestination:/topic/site.dev-8.#\n\n\x00", // a binding outside the rules
		"SUBSCRIBE\nid:1\ndestination:/topic/#\n\n\x00",            // wider than the rules
		"SEND\ndestination:/queue/orders\n\nx\x00",                 // a named queue
		"SUBSCRIBE\nid:1\ndestination:/amq/queue/orders\n\n\x00",   // reading it
	} {
		r := dialRaw(t, g.addr)
		r.send("CONNECT\naccept-version:1.2\nlogin:dev-7\npasscode:pw7\n\n\x00")
		if f := r.read(); f.Command != "CONNECTED" {
			t.Fatalf("connect: %s", f.Command)
		}
		r.send(frames)
		r.readError("access_refused")
	}
	none(t, sub, 100*time.Millisecond)
}

func TestReloadRevokesSTOMP(t *testing.T) {
	pw, _ := auth.HashPassword("pw7", 4)
	root, _ := auth.HashPassword("root", 4)
	svc := newAuth(t, strings.NewReplacer("plain:pw7", pw, "plain:root", root).Replace(stompUsers))
	g := startGateway(t, false, Options{Auth: svc}, "")
	r := dialRaw(t, g.addr)
	r.send("CONNECT\naccept-version:1.2\nlogin:dev-7\npasscode:pw7\n\n\x00")
	if f := r.read(); f.Command != "CONNECTED" {
		t.Fatalf("connect: %s", f.Command)
	}
	svc.Reload(authtest.Policy(t, "[user root]\npassword = "+root+"\nroles = admin\n"))
	r.readError("access refused")
	r.closed()
}

func TestSTOMPClientCertificate(t *testing.T) {
	ca := authtest.NewCA(t, "ca")
	server := ca.Server()
	st, err := auth.NewServerTLS(auth.TLSFiles{Cert: server.CertFile, Key: server.KeyFile, CA: ca.CertFile})
	must(t, err)
	g := startGateway(t, false, Options{Auth: newAuth(t, stompUsers)}, "")
	ln, err := lnet.Listen("tcp", "127.0.0.1:0", g.srv.Handler(), lnet.Options{MaxInput: g.srv.MaxInput(), TLSConfig: st.Config()})
	must(t, err)
	t.Cleanup(func() { ln.Close() })
	nc, err := tls.Dial("tcp", ln.Addr().String(), authtest.ClientTLS(ca, ca.Client("dev-9.plant.example")))
	must(t, err)
	c, err := stomp.Connect(nc, stomp.ConnOpt.Host("/"), stomp.ConnOpt.Logger(quietStomp{}))
	if err != nil {
		t.Fatalf("a client certificate without a login: %v", err)
	}
	defer c.Disconnect()
	sub, err := c.Subscribe("/topic/site.cert-dev.#", stomp.AckAuto)
	must(t, err)
	must(t, c.Send("/topic/site.cert-dev.x", "", []byte("mine"), stomp.SendOpt.Receipt))
	if m := next(t, sub); string(m.Body) != "mine" {
		t.Fatalf("got %q", m.Body)
	}
}
