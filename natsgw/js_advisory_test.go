package natsgw

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Tests of broker behaviour the JetStream clients expect, first written
// (skipped) when the broker lacked it.

// TestMaxDeliverWithoutWaitingPull: once a message's last delivery times
// out, nats-server drops it from the pending set and sends the
// MAX_DELIVERIES advisory at once, without waiting for a pull request.
func TestMaxDeliverWithoutWaitingPull(t *testing.T) {
	g := startJS(t, false, "", "")
	nc, js := newJS(t, g.url)
	ctx := ctxT(t)
	s, _ := js.CreateStream(ctx, jetstream.StreamConfig{Name: "M", Subjects: []string{"m"}})
	adv, _ := nc.SubscribeSync("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.>")
	nc.Flush()
	c, _ := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "c", AckPolicy: jetstream.AckExplicitPolicy, AckWait: 200 * time.Millisecond, MaxDeliver: 1})
	js.Publish(ctx, "m", nil)
	if ms := fetchN(t, c, 1, 2*time.Second); len(ms) != 1 {
		t.Fatal("no delivery")
	}
	nextMsg(t, adv) // within AckWait, with no fetch waiting
	if ci, _ := c.Info(ctx); ci.NumAckPending != 0 {
		t.Errorf("a message past MaxDeliver still counts as unacknowledged: %d", ci.NumAckPending)
	}
}

// TestTermReasonInAdvisory: "+TERM <reason>" should carry the reason into
// the MSG_TERMINATED advisory.
func TestTermReasonInAdvisory(t *testing.T) {
	g := startJS(t, false, "", "")
	nc, js := newJS(t, g.url)
	ctx := ctxT(t)
	s, _ := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t"}})
	adv, _ := nc.SubscribeSync("$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.>")
	nc.Flush()
	c, _ := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "c", AckPolicy: jetstream.AckExplicitPolicy})
	js.Publish(ctx, "t", nil)
	ms := fetchN(t, c, 1, 2*time.Second)
	ms[0].TermWithReason("bad input")
	if m := nextMsg(t, adv); !strings.Contains(string(m.Data), `"reason":"bad input"`) {
		t.Errorf("advisory %s", m.Data)
	}
}
