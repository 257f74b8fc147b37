package mqttgw

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	paho5 "github.com/eclipse/paho.golang/paho"
	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/ledgemq/ledge/auth"
	"github.com/ledgemq/ledge/auth/authtest"
	"github.com/ledgemq/ledge/mqttgw/packet"
	lnet "github.com/ledgemq/ledge/net"
)

const mqttUsers = `
[group devices]
publish = site/%u/#
subscribe = site/%u/# cmd/%c/#
subscribe-deny = site/%u/secret

[user dev-7]
password = plain:pw7
groups = devices

[user dev-8]
password = plain:pw8
groups = devices

[user root]
password = plain:root
roles = admin

[user cert-dev]
cert = dev-9.plant.example
groups = devices

[user slow]
password = plain:slow
max-msgs-per-second = 5
`

func newAuth(t testing.TB, users string, edit ...func(*auth.Options)) *auth.Service {
	t.Helper()
	o := auth.Options{Policy: authtest.Policy(t, users), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, e := range edit {
		e(&o)
	}
	svc := auth.New(o)
	t.Cleanup(svc.Close)
	return svc
}

func as(user, pass string) func(*paho.ClientOptions) {
	return func(o *paho.ClientOptions) { o.SetUsername(user).SetPassword(pass) }
}

func as5(user, pass string) func(*paho5.Connect) {
	return func(c *paho5.Connect) {
		c.Username, c.UsernameFlag = user, true
		c.Password, c.PasswordFlag = []byte(pass), true
	}
}

func TestSiteUser311(t *testing.T) {
	g := startGateway(t, false, Options{Auth: newAuth(t, mqttUsers)}, "")
	all := newInbox()
	root := client311(t, g.addr, "root", true, as("root", "root"))
	wait(t, root.Subscribe("#", 0, all.handler))

	dev := client311(t, g.addr, "dev-7-c", true, as("dev-7", "pw7"))
	wait(t, dev.Publish("site/dev-7/temp", 1, false, "21.5"))
	if m := all.next(t); m.Topic() != "site/dev-7/temp" {
		t.Fatalf("got %s", m.Topic())
	}
	// 3.1.1 has no refusal for a publish: a QoS 1 or 2 one is
	// acknowledged and dropped, and counted.
	for qos := byte(0); qos <= 2; qos++ {
		wait(t, dev.Publish("site/dev-8/temp", qos, false, "spoof"))
	}
	all.none(t, 200*time.Millisecond)
	if n := g.srv.Stats().Denied.Load(); n != 3 {
		t.Errorf("denied %d, want 3", n)
	}
	if !dev.IsConnected() {
		t.Fatal("a denied publish closed the connection")
	}
	// SUBACK says 0x80 for a refused filter only.
	in := newInbox()
	tok := dev.SubscribeMultiple(map[string]byte{"site/dev-7/#": 1, "site/dev-8/#": 1, "cmd/dev-7-c/#": 1}, in.handler)
	wait(t, tok)
	codes := tok.(*paho.SubscribeToken).Result()
	if codes["site/dev-7/#"] != 1 || codes["site/dev-8/#"] != 0x80 || codes["cmd/dev-7-c/#"] != 1 {
		t.Fatalf("SUBACK codes %v", codes)
	}
	wait(t, root.Publish("site/dev-8/temp", 1, false, "not yours"))
	wait(t, root.Publish("site/dev-7/secret", 1, false, "denied"))
	wait(t, root.Publish("cmd/dev-7-c/reboot", 1, false, "now"))
	if m := in.next(t); m.Topic() != "cmd/dev-7-c/reboot" {
		t.Fatalf("got %s", m.Topic())
	}
	in.none(t, 200*time.Millisecond)
}

func TestSiteUser5(t *testing.T) {
	g := startGateway(t, false, Options{Auth: newAuth(t, mqttUsers)}, "")
	dev := connect5(t, g.addr, "dev-7-c", as5("dev-7", "pw7"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, qos := range []byte{1, 2} {
		res, err := dev.c.Publish(ctx, &paho5.Publish{Topic: "site/dev-8/temp", QoS: qos, Payload: []byte("x")})
		if err == nil && res.ReasonCode != 0x87 {
			t.Errorf("QoS %d publish elsewhere: reason %#x", qos, res.ReasonCode)
		}
		if err != nil && !strings.Contains(err.Error(), "135") && !strings.Contains(strings.ToLower(err.Error()), "not authorized") {
			t.Errorf("QoS %d publish elsewhere: %v, want reason 0x87", qos, err)
		}
	}
	// paho.golang reports a SUBACK with a refused filter as an error,
	// with the SUBACK.
	sa, _ := dev.c.Subscribe(ctx, &paho5.Subscribe{Subscriptions: []paho5.SubscribeOptions{
		{Topic: "site/dev-7/#", QoS: 1}, {Topic: "site/dev-8/#", QoS: 1}, {Topic: "#", QoS: 1}}})
	if sa == nil || sa.Reasons[0] != 1 || sa.Reasons[1] != 0x87 || sa.Reasons[2] != 1 {
		t.Fatalf("SUBACK reasons %v", sa.Reasons)
	}
	// The wide '#' sees only what the rules allow.
	root := connect5(t, g.addr, "root", as5("root", "root"))
	root.pub(t, &paho5.Publish{Topic: "site/dev-8/temp", QoS: 1, Payload: []byte("no")})
	root.pub(t, &paho5.Publish{Topic: "site/dev-7/temp", QoS: 1, Payload: []byte("yes")})
	if m := dev.next(t); string(m.Payload) != "yes" {
		t.Fatalf("got %q on %s", m.Payload, m.Topic)
	}
	if m := dev.next(t); string(m.Payload) != "yes" {
		t.Fatalf("the second subscription: %q on %s", m.Payload, m.Topic)
	}
	dev.none(t, 200*time.Millisecond)
}

// A client id holding wildcards matches its own topics only: %c never
// widens cmd/%c/#.
func TestClientIDSubstitutionIsLiteral(t *testing.T) {
	g := startGateway(t, false, Options{Auth: newAuth(t, mqttUsers)}, "")
	for _, id := range []string{"#", "+", "a/b"} {
		r := dialRaw(t, g.addr, packet.Level5)
		r.write(packet.AppendConnect(nil, &packet.Connect{Level: packet.Level5, CleanStart: true, ClientID: []byte(id),
			UsernameFlag: true, Username: []byte("dev-7"), PasswordFlag: true, Password: []byte("pw7")}))
		if p, err := r.read(); err != nil || p.Type != packet.TypeConnack || p.Connack.Reason != 0 {
			t.Fatalf("connect %q: %+v %v", id, p, err)
		}
		r.write(packet.AppendSubscribe(nil, packet.Level5, &packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{
			{Filter: []byte("cmd/x/#"), QoS: 1}, {Filter: []byte("cmd/#"), QoS: 1},
		}}))
		p, err := r.read()
		if err != nil || p.Type != packet.TypeSuback {
			t.Fatalf("suback: %v", err)
		}
		if p.Suback.ReasonCodes[0] != packet.NotAuthorized {
			t.Errorf("client id %q may subscribe to cmd/x/#: %v", id, p.Suback.ReasonCodes)
		}
		r.Close()
	}
}

func TestWillAndRetainedObeyRules(t *testing.T) {
	g := startGateway(t, false, Options{Auth: newAuth(t, mqttUsers)}, "")
	// A will on a topic the user may not publish to: CONNECT refused.
	r := dialRaw(t, g.addr, packet.Level311)
	r.write(packet.AppendConnect(nil, &packet.Connect{Level: packet.Level311, CleanStart: true, ClientID: []byte("w"),
		UsernameFlag: true, Username: []byte("dev-7"), PasswordFlag: true, Password: []byte("pw7"),
		WillFlag: true, WillTopic: []byte("site/dev-8/status"), WillPayload: []byte("gone")}))
	got, closed := r.closed()
	if !closed || len(got) != 1 || got[0].Connack.ReturnCode != packet.RefusedNotAuthorized {
		t.Fatalf("a forbidden will: closed %v, %d packets", closed, len(got))
	}
	// Retained messages reach a wide subscription only where allowed.
	root := client311(t, g.addr, "root", true, as("root", "root"))
	wait(t, root.Publish("site/dev-8/state", 1, true, "other"))
	wait(t, root.Publish("site/dev-7/state", 1, true, "mine"))
	wait(t, root.Publish("site/dev-7/secret", 1, true, "denied"))
	in := newInbox()
	dev := client311(t, g.addr, "dev-7-c", true, as("dev-7", "pw7"))
	wait(t, dev.Subscribe("#", 1, in.handler))
	if m := in.next(t); string(m.Payload()) != "mine" || !m.Retained() {
		t.Fatalf("retained: %q on %s", m.Payload(), m.Topic())
	}
	in.none(t, 200*time.Millisecond)
}

func TestReloadRemovesAndRevokes(t *testing.T) {
	pw7, _ := auth.HashPassword("pw7", 4)
	root, _ := auth.HashPassword("root", 4)
	users := strings.NewReplacer("plain:pw7", pw7, "plain:root", root).Replace(mqttUsers)
	svc := newAuth(t, users)
	g := startGateway(t, false, Options{Auth: svc}, "")
	in := newInbox()
	dev := client311(t, g.addr, "dev-7-c", true, as("dev-7", "pw7"))
	wait(t, dev.Subscribe("site/dev-7/temp", 1, in.handler))
	wait(t, dev.Subscribe("cmd/dev-7-c/#", 1, in.handler))
	gone := connect5(t, g.addr, "dev-8-c", as5("dev-8", "pw8"))

	svc.Reload(authtest.Policy(t, `
[user dev-7]
password = `+pw7+`
subscribe = site/dev-7/#
[user root]
password = `+root+`
roles = admin
`))
	select {
	case d := <-gone.gone:
		if d.ReasonCode != 0x87 {
			t.Errorf("revoked with reason %#x, want 0x87", d.ReasonCode)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the removed user is still connected")
	}
	rc := client311(t, g.addr, "root", true, as("root", "root"))
	wait(t, rc.Publish("cmd/dev-7-c/reboot", 1, false, "old grant"))
	wait(t, rc.Publish("site/dev-7/temp", 1, false, "still"))
	if m := in.next(t); string(m.Payload()) != "still" {
		t.Fatalf("got %q", m.Payload())
	}
	in.none(t, 200*time.Millisecond)
}

func TestRateLimitThrottlesThenDisconnects(t *testing.T) {
	svc := newAuth(t, mqttUsers, func(o *auth.Options) { o.RateGrace = 500 * time.Millisecond })
	g := startGateway(t, false, Options{Auth: svc}, "")
	r := dialRaw(t, g.addr, packet.Level5)
	r.write(packet.AppendConnect(nil, &packet.Connect{Level: packet.Level5, CleanStart: true, ClientID: []byte("s"),
		UsernameFlag: true, Username: []byte("slow"), PasswordFlag: true, Password: []byte("slow")}))
	if p, err := r.read(); err != nil || p.Connack.Reason != 0 {
		t.Fatalf("connect: %v", err)
	}
	pub := packet.AppendPublish(nil, packet.Level5, &packet.Publish{Topic: []byte("a/b"), Payload: []byte("x")})
	deadline := time.Now().Add(10 * time.Second)
	go func() {
		for time.Now().Before(deadline) {
			if _, err := r.c.Write(pub); err != nil {
				return
			}
		}
	}()
	start := time.Now()
	for {
		p, err := r.readWithin(10 * time.Second)
		if err != nil {
			t.Fatalf("no DISCONNECT: %v", err)
		}
		if p.Type == packet.TypeDisconnect {
			if p.Disconnect.Reason != packet.MessageRateTooHigh {
				t.Fatalf("reason %v", p.Disconnect.Reason)
			}
			break
		}
	}
	if in := g.srv.Stats().InMsgs.Load(); time.Since(start) > 0 && float64(in) > 5*time.Since(start).Seconds()+10 {
		t.Errorf("%d messages in %v: not throttled to 5/s", in, time.Since(start))
	}
}

func TestTLSAndClientCertificates(t *testing.T) {
	ca := authtest.NewCA(t, "plant CA")
	other := authtest.NewCA(t, "other")
	server := ca.Server()
	st, err := auth.NewServerTLS(auth.TLSFiles{Cert: server.CertFile, Key: server.KeyFile, CA: ca.CertFile})
	if err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, false, Options{Auth: newAuth(t, mqttUsers)}, "")
	addr := g.listen(t, g.srv.Handler(), lnet.Options{TLSConfig: st.Config()})
	tlsClient := func(cfg *tls.Config, edit ...func(*paho.ClientOptions)) (paho.Client, error) {
		o := paho.NewClientOptions().SetClientID("t").SetAutoReconnect(false).SetConnectRetry(false).
			SetProtocolVersion(4).SetConnectTimeout(3 * time.Second).AddBroker("ssl://" + addr).SetTLSConfig(cfg)
		for _, e := range edit {
			e(o)
		}
		c := paho.NewClient(o)
		tok := c.Connect()
		tok.WaitTimeout(5 * time.Second)
		if tok.Error() == nil {
			t.Cleanup(func() { c.Disconnect(50) })
		}
		return c, tok.Error()
	}
	if _, err := tlsClient(authtest.ClientTLS(ca, nil), as("root", "root")); err != nil {
		t.Fatalf("trusted CA: %v", err)
	}
	if _, err := tlsClient(authtest.ClientTLS(other, nil), as("root", "root")); err == nil {
		t.Fatal("a client trusting another CA connected")
	}
	// The certificate is the user: no password.
	dev, err := tlsClient(authtest.ClientTLS(ca, ca.Client("dev-9.plant.example")))
	if err != nil {
		t.Fatalf("client certificate: %v", err)
	}
	in := newInbox()
	tok := dev.Subscribe("site/cert-dev/#", 1, in.handler)
	wait(t, tok)
	if code := tok.(*paho.SubscribeToken).Result()["site/cert-dev/#"]; code != 1 {
		t.Fatalf("the certificate's user could not subscribe: %#x", code)
	}
	// A certificate no user is mapped to, and no password: refused.
	if _, err := tlsClient(authtest.ClientTLS(ca, ca.Client("stranger"))); err == nil {
		t.Fatal("an unmapped certificate without credentials connected")
	}
}

// Clients over WebSocket are authenticated like the others.
func TestWebSocketLogin(t *testing.T) {
	g := startGateway(t, false, Options{Auth: newAuth(t, mqttUsers)}, "")
	wsAddr := g.listen(t, g.srv.WebSocketHandler(), lnet.Options{})
	in := newInbox()
	dash := client311(t, "", "dash", true, as("dev-7", "pw7"), func(o *paho.ClientOptions) {
		o.AddBroker("ws://" + wsAddr + "/mqtt")
	})
	wait(t, dash.Subscribe("site/dev-7/#", 1, in.handler))
	wait(t, dash.Publish("site/dev-7/x", 1, false, "hi"))
	if m := in.next(t); string(m.Payload()) != "hi" {
		t.Fatalf("got %q", m.Payload())
	}
}
