package stompgw

import (
	"bytes"
	"sort"
	"strconv"

	"github.com/ledgemq/ledge/amqpgw"
	lnet "github.com/ledgemq/ledge/net"
	"github.com/ledgemq/ledge/stompgw/frame"
)

// ackMode is a subscription's ack header.
type ackMode uint8

const (
	ackAuto       ackMode = iota // acknowledged as sent
	ackClient                    // an ACK acknowledges it and every earlier one
	ackIndividual                // an ACK acknowledges that one message
)

// subscription is a SUBSCRIBE: a consumer of one queue, delivering MESSAGE
// frames to the connection. It is the consumer's amqpgw.Sink.
type subscription struct {
	s    *session
	id   string
	mode ackMode
	// queue is the queue consumed; durable says UNSUBSCRIBE with
	// durable:true deletes it (a durable topic subscription's).
	queue   string
	durable bool
	// dest and prefetch are SUBSCRIBE's destination and prefetch-count,
	// for monitoring.
	dest     string
	prefetch int
	// fixedDest is the destination header of every MESSAGE when it is
	// not where the message was sent (a temporary queue's).
	fixedDest []byte
	// msgID and ackID are "message-id:ID@@" and "ack:ID@@", escaped: a
	// message's ids are these and a number.
	msgID, ackID []byte
	amqp         *amqpgw.Subscription

	// Under the session's outMu.
	nextTag uint64
	pend    pendingList
	gone    bool
}

func (s *session) newSubscription(id string, mode ackMode) *subscription {
	v := s.version
	sub := &subscription{s: s, id: id, mode: mode}
	sub.msgID = frame.AppendValue(append([]byte(nil), "message-id:"...), v, frame.MESSAGE, id)
	sub.msgID = append(sub.msgID, "@@"...)
	sub.ackID = frame.AppendValue(append([]byte(nil), "ack:"...), v, frame.MESSAGE, id)
	sub.ackID = append(sub.ackID, "@@"...)
	return sub
}

// Deliver writes a MESSAGE frame; it runs on the queue's consumer
// goroutine.
func (sub *subscription) Deliver(d *amqpgw.Delivery) bool {
	s := sub.s
	s.outMu.Lock()
	defer s.outMu.Unlock()
	if s.closed || sub.gone {
		return false
	}
	sub.nextTag++
	tag := sub.nextTag
	s.wbuf = sub.appendMessage(s.wbuf[:0], d, tag)
	if err := s.outLocked(s.wbuf); err != nil {
		// Cut off as a slow consumer: the message goes back to the queue.
		return false
	}
	s.trimLocked()
	s.countOutLocked(len(d.Body))
	if sub.mode != ackAuto {
		sub.pend.push(tag, d.Seq)
	}
	return true
}

// appendMessage encodes a delivery as a MESSAGE frame.
func (sub *subscription) appendMessage(b []byte, d *amqpgw.Delivery, tag uint64) []byte {
	v := sub.s.version
	const c = frame.MESSAGE
	b = frame.AppendCommand(b, c)
	b = frame.AppendHeader(b, v, c, "subscription", sub.id)
	if sub.fixedDest != nil {
		b = append(b, sub.fixedDest...)
	} else {
		b = appendDestination(b, v, d.Exchange, d.RoutingKey)
	}
	b = append(b, sub.msgID...)
	b = strconv.AppendUint(b, tag, 10)
	b = append(b, '\n')
	if v >= frame.V12 && sub.mode != ackAuto {
		b = append(b, sub.ackID...)
		b = strconv.AppendUint(b, tag, 10)
		b = append(b, '\n')
	}
	if d.Redelivered {
		b = append(b, "redelivered:true\n"...)
	}
	p := &d.Properties
	if p.DeliveryMode == 2 {
		b = append(b, "persistent:true\n"...)
	}
	str := func(name string, val []byte) {
		if val != nil {
			b = frame.AppendHeader(b, v, c, name, val)
		}
	}
	str("content-type", p.ContentType)
	str("content-encoding", p.ContentEncoding)
	if p.HasPriority {
		b = frame.AppendHeaderUint(b, "priority", uint64(p.Priority))
	}
	str("correlation-id", p.CorrelationID)
	if p.ReplyTo != nil {
		b = appendStompReplyTo(b, v, p.ReplyTo)
	}
	str("expiration", p.Expiration)
	str("amqp-message-id", p.MessageID)
	if p.HasTimestamp && p.Timestamp >= 0 {
		b = frame.AppendHeaderUint(b, "timestamp", uint64(p.Timestamp))
	}
	str("type", p.Type)
	str("user-id", p.UserID)
	str("app-id", p.AppID)
	for _, h := range p.Headers {
		if !reservedMessageHeader(h.Key) {
			b = frame.AppendHeader(b, v, c, h.Key, h.Value)
		}
	}
	return frame.AppendBody(b, d.Body)
}

// reservedMessageHeader says an application header would shadow one the
// gateway writes on MESSAGE, and is left out.
func reservedMessageHeader(k []byte) bool {
	switch string(k) {
	case "content-length", "subscription", "destination", "message-id", "ack", "redelivered":
		return true
	}
	return false
}

// Do runs fn on the connection's loop.
func (sub *subscription) Do(fn func()) bool {
	return sub.s.c.Do(func(*lnet.Conn) { fn() }) == nil
}

// Congested reports the connection's outbound queue over half full.
func (sub *subscription) Congested() bool { return sub.s.c.Congested() }

// Cancelled is the queue's deletion: as in RabbitMQ, the client is told
// with an ERROR, after which STOMP closes the connection.
func (sub *subscription) Cancelled() {
	s := sub.s
	_ = s.c.Do(func(c *lnet.Conn) {
		if s.subs[sub.id] != sub {
			return
		}
		delete(s.subs, sub.id)
		c.Close(s.failReceipt("", "subscription cancelled", "the queue '"+sub.queue+"' of subscription "+strconv.Quote(sub.id)+" was deleted"))
	})
}

// subscribe serves SUBSCRIBE.
func (s *session) subscribe(f *frame.Frame) error {
	destB, ok := f.Get("destination")
	if !ok {
		return s.fail(f, "missing header", "SUBSCRIBE needs a destination header")
	}
	d, ok := parseDest(destB)
	if !ok {
		return s.fail(f, "invalid destination", printable(destB)+": "+destHelp)
	}
	idB, ok := f.Get("id")
	if !ok {
		if s.version >= frame.V11 {
			return s.fail(f, "missing header", "SUBSCRIBE needs an id header")
		}
		idB = destB // STOMP 1.0: the destination names the subscription
	}
	id := string(idB)
	if s.subs[id] != nil {
		return s.fail(f, "duplicated subscription identifier", "a subscription with id "+printable(idB)+" already exists")
	}
	mode := ackAuto
	switch a, _ := f.Get("ack"); string(a) {
	case "", "auto":
	case "client":
		mode = ackClient
	case "client-individual":
		mode = ackIndividual
	default:
		return s.fail(f, "invalid ack mode", "ack must be auto, client or client-individual, not "+printable(a))
	}
	prefetch := 0
	if p, ok := f.Get("prefetch-count"); ok {
		n, err := strconv.ParseUint(string(p), 10, 31)
		if err != nil {
			return s.fail(f, "invalid header", "prefetch-count must be a non-negative number, not "+printable(p))
		}
		prefetch = int(n)
	}
	durableSub := headerTrue(f, "durable") || headerTrue(f, "persistent")
	copts := amqpgw.ConsumeOptions{Prefetch: prefetch, NoAck: mode == ackAuto, Owner: s.owner, Exclusive: headerTrue(f, "exclusive") && d.kind != destQueue}
	sub := s.newSubscription(id, mode)
	sub.dest, sub.prefetch = string(destB), prefetch
	receipt := ""
	if r, ok := f.Get("receipt"); ok {
		receipt = string(r)
	}

	// plan says what to declare and bind off the loop; an existing queue
	// is consumed at once.
	var plan struct {
		queue   string
		declare bool
		opts    amqpgw.QueueOptions
		bindX   string
		bindKey string
		temp    *tempReq
	}
	switch d.kind {
	case destAmqQueue:
		plan.queue = string(d.name)
	case destQueue:
		opts, given, e := queueHeaders(f, amqpgw.QueueOptions{Durable: true})
		if e != "" {
			return s.fail(f, "invalid queue property", e)
		}
		plan.queue, plan.opts = string(d.name), opts
		plan.declare = given || !s.srv.amqp.HasQueue(d.name)
	case destTopic, destExchange:
		x, key := "amq.topic", string(d.key)
		if d.kind == destExchange {
			x = string(d.name)
			if !s.srv.amqp.HasExchange(d.name) {
				return s.fail(f, "not_found", "NOT_FOUND - no exchange '"+x+"' in vhost '/'")
			}
		}
		plan.declare, plan.bindX, plan.bindKey = true, x, key
		if durableSub {
			// RabbitMQ's convention: a durable subscription is a durable
			// queue named for its id (and the connection's client-id, so
			// that two clients numbering their subscriptions alike do
			// not share one), kept while the subscriber is away.
			if _, ok := f.Get("id"); !ok {
				return s.fail(f, "missing header", "a durable subscription needs an id header")
			}
			name := "stomp-subscription-" + s.clientID + id
			if n, ok := f.Get("x-queue-name"); ok && len(n) > 0 {
				name = string(n)
			}
			opts, _, e := queueHeaders(f, amqpgw.QueueOptions{Durable: true})
			if e != "" {
				return s.fail(f, "invalid queue property", e)
			}
			opts.Durable, opts.Exclusive = true, false
			plan.queue, plan.opts = name, opts
			sub.durable = true
		} else {
			opts := amqpgw.QueueOptions{Exclusive: true, AutoDelete: true}
			if n, ok := f.Get("x-queue-name"); ok && len(n) > 0 {
				plan.queue = string(n)
			}
			plan.opts = opts
		}
	case destTempQueue:
		name := string(d.name)
		sub.fixedDest = frame.AppendHeader(nil, s.version, frame.MESSAGE, "destination", destB)
		if t := s.temps[name]; t != nil {
			if t.sub != nil {
				return s.fail(f, "duplicated subscription", "temporary queue "+printable(destB)+" already has a subscription")
			}
			plan.queue = string(t.queue)
		} else {
			plan.temp = &tempReq{name: name, subscribe: true, sub: sub, opts: copts}
		}
	case destReplyQueue:
		return s.fail(f, "invalid destination", "a /reply-queue/ destination is for SEND only; subscribe to the /temp-queue/ that made it")
	}

	if !plan.declare && plan.temp == nil {
		// An existing queue: consumed on the loop, nothing blocks.
		if err := s.consume(sub, plan.queue, copts); err != nil {
			return s.failAMQP(receipt, err)
		}
		if d.kind == destTempQueue {
			s.temps[string(d.name)].sub = sub
		}
		s.subs[id] = sub
		s.receipt(f)
		return nil
	}
	s.subs[id] = sub // taken, so a second SUBSCRIBE with it waits for this one
	s.later(func() error {
		if plan.temp != nil {
			return s.makeTemp(plan.temp)
		}
		name := plan.queue
		if plan.declare {
			var err error
			if name, err = s.srv.amqp.DeclareQueue(s.owner, plan.queue, plan.opts); err != nil {
				return err
			}
		}
		if plan.bindX != "" {
			if err := s.srv.amqp.Bind(s.owner, name, plan.bindX, plan.bindKey, amqpgw.Table{}); err != nil {
				return err
			}
		}
		return s.consume(sub, name, copts)
	}, func(err error) error {
		if plan.temp != nil && plan.temp.made != nil {
			s.addTemp(plan.temp)
		}
		if err != nil {
			delete(s.subs, id)
			return s.failAMQP(receipt, err)
		}
		if receipt != "" {
			s.writeReceipt([]byte(receipt))
		}
		return nil
	})
	return nil
}

func headerTrue(f *frame.Frame, name string) bool {
	v, _ := f.Get(name)
	return string(v) == "true"
}

// consume starts sub on queue; it may run off the loop. Once the session
// is closed, the subscription is cancelled at once.
func (s *session) consume(sub *subscription, queue string, opts amqpgw.ConsumeOptions) error {
	a, err := s.srv.amqp.Consume(queue, opts, sub)
	if err != nil {
		return err
	}
	sub.queue = queue
	s.outMu.Lock()
	sub.amqp = a
	closed := s.closed
	var pend []uint64
	if closed {
		sub.gone = true
		pend = sub.pend.all(nil)
	} else {
		s.all = append(s.all, sub)
	}
	s.outMu.Unlock()
	if closed {
		a.Cancel(pend)
	}
	return nil
}

// unsubscribe serves UNSUBSCRIBE: what the subscription had not
// acknowledged goes back to its queue. With durable:true a durable
// subscription's queue is deleted too.
func (s *session) unsubscribe(f *frame.Frame) error {
	idB, ok := f.Get("id")
	if !ok && s.version == frame.V10 {
		idB, ok = f.Get("destination")
	}
	if !ok {
		return s.fail(f, "missing header", "UNSUBSCRIBE needs an id header")
	}
	sub := s.subs[string(idB)]
	if sub == nil {
		return s.fail(f, "subscription not found", "no subscription with id "+printable(idB))
	}
	delete(s.subs, sub.id)
	s.stop(sub)
	for name, t := range s.temps {
		if t.sub == sub {
			// An auto-delete queue: it goes with its subscription, and
			// the next use of the name makes a new one.
			delete(s.temps, name)
		}
	}
	if sub.durable && (headerTrue(f, "durable") || headerTrue(f, "persistent")) {
		receipt := ""
		if r, ok := f.Get("receipt"); ok {
			receipt = string(r)
		}
		s.later(func() error { return s.srv.amqp.DeleteQueue(s.owner, sub.queue) }, func(err error) error {
			if err != nil {
				return s.failAMQP(receipt, err)
			}
			if receipt != "" {
				s.writeReceipt([]byte(receipt))
			}
			return nil
		})
		return nil
	}
	s.receipt(f)
	return nil
}

// stop cancels sub, giving back what it had not acknowledged.
func (s *session) stop(sub *subscription) {
	s.outMu.Lock()
	sub.gone = true
	pend := sub.pend.all(nil)
	for i, o := range s.all {
		if o == sub {
			s.all = append(s.all[:i], s.all[i+1:]...)
			break
		}
	}
	a := sub.amqp
	s.outMu.Unlock()
	if a != nil {
		a.Cancel(pend)
	}
}

// ack serves ACK and NACK (and replays them from a COMMIT).
func (s *session) ack(f *frame.Frame, replay bool) error {
	key := "message-id"
	if s.version >= frame.V12 {
		key = "id"
	}
	idB, ok := f.Get(key)
	if !ok {
		return s.fail(f, "missing header", f.Command.String()+" needs an "+key+" header")
	}
	if !replay {
		if txID, ok := f.Get("transaction"); ok {
			tx := s.txs[string(txID)]
			if tx == nil {
				return s.fail(f, "unknown transaction", "no transaction "+printable(txID)+" was begun")
			}
			return s.buffer(tx, f)
		}
	}
	sub, tag, ok := s.lookupAck(idB)
	if !ok || sub.mode == ackAuto {
		return s.fail(f, "unknown ack id", "no message is waiting for acknowledgement with id "+printable(idB))
	}
	s.outMu.Lock()
	seqs := s.acks[:0]
	if sub.mode == ackClient {
		seqs, ok = sub.pend.takeUpTo(tag, seqs)
	} else {
		var seq uint64
		if seq, ok = sub.pend.take(tag); ok {
			seqs = append(seqs, seq)
		}
	}
	s.outMu.Unlock()
	s.acks = seqs[:0]
	if !ok {
		return s.fail(f, "unknown ack id", "no message is waiting for acknowledgement with id "+printable(idB))
	}
	if f.Command == frame.NACK {
		requeue := true
		if r, ok := f.Get("requeue"); ok && string(r) == "false" {
			requeue = false
		}
		for _, seq := range seqs {
			_ = sub.amqp.Nack(seq, requeue)
		}
	} else {
		for _, seq := range seqs {
			_ = sub.amqp.Ack(seq)
		}
	}
	if !replay {
		s.receipt(f)
	}
	return nil
}

// lookupAck reads an ack id, "SUBSCRIPTION@@TAG".
func (s *session) lookupAck(id []byte) (*subscription, uint64, bool) {
	i := bytes.LastIndex(id, []byte("@@"))
	if i < 0 {
		return nil, 0, false
	}
	sub := s.subs[string(id[:i])]
	if sub == nil {
		return nil, 0, false
	}
	tag, err := strconv.ParseUint(string(id[i+2:]), 10, 64)
	if err != nil {
		return nil, 0, false
	}
	return sub, tag, true
}

// pendingList is a subscription's delivered, unacknowledged messages in
// delivery order: tags ascend, so a tag is found by binary search, and an
// acknowledged entry is zeroed until the ones before it go too.
type pendingList struct {
	buf  []pendingAck
	head int
	live int
}

type pendingAck struct{ tag, seq uint64 }

func (p *pendingList) push(tag, seq uint64) {
	if p.head > 0 && p.head >= len(p.buf)/2 {
		n := copy(p.buf, p.buf[p.head:])
		p.buf = p.buf[:n]
		p.head = 0
	}
	p.buf = append(p.buf, pendingAck{tag, seq})
	p.live++
}

func (p *pendingList) find(tag uint64) int {
	w := p.buf[p.head:]
	i := sort.Search(len(w), func(i int) bool { return w[i].tag >= tag })
	if i < len(w) && w[i].tag == tag && w[i].seq != 0 {
		return p.head + i
	}
	return -1
}

// take removes one message by tag.
func (p *pendingList) take(tag uint64) (uint64, bool) {
	i := p.find(tag)
	if i < 0 {
		return 0, false
	}
	seq := p.buf[i].seq
	p.buf[i].seq = 0
	p.live--
	p.advance()
	return seq, true
}

// takeUpTo removes the message tagged tag and every earlier one,
// appending their sequences to dst in order.
func (p *pendingList) takeUpTo(tag uint64, dst []uint64) ([]uint64, bool) {
	i := p.find(tag)
	if i < 0 {
		return dst, false
	}
	for j := p.head; j <= i; j++ {
		if p.buf[j].seq != 0 {
			dst = append(dst, p.buf[j].seq)
			p.buf[j].seq = 0
			p.live--
		}
	}
	p.advance()
	return dst, true
}

func (p *pendingList) advance() {
	for p.head < len(p.buf) && p.buf[p.head].seq == 0 {
		p.head++
	}
	if p.head == len(p.buf) {
		p.buf, p.head = p.buf[:0], 0
	}
}

// all empties the list, appending what it held to dst in order.
func (p *pendingList) all(dst []uint64) []uint64 {
	for _, e := range p.buf[p.head:] {
		if e.seq != 0 {
			dst = append(dst, e.seq)
		}
	}
	p.buf, p.head, p.live = p.buf[:0], 0, 0
	return dst
}
