package natsgw

import (
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// fetchN fetches up to n messages within wait.
func fetchN(t *testing.T, c jetstream.Consumer, n int, wait time.Duration) []jetstream.Msg {
	t.Helper()
	var out []jetstream.Msg
	deadline := time.Now().Add(wait)
	for len(out) < n && time.Now().Before(deadline) {
		b, err := c.Fetch(n-len(out), jetstream.FetchMaxWait(time.Until(deadline)))
		if err != nil {
			t.Fatal(err)
		}
		for m := range b.Messages() {
			out = append(out, m)
		}
	}
	return out
}

func TestInterestRetentionAndAckAll(t *testing.T) {
	g := startJS(t, false, "", "")
	_, js := newJS(t, g.url)
	ctx := ctxT(t)
	s, _ := js.CreateStream(ctx, jetstream.StreamConfig{Name: "I", Subjects: []string{"i"}, Retention: jetstream.InterestPolicy})
	a, _ := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "a", AckPolicy: jetstream.AckExplicitPolicy})
	b, _ := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "b", AckPolicy: jetstream.AckAllPolicy})
	for i := 0; i < 4; i++ {
		js.Publish(ctx, "i", []byte(fmt.Sprint(i)))
	}
	for _, m := range fetchN(t, a, 4, 2*time.Second) {
		m.DoubleAck(ctx)
	}
	if info, _ := s.Info(ctx); info.State.Msgs != 4 {
		t.Errorf("interest: one of two consumers acked, stream has %d", info.State.Msgs)
	}
	ms := fetchN(t, b, 4, 2*time.Second)
	if len(ms) != 4 {
		t.Fatalf("b got %d", len(ms))
	}
	ms[2].DoubleAck(ctx) // AckAll: covers 1..3
	if ci, _ := b.Info(ctx); ci.NumAckPending != 1 || ci.AckFloor.Stream != 3 {
		t.Errorf("ack all: %+v %+v", ci.NumAckPending, ci.AckFloor)
	}
	waitFor(t, func() bool { info, _ := s.Info(ctx); return info.State.Msgs == 1 }, "interest stream to drop the messages both acked")
}

func TestWorkQueueConsumersMustNotOverlap(t *testing.T) {
	g := startJS(t, false, "", "")
	nc, js := newJS(t, g.url)
	ctx := ctxT(t)
	s, _ := js.CreateStream(ctx, jetstream.StreamConfig{Name: "W", Subjects: []string{"w.*"}, Retention: jetstream.WorkQueuePolicy})
	if _, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "a", FilterSubject: "w.a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "b", FilterSubject: "w.b"}); err != nil {
		t.Fatalf("disjoint filter: %v", err)
	}
	resp := apiCall(t, nc, "$JS.API.CONSUMER.CREATE.W.c", `{"stream_name":"W","config":{"durable_name":"c","filter_subject":"w.*","ack_policy":"explicit"}}`)
	if errCode(resp) != 10100 {
		t.Errorf("overlapping filtered consumer: %v", resp)
	}
	resp = apiCall(t, nc, "$JS.API.CONSUMER.CREATE.W.d", `{"stream_name":"W","config":{"durable_name":"d","ack_policy":"explicit"}}`)
	if errCode(resp) != 10099 {
		t.Errorf("unfiltered consumer beside filtered ones: %v", resp)
	}
	resp = apiCall(t, nc, "$JS.API.CONSUMER.CREATE.W.e", `{"stream_name":"W","config":{"durable_name":"e","filter_subject":"w.e","ack_policy":"none"}}`)
	if errCode(resp) != 10098 {
		t.Errorf("work queue consumer without explicit acks: %v", resp)
	}
	resp = apiCall(t, nc, "$JS.API.CONSUMER.CREATE.W.e", `{"stream_name":"W","config":{"durable_name":"e","filter_subject":"w.e","ack_policy":"explicit","deliver_policy":"new"}}`)
	if errCode(resp) != 10101 {
		t.Errorf("work queue consumer not delivering all: %v", resp)
	}
}

func TestBackoffAndConsumerUpdate(t *testing.T) {
	g := startJS(t, false, "", "")
	_, js := newJS(t, g.url)
	ctx := ctxT(t)
	s, _ := js.CreateStream(ctx, jetstream.StreamConfig{Name: "B", Subjects: []string{"b"}})
	c, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "c", AckPolicy: jetstream.AckExplicitPolicy,
		BackOff: []time.Duration{100 * time.Millisecond, 400 * time.Millisecond}, MaxDeliver: 4})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.CachedInfo().Config.BackOff; len(got) != 2 || got[1] != 400*time.Millisecond {
		t.Errorf("backoff in info: %v", got)
	}
	js.Publish(ctx, "b", nil)
	var times []time.Time
	for len(times) < 3 {
		ms := fetchN(t, c, 1, 3*time.Second)
		if len(ms) == 0 {
			t.Fatalf("delivery %d missing", len(times)+1)
		}
		times = append(times, time.Now())
	}
	// Lower bounds only: a loaded machine (or an emulator) may be late,
	// never early.
	if d := times[1].Sub(times[0]); d < 80*time.Millisecond {
		t.Errorf("first redelivery after %v, want about 100ms", d)
	}
	if d := times[2].Sub(times[1]); d < 350*time.Millisecond {
		t.Errorf("second redelivery after %v, want about 400ms", d)
	}
	c, err = s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "c", AckPolicy: jetstream.AckExplicitPolicy,
		BackOff: []time.Duration{100 * time.Millisecond, 400 * time.Millisecond}, MaxDeliver: 4, MaxAckPending: 7, Description: "changed"})
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	if ci := c.CachedInfo(); ci.Config.MaxAckPending != 7 || ci.Config.Description != "changed" {
		t.Errorf("after update: %+v", ci.Config)
	}
	if _, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "c", AckPolicy: jetstream.AckNonePolicy}); err == nil {
		t.Error("ack policy change accepted")
	}
}

// TestRestartRedeliversUnacked: a message delivered but not acknowledged
// before a restart is delivered again after it.
func TestRestartRedeliversUnacked(t *testing.T) {
	dir := t.TempDir()
	g := startJS(t, false, dir, "")
	_, js := newJS(t, g.url)
	ctx := ctxT(t)
	s, _ := js.CreateStream(ctx, jetstream.StreamConfig{Name: "R", Subjects: []string{"r"}})
	js.CreateStream(ctx, jetstream.StreamConfig{Name: "MEM", Subjects: []string{"mem"}, Storage: jetstream.MemoryStorage})
	js.Publish(ctx, "mem", nil)
	c, _ := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "c", AckPolicy: jetstream.AckExplicitPolicy, AckWait: 300 * time.Millisecond})
	js.Publish(ctx, "r", []byte("one"))
	js.Publish(ctx, "r", []byte("two"))
	ms := fetchN(t, c, 2, 2*time.Second)
	ms[1].DoubleAck(ctx)
	g.stop()

	g = startJS(t, false, dir, "")
	_, js = newJS(t, g.url)
	s, _ = js.Stream(ctx, "R")
	c, _ = s.Consumer(ctx, "c")
	if ci, _ := c.Info(ctx); ci.NumAckPending != 1 {
		t.Errorf("after restart: %d pending acks", ci.NumAckPending)
	}
	ms = fetchN(t, c, 1, 3*time.Second)
	if len(ms) != 1 || string(ms[0].Data()) != "one" {
		t.Fatalf("unacked message not redelivered after restart: %v", ms)
	}
	if md, _ := ms[0].Metadata(); md.NumDelivered != 2 {
		t.Errorf("redelivery after restart: delivered %d times", md.NumDelivered)
	}
	mem, err := js.Stream(ctx, "MEM")
	if err != nil {
		t.Fatalf("memory stream's configuration lost: %v", err)
	}
	if info, _ := mem.Info(ctx); info.State.Msgs != 0 || info.Config.Storage != jetstream.MemoryStorage {
		t.Errorf("memory stream after restart: %+v", info.State)
	}
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestPullRequestOfGoneClientGetsNothing: a worker with a long pull
// request waiting disconnects; a message published after that must go to
// the worker still there, not to the gone worker's request (and then wait
// AckWait for its redelivery), as nats-server drops waiting requests whose
// reply subject lost its interest.
func TestPullRequestOfGoneClientGetsNothing(t *testing.T) {
	g := startJS(t, false, "", "")
	_, js := newJS(t, g.url)
	ctx := ctxT(t)
	s, _ := js.CreateStream(ctx, jetstream.StreamConfig{Name: "G", Subjects: []string{"g"}})
	s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "c", AckPolicy: jetstream.AckExplicitPolicy, AckWait: 30 * time.Second})
	nc1, js1 := newJS(t, g.url)
	c1, _ := js1.Consumer(ctx, "G", "c")
	if _, err := c1.Fetch(10, jetstream.FetchMaxWait(20*time.Second)); err != nil { // the request waits
		t.Fatal(err)
	}
	nc1.Flush()
	nc1.Close()
	time.Sleep(50 * time.Millisecond)
	js.Publish(ctx, "g", []byte("job"))
	_, js2 := newJS(t, g.url)
	c2, _ := js2.Consumer(ctx, "G", "c")
	if ms := fetchN(t, c2, 1, 3*time.Second); len(ms) != 1 {
		t.Error("the message went to the pull request of a client that is gone")
	}
}

// TestConsumerRecreatedUnderSameName: a session that acknowledged a
// consumer's messages keeps working when the consumer is deleted and made
// again under the same name.
func TestConsumerRecreatedUnderSameName(t *testing.T) {
	g := startJS(t, false, "", "")
	nc, js := newJS(t, g.url)
	ctx := ctxT(t)
	s, _ := js.CreateStream(ctx, jetstream.StreamConfig{Name: "RC", Subjects: []string{"rc"}})
	js.Publish(ctx, "rc", []byte("one"))
	_, other := newJS(t, g.url)
	for round := 0; round < 2; round++ {
		if _, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "c", AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
			t.Fatal(err)
		}
		// Fetched on one connection, acknowledged on nc, which in the
		// second round still knows the deleted consumer.
		c, _ := other.Consumer(ctx, "RC", "c")
		ms := fetchN(t, c, 1, 2*time.Second)
		if len(ms) != 1 {
			t.Fatalf("round %d: no message", round)
		}
		resp, err := nc.Request(ms[0].Reply(), []byte("+ACK"), 2*time.Second)
		if err != nil || len(resp.Data) != 0 {
			t.Fatalf("round %d: ack answered %v %v", round, resp, err)
		}
		if ci, _ := c.Info(ctx); ci.NumAckPending != 0 || ci.AckFloor.Stream != 1 {
			t.Fatalf("round %d: ack not applied: %+v", round, ci.AckFloor)
		}
		if err := s.DeleteConsumer(ctx, "c"); err != nil {
			t.Fatal(err)
		}
	}
}
