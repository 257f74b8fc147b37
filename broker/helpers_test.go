package broker

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ledgemq/ledge/log"
	"github.com/ledgemq/ledge/router"
)

// recvd is one message or status an outlet carried.
type recvd struct {
	subject string
	msg     Delivery
	payload string
	status  Status
}

// chanOutlet is an Outlet that hands everything to a channel, the way a
// gateway would hand it to a socket.
type chanOutlet struct {
	ch       chan recvd
	mu       sync.Mutex
	noListen map[string]bool
	events   []Event
}

func newOutlet() *chanOutlet {
	return &chanOutlet{ch: make(chan recvd, 10000), noListen: map[string]bool{}}
}

func (o *chanOutlet) Deliver(subject string, d *Delivery) bool {
	r := recvd{subject: subject, msg: *d, payload: string(d.Payload)}
	r.msg.Subject = append([]byte(nil), d.Subject...)
	r.msg.Payload, r.msg.Headers = nil, nil
	o.ch <- r
	return true
}

func (o *chanOutlet) Status(subject string, st Status) {
	o.ch <- recvd{subject: subject, status: st}
}

func (o *chanOutlet) Interest(subject string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return !o.noListen[subject]
}

func (o *chanOutlet) Event(ev Event) {
	o.mu.Lock()
	o.events = append(o.events, ev)
	o.mu.Unlock()
}

func (o *chanOutlet) setListening(subject string, on bool) {
	o.mu.Lock()
	o.noListen[subject] = !on
	o.mu.Unlock()
}

// next returns the next message (skipping statuses unless wantStatus).
func (o *chanOutlet) next(t *testing.T, timeout time.Duration) (recvd, bool) {
	t.Helper()
	select {
	case r := <-o.ch:
		return r, true
	case <-time.After(timeout):
		return recvd{}, false
	}
}

func (o *chanOutlet) mustMsg(t *testing.T) recvd {
	t.Helper()
	for {
		r, ok := o.next(t, 5*time.Second)
		if !ok {
			t.Fatal("no delivery within 5s")
		}
		if r.status.Kind == 0 {
			return r
		}
		if r.status.Kind != StatusHeartbeat {
			t.Fatalf("got status %d, want a message", r.status.Kind)
		}
	}
}

func (o *chanOutlet) quiet(t *testing.T, d time.Duration) {
	t.Helper()
	for {
		r, ok := o.next(t, d)
		if !ok {
			return
		}
		if r.status.Kind == 0 {
			t.Fatalf("unexpected delivery of seq %d (%q)", r.msg.StreamSeq, r.payload)
		}
	}
}

func openBroker(t *testing.T, dir string) (*Broker, *chanOutlet) {
	t.Helper()
	b, err := Open(Options{Dir: dir, SegmentBytes: 1 << 20, StateFlushInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	o := newOutlet()
	b.SetOutlet(o)
	return b, o
}

func mustStream(t *testing.T, b *Broker, cfg StreamConfig) *Stream {
	t.Helper()
	s, err := b.AddStream(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// publish stores a message and waits for its PubAck.
func publish(t *testing.T, s *Stream, subject, payload string, opts ...func(*Message)) PubAck {
	t.Helper()
	ack, err := tryPublish(s, subject, payload, opts...)
	if err != nil {
		t.Fatalf("publish %s: %v", subject, err)
	}
	return ack
}

func tryPublish(s *Stream, subject, payload string, opts ...func(*Message)) (PubAck, error) {
	m := &Message{Subject: []byte(subject), Payload: []byte(payload)}
	for _, o := range opts {
		o(m)
	}
	type res struct {
		ack PubAck
		err error
	}
	ch := make(chan res, 1)
	if err := s.Publish(m, func(a PubAck, err error) { ch <- res{a, err} }); err != nil {
		return PubAck{}, err
	}
	select {
	case r := <-ch:
		return r.ack, r.err
	case <-time.After(10 * time.Second):
		return PubAck{}, fmt.Errorf("no PubAck")
	}
}

func withID(id string) func(*Message) {
	return func(m *Message) {
		m.MsgID = []byte(id)
		m.Headers = append(m.Headers, log.Header{Key: []byte(MsgIDHeader), Value: []byte(id)})
	}
}

func mustConsumer(t *testing.T, s *Stream, cfg ConsumerConfig) *Consumer {
	t.Helper()
	c, err := s.AddConsumer(cfg, CreateOrUpdate)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type captureResult struct{ r router.Result[*Stream] }
