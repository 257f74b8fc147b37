package mqttgw

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/ledgemq/ledge/broker"
	lnet "github.com/ledgemq/ledge/net"
	"github.com/ledgemq/ledge/router"
)

var transports = []struct {
	name     string
	portable bool
}{
	{"epoll", false},
	{"portable", true},
}

func forEachTransport(t *testing.T, f func(t *testing.T, portable bool)) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) { f(t, tr.portable) })
	}
}

type gateway struct {
	srv    *Server
	live   *router.Router[broker.Receiver]
	broker *broker.Broker
	ln     *lnet.Server
	addr   string
	dir    string
	opts   Options
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// startGateway serves MQTT on 127.0.0.1 with a broker in dir ("" for a
// fresh temporary folder).
func startGateway(t testing.TB, portable bool, opts Options, dir string) *gateway {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	opts.Logger = quietLogger()
	b, err := broker.Open(broker.Options{Dir: dir, Logger: opts.Logger})
	if err != nil {
		t.Fatal(err)
	}
	live := router.New[broker.Receiver](router.Options{})
	srv, err := NewServer(opts, live, b)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := lnet.Listen("tcp", "127.0.0.1:0", srv.Handler(), lnet.Options{Portable: portable, MaxInput: srv.MaxInput()})
	if err != nil {
		t.Fatal(err)
	}
	g := &gateway{srv: srv, live: live, broker: b, ln: ln, addr: ln.Addr().String(), dir: dir, opts: opts}
	t.Cleanup(g.stop)
	return g
}

func (g *gateway) stop() {
	if g.ln == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = g.ln.Shutdown(ctx)
	g.srv.Close()
	_ = g.broker.Close()
	g.ln = nil
}

// client311 connects a paho 3.1.1 client.
func client311(t testing.TB, addr, id string, clean bool, edit ...func(*paho.ClientOptions)) paho.Client {
	t.Helper()
	o := paho.NewClientOptions().SetClientID(id).SetCleanSession(clean).
		SetAutoReconnect(false).SetConnectRetry(false).SetProtocolVersion(4).SetConnectTimeout(5 * time.Second)
	if addr != "" {
		o.AddBroker("tcp://" + addr)
	}
	for _, e := range edit {
		e(o)
	}
	c := paho.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", id, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(50) })
	return c
}

func wait(t testing.TB, tok paho.Token) {
	t.Helper()
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("token: %v", tok.Error())
	}
}

// inbox collects messages from a paho subscription.
type inbox struct{ ch chan paho.Message }

func newInbox() *inbox { return &inbox{ch: make(chan paho.Message, 1000)} }

func (in *inbox) handler(_ paho.Client, m paho.Message) { in.ch <- m }

func (in *inbox) next(t testing.TB) paho.Message {
	t.Helper()
	select {
	case m := <-in.ch:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no message within 5s")
		return nil
	}
}

func (in *inbox) none(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case m := <-in.ch:
		t.Fatalf("unexpected message on %s: %q", m.Topic(), m.Payload())
	case <-time.After(d):
	}
}

func TestPublishSubscribeEachQoS(t *testing.T) {
	forEachTransport(t, func(t *testing.T, portable bool) {
		g := startGateway(t, portable, Options{}, "")
		sub := client311(t, g.addr, "sub", true)
		pub := client311(t, g.addr, "pub", true)
		for subQoS := byte(0); subQoS <= 2; subQoS++ {
			in := newInbox()
			filter := fmt.Sprintf("q%d/+/temp", subQoS)
			wait(t, sub.Subscribe(filter, subQoS, in.handler))
			for pubQoS := byte(0); pubQoS <= 2; pubQoS++ {
				topic := fmt.Sprintf("q%d/%d/temp", subQoS, pubQoS)
				wait(t, pub.Publish(topic, pubQoS, false, fmt.Sprintf("p%d", pubQoS)))
				m := in.next(t)
				if m.Topic() != topic || string(m.Payload()) != fmt.Sprintf("p%d", pubQoS) {
					t.Fatalf("got %s %q", m.Topic(), m.Payload())
				}
				if want := min(subQoS, pubQoS); m.Qos() != want {
					t.Fatalf("sub QoS %d pub QoS %d: delivered at %d, want %d", subQoS, pubQoS, m.Qos(), want)
				}
			}
		}
	})
}

func TestRetainedMessages(t *testing.T) {
	dir := t.TempDir()
	g := startGateway(t, false, Options{}, dir)
	pub := client311(t, g.addr, "pub", true)
	wait(t, pub.Publish("site/1/state", 1, true, "on"))
	wait(t, pub.Publish("site/2/state", 1, true, "off"))
	in := newInbox()
	sub := client311(t, g.addr, "sub", true)
	wait(t, sub.Subscribe("site/+/state", 1, in.handler))
	got := map[string]string{}
	for i := 0; i < 2; i++ {
		m := in.next(t)
		if !m.Retained() {
			t.Fatalf("retained message without the retain flag: %s", m.Topic())
		}
		got[m.Topic()] = string(m.Payload())
	}
	if got["site/1/state"] != "on" || got["site/2/state"] != "off" {
		t.Fatalf("retained = %v", got)
	}
	// A live publish with retain reaches existing subscribers without the
	// flag (MQTT-3.3.1-9); an empty one clears the topic.
	wait(t, pub.Publish("site/1/state", 1, true, "off"))
	if m := in.next(t); m.Retained() || string(m.Payload()) != "off" {
		t.Fatalf("live retained publish: retained=%v %q", m.Retained(), m.Payload())
	}
	wait(t, pub.Publish("site/2/state", 1, true, ""))
	in.next(t) // the empty message itself is delivered live
	sub.Disconnect(50)
	pub.Disconnect(50)
	g.stop()

	// After a restart the retained messages are still there.
	g = startGateway(t, false, Options{}, dir)
	in = newInbox()
	sub = client311(t, g.addr, "sub2", true)
	wait(t, sub.Subscribe("site/#", 0, in.handler))
	if m := in.next(t); m.Topic() != "site/1/state" || string(m.Payload()) != "off" || !m.Retained() {
		t.Fatalf("after restart: %s %q retained=%v", m.Topic(), m.Payload(), m.Retained())
	}
	in.none(t, 100*time.Millisecond)
}

func TestWillOnUngracefulCloseOnly(t *testing.T) {
	g := startGateway(t, true, Options{}, "")
	in := newInbox()
	watcher := client311(t, g.addr, "watcher", true)
	wait(t, watcher.Subscribe("wills/#", 1, in.handler))

	polite := client311(t, g.addr, "polite", true, func(o *paho.ClientOptions) { o.SetWill("wills/polite", "gone", 1, false) })
	polite.Disconnect(50)
	in.none(t, 200*time.Millisecond)

	// A connection dropped without DISCONNECT: the session ends and the
	// will goes out.
	rude := client311(t, g.addr, "rude", true, func(o *paho.ClientOptions) { o.SetWill("wills/rude", "lost", 1, false) })
	_ = rude
	g.srv.mu.Lock()
	ss := g.srv.clients["rude"]
	g.srv.mu.Unlock()
	ss.conn.Close(fmt.Errorf("test: connection lost"))
	if m := in.next(t); m.Topic() != "wills/rude" || string(m.Payload()) != "lost" {
		t.Fatalf("will = %s %q", m.Topic(), m.Payload())
	}
}

func TestTakeoverDisconnectsTheFirst(t *testing.T) {
	g := startGateway(t, false, Options{}, "")
	lost := make(chan struct{})
	var once sync.Once
	client311(t, g.addr, "dev-1", true, func(o *paho.ClientOptions) {
		o.SetConnectionLostHandler(func(paho.Client, error) { once.Do(func() { close(lost) }) })
	})
	client311(t, g.addr, "dev-1", true)
	select {
	case <-lost:
	case <-time.After(5 * time.Second):
		t.Fatal("first connection not closed by takeover")
	}
	if n := g.srv.stats.Takeovers.Load(); n != 1 {
		t.Fatalf("takeovers = %d", n)
	}
}

func TestPersistentSessionKeepsSubscriptions(t *testing.T) {
	g := startGateway(t, false, Options{}, "")
	in := newInbox()
	c := client311(t, g.addr, "keeper", false, func(o *paho.ClientOptions) {
		o.SetDefaultPublishHandler(in.handler)
	})
	wait(t, c.Subscribe("keep/#", 1, in.handler))
	c.Disconnect(50)

	client311(t, g.addr, "keeper", false, func(o *paho.ClientOptions) {
		o.SetDefaultPublishHandler(in.handler)
	})
	pub := client311(t, g.addr, "pub", true)
	wait(t, pub.Publish("keep/a", 1, false, "still subscribed"))
	if m := in.next(t); string(m.Payload()) != "still subscribed" {
		t.Fatalf("got %q", m.Payload())
	}
}

func TestSharedSubscriptionsCompete(t *testing.T) {
	g := startGateway(t, false, Options{}, "")
	in := newInbox()
	const workers = 3
	for i := 0; i < workers; i++ {
		c := client311(t, g.addr, fmt.Sprintf("w%d", i), true)
		wait(t, c.Subscribe("$share/workers/jobs/+", 1, in.handler))
	}
	pub := client311(t, g.addr, "pub", true)
	const n = 60
	for i := 0; i < n; i++ {
		wait(t, pub.Publish(fmt.Sprintf("jobs/%d", i), 1, false, "job"))
	}
	for i := 0; i < n; i++ {
		in.next(t)
	}
	in.none(t, 100*time.Millisecond)
}

func TestKeepAliveTimeout(t *testing.T) {
	g := startGateway(t, false, Options{}, "")
	in := newInbox()
	w := client311(t, g.addr, "watch", true)
	wait(t, w.Subscribe("wills/+", 0, in.handler))
	// A raw client that connects with keep alive 1 s and then says nothing.
	conn := rawConnect(t, g.addr, "silent", 1, "wills/silent")
	defer conn.Close()
	start := time.Now()
	m := in.next(t)
	if m.Topic() != "wills/silent" {
		t.Fatalf("will %s", m.Topic())
	}
	if d := time.Since(start); d < time.Second || d > 4*time.Second {
		t.Fatalf("cut off after %v, want about 1.5 s", d)
	}
}
