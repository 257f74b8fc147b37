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

// pubErrCode returns the err_code of a failed jetstream publish.
func pubErrCode(err error) int {
	var ae *jetstream.APIError
	if errors.As(err, &ae) {
		return int(ae.ErrorCode)
	}
	return 0
}

func TestRetentionLimitsAndDiscard(t *testing.T) {
	g := startJS(t, false, "", "")
	_, js := newJS(t, g.url)
	ctx := ctxT(t)

	old, _ := js.CreateStream(ctx, jetstream.StreamConfig{Name: "OLD", Subjects: []string{"old"}, MaxMsgs: 5})
	for i := 1; i <= 8; i++ {
		if _, err := js.Publish(ctx, "old", []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	if info, _ := old.Info(ctx); info.State.Msgs != 5 || info.State.FirstSeq != 4 || info.State.LastSeq != 8 {
		t.Errorf("discard old: %+v", info.State)
	}

	nw, _ := js.CreateStream(ctx, jetstream.StreamConfig{Name: "NEW", Subjects: []string{"new"}, MaxMsgs: 3, Discard: jetstream.DiscardNew})
	for i := 1; i <= 3; i++ {
		js.Publish(ctx, "new", nil)
	}
	_, err := js.Publish(ctx, "new", nil)
	if pubErrCode(err) != 10077 || !strings.Contains(err.Error(), "maximum messages exceeded") {
		t.Errorf("discard new when full: %v", err)
	}
	if info, _ := nw.Info(ctx); info.State.Msgs != 3 {
		t.Errorf("discard new: %+v", info.State)
	}

	by, _ := js.CreateStream(ctx, jetstream.StreamConfig{Name: "BYTES", Subjects: []string{"bytes"}, MaxBytes: 100, Discard: jetstream.DiscardNew})
	js.Publish(ctx, "bytes", make([]byte, 60))
	if _, err := js.Publish(ctx, "bytes", make([]byte, 60)); pubErrCode(err) != 10077 || !strings.Contains(err.Error(), "bytes") {
		t.Errorf("max bytes, discard new: %v", err)
	}
	if info, _ := by.Info(ctx); info.State.Msgs != 1 {
		t.Errorf("max bytes: %+v", info.State)
	}

	per, _ := js.CreateStream(ctx, jetstream.StreamConfig{Name: "PER", Subjects: []string{"per.*"}, MaxMsgsPerSubject: 2})
	for i := 0; i < 5; i++ {
		js.Publish(ctx, "per.a", nil)
		js.Publish(ctx, "per.b", nil)
	}
	info, _ := per.Info(ctx, jetstream.WithSubjectFilter("per.>"))
	if info.State.Msgs != 4 || info.State.Subjects["per.a"] != 2 || info.State.Subjects["per.b"] != 2 {
		t.Errorf("max per subject: %+v", info.State)
	}

	js.CreateStream(ctx, jetstream.StreamConfig{Name: "SMALL", Subjects: []string{"small"}, MaxMsgSize: 10})
	if _, err := js.Publish(ctx, "small", make([]byte, 11)); pubErrCode(err) != 10054 {
		t.Errorf("message over max size: %v", err)
	}

	age, _ := js.CreateStream(ctx, jetstream.StreamConfig{Name: "AGE", Subjects: []string{"age"}, MaxAge: 200 * time.Millisecond})
	js.Publish(ctx, "age", nil)
	deadline := time.Now().Add(5 * time.Second)
	for {
		info, _ := age.Info(ctx)
		if info.State.Msgs == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("max age: message still there: %+v", info.State)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestDuplicatesAndExpectations(t *testing.T) {
	g := startJS(t, true, "", "")
	_, js := newJS(t, g.url)
	ctx := ctxT(t)
	s, _ := js.CreateStream(ctx, jetstream.StreamConfig{Name: "D", Subjects: []string{"d.>"}, Duplicates: time.Minute})
	a1, err := js.Publish(ctx, "d.1", []byte("x"), jetstream.WithMsgID("id-1"))
	if err != nil || a1.Duplicate {
		t.Fatalf("first: %+v %v", a1, err)
	}
	a2, err := js.Publish(ctx, "d.1", []byte("x"), jetstream.WithMsgID("id-1"))
	if err != nil || !a2.Duplicate || a2.Sequence != a1.Sequence {
		t.Fatalf("duplicate: %+v %v", a2, err)
	}
	if info, _ := s.Info(ctx); info.State.Msgs != 1 {
		t.Errorf("duplicate stored: %+v", info.State)
	}
	m, _ := s.GetMsg(ctx, 1)
	if m.Header.Get("Nats-Msg-Id") != "id-1" {
		t.Errorf("stored headers %v", m.Header)
	}

	cases := []struct {
		name string
		opt  jetstream.PublishOpt
		code int
	}{
		{"wrong last sequence", jetstream.WithExpectLastSequence(7), 10071},
		{"wrong stream", jetstream.WithExpectStream("OTHER"), 10060},
		{"wrong last msg id", jetstream.WithExpectLastMsgID("id-0"), 10070},
		{"wrong last subject sequence", jetstream.WithExpectLastSequencePerSubject(5), 10071},
	}
	for _, c := range cases {
		_, err := js.Publish(ctx, "d.1", nil, c.opt)
		if pubErrCode(err) != c.code {
			t.Errorf("%s: %v, want err_code %d", c.name, err, c.code)
		}
	}
	for _, opt := range []jetstream.PublishOpt{jetstream.WithExpectLastSequence(1), jetstream.WithExpectStream("D"),
		jetstream.WithExpectLastMsgID("id-1"), jetstream.WithExpectLastSequencePerSubject(0)} {
		if _, err := js.Publish(ctx, "d.2", nil, opt); err != nil {
			// The last two run after a publish without an id and on a
			// subject with a message; only their own rule decides.
			if !strings.Contains(err.Error(), "wrong last") {
				t.Errorf("matching expectation refused: %v", err)
			}
		}
	}
	if info, _ := s.Info(ctx); info.State.Msgs < 2 {
		t.Errorf("expected publishes not stored: %+v", info.State)
	}

	// Headers that ask for what ledge's streams do not do are refused.
	before, _ := s.Info(ctx)
	for _, h := range []struct {
		key, value string
		code       int
	}{
		{"Nats-Rollup", "sub", 10111},
		{"Nats-TTL", "1s", 10166},
		{"Nats-Incr", "1", 10168},
		{"Nats-Batch-Id", "b1", 10174},
		{"Nats-Schedule", "@every 1s", 10188},
	} {
		m := nats.NewMsg("d.3")
		m.Header.Set(h.key, h.value)
		if _, err := js.PublishMsg(ctx, m); pubErrCode(err) != h.code {
			t.Errorf("publish with %s: %v, want err_code %d", h.key, err, h.code)
		}
	}
	if after, _ := s.Info(ctx); after.State.Msgs != before.State.Msgs {
		t.Errorf("refused publishes were stored: %d -> %d", before.State.Msgs, after.State.Msgs)
	}
}

func TestDeliverPoliciesAndFilters(t *testing.T) {
	g := startJS(t, false, "", "")
	_, js := newJS(t, g.url)
	ctx := ctxT(t)
	s, _ := js.CreateStream(ctx, jetstream.StreamConfig{Name: "P", Subjects: []string{"p.*"}})
	for i := 1; i <= 6; i++ {
		js.Publish(ctx, fmt.Sprintf("p.%c", 'a'+(i-1)%2), []byte(fmt.Sprint(i))) // a b a b a b
	}
	mid := time.Now()
	time.Sleep(10 * time.Millisecond)
	for i := 7; i <= 8; i++ {
		js.Publish(ctx, fmt.Sprintf("p.%c", 'a'+(i-1)%2), []byte(fmt.Sprint(i)))
	}
	first := func(cfg jetstream.ConsumerConfig) []string {
		t.Helper()
		c, err := s.CreateOrUpdateConsumer(ctx, cfg)
		if err != nil {
			t.Fatalf("%+v: %v", cfg, err)
		}
		b, _ := c.FetchNoWait(20)
		var got []string
		for m := range b.Messages() {
			got = append(got, string(m.Data()))
			m.Ack()
		}
		return got
	}
	cases := []struct {
		name string
		cfg  jetstream.ConsumerConfig
		want string
	}{
		{"all", jetstream.ConsumerConfig{}, "1 2 3 4 5 6 7 8"},
		{"last", jetstream.ConsumerConfig{DeliverPolicy: jetstream.DeliverLastPolicy}, "8"},
		{"new", jetstream.ConsumerConfig{DeliverPolicy: jetstream.DeliverNewPolicy}, ""},
		{"by start sequence", jetstream.ConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: 6}, "6 7 8"},
		{"by start time", jetstream.ConsumerConfig{DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &mid}, "7 8"},
		{"last per subject", jetstream.ConsumerConfig{DeliverPolicy: jetstream.DeliverLastPerSubjectPolicy}, "7 8"},
		{"filter", jetstream.ConsumerConfig{FilterSubject: "p.a"}, "1 3 5 7"},
		{"filters", jetstream.ConsumerConfig{FilterSubjects: []string{"p.b", "p.c"}}, "2 4 6 8"},
		{"last of filter", jetstream.ConsumerConfig{DeliverPolicy: jetstream.DeliverLastPolicy, FilterSubject: "p.a"}, "7"},
	}
	for _, c := range cases {
		c.cfg.AckPolicy = jetstream.AckExplicitPolicy
		if got := strings.Join(first(c.cfg), " "); got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
}

func TestEphemeralAndOrderedConsumers(t *testing.T) {
	g := startJS(t, false, "", "")
	_, js := newJS(t, g.url)
	ctx := ctxT(t)
	s, _ := js.CreateStream(ctx, jetstream.StreamConfig{Name: "E", Subjects: []string{"e"}})
	for i := 0; i < 5; i++ {
		js.Publish(ctx, "e", []byte(fmt.Sprint(i)))
	}
	c, err := s.CreateConsumer(ctx, jetstream.ConsumerConfig{AckPolicy: jetstream.AckNonePolicy, InactiveThreshold: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	name := c.CachedInfo().Name
	if name == "" || c.CachedInfo().Config.Durable != "" {
		t.Fatalf("ephemeral consumer info %+v", c.CachedInfo().Config)
	}
	b, _ := c.Fetch(5, jetstream.FetchMaxWait(2*time.Second))
	n := 0
	for range b.Messages() {
		n++
	}
	if n != 5 {
		t.Fatalf("ephemeral consumer got %d", n)
	}
	// Without pull requests it goes away after its inactive threshold.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := s.Consumer(ctx, name); errors.Is(err, jetstream.ErrConsumerNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("ephemeral consumer outlived its inactive threshold")
		}
		time.Sleep(50 * time.Millisecond)
	}

	oc, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		m, err := oc.Next(jetstream.FetchMaxWait(2 * time.Second))
		if err != nil || string(m.Data()) != fmt.Sprint(i) {
			t.Fatalf("ordered consumer message %d: %v", i, err)
		}
	}
}

func TestPushConsumer(t *testing.T) {
	g := startJS(t, false, "", "")
	nc, js := newJS(t, g.url)
	ctx := ctxT(t)
	js.CreateStream(ctx, jetstream.StreamConfig{Name: "PUSH", Subjects: []string{"push.>"}})
	for i := 0; i < 20; i++ {
		js.Publish(ctx, "push.x", []byte(fmt.Sprint(i)))
	}
	// nats.go's older JetStream context makes push consumers.
	jsc, _ := nc.JetStream()
	sub, err := jsc.SubscribeSync("push.>", nats.Durable("pusher"), nats.IdleHeartbeat(200*time.Millisecond), nats.EnableFlowControl(), nats.AckExplicit())
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		m, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatalf("push message %d: %v", i, err)
		}
		if string(m.Data) != fmt.Sprint(i) {
			t.Fatalf("push message %d: %q", i, m.Data)
		}
		m.AckSync()
	}
	ci, err := sub.ConsumerInfo()
	if err != nil {
		t.Fatal(err)
	}
	if ci.NumAckPending != 0 || ci.AckFloor.Stream != 20 || !ci.PushBound {
		t.Errorf("push consumer info: %+v", ci)
	}

	// A queue group of push subscribers shares the messages.
	var qs [2]*nats.Subscription
	for i := range qs {
		qs[i], err = jsc.QueueSubscribeSync("push.>", "grp", nats.Durable("grp"), nats.AckExplicit())
		if err != nil {
			t.Fatal(err)
		}
	}
	got := 0
	for got < 20 {
		progress := false
		for _, q := range qs {
			if m, err := q.NextMsg(100 * time.Millisecond); err == nil {
				m.Ack()
				got++
				progress = true
			}
		}
		if !progress && ctx.Err() != nil {
			break
		}
	}
	if got != 20 {
		t.Errorf("queue group got %d of 20", got)
	}
}

// TestNoAckStream: a stream with no_ack stores without answering; a
// request to its subject times out rather than failing with no
// responders, as with nats-server.
func TestNoAckStream(t *testing.T) {
	g := startJS(t, false, "", "")
	nc, js := newJS(t, g.url)
	ctx := ctxT(t)
	s, _ := js.CreateStream(ctx, jetstream.StreamConfig{Name: "NA", Subjects: []string{"na"}, NoAck: true})
	_, err := nc.Request("na", []byte("x"), 300*time.Millisecond)
	if !errors.Is(err, nats.ErrTimeout) {
		t.Errorf("request to a no-ack stream: %v, want a timeout", err)
	}
	if info, _ := s.Info(ctx); info.State.Msgs != 1 || !info.Config.NoAck {
		t.Errorf("no-ack stream: %+v", info)
	}
}

// TestAPITrafficVisibleToSubscribers: "nats sub '$JS.>'" sees API requests
// and acks, as with nats-server, and the requester still gets its answer.
func TestAPITrafficVisibleToSubscribers(t *testing.T) {
	g := startJS(t, false, "", "")
	_, js := newJS(t, g.url)
	ctx := ctxT(t)
	watcher := connect(t, g.url)
	sub, _ := watcher.SubscribeSync("$JS.>")
	watcher.Flush()
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "V", Subjects: []string{"v"}})
	if err != nil {
		t.Fatal(err)
	}
	if m := nextMsg(t, sub); m.Subject != "$JS.API.STREAM.CREATE.V" {
		t.Errorf("watcher saw %s", m.Subject)
	}
	js.Publish(ctx, "v", nil)
	c, _ := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "c"})
	ms := fetchN(t, c, 1, 2*time.Second)
	if err := ms[0].DoubleAck(ctx); err != nil {
		t.Fatal(err)
	}
	var pulls, acks int
	for {
		m, err := sub.NextMsg(200 * time.Millisecond)
		if err != nil {
			break
		}
		switch {
		case strings.HasPrefix(m.Subject, "$JS.API.CONSUMER.MSG.NEXT.V.c"):
			pulls++
		case strings.HasPrefix(m.Subject, "$JS.ACK.V.c."):
			acks++
		}
	}
	if pulls == 0 || acks != 1 {
		t.Errorf("watcher saw %d pull requests and %d acks", pulls, acks)
	}
}
