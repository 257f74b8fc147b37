package amqpgw

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

func TestBasicGet(t *testing.T) {
	g := startGateway(t, Options{}, "")
	_, ch := dial(t, g)
	_, err := ch.QueueDeclare("g", true, false, false, false, nil)
	must(t, err)
	if _, ok, err := ch.Get("g", true); ok || err != nil {
		t.Fatalf("get from an empty queue: %v %v", ok, err)
	}
	publish(t, ch, "", "g", text("one"))
	publish(t, ch, "", "g", text("two"))
	waitMessages(t, ch, "g", 2)
	d := getWithin(t, ch, "g")
	if string(d.Body) != "one" || d.MessageCount != 1 {
		t.Fatalf("get: %q count %d", d.Body, d.MessageCount)
	}
	if d := getWithin(t, ch, "g"); string(d.Body) != "two" {
		t.Fatalf("get: %q", d.Body)
	}
}

func TestMandatoryReturn(t *testing.T) {
	g := startGateway(t, Options{}, "")
	_, ch := dial(t, g)
	returns := ch.NotifyReturn(make(chan amqp.Return, 1))
	must(t, ch.PublishWithContext(context.Background(), "amq.direct", "nobody", true, false, text("lost")))
	select {
	case r := <-returns:
		if r.ReplyCode != codeNoRoute || string(r.Body) != "lost" || r.RoutingKey != "nobody" || r.ContentType != "text/plain" {
			t.Fatalf("return %+v", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no basic.return")
	}
}

func TestHeadersExchange(t *testing.T) {
	g := startGateway(t, Options{}, "")
	_, ch := dial(t, g)
	qa, _ := ch.QueueDeclare("", false, false, true, false, nil)
	qb, _ := ch.QueueDeclare("", false, false, true, false, nil)
	must(t, ch.QueueBind(qa.Name, "", "amq.headers", false, amqp.Table{"x-match": "all", "format": "pdf", "type": "report"}))
	must(t, ch.QueueBind(qb.Name, "", "amq.match", false, amqp.Table{"x-match": "any", "format": "pdf", "type": "log"}))
	ma, _ := ch.Consume(qa.Name, "", true, false, false, false, nil)
	mb, _ := ch.Consume(qb.Name, "", true, false, false, false, nil)
	for _, ex := range []string{"amq.headers", "amq.match"} {
		publish(t, ch, ex, "", amqp.Publishing{Headers: amqp.Table{"format": "pdf", "type": "report"}, Body: []byte(ex + " both")})
		publish(t, ch, ex, "", amqp.Publishing{Headers: amqp.Table{"format": "pdf"}, Body: []byte(ex + " format")})
	}
	if d := recv(t, ma); string(d.Body) != "amq.headers both" {
		t.Fatalf("all got %q", d.Body)
	}
	none(t, ma, 50*time.Millisecond)
	for _, w := range []string{"amq.match both", "amq.match format"} {
		if d := recv(t, mb); string(d.Body) != w {
			t.Fatalf("any got %q want %q", d.Body, w)
		}
	}
}

func TestAlternateExchange(t *testing.T) {
	g := startGateway(t, Options{}, "")
	_, ch := dial(t, g)
	must(t, ch.ExchangeDeclare("unrouted", "fanout", false, false, false, false, nil))
	must(t, ch.ExchangeDeclare("main", "direct", false, false, false, false, amqp.Table{"alternate-exchange": "unrouted"}))
	q, _ := ch.QueueDeclare("", false, false, true, false, nil)
	must(t, ch.QueueBind(q.Name, "", "unrouted", false, nil))
	m, _ := ch.Consume(q.Name, "", true, false, false, false, nil)
	publish(t, ch, "main", "no-binding", text("fallback"))
	if d := recv(t, m); string(d.Body) != "fallback" {
		t.Fatalf("got %q", d.Body)
	}
}

func TestNackRejectRecover(t *testing.T) {
	g := startGateway(t, Options{}, "")
	_, ch := dial(t, g)
	_, err := ch.QueueDeclare("nq", false, false, false, false, nil)
	must(t, err)
	m, err := ch.Consume("nq", "", false, false, false, false, nil)
	must(t, err)
	publish(t, ch, "", "nq", text("a"))
	d := recv(t, m)
	must(t, d.Nack(false, true))
	d = recv(t, m)
	if !d.Redelivered || string(d.Body) != "a" {
		t.Fatalf("after nack requeue: %q %v", d.Body, d.Redelivered)
	}
	must(t, ch.Recover(true))
	d = recv(t, m)
	if !d.Redelivered {
		t.Fatal("recover did not redeliver")
	}
	must(t, d.Reject(false))
	none(t, m, 100*time.Millisecond)
	q, err := ch.QueueDeclarePassive("nq", false, false, false, false, nil)
	must(t, err)
	if q.Messages != 0 {
		t.Fatalf("rejected message still queued: %d", q.Messages)
	}
}

func TestDeadLettering(t *testing.T) {
	g := startGateway(t, Options{}, "")
	_, ch := dial(t, g)
	must(t, ch.ExchangeDeclare("dlx", "direct", false, false, false, false, nil))
	_, err := ch.QueueDeclare("dead", false, false, false, false, nil)
	must(t, err)
	must(t, ch.QueueBind("dead", "failed", "dlx", false, nil))
	_, err = ch.QueueDeclare("work", false, false, false, false, amqp.Table{"x-dead-letter-exchange": "dlx", "x-dead-letter-routing-key": "failed"})
	must(t, err)
	m, _ := ch.Consume("work", "", false, false, false, false, nil)
	publish(t, ch, "", "work", text("bad job"))
	must(t, recv(t, m).Nack(false, false))
	dm, _ := ch.Consume("dead", "", true, false, false, false, nil)
	if d := recv(t, dm); string(d.Body) != "bad job" || d.RoutingKey != "failed" {
		t.Fatalf("dead letter %q key %q", d.Body, d.RoutingKey)
	}
}

func TestMessageTTL(t *testing.T) {
	g := startGateway(t, Options{}, "")
	_, ch := dial(t, g)
	_, err := ch.QueueDeclare("ttl", false, false, false, false, amqp.Table{"x-message-ttl": int32(100)})
	must(t, err)
	publish(t, ch, "", "ttl", text("short-lived"))
	deadline := time.Now().Add(5 * time.Second)
	for {
		q, err := ch.QueueDeclarePassive("ttl", false, false, false, false, amqp.Table{"x-message-ttl": int32(100)})
		must(t, err)
		if q.Messages == 0 && time.Since(deadline.Add(-5*time.Second)) > 100*time.Millisecond {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("message still there after its TTL: %d", q.Messages)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestMaxLengthOverflow(t *testing.T) {
	g := startGateway(t, Options{}, "")
	_, ch := dial(t, g)
	_, err := ch.QueueDeclare("drop", false, false, false, false, amqp.Table{"x-max-length": int32(2)})
	must(t, err)
	_, err = ch.QueueDeclare("reject", false, false, false, false, amqp.Table{"x-max-length": int32(2), "x-overflow": "reject-publish"})
	must(t, err)
	must(t, ch.Confirm(false))
	ctx := context.Background()
	var acks []bool
	for i := 0; i < 3; i++ {
		for _, q := range []string{"drop", "reject"} {
			dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", q, false, false, text(fmt.Sprint(i)))
			must(t, err)
			ok, err := dc.WaitContext(ctx)
			must(t, err)
			acks = append(acks, ok)
		}
	}
	if fmt.Sprint(acks) != "[true true true true true false]" {
		t.Fatalf("confirms %v", acks)
	}
	d, _, _ := ch.Get("drop", true)
	if string(d.Body) != "1" {
		t.Fatalf("drop-head kept %q first", d.Body)
	}
	d, _, _ = ch.Get("reject", true)
	if string(d.Body) != "0" {
		t.Fatalf("reject-publish kept %q first", d.Body)
	}
}

func TestTransactions(t *testing.T) {
	g := startGateway(t, Options{}, "")
	_, ch := dial(t, g)
	_, err := ch.QueueDeclare("txq", false, false, false, false, nil)
	must(t, err)
	must(t, ch.Tx())
	publish(t, ch, "", "txq", text("rolled back"))
	must(t, ch.TxRollback())
	publish(t, ch, "", "txq", text("committed"))
	must(t, ch.TxCommit())
	if d := getWithin(t, ch, "txq"); string(d.Body) != "committed" {
		t.Fatalf("get %q", d.Body)
	}
}

func TestRefusedFeatures(t *testing.T) {
	g := startGateway(t, Options{}, "")
	for _, args := range []amqp.Table{{"x-dead-letter-exchange": "", "x-max-length": int32(1)}, {"x-max-priority": int32(5)}, {"x-single-active-consumer": true}} {
		_, ch := dial(t, g)
		_, err := ch.QueueDeclare("refused", false, false, false, false, args)
		var e *amqp.Error
		if !errors.As(err, &e) || e.Code != codeNotImplemented {
			t.Fatalf("%v: %v", args, err)
		}
	}
	_, ch := dial(t, g)
	_, err := ch.QueueDeclare("q", true, false, false, false, nil)
	must(t, err)
	_, err = ch.QueueDeclare("q", false, false, false, false, nil)
	var e *amqp.Error
	if !errors.As(err, &e) || e.Code != codePrecondition {
		t.Fatalf("inequivalent redeclare: %v", err)
	}
	_, ch = dial(t, g)
	err = ch.ExchangeDeclare("x", "nonsense", false, false, false, false, nil)
	if !errors.As(err, &e) || e.Code != codeCommandInvalid {
		t.Fatalf("bad exchange type: %v", err)
	}
}

func TestQuorumQueueDeclared(t *testing.T) {
	g := startGateway(t, Options{}, "")
	_, ch := dial(t, g)
	_, err := ch.QueueDeclare("qq", true, false, false, false, amqp.Table{"x-queue-type": "quorum"})
	must(t, err)
	publish(t, ch, "", "qq", text("q"))
	m, _ := ch.Consume("qq", "", true, false, false, false, nil)
	if d := recv(t, m); string(d.Body) != "q" {
		t.Fatalf("got %q", d.Body)
	}
}

func TestAutoDeleteAndPurgeAndDelete(t *testing.T) {
	g := startGateway(t, Options{}, "")
	_, ch := dial(t, g)
	_, err := ch.QueueDeclare("auto", false, true, false, false, nil)
	must(t, err)
	_, err = ch.Consume("auto", "c1", true, false, false, false, nil)
	must(t, err)
	must(t, ch.Cancel("c1", false))
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, pch := dial(t, g)
		if _, err := pch.QueueDeclarePassive("auto", false, true, false, false, nil); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("auto-delete queue outlived its last consumer")
		}
		time.Sleep(10 * time.Millisecond)
	}
	_, ch = dial(t, g)
	_, err = ch.QueueDeclare("p", false, false, false, false, nil)
	must(t, err)
	publish(t, ch, "", "p", text("1"))
	publish(t, ch, "", "p", text("2"))
	waitMessages(t, ch, "p", 2)
	n, err := ch.QueuePurge("p", false)
	if err != nil || n != 2 {
		t.Fatalf("purge %d %v", n, err)
	}
	publish(t, ch, "", "p", text("3"))
	waitMessages(t, ch, "p", 1)
	_, err = ch.QueueDelete("p", false, true, false)
	if e, ok := err.(*amqp.Error); !ok || e.Code != codePrecondition {
		t.Fatalf("delete if-empty of a non-empty queue: %v", err)
	}
	_, ch = dial(t, g)
	n, err = ch.QueueDelete("p", false, false, false)
	if err != nil || n != 1 {
		t.Fatalf("delete %d %v", n, err)
	}
}

func TestTTLDeadLetteredAndPerMessageExpiration(t *testing.T) {
	g := startGateway(t, Options{}, "")
	_, ch := dial(t, g)
	_, err := ch.QueueDeclare("retry_later", false, false, false, false, nil)
	must(t, err)
	// A delay queue: no consumers, messages expire into another queue.
	_, err = ch.QueueDeclare("delay", false, false, false, false, amqp.Table{"x-message-ttl": int32(100),
		"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "retry_later"})
	must(t, err)
	start := time.Now()
	publish(t, ch, "", "delay", text("retry me"))
	m, err := ch.Consume("retry_later", "", true, false, false, false, nil)
	must(t, err)
	d := recv(t, m)
	if string(d.Body) != "retry me" || time.Since(start) < 100*time.Millisecond {
		t.Fatalf("got %q after %v", d.Body, time.Since(start))
	}
	// A message whose own expiration has passed is not delivered.
	_, err = ch.QueueDeclare("exp", false, false, false, false, nil)
	must(t, err)
	publish(t, ch, "", "exp", amqp.Publishing{Expiration: "50", Body: []byte("stale")})
	publish(t, ch, "", "exp", amqp.Publishing{Expiration: "60000", Body: []byte("fresh")})
	time.Sleep(100 * time.Millisecond)
	em, err := ch.Consume("exp", "", true, false, false, false, nil)
	must(t, err)
	if d := recv(t, em); string(d.Body) != "fresh" {
		t.Fatalf("got %q", d.Body)
	}
}

func TestQueueExpires(t *testing.T) {
	g := startGateway(t, Options{}, "")
	_, ch := dial(t, g)
	_, err := ch.QueueDeclare("expiring", false, false, false, false, amqp.Table{"x-expires": int32(100)})
	must(t, err)
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, pch := dial(t, g)
		if _, err := pch.QueueDeclarePassive("expiring", false, false, false, false, amqp.Table{"x-expires": int32(100)}); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("unused queue not expired")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// getWithin gets a message with basic.get, trying again until one is
// there: a publish without confirms is readable once it is durable.
func getWithin(t testing.TB, ch *amqp.Channel, queue string) amqp.Delivery {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		d, ok, err := ch.Get(queue, false)
		must(t, err)
		if ok {
			must(t, d.Ack(false))
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue %s: nothing to get", queue)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A no-ack consumer that reads slowly is held back by its socket, not
// cut off as a slow consumer, and gets every message.
func TestNoAckConsumerFlowControl(t *testing.T) {
	g := startGateway(t, Options{}, "")
	_, ch := dial(t, g)
	_, err := ch.QueueDeclare("flood", false, false, false, false, nil)
	must(t, err)
	must(t, ch.Confirm(false))
	body := make([]byte, 32<<10)
	const n = 400 // 12.5 MiB, three times the outbound limit
	last, err := ch.PublishWithDeferredConfirmWithContext(context.Background(), "", "flood", false, false, amqp.Publishing{Body: make([]byte, 3<<20)})
	must(t, err)
	for i := 1; i < n; i++ {
		last, err = ch.PublishWithDeferredConfirmWithContext(context.Background(), "", "flood", false, false, amqp.Publishing{Body: body})
		must(t, err)
	}
	last.Wait()
	_, cch := dial(t, g)
	msgs, err := cch.Consume("flood", "", true, false, false, false, nil)
	must(t, err)
	time.Sleep(300 * time.Millisecond) // the client's buffers fill meanwhile
	for i := 0; i < n; i++ {
		recv(t, msgs)
	}
}

// An acking consumer without prefetch gets more than one request's worth
// without acknowledging anything.
func TestUnlimitedPrefetchWithoutAcks(t *testing.T) {
	g := startGateway(t, Options{}, "")
	_, ch := dial(t, g)
	_, err := ch.QueueDeclare("many", false, false, false, false, nil)
	must(t, err)
	must(t, ch.Confirm(false))
	const n = 1000
	var last *amqp.DeferredConfirmation
	for i := 0; i < n; i++ {
		last, err = ch.PublishWithDeferredConfirmWithContext(context.Background(), "", "many", false, false, text("m"))
		must(t, err)
	}
	last.Wait()
	msgs, err := ch.Consume("many", "", false, false, false, false, nil)
	must(t, err)
	var d amqp.Delivery
	for i := 0; i < n; i++ {
		d = recv(t, msgs)
	}
	must(t, d.Ack(true))
}

func TestExchangeDeclareDeleteInternal(t *testing.T) {
	g := startGateway(t, Options{}, "")
	_, ch := dial(t, g)
	must(t, ch.ExchangeDeclare("inner", "fanout", false, false, true, false, nil))
	// The refusal closes the channel asynchronously: listen before the
	// publish, since a channel already closed reports no error.
	closed := ch.NotifyClose(make(chan *amqp.Error, 1))
	err := ch.PublishWithContext(context.Background(), "inner", "", false, false, text("x"))
	must(t, err)
	select {
	case e := <-closed:
		if e == nil || e.Code != codeAccessRefused {
			t.Fatalf("publish to an internal exchange: %v", e)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("channel not closed")
	}
	_, ch = dial(t, g)
	must(t, ch.ExchangeDeclare("used", "direct", false, false, false, false, nil))
	q, _ := ch.QueueDeclare("", false, false, true, false, nil)
	must(t, ch.QueueBind(q.Name, "k", "used", false, nil))
	var e *amqp.Error
	if err := ch.ExchangeDelete("used", true, false); !errors.As(err, &e) || e.Code != codePrecondition {
		t.Fatalf("delete if-unused of a bound exchange: %v", err)
	}
	_, ch = dial(t, g)
	must(t, ch.ExchangeDelete("used", false, false))
	if err := ch.ExchangeDeclarePassive("used", "direct", false, false, false, false, nil); !errors.As(err, &e) || e.Code != codeNotFound {
		t.Fatalf("passive declare of a deleted exchange: %v", err)
	}
	_, ch = dial(t, g)
	if err := ch.ExchangeDeclare("amq.custom", "direct", false, false, false, false, nil); !errors.As(err, &e) || e.Code != codeAccessRefused {
		t.Fatalf("declare of an amq. exchange: %v", err)
	}
}

func TestExclusiveConsumerAndServerCancel(t *testing.T) {
	g := startGateway(t, Options{}, "")
	_, ch := dial(t, g)
	_, err := ch.QueueDeclare("solo", false, false, false, false, nil)
	must(t, err)
	cancels := ch.NotifyCancel(make(chan string, 1))
	_, err = ch.Consume("solo", "only", false, true, false, false, nil)
	must(t, err)
	_, och := dial(t, g)
	_, err = och.Consume("solo", "", false, false, false, false, nil)
	var e *amqp.Error
	if !errors.As(err, &e) || e.Code != codeAccessRefused {
		t.Fatalf("second consumer on an exclusively consumed queue: %v", err)
	}
	_, dch := dial(t, g)
	_, err = dch.QueueDelete("solo", false, false, false)
	must(t, err)
	select {
	case tag := <-cancels:
		if tag != "only" {
			t.Fatalf("cancelled %q", tag)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no basic.cancel when the queue was deleted")
	}
}

// Exchange-to-exchange bindings: a message routed from one exchange to
// another reaches the queues bound there, once each, and the binding
// survives a restart.
func TestExchangeToExchangeBindings(t *testing.T) {
	dir := t.TempDir()
	g := startGateway(t, Options{}, dir)
	_, ch := dial(t, g)
	must(t, ch.ExchangeDeclare("front", "topic", true, false, false, false, nil))
	must(t, ch.ExchangeDeclare("back", "fanout", true, false, false, false, nil))
	must(t, ch.ExchangeBind("back", "orders.*", "front", false, nil))
	_, err := ch.QueueDeclare("all_orders", true, false, false, false, nil)
	must(t, err)
	must(t, ch.QueueBind("all_orders", "", "back", false, nil))
	must(t, ch.QueueBind("all_orders", "orders.new", "front", false, nil)) // reached twice: once
	publish(t, ch, "front", "orders.new", amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte("o1")})
	publish(t, ch, "front", "invoices.new", text("i1"))
	waitMessages(t, ch, "all_orders", 1)
	g.stop()

	g2 := startGateway(t, Options{}, dir)
	_, ch2 := dial(t, g2)
	publish(t, ch2, "front", "orders.paid", text("o2"))
	m, err := ch2.Consume("all_orders", "", true, false, false, false, nil)
	must(t, err)
	for _, w := range []string{"o1", "o2"} {
		if d := recv(t, m); string(d.Body) != w {
			t.Fatalf("got %q want %q", d.Body, w)
		}
	}
	none(t, m, 50*time.Millisecond)
	must(t, ch2.ExchangeUnbind("back", "orders.*", "front", false, nil))
	publish(t, ch2, "front", "orders.gone", text("o3"))
	none(t, m, 100*time.Millisecond)
}
