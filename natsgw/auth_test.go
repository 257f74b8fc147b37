package natsgw

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ledgemq/ledge/auth"
	"github.com/ledgemq/ledge/auth/authtest"
	"github.com/ledgemq/ledge/broker"
	lnet "github.com/ledgemq/ledge/net"
)

const natsUsers = `
[group devices]
publish = site.%u.>
subscribe = site.%u.> _INBOX.>
publish-deny = site.%u.secret
subscribe-deny = site.%u.secret

[user dev-7]
password = plain:pw7
groups = devices

[user dev-8]
password = plain:pw8
groups = devices

[user svc]
password = plain:pws
publish = svc.>
subscribe = svc.>
allow-responses = true

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

// asyncErrors collects a connection's asynchronous errors (the -ERR
// lines that do not close it).
type asyncErrors struct {
	mu   sync.Mutex
	errs []string
	ch   chan string
}

func (a *asyncErrors) option() nats.Option {
	a.ch = make(chan string, 16)
	return nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		a.mu.Lock()
		a.errs = append(a.errs, err.Error())
		a.mu.Unlock()
		a.ch <- err.Error()
	})
}

func (a *asyncErrors) next(t *testing.T) string {
	t.Helper()
	select {
	case e := <-a.ch:
		return e
	case <-time.After(5 * time.Second):
		t.Fatal("no asynchronous error")
	}
	return ""
}

func nothing(t *testing.T, sub *nats.Subscription, what string) {
	t.Helper()
	if m, err := sub.NextMsg(200 * time.Millisecond); err == nil {
		t.Fatalf("%s: got %q on %s", what, m.Data, m.Subject)
	}
}

func TestPermissions(t *testing.T) {
	forEachTransport(t, func(t *testing.T, portable bool) {
		g := startGateway(t, portable, Options{Auth: newAuth(t, natsUsers)}, "")
		root := connect(t, g.url, nats.UserInfo("root", "root"))
		all, _ := root.SubscribeSync("site.>")
		root.Flush()

		var ae asyncErrors
		dev := connect(t, g.url, nats.UserInfo("dev-7", "pw7"), ae.option())
		// Its own subjects: allowed.
		dev.Publish("site.dev-7.temp", []byte("21.5"))
		if m := nextMsg(t, all); m.Subject != "site.dev-7.temp" {
			t.Fatalf("got %s", m.Subject)
		}
		// Another device's subject and a denied one: refused, the
		// connection stays.
		for _, subj := range []string{"site.dev-8.temp", "site.dev-7.secret", "other"} {
			dev.Publish(subj, []byte("x"))
			if e := ae.next(t); !strings.Contains(e, "Permissions Violation for Publish to \""+subj+"\"") {
				t.Errorf("publish %s: error %q", subj, e)
			}
		}
		nothing(t, all, "denied publishes")
		if !dev.IsConnected() {
			t.Fatal("a permission error closed the connection")
		}
		healthy(t, root)

		// Subscriptions: another device's refused; a wide one sees only
		// what the rules let through.
		dev.SubscribeSync("site.dev-8.>")
		if e := ae.next(t); !strings.Contains(e, `Permissions Violation for Subscription to "site.dev-8.>"`) {
			t.Errorf("subscribe: %q", e)
		}
		wide, err := dev.SubscribeSync("site.*.temp")
		if err != nil {
			t.Fatal(err)
		}
		secret, _ := dev.SubscribeSync("site.dev-7.*")
		dev.Flush()
		root.Publish("site.dev-8.temp", []byte("not yours"))
		root.Publish("site.dev-7.secret", []byte("denied"))
		root.Publish("site.dev-7.temp", []byte("yours"))
		if m := nextMsg(t, wide); string(m.Data) != "yours" {
			t.Fatalf("the wide subscription got %q", m.Data)
		}
		if m := nextMsg(t, secret); string(m.Data) != "yours" {
			t.Fatalf("site.dev-7.* got %q first", m.Data)
		}
		nothing(t, wide, "a wide subscription")
		nothing(t, secret, "a subscription over a denied subject")
	})
}

// A service answers requests under allow-responses, and a client allowed
// to subscribe to every inbox still reads only its own replies.
func TestResponsesAndPrivateInboxes(t *testing.T) {
	g := startGateway(t, false, Options{Auth: newAuth(t, natsUsers)}, "")
	svc := connect(t, g.url, nats.UserInfo("svc", "pws"))
	svc.Subscribe("svc.time", func(m *nats.Msg) { m.Respond([]byte("noon")) })
	svc.Flush()
	snoop := connect(t, g.url, nats.UserInfo("dev-8", "pw8"))
	spy, _ := snoop.SubscribeSync("_INBOX.>")
	snoop.Flush()
	root := connect(t, g.url, nats.UserInfo("root", "root"))
	for range 3 {
		m, err := root.Request("svc.time", nil, 5*time.Second)
		if err != nil || string(m.Data) != "noon" {
			t.Fatalf("request: %v %v", m, err)
		}
	}
	nothing(t, spy, "another client's replies")
	// Its own requests' replies do reach it through _INBOX.>.
	root.Subscribe("site.dev-8.echo", func(m *nats.Msg) { m.Respond(m.Data) })
	root.Flush()
	m, err := snoop.Request("site.dev-8.echo", []byte("me"), 5*time.Second)
	if err != nil || string(m.Data) != "me" {
		t.Fatalf("own request: %v %v", m, err)
	}
}

func TestJetStreamAPIFollowsPermissions(t *testing.T) {
	b := openBroker(t)
	g := startGateway(t, false, Options{Auth: newAuth(t, natsUsers+`
[user js]
password = plain:js
publish = $JS.API.> orders.> secret.>
subscribe = _INBOX.> orders.> other.>
disk-quota = 10KB
`), Broker: b}, "")
	rc := dialRaw(t, g)
	rc.send(t, "CONNECT {\"user\":\"dev-7\",\"pass\":\"pw7\",\"verbose\":false}\r\nPUB $JS.API.STREAM.CREATE.X _INBOX.r 2\r\n{}\r\nPING\r\n")
	if l := rc.line(t); l != `-ERR 'Permissions Violation for Publish to "$JS.API.STREAM.CREATE.X"'` {
		t.Fatalf("got %q", l)
	}
	if l := rc.line(t); l != "PONG" {
		t.Fatalf("after the violation: %q", l)
	}
	nc := connect(t, g.url, nats.UserInfo("js", "js"))
	js, err := nc.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	si, err := js.AddStream(&nats.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}})
	if err != nil {
		t.Fatalf("a user with the API's subjects: %v", err)
	}
	// A stream without a limit gets what is left of the quota.
	if si.Config.MaxBytes != 10000 {
		t.Errorf("max bytes %d, want the quota", si.Config.MaxBytes)
	}
	// The quota is used up; and a stream may not capture what its
	// creator may not read.
	if _, err := js.AddStream(&nats.StreamConfig{Name: "MORE", Subjects: []string{"other.more"}, MaxBytes: 1}); err == nil || !strings.Contains(err.Error(), "insufficient storage") {
		t.Errorf("over the quota: %v", err)
	}
	if _, err := js.AddStream(&nats.StreamConfig{Name: "SECRET", Subjects: []string{"secret.>"}}); err == nil || !strings.Contains(err.Error(), "permissions violation") {
		t.Errorf("capturing what the user may not read: %v", err)
	}
	// An update keeps the owner and stays within the quota.
	si.Config.MaxBytes = 5000
	if _, err := js.UpdateStream(&si.Config); err != nil {
		t.Fatalf("update: %v", err)
	}
	if _, err := js.AddStream(&nats.StreamConfig{Name: "MORE", Subjects: []string{"other.more"}, MaxBytes: 5000}); err != nil {
		t.Errorf("within what the update freed: %v", err)
	}
}

func TestReloadRevokesAndRemoves(t *testing.T) {
	// The same hashes before and after: a hash that changes is a new
	// password, which ends the connections that used the old one.
	pw7, _ := auth.HashPassword("pw7", 4)
	root, _ := auth.HashPassword("root", 4)
	users := strings.NewReplacer("plain:pw7", pw7, "plain:root", root).Replace(natsUsers)
	svc := newAuth(t, users)
	g := startGateway(t, false, Options{Auth: svc}, "")
	var ae asyncErrors
	dev := connect(t, g.url, nats.UserInfo("dev-7", "pw7"), ae.option(), nats.NoReconnect())
	wide, _ := dev.SubscribeSync("site.dev-7.>")
	temp, _ := dev.SubscribeSync("site.dev-7.temp")
	dev.Flush()
	gone := dialRaw(t, g)
	gone.send(t, "CONNECT {\"user\":\"dev-8\",\"pass\":\"pw8\"}\r\nPING\r\n")
	if l := gone.line(t); l != "PONG" {
		t.Fatalf("dev-8: %q", l)
	}

	// dev-7 may now only subscribe to site.dev-7.x.>; dev-8 is gone.
	svc.Reload(authtest.Policy(t, `
[user dev-7]
password = `+pw7+`
subscribe = site.dev-7.x.>
[user root]
password = `+root+`
roles = admin
`))
	if e := ae.next(t); !strings.Contains(e, `Permissions Violation for Subscription to "site.dev-7.temp"`) {
		t.Errorf("the removed subscription's owner was told %q", e)
	}
	if l := gone.line(t); l != "-ERR 'Authorization Violation'" {
		t.Errorf("dev-8 was told %q", l)
	}
	if !gone.closed(t) {
		t.Error("the removed user's connection is still open")
	}
	rc := connect(t, g.url, nats.UserInfo("root", "root"))
	rc.Publish("site.dev-7.temp", []byte("old grant"))
	rc.Publish("site.dev-7.x.1", []byte("new grant"))
	if m := nextMsg(t, wide); string(m.Data) != "new grant" {
		t.Fatalf("the wide subscription, now filtered, got %q", m.Data)
	}
	nothing(t, temp, "a subscription removed by the reload")
	nothing(t, wide, "a wide subscription after the reload")
	if !dev.IsConnected() {
		t.Fatal("a user still allowed was dropped")
	}
}

// tlsGateway serves NATS over TLS: upgraded after INFO, or handshake
// first.
func tlsGateway(t *testing.T, svc *auth.Service, st *auth.ServerTLS, first bool) *gateway {
	t.Helper()
	opts := Options{Auth: svc, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	lo := lnet.Options{Portable: true}
	if first {
		opts.TLSHandshakeFirst = true
		lo.TLSConfig = st.Config()
	} else {
		opts.TLS = st.Config()
	}
	srv := NewServer(opts)
	lo.MaxInput = srv.MaxInput()
	ln, err := lnet.Listen("tcp", "127.0.0.1:0", srv.Handler(), lo)
	if err != nil {
		t.Fatal(err)
	}
	g := &gateway{srv: srv, ln: ln, url: "tls://" + ln.Addr().String()}
	t.Cleanup(g.stop)
	return g
}

func TestTLS(t *testing.T) {
	ca := authtest.NewCA(t, "plant CA")
	other := authtest.NewCA(t, "someone else")
	server := ca.Server()
	st, err := auth.NewServerTLS(auth.TLSFiles{Cert: server.CertFile, Key: server.KeyFile, CA: ca.CertFile})
	if err != nil {
		t.Fatal(err)
	}
	svc := newAuth(t, natsUsers)
	for _, first := range []bool{false, true} {
		name := "after INFO"
		if first {
			name = "handshake first"
		}
		t.Run(name, func(t *testing.T) {
			g := tlsGateway(t, svc, st, first)
			opts := []nats.Option{nats.RootCAs(ca.CertFile)}
			if first {
				opts = append(opts, nats.TLSHandshakeFirst())
			}
			nc := connect(t, g.url, append(opts, nats.UserInfo("root", "root"))...)
			healthy(t, nc)
			if !nc.TLSRequired() {
				t.Error("INFO does not say TLS is required")
			}
			// An untrusted server certificate is refused by the client.
			untrusted := []nats.Option{nats.RootCAs(other.CertFile), nats.UserInfo("root", "root"), nats.Timeout(2 * time.Second)}
			if first {
				untrusted = append(untrusted, nats.TLSHandshakeFirst())
			}
			if _, err := nats.Connect(g.url, untrusted...); err == nil || !strings.Contains(err.Error(), "certificate") {
				t.Errorf("untrusted CA: %v", err)
			}
			// A client certificate logs in as the user it names.
			cc := ca.Client("dev-9.plant.example")
			var ae asyncErrors
			dev := connect(t, g.url, append(opts, nats.ClientCert(cc.CertFile, cc.KeyFile), ae.option())...)
			dev.Publish("site.cert-dev.x", nil)
			dev.Publish("site.root.x", nil)
			if e := ae.next(t); !strings.Contains(e, `Publish to "site.root.x"`) {
				t.Errorf("the certificate's user: %q", e)
			}
			// A certificate of another CA is refused at the handshake.
			bad := other.Client("dev-9.plant.example")
			if _, err := nats.Connect(g.url, append(opts, nats.ClientCert(bad.CertFile, bad.KeyFile), nats.Timeout(2*time.Second))...); err == nil {
				t.Error("a client certificate of an unknown CA was accepted")
			}
		})
	}
}

// Plaintext clients are refused when TLS is required.
func TestTLSRequired(t *testing.T) {
	ca := authtest.NewCA(t, "plant CA")
	server := ca.Server()
	st, err := auth.NewServerTLS(auth.TLSFiles{Cert: server.CertFile, Key: server.KeyFile})
	if err != nil {
		t.Fatal(err)
	}
	g := tlsGateway(t, newAuth(t, natsUsers), st, false)
	rc := dialRaw(t, g)
	rc.send(t, "CONNECT {}\r\nPING\r\n")
	if !rc.closed(t) {
		t.Fatal("a plaintext client was served")
	}
}

func TestCertificateReload(t *testing.T) {
	ca := authtest.NewCA(t, "old CA")
	newCA := authtest.NewCA(t, "new CA")
	server := ca.Server()
	dir := t.TempDir()
	certFile, keyFile := dir+"/cert.pem", dir+"/key.pem"
	copyFile(t, server.CertFile, certFile)
	copyFile(t, server.KeyFile, keyFile)
	st, err := auth.NewServerTLS(auth.TLSFiles{Cert: certFile, Key: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	g := tlsGateway(t, newAuth(t, natsUsers), st, false)
	old := connect(t, g.url, nats.RootCAs(ca.CertFile), nats.UserInfo("root", "root"))

	// A broken file is refused and the certificate in force stays.
	os.WriteFile(certFile, []byte("not a certificate"), 0o600)
	if err := st.Reload(); err == nil {
		t.Fatal("a broken certificate was loaded")
	}
	connect(t, g.url, nats.RootCAs(ca.CertFile), nats.UserInfo("root", "root")).Close()

	renewed := newCA.Server()
	copyFile(t, renewed.CertFile, certFile)
	copyFile(t, renewed.KeyFile, keyFile)
	if err := st.Reload(); err != nil {
		t.Fatal(err)
	}
	healthy(t, old)
	connect(t, g.url, nats.RootCAs(newCA.CertFile), nats.UserInfo("root", "root"))
	if _, err := nats.Connect(g.url, nats.RootCAs(ca.CertFile), nats.UserInfo("root", "root"), nats.Timeout(2*time.Second)); err == nil {
		t.Error("a new connection still got the old certificate")
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// Wrong passwords from many connections do not stop a client that is
// already in, and are answered with the authorization error.
func TestBadLoginFlood(t *testing.T) {
	g := startGateway(t, false, Options{Auth: newAuth(t, natsUsers)}, "")
	good := connect(t, g.url, nats.UserInfo("root", "root"))
	sub, _ := good.SubscribeSync("site.x")
	good.Flush()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	refused := make(chan error, 1000)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				_, err := nats.Connect(g.url, nats.UserInfo("dev-7", "guess"), nats.Timeout(5*time.Second))
				select {
				case refused <- err:
				default:
				}
			}
		}()
	}
	for i := range 200 {
		if err := good.Publish("site.x", []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		nextMsg(t, sub)
	}
	cancel()
	wg.Wait()
	close(refused)
	n := 0
	for err := range refused {
		n++
		// Refused, or timed out under a machine this busy (the race
		// detector): never let in.
		if err == nil || !(errors.Is(err, nats.ErrAuthorization) || strings.Contains(strings.ToLower(err.Error()), "authorization") ||
			strings.Contains(err.Error(), "Authentication Timeout") || errors.Is(err, nats.ErrTimeout)) {
			t.Fatalf("a bad login: %v", err)
		}
	}
	if n == 0 {
		t.Fatal("no bad login was answered")
	}
}

// openBroker opens a broker in a temporary folder, closed after the
// gateways started later in the test.
func openBroker(t *testing.T) *broker.Broker {
	t.Helper()
	b, err := broker.Open(broker.Options{Dir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}
