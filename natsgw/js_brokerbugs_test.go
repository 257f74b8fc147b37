package natsgw

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Tests of broker behaviour the JetStream clients expect and the broker
// does not have yet; each is skipped with the reason until the broker is
// fixed (see the report of issue 5).

// TestMaxDeliverWithoutWaitingPull: once a message's last delivery times
// out, nats-server drops it from the pending set and sends the
// MAX_DELIVERIES advisory at once. The broker does both only when a pull
// request is waiting, so until the next fetch the consumer reports the
// message as unacknowledged and nobody is told.
func TestMaxDeliverWithoutWaitingPull(t *testing.T) {
	t.Skip("broker bug: Consumer.deliverOneLocked notices MaxDeliver only while a pull request waits (dispatchLocked breaks out of its loop when c.waiting is empty), so the advisory and the drop from NumAckPending wait for the next fetch")
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
// the MSG_TERMINATED advisory; Consumer.Ack has no way to take it.
func TestTermReasonInAdvisory(t *testing.T) {
	t.Skip("broker: missing function: Consumer.Ack(seq, Term, delay) takes no reason, so Event.Reason of EventTerminated is always empty; wanted e.g. Consumer.Terminate(seq uint64, reason string) error")
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
