package amqpgw

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/ledgemq/ledge/auth"
	"github.com/ledgemq/ledge/auth/authtest"
	lnet "github.com/ledgemq/ledge/net"
)

const amqpUsers = `
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
amqp-configure = ^orders-
amqp-write = ^(orders-.*|orders|amq\.topic)$
amqp-read = ^(orders-.*|orders|amq\.topic)$

[user root]
password = plain:root
roles = admin

[user cert-app]
cert = app.plant.example
groups = devices
`

func newAuth(t testing.TB, users string) *auth.Service {
	t.Helper()
	svc := auth.New(auth.Options{Policy: authtest.Policy(t, users), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	t.Cleanup(svc.Close)
	return svc
}

func dialAs(t testing.TB, g *gateway, user, pass string) (*amqp.Connection, *amqp.Channel) {
	t.Helper()
	conn, err := amqp.Dial("amqp://" + user + ":" + pass + "@" + g.addr + "/")
	if err != nil {
		t.Fatalf("dial as %s: %v", user, err)
	}
	t.Cleanup(func() { conn.Close() })
	ch, err := conn.Channel()
	must(t, err)
	return conn, ch
}

// refused checks that err is the channel exception 403 ACCESS_REFUSED.
func refused(t testing.TB, what string, err error) {
	t.Helper()
	var e *amqp.Error
	if !errors.As(err, &e) || e.Code != codeAccessRefused {
		t.Fatalf("%s: %v, want 403 ACCESS_REFUSED", what, err)
	}
}

// publishClosed publishes and waits for the broker to close the channel,
// returning the reason. The close listener is registered before the
// publish: registered after, it misses a close that already happened (on
// a slow machine, under qemu) and reads a nil reason.
func publishClosed(t testing.TB, ch *amqp.Channel, exchange, key string) error {
	t.Helper()
	c := ch.NotifyClose(make(chan *amqp.Error, 1))
	if err := ch.PublishWithContext(context.Background(), exchange, key, false, false, text("x")); err != nil {
		return err
	}
	select {
	case e, ok := <-c:
		if !ok || e == nil {
			return errors.New("the channel closed without a reason")
		}
		return e
	case <-time.After(5 * time.Second):
		t.Fatal("the channel was not closed")
	}
	return nil
}

func TestLoginRefused(t *testing.T) {
	g := startGateway(t, Options{Auth: newAuth(t, amqpUsers)}, "")
	for _, url := range []string{"amqp://dev-7:wrong@", "amqp://nobody:x@", "amqp://guest:guest@"} {
		_, err := amqp.Dial(url + g.addr + "/")
		var e *amqp.Error
		if !errors.As(err, &e) || e.Code != codeAccessRefused {
			if err == nil || !errors.Is(err, amqp.ErrSASL) && !errors.Is(err, amqp.ErrCredentials) {
				t.Fatalf("%s: %v, want 403", url, err)
			}
		}
	}
}

// A device limited to site.%u.# publishes to amq.topic and reads through
// a server-named queue there, and is refused elsewhere.
func TestSiteUserOnAMQP(t *testing.T) {
	g := startGateway(t, Options{Auth: newAuth(t, amqpUsers)}, "")
	_, ch := dialAs(t, g, "dev-7", "pw7")
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	must(t, err)
	must(t, ch.QueueBind(q.Name, "site.dev-7.#", "amq.topic", false, nil))
	msgs, err := ch.Consume(q.Name, "", true, false, false, false, nil)
	must(t, err)
	publish(t, ch, "amq.topic", "site.dev-7.temp", text("21.5"))
	if d := recv(t, msgs); string(d.Body) != "21.5" {
		t.Fatalf("got %q", d.Body)
	}

	// Binding wider than the rules, publishing elsewhere, declaring a
	// named queue: each closes the channel with 403.
	for _, c := range []struct {
		what string
		do   func(ch *amqp.Channel) error
	}{
		{"bind #", func(ch *amqp.Channel) error { return ch.QueueBind(q.Name, "#", "amq.topic", false, nil) }},
		{"bind another device", func(ch *amqp.Channel) error { return ch.QueueBind(q.Name, "site.dev-8.*", "amq.topic", false, nil) }},
		{"declare a named queue", func(ch *amqp.Channel) error {
			_, err := ch.QueueDeclare("orders", true, false, false, false, nil)
			return err
		}},
		{"declare an exchange", func(ch *amqp.Channel) error {
			return ch.ExchangeDeclare("mine", "fanout", false, false, false, false, nil)
		}},
		{"publish elsewhere", func(ch *amqp.Channel) error {
			return publishClosed(t, ch, "amq.topic", "site.dev-8.temp")
		}},
		{"publish to the default exchange's queue", func(ch *amqp.Channel) error {
			return publishClosed(t, ch, "amq.direct", "x")
		}},
	} {
		conn, err := amqp.Dial("amqp://dev-7:pw7@" + g.addr + "/")
		must(t, err)
		c2, err := conn.Channel()
		must(t, err)
		refused(t, c.what, c.do(c2))
		conn.Close()
	}
}

// Resource permissions on named queues and exchanges.
func TestResourcePermissions(t *testing.T) {
	g := startGateway(t, Options{Auth: newAuth(t, amqpUsers)}, "")
	_, root := dialAs(t, g, "root", "root")
	_, err := root.QueueDeclare("payroll", true, false, false, false, nil)
	must(t, err)
	_, ch := dialAs(t, g, "app", "app")
	_, err = ch.QueueDeclare("orders-new", true, false, false, false, nil)
	must(t, err)
	_, err = ch.QueueDeclare("payroll", true, false, false, false, nil)
	refused(t, "declare payroll", err)

	_, ch = dialAs(t, g, "app", "app")
	_, err = ch.Consume("payroll", "", true, false, false, false, nil)
	refused(t, "consume payroll", err)

	_, ch = dialAs(t, g, "app", "app")
	// A passive declare needs no permission: the queue is there.
	if _, err := ch.QueueDeclarePassive("payroll", true, false, false, false, nil); err != nil {
		t.Fatalf("passive declare: %v", err)
	}
	_, err = ch.QueuePurge("payroll", false)
	refused(t, "purge payroll", err)
}

func TestReloadCancelsConsumers(t *testing.T) {
	app, _ := auth.HashPassword("app", 4)
	svc := newAuth(t, strings.ReplaceAll(amqpUsers, "plain:app", app))
	g := startGateway(t, Options{Auth: svc}, "")
	_, ch := dialAs(t, g, "app", "app")
	_, err := ch.QueueDeclare("orders-a", true, false, false, false, nil)
	must(t, err)
	cancelled := ch.NotifyCancel(make(chan string, 1))
	_, err = ch.Consume("orders-a", "worker", false, false, false, false, nil)
	must(t, err)
	gone, _ := dialAs(t, g, "dev-7", "pw7")
	closed := gone.NotifyClose(make(chan *amqp.Error, 1))

	svc.Reload(authtest.Policy(t, `
[user app]
password = `+app+`
publish = orders.>
amqp-configure = ^orders-
amqp-write = ^orders-
amqp-read = ^orders-b$
`))
	select {
	case tag := <-cancelled:
		if tag != "worker" {
			t.Errorf("cancelled %q", tag)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a consumer of a queue no longer readable was not cancelled")
	}
	select {
	case e := <-closed:
		if e == nil || e.Code != codeConnectionForced {
			t.Errorf("revoked user: %v, want 320", e)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the removed user's connection is still open")
	}
}

// AMQPS with amqp091-go: a trusted and an untrusted CA, and a client
// certificate that logs in with EXTERNAL.
func TestAMQPS(t *testing.T) {
	ca := authtest.NewCA(t, "plant CA")
	other := authtest.NewCA(t, "other")
	server := ca.Server()
	st, err := auth.NewServerTLS(auth.TLSFiles{Cert: server.CertFile, Key: server.KeyFile, CA: ca.CertFile})
	must(t, err)
	g := startGateway(t, Options{Auth: newAuth(t, amqpUsers)}, "")
	ln, err := lnet.Listen("tcp", "127.0.0.1:0", g.srv.Handler(), lnet.Options{MaxInput: g.srv.MaxInput(), TLSConfig: st.Config()})
	must(t, err)
	t.Cleanup(func() { ln.Close() })
	addr := ln.Addr().String()

	conn, err := amqp.DialTLS("amqps://root:root@"+addr+"/", authtest.ClientTLS(ca, nil))
	if err != nil {
		t.Fatalf("trusted CA: %v", err)
	}
	conn.Close()
	if c, err := amqp.DialTLS("amqps://root:root@"+addr+"/", authtest.ClientTLS(other, nil)); err == nil {
		c.Close()
		t.Fatal("a client trusting another CA connected")
	}
	cc := ca.Client("app.plant.example")
	conn, err = amqp.DialTLS_ExternalAuth("amqps://"+addr+"/", authtest.ClientTLS(ca, cc))
	if err != nil {
		t.Fatalf("EXTERNAL with a client certificate: %v", err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	must(t, err)
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	must(t, err)
	must(t, ch.QueueBind(q.Name, "site.cert-app.#", "amq.topic", false, nil))
}

// A reload that narrows a user's subscribe rules removes the amq.topic
// bindings its connection made outside them: nothing flows on the old
// grant.
func TestReloadRemovesTopicBindings(t *testing.T) {
	pw, _ := auth.HashPassword("pw7", 4)
	root, _ := auth.HashPassword("root", 4)
	users := strings.NewReplacer("plain:pw7", pw, "plain:root", root).Replace(amqpUsers)
	svc := newAuth(t, users)
	g := startGateway(t, Options{Auth: svc}, "")
	_, ch := dialAs(t, g, "dev-7", "pw7")
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	must(t, err)
	must(t, ch.QueueBind(q.Name, "site.dev-7.#", "amq.topic", false, nil))
	must(t, ch.QueueBind(q.Name, "site.dev-7.temp", "amq.topic", false, nil))
	msgs, err := ch.Consume(q.Name, "", true, false, false, false, nil)
	must(t, err)

	svc.Reload(authtest.Policy(t, `
[user dev-7]
password = `+pw+`
subscribe = site.dev-7.temp
[user root]
password = `+root+`
roles = admin
`))
	_, rch := dialAs(t, g, "root", "root")
	deadline := time.Now().Add(5 * time.Second)
	for {
		// Until the wide binding is gone, "other" still arrives.
		publish(t, rch, "amq.topic", "site.dev-7.other", text("old grant"))
		publish(t, rch, "amq.topic", "site.dev-7.temp", text("allowed"))
		d1 := recv(t, msgs)
		if string(d1.Body) == "allowed" {
			select {
			case d2 := <-msgs:
				t.Fatalf("after the reload: %q", d2.Body)
			case <-time.After(200 * time.Millisecond):
			}
			return
		}
		recv(t, msgs)
		if time.Now().After(deadline) {
			t.Fatal("the binding outside the new rules was not removed")
		}
	}
}
