package amqpgw

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/ledgemq/ledge/broker"
)

// localMsg is a delivery copied out of Sink.Deliver.
type localMsg struct {
	exchange, key, body string
	contentType         string
	correlationID       string
	replyTo             string
	persistent          bool
	headers             map[string]string
	seq                 uint64
	redelivered         bool
}

// testSink is another gateway's subscription: deliveries go to a
// channel, and Do runs tasks on a goroutine of its own, as a connection's
// event loop would.
type testSink struct {
	got       chan localMsg
	tasks     chan func()
	done      chan struct{}
	cancelled chan struct{}
	once      sync.Once
	refuse    atomic.Bool
}

func newTestSink(t *testing.T) *testSink {
	k := &testSink{got: make(chan localMsg, 1000), tasks: make(chan func(), 1000), done: make(chan struct{}), cancelled: make(chan struct{})}
	go func() {
		for {
			select {
			case fn := <-k.tasks:
				fn()
			case <-k.done:
				return
			}
		}
	}()
	t.Cleanup(func() { close(k.done) })
	return k
}

func (k *testSink) Deliver(d *Delivery) bool {
	if k.refuse.Load() {
		return false
	}
	m := localMsg{exchange: string(d.Exchange), key: string(d.RoutingKey), body: string(d.Body),
		contentType: string(d.Properties.ContentType), correlationID: string(d.Properties.CorrelationID),
		replyTo: string(d.Properties.ReplyTo), persistent: d.Properties.DeliveryMode == 2,
		headers: map[string]string{}, seq: d.Seq, redelivered: d.Redelivered}
	for _, h := range d.Properties.Headers {
		m.headers[string(h.Key)] = string(h.Value)
	}
	k.got <- m
	return true
}

func (k *testSink) Do(fn func()) bool {
	select {
	case k.tasks <- fn:
		return true
	case <-k.done:
		return false
	}
}

func (k *testSink) Congested() bool { return false }
func (k *testSink) Cancelled()      { k.once.Do(func() { close(k.cancelled) }) }

func (k *testSink) next(t *testing.T) localMsg {
	t.Helper()
	select {
	case m := <-k.got:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no local delivery within 5s")
	}
	return localMsg{}
}

func (k *testSink) none(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case m := <-k.got:
		t.Fatalf("unexpected delivery %+v", m)
	case <-time.After(d):
	}
}

// publishLocal publishes through p and waits for the confirm.
func publishLocal(t *testing.T, p *Publisher, m *Publishing) bool {
	t.Helper()
	done := make(chan error, 1)
	routed, err := p.Publish(m, func(_ broker.PubAck, err error) { done <- err })
	must(t, err)
	select {
	case err := <-done:
		must(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("no confirm within 5s")
	}
	return routed
}

// A queue declared in process is the queue AMQP clients see, both ways:
// an AMQP publish reaches the local consumer with its properties, and a
// local publish reaches an AMQP consumer with its.
func TestLocalQueueIsTheAMQPQueue(t *testing.T) {
	g := startGateway(t, Options{}, "")
	name, err := g.srv.DeclareQueue(nil, "orders", QueueOptions{Durable: true})
	must(t, err)
	if name != "orders" || !g.srv.HasQueue([]byte("orders")) {
		t.Fatalf("declared %q", name)
	}
	_, ch := dial(t, g)
	if _, err := ch.QueueDeclarePassive("orders", true, false, false, false, nil); err != nil {
		t.Fatalf("AMQP does not see the queue: %v", err)
	}
	k := newTestSink(t)
	sub, err := g.srv.Consume("orders", ConsumeOptions{Prefetch: 10}, k)
	must(t, err)
	publish(t, ch, "", "orders", amqp.Publishing{ContentType: "text/plain", CorrelationId: "c-1", ReplyTo: "replies",
		DeliveryMode: amqp.Persistent, Headers: amqp.Table{"site": "7", "n": int32(42), "ok": true}, Body: []byte("one")})
	m := k.next(t)
	if m.body != "one" || m.exchange != "" || m.key != "orders" || m.contentType != "text/plain" || m.correlationID != "c-1" ||
		m.replyTo != "replies" || !m.persistent || m.headers["site"] != "7" || m.headers["n"] != "42" || m.headers["ok"] != "true" || m.redelivered {
		t.Fatalf("local got %+v", m)
	}
	must(t, sub.Ack(m.seq))

	msgs, err := ch.Consume("orders", "", true, false, false, false, nil)
	must(t, err)
	sub.Cancel(nil)
	p := g.srv.NewPublisher()
	publishLocal(t, p, &Publishing{RoutingKey: []byte("orders"), Body: []byte("two"), Properties: Properties{
		ContentType: []byte("application/json"), DeliveryMode: 2, Priority: 3, HasPriority: true,
		Headers: []Header{{Key: []byte("origin"), Value: []byte("stomp")}}}})
	d := recv(t, msgs)
	if string(d.Body) != "two" || d.ContentType != "application/json" || d.DeliveryMode != 2 || d.Priority != 3 || d.Headers["origin"] != "stomp" {
		t.Fatalf("AMQP got %q %+v", d.Body, d)
	}
	qs := g.srv.Queues()
	if len(qs) != 1 || qs[0].Name != "orders" || !qs[0].Durable {
		t.Fatalf("queues %+v", qs)
	}
}

// Competing local consumers with prefetch 1 share a queue; what one
// cancels without acknowledging goes to the other, marked redelivered.
func TestLocalPrefetchAndRedelivery(t *testing.T) {
	g := startGateway(t, Options{}, "")
	_, err := g.srv.DeclareQueue(nil, "work", QueueOptions{Durable: true})
	must(t, err)
	a, b := newTestSink(t), newTestSink(t)
	subA, err := g.srv.Consume("work", ConsumeOptions{Prefetch: 1}, a)
	must(t, err)
	p := g.srv.NewPublisher()
	for _, s := range []string{"j1", "j2", "j3"} {
		publishLocal(t, p, &Publishing{RoutingKey: []byte("work"), Body: []byte(s)})
	}
	m1 := a.next(t)
	a.none(t, 50*time.Millisecond) // prefetch 1: nothing more until the ack
	subB, err := g.srv.Consume("work", ConsumeOptions{Prefetch: 1}, b)
	must(t, err)
	m2 := b.next(t)
	if m1.body != "j1" || m2.body != "j2" {
		t.Fatalf("got %q and %q", m1.body, m2.body)
	}
	if qs := g.srv.Queues(); qs[0].Consumers != 2 || qs[0].Unacked != 2 || qs[0].Ready != 1 {
		t.Fatalf("queue %+v", qs[0])
	}
	subA.Cancel([]uint64{m1.seq})
	must(t, subB.Ack(m2.seq))
	m3 := b.next(t)
	must(t, subB.Ack(m3.seq))
	m4 := b.next(t)
	got := map[string]bool{m3.body: m3.redelivered, m4.body: m4.redelivered}
	if len(got) != 2 || !got["j1"] || got["j3"] {
		t.Fatalf("after cancel got %+v %+v", m3, m4)
	}
}

// A no-ack subscription's messages are acknowledged as they go: the queue
// empties without acks from the sink.
func TestLocalNoAck(t *testing.T) {
	g := startGateway(t, Options{}, "")
	_, err := g.srv.DeclareQueue(nil, "fire", QueueOptions{})
	must(t, err)
	k := newTestSink(t)
	_, err = g.srv.Consume("fire", ConsumeOptions{NoAck: true}, k)
	must(t, err)
	p := g.srv.NewPublisher()
	for i := 0; i < 300; i++ {
		_, err := p.Publish(&Publishing{RoutingKey: []byte("fire"), Body: []byte("x")}, nil)
		must(t, err)
	}
	for i := 0; i < 300; i++ {
		k.next(t)
	}
	eventuallyLocal(t, "the queue drained", func() bool {
		q := g.srv.Queues()[0]
		return q.Ready == 0 && q.Unacked == 0
	})
}

// An owner's exclusive queue is locked to others and deleted on Release.
func TestLocalExclusiveQueue(t *testing.T) {
	g := startGateway(t, Options{}, "")
	o := g.srv.NewOwner()
	name, err := g.srv.DeclareQueue(o, "", QueueOptions{Exclusive: true, AutoDelete: true})
	must(t, err)
	_, ch := dial(t, g)
	if _, err := ch.Consume(name, "", false, false, false, false, nil); err == nil {
		t.Fatal("AMQP consumed another's exclusive queue")
	}
	if _, err := g.srv.Consume(name, ConsumeOptions{}, newTestSink(t)); !isCode(err, CodeResourceLocked) {
		t.Fatalf("consume without the owner: %v", err)
	}
	k := newTestSink(t)
	if _, err := g.srv.Consume(name, ConsumeOptions{Owner: o}, k); err != nil {
		t.Fatal(err)
	}
	o.Release()
	if g.srv.HasQueue([]byte(name)) {
		t.Fatal("exclusive queue outlived its owner")
	}
	select {
	case <-k.cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("consumer not told of the deletion")
	}
	if _, err := g.srv.DeclareQueue(o, "", QueueOptions{Exclusive: true}); err == nil {
		t.Fatal("a released owner declared a queue")
	}
}

// Bindings made in process route like AMQP's: a topic binding on
// amq.topic, and publishes to missing exchanges are refused.
func TestLocalBindAndPublishErrors(t *testing.T) {
	g := startGateway(t, Options{}, "")
	o := g.srv.NewOwner()
	name, err := g.srv.DeclareQueue(o, "", QueueOptions{Exclusive: true})
	must(t, err)
	must(t, g.srv.Bind(o, name, "amq.topic", "site.*.temp", Table{}))
	if err := g.srv.Bind(o, name, "nope", "k", Table{}); !isCode(err, CodeNotFound) {
		t.Fatalf("bind to a missing exchange: %v", err)
	}
	k := newTestSink(t)
	sub, err := g.srv.Consume(name, ConsumeOptions{Owner: o}, k)
	must(t, err)
	p := g.srv.NewPublisher()
	if !publishLocal(t, p, &Publishing{Exchange: []byte("amq.topic"), RoutingKey: []byte("site.7.temp"), Body: []byte("21")}) {
		t.Fatal("not routed")
	}
	m := k.next(t)
	if m.exchange != "amq.topic" || m.key != "site.7.temp" || m.body != "21" {
		t.Fatalf("got %+v", m)
	}
	must(t, sub.Ack(m.seq))
	if routed := publishLocal(t, p, &Publishing{Exchange: []byte("amq.topic"), RoutingKey: []byte("other"), Body: []byte("x")}); routed {
		t.Fatal("unbound key routed")
	}
	if _, err := p.Publish(&Publishing{Exchange: []byte("missing")}, nil); !isCode(err, CodeNotFound) {
		t.Fatalf("publish to a missing exchange: %v", err)
	}
	must(t, g.srv.Unbind(o, name, "amq.topic", "site.*.temp", Table{}))
	if routed := publishLocal(t, p, &Publishing{Exchange: []byte("amq.topic"), RoutingKey: []byte("site.7.temp")}); routed {
		t.Fatal("routed after unbind")
	}
	if err := g.srv.DeleteQueue(o, name); err != nil || g.srv.HasQueue([]byte(name)) {
		t.Fatalf("delete: %v", err)
	}
}

// A message refused without requeue is dead-lettered; one refused by the
// sink goes back to the queue.
func TestLocalNackAndRefusal(t *testing.T) {
	g := startGateway(t, Options{}, "")
	var args Table
	args.SetString("x-dead-letter-exchange", "")
	args.SetString("x-dead-letter-routing-key", "dead")
	_, err := g.srv.DeclareQueue(nil, "dead", QueueOptions{})
	must(t, err)
	_, err = g.srv.DeclareQueue(nil, "live", QueueOptions{Arguments: args})
	must(t, err)
	if _, err := g.srv.DeclareQueue(nil, "live", QueueOptions{}); !isCode(err, CodePrecondition) {
		t.Fatalf("redeclared with other arguments: %v", err)
	}
	k := newTestSink(t)
	sub, err := g.srv.Consume("live", ConsumeOptions{Prefetch: 5}, k)
	must(t, err)
	p := g.srv.NewPublisher()
	publishLocal(t, p, &Publishing{RoutingKey: []byte("live"), Body: []byte("bad")})
	m := k.next(t)
	must(t, sub.Nack(m.seq, false))
	kd := newTestSink(t)
	_, err = g.srv.Consume("dead", ConsumeOptions{NoAck: true}, kd)
	must(t, err)
	if d := kd.next(t); d.body != "bad" || d.key != "dead" {
		t.Fatalf("dead-lettered %+v", d)
	}
	publishLocal(t, p, &Publishing{RoutingKey: []byte("live"), Body: []byte("again")})
	m = k.next(t)
	must(t, sub.Nack(m.seq, true))
	if m2 := k.next(t); m2.body != "again" || !m2.redelivered {
		t.Fatalf("requeued %+v", m2)
	}
}

// A confirm waits for every queue the message went to.
func TestLocalConfirmAcrossQueues(t *testing.T) {
	g := startGateway(t, Options{}, "")
	for _, n := range []string{"a", "b"} {
		_, err := g.srv.DeclareQueue(nil, n, QueueOptions{Durable: true})
		must(t, err)
		must(t, g.srv.Bind(nil, n, "amq.fanout", "", Table{}))
	}
	var calls atomic.Int32
	done := make(chan struct{})
	_, err := g.srv.NewPublisher().Publish(&Publishing{Exchange: []byte("amq.fanout"), Body: []byte("x")}, func(_ broker.PubAck, err error) {
		if err == nil && calls.Add(1) == 1 {
			close(done)
		}
	})
	must(t, err)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("no confirm")
	}
	eventuallyLocal(t, "both queues hold the message", func() bool {
		qs := g.srv.Queues()
		return qs[0].Ready == 1 && qs[1].Ready == 1
	})
	if calls.Load() != 1 {
		t.Fatalf("done called %d times", calls.Load())
	}
}

func TestPropertiesRoundTrip(t *testing.T) {
	in := Properties{ContentType: []byte("text/plain"), ContentEncoding: []byte("gzip"),
		Headers:      []Header{{Key: []byte("a"), Value: []byte("1")}, {Key: []byte("b"), Value: []byte("")}},
		DeliveryMode: 2, Priority: 0, HasPriority: true, CorrelationID: []byte("c"), ReplyTo: []byte("r"),
		Expiration: []byte("60000"), MessageID: []byte("m"), Timestamp: 1700000000, HasTimestamp: true,
		Type: []byte("t"), UserID: []byte("u"), AppID: []byte("app")}
	raw := appendProperties(nil, &in)
	var p props
	if err := parseProps(raw, &p); err != nil {
		t.Fatalf("the AMQP parser refuses them: %v", err)
	}
	var out Properties
	var sc propScratch
	if !decodeProperties(raw, &out, &sc) {
		t.Fatal("not decoded")
	}
	if string(out.ContentType) != "text/plain" || string(out.ContentEncoding) != "gzip" || len(out.Headers) != 2 ||
		string(out.Headers[0].Value) != "1" || out.DeliveryMode != 2 || !out.HasPriority || out.Priority != 0 ||
		string(out.CorrelationID) != "c" || string(out.ReplyTo) != "r" || string(out.Expiration) != "60000" ||
		string(out.MessageID) != "m" || out.Timestamp != 1700000000 || string(out.Type) != "t" ||
		string(out.UserID) != "u" || string(out.AppID) != "app" {
		t.Fatalf("round trip: %+v", out)
	}
	if !decodeProperties(nil, &out, &sc) || out.ContentType != nil {
		t.Fatal("empty properties")
	}
}

// eventuallyLocal waits for cond, checking it every few milliseconds, and
// fails after 5 s.
func eventuallyLocal(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func isCode(err error, code int) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}
