package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/go-stomp/stomp/v3"
	"github.com/nats-io/nats.go"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/ledgemq/ledge/auth"
	"github.com/ledgemq/ledge/auth/authtest"
)

// startWith runs the broker with args (every listener on 127.0.0.1:0
// unless args say otherwise) and returns its addresses; the logs are
// the broker's.
func startWith(t *testing.T, logs *syncBuffer, args ...string) listening {
	t.Helper()
	base := []string{"-nats-addr", "127.0.0.1:0", "-mqtt-addr", "127.0.0.1:0", "-mqtt-ws-addr", "127.0.0.1:0",
		"-mqtt-tls-addr", "127.0.0.1:0", "-mqtt-wss-addr", "127.0.0.1:0", "-amqp-addr", "127.0.0.1:0",
		"-amqps-addr", "127.0.0.1:0", "-stomp-addr", "127.0.0.1:0", "-stomp-ws-addr", "127.0.0.1:0", "-stomp-tls-addr", "127.0.0.1:0",
		"-http-addr", "127.0.0.1:0", "-data-dir", filepath.Join(t.TempDir(), "data")}
	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan listening, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append(base, args...), env(nil), logs, func(l listening) { addrs <- l })
	}()
	select {
	case l := <-addrs:
		t.Cleanup(func() { cancel(); <-done })
		return l
	case err := <-done:
		cancel()
		t.Fatalf("broker did not start: %v\n%s", err, logs.String())
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("broker did not start in time")
	}
	return nil
}

func waitLog(t *testing.T, logs *syncBuffer, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), what) {
		if time.Now().After(deadline) {
			t.Fatalf("the log never said %q:\n%s", what, logs.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestPasswd(t *testing.T) {
	file := filepath.Join(t.TempDir(), "users")
	pw := func(args []string, stdin string) (string, error) {
		var out, errOut bytes.Buffer
		err := runPasswd(args, strings.NewReader(stdin), &out, &errOut)
		return out.String() + errOut.String(), err
	}
	if _, err := pw([]string{file, "dev"}, "x\n"); err == nil {
		t.Fatal("a missing file was changed without -c")
	}
	if _, err := pw([]string{"-c", "-cost", "4", file, "dev"}, "s3cret\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := pw([]string{"-c", file, "dev"}, "x\n"); err == nil {
		t.Fatal("-c overwrote a file")
	}
	if _, err := pw([]string{"-b", "-cost", "4", file, "ops", "pw"}, ""); err != nil {
		t.Fatal(err)
	}
	// Rules written by hand stay through later changes.
	b, _ := os.ReadFile(file)
	os.WriteFile(file, append(b, "publish = site.dev.>\n"...), 0o600)
	if _, err := pw([]string{"-b", "-cost", "4", file, "ops", "new"}, ""); err != nil {
		t.Fatal(err)
	}
	out, err := pw([]string{"-token", file, "svc"}, "")
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:])
	if _, err := pw([]string{"-D", file, "dev"}, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := pw([]string{"-D", file, "dev"}, ""); err == nil {
		t.Fatal("deleted a user twice")
	}
	p, err := auth.LoadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(p.Users(), " "); got != "ops svc" {
		t.Fatalf("users %q", got)
	}
	text, _ := os.ReadFile(file)
	if !strings.Contains(string(text), "publish = site.dev.>") || strings.Contains(string(text), "new") || !strings.Contains(string(text), auth.TokenDigest(token)) {
		t.Fatalf("file:\n%s", text)
	}
	if st, _ := os.Stat(file); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", st.Mode().Perm())
	}
	// The passwords work.
	svc := auth.New(auth.Options{Policy: p})
	defer svc.Close()
	for _, r := range []auth.Request{{Username: "ops", Password: []byte("new")}, {Token: token}} {
		r.Protocol = auth.NATS
		done := make(chan error, 1)
		_, pending, err := svc.Authenticate(&r, func(_ *auth.Client, err error) { done <- err })
		if pending {
			err = <-done
		}
		if err != nil {
			t.Errorf("login %+v: %v", r.Username, err)
		}
	}
}

const brokerUsers = `
[group devices]
publish = site/%u/#
subscribe = site/%u/#

[user dev-7]
password = plain:pw7
groups = devices

[user root]
password = plain:root
roles = admin
`

func TestUsersModeAndCtl(t *testing.T) {
	var logs syncBuffer
	file := authtest.WriteFile(t, brokerUsers)
	l := startWith(t, &logs, "-users", file)
	if !strings.Contains(logs.String(), "auth=\"users (2), anonymous clients refused\"") {
		t.Errorf("the startup line does not name the mode:\n%s", logs.String())
	}
	if _, err := nats.Connect("nats://"+l["nats"], nats.Timeout(3*time.Second)); err == nil || !strings.Contains(strings.ToLower(err.Error()), "authorization") {
		t.Fatalf("anonymous NATS with users configured: %v", err)
	}
	nc, err := nats.Connect("nats://root:root@" + l["nats"])
	if err != nil {
		t.Fatal(err)
	}
	nc.Close()
	// ledge ctl asks the HTTP port, which checks the same users: an
	// admin may, nobody without credentials (not even on loopback, once
	// users exist), a user without a role neither.
	var out, errOut bytes.Buffer
	if err := runCtl(context.Background(), []string{"list_queues", "-url", "http://" + l["http"], "-user", "root", "-password", "root"}, env(nil), &out, &errOut); err != nil {
		t.Fatalf("ctl: %v %s", err, errOut.String())
	}
	for _, c := range []struct {
		who  []string
		want string
	}{
		{nil, "401"},
		{[]string{"-user", "root", "-password", "wrong"}, "401"},
		// Known, but without the monitoring role: forbidden, not
		// unauthenticated, so a client does not retry other credentials.
		{[]string{"-user", "dev-7", "-password", "pw7"}, "403"},
	} {
		err := runCtl(context.Background(), append([]string{"list_queues", "-url", "http://" + l["http"]}, c.who...), env(nil), &out, &errOut)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ctl as %v: %v, want %s", c.who, err, c.want)
		}
	}
}

func TestDefaultModeLine(t *testing.T) {
	var logs syncBuffer
	startWith(t, &logs)
	if !strings.Contains(logs.String(), "loopback-only") {
		t.Errorf("the startup line does not name the default mode:\n%s", logs.String())
	}
}

func TestMalformedUsersFile(t *testing.T) {
	bad := authtest.WriteFile(t, "[user dev]\npassword = plain:x\npublish = a..b\n")
	var logs syncBuffer
	err := run(context.Background(), []string{"-users", bad, "-data-dir", t.TempDir()}, env(nil), &logs, nil)
	if err == nil || !strings.Contains(err.Error(), bad+":3:") || !strings.Contains(err.Error(), "token 1 is empty") {
		t.Fatalf("start with a malformed file: %v", err)
	}
}

// SIGHUP reloads the users: a revoked user is dropped, a subscription
// now denied removed; a malformed file at reload is refused, its line
// named, and the rules in force stay.
func TestReloadOnSIGHUP(t *testing.T) {
	pw7, _ := auth.HashPassword("pw7", 4)
	root, _ := auth.HashPassword("root", 4)
	users := strings.NewReplacer("plain:pw7", pw7, "plain:root", root).Replace(brokerUsers)
	file := filepath.Join(t.TempDir(), "users")
	os.WriteFile(file, []byte(users), 0o600)
	var logs syncBuffer
	l := startWith(t, &logs, "-users", file)

	errs := make(chan error, 4)
	dev, err := nats.Connect("nats://dev-7:pw7@"+l["nats"], nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err }))
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	sub, _ := dev.SubscribeSync("site.dev-7.alarm")
	dev.Flush()
	mq := mqttAs(t, l["mqtt"], "dev-7-mqtt", "root", "root")

	// A broken file: refused, named, nothing changes.
	broken := users + "\n[user x]\nnope = 1\n"
	os.WriteFile(file, []byte(broken), 0o600)
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	waitLog(t, &logs, fmt.Sprintf("%s:%d: user x: unknown setting", file, strings.Count(broken, "\n")))
	if !dev.IsConnected() || !mq.IsConnected() {
		t.Fatal("a failed reload dropped connections")
	}
	admin, _ := nats.Connect("nats://root:root@" + l["nats"])
	defer admin.Close()
	admin.Publish("site.dev-7.alarm", []byte("still"))
	if m, err := sub.NextMsg(5 * time.Second); err != nil || string(m.Data) != "still" {
		t.Fatalf("after a failed reload: %v", err)
	}

	// root is gone; dev-7 may only read site.dev-7.temp.
	os.WriteFile(file, []byte("[user dev-7]\npassword = "+pw7+"\nsubscribe = site.dev-7.temp\n"), 0o600)
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	select {
	case err := <-errs:
		if !errors.Is(err, nats.ErrPermissionViolation) {
			t.Errorf("the subscription's owner was told %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the removed subscription's owner was not told")
	}
	deadline := time.Now().Add(10 * time.Second)
	for mq.IsConnected() || admin.IsConnected() && !admin.IsReconnecting() {
		if time.Now().After(deadline) {
			t.Fatal("the removed user's connections are still open")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func mqttAs(t *testing.T, addr, id, user, pass string) paho.Client {
	t.Helper()
	c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).SetUsername(user).SetPassword(pass).
		SetAutoReconnect(false).SetConnectTimeout(5 * time.Second))
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("mqtt connect %s: %v", user, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(50) })
	return c
}

// A message a subscriber's rules forbid never reaches it, whichever
// protocols the publisher and the subscriber speak; and a publish the
// publisher's rules forbid reaches no one.
func TestCrossProtocolDenials(t *testing.T) {
	var logs syncBuffer
	l := startWith(t, &logs, "-users", authtest.WriteFile(t, brokerUsers+`
[user dev-8]
password = plain:pw8
groups = devices
`))
	protos := []string{"nats", "mqtt", "amqp", "stomp"}
	for _, pub := range protos {
		for _, sub := range protos {
			if pub == sub {
				continue
			}
			t.Run(pub+" to "+sub, func(t *testing.T) {
				// dev-7 subscribes as widely as its protocol lets it.
				in := subscribeAs(t, l, sub, "dev-7", "pw7")
				// root publishes another device's subject, then dev-7's own.
				p := publisherAs(t, l, pub, "root", "root")
				p("site.dev-8.temp", "not yours")
				p("site.dev-7.temp", "yours")
				if got := in.next(t); got != "yours" {
					t.Fatalf("dev-7 got %q", got)
				}
				// dev-8 publishing on dev-7's subject is refused before
				// anyone sees it.
				spoof := publisherAs(t, l, pub, "dev-8", "pw8")
				spoof("site.dev-7.temp", "spoofed")
				p("site.dev-7.temp", "after")
				if got := in.next(t); got != "after" {
					t.Fatalf("dev-7 got %q: a denied publish crossed", got)
				}
			})
		}
	}
}

// received collects payloads from any protocol's subscription.
type received chan string

func (r received) next(t *testing.T) string {
	t.Helper()
	select {
	case s := <-r:
		return s
	case <-time.After(5 * time.Second):
		t.Fatal("nothing received")
	}
	return ""
}

func subscribeAs(t *testing.T, l listening, proto, user, pass string) received {
	t.Helper()
	in := make(received, 16)
	switch proto {
	case "nats":
		nc, err := nats.Connect("nats://" + user + ":" + pass + "@" + l["nats"])
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		nc.Subscribe("site.>", func(m *nats.Msg) { in <- string(m.Data) })
		nc.Flush()
	case "mqtt":
		c := mqttAs(t, l["mqtt"], user+"-sub", user, pass)
		tok := c.Subscribe("site/#", 1, func(_ paho.Client, m paho.Message) { in <- string(m.Payload()) })
		tok.WaitTimeout(5 * time.Second)
	case "stomp":
		c, err := stomp.Dial("tcp", l["stomp"], stomp.ConnOpt.Login(user, pass), stomp.ConnOpt.Host("/"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Disconnect() })
		sub, err := c.Subscribe("/topic/site."+user+".#", stomp.AckAuto)
		if err != nil {
			t.Fatal(err)
		}
		// In place once the subscriber's own message comes through.
		if err := c.Send("/topic/site."+user+".sync", "", nil, stomp.SendOpt.Receipt); err != nil {
			t.Fatal(err)
		}
		<-sub.C
		go func() {
			for m := range sub.C {
				if m.Err == nil {
					in <- string(m.Body)
				}
			}
		}()
	case "amqp":
		conn, err := amqp.Dial("amqp://" + user + ":" + pass + "@" + l["amqp"] + "/")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		ch, _ := conn.Channel()
		q, err := ch.QueueDeclare("", false, true, true, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := ch.QueueBind(q.Name, "site."+user+".#", "amq.topic", false, nil); err != nil {
			t.Fatal(err)
		}
		msgs, _ := ch.Consume(q.Name, "", true, false, false, false, nil)
		go func() {
			for m := range msgs {
				in <- string(m.Body)
			}
		}()
	}
	return in
}

func publisherAs(t *testing.T, l listening, proto, user, pass string) func(subject, payload string) {
	t.Helper()
	switch proto {
	case "nats":
		nc, err := nats.Connect("nats://" + user + ":" + pass + "@" + l["nats"])
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		return func(s, p string) { nc.Publish(s, []byte(p)); nc.Flush() }
	case "mqtt":
		c := mqttAs(t, l["mqtt"], fmt.Sprintf("%s-pub-%d", user, time.Now().UnixNano()), user, pass)
		return func(s, p string) {
			c.Publish(strings.ReplaceAll(s, ".", "/"), 1, false, p).WaitTimeout(5 * time.Second)
		}
	case "stomp":
		return func(s, p string) {
			// A refused SEND is an ERROR and the end of the connection:
			// each SEND its own.
			c, err := stomp.Dial("tcp", l["stomp"], stomp.ConnOpt.Login(user, pass), stomp.ConnOpt.Host("/"), stomp.ConnOpt.Logger(quietLog{}))
			if err != nil {
				t.Fatal(err)
			}
			c.Send("/topic/"+s, "", []byte(p), stomp.SendOpt.Receipt)
			c.MustDisconnect()
		}
	}
	conn, err := amqp.Dial("amqp://" + user + ":" + pass + "@" + l["amqp"] + "/")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return func(s, p string) {
		// A refused publish closes the channel: each publish its own.
		ch, err := conn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		closed := ch.NotifyClose(make(chan *amqp.Error, 1))
		ch.Confirm(false)
		dc, err := ch.PublishWithDeferredConfirmWithContext(context.Background(), "amq.topic", s, false, false, amqp.Publishing{Body: []byte(p)})
		if err == nil {
			select {
			case <-dc.Done():
			case <-closed:
			case <-time.After(5 * time.Second):
			}
		}
		ch.Close()
	}
}

// TLS on every listener of the broker, with the certificate reloaded on
// SIGHUP for new connections while old ones go on.
func TestTLSEverywhere(t *testing.T) {
	ca := authtest.NewCA(t, "plant")
	newCA := authtest.NewCA(t, "renewed")
	server := ca.Server()
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	cp := func(from, to string) {
		b, _ := os.ReadFile(from)
		os.WriteFile(to, b, 0o600)
	}
	cp(server.CertFile, cert)
	cp(server.KeyFile, key)
	var logs syncBuffer
	l := startWith(t, &logs, "-users", authtest.WriteFile(t, brokerUsers+"\n[user cert-dev]\ncert = dev-9\ngroups = devices\n"),
		"-tls-cert", cert, "-tls-key", key, "-tls-ca", ca.CertFile, "-http-tls")
	for _, name := range []string{"mqtt-tls", "mqtt-wss", "amqps"} {
		if l[name] == "" {
			t.Fatalf("no %s listener: %v", name, l)
		}
	}
	// NATS requires TLS, after INFO.
	nc, err := nats.Connect("tls://root:root@"+l["nats"], nats.RootCAs(ca.CertFile))
	if err != nil {
		t.Fatalf("nats over TLS: %v", err)
	}
	defer nc.Close()
	cc := ca.Client("dev-9")
	devNC, err := nats.Connect("tls://"+l["nats"], nats.RootCAs(ca.CertFile), nats.ClientCert(cc.CertFile, cc.KeyFile))
	if err != nil {
		t.Fatalf("nats with a client certificate: %v", err)
	}
	devNC.Close()
	for _, url := range []string{"ssl://" + l["mqtt-tls"], "wss://" + l["mqtt-wss"] + "/mqtt"} {
		c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID("t").SetUsername("root").SetPassword("root").
			SetTLSConfig(authtest.ClientTLS(ca, nil)).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second))
		if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("%s: %v", url, tok.Error())
		}
		c.Disconnect(10)
	}
	ac, err := amqp.DialTLS("amqps://root:root@"+l["amqps"]+"/", authtest.ClientTLS(ca, nil))
	if err != nil {
		t.Fatalf("amqps: %v", err)
	}
	ac.Close()
	// ledge ctl reaches the HTTP port over the same TLS.
	var out, errOut bytes.Buffer
	if err := runCtl(context.Background(), []string{"list_queues", "-url", "https://" + l["http"], "-cacert", ca.CertFile, "-user", "root", "-password", "root"}, env(nil), &out, &errOut); err != nil {
		t.Fatalf("ctl over HTTPS: %v %s", err, errOut.String())
	}
	if !strings.Contains(logs.String(), "tls=\"on, NATS required") {
		t.Errorf("the startup line does not name the TLS mode:\n%s", logs.String())
	}

	// A new certificate, from another CA, on SIGHUP.
	renewed := newCA.Server()
	cp(renewed.CertFile, cert)
	cp(renewed.KeyFile, key)
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	waitLog(t, &logs, "certificate reloaded")
	if err := nc.Publish("x", nil); err != nil || nc.Flush() != nil {
		t.Fatal("an old connection broke on reload")
	}
	if _, err := nats.Connect("tls://root:root@"+l["nats"], nats.RootCAs(newCA.CertFile)); err != nil {
		t.Fatalf("the new certificate: %v", err)
	}
	tc, err := tls.Dial("tcp", l["amqps"], authtest.ClientTLS(ca, nil))
	if err == nil {
		tc.Close()
		t.Fatal("the old certificate is still served on AMQPS")
	}
}

// quietLog keeps go-stomp's notes of refused frames out of the test log.
type quietLog struct{}

func (quietLog) Debugf(string, ...interface{})   {}
func (quietLog) Infof(string, ...interface{})    {}
func (quietLog) Warningf(string, ...interface{}) {}
func (quietLog) Warning(string)                  {}
func (quietLog) Info(string)                     {}
func (quietLog) Debug(string)                    {}
func (quietLog) Error(string)                    {}
func (quietLog) Errorf(string, ...interface{})   {}
