package natsgw

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestPullRequestStatuses: the status messages that end pull requests, as
// nats.go reads them.
func TestPullRequestStatuses(t *testing.T) {
	g := startJS(t, false, "", "")
	nc, js := newJS(t, g.url)
	ctx := ctxT(t)
	s, _ := js.CreateStream(ctx, jetstream.StreamConfig{Name: "P", Subjects: []string{"p"}})
	c, _ := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "c", AckPolicy: jetstream.AckExplicitPolicy, MaxWaiting: 1})

	// Expiry with heartbeats: 408 after the time, no messages, no error.
	start := time.Now()
	b, err := c.Fetch(5, jetstream.FetchMaxWait(600*time.Millisecond), jetstream.FetchHeartbeat(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	for range b.Messages() {
		t.Error("message from an empty stream")
	}
	if b.Error() != nil || time.Since(start) < 500*time.Millisecond {
		t.Errorf("expired fetch: %v after %v", b.Error(), time.Since(start))
	}

	// Max bytes: a message larger than the budget ends the request.
	js.Publish(ctx, "p", make([]byte, 100))
	m, err := nc.Request("$JS.API.CONSUMER.MSG.NEXT.P.c", []byte(`{"batch":1,"max_bytes":50,"expires":1000000000}`), 2*time.Second)
	if err != nil || m.Header.Get("Status") != "409" || m.Header.Get("Description") != "Message Size Exceeds MaxBytes" {
		t.Errorf("pull over max bytes: %v %v", m, err)
	}
	// nats.go ends such a fetch without an error.
	start = time.Now()
	b, _ = c.FetchBytes(50, jetstream.FetchMaxWait(10*time.Second))
	for range b.Messages() {
		t.Error("message over the byte budget delivered")
	}
	if b.Error() != nil || time.Since(start) > 8*time.Second {
		t.Errorf("fetch over max bytes: %v after %v", b.Error(), time.Since(start))
	}

	// MaxWaiting 1: a second waiting request is refused.
	sub, _ := nc.SubscribeSync("_INBOX.waiting.*")
	nc.PublishRequest("$JS.API.CONSUMER.MSG.NEXT.P.c", "_INBOX.waiting.1", []byte(`{"batch":5,"expires":2000000000}`))
	nc.PublishRequest("$JS.API.CONSUMER.MSG.NEXT.P.c", "_INBOX.waiting.2", []byte(`{"batch":5,"expires":2000000000}`))
	nc.Flush()
	for {
		m := nextMsg(t, sub)
		if m.Header.Get("Status") == "" {
			m.Ack()
			continue // the 100-byte message, to the first request
		}
		if m.Subject != "_INBOX.waiting.2" || m.Header.Get("Status") != "409" || m.Header.Get("Description") != "Exceeded MaxWaiting" {
			t.Errorf("second waiting request: %s %v", m.Subject, m.Header)
		}
		break
	}

	// A consumer deleted under a waiting request tells it.
	c2, _ := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "gone", DeliverPolicy: jetstream.DeliverNewPolicy})
	done := make(chan error, 1)
	go func() {
		b, err := c2.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			done <- err
			return
		}
		for range b.Messages() {
		}
		done <- b.Error()
	}()
	time.Sleep(100 * time.Millisecond)
	if err := s.DeleteConsumer(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, jetstream.ErrConsumerDeleted) {
		t.Errorf("fetch from a deleted consumer: %v", err)
	}

	// A pull request on a consumer that does not exist: no responders.
	if _, err := nc.Request("$JS.API.CONSUMER.MSG.NEXT.P.nope", nil, 2*time.Second); !errors.Is(err, nats.ErrNoResponders) {
		t.Errorf("pull from a missing consumer: %v", err)
	}
}

// TestAckNextAndHeadersOnly: "+NXT" acknowledges and asks for the next
// message in one publish; a headers-only consumer gets Nats-Msg-Size.
func TestAckNextAndHeadersOnly(t *testing.T) {
	g := startJS(t, true, "", "")
	nc, js := newJS(t, g.url)
	ctx := ctxT(t)
	s, _ := js.CreateStream(ctx, jetstream.StreamConfig{Name: "H", Subjects: []string{"h"}})
	for i := 0; i < 3; i++ {
		m := nats.NewMsg("h")
		m.Header.Set("Trace", fmt.Sprint(i))
		m.Data = []byte(strings.Repeat("x", 10+i))
		js.PublishMsg(ctx, m)
	}
	s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "c", AckPolicy: jetstream.AckExplicitPolicy})
	m, err := nc.Request("$JS.API.CONSUMER.MSG.NEXT.H.c", nil, 2*time.Second)
	if err != nil || m.Header.Get("Trace") != "0" {
		t.Fatalf("first: %v %v", m, err)
	}
	for i := 1; i < 3; i++ {
		m, err = nc.Request(m.Reply, []byte("+NXT"), 2*time.Second)
		if err != nil || m.Header.Get("Trace") != fmt.Sprint(i) {
			t.Fatalf("+NXT %d: %v %v", i, m, err)
		}
	}
	m.Ack()

	c, _ := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "hdrs", HeadersOnly: true, AckPolicy: jetstream.AckNonePolicy})
	b, _ := c.Fetch(3, jetstream.FetchMaxWait(2*time.Second))
	i := 0
	for m := range b.Messages() {
		if len(m.Data()) != 0 || m.Headers().Get("Nats-Msg-Size") != fmt.Sprint(10+i) || m.Headers().Get("Trace") != fmt.Sprint(i) {
			t.Errorf("headers-only message %d: %v %q", i, m.Headers(), m.Data())
		}
		i++
	}
	if i != 3 {
		t.Errorf("headers-only consumer got %d", i)
	}
	ci, _ := s.Consumer(ctx, "c")
	if info, _ := ci.Info(ctx); info.AckFloor.Stream != 3 || info.NumAckPending != 0 {
		t.Errorf("after +NXT acks: %+v", info)
	}
}

// TestPushFlowControlAndOrdered: a push consumer with flow control
// delivers more than one flow-control window, and nats.go's ordered push
// subscription (heartbeats, flow control, gap checks) reads a stream.
func TestPushFlowControlAndOrdered(t *testing.T) {
	g := startJS(t, false, "", "")
	nc, js := newJS(t, g.url)
	ctx := ctxT(t)
	js.CreateStream(ctx, jetstream.StreamConfig{Name: "F", Subjects: []string{"f.>"}})
	const total = 2000
	for i := 0; i < total; i++ {
		js.PublishAsync("f.x", []byte(fmt.Sprint(i)))
	}
	<-js.PublishAsyncComplete()
	jsc, _ := nc.JetStream()
	for _, opts := range [][]nats.SubOpt{
		{nats.Durable("fc"), nats.EnableFlowControl(), nats.IdleHeartbeat(time.Second), nats.AckNone()},
		{nats.OrderedConsumer()},
	} {
		sub, err := jsc.SubscribeSync("f.>", opts...)
		if err != nil {
			t.Fatal(err)
		}
		sub.SetPendingLimits(-1, -1)
		for i := 0; i < total; i++ {
			m, err := sub.NextMsg(5 * time.Second)
			if err != nil {
				t.Fatalf("message %d: %v", i, err)
			}
			if string(m.Data) != fmt.Sprint(i) {
				t.Fatalf("message %d: %q", i, m.Data)
			}
		}
		sub.Unsubscribe()
	}
}

// TestStreamUpdate: limits change in place; what cannot change is refused.
func TestStreamUpdate(t *testing.T) {
	g := startJS(t, false, "", "")
	_, js := newJS(t, g.url)
	ctx := ctxT(t)
	js.CreateStream(ctx, jetstream.StreamConfig{Name: "U", Subjects: []string{"u.a"}})
	for i := 0; i < 10; i++ {
		js.Publish(ctx, "u.a", nil)
	}
	s, err := js.UpdateStream(ctx, jetstream.StreamConfig{Name: "U", Subjects: []string{"u.a", "u.b"}, MaxMsgs: 4, Description: "updated"})
	if err != nil {
		t.Fatal(err)
	}
	info, _ := s.Info(ctx)
	if info.State.Msgs != 4 || info.Config.Description != "updated" || len(info.Config.Subjects) != 2 {
		t.Errorf("after update: %+v %+v", info.Config, info.State)
	}
	if _, err := js.Publish(ctx, "u.b", nil); err != nil {
		t.Errorf("publish on an added subject: %v", err)
	}
	if _, err := js.UpdateStream(ctx, jetstream.StreamConfig{Name: "U", Subjects: []string{"u.a"}, Storage: jetstream.MemoryStorage}); err == nil {
		t.Error("storage change accepted")
	}
}

// TestRawConsumerCreateAndHeartbeats: the older create subjects (no name,
// durable) and a push consumer's idle heartbeat with its last sequences.
func TestRawConsumerCreateAndHeartbeats(t *testing.T) {
	g := startJS(t, false, "", "")
	nc, js := newJS(t, g.url)
	ctx := ctxT(t)
	s, _ := js.CreateStream(ctx, jetstream.StreamConfig{Name: "R", Subjects: []string{"r.>"}})
	js.Publish(ctx, "r.1", []byte("one"))
	js.Publish(ctx, "r.2", []byte("two"))

	resp := apiCall(t, nc, "$JS.API.CONSUMER.CREATE.R", `{"stream_name":"R","config":{"ack_policy":"none","deliver_policy":"all"}}`)
	if errCode(resp) != 0 || resp["name"] == "" || resp["config"].(map[string]any)["durable_name"] != nil {
		t.Errorf("ephemeral create without a name: %v", resp)
	}
	resp = apiCall(t, nc, "$JS.API.CONSUMER.DURABLE.CREATE.R.old", `{"stream_name":"R","config":{"ack_policy":"explicit"}}`)
	if errCode(resp) != 0 || resp["name"] != "old" || resp["config"].(map[string]any)["durable_name"] != "old" {
		t.Errorf("durable create: %v", resp)
	}
	resp = apiCall(t, nc, "$JS.API.CONSUMER.CREATE.R.f.r.2", `{"stream_name":"R","config":{"name":"f","filter_subject":"r.2"}}`)
	if errCode(resp) != 0 || resp["num_pending"].(float64) != 1 {
		t.Errorf("create with filter in the subject: %v", resp)
	}

	sub, _ := nc.SubscribeSync("deliver.hb")
	nc.Flush()
	resp = apiCall(t, nc, "$JS.API.CONSUMER.CREATE.R.hb", `{"stream_name":"R","config":{"name":"hb","deliver_subject":"deliver.hb","ack_policy":"none","idle_heartbeat":100000000}}`)
	if errCode(resp) != 0 {
		t.Fatalf("push consumer: %v", resp)
	}
	for i := 0; i < 2; i++ {
		if m := nextMsg(t, sub); m.Header.Get("Status") != "" {
			t.Fatalf("message %d is a status: %v", i, m.Header)
		}
	}
	m := nextMsg(t, sub)
	if m.Header.Get("Status") != "100" || m.Header.Get("Description") != "Idle Heartbeat" ||
		m.Header.Get("Nats-Last-Consumer") != "2" || m.Header.Get("Nats-Last-Stream") != "2" {
		t.Errorf("heartbeat: %v", m.Header)
	}
	if n, _ := s.Info(ctx); n.State.Consumers != 4 {
		t.Errorf("%d consumers", n.State.Consumers)
	}
	if err := s.Purge(ctx, jetstream.WithPurgeSequence(2)); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.Info(ctx); n.State.Msgs != 1 || n.State.FirstSeq != 2 {
		t.Errorf("purge below 2: %+v", n.State)
	}
}
