package broker

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestPullDeliversInOrderAndAcks(t *testing.T) {
	for _, storage := range []StorageType{FileStorage, MemoryStorage} {
		t.Run(storage.String(), func(t *testing.T) {
			b, o := openBroker(t, t.TempDir())
			defer b.Close()
			s := mustStream(t, b, StreamConfig{Name: "Q", Subjects: []string{"q"}, Storage: storage})
			c := mustConsumer(t, s, ConsumerConfig{Name: "w", Durable: true})
			for i := 1; i <= 3; i++ {
				publish(t, s, "q", fmt.Sprint(i))
			}
			if err := c.Pull(PullRequest{Reply: "inbox", Batch: 3}); err != nil {
				t.Fatal(err)
			}
			for i := 1; i <= 3; i++ {
				r := o.mustMsg(t)
				if r.subject != "inbox" || r.msg.StreamSeq != uint64(i) || r.msg.ConsumerSeq != uint64(i) ||
					r.payload != fmt.Sprint(i) || r.msg.Deliveries != 1 || r.msg.Pending != uint64(3-i) {
					t.Fatalf("delivery %d = %+v %q", i, r.msg, r.payload)
				}
			}
			info := c.Info()
			if info.NumAckPending != 3 || info.NumPending != 0 || info.Delivered.Stream != 3 {
				t.Fatalf("info = %+v", info)
			}
			for i := 1; i <= 3; i++ {
				if err := c.Ack(uint64(i), Ack, 0); err != nil {
					t.Fatal(err)
				}
			}
			if err := c.Ack(2, Ack, 0); !errors.Is(err, ErrUnknownDelivery) {
				t.Fatalf("second ack: %v", err)
			}
			info = c.Info()
			if info.NumAckPending != 0 || info.AckFloor.Stream != 3 || info.AckFloor.Consumer != 3 {
				t.Fatalf("info after acks = %+v", info)
			}
		})
	}
}

func TestNoWaitAndExpiry(t *testing.T) {
	b, o := openBroker(t, t.TempDir())
	defer b.Close()
	s := mustStream(t, b, StreamConfig{Name: "S", Subjects: []string{"s"}})
	c := mustConsumer(t, s, ConsumerConfig{Name: "c", Durable: true})
	if err := c.Pull(PullRequest{Reply: "r1", Batch: 5, NoWait: true}); err != nil {
		t.Fatal(err)
	}
	if r, _ := o.next(t, 5*time.Second); r.status.Kind != StatusNoMessages || r.subject != "r1" {
		t.Fatalf("no-wait on empty: %+v", r)
	}
	if err := c.Pull(PullRequest{Reply: "r2", Batch: 5, Expires: 50 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	publish(t, s, "s", "one")
	if r := o.mustMsg(t); r.subject != "r2" {
		t.Fatalf("delivery to %q", r.subject)
	}
	r, _ := o.next(t, 5*time.Second)
	if r.status.Kind != StatusTimeout || r.status.PendingMsgs != 4 {
		t.Fatalf("expiry: %+v", r)
	}
}

func TestMaxBytesEndsRequest(t *testing.T) {
	b, o := openBroker(t, t.TempDir())
	defer b.Close()
	s := mustStream(t, b, StreamConfig{Name: "S", Subjects: []string{"s"}})
	c := mustConsumer(t, s, ConsumerConfig{Name: "c", Durable: true})
	publish(t, s, "s", "0123456789")
	publish(t, s, "s", "0123456789")
	if err := c.Pull(PullRequest{Reply: "r", Batch: 10, MaxBytes: 15}); err != nil {
		t.Fatal(err)
	}
	if r := o.mustMsg(t); r.msg.StreamSeq != 1 {
		t.Fatalf("first = %+v", r.msg)
	}
	if r, _ := o.next(t, 5*time.Second); r.status.Kind != StatusMaxBytes {
		t.Fatalf("want max bytes status, got %+v", r)
	}
	// The second message stays for the next request.
	if err := c.Pull(PullRequest{Reply: "r", Batch: 1}); err != nil {
		t.Fatal(err)
	}
	if r := o.mustMsg(t); r.msg.StreamSeq != 2 || r.msg.Deliveries != 1 {
		t.Fatalf("second = %+v", r.msg)
	}
}

// Work queue: competing requests with MaxAckPending 1 each get one message
// at a time, and acks remove messages from the stream.
func TestWorkQueueFairDispatch(t *testing.T) {
	b, o := openBroker(t, t.TempDir())
	defer b.Close()
	s := mustStream(t, b, StreamConfig{Name: "WQ", Subjects: []string{"jobs"}, Retention: WorkQueuePolicy})
	c := mustConsumer(t, s, ConsumerConfig{Name: "workers", Durable: true, MaxAckPending: 1})
	if _, err := s.AddConsumer(ConsumerConfig{Name: "other", Durable: true}, CreateOnly); !errors.Is(err, ErrWorkQueueOverlap) {
		t.Fatalf("second unfiltered work queue consumer: %v", err)
	}
	const n = 30
	for i := 0; i < n; i++ {
		publish(t, s, "jobs", fmt.Sprint(i))
	}
	for w := 0; w < 3; w++ {
		if err := c.Pull(PullRequest{Reply: fmt.Sprintf("w%d", w), Batch: n}); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[uint64]bool{}
	for len(seen) < n {
		r := o.mustMsg(t)
		if seen[r.msg.StreamSeq] {
			t.Fatalf("seq %d delivered twice", r.msg.StreamSeq)
		}
		seen[r.msg.StreamSeq] = true
		if info := c.Info(); info.NumAckPending > 1 {
			t.Fatalf("%d pending with MaxAckPending 1", info.NumAckPending)
		}
		if err := c.Ack(r.msg.StreamSeq, Ack, 0); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "empty work queue", func() bool { return s.Info().State.Msgs == 0 })
	if st := s.Info().State; st.FirstSeq != n+1 {
		t.Fatalf("state = %+v", st)
	}
}

func TestRedeliveryAfterAckWaitNakTermMaxDeliver(t *testing.T) {
	b, o := openBroker(t, t.TempDir())
	defer b.Close()
	s := mustStream(t, b, StreamConfig{Name: "RD", Subjects: []string{"rd"}})
	c := mustConsumer(t, s, ConsumerConfig{Name: "c", Durable: true, AckWait: 100 * time.Millisecond, MaxDeliver: 3})
	publish(t, s, "rd", "a")
	publish(t, s, "rd", "b")
	if err := c.Pull(PullRequest{Reply: "r", Batch: 100}); err != nil {
		t.Fatal(err)
	}
	first := o.mustMsg(t)
	second := o.mustMsg(t)
	if first.msg.StreamSeq != 1 || second.msg.StreamSeq != 2 {
		t.Fatal("order")
	}
	// Term the second: never again.
	if err := c.Ack(2, Term, 0); err != nil {
		t.Fatal(err)
	}
	// The first is not acked: redelivered after AckWait, twice more.
	for want := 2; want <= 3; want++ {
		r := o.mustMsg(t)
		if r.msg.StreamSeq != 1 || r.msg.Deliveries != want {
			t.Fatalf("redelivery = %+v", r.msg)
		}
	}
	o.quiet(t, 300*time.Millisecond)
	eventually(t, "max deliveries advisory", func() bool {
		o.mu.Lock()
		defer o.mu.Unlock()
		for _, ev := range o.events {
			if ev.Kind == EventMaxDeliveries && ev.StreamSeq == 1 {
				return true
			}
		}
		return false
	})
	// Nak with a delay.
	publish(t, s, "rd", "c")
	r := o.mustMsg(t)
	start := time.Now()
	if err := c.Ack(r.msg.StreamSeq, Nak, 150*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	r2 := o.mustMsg(t)
	if r2.msg.StreamSeq != 3 || r2.msg.Deliveries != 2 || time.Since(start) < 140*time.Millisecond {
		t.Fatalf("nak redelivery %+v after %v", r2.msg, time.Since(start))
	}
	if err := c.Ack(3, Ack, 0); err != nil {
		t.Fatal(err)
	}
	if info := c.Info(); info.NumAckPending != 0 || info.AckFloor.Stream != 3 {
		t.Fatalf("info = %+v", info)
	}
}

func TestInProgressExtendsDeadline(t *testing.T) {
	b, o := openBroker(t, t.TempDir())
	defer b.Close()
	s := mustStream(t, b, StreamConfig{Name: "IP", Subjects: []string{"ip"}})
	c := mustConsumer(t, s, ConsumerConfig{Name: "c", Durable: true, AckWait: 150 * time.Millisecond})
	publish(t, s, "ip", "a")
	_ = c.Pull(PullRequest{Reply: "r", Batch: 10})
	o.mustMsg(t)
	for i := 0; i < 4; i++ {
		time.Sleep(75 * time.Millisecond)
		if err := c.Ack(1, InProgress, 0); err != nil {
			t.Fatal(err)
		}
	}
	o.quiet(t, 50*time.Millisecond)
	_ = c.Ack(1, Ack, 0)
}

func TestConsumerStateSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	b, o := openBroker(t, dir)
	s := mustStream(t, b, StreamConfig{Name: "CS", Subjects: []string{"cs"}})
	c := mustConsumer(t, s, ConsumerConfig{Name: "dur", Durable: true, AckWait: time.Hour})
	for i := 0; i < 5; i++ {
		publish(t, s, "cs", fmt.Sprint(i))
	}
	_ = c.Pull(PullRequest{Reply: "r", Batch: 3})
	for i := 0; i < 3; i++ {
		o.mustMsg(t)
	}
	_ = c.Ack(1, Ack, 0)
	_ = c.Ack(3, Ack, 0)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b, o = openBroker(t, dir)
	defer b.Close()
	s, _ = b.Stream("CS")
	c, err := s.Consumer("dur")
	if err != nil {
		t.Fatal(err)
	}
	info := c.Info()
	if info.Delivered.Stream != 3 || info.Delivered.Consumer != 3 || info.NumAckPending != 1 || info.AckFloor.Stream != 1 || info.NumPending != 2 {
		t.Fatalf("after restart: %+v", info)
	}
	_ = c.Pull(PullRequest{Reply: "r", Batch: 2})
	for want := uint64(4); want <= 5; want++ {
		if r := o.mustMsg(t); r.msg.StreamSeq != want {
			t.Fatalf("got %d, want %d", r.msg.StreamSeq, want)
		}
	}
}

func TestPushConsumerWaitsForInterest(t *testing.T) {
	b, o := openBroker(t, t.TempDir())
	defer b.Close()
	s := mustStream(t, b, StreamConfig{Name: "PU", Subjects: []string{"pu.>"}})
	o.setListening("deliver", false)
	mustConsumer(t, s, ConsumerConfig{Name: "p", Durable: true, DeliverSubject: "deliver", FilterSubjects: []string{"pu.b"}})
	publish(t, s, "pu.a", "skip")
	publish(t, s, "pu.b", "want")
	o.quiet(t, 100*time.Millisecond)
	o.setListening("deliver", true)
	r := o.mustMsg(t)
	if r.subject != "deliver" || r.msg.StreamSeq != 2 || string(r.msg.Subject) != "pu.b" {
		t.Fatalf("push delivery = %+v", r)
	}
}

func TestDeliverPolicies(t *testing.T) {
	b, o := openBroker(t, t.TempDir())
	defer b.Close()
	s := mustStream(t, b, StreamConfig{Name: "DP", Subjects: []string{"dp.*"}})
	for i := 1; i <= 6; i++ {
		publish(t, s, fmt.Sprintf("dp.%d", i%3), fmt.Sprint(i))
	}
	mid := time.Now()
	time.Sleep(2 * time.Millisecond)
	publish(t, s, "dp.0", "7")
	tests := []struct {
		name string
		cfg  ConsumerConfig
		want []uint64
	}{
		{"all", ConsumerConfig{DeliverPolicy: DeliverAll}, []uint64{1, 2, 3, 4, 5, 6, 7}},
		{"last", ConsumerConfig{DeliverPolicy: DeliverLast}, []uint64{7}},
		{"last filtered", ConsumerConfig{DeliverPolicy: DeliverLast, FilterSubjects: []string{"dp.1"}}, []uint64{4}},
		{"start seq", ConsumerConfig{DeliverPolicy: DeliverByStartSequence, OptStartSeq: 5}, []uint64{5, 6, 7}},
		{"start time", ConsumerConfig{DeliverPolicy: DeliverByStartTime, OptStartTime: mid}, []uint64{7}},
		{"last per subject", ConsumerConfig{DeliverPolicy: DeliverLastPerSubject}, []uint64{4, 5, 7}},
		{"filter", ConsumerConfig{FilterSubjects: []string{"dp.2"}}, []uint64{2, 5}},
		{"new", ConsumerConfig{DeliverPolicy: DeliverNew}, nil},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Name = fmt.Sprintf("c%d", i)
			c := mustConsumer(t, s, cfg)
			defer s.DeleteConsumer(cfg.Name)
			if info := c.Info(); info.NumPending != uint64(len(tc.want)) {
				t.Fatalf("num pending = %d, want %d", info.NumPending, len(tc.want))
			}
			_ = c.Pull(PullRequest{Reply: "r", Batch: 100, NoWait: true})
			var got []uint64
			for {
				r, ok := o.next(t, 5*time.Second)
				if !ok {
					t.Fatal("no end of request")
				}
				if r.status.Kind != 0 {
					break
				}
				got = append(got, r.msg.StreamSeq)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("delivered %v, want %v", got, tc.want)
			}
		})
	}
}

func TestInterestRetention(t *testing.T) {
	b, o := openBroker(t, t.TempDir())
	defer b.Close()
	s := mustStream(t, b, StreamConfig{Name: "IN", Subjects: []string{"in"}, Retention: InterestPolicy})
	publish(t, s, "in", "nobody")
	if n := s.Info().State.Msgs; n != 0 {
		t.Fatalf("kept %d messages without consumers", n)
	}
	c1 := mustConsumer(t, s, ConsumerConfig{Name: "a", Durable: true})
	c2 := mustConsumer(t, s, ConsumerConfig{Name: "b", Durable: true})
	publish(t, s, "in", "both")
	_ = c1.Pull(PullRequest{Reply: "r1", Batch: 1})
	_ = c2.Pull(PullRequest{Reply: "r2", Batch: 1})
	o.mustMsg(t)
	o.mustMsg(t)
	if err := c1.Ack(2, Ack, 0); err != nil {
		t.Fatal(err)
	}
	if n := s.Info().State.Msgs; n != 1 {
		t.Fatalf("removed after one of two acks: %d left", n)
	}
	if err := c2.Ack(2, Ack, 0); err != nil {
		t.Fatal(err)
	}
	eventually(t, "removal after both acks", func() bool { return s.Info().State.Msgs == 0 })
}

func TestAckAllAndAckNone(t *testing.T) {
	b, o := openBroker(t, t.TempDir())
	defer b.Close()
	s := mustStream(t, b, StreamConfig{Name: "AA", Subjects: []string{"aa"}})
	all := mustConsumer(t, s, ConsumerConfig{Name: "all", Durable: true, AckPolicy: AckAll})
	none := mustConsumer(t, s, ConsumerConfig{Name: "none", Durable: true, AckPolicy: AckNone})
	for i := 0; i < 4; i++ {
		publish(t, s, "aa", "m")
	}
	_ = all.Pull(PullRequest{Reply: "r", Batch: 4})
	_ = none.Pull(PullRequest{Reply: "r", Batch: 4})
	for i := 0; i < 8; i++ {
		o.mustMsg(t)
	}
	if err := all.Ack(3, Ack, 0); err != nil {
		t.Fatal(err)
	}
	if info := all.Info(); info.NumAckPending != 1 || info.AckFloor.Stream != 3 {
		t.Fatalf("ack all: %+v", info)
	}
	if info := none.Info(); info.NumAckPending != 0 || info.AckFloor.Stream != 4 {
		t.Fatalf("ack none: %+v", info)
	}
}

func TestEphemeralConsumerGoesWhenIdle(t *testing.T) {
	b, _ := openBroker(t, t.TempDir())
	defer b.Close()
	s := mustStream(t, b, StreamConfig{Name: "EP", Subjects: []string{"ep"}})
	c := mustConsumer(t, s, ConsumerConfig{InactiveThreshold: 50 * time.Millisecond})
	if c.Name() == "" {
		t.Fatal("no generated name")
	}
	eventually(t, "ephemeral removal", func() bool {
		_, err := s.Consumer(c.Name())
		return errors.Is(err, ErrConsumerNotFound)
	})
}

func TestConsumerConfigErrors(t *testing.T) {
	b, _ := openBroker(t, t.TempDir())
	defer b.Close()
	s := mustStream(t, b, StreamConfig{Name: "CE", Subjects: []string{"ce"}, MaxConsumers: 1})
	tests := []struct {
		name string
		cfg  ConsumerConfig
	}{
		{"durable without name", ConsumerConfig{Durable: true}},
		{"bad name", ConsumerConfig{Name: "a.b"}},
		{"start seq without policy", ConsumerConfig{Name: "x", OptStartSeq: 3}},
		{"by start seq without seq", ConsumerConfig{Name: "x", DeliverPolicy: DeliverByStartSequence}},
		{"bad filter", ConsumerConfig{Name: "x", FilterSubjects: []string{"a..b"}}},
		{"flow control on pull", ConsumerConfig{Name: "x", FlowControl: true}},
		{"backoff longer than max deliver", ConsumerConfig{Name: "x", MaxDeliver: 1, BackOff: []time.Duration{time.Second}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.AddConsumer(tc.cfg, CreateOrUpdate); !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("err = %v", err)
			}
		})
	}
	mustConsumer(t, s, ConsumerConfig{Name: "one", Durable: true})
	if _, err := s.AddConsumer(ConsumerConfig{Name: "two", Durable: true}, CreateOrUpdate); !errors.Is(err, ErrMaxConsumers) {
		t.Fatalf("max consumers: %v", err)
	}
	if _, err := s.AddConsumer(ConsumerConfig{Name: "one", Durable: true, AckWait: time.Minute}, CreateOnly); !errors.Is(err, ErrConsumerNameInUse) {
		t.Fatalf("create only with other config: %v", err)
	}
	if _, err := s.AddConsumer(ConsumerConfig{Name: "one", Durable: true, AckWait: time.Minute}, UpdateOnly); err != nil {
		t.Fatalf("update: %v", err)
	}
	if _, err := s.AddConsumer(ConsumerConfig{Name: "one", Durable: true, AckPolicy: AckNone}, UpdateOnly); !errors.Is(err, ErrInvalidUpdate) {
		t.Fatalf("ack policy change: %v", err)
	}
}

func TestRequestWithoutListenerIsDropped(t *testing.T) {
	b, o := openBroker(t, t.TempDir())
	defer b.Close()
	s := mustStream(t, b, StreamConfig{Name: "GONE", Subjects: []string{"g"}})
	c := mustConsumer(t, s, ConsumerConfig{Name: "c", Durable: true, MaxWaiting: 1})
	if err := c.Pull(PullRequest{Reply: "gone", Batch: 1}); err != nil {
		t.Fatal(err)
	}
	if err := c.Pull(PullRequest{Reply: "other", Batch: 1}); !errors.Is(err, ErrMaxWaiting) {
		t.Fatalf("second request: %v", err)
	}
	o.setListening("gone", false)
	eventually(t, "the abandoned request to go", func() bool { return c.Info().NumWaiting == 0 })
	publish(t, s, "g", "m")
	if err := c.Pull(PullRequest{Reply: "other", Batch: 1}); err != nil {
		t.Fatal(err)
	}
	if r := o.mustMsg(t); r.subject != "other" {
		t.Fatalf("delivered to %q", r.subject)
	}
}

// Waiting requests are served in turn: with prefetch 1, two workers that
// each keep a request for many messages take every other message.
func TestWaitingRequestsTakeTurns(t *testing.T) {
	b, o := openBroker(t, t.TempDir())
	defer b.Close()
	s := mustStream(t, b, StreamConfig{Name: "RR", Subjects: []string{"rr"}, Retention: WorkQueuePolicy})
	c := mustConsumer(t, s, ConsumerConfig{Name: "w", Durable: true, MaxAckPending: 1})
	_ = c.Pull(PullRequest{Reply: "a", Batch: 100})
	_ = c.Pull(PullRequest{Reply: "b", Batch: 100})
	for i := 0; i < 6; i++ {
		publish(t, s, "rr", fmt.Sprint(i))
	}
	var got []string
	for i := 0; i < 6; i++ {
		r := o.mustMsg(t)
		got = append(got, r.subject)
		if err := c.Ack(r.msg.StreamSeq, Ack, 0); err != nil {
			t.Fatal(err)
		}
	}
	if fmt.Sprint(got) != "[a b a b a b]" {
		t.Fatalf("served %v", got)
	}
}

func TestFilterChangeRecountsPending(t *testing.T) {
	b, o := openBroker(t, t.TempDir())
	defer b.Close()
	s := mustStream(t, b, StreamConfig{Name: "FC", Subjects: []string{"fc.*"}})
	for _, subj := range []string{"fc.a", "fc.b", "fc.b"} {
		publish(t, s, subj, "m")
	}
	c := mustConsumer(t, s, ConsumerConfig{Name: "c", Durable: true, FilterSubjects: []string{"fc.a"}})
	if n := c.Info().NumPending; n != 1 {
		t.Fatalf("pending %d", n)
	}
	if _, err := s.AddConsumer(ConsumerConfig{Name: "c", Durable: true, FilterSubjects: []string{"fc.b"}}, UpdateOnly); err != nil {
		t.Fatal(err)
	}
	if n := c.Info().NumPending; n != 2 {
		t.Fatalf("pending after filter change %d", n)
	}
	_ = c.Pull(PullRequest{Reply: "r", Batch: 5, NoWait: true})
	if r := o.mustMsg(t); r.msg.StreamSeq != 2 {
		t.Fatalf("first under new filter: %d", r.msg.StreamSeq)
	}
}

func TestTrimPendingDropsOldest(t *testing.T) {
	b, o := openBroker(t, t.TempDir())
	defer b.Close()
	s := mustStream(t, b, StreamConfig{Name: "TR", Subjects: []string{"tr.*"}})
	c := mustConsumer(t, s, ConsumerConfig{Name: "c", Durable: true, FilterSubjects: []string{"tr.a"}})
	for i := 0; i < 10; i++ {
		publish(t, s, "tr.a", fmt.Sprint(i))
		publish(t, s, "tr.b", "other")
	}
	if n := c.TrimPending(3); n != 7 {
		t.Fatalf("skipped %d", n)
	}
	if n := c.Info().NumPending; n != 3 {
		t.Fatalf("pending %d", n)
	}
	_ = c.Pull(PullRequest{Reply: "r", Batch: 10, NoWait: true})
	if r := o.mustMsg(t); r.payload != "7" {
		t.Fatalf("first after trim: %q", r.payload)
	}
}

// A request whose requester left is not sent messages, even before it
// expires.
func TestNoDeliveryToADepartedRequester(t *testing.T) {
	b, o := openBroker(t, t.TempDir())
	defer b.Close()
	s := mustStream(t, b, StreamConfig{Name: "DEP", Subjects: []string{"d"}})
	c := mustConsumer(t, s, ConsumerConfig{Name: "c", Durable: true})
	_ = c.Pull(PullRequest{Reply: "left", Batch: 10, Expires: time.Hour})
	o.setListening("left", false)
	publish(t, s, "d", "m")
	o.quiet(t, 100*time.Millisecond)
	if info := c.Info(); info.NumAckPending != 0 || info.NumPending != 1 {
		t.Fatalf("info %+v", info)
	}
	eventually(t, "the request to be dropped", func() bool { return c.Info().NumWaiting == 0 })
}
