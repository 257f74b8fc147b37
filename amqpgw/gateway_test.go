package amqpgw

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/ledgemq/ledge/broker"
	lnet "github.com/ledgemq/ledge/net"
	"github.com/ledgemq/ledge/router"
)

type gateway struct {
	srv    *Server
	live   *router.Router[broker.Receiver]
	broker *broker.Broker
	ln     *lnet.Server
	addr   string
	dir    string
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// startGateway serves AMQP on 127.0.0.1 with a broker in dir ("" for a
// fresh temporary folder).
func startGateway(t testing.TB, opts Options, dir string) *gateway {
	t.Helper()
	return startGatewayOn(t, false, opts, dir)
}

// startGatewayOn is startGateway on the portable transport or epoll.
func startGatewayOn(t testing.TB, portable bool, opts Options, dir string) *gateway {
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
	ln, err := lnet.Listen("tcp", "127.0.0.1:0", srv.Handler(), lnet.Options{MaxInput: srv.MaxInput(), Portable: portable})
	if err != nil {
		t.Fatal(err)
	}
	g := &gateway{srv: srv, live: live, broker: b, ln: ln, addr: ln.Addr().String(), dir: dir}
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

func (g *gateway) url() string { return "amqp://guest:guest@" + g.addr + "/" }

func dial(t testing.TB, g *gateway) (*amqp.Connection, *amqp.Channel) {
	t.Helper()
	conn, err := amqp.Dial(g.url())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	return conn, ch
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func publish(t testing.TB, ch *amqp.Channel, ex, key string, msg amqp.Publishing) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	must(t, ch.PublishWithContext(ctx, ex, key, false, false, msg))
}

func text(s string) amqp.Publishing {
	return amqp.Publishing{ContentType: "text/plain", Body: []byte(s)}
}

// recv waits for one delivery.
func recv(t testing.TB, c <-chan amqp.Delivery) amqp.Delivery {
	t.Helper()
	select {
	case d, ok := <-c:
		if !ok {
			t.Fatal("deliveries closed")
		}
		return d
	case <-time.After(5 * time.Second):
		t.Fatal("no delivery within 5s")
	}
	return amqp.Delivery{}
}

// none fails if a delivery arrives within d.
func none(t testing.TB, c <-chan amqp.Delivery, d time.Duration) {
	t.Helper()
	select {
	case m := <-c:
		t.Fatalf("unexpected delivery %q", m.Body)
	case <-time.After(d):
	}
}

// Tutorial 1: hello world.
func TestHelloWorld(t *testing.T) {
	g := startGateway(t, Options{}, "")
	_, ch := dial(t, g)
	q, err := ch.QueueDeclare("hello", false, false, false, false, nil)
	must(t, err)
	publish(t, ch, "", q.Name, amqp.Publishing{ContentType: "text/plain", Body: []byte("Hello World!"),
		Headers:       amqp.Table{"s": "x", "i": int32(7), "l": int64(1) << 40, "b": true, "f": 1.5, "t": time.Unix(1700000000, 0), "n": amqp.Table{"x": int16(2)}, "a": []any{"y", int32(1)}, "d": amqp.Decimal{Scale: 2, Value: 314}, "bin": []byte{0, 1}},
		CorrelationId: "c1", MessageId: "m1", Type: "greeting", AppId: "test", Priority: 3, Expiration: "60000", Timestamp: time.Unix(1700000000, 0)})
	_, ch2 := dial(t, g)
	msgs, err := ch2.Consume("hello", "", true, false, false, false, nil)
	must(t, err)
	d := recv(t, msgs)
	if string(d.Body) != "Hello World!" || d.ContentType != "text/plain" || d.CorrelationId != "c1" || d.MessageId != "m1" ||
		d.Type != "greeting" || d.AppId != "test" || d.Priority != 3 || d.Expiration != "60000" || !d.Timestamp.Equal(time.Unix(1700000000, 0)) {
		t.Fatalf("delivery %+v", d)
	}
	if d.Headers["s"] != "x" || d.Headers["i"] != int32(7) || d.Headers["l"] != int64(1)<<40 || d.Headers["b"] != true ||
		fmt.Sprint(d.Headers["n"]) != fmt.Sprint(amqp.Table{"x": int16(2)}) || fmt.Sprint(d.Headers["a"]) != "[y 1]" {
		t.Fatalf("headers %#v", d.Headers)
	}
	if d.Exchange != "" || d.RoutingKey != "hello" || d.Redelivered {
		t.Fatalf("delivery %+v", d)
	}
}

// Tutorial 2: work queues with prefetch 1 and manual acks: the slow
// worker gets fewer messages.
func TestWorkQueueFairDispatch(t *testing.T) {
	g := startGateway(t, Options{}, "")
	_, ch := dial(t, g)
	_, err := ch.QueueDeclare("task_queue", true, false, false, false, nil)
	must(t, err)
	counts := make(chan string, 100)
	worker := func(name string, delay time.Duration) {
		_, wch := dial(t, g)
		must(t, wch.Qos(1, 0, false))
		msgs, err := wch.Consume("task_queue", "", false, false, false, false, nil)
		must(t, err)
		go func() {
			for d := range msgs {
				time.Sleep(delay)
				counts <- name
				_ = d.Ack(false)
			}
		}()
	}
	worker("slow", 200*time.Millisecond)
	worker("fast", 5*time.Millisecond)
	const n = 20
	for i := 0; i < n; i++ {
		publish(t, ch, "", "task_queue", amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte(fmt.Sprint(i))})
	}
	got := map[string]int{}
	for i := 0; i < n; i++ {
		select {
		case w := <-counts:
			got[w]++
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d of %d processed: %v", i, n, got)
		}
	}
	if got["slow"] >= got["fast"] || got["slow"] > 5 {
		t.Fatalf("slow worker got %d, fast %d", got["slow"], got["fast"])
	}
}

// Tutorial 2: a worker killed mid-task has its message redelivered to
// another, with redelivered set.
func TestWorkerDiesMessageRedelivered(t *testing.T) {
	g := startGateway(t, Options{}, "")
	_, ch := dial(t, g)
	_, err := ch.QueueDeclare("tasks", true, false, false, false, nil)
	must(t, err)
	c1, ch1 := dial(t, g)
	must(t, ch1.Qos(1, 0, false))
	m1, err := ch1.Consume("tasks", "", false, false, false, false, nil)
	must(t, err)
	publish(t, ch, "", "tasks", text("job"))
	d := recv(t, m1)
	if d.Redelivered {
		t.Fatal("first delivery marked redelivered")
	}
	_, ch2 := dial(t, g)
	m2, err := ch2.Consume("tasks", "", false, false, false, false, nil)
	must(t, err)
	none(t, m2, 100*time.Millisecond)
	c1.Close() // dies without acking
	d2 := recv(t, m2)
	if string(d2.Body) != "job" || !d2.Redelivered {
		t.Fatalf("redelivery %q redelivered=%v", d2.Body, d2.Redelivered)
	}
	must(t, d2.Ack(false))
}

// Tutorial 3: fanout logs to two exclusive server-named queues, which
// vanish with their connection.
func TestFanoutExclusiveServerNamed(t *testing.T) {
	g := startGateway(t, Options{}, "")
	_, ch := dial(t, g)
	must(t, ch.ExchangeDeclare("logs", "fanout", true, false, false, false, nil))
	var subs []<-chan amqp.Delivery
	var names []string
	var conns []*amqp.Connection
	for i := 0; i < 2; i++ {
		c, sch := dial(t, g)
		q, err := sch.QueueDeclare("", false, false, true, false, nil)
		must(t, err)
		if len(q.Name) < 8 || q.Name[:8] != "amq.gen-" {
			t.Fatalf("server-named queue %q", q.Name)
		}
		must(t, sch.QueueBind(q.Name, "", "logs", false, nil))
		m, err := sch.Consume(q.Name, "", true, true, false, false, nil)
		must(t, err)
		subs = append(subs, m)
		names = append(names, q.Name)
		conns = append(conns, c)
	}
	publish(t, ch, "logs", "", text("info: hello"))
	for _, m := range subs {
		if d := recv(t, m); string(d.Body) != "info: hello" || d.Exchange != "logs" {
			t.Fatalf("got %q from %q", d.Body, d.Exchange)
		}
	}
	// Another connection may not use an exclusive queue.
	_, och := dial(t, g)
	if _, err := och.QueueDeclarePassive(names[0], false, false, true, false, nil); err == nil || err.(*amqp.Error).Code != 405 {
		t.Fatalf("passive declare of another's exclusive queue: %v", err)
	}
	conns[0].Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, pch := dial(t, g)
		_, err := pch.QueueDeclarePassive(names[0], false, false, true, false, nil)
		if e, ok := err.(*amqp.Error); ok && e.Code == 404 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("exclusive queue still there after its connection closed")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Tutorial 4: direct routing by severity.
func TestDirectRouting(t *testing.T) {
	g := startGateway(t, Options{}, "")
	_, ch := dial(t, g)
	must(t, ch.ExchangeDeclare("direct_logs", "direct", true, false, false, false, nil))
	q1, _ := ch.QueueDeclare("", false, false, true, false, nil)
	q2, _ := ch.QueueDeclare("", false, false, true, false, nil)
	must(t, ch.QueueBind(q1.Name, "error", "direct_logs", false, nil))
	for _, sev := range []string{"info", "warning", "error"} {
		must(t, ch.QueueBind(q2.Name, sev, "direct_logs", false, nil))
	}
	m1, _ := ch.Consume(q1.Name, "", true, false, false, false, nil)
	m2, _ := ch.Consume(q2.Name, "", true, false, false, false, nil)
	for _, sev := range []string{"info", "error", "debug"} {
		publish(t, ch, "direct_logs", sev, text(sev))
	}
	if d := recv(t, m1); string(d.Body) != "error" {
		t.Fatalf("errors queue got %q", d.Body)
	}
	none(t, m1, 50*time.Millisecond)
	for _, want := range []string{"info", "error"} {
		if d := recv(t, m2); string(d.Body) != want || d.RoutingKey != want {
			t.Fatalf("all queue got %q want %q", d.Body, want)
		}
	}
	none(t, m2, 50*time.Millisecond)
}

// Tutorial 5: topic routing, and a message matching two bindings of one
// queue delivered once.
func TestTopicRouting(t *testing.T) {
	g := startGateway(t, Options{}, "")
	_, ch := dial(t, g)
	must(t, ch.ExchangeDeclare("topic_logs", "topic", true, false, false, false, nil))
	q1, _ := ch.QueueDeclare("", false, false, true, false, nil)
	q2, _ := ch.QueueDeclare("", false, false, true, false, nil)
	must(t, ch.QueueBind(q1.Name, "*.orange.*", "topic_logs", false, nil))
	must(t, ch.QueueBind(q2.Name, "*.*.rabbit", "topic_logs", false, nil))
	must(t, ch.QueueBind(q2.Name, "lazy.#", "topic_logs", false, nil))
	m1, _ := ch.Consume(q1.Name, "", true, false, false, false, nil)
	m2, _ := ch.Consume(q2.Name, "", true, false, false, false, nil)
	for _, k := range []string{"quick.orange.rabbit", "lazy.orange.elephant", "quick.orange.fox", "lazy.brown.fox",
		"lazy.pink.rabbit", "quick.brown.fox", "orange", "quick.orange.new.rabbit", "lazy.orange.new.rabbit", "lazy"} {
		publish(t, ch, "topic_logs", k, text(k))
	}
	want1 := []string{"quick.orange.rabbit", "lazy.orange.elephant", "quick.orange.fox"}
	want2 := []string{"quick.orange.rabbit", "lazy.orange.elephant", "lazy.brown.fox", "lazy.pink.rabbit", "lazy.orange.new.rabbit", "lazy"}
	for _, w := range want1 {
		if d := recv(t, m1); string(d.Body) != w {
			t.Fatalf("Q1 got %q want %q", d.Body, w)
		}
	}
	for _, w := range want2 {
		if d := recv(t, m2); string(d.Body) != w {
			t.Fatalf("Q2 got %q want %q", d.Body, w)
		}
	}
	none(t, m1, 50*time.Millisecond)
	none(t, m2, 50*time.Millisecond)
}

// Tutorial 6: RPC with reply_to and correlation_id, with an exclusive
// callback queue and with direct reply-to.
func TestRPC(t *testing.T) {
	g := startGateway(t, Options{}, "")
	_, sch := dial(t, g)
	_, err := sch.QueueDeclare("rpc_queue", false, false, false, false, nil)
	must(t, err)
	must(t, sch.Qos(1, 0, false))
	reqs, err := sch.Consume("rpc_queue", "", false, false, false, false, nil)
	must(t, err)
	go func() {
		for d := range reqs {
			var n int
			fmt.Sscan(string(d.Body), &n)
			_ = sch.PublishWithContext(context.Background(), "", d.ReplyTo, false, false,
				amqp.Publishing{CorrelationId: d.CorrelationId, Body: []byte(fmt.Sprint(n * n))})
			_ = d.Ack(false)
		}
	}()
	t.Run("callback queue", func(t *testing.T) {
		_, ch := dial(t, g)
		q, err := ch.QueueDeclare("", false, false, true, false, nil)
		must(t, err)
		replies, err := ch.Consume(q.Name, "", true, false, false, false, nil)
		must(t, err)
		publish(t, ch, "", "rpc_queue", amqp.Publishing{CorrelationId: "abc", ReplyTo: q.Name, Body: []byte("7")})
		d := recv(t, replies)
		if d.CorrelationId != "abc" || string(d.Body) != "49" {
			t.Fatalf("reply %q corr %q", d.Body, d.CorrelationId)
		}
	})
	t.Run("direct reply-to", func(t *testing.T) {
		_, ch := dial(t, g)
		replies, err := ch.Consume("amq.rabbitmq.reply-to", "", true, false, false, false, nil)
		must(t, err)
		publish(t, ch, "", "rpc_queue", amqp.Publishing{CorrelationId: "xyz", ReplyTo: "amq.rabbitmq.reply-to", Body: []byte("9")})
		d := recv(t, replies)
		if d.CorrelationId != "xyz" || string(d.Body) != "81" {
			t.Fatalf("reply %q corr %q", d.Body, d.CorrelationId)
		}
	})
}

// Tutorial 7: publisher confirms one by one, batched, and asynchronous.
func TestPublisherConfirms(t *testing.T) {
	g := startGateway(t, Options{}, "")
	_, ch := dial(t, g)
	_, err := ch.QueueDeclare("confirmed", true, false, false, false, nil)
	must(t, err)
	must(t, ch.Confirm(false))
	ctx := context.Background()
	// One by one.
	for i := 0; i < 5; i++ {
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", "confirmed", false, false, amqp.Publishing{DeliveryMode: 2, Body: []byte("x")})
		must(t, err)
		ok, err := dc.WaitContext(ctx)
		if err != nil || !ok {
			t.Fatalf("confirm %d: %v %v", i, ok, err)
		}
	}
	// Batched.
	var dcs []*amqp.DeferredConfirmation
	for i := 0; i < 100; i++ {
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", "confirmed", false, false, amqp.Publishing{DeliveryMode: 2, Body: []byte("y")})
		must(t, err)
		dcs = append(dcs, dc)
	}
	for _, dc := range dcs {
		if ok, err := dc.WaitContext(ctx); err != nil || !ok {
			t.Fatalf("batch confirm: %v %v", ok, err)
		}
	}
	// Asynchronous, with a listener; an unroutable message is confirmed too.
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, 200))
	for i := 0; i < 50; i++ {
		key := "confirmed"
		if i == 10 {
			key = "nowhere"
		}
		publish(t, ch, "", key, amqp.Publishing{DeliveryMode: 2, Body: []byte("z")})
	}
	seen := map[uint64]bool{}
	for len(seen) < 50 {
		select {
		case c := <-confirms:
			if !c.Ack {
				t.Fatalf("nack %d", c.DeliveryTag)
			}
			seen[c.DeliveryTag] = true
		case <-time.After(5 * time.Second):
			t.Fatalf("%d of 50 confirmed", len(seen))
		}
	}
	q, err := ch.QueueDeclarePassive("confirmed", true, false, false, false, nil)
	must(t, err)
	if q.Messages != 5+100+49 {
		t.Fatalf("queue holds %d", q.Messages)
	}
}

// Durable queue and persistent messages survive a broker restart, with
// durable exchanges and bindings.
func TestDurableAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	g := startGateway(t, Options{}, dir)
	_, ch := dial(t, g)
	must(t, ch.ExchangeDeclare("orders", "topic", true, false, false, false, nil))
	_, err := ch.QueueDeclare("durable_q", true, false, false, false, nil)
	must(t, err)
	_, err = ch.QueueDeclare("transient_q", false, false, false, false, nil)
	must(t, err)
	_, err = ch.QueueDeclare("mixed_q", true, false, false, false, nil)
	must(t, err)
	publish(t, ch, "", "mixed_q", amqp.Publishing{DeliveryMode: amqp.Transient, Body: []byte("gone")})
	publish(t, ch, "", "mixed_q", amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte("kept")})
	waitMessages(t, ch, "mixed_q", 2)
	must(t, ch.QueueBind("durable_q", "order.#", "orders", false, nil))
	must(t, ch.Confirm(false))
	for i := 0; i < 3; i++ {
		dc, err := ch.PublishWithDeferredConfirmWithContext(context.Background(), "orders", "order.new", false, false,
			amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte(fmt.Sprint("o", i))})
		must(t, err)
		if ok, err := dc.WaitContext(context.Background()); !ok || err != nil {
			t.Fatal("not confirmed")
		}
	}
	g.stop()

	g2 := startGateway(t, Options{}, dir)
	_, ch2 := dial(t, g2)
	if _, err := ch2.QueueDeclarePassive("transient_q", false, false, false, false, nil); err == nil {
		t.Fatal("transient queue survived a restart")
	}
	_, ch2 = dial(t, g2)
	q, err := ch2.QueueDeclarePassive("durable_q", true, false, false, false, nil)
	must(t, err)
	if q.Messages != 3 {
		t.Fatalf("durable queue holds %d after restart", q.Messages)
	}
	if d, ok, err := ch2.Get("mixed_q", true); err != nil || !ok || string(d.Body) != "kept" {
		t.Fatalf("mixed queue after restart: %q %v %v", d.Body, ok, err)
	}
	publish(t, ch2, "orders", "order.paid", amqp.Publishing{DeliveryMode: 2, Body: []byte("o3")})
	msgs, err := ch2.Consume("durable_q", "", false, false, false, false, nil)
	must(t, err)
	for i := 0; i < 4; i++ {
		d := recv(t, msgs)
		if string(d.Body) != fmt.Sprint("o", i) {
			t.Fatalf("got %q", d.Body)
		}
		must(t, d.Ack(false))
	}
}

// amq.topic is the bridge: a publish on the live router (what MQTT and
// NATS do) reaches a bound AMQP queue, and an AMQP publish to amq.topic
// reaches live subscribers.
func TestAmqTopicBridgesLiveRouter(t *testing.T) {
	g := startGateway(t, Options{}, "")
	_, ch := dial(t, g)
	q, err := ch.QueueDeclare("", false, false, true, false, nil)
	must(t, err)
	must(t, ch.QueueBind(q.Name, "site.*.temp", "amq.topic", false, nil))
	msgs, err := ch.Consume(q.Name, "", true, false, false, false, nil)
	must(t, err)
	var res router.Result[broker.Receiver]
	must(t, g.live.Match("site.7.temp", &res))
	if len(res.Subs) != 1 {
		t.Fatalf("%d live receivers", len(res.Subs))
	}
	res.Subs[0].Deliver(&broker.Msg{Subject: []byte("site.7.temp"), Payload: []byte("21.5")})
	d := recv(t, msgs)
	if string(d.Body) != "21.5" || d.RoutingKey != "site.7.temp" || d.Exchange != "amq.topic" {
		t.Fatalf("got %q key %q ex %q", d.Body, d.RoutingKey, d.Exchange)
	}
	got := make(chan string, 1)
	_, err = g.live.Insert(router.Subscription[broker.Receiver]{Pattern: "cmd.>", Handle: recvFunc(func(m *broker.Msg) bool {
		got <- string(m.Subject) + " " + string(m.Payload)
		return true
	})})
	must(t, err)
	publish(t, ch, "amq.topic", "cmd.valve.open", text("now"))
	select {
	case s := <-got:
		if s != "cmd.valve.open now" {
			t.Fatalf("live subscriber got %q", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("live subscriber got nothing")
	}
}

type recvFunc func(m *broker.Msg) bool

func (f recvFunc) Deliver(m *broker.Msg) bool { return f(m) }

// waitMessages waits until a queue holds n messages ready: a publish
// without confirms is visible once it is durable.
func waitMessages(t testing.TB, ch *amqp.Channel, name string, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		q, err := ch.QueueDeclarePassive(name, true, false, false, false, nil)
		must(t, err)
		if q.Messages == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue %s holds %d, want %d", name, q.Messages, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// The portable transport (TLS, non-Linux systems) serves the same:
// confirms, competing consumers, acks and redelivery.
func TestPortableTransport(t *testing.T) {
	g := startGatewayOn(t, true, Options{}, "")
	_, ch := dial(t, g)
	_, err := ch.QueueDeclare("p", true, false, false, false, nil)
	must(t, err)
	must(t, ch.Confirm(false))
	for i := 0; i < 10; i++ {
		dc, err := ch.PublishWithDeferredConfirmWithContext(context.Background(), "", "p", false, false, text(fmt.Sprint(i)))
		must(t, err)
		if ok, _ := dc.WaitContext(context.Background()); !ok {
			t.Fatal("nack")
		}
	}
	c1, ch1 := dial(t, g)
	must(t, ch1.Qos(1, 0, false))
	m1, err := ch1.Consume("p", "", false, false, false, false, nil)
	must(t, err)
	first := recv(t, m1)
	c1.Close()
	_, ch2 := dial(t, g)
	m2, err := ch2.Consume("p", "", false, false, false, false, nil)
	must(t, err)
	seen := map[string]bool{}
	for i := 0; i < 10; i++ {
		d := recv(t, m2)
		if string(d.Body) == string(first.Body) && !d.Redelivered {
			t.Fatal("redelivery without redelivered")
		}
		seen[string(d.Body)] = true
		must(t, d.Ack(false))
	}
	if len(seen) != 10 {
		t.Fatalf("saw %d distinct messages", len(seen))
	}
}
