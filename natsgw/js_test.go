package natsgw

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ledgemq/ledge/broker"
)

// jsGateway is a broker in a folder and a gateway that serves it.
type jsGateway struct {
	*gateway
	b   *broker.Broker
	dir string
}

// startJS opens a broker in dir (a new temporary folder when empty) and a
// gateway serving it on 127.0.0.1; both stop with the test or with stop.
func startJS(t testing.TB, portable bool, dir string, addr string) *jsGateway {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := broker.Open(broker.Options{Dir: dir, Logger: logger, StateFlushInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatalf("open broker: %v", err)
	}
	g := startGateway(t, portable, Options{Broker: b, Logger: logger}, addr)
	jg := &jsGateway{gateway: g, b: b, dir: dir}
	t.Cleanup(jg.stop)
	return jg
}

// stop shuts the gateway, then the broker.
func (g *jsGateway) stop() {
	g.gateway.stop()
	_ = g.b.Close()
}

func newJS(t testing.TB, url string, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc := connect(t, url, opts...)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestJetStreamBasics(t *testing.T) {
	forEachTransport(t, func(t *testing.T, portable bool) {
		g := startJS(t, portable, "", "")
		_, js := newJS(t, g.url)
		ctx := ctxT(t)
		s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}})
		if err != nil {
			t.Fatalf("create stream: %v", err)
		}
		for i := 1; i <= 10; i++ {
			ack, err := js.Publish(ctx, "orders.new", []byte(fmt.Sprint(i)))
			if err != nil {
				t.Fatalf("publish %d: %v", i, err)
			}
			if ack.Stream != "ORDERS" || ack.Sequence != uint64(i) {
				t.Fatalf("publish %d: ack %+v", i, ack)
			}
		}
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Msgs != 10 || info.State.LastSeq != 10 || info.Config.Name != "ORDERS" {
			t.Fatalf("info %+v", info.State)
		}
		c, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "proc", AckPolicy: jetstream.AckExplicitPolicy})
		if err != nil {
			t.Fatalf("create consumer: %v", err)
		}
		batch, err := c.Fetch(10, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			md, err := m.Metadata()
			if err != nil {
				t.Fatal(err)
			}
			if md.Sequence.Stream != uint64(n) || md.Stream != "ORDERS" || md.Consumer != "proc" || md.NumDelivered != 1 {
				t.Fatalf("metadata %+v", md)
			}
			if string(m.Data()) != fmt.Sprint(n) {
				t.Fatalf("message %d: %q", n, m.Data())
			}
			if err := m.DoubleAck(ctx); err != nil {
				t.Fatalf("ack %d: %v", n, err)
			}
		}
		if batch.Error() != nil || n != 10 {
			t.Fatalf("fetched %d, err %v", n, batch.Error())
		}
		ci, err := c.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ci.NumAckPending != 0 || ci.NumPending != 0 || ci.AckFloor.Stream != 10 {
			t.Fatalf("consumer info %+v", ci)
		}
		// Nothing more: a no-wait fetch ends at once.
		batch, err = c.FetchNoWait(5)
		if err != nil {
			t.Fatal(err)
		}
		for range batch.Messages() {
			t.Fatal("unexpected message")
		}
		if batch.Error() != nil {
			t.Fatalf("no-wait fetch: %v", batch.Error())
		}
	})
}

// apiCall sends a raw API request and decodes the answer.
func apiCall(t testing.TB, nc *nats.Conn, subject string, body string) map[string]any {
	t.Helper()
	m, err := nc.Request(subject, []byte(body), 5*time.Second)
	if err != nil {
		t.Fatalf("%s: %v", subject, err)
	}
	var out map[string]any
	if err := json.Unmarshal(m.Data, &out); err != nil {
		t.Fatalf("%s: answer %q: %v", subject, m.Data, err)
	}
	return out
}

// errCode returns the err_code of an API answer, 0 without an error.
func errCode(resp map[string]any) int {
	e, ok := resp["error"].(map[string]any)
	if !ok {
		return 0
	}
	n, _ := e["err_code"].(float64)
	return int(n)
}

// TestWorkQueueFairDispatch: three workers share 300 messages of one pull
// consumer, each taking one message at a time (RabbitMQ's prefetch 1);
// every message is acknowledged exactly once in all. With MaxAckPending 1
// on the consumer no two messages are ever out at once, so a slow worker
// holds everyone up; with room for one message per worker, a slow worker
// gets fewer messages than the others.
func TestWorkQueueFairDispatch(t *testing.T) {
	g := startJS(t, false, "", "")
	_, js := newJS(t, g.url)
	ctx := ctxT(t)
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "WORK", Subjects: []string{"work.>"}, Retention: jetstream.WorkQueuePolicy})
	if err != nil {
		t.Fatal(err)
	}
	const total = 300
	run := func(consumer string, maxAckPending int) (counts [3]int, maxOut int64) {
		t.Helper()
		if _, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: consumer, AckPolicy: jetstream.AckExplicitPolicy,
			MaxAckPending: maxAckPending, FilterSubject: "work." + consumer}); err != nil {
			t.Fatal(err)
		}
		var (
			mu    sync.Mutex
			acked = map[uint64]int{}
			out   atomic.Int64
		)
		var wg sync.WaitGroup
		for w := 0; w < 3; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, wjs := newJS(t, g.url)
				c, err := wjs.Consumer(ctx, "WORK", consumer)
				if err != nil {
					t.Error(err)
					return
				}
				for {
					mu.Lock()
					done := len(acked) == total
					mu.Unlock()
					if done || ctx.Err() != nil {
						return
					}
					batch, err := c.Fetch(1, jetstream.FetchMaxWait(200*time.Millisecond))
					if err != nil {
						t.Error(err)
						return
					}
					for m := range batch.Messages() {
						n := out.Add(1)
						mu.Lock()
						maxOut = max(maxOut, n)
						mu.Unlock()
						if w == 0 {
							time.Sleep(10 * time.Millisecond) // the slow worker
						}
						md, _ := m.Metadata()
						out.Add(-1)
						if err := m.DoubleAck(ctx); err != nil {
							t.Errorf("worker %d: ack %d: %v", w, md.Sequence.Stream, err)
							continue
						}
						mu.Lock()
						acked[md.Sequence.Stream]++
						counts[w]++
						mu.Unlock()
					}
				}
			}()
		}
		for i := 0; i < total; i++ {
			if _, err := js.PublishAsync("work."+consumer, []byte(fmt.Sprint(i))); err != nil {
				t.Fatal(err)
			}
		}
		select {
		case <-js.PublishAsyncComplete():
		case <-ctx.Done():
			t.Fatal("publish acks did not arrive")
		}
		wg.Wait()
		if len(acked) != total {
			t.Errorf("%s: %d messages acknowledged, want %d", consumer, len(acked), total)
		}
		for seq, n := range acked {
			if n != 1 {
				t.Errorf("%s: message %d acknowledged %d times", consumer, seq, n)
			}
		}
		return counts, maxOut
	}

	counts, maxOut := run("one", 1)
	t.Logf("MaxAckPending 1: messages per worker (worker 0 slow) %v, at most %d out at once", counts, maxOut)
	if maxOut > 1 {
		t.Errorf("MaxAckPending 1: %d messages were out at once", maxOut)
	}

	counts, _ = run("each", 3)
	t.Logf("MaxAckPending 3: messages per worker (worker 0 slow) %v", counts)
	if counts[0] >= counts[1] || counts[0] >= counts[2] {
		t.Errorf("the slow worker got %d, the others %d and %d: prefetch 1 per worker should give it fewer", counts[0], counts[1], counts[2])
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 0 {
		t.Errorf("work queue keeps %d acknowledged messages", info.State.Msgs)
	}
}

// TestRedeliveryAfterDisconnect: a worker fetches and goes away without
// acknowledging; after AckWait another worker gets the messages again.
func TestRedeliveryAfterDisconnect(t *testing.T) {
	g := startJS(t, false, "", "")
	_, js := newJS(t, g.url)
	ctx := ctxT(t)
	s, _ := js.CreateStream(ctx, jetstream.StreamConfig{Name: "JOBS", Subjects: []string{"jobs"}, Retention: jetstream.WorkQueuePolicy})
	if _, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "w", AckPolicy: jetstream.AckExplicitPolicy, AckWait: 500 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		js.Publish(ctx, "jobs", []byte(fmt.Sprint(i)))
	}
	nc1, js1 := newJS(t, g.url)
	c1, _ := js1.Consumer(ctx, "JOBS", "w")
	b1, err := c1.Fetch(3, jetstream.FetchMaxWait(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for range b1.Messages() {
		n++
	}
	if n != 3 {
		t.Fatalf("first worker fetched %d", n)
	}
	nc1.Close() // dies without acknowledging
	start := time.Now()
	_, js2 := newJS(t, g.url)
	c2, _ := js2.Consumer(ctx, "JOBS", "w")
	got := map[string]bool{}
	for len(got) < 3 && ctx.Err() == nil {
		b2, err := c2.Fetch(3, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range b2.Messages() {
			md, _ := m.Metadata()
			if md.NumDelivered != 2 {
				t.Errorf("redelivered message %d: delivered %d times", md.Sequence.Stream, md.NumDelivered)
			}
			got[string(m.Data())] = true
			m.Ack()
		}
	}
	if el := time.Since(start); el < 300*time.Millisecond {
		t.Errorf("redelivered after %v, before AckWait", el)
	}
	if len(got) != 3 {
		t.Errorf("second worker got %v", got)
	}
}

// TestNakTermMaxDeliver: nak with a delay redelivers after it; term stops
// redelivery with an advisory; MaxDeliver stops it with another.
func TestNakTermMaxDeliver(t *testing.T) {
	g := startJS(t, false, "", "")
	nc, js := newJS(t, g.url)
	ctx := ctxT(t)
	s, _ := js.CreateStream(ctx, jetstream.StreamConfig{Name: "N", Subjects: []string{"n.>"}})
	adv, _ := nc.SubscribeSync("$JS.EVENT.ADVISORY.CONSUMER.>")
	nc.Flush()
	c, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "c", AckPolicy: jetstream.AckExplicitPolicy, AckWait: 300 * time.Millisecond, MaxDeliver: 2})
	if err != nil {
		t.Fatal(err)
	}
	fetch := func(want int, wait time.Duration) []jetstream.Msg {
		t.Helper()
		var out []jetstream.Msg
		deadline := time.Now().Add(wait)
		for len(out) < want && time.Now().Before(deadline) {
			b, err := c.Fetch(want-len(out), jetstream.FetchMaxWait(time.Until(deadline)))
			if err != nil {
				t.Fatal(err)
			}
			for m := range b.Messages() {
				out = append(out, m)
			}
		}
		return out
	}
	js.Publish(ctx, "n.nak", []byte("nak"))
	ms := fetch(1, 2*time.Second)
	if len(ms) != 1 {
		t.Fatal("no message")
	}
	nakAt := time.Now()
	if err := ms[0].NakWithDelay(200 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	ms = fetch(1, 2*time.Second)
	if len(ms) != 1 || string(ms[0].Data()) != "nak" {
		t.Fatal("nak'd message not redelivered")
	}
	if el := time.Since(nakAt); el < 150*time.Millisecond {
		t.Errorf("redelivered %v after a nak with 200ms delay", el)
	}
	ms[0].Ack()

	js.Publish(ctx, "n.term", []byte("term"))
	ms = fetch(1, 2*time.Second)
	if len(ms) != 1 {
		t.Fatal("no message")
	}
	if err := ms[0].TermWithReason("bad input"); err != nil {
		t.Fatal(err)
	}
	m := nextMsg(t, adv)
	if m.Subject != "$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.N.c" || !strings.Contains(string(m.Data), `"stream_seq":2`) {
		t.Errorf("terminated advisory %s %s", m.Subject, m.Data)
	}
	if ms := fetch(1, 600*time.Millisecond); len(ms) != 0 {
		t.Errorf("terminated message delivered again")
	}

	js.Publish(ctx, "n.never", []byte("never acked"))
	if ms := fetch(1, 2*time.Second); len(ms) != 1 {
		t.Fatal("first delivery missing")
	}
	ms = fetch(1, 2*time.Second)
	if len(ms) != 1 {
		t.Fatal("second delivery missing")
	}
	if md, _ := ms[0].Metadata(); md.NumDelivered != 2 {
		t.Errorf("second delivery: NumDelivered %d", md.NumDelivered)
	}
	if ms := fetch(1, 700*time.Millisecond); len(ms) != 0 {
		t.Errorf("message delivered beyond MaxDeliver")
	}
	m = nextMsg(t, adv)
	if m.Subject != "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.N.c" || !strings.Contains(string(m.Data), `"deliveries":2`) {
		t.Errorf("max deliveries advisory %s %s", m.Subject, m.Data)
	}
	// An acknowledgement of the expired delivery is answered with an
	// error; the message stays in the stream.
	late, err := nc.Request(ms[0].Reply(), []byte("+ACK"), 5*time.Second)
	if err != nil || !strings.Contains(string(late.Data), `"error"`) {
		t.Errorf("ack after MaxDeliver: %v %v", late, err)
	}
	if info, _ := s.Info(ctx); info.State.Msgs != 3 {
		t.Errorf("stream after a late ack: %+v", info.State)
	}
}

// TestWorkQueueConsumeSharesWork: workers using nats.go's Consume (each
// keeps one pull request of many messages waiting) share a prefetch-1
// work queue: waiting requests are served in turn, as nats-server does.
func TestWorkQueueConsumeSharesWork(t *testing.T) {
	g := startJS(t, false, "", "")
	_, js := newJS(t, g.url)
	ctx := ctxT(t)
	s, _ := js.CreateStream(ctx, jetstream.StreamConfig{Name: "WORK", Subjects: []string{"work"}, Retention: jetstream.WorkQueuePolicy})
	if _, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "workers", AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 1}); err != nil {
		t.Fatal(err)
	}
	const total = 90
	var mu sync.Mutex
	var counts [3]int
	all := 0
	done := make(chan struct{})
	for w := 0; w < 3; w++ {
		_, wjs := newJS(t, g.url)
		c, _ := wjs.Consumer(ctx, "WORK", "workers")
		cc, err := c.Consume(func(m jetstream.Msg) {
			time.Sleep(time.Millisecond)
			m.DoubleAck(ctx)
			mu.Lock()
			counts[w]++
			if all++; all == total {
				close(done)
			}
			mu.Unlock()
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cc.Stop)
	}
	for i := 0; i < total; i++ {
		js.Publish(ctx, "work", nil)
	}
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("not all messages consumed")
	}
	t.Logf("messages per worker: %v", counts)
	for w, n := range counts {
		if n < total/10 {
			t.Errorf("worker %d got %d of %d: waiting pull requests are not served in turn", w, n, total)
		}
	}
}
