package stompgw

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3"
	stompframe "github.com/go-stomp/stomp/v3/frame"

	"github.com/ledgemq/ledge/amqpgw"
	"github.com/ledgemq/ledge/broker"
	lnet "github.com/ledgemq/ledge/net"
	"github.com/ledgemq/ledge/router"
	"github.com/ledgemq/ledge/stompgw/frame"
)

// gateway is a broker with the AMQP and STOMP gateways on it, as
// cmd/ledge wires them, STOMP served on 127.0.0.1.
type gateway struct {
	srv    *Server
	amqp   *amqpgw.Server
	live   *router.Router[broker.Receiver]
	broker *broker.Broker
	ln     *lnet.Server
	addr   string
	dir    string
	opts   Options
	net    lnet.Options
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// transports are the two the gateway runs on; tests that touch the
// network run on both.
var transports = []struct {
	name     string
	portable bool
}{{"epoll", false}, {"portable", true}}

// startGateway serves STOMP with a broker in dir ("" for a fresh
// temporary folder).
func startGateway(t testing.TB, portable bool, opts Options, dir string) *gateway {
	t.Helper()
	return startGatewayWith(t, portable, opts, broker.Options{Dir: dir})
}

// startGatewayWith is startGateway with the broker's options.
func startGatewayWith(t testing.TB, portable bool, opts Options, bopts broker.Options) *gateway {
	t.Helper()
	if bopts.Dir == "" {
		bopts.Dir = t.TempDir()
	}
	dir := bopts.Dir
	opts.Logger = quietLogger()
	bopts.Logger = opts.Logger
	b, err := broker.Open(bopts)
	if err != nil {
		t.Fatal(err)
	}
	live := router.New[broker.Receiver](router.Options{})
	a, err := amqpgw.NewServer(amqpgw.Options{Logger: opts.Logger}, live, b)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := NewServer(opts, a)
	if err != nil {
		t.Fatal(err)
	}
	no := lnet.Options{MaxInput: srv.MaxInput(), Portable: portable}
	ln, err := lnet.Listen("tcp", "127.0.0.1:0", srv.Handler(), no)
	if err != nil {
		t.Fatal(err)
	}
	g := &gateway{srv: srv, amqp: a, live: live, broker: b, ln: ln, addr: ln.Addr().String(), dir: dir, opts: opts, net: no}
	t.Cleanup(g.stop)
	return g
}

// listen serves another handler of the gateway (WebSocket, TLS).
func (g *gateway) listen(t testing.TB, h lnet.Handler, opts lnet.Options) string {
	t.Helper()
	opts.MaxInput = g.srv.MaxInput()
	ln, err := lnet.Listen("tcp", "127.0.0.1:0", h, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

func (g *gateway) stop() {
	if g.ln == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = g.ln.Shutdown(ctx)
	g.amqp.Close()
	_ = g.broker.Close()
	g.ln = nil
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// dial connects go-stomp to the gateway.
func dial(t testing.TB, addr string, opts ...func(*stomp.Conn) error) *stomp.Conn {
	t.Helper()
	opts = append([]func(*stomp.Conn) error{stomp.ConnOpt.Host("/"), stomp.ConnOpt.Logger(quietStomp{}),
		stomp.ConnOpt.UnsubscribeReceiptTimeout(2 * time.Second)}, opts...)
	c, err := stomp.Dial("tcp", addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.MustDisconnect() })
	return c
}

// unsubscribe ends sub and waits for its RECEIPT. go-stomp v3.1.3's
// Unsubscribe can miss the receipt's wake-up (its waiting goroutine calls
// cond.Wait after the broadcast has gone) and report a timeout though the
// receipt came; the subscription's channel tells the two apart: the
// receipt closes it, a real timeout puts an error message in it instead.
func unsubscribe(t testing.TB, sub *stomp.Subscription) {
	t.Helper()
	err := sub.Unsubscribe()
	if err == nil {
		return
	}
	if !errors.Is(err, &stomp.ErrUnsubscribeReceiptTimeout) {
		t.Fatal(err)
	}
	deadline := time.After(5 * time.Second)
	for {
		select {
		case m, ok := <-sub.C:
			if !ok {
				return
			}
			if m.Err != nil {
				t.Fatalf("unsubscribe: %v", m.Err)
			}
		case <-deadline:
			t.Fatal("unsubscribe: no receipt")
		}
	}
}

// quietStomp keeps go-stomp's log of subscriptions closed at disconnect
// out of the test output.
type quietStomp struct{}

func (quietStomp) Debugf(string, ...interface{})   {}
func (quietStomp) Infof(string, ...interface{})    {}
func (quietStomp) Warningf(string, ...interface{}) {}
func (quietStomp) Errorf(string, ...interface{})   {}
func (quietStomp) Debug(string)                    {}
func (quietStomp) Info(string)                     {}
func (quietStomp) Warning(string)                  {}
func (quietStomp) Error(string)                    {}

// next waits for a subscription's next message.
func next(t testing.TB, sub *stomp.Subscription) *stomp.Message {
	t.Helper()
	select {
	case m, ok := <-sub.C:
		if !ok {
			t.Fatal("subscription closed")
		}
		if m.Err != nil {
			t.Fatalf("subscription error: %v", m.Err)
		}
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no message within 5s")
	}
	return nil
}

// none checks that no message comes within d.
func none(t testing.TB, sub *stomp.Subscription, d time.Duration) {
	t.Helper()
	select {
	case m := <-sub.C:
		t.Fatalf("unexpected message %q", m.Body)
	case <-time.After(d):
	}
}

// raw is a STOMP connection spoken by hand, for what go-stomp cannot
// send; it reads frames with the gateway's own decoder, unescaping as
// the negotiated version says.
type raw struct {
	t   testing.TB
	c   net.Conn
	rd  *bufio.Reader
	buf []byte
	v   frame.Version
}

func newReader(c net.Conn) *bufio.Reader { return bufio.NewReader(c) }

func dialRaw(t testing.TB, addr string) *raw {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &raw{t: t, c: c, rd: newReader(c), v: frame.V10}
}

func (r *raw) send(s string) {
	r.t.Helper()
	if _, err := r.c.Write([]byte(s)); err != nil {
		r.t.Fatal(err)
	}
}

// connect sends CONNECT for version v ("" for none) and reads CONNECTED.
func (r *raw) connect(v string) *rawFrame {
	r.t.Helper()
	hdr := "host:/\n"
	if v != "" {
		hdr += "accept-version:" + v + "\n"
	}
	r.send("CONNECT\n" + hdr + "\n\x00")
	f := r.read()
	if f.Command != "CONNECTED" {
		r.t.Fatalf("got %s %v %q", f.Command, f.Header, f.Body)
	}
	if pv, ok := frame.ParseVersion(f.Header.Get("version")); ok {
		r.v = pv
	}
	return f
}

// rawFrame is a frame read by raw.
type rawFrame struct {
	Command string
	Header  rawHeader
	Body    []byte
}

type rawHeader [][2]string

// Get returns the first header named k.
func (h rawHeader) Get(k string) string {
	for _, kv := range h {
		if kv[0] == k {
			return kv[1]
		}
	}
	return ""
}

// read reads the next frame, skipping heart-beats.
func (r *raw) read() *rawFrame {
	r.t.Helper()
	_ = r.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		r.buf = r.buf[frame.SkipEOL(r.buf):]
		if len(r.buf) > 0 {
			var f frame.Frame
			n, err := frame.Decode(r.buf, r.v, frame.Limits{MaxFrame: 1 << 24, MaxHeaders: 1000}, &f)
			if err == nil {
				out := &rawFrame{Command: f.Command.String(), Body: append([]byte(nil), f.Body...)}
				for _, h := range f.Headers {
					out.Header = append(out.Header, [2]string{string(h.Key), string(h.Value)})
				}
				r.buf = r.buf[n:]
				return out
			}
			if err != frame.ErrIncomplete {
				r.t.Fatalf("bad frame from the server: %v: %q", err, r.buf)
			}
		}
		var chunk [4096]byte
		n, err := r.rd.Read(chunk[:])
		if err != nil {
			r.t.Fatalf("read: %v (have %q)", err, r.buf)
		}
		r.buf = append(r.buf, chunk[:n]...)
	}
}

// readError reads an ERROR frame and checks that the connection closes
// after it.
func (r *raw) readError(wantMessage string) *rawFrame {
	r.t.Helper()
	f := r.read()
	if f.Command != "ERROR" || !strings.Contains(f.Header.Get("message"), wantMessage) {
		r.t.Fatalf("got %s message %q body %q, want ERROR %q", f.Command, f.Header.Get("message"), f.Body, wantMessage)
	}
	r.closed()
	return f
}

// closed checks that the server closes the connection.
func (r *raw) closed() {
	r.t.Helper()
	_ = r.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(r.rd); err != nil {
		r.t.Fatalf("connection not closed: %v", err)
	}
}

func amqpQueueOpts() amqpgw.QueueOptions { return amqpgw.QueueOptions{Durable: true} }

// TestMain-free helpers end here; the tests follow.

// The STOMP tutorial's pattern: a producer sends to /queue/name, a
// consumer receives; on both transports.
func TestSendAndReceive(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			g := startGateway(t, tr.portable, Options{}, "")
			c := dial(t, g.addr)
			sub, err := c.Subscribe("/queue/hello", stomp.AckAuto)
			must(t, err)
			must(t, c.Send("/queue/hello", "text/plain", []byte("hello world"), stomp.SendOpt.Receipt))
			m := next(t, sub)
			if string(m.Body) != "hello world" || m.ContentType != "text/plain" || m.Destination != "/queue/hello" {
				t.Fatalf("got %q %q %q", m.Body, m.ContentType, m.Destination)
			}
			if got := m.Header.Get("message-id"); got == "" {
				t.Fatal("no message-id")
			}
		})
	}
}

// Every version go-stomp speaks is negotiated and works.
func TestVersionsNegotiated(t *testing.T) {
	g := startGateway(t, false, Options{}, "")
	for _, v := range []stomp.Version{stomp.V10, stomp.V11, stomp.V12} {
		c := dial(t, g.addr, stomp.ConnOpt.AcceptVersion(v))
		if c.Version() != v {
			t.Fatalf("asked %v, got %v", v, c.Version())
		}
		q := "/queue/v" + strings.ReplaceAll(string(v), ".", "")
		sub, err := c.Subscribe(q, stomp.AckClientIndividual)
		must(t, err)
		must(t, c.Send(q, "text/plain", []byte("hi "+string(v)), stomp.SendOpt.Receipt))
		m := next(t, sub)
		if string(m.Body) != "hi "+string(v) {
			t.Fatalf("%v: got %q", v, m.Body)
		}
		must(t, c.Ack(m))
		unsubscribe(t, sub)
	}
}

// A work queue: two competing subscribers with client-individual acks and
// prefetch 1 share the messages; the unacknowledged ones of the one that
// disconnects are delivered again to the other, marked redelivered.
func TestWorkQueueRedelivery(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			g := startGateway(t, tr.portable, Options{}, "")
			prod := dial(t, g.addr)
			a, err := stomp.Dial("tcp", g.addr, stomp.ConnOpt.Host("/"), stomp.ConnOpt.Logger(quietStomp{}))
			must(t, err)
			b := dial(t, g.addr)
			pf := stomp.SubscribeOpt.Header("prefetch-count", "1")
			subA, err := a.Subscribe("/queue/tasks", stomp.AckClientIndividual, pf)
			must(t, err)
			subB, err := b.Subscribe("/queue/tasks", stomp.AckClientIndividual, pf)
			must(t, err)
			for i := 1; i <= 4; i++ {
				must(t, prod.Send("/queue/tasks", "text/plain", []byte(fmt.Sprintf("task %d", i)), stomp.SendOpt.Receipt))
			}
			ma, mb := next(t, subA), next(t, subB)
			if string(ma.Body) == string(mb.Body) {
				t.Fatalf("both got %q", ma.Body)
			}
			none(t, subA, 50*time.Millisecond) // prefetch 1: nothing more before the ack
			if q := g.amqp.Queues(); q[0].Unacked != 2 || q[0].Ready != 2 || q[0].Consumers != 2 {
				t.Fatalf("queue %+v", q[0])
			}
			// a goes away without acknowledging: its task goes to b.
			_ = a.MustDisconnect()
			must(t, b.Ack(mb))
			got := map[string]bool{}
			for len(got) < 3 {
				m := next(t, subB)
				got[string(m.Body)] = m.Header.Get("redelivered") == "true"
				must(t, b.Ack(m))
			}
			if redelivered, ok := got[string(ma.Body)]; !ok || !redelivered {
				t.Fatalf("a's task %q: %v", ma.Body, got)
			}
			for body, r := range got {
				if body != string(ma.Body) && r {
					t.Fatalf("%q marked redelivered", body)
				}
			}
			eventually(t, "every task acknowledged", func() bool { q := g.amqp.Queues()[0]; return q.Unacked == 0 && q.Ready == 0 })
		})
	}
}

// ack:client acknowledges cumulatively; NACK gives back (requeue) or
// drops a message.
func TestClientAckAndNack(t *testing.T) {
	g := startGateway(t, false, Options{}, "")
	c := dial(t, g.addr)
	sub, err := c.Subscribe("/queue/cum", stomp.AckClient)
	must(t, err)
	for i := 1; i <= 3; i++ {
		must(t, c.Send("/queue/cum", "", []byte{byte('0' + i)}, stomp.SendOpt.Receipt))
	}
	m1, m2, m3 := next(t, sub), next(t, sub), next(t, sub)
	_ = m1
	_ = m2
	must(t, c.Ack(m3)) // all three
	eventually(t, "the cumulative ack", func() bool { q := g.amqp.Queues()[0]; return q.Unacked == 0 && q.Ready == 0 })

	isub, err := c.Subscribe("/queue/nack", stomp.AckClientIndividual)
	must(t, err)
	must(t, c.Send("/queue/nack", "", []byte("again"), stomp.SendOpt.Receipt))
	m := next(t, isub)
	must(t, c.Nack(m))
	m = next(t, isub)
	if string(m.Body) != "again" || m.Header.Get("redelivered") != "true" {
		t.Fatalf("after NACK: %q %v", m.Body, m.Header)
	}
	// requeue:false drops it.
	r := dialRaw(t, g.addr)
	r.connect("1.2")
	r.send("SUBSCRIBE\nid:x\ndestination:/queue/drop\nack:client-individual\n\n\x00SEND\ndestination:/queue/drop\n\ngone\x00")
	f := r.read()
	r.send("NACK\nid:" + f.Header.Get("ack") + "\nrequeue:false\nreceipt:n\n\n\x00")
	if f := r.read(); f.Command != "RECEIPT" {
		t.Fatalf("%s %v", f.Command, f.Header)
	}
	eventually(t, "the dropped message", func() bool {
		for _, q := range g.amqp.Queues() {
			if q.Name == "drop" {
				return q.Ready == 0 && q.Unacked == 0
			}
		}
		return false
	})
}

// UNSUBSCRIBE gives back what the subscription had not acknowledged, to
// be delivered again, redelivered:true, to the next subscriber.
func TestUnsubscribeRedelivers(t *testing.T) {
	g := startGateway(t, false, Options{}, "")
	r := dialRaw(t, g.addr)
	r.connect("1.2")
	r.send("SUBSCRIBE\nid:a\ndestination:/queue/u\nack:client\n\n\x00SEND\ndestination:/queue/u\n\none\x00SEND\ndestination:/queue/u\n\ntwo\x00")
	m1, m2 := r.read(), r.read()
	if string(m1.Body) != "one" || string(m2.Body) != "two" {
		t.Fatalf("got %q %q", m1.Body, m2.Body)
	}
	r.send("ACK\nid:" + m1.Header.Get("ack") + "\n\n\x00UNSUBSCRIBE\nid:a\n\n\x00SUBSCRIBE\nid:b\ndestination:/queue/u\nack:client-individual\n\n\x00")
	m := r.read()
	if string(m.Body) != "two" || m.Header.Get("redelivered") != "true" || m.Header.Get("subscription") != "b" {
		t.Fatalf("after UNSUBSCRIBE: %q %v", m.Body, m.Header)
	}
	// In client mode a NACK, like an ACK, covers every message up to it.
	r.send("SEND\ndestination:/queue/u\n\nthree\x00")
	r.read()
	r.send("UNSUBSCRIBE\nid:b\n\n\x00SUBSCRIBE\nid:c\ndestination:/queue/u\nack:client\n\n\x00")
	a, b := r.read(), r.read()
	if string(a.Body) != "two" || string(b.Body) != "three" {
		t.Fatalf("redelivered %q %q", a.Body, b.Body)
	}
	r.send("NACK\nid:" + b.Header.Get("ack") + "\n\n\x00")
	if a, b := r.read(), r.read(); string(a.Body) != "two" || string(b.Body) != "three" || b.Header.Get("redelivered") != "true" {
		t.Fatalf("after a cumulative NACK %q %q", a.Body, b.Body)
	}
}

// prefetch-count caps the messages a subscriber holds unacknowledged.
func TestPrefetchCount(t *testing.T) {
	g := startGateway(t, false, Options{}, "")
	c := dial(t, g.addr)
	sub, err := c.Subscribe("/queue/fair", stomp.AckClientIndividual, stomp.SubscribeOpt.Header("prefetch-count", "3"))
	must(t, err)
	for i := 0; i < 10; i++ {
		must(t, c.Send("/queue/fair", "", []byte{byte('a' + i)}, nil))
	}
	var held []*stomp.Message
	for i := 0; i < 3; i++ {
		held = append(held, next(t, sub))
	}
	none(t, sub, 100*time.Millisecond)
	must(t, c.Ack(held[0]))
	m := next(t, sub)
	if string(m.Body) != "d" {
		t.Fatalf("after one ack got %q", m.Body)
	}
	none(t, sub, 50*time.Millisecond)
}

// Transactions group SENDs and ACKs: COMMIT applies them, ABORT drops
// them.
func TestTransactions(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			g := startGateway(t, tr.portable, Options{}, "")
			c := dial(t, g.addr)
			sub, err := c.Subscribe("/queue/tx", stomp.AckClientIndividual)
			must(t, err)
			tx, err := c.BeginWithError()
			must(t, err)
			must(t, tx.Send("/queue/tx", "text/plain", []byte("one"), nil))
			must(t, tx.Send("/queue/tx", "text/plain", []byte("two"), nil))
			none(t, sub, 50*time.Millisecond)
			must(t, tx.Commit())
			m1, m2 := next(t, sub), next(t, sub)
			if string(m1.Body) != "one" || string(m2.Body) != "two" {
				t.Fatalf("committed %q %q", m1.Body, m2.Body)
			}
			abort, err := c.BeginWithError()
			must(t, err)
			must(t, abort.Send("/queue/tx", "text/plain", []byte("never"), nil))
			must(t, abort.Ack(m1))
			must(t, abort.Abort())
			none(t, sub, 50*time.Millisecond)
			if q := g.amqp.Queues()[0]; q.Unacked != 2 {
				t.Fatalf("aborted ack applied: %+v", q)
			}
			acks, err := c.BeginWithError()
			must(t, err)
			must(t, acks.Ack(m1))
			must(t, acks.Ack(m2))
			if q := g.amqp.Queues()[0]; q.Unacked != 2 {
				t.Fatalf("ack applied before commit: %+v", q)
			}
			must(t, acks.Commit())
			eventually(t, "the committed acks", func() bool { return g.amqp.Queues()[0].Unacked == 0 })
		})
	}
}

// Header values with the characters STOMP escapes, and binary bodies
// with NULs, arrive as they were sent.
func TestHeadersAndBinaryBodies(t *testing.T) {
	g := startGateway(t, false, Options{}, "")
	c := dial(t, g.addr)
	sub, err := c.Subscribe("/queue/bin", stomp.AckAuto)
	must(t, err)
	body := []byte{0, 1, 2, 0, 255, 0, 'x', 0}
	odd := "colon: line\nbreak back\\slash"
	must(t, c.Send("/queue/bin", "application/octet-stream", body,
		stomp.SendOpt.Header("odd", odd), stomp.SendOpt.Header("correlation-id", "c-9"),
		stomp.SendOpt.Header("persistent", "true"), stomp.SendOpt.Header("priority", "7")))
	m := next(t, sub)
	if !bytes.Equal(m.Body, body) || m.ContentType != "application/octet-stream" {
		t.Fatalf("body %v type %q", m.Body, m.ContentType)
	}
	for k, want := range map[string]string{"odd": odd, "correlation-id": "c-9", "persistent": "true", "priority": "7"} {
		if got := m.Header.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
}

// Pub/sub through /topic: every subscriber gets every message, with
// amq.topic's wildcards.
func TestTopics(t *testing.T) {
	g := startGateway(t, false, Options{}, "")
	c := dial(t, g.addr)
	all, err := c.Subscribe("/topic/site.#", stomp.AckAuto)
	must(t, err)
	temp, err := c.Subscribe("/topic/site.*.temp", stomp.AckAuto)
	must(t, err)
	syncConn(t, c)
	other := dial(t, g.addr)
	must(t, other.Send("/topic/site.7.temp", "text/plain", []byte("21.5"), stomp.SendOpt.Receipt))
	must(t, other.Send("/topic/site.7.door", "text/plain", []byte("open"), stomp.SendOpt.Receipt))
	if m := next(t, temp); string(m.Body) != "21.5" || m.Destination != "/topic/site.7.temp" {
		t.Fatalf("temp got %q at %q", m.Body, m.Destination)
	}
	if a, b := next(t, all), next(t, all); string(a.Body) != "21.5" || string(b.Body) != "open" {
		t.Fatalf("all got %q %q", a.Body, b.Body)
	}
	none(t, temp, 50*time.Millisecond)
	// The subscriptions' queues are exclusive to the connection and go
	// with their subscriptions.
	if n := len(g.amqp.Queues()); n != 2 {
		t.Fatalf("%d queues for two topic subscriptions", n)
	}
	unsubscribe(t, all)
	eventually(t, "the unsubscribed queue deleted", func() bool { return len(g.amqp.Queues()) == 1 })
}

// /exchange/NAME/KEY sends to and subscribes on any exchange.
func TestExchangeDestinations(t *testing.T) {
	g := startGateway(t, false, Options{}, "")
	c := dial(t, g.addr)
	a, err := c.Subscribe("/exchange/amq.fanout", stomp.AckAuto)
	must(t, err)
	b, err := c.Subscribe("/exchange/amq.direct/red", stomp.AckAuto)
	must(t, err)
	must(t, c.Send("/exchange/amq.fanout/any", "", []byte("to all"), stomp.SendOpt.Receipt))
	must(t, c.Send("/exchange/amq.direct/red", "", []byte("red"), stomp.SendOpt.Receipt))
	must(t, c.Send("/exchange/amq.direct/blue", "", []byte("blue"), stomp.SendOpt.Receipt))
	if m := next(t, a); string(m.Body) != "to all" || m.Destination != "/exchange/amq.fanout/any" {
		t.Fatalf("fanout got %q at %q", m.Body, m.Destination)
	}
	if m := next(t, b); string(m.Body) != "red" {
		t.Fatalf("direct got %q", m.Body)
	}
	none(t, b, 50*time.Millisecond)
}

// Request/reply: a reply-to of /temp-queue/NAME is rewritten to the
// connection's private queue, where the responder's answer comes back.
func TestRequestReplyWithTempQueue(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			g := startGateway(t, tr.portable, Options{}, "")
			server := dial(t, g.addr)
			reqs, err := server.Subscribe("/queue/rpc", stomp.AckAuto)
			must(t, err)
			go func() {
				for m := range reqs.C {
					if m.Err != nil {
						return
					}
					_ = server.Send(m.Header.Get("reply-to"), "text/plain", append([]byte("re: "), m.Body...),
						stomp.SendOpt.Header("correlation-id", m.Header.Get("correlation-id")))
				}
			}()
			// go-stomp reads MESSAGE frames of its own subscriptions, so
			// it subscribes to the temporary queue before using it.
			client := dial(t, g.addr)
			replies, err := client.Subscribe("/temp-queue/answers", stomp.AckAuto)
			must(t, err)
			must(t, client.Send("/queue/rpc", "text/plain", []byte("ping"),
				stomp.SendOpt.Header("reply-to", "/temp-queue/answers"), stomp.SendOpt.Header("correlation-id", "42")))
			m := next(t, replies)
			if string(m.Body) != "re: ping" || m.Header.Get("correlation-id") != "42" || m.Destination != "/temp-queue/answers" {
				t.Fatalf("reply %q %v", m.Body, m.Header)
			}

			// By hand, as RabbitMQ's clients do it: no SUBSCRIBE, the
			// reply comes on the subscription named for the temporary
			// queue; the responder saw a /reply-queue/.
			r := dialRaw(t, g.addr)
			r.connect("1.2")
			r.send("SEND\ndestination:/queue/rpc\nreply-to:/temp-queue/mine\ncorrelation-id:7\n\nhello\x00")
			f := r.read()
			if f.Command != "MESSAGE" || f.Header.Get("subscription") != "/temp-queue/mine" || string(f.Body) != "re: hello" ||
				f.Header.Get("destination") != "/temp-queue/mine" {
				t.Fatalf("raw reply %s %v %q", f.Command, f.Header, f.Body)
			}
			// A temporary queue made by a SEND to it gets its
			// subscription once a reply-to names it; what waited there
			// comes too.
			r.send("SEND\ndestination:/temp-queue/later\n\nwaiting\x00SEND\ndestination:/queue/rpc\nreply-to:/temp-queue/later\n\nq\x00")
			a, b := r.read(), r.read()
			if a.Header.Get("subscription") != "/temp-queue/later" || string(a.Body) != "waiting" || string(b.Body) != "re: q" {
				t.Fatalf("late subscription: %v %q, %v %q", a.Header, a.Body, b.Header, b.Body)
			}
			// The temporary queues go with their connections.
			r.c.Close()
			_ = client.MustDisconnect()
			eventually(t, "temporary queues deleted", func() bool { return len(g.amqp.Queues()) == 1 })
		})
	}
}

// A durable topic subscription (durable:true with an id) keeps collecting
// while its subscriber is away, also across a restart of the broker for
// persistent messages; UNSUBSCRIBE with durable:true deletes it.
func TestDurableTopicSubscription(t *testing.T) {
	dir := t.TempDir()
	g := startGateway(t, false, Options{}, dir)
	durable := []func(*stompframe.Frame) error{stomp.SubscribeOpt.Id("alerts-1"), stomp.SubscribeOpt.Header("durable", "true"), stomp.SubscribeOpt.Header("auto-delete", "false")}
	c := dial(t, g.addr)
	sub, err := c.Subscribe("/topic/alerts.*", stomp.AckClientIndividual, durable...)
	must(t, err)
	unsubscribe(t, sub) // away; the queue stays
	syncConn(t, c)
	p := dial(t, g.addr)
	must(t, p.Send("/topic/alerts.fire", "text/plain", []byte("kept"), stomp.SendOpt.Receipt, stomp.SendOpt.Header("persistent", "true")))
	must(t, p.Send("/topic/alerts.flood", "text/plain", []byte("transient"), stomp.SendOpt.Receipt))
	if q := g.amqp.Queues(); len(q) != 1 || q[0].Name != "stomp-subscription-alerts-1" || q[0].Ready != 2 || !q[0].Durable {
		t.Fatalf("queues %+v", q)
	}
	_ = c.MustDisconnect()
	_ = p.MustDisconnect()
	g.stop()

	g = startGateway(t, false, Options{}, dir)
	c = dial(t, g.addr)
	sub, err = c.Subscribe("/topic/alerts.*", stomp.AckClientIndividual, durable...)
	must(t, err)
	m := next(t, sub)
	if string(m.Body) != "kept" || m.Header.Get("persistent") != "true" {
		t.Fatalf("after restart got %q %v", m.Body, m.Header)
	}
	must(t, c.Ack(m))
	none(t, sub, 50*time.Millisecond) // the transient one did not outlive the broker
	r := dialRaw(t, g.addr)
	r.connect("1.2")
	r.send("SUBSCRIBE\nid:alerts-1\ndestination:/topic/alerts.*\ndurable:true\nauto-delete:false\n\n\x00UNSUBSCRIBE\nid:alerts-1\ndurable:true\nreceipt:u\n\n\x00")
	if f := r.read(); f.Command != "RECEIPT" {
		t.Fatalf("%s %v %q", f.Command, f.Header, f.Body)
	}
	_ = sub.Unsubscribe()
	eventually(t, "the durable subscription deleted", func() bool { return len(g.amqp.Queues()) == 0 })
}

// Two clients that number their durable subscriptions alike keep them
// apart with a client-id.
func TestDurableSubscriptionNamedByClientID(t *testing.T) {
	g := startGateway(t, false, Options{}, "")
	for _, cid := range []string{"dash-1", "dash-2"} {
		r := dialRaw(t, g.addr)
		r.send("CONNECT\naccept-version:1.2\nclient-id:" + cid + "\n\n\x00")
		r.read()
		r.send("SUBSCRIBE\nid:1\ndestination:/topic/alerts\ndurable:true\nreceipt:s\n\n\x00")
		if f := r.read(); f.Command != "RECEIPT" {
			t.Fatalf("%s %v %q", f.Command, f.Header, f.Body)
		}
	}
	qs := g.amqp.Queues()
	if len(qs) != 2 || qs[0].Name != "stomp-subscription-dash-1-1" || qs[1].Name != "stomp-subscription-dash-2-1" {
		t.Fatalf("queues %+v", qs)
	}
}

// Persistent messages in a durable /queue survive a restart of the
// broker once their receipts came; transient ones do not.
func TestPersistentMessagesSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	g := startGateway(t, false, Options{}, dir)
	c := dial(t, g.addr)
	for i := 0; i < 5; i++ {
		must(t, c.Send("/queue/jobs", "text/plain", []byte(fmt.Sprintf("job %d", i)), stomp.SendOpt.Receipt, stomp.SendOpt.Header("persistent", "true")))
	}
	must(t, c.Send("/queue/jobs", "text/plain", []byte("transient"), stomp.SendOpt.Receipt))
	_ = c.MustDisconnect()
	g.stop()

	g = startGateway(t, false, Options{}, dir)
	c = dial(t, g.addr)
	sub, err := c.Subscribe("/queue/jobs", stomp.AckClientIndividual)
	must(t, err)
	for i := 0; i < 5; i++ {
		m := next(t, sub)
		if string(m.Body) != fmt.Sprintf("job %d", i) || m.Header.Get("persistent") != "true" {
			t.Fatalf("message %d: %q %v", i, m.Body, m.Header)
		}
		must(t, c.Ack(m))
	}
	none(t, sub, 50*time.Millisecond)
}

// A DISCONNECT's receipt comes once the SENDs before it are stored.
func TestDisconnectReceiptAfterStores(t *testing.T) {
	g := startGateway(t, false, Options{}, "")
	r := dialRaw(t, g.addr)
	r.connect("1.2")
	var frames strings.Builder
	for i := 0; i < 100; i++ {
		frames.WriteString("SEND\ndestination:/queue/d\npersistent:true\n\nm\x00")
	}
	frames.WriteString("DISCONNECT\nreceipt:bye\n\n\x00")
	r.send(frames.String())
	if f := r.read(); f.Command != "RECEIPT" || f.Header.Get("receipt-id") != "bye" {
		t.Fatalf("%s %v", f.Command, f.Header)
	}
	if q := g.amqp.Queues(); len(q) != 1 || q[0].Ready != 100 {
		t.Fatalf("queue at the receipt: %+v", q)
	}
	r.closed()
}

// syncConn waits until the gateway has served every frame c sent: frames
// are served in order, and go-stomp's SUBSCRIBE does not wait for the
// subscription to be set up.
func syncConn(t testing.TB, c *stomp.Conn) {
	t.Helper()
	must(t, c.Send("/topic/sync.nobody", "", nil, stomp.SendOpt.Receipt))
}

// eventually waits for cond, checking every few milliseconds, and fails
// after 5 s.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
