package broker

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ledgemq/ledge/log"
)

// Delivery is one message handed to an Outlet. Its slices point into the
// stream's storage and are valid only during the Deliver call.
type Delivery struct {
	Stream   string
	Consumer string
	Subject  []byte
	Headers  []log.Header
	Payload  []byte
	// Size is the stored size of headers and payload (for HeadersOnly
	// deliveries, whose Payload is empty).
	Size        int
	HeadersOnly bool
	StreamSeq   uint64
	ConsumerSeq uint64
	// Deliveries counts this one: 1 the first time.
	Deliveries int
	// Time is when the message was stored, in Unix nanoseconds.
	Time int64
	// Pending is how many messages the consumer has yet to deliver for
	// the first time after this one.
	Pending uint64
	// Reply is set on flow-control requests only; see Status.
}

// StatusKind is a control message a consumer sends instead of a message.
type StatusKind uint8

const (
	// StatusNoMessages ends a no-wait pull request that found nothing.
	StatusNoMessages StatusKind = iota + 1
	// StatusTimeout ends a pull request whose time ran out.
	StatusTimeout
	// StatusMaxBytes ends a pull request whose next message would exceed
	// its byte budget.
	StatusMaxBytes
	// StatusHeartbeat says the consumer is alive but idle.
	StatusHeartbeat
	// StatusFlowControl asks the receiver to answer on Status.Reply once
	// it has processed what it was sent; a push consumer with flow
	// control sends nothing more until then.
	StatusFlowControl
	// StatusConsumerDeleted ends a pull request whose consumer went away.
	StatusConsumerDeleted
	// StatusMaxWaiting refuses a pull request beyond MaxWaiting.
	StatusMaxWaiting
)

// Status is a control message for a pull request's or a push consumer's
// subject.
type Status struct {
	Kind StatusKind
	// PendingMsgs and PendingBytes are what a closed pull request still
	// had room for.
	PendingMsgs, PendingBytes int
	// Reply is where a flow-control answer goes.
	Reply string
	// LastConsumerSeq and LastStreamSeq ride on heartbeats so a push
	// subscriber can notice a gap.
	LastConsumerSeq, LastStreamSeq uint64
}

// EventKind names an advisory.
type EventKind uint8

const (
	// EventMaxDeliveries: a message reached MaxDeliver and will not be
	// delivered again.
	EventMaxDeliveries EventKind = iota + 1
	// EventTerminated: a message was terminated by its receiver.
	EventTerminated
)

// Event is an advisory about a consumer.
type Event struct {
	Kind       EventKind
	Stream     string
	Consumer   string
	StreamSeq  uint64
	Deliveries int
	Reason     string
}

// Outlet carries a consumer's messages to subjects: the small part of a
// protocol gateway the broker needs. Its methods are called from consumer
// goroutines and must not block or call back into the consumer.
type Outlet interface {
	// Deliver sends d to subject and reports whether anyone took it.
	Deliver(subject string, d *Delivery) bool
	// Status sends a control message to subject.
	Status(subject string, st Status)
	// Interest reports whether anyone subscribes to subject.
	Interest(subject string) bool
	// Event publishes an advisory.
	Event(ev Event)
}

// AckKind is what a receiver says of a delivered message.
type AckKind uint8

const (
	// Ack: processed; the message is done.
	Ack AckKind = iota + 1
	// Nak: not processed; deliver it again, after the given delay.
	Nak
	// InProgress: still working; restart the ack timer.
	InProgress
	// Term: never deliver it again, and do not count it as processed.
	Term
)

// SequencePair is a position in consumer and stream sequence numbers.
type SequencePair struct {
	Consumer uint64
	Stream   uint64
}

// ConsumerInfo is a consumer's configuration and progress: the figures an
// operator reads to find a worker that does not acknowledge.
type ConsumerInfo struct {
	Stream    string
	Name      string
	Config    ConsumerConfig
	Delivered SequencePair
	AckFloor  SequencePair
	// NumAckPending is delivered but not yet acknowledged.
	NumAckPending int
	// NumRedelivered is how many of those were delivered more than once.
	NumRedelivered int
	// NumWaiting is queued pull requests.
	NumWaiting int
	// NumPending is messages not yet delivered (ready).
	NumPending uint64
	// PushBound says a push consumer's subject has a subscriber.
	PushBound bool
}

// PullRequest asks a pull consumer for up to Batch messages, sent to
// Reply.
type PullRequest struct {
	Reply    string
	Batch    int
	MaxBytes int
	// Expires ends the request after this long (0: when the batch is
	// full, or when nobody listens on Reply any more).
	Expires time.Duration
	// NoWait answers at once with what is there, or StatusNoMessages.
	NoWait bool
	// Heartbeat asks for StatusHeartbeat while the request waits.
	Heartbeat time.Duration
}

type pullRequest struct {
	PullRequest
	expires  int64 // Unix nanoseconds, 0: none
	lastBeat int64
	// checked is when the request last found someone listening on its
	// reply subject.
	checked int64
	sent    int
	bytes   int
}

type pendingMsg struct {
	cseq       uint64
	deliveries uint32
	time       int64 // last delivery
	deadline   int64 // redeliver after
	queued     bool  // in the redelivery queue
	size       uint32
	subj       *subjectState
}

// fcEvery is how many messages a flow-controlled push consumer sends
// between flow-control requests.
const fcEvery = 512

// interestRecheck is how often a push consumer without a subscriber looks
// again.
const interestRecheck = 50 * time.Millisecond

// requestRecheck is how often a waiting pull request checks that its
// requester is still there: one whose connection closed would otherwise
// hold a place under MaxWaiting until it expires, or for good.
const requestRecheck = time.Second

// Consumer is a durable cursor on a stream. See the package documentation.
type Consumer struct {
	s      *Stream
	name   string
	dir    string
	outlet Outlet
	// filterp is the subject filter, read without a lock by the stream
	// and other consumers; it changes under both locks (see update).
	filterp atomic.Pointer[subjectFilter]

	// next is the next stream sequence to consider for a first delivery;
	// it changes under the stream's lock (see Stream.advance) and is read
	// without one. numPending counts live, matching messages at or above
	// next.
	next       atomic.Uint64
	numPending atomic.Int64

	mu        sync.Mutex
	cfg       ConsumerConfig
	attached  bool   // outlet set by Attach, not by the broker
	delivered uint64 // consumer sequence
	pending   map[uint64]*pendingMsg
	redeliver []uint64
	waiting   []*pullRequest
	rd        storeReader // first deliveries, at next
	rr        storeReader // redeliveries
	ro        storeReader // owed messages (owed.go)
	rec       log.Record
	d         Delivery
	dirty     bool
	closed    bool
	// owed are the ranges skipped by JumpToTail and not yet delivered,
	// oldest first (owed.go).
	owed []*owedRange
	// lastPer holds, for DeliverLastPerSubject, the sequences to deliver
	// below lastPerUntil; others there are skipped.
	lastPer      map[uint64]bool
	lastPerUntil uint64
	// Push consumers.
	lastSent   int64
	sinceFC    int
	fcReply    string
	fcSent     int64
	fcNext     uint64
	lastActive int64
	// doneBuf gathers messages done at delivery (AckNone) for the
	// stream's retention, which is told outside the lock.
	doneBuf []doneMsg
	// wakeAt is when dispatchLocked wants to run next (0: on a wake-up).
	wakeAt int64
	// minDeadline is at or below the earliest deadline in pending (0:
	// none known), so that a dispatch with nothing due does not scan a
	// large pending set: it did on every wake, a third of the CPU of an
	// MQTT QoS 1 benchmark with 10,000 messages in flight.
	minDeadline int64

	kick chan struct{}
	quit chan struct{}
	done chan struct{}
}

func (c *Consumer) filter() subjectFilter { return *c.filterp.Load() }

// Name returns the consumer's name.
func (c *Consumer) Name() string { return c.name }

// Stream returns the consumer's stream.
func (c *Consumer) Stream() *Stream { return c.s }

// Config returns a copy of the consumer's configuration.
func (c *Consumer) Config() ConsumerConfig {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cfg
}

func (c *Consumer) wake() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// stored is told, under the stream's lock, of a new message.
func (c *Consumer) stored(seq uint64, subject string) {
	if len(c.filter()) == 0 || c.filter().matches([]byte(subject)) {
		c.numPending.Add(1)
	}
}

// removed is told, under the stream's lock, that a message is gone.
func (c *Consumer) removed(seq uint64, subj *subjectState) {
	below := seq < c.next.Load()
	if below && len(c.owed) == 0 {
		return
	}
	wanted := subj == nil || len(c.filter()) == 0 || c.filter().matches([]byte(subj.name))
	switch {
	case below:
		c.owedRemoved(seq, wanted)
	case wanted:
		c.numPending.Add(-1)
	}
}

// purged is told, under the stream's lock, that everything below first is
// gone.
func (c *Consumer) purged(first uint64) {
	if c.next.Load() < first {
		c.next.Store(first)
	}
	c.numPending.Store(0)
	c.owedPurged(first)
}

// Pull queues a request for messages.
func (c *Consumer) Pull(req PullRequest) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrConsumerNotFound
	}
	if !c.cfg.IsPull() {
		return ErrNotPull
	}
	if req.Batch <= 0 {
		req.Batch = 1
	}
	if req.Reply == "" {
		return fmt.Errorf("%w: a pull request needs a reply subject", ErrBadRequest)
	}
	cfg := &c.cfg
	switch {
	case cfg.MaxRequestBatch > 0 && req.Batch > cfg.MaxRequestBatch:
		return fmt.Errorf("%w: exceeded max request batch of %d", ErrBadRequest, cfg.MaxRequestBatch)
	case cfg.MaxRequestMaxBytes > 0 && req.MaxBytes > cfg.MaxRequestMaxBytes:
		return fmt.Errorf("%w: exceeded max request max bytes of %d", ErrBadRequest, cfg.MaxRequestMaxBytes)
	case cfg.MaxRequestExpires > 0 && req.Expires > cfg.MaxRequestExpires:
		return fmt.Errorf("%w: exceeded max request expires of %v", ErrBadRequest, cfg.MaxRequestExpires)
	case req.MaxBytes < 0 || req.Expires < 0 || req.Heartbeat < 0:
		return fmt.Errorf("%w: negative value", ErrBadRequest)
	case req.Heartbeat > 0 && req.Expires > 0 && req.Heartbeat*2 > req.Expires:
		return fmt.Errorf("%w: heartbeat must be less than half of expires", ErrBadRequest)
	}
	if len(c.waiting) >= cfg.MaxWaiting {
		return ErrMaxWaiting
	}
	now := time.Now().UnixNano()
	r := &pullRequest{PullRequest: req, lastBeat: now, checked: now}
	if req.Expires > 0 {
		r.expires = now + int64(req.Expires)
	}
	c.waiting = append(c.waiting, r)
	c.lastActive = now
	c.wake()
	return nil
}

// Ack records what the receiver says of the message at stream sequence
// seq. delay applies to Nak. Under AckAll an Ack also acknowledges every
// earlier pending message.
func (c *Consumer) Ack(seq uint64, kind AckKind, delay time.Duration) error {
	return c.ack(seq, kind, delay, "")
}

// Terminate is Ack with Term and the receiver's reason, which the
// advisory carries.
func (c *Consumer) Terminate(seq uint64, reason string) error {
	return c.ack(seq, Term, 0, reason)
}

func (c *Consumer) ack(seq uint64, kind AckKind, delay time.Duration, reason string) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrConsumerNotFound
	}
	now := time.Now().UnixNano()
	c.lastActive = now
	p := c.pending[seq]
	if p == nil {
		c.mu.Unlock()
		return ErrUnknownDelivery
	}
	var done []doneMsg
	switch kind {
	case Ack, Term:
		if kind == Ack && c.cfg.AckPolicy == AckAll {
			for s2, p2 := range c.pending {
				if s2 < seq {
					done = append(done, doneMsg{s2, p2})
					delete(c.pending, s2)
				}
			}
		}
		done = append(done, doneMsg{seq, p})
		delete(c.pending, seq)
		c.dirty = true
		if kind == Term {
			ev := Event{Kind: EventTerminated, Stream: c.s.name, Consumer: c.name, StreamSeq: seq, Deliveries: int(p.deliveries), Reason: reason}
			if c.outlet != nil {
				c.outlet.Event(ev)
			}
		}
	case Nak:
		p.deadline = now + int64(delay)
		c.noteDeadline(p.deadline)
		if delay <= 0 && !p.queued {
			p.queued = true
			c.redeliver = append(c.redeliver, seq)
		}
	case InProgress:
		p.deadline = now + int64(c.ackWait(p.deliveries))
		c.noteDeadline(p.deadline)
	default:
		c.mu.Unlock()
		return fmt.Errorf("%w: ack kind %d", ErrBadRequest, kind)
	}
	c.mu.Unlock()
	c.wake()
	if len(done) > 0 {
		c.s.acked(c, done)
	}
	return nil
}

type doneMsg struct {
	seq uint64
	p   *pendingMsg
}

// ackWait is the ack deadline after the n-th delivery.
func (c *Consumer) ackWait(deliveries uint32) time.Duration {
	if n := len(c.cfg.BackOff); n > 0 {
		i := int(deliveries) - 1
		if i >= n {
			i = n - 1
		}
		if i < 0 {
			i = 0
		}
		return c.cfg.BackOff[i]
	}
	return c.cfg.AckWait
}

// Attach makes o this consumer's outlet instead of the broker's: a
// session-bound consumer (an MQTT session, an AMQP basic.consume) delivers
// to its own connection. Attach(nil) pauses deliveries until the next
// Attach.
func (c *Consumer) Attach(o Outlet) {
	c.mu.Lock()
	c.outlet = o
	c.attached = true
	c.mu.Unlock()
	c.wake()
}

// Detach pauses deliveries if o is still the consumer's outlet: a session
// that closes must not detach the connection that took its place.
func (c *Consumer) Detach(o Outlet) {
	c.mu.Lock()
	if c.outlet == o {
		c.outlet = nil
	}
	c.mu.Unlock()
}

// TrimPending skips the oldest messages not yet delivered until at most
// keep remain, and returns how many it skipped: the policy of a bounded
// queue (an MQTT session's backlog) that drops its oldest when full.
// Messages already delivered and unacknowledged are not touched.
func (c *Consumer) TrimPending(keep uint64) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var skipped uint64
	for c.numPending.Load() > int64(keep) && !c.closed {
		if c.rd == nil {
			rd, err := c.s.st.newReader(int64(c.next.Load() - 1))
			if err != nil {
				break
			}
			c.rd = rd
		}
		want := int64(c.next.Load() - 1)
		if c.rd.offset() != want {
			if err := c.rd.seek(want); err != nil {
				break
			}
		}
		c.rd.release()
		if err := c.rd.next(&c.rec); err != nil {
			break
		}
		seq := uint64(c.rec.Offset) + 1
		match := c.filter().matches(c.rec.Subject)
		if c.s.advance(c, seq, match) && match {
			skipped++
		}
	}
	if skipped > 0 {
		c.dirty = true
	}
	return skipped
}

// RedeliverPending makes every delivered but unacknowledged message due at
// once, in sequence order: a resumed MQTT session must be sent again what
// it had not acknowledged (MQTT-4.4.0-1), before anything new.
func (c *Consumer) RedeliverPending() {
	c.mu.Lock()
	for seq, p := range c.pending {
		if !p.queued {
			p.queued = true
			c.redeliver = append(c.redeliver, seq)
		}
	}
	c.mu.Unlock()
	c.wake()
}

// FlowControlReply tells a push consumer its flow-control request was
// answered.
func (c *Consumer) FlowControlReply(reply string) {
	c.mu.Lock()
	if c.fcReply == reply {
		c.fcReply = ""
		c.sinceFC = 0
	}
	c.mu.Unlock()
	c.wake()
}

// Info returns the consumer's configuration and progress.
func (c *Consumer) Info() ConsumerInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	floor, floorC := c.ackFloorLocked()
	info := ConsumerInfo{
		Stream:        c.s.name,
		Name:          c.name,
		Config:        c.cfg,
		Delivered:     SequencePair{Consumer: c.delivered, Stream: c.next.Load() - 1},
		AckFloor:      SequencePair{Consumer: floorC, Stream: floor},
		NumAckPending: len(c.pending),
		NumWaiting:    len(c.waiting),
		NumPending:    uint64(max(c.numPending.Load(), 0) + c.owedPending()),
	}
	for _, p := range c.pending {
		if p.deliveries > 1 {
			info.NumRedelivered++
		}
	}
	if !c.cfg.IsPull() && c.outlet != nil {
		info.PushBound = c.outlet.Interest(c.cfg.DeliverSubject)
	}
	return info
}

// ackFloorLocked returns the highest stream sequence (and its consumer
// sequence) at or below which every delivered message is acknowledged.
func (c *Consumer) ackFloorLocked() (uint64, uint64) {
	minS, minC := c.next.Load(), c.delivered+1
	for seq, p := range c.pending {
		minS = min(minS, seq)
		minC = min(minC, p.cseq)
	}
	// What is owed was never delivered, so has no consumer sequence: the
	// floor's stays that of the oldest delivery still pending.
	for _, r := range c.owed {
		if next := r.next.Load(); next < r.end {
			minS = min(minS, next)
		}
	}
	return minS - 1, minC - 1
}

// hasAcked reports whether the consumer is done with seq: acknowledged,
// or never going to want it.
func (c *Consumer) hasAcked(seq uint64, subject string) bool {
	if !c.filter().matches([]byte(subject)) {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lastPer != nil && seq < c.lastPerUntil && !c.lastPer[seq] {
		return true
	}
	return seq < c.next.Load() && c.pending[seq] == nil && !c.owesLocked(seq)
}

// run delivers until the consumer is stopped.
func (c *Consumer) run() {
	defer close(c.done)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		changed := c.s.st.changed()
		c.mu.Lock()
		wakeAt, wantData := c.dispatchLocked(time.Now().UnixNano())
		done := c.doneBuf
		c.doneBuf = nil
		c.mu.Unlock()
		if len(done) > 0 {
			c.s.acked(c, done)
		}
		if !wantData {
			changed = nil
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		if wakeAt > 0 {
			timer.Reset(time.Duration(wakeAt - time.Now().UnixNano()))
		}
		select {
		case <-changed:
		case <-c.kick:
		case <-timer.C:
		case <-c.quit:
			return
		}
	}
}

// dispatchLocked expires and heartbeats requests, queues due redeliveries
// and delivers what it can. It returns when to run again (0: only on a
// wake-up) and whether new messages in the stream would let it deliver.
func (c *Consumer) dispatchLocked(now int64) (wakeAt int64, wantData bool) {
	if c.closed || c.outlet == nil {
		return 0, false
	}
	c.wakeAt = 0
	soon := c.soon
	defer func() { wakeAt = c.wakeAt }()
	push := !c.cfg.IsPull()
	if push {
		if c.outlet.Interest(c.cfg.DeliverSubject) {
			c.lastActive = now
		} else {
			soon(now + int64(interestRecheck))
			return wakeAt, false
		}
	} else {
		c.expireRequestsLocked(now, soon)
	}
	if c.minDeadline != 0 && now < c.minDeadline {
		// Nothing pending is due: no need to look at each of them.
		soon(c.minDeadline)
	} else {
		c.scanDeadlinesLocked(now, soon)
	}
	if len(c.redeliver) > 1 {
		sort.Slice(c.redeliver, func(i, j int) bool { return c.redeliver[i] < c.redeliver[j] })
	}
	for {
		if push {
			if c.cfg.FlowControl && c.fcReply != "" {
				// Waiting for the receiver: ask again each heartbeat.
				if now-c.fcSent >= int64(c.cfg.IdleHeartbeat) {
					c.sendFlowControlLocked(now)
				}
				soon(c.fcSent + int64(c.cfg.IdleHeartbeat))
				break
			}
		} else if len(c.waiting) == 0 {
			break
		}
		ok, more := c.deliverOneLocked(now)
		if !ok {
			wantData = more
			break
		}
	}
	if !push {
		c.finishNoWaitLocked()
		for _, r := range c.waiting {
			if r.Heartbeat > 0 {
				if now-r.lastBeat >= int64(r.Heartbeat) {
					r.lastBeat = now
					c.outlet.Status(r.Reply, Status{Kind: StatusHeartbeat})
				}
				soon(r.lastBeat + int64(r.Heartbeat))
			}
		}
	} else if hb := int64(c.cfg.IdleHeartbeat); hb > 0 {
		if now-c.lastSent >= hb {
			c.lastSent = now
			floorC := c.delivered
			c.outlet.Status(c.cfg.DeliverSubject, Status{Kind: StatusHeartbeat, LastConsumerSeq: floorC, LastStreamSeq: c.next.Load() - 1})
		}
		soon(c.lastSent + hb)
	}
	return wakeAt, wantData
}

// noteDeadline keeps minDeadline at or below every pending deadline. A
// deadline that goes away leaves it early, which costs one scan.
func (c *Consumer) noteDeadline(d int64) {
	if c.minDeadline == 0 || d < c.minDeadline {
		c.minDeadline = d
	}
}

// scanDeadlinesLocked queues the pending messages that are due for
// redelivery, drops those past MaxDeliver, and recomputes minDeadline.
func (c *Consumer) scanDeadlinesLocked(now int64, soon func(int64)) {
	c.minDeadline = 0
	for seq, p := range c.pending {
		switch {
		case p.queued:
		case p.deadline > now:
			soon(p.deadline)
			c.noteDeadline(p.deadline)
		case c.cfg.MaxDeliver > 0 && int(p.deliveries) >= c.cfg.MaxDeliver:
			// Its last delivery timed out: it leaves the pending set and
			// the advisory goes out now, not at the next delivery.
			delete(c.pending, seq)
			c.dirty = true
			c.outlet.Event(Event{Kind: EventMaxDeliveries, Stream: c.s.name, Consumer: c.name, StreamSeq: seq, Deliveries: int(p.deliveries)})
		default:
			p.queued = true
			c.redeliver = append(c.redeliver, seq)
		}
	}
}

// soon asks dispatchLocked's caller to run it again by t.
func (c *Consumer) soon(t int64) {
	if t > 0 && (c.wakeAt == 0 || t < c.wakeAt) {
		c.wakeAt = t
	}
}

// expireRequestsLocked ends pull requests whose time ran out.
func (c *Consumer) expireRequestsLocked(now int64, soon func(int64)) {
	kept := c.waiting[:0]
	for _, r := range c.waiting {
		if r.expires > 0 && r.expires <= now {
			c.endRequestLocked(r, StatusTimeout)
			continue
		}
		if now-r.checked >= int64(requestRecheck) {
			if !c.outlet.Interest(r.Reply) {
				continue
			}
			r.checked = now
		}
		soon(r.checked + int64(requestRecheck))
		soon(r.expires)
		kept = append(kept, r)
	}
	clear(c.waiting[len(kept):])
	c.waiting = kept
}

// endRequestLocked tells a pull request's receiver it is over.
func (c *Consumer) endRequestLocked(r *pullRequest, kind StatusKind) {
	st := Status{Kind: kind, PendingMsgs: r.Batch - r.sent}
	if r.MaxBytes > 0 {
		st.PendingBytes = r.MaxBytes - r.bytes
	}
	c.outlet.Status(r.Reply, st)
}

// finishNoWaitLocked answers the no-wait requests left once nothing more
// can be delivered.
func (c *Consumer) finishNoWaitLocked() {
	kept := c.waiting[:0]
	for _, r := range c.waiting {
		if r.NoWait {
			if r.sent == 0 {
				c.endRequestLocked(r, StatusNoMessages)
			} else {
				c.endRequestLocked(r, StatusTimeout)
			}
			continue
		}
		kept = append(kept, r)
	}
	clear(c.waiting[len(kept):])
	c.waiting = kept
}

// deliverOneLocked delivers one message: a due redelivery first, else the
// next new one. ok is false when nothing was delivered; more says that a
// new message in the stream would change that.
func (c *Consumer) deliverOneLocked(now int64) (ok, more bool) {
	for len(c.redeliver) > 0 {
		seq := c.redeliver[0]
		c.redeliver = c.redeliver[1:]
		p := c.pending[seq]
		if p == nil || !p.queued {
			continue
		}
		p.queued = false
		if !c.s.isLive(seq) {
			delete(c.pending, seq)
			c.dirty = true
			continue
		}
		if c.cfg.MaxDeliver > 0 && int(p.deliveries) >= c.cfg.MaxDeliver {
			// Dropped from pending: it will not be delivered again, and the
			// ack floor may pass it.
			delete(c.pending, seq)
			c.dirty = true
			c.outlet.Event(Event{Kind: EventMaxDeliveries, Stream: c.s.name, Consumer: c.name, StreamSeq: seq, Deliveries: int(p.deliveries)})
			continue
		}
		if err := c.readLocked(&c.rr, seq); err != nil {
			delete(c.pending, seq)
			c.dirty = true
			continue
		}
		if !c.sendLocked(seq, p, now) {
			// No receiver for it now: back at the head of the queue.
			p.queued = true
			c.redeliver = append([]uint64{seq}, c.redeliver...)
			return false, false
		}
		return true, false
	}
	if c.cfg.MaxAckPending > 0 && len(c.pending) >= c.cfg.MaxAckPending {
		return false, false
	}
	for {
		if c.rd == nil {
			rd, err := c.s.st.newReader(int64(c.next.Load() - 1))
			if err != nil {
				return false, true
			}
			c.rd = rd
		}
		want := int64(c.next.Load() - 1)
		if c.rd.offset() < want {
			if err := c.rd.seek(want); err != nil {
				return false, true
			}
		}
		c.rd.release()
		err := c.rd.next(&c.rec)
		if err != nil {
			var ce *log.CorruptError
			switch {
			case err == io.EOF:
				if len(c.owed) > 0 {
					return c.deliverOwedLocked(now)
				}
				return false, true
			case errors.Is(err, log.ErrOffsetOutOfRange):
				first := c.s.st.firstOffset()
				c.s.skipTo(c, uint64(first)+1)
				_ = c.rd.seek(first)
				continue
			case errors.As(err, &ce) && ce.Next > want:
				c.s.skipTo(c, uint64(ce.Next)+1)
				_ = c.rd.seek(ce.Next)
				continue
			}
			return false, true
		}
		seq := uint64(c.rec.Offset) + 1
		match := c.filter().matches(c.rec.Subject)
		if match && c.lastPer != nil && seq < c.lastPerUntil && !c.lastPer[seq] {
			match = false
		}
		if !c.s.advance(c, seq, match) || !match {
			continue
		}
		if c.lastPer != nil && seq >= c.lastPerUntil {
			c.lastPer = nil
		}
		p := &pendingMsg{}
		if !c.sendLocked(seq, p, now) {
			// Put it back: the reader and next step back to it.
			c.s.unadvance(c, seq)
			_ = c.rd.seek(int64(seq - 1))
			return false, false
		}
		return true, false
	}
}

// readLocked reads seq into c.rec with the given reader.
func (c *Consumer) readLocked(rd *storeReader, seq uint64) error {
	if *rd == nil {
		r, err := c.s.st.newReader(int64(seq - 1))
		if err != nil {
			return err
		}
		*rd = r
	}
	(*rd).release()
	if err := readAt(*rd, int64(seq-1), &c.rec); err != nil {
		return err
	}
	if c.rec.Offset != int64(seq-1) {
		return ErrNoMessage
	}
	return nil
}

// sendLocked hands c.rec (at seq) to the outlet as the next delivery of p,
// and records it. It returns false, changing nothing, when no target can
// take it now.
func (c *Consumer) sendLocked(seq uint64, p *pendingMsg, now int64) bool {
	size := msgSize(nil, c.rec.Headers, c.rec.Payload)
	var subject string
	if c.cfg.IsPull() {
		for {
			if len(c.waiting) == 0 {
				return false
			}
			r := c.waiting[0]
			if r.MaxBytes > 0 && r.bytes+size > r.MaxBytes {
				c.endRequestLocked(r, StatusMaxBytes)
				c.popRequestLocked()
				continue
			}
			if !c.outlet.Interest(r.Reply) {
				// Its requester went away (a closed connection): a message
				// sent there would sit unacknowledged until AckWait.
				c.popRequestLocked()
				continue
			}
			subject = r.Reply
			r.sent++
			r.bytes += size
			r.lastBeat = now
			switch {
			case r.sent >= r.Batch:
				c.popRequestLocked()
			case len(c.waiting) > 1:
				// Round robin: a request with room left waits behind the
				// others, so competing workers share the messages instead
				// of the oldest request taking them all. Rotated in place:
				// a slice popped at the front and appended at the back
				// would allocate every few messages.
				copy(c.waiting, c.waiting[1:])
				c.waiting[len(c.waiting)-1] = r
			}
			break
		}
	} else {
		subject = c.cfg.DeliverSubject
	}
	c.delivered++
	p.cseq = c.delivered
	p.deliveries++
	p.time = now
	d := &c.d
	*d = Delivery{
		Stream:      c.s.name,
		Consumer:    c.name,
		Subject:     c.rec.Subject,
		Headers:     c.rec.Headers,
		Payload:     c.rec.Payload,
		Size:        size,
		HeadersOnly: c.cfg.HeadersOnly,
		StreamSeq:   seq,
		ConsumerSeq: c.delivered,
		Deliveries:  int(p.deliveries),
		Time:        c.rec.Time,
		Pending:     uint64(max(c.numPending.Load(), 0) + c.owedPending()),
	}
	if c.cfg.HeadersOnly {
		d.Payload = nil
	}
	c.outlet.Deliver(subject, d)
	c.lastSent = now
	c.dirty = true
	if p.subj == nil {
		p.subj = c.s.subjectOf(c.rec.Subject)
		p.size = uint32(size + len(c.rec.Subject))
	}
	if c.cfg.AckPolicy == AckNone {
		delete(c.pending, seq)
		if c.s.retention != LimitsPolicy {
			// Done at delivery; the stream is told once the lock is
			// released (see run).
			c.doneBuf = append(c.doneBuf, doneMsg{seq, p})
		}
	} else {
		p.deadline = now + int64(c.ackWait(p.deliveries))
		c.noteDeadline(p.deadline)
		c.soon(p.deadline)
		c.pending[seq] = p
	}
	if !c.cfg.IsPull() && c.cfg.FlowControl {
		if c.sinceFC++; c.sinceFC >= fcEvery {
			c.sendFlowControlLocked(now)
		}
	}
	return true
}

func (c *Consumer) popRequestLocked() {
	c.waiting[0] = nil
	c.waiting = c.waiting[1:]
}

func (c *Consumer) sendFlowControlLocked(now int64) {
	if c.fcReply == "" {
		c.fcNext++
		c.fcReply = fmt.Sprintf("$JS.FC.%s.%s.%d", c.s.name, c.name, c.fcNext)
	}
	c.fcSent = now
	c.outlet.Status(c.cfg.DeliverSubject, Status{Kind: StatusFlowControl, Reply: c.fcReply})
}

// stateLocked returns what the consumer saves.
func (c *Consumer) stateLocked() *consumerState {
	floor, floorC := c.ackFloorLocked()
	st := &consumerState{next: c.next.Load(), delivered: c.delivered, ackFloor: floor, ackFloorC: floorC}
	st.pending = make([]pendingState, 0, len(c.pending))
	for seq, p := range c.pending {
		st.pending = append(st.pending, pendingState{seq: seq, cseq: p.cseq, deliveries: p.deliveries, time: p.time})
	}
	sort.Slice(st.pending, func(i, j int) bool { return st.pending[i].seq < st.pending[j].seq })
	for _, r := range c.owed {
		if next := r.next.Load(); next < r.end {
			st.owed = append(st.owed, owedState{next: next, end: r.end})
		}
	}
	return st
}

// saveLocked writes the consumer's state if it changed.
func (c *Consumer) saveLocked(force bool) error {
	if !c.dirty && !force {
		return nil
	}
	c.dirty = false
	return writeFileAtomic(filepath.Join(c.dir, stateFile), encodeConsumerState(c.stateLocked()))
}

// restoreLocked takes up a saved state.
func (c *Consumer) restoreLocked(st consumerState) {
	c.next.Store(max(st.next, 1))
	c.delivered = st.delivered
	for _, ps := range st.pending {
		c.pending[ps.seq] = &pendingMsg{
			cseq:       ps.cseq,
			deliveries: ps.deliveries,
			time:       ps.time,
			deadline:   ps.time + int64(c.ackWait(ps.deliveries)),
		}
		c.noteDeadline(c.pending[ps.seq].deadline)
	}
	c.owed = c.owed[:0]
	for _, o := range st.owed {
		r := &owedRange{end: o.end}
		r.next.Store(o.next)
		c.owed = append(c.owed, r)
	}
}

// stop ends the delivery goroutine; pull requests waiting are told.
func (c *Consumer) stop(deleted bool) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	if deleted && c.outlet != nil {
		for _, r := range c.waiting {
			c.outlet.Status(r.Reply, Status{Kind: StatusConsumerDeleted})
		}
	}
	c.waiting = nil
	c.mu.Unlock()
	close(c.quit)
	<-c.done
	c.mu.Lock()
	if c.rd != nil {
		c.rd.close()
		c.rd = nil
	}
	if c.rr != nil {
		c.rr.close()
		c.rr = nil
	}
	if c.ro != nil {
		c.ro.close()
		c.ro = nil
	}
	c.mu.Unlock()
}
