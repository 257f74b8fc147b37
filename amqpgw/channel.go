package amqpgw

import (
	"encoding/binary"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/ledgemq/ledge/auth"
	"github.com/ledgemq/ledge/broker"
	"github.com/ledgemq/ledge/log"
	lnet "github.com/ledgemq/ledge/net"
	"github.com/ledgemq/ledge/router"
)

const directReplyTo = "amq.rabbitmq.reply-to"

// channel is one AMQP channel of a connection. Its fields are the event
// loop's, except those guarded by the connection's outMu.
type channel struct {
	conn      *conn
	id        uint16
	closing   bool
	prefetch  int
	consumers map[string]*consumer
	lastQueue string
	nextTag   int
	replyName string // direct reply-to pseudo-queue of this channel

	// A publish being assembled from its method, header and body frames.
	pubState   int // 0 none, 1 header wanted, 2 body wanted
	pubX       []byte
	pubKey     []byte
	mandatory  bool
	pubProps   []byte
	bodySize   uint64
	body       []byte
	targets    []*queue
	others     []broker.Receiver
	res        router.Result[*queue]
	liveRes    router.Result[broker.Receiver]
	capRes     router.Result[*broker.Stream]
	hdrs       [3]log.Header
	props      props
	propsBuf   []byte
	subjectBuf []byte

	confirm bool
	pubSeq  uint64
	confMu  sync.Mutex
	floor   uint64
	done    map[uint64]bool // seq -> nacked

	tx    bool
	txOps []txOp

	// The write permission of the last exchange published to, made under
	// the connection's permGen.
	permEx  string
	permGen int
	permOK  bool
	permSet bool

	// Guarded by conn.outMu.
	lastTag uint64
	unacked map[uint64]delivery
}

// delivery is an unacknowledged message: its consumer and stream sequence.
type delivery struct {
	c   *consumer
	seq uint64
}

// txOp is a publish or an acknowledgement held until tx.commit.
type txOp struct {
	publish           bool
	exchange, key     []byte
	props, body       []byte
	mandatory         bool
	id                methodID
	tag               uint64
	multiple, requeue bool
}

// raise handles an exception on ch: a channel exception closes the
// channel; a connection exception returns the error that closes the
// connection.
func (ch *channel) raise(e *amqpError, cause methodID) error {
	if e.conn {
		return ch.conn.fail(e, cause)
	}
	ch.conn.write(func(b []byte) []byte { return appendClose(b, ch.id, chanClose, e.code, e.text, cause) })
	ch.closing = true
	ch.release()
	return nil
}

// release gives back what the channel holds: its consumers stop and its
// unacknowledged messages go back to their queues, to be delivered again
// with redelivered set.
func (ch *channel) release() {
	cn := ch.conn
	cn.outMu.Lock()
	var dead []*consumer
	for _, c := range ch.consumers {
		c.dead = true
		dead = append(dead, c)
	}
	unacked := ch.unacked
	ch.unacked = map[uint64]delivery{}
	cn.outMu.Unlock()
	ch.consumers = map[string]*consumer{}
	for _, c := range dead {
		if c.q != nil {
			c.q.removeSub(c)
		}
	}
	if ch.replyName != "" {
		cn.srv.mu.Lock()
		delete(cn.srv.replyTo, ch.replyName)
		cn.srv.mu.Unlock()
		ch.replyName = ""
	}
	tags := make([]uint64, 0, len(unacked))
	for t := range unacked {
		tags = append(tags, t)
	}
	sort.Slice(tags, func(i, j int) bool { return tags[i] < tags[j] })
	for _, t := range tags {
		d := unacked[t]
		_ = d.c.q.cons.Ack(d.seq, broker.Nak, 0)
	}
	ch.pubState = 0
}

// removeSub takes a consumer off its queue; an auto-delete queue goes
// with its last consumer.
func (q *queue) removeSub(c *consumer) {
	q.mu.Lock()
	if _, ok := q.subs[c.reply]; ok {
		delete(q.subs, c.reply)
		if !c.get {
			q.touch()
			q.consumers--
			q.exclusiveConsumer = false
		}
	}
	gone := q.autoDelete && q.hadConsumer && q.consumers == 0 && !q.deleted
	q.mu.Unlock()
	if gone {
		go func() {
			q.srv.adminMu.Lock()
			defer q.srv.adminMu.Unlock()
			q.mu.Lock()
			still := q.consumers == 0
			q.mu.Unlock()
			if still {
				q.srv.deleteQueue(q)
			}
		}()
	}
}

// chanMethod handles a method on channel id.
func (cn *conn) chanMethod(id uint16, m *Method) error {
	ch := cn.channels[id]
	if m.ID == chanOpen {
		if ch != nil {
			return cn.fail(connErr(codeChannelError, "CHANNEL_ERROR - second 'channel.open' seen"), m.ID)
		}
		if int(id) > cn.channelMax {
			return cn.fail(connErr(codeNotAllowed, "NOT_ALLOWED - channel number beyond channel-max"), m.ID)
		}
		ch = &channel{conn: cn, id: id, consumers: map[string]*consumer{}, unacked: map[uint64]delivery{}}
		cn.channels[id] = ch
		cn.mon.channels.Add(1)
		cn.write(func(b []byte) []byte {
			b, at := appendMethodStart(b, id, chanOpenOk)
			b = appendLongstr(b, "")
			return finishFrame(b, at)
		})
		return nil
	}
	if ch == nil {
		return cn.fail(connErr(codeChannelError, "CHANNEL_ERROR - expected 'channel.open'"), m.ID)
	}
	if ch.closing {
		// After channel.close only close and close-ok count (spec 4.2.6).
		switch m.ID {
		case chanCloseOk:
			delete(cn.channels, id)
			cn.mon.channels.Add(-1)
		case chanClose:
			cn.write(func(b []byte) []byte { return appendEmpty(b, id, chanCloseOk) })
		}
		return nil
	}
	if ch.pubState != 0 {
		return cn.fail(connErr(codeUnexpectedFrame, "UNEXPECTED_FRAME - expected content header or body"), m.ID)
	}
	if e := ch.method(m); e != nil {
		return ch.raise(e, m.ID)
	}
	return nil
}

// method serves one channel method; an exception is returned.
func (ch *channel) method(m *Method) *amqpError {
	cn := ch.conn
	id := ch.id
	switch m.ID {
	case chanClose:
		ch.release()
		delete(cn.channels, id)
		cn.mon.channels.Add(-1)
		cn.write(func(b []byte) []byte { return appendEmpty(b, id, chanCloseOk) })
	case chanCloseOk:
	case chanFlow:
		if !m.Active {
			return connErr(codeNotImplemented, "NOT_IMPLEMENTED - active=false")
		}
		cn.write(func(b []byte) []byte { return appendFlag(b, id, chanFlowOk, true) })
	case chanFlowOk:
	case bQos:
		if m.PrefetchSize != 0 {
			return connErr(codeNotImplemented, "NOT_IMPLEMENTED - prefetch_size!=0")
		}
		if m.Global && m.PrefetchCount != 0 {
			// A limit shared by a channel's consumers: not built.
			return connErr(codeNotImplemented, "NOT_IMPLEMENTED - global prefetch_count")
		}
		ch.prefetch = int(m.PrefetchCount)
		cn.write(func(b []byte) []byte { return appendEmpty(b, id, bQosOk) })
	case bPublish:
		if m.Immediate {
			return connErr(codeNotImplemented, "NOT_IMPLEMENTED - immediate=true")
		}
		ch.pubX = append(ch.pubX[:0], m.Exchange...)
		ch.pubKey = append(ch.pubKey[:0], m.RoutingKey...)
		ch.mandatory = m.Mandatory
		ch.pubState = 1
	case bConsume:
		return ch.consume(m)
	case bCancel:
		c := ch.consumers[string(m.ConsumerTag)]
		if c != nil {
			delete(ch.consumers, c.tag)
			cn.outMu.Lock()
			c.dead = true
			cn.outMu.Unlock()
			if c.q != nil {
				c.q.removeSub(c)
			} else {
				cn.srv.mu.Lock()
				delete(cn.srv.replyTo, ch.replyName)
				cn.srv.mu.Unlock()
				ch.replyName = ""
			}
		}
		if !m.NoWait {
			tag := string(m.ConsumerTag)
			cn.write(func(b []byte) []byte { return appendTag(b, id, bCancelOk, tag) })
		}
	case bGet:
		return ch.get(m)
	case bAck, bNack, bReject:
		if ch.tx {
			ch.txOps = append(ch.txOps, txOp{id: m.ID, tag: m.DeliveryTag, multiple: m.Multiple, requeue: m.Requeue})
			return nil
		}
		return ch.settle(m.ID, m.DeliveryTag, m.Multiple, m.Requeue)
	case bRecover, bRecoverAsync:
		if !m.Requeue {
			return connErr(codeNotImplemented, "NOT_IMPLEMENTED - requeue=false")
		}
		ch.requeueAll()
		if m.ID == bRecover {
			cn.write(func(b []byte) []byte { return appendEmpty(b, id, bRecoverOk) })
		}
	case confSelect:
		if ch.tx {
			return chanErr(codePrecondition, "PRECONDITION_FAILED - cannot switch from tx to confirm mode")
		}
		ch.confirm = true
		if !m.NoWait {
			cn.write(func(b []byte) []byte { return appendEmpty(b, id, confSelectOk) })
		}
	case txSelect:
		if ch.confirm {
			return chanErr(codePrecondition, "PRECONDITION_FAILED - cannot switch from confirm to tx mode")
		}
		ch.tx = true
		cn.write(func(b []byte) []byte { return appendEmpty(b, id, txSelectOk) })
	case txCommit, txRollback:
		if !ch.tx {
			return chanErr(codePrecondition, "PRECONDITION_FAILED - channel is not transactional")
		}
		ops := ch.txOps
		ch.txOps = nil
		if m.ID == txCommit {
			for i := range ops {
				op := &ops[i]
				var e *amqpError
				if op.publish {
					e = ch.route(op.exchange, op.key, op.props, op.body, op.mandatory)
				} else {
					e = ch.settle(op.id, op.tag, op.multiple, op.requeue)
				}
				if e != nil {
					return e
				}
			}
			cn.write(func(b []byte) []byte { return appendEmpty(b, id, txCommitOk) })
		} else {
			cn.write(func(b []byte) []byte { return appendEmpty(b, id, txRollbackOk) })
		}
	case exDeclare, exDelete, exBind, exUnbind, qDeclare, qBind, qUnbind, qPurge, qDelete:
		ch.admin(m)
	default:
		return connErr(codeCommandInvalid, "COMMAND_INVALID - unexpected method")
	}
	return nil
}

// content takes a publish's content header and body frames.
func (ch *channel) content(f *Frame) error {
	cn := ch.conn
	switch {
	case f.Type == frameHeader && ch.pubState == 1:
		p := f.Payload
		if len(p) < 14 || binary.BigEndian.Uint16(p) != classBasic {
			return cn.fail(connErr(codeFrameError, "FRAME_ERROR - malformed content header"), bPublish)
		}
		ch.bodySize = binary.BigEndian.Uint64(p[4:12])
		raw := p[12:]
		if parseProps(raw, &ch.props) != nil {
			return cn.fail(connErr(codeSyntaxError, "SYNTAX_ERROR - malformed content properties"), bPublish)
		}
		ch.pubProps = append(ch.pubProps[:0], raw...)
		if ch.bodySize > uint64(cn.srv.opts.MaxMessageSize) {
			ch.pubState = 0
			return ch.raise(chanErr(codePrecondition, "PRECONDITION_FAILED - message size "+strconv.FormatUint(ch.bodySize, 10)+" is larger than configured max size"), bPublish)
		}
		ch.body = ch.body[:0]
		ch.pubState = 2
	case f.Type == frameBody && ch.pubState == 2:
		if uint64(len(ch.body)+len(f.Payload)) > ch.bodySize {
			return cn.fail(connErr(codeFrameError, "FRAME_ERROR - body longer than its header said"), bPublish)
		}
		ch.body = append(ch.body, f.Payload...)
	default:
		return cn.fail(connErr(codeUnexpectedFrame, "UNEXPECTED_FRAME - content frame out of place"), bPublish)
	}
	if ch.pubState == 2 && uint64(len(ch.body)) == ch.bodySize {
		ch.pubState = 0
		if ch.tx {
			ch.txOps = append(ch.txOps, txOp{publish: true, exchange: clone(ch.pubX), key: clone(ch.pubKey),
				props: clone(ch.pubProps), body: clone(ch.body), mandatory: ch.mandatory})
			return nil
		}
		if e := ch.route(ch.pubX, ch.pubKey, ch.pubProps, ch.body, ch.mandatory); e != nil {
			return ch.raise(e, bPublish)
		}
		if cap(ch.body) > 1<<20 {
			ch.body = nil // a large message's buffer is not kept
		}
	}
	return nil
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }

// route delivers a complete publish to the queues its exchange routes it
// to, and to the live subscribers of other protocols through amq.topic.
func (ch *channel) route(ex, key, rawProps, body []byte, mandatory bool) *amqpError {
	cn := ch.conn
	s := cn.srv
	if cn.client != nil {
		if e := ch.permitPublish(ex, len(body)); e != nil {
			return e
		}
	}
	cn.countIn(len(body))
	if parseProps(rawProps, &ch.props) != nil {
		return connErr(codeSyntaxError, "SYNTAX_ERROR - malformed content properties")
	}
	if ch.props.hasReply && string(ch.props.ReplyTo) == directReplyTo {
		if ch.replyName == "" {
			return chanErr(codePrecondition, "PRECONDITION_FAILED - fast reply consumer does not exist")
		}
		ch.propsBuf = appendPropsWithReplyTo(ch.propsBuf[:0], rawProps, &ch.props, ch.replyName)
		rawProps = ch.propsBuf
	}
	targets := ch.targets[:0]
	others := ch.others[:0]
	var capture *broker.Stream
	s.mu.RLock()
	x := s.exchanges[string(ex)]
	if x == nil {
		s.mu.RUnlock()
		return chanErr(codeNotFound, "NOT_FOUND - no exchange '"+string(ex)+"' in vhost '/'")
	}
	if x.internal {
		s.mu.RUnlock()
		return chanErr(codeAccessRefused, "ACCESS_REFUSED - cannot publish to internal exchange '"+string(ex)+"' in vhost '/'")
	}
	var reply *consumer
	for hops := 0; x != nil && hops < 4; hops++ {
		switch {
		case x.name == "":
			if q := s.queues[string(key)]; q != nil {
				targets = append(targets, q)
			} else if strings.HasPrefix(string(key), directReplyTo+".") {
				reply = s.replyTo[string(key)]
			}
		case x.live:
			ch.subjectBuf = ch.subjectBuf[:0]
			subj, err := router.SubjectFromAMQPRoutingKey(string(key))
			if err == nil && cn.client != nil {
				ch.subjectBuf = append(ch.subjectBuf, subj...)
				if e := ch.permitTopic(ch.subjectBuf, key); e != nil {
					s.mu.RUnlock()
					return e
				}
				ch.subjectBuf = ch.subjectBuf[:0]
			}
			if err == nil && s.live.Match(subj, &ch.liveRes) == nil {
				for _, r := range ch.liveRes.Subs {
					if qr, ok := r.(*queueReceiver); ok {
						targets = append(targets, qr.q)
					} else {
						others = append(others, r)
					}
				}
				for i := range ch.liveRes.Groups {
					if r, ok := ch.liveRes.Groups[i].Pick(nil); ok {
						others = append(others, r)
					}
				}
				ch.subjectBuf = append(ch.subjectBuf, subj...)
				// A stream that captures the subject stores it, as it
				// does a NATS or MQTT publish.
				capture = s.b.Capture(ch.subjectBuf, &ch.capRes)
			}
		default:
			targets = x.route(targets, key, ch.props.Headers, &ch.res)
		}
		if len(x.exBindings) > 0 {
			targets = dedupe(s.routeOnward(targets, x, key, ch.props.Headers, 0))
		}
		if len(targets) > 0 || len(others) > 0 || reply != nil || x.alternate == "" {
			break
		}
		x = s.exchanges[x.alternate]
	}
	s.mu.RUnlock()
	ch.targets, ch.others = targets, others

	if len(others) > 0 {
		m := broker.Msg{Subject: ch.subjectBuf, Payload: body}
		if ch.props.hasReply {
			m.Reply = ch.props.ReplyTo
		}
		for _, r := range others {
			r.Deliver(&m)
		}
	}
	if reply != nil {
		reply.deliverDirect(ex, key, rawProps, body)
	}
	routed := len(targets) > 0 || len(others) > 0 || reply != nil || capture != nil
	if !routed && mandatory {
		cn.write(func(b []byte) []byte {
			return appendReturn(b, ch.id, cn.frameMax, codeNoRoute, "NO_ROUTE", ex, key, rawProps, body)
		})
	}
	if !ch.confirm {
		for _, q := range targets {
			_ = q.publish(&ch.hdrs, ex, key, rawProps, body, noConfirm)
		}
		if capture != nil {
			_ = capture.Publish(&broker.Message{Subject: ch.subjectBuf, Payload: body}, noConfirm)
		}
		return nil
	}
	ch.pubSeq++
	seq := ch.pubSeq
	stores := len(targets)
	if capture != nil {
		stores++
	}
	if stores == 0 {
		ch.confirmed(seq, false)
		return nil
	}
	p := &pending{ch: ch, seq: seq}
	p.left.Store(int32(stores))
	for _, q := range targets {
		if err := q.publish(&ch.hdrs, ex, key, rawProps, body, p.done); err != nil {
			p.done(broker.PubAck{}, err)
		}
	}
	if capture != nil {
		if err := capture.Publish(&broker.Message{Subject: ch.subjectBuf, Payload: body}, p.done); err != nil {
			p.done(broker.PubAck{}, err)
		}
	}
	return nil
}

func noConfirm(broker.PubAck, error) {}

// pending is a confirmed publish waiting for every queue it went to.
type pending struct {
	ch   *channel
	seq  uint64
	left atomic.Int32
	nack atomic.Bool
}

func (p *pending) done(_ broker.PubAck, err error) {
	if err != nil {
		p.nack.Store(true)
	}
	if p.left.Add(-1) == 0 {
		p.ch.confirmed(p.seq, p.nack.Load())
	}
}

// confirmed records that publish seq is settled and sends the confirms
// that became contiguous, as one multiple ack where it can.
func (ch *channel) confirmed(seq uint64, nack bool) {
	ch.confMu.Lock()
	defer ch.confMu.Unlock()
	if ch.done == nil {
		ch.done = make(map[uint64]bool)
	}
	ch.done[seq] = nack
	start := ch.floor
	var nacks []uint64
	for {
		n, ok := ch.done[ch.floor+1]
		if !ok {
			break
		}
		delete(ch.done, ch.floor+1)
		ch.floor++
		if n {
			nacks = append(nacks, ch.floor)
		}
	}
	if ch.floor == start {
		return
	}
	cn := ch.conn
	from, to := start+1, ch.floor
	if len(nacks) == 0 {
		cn.write(func(b []byte) []byte { return appendConfirm(b, ch.id, false, to, to > from) })
		return
	}
	// Rare: a nack among them; each is sent on its own.
	cn.outMu.Lock()
	defer cn.outMu.Unlock()
	cn.write2(func(b []byte) []byte {
		for s := from; s <= to; s++ {
			nacked := len(nacks) > 0 && nacks[0] == s
			if nacked {
				nacks = nacks[1:]
			}
			b = appendConfirm(b, ch.id, nacked, s, false)
		}
		return b
	})
}

// write2 is write with outMu already held.
func (cn *conn) write2(fn func([]byte) []byte) {
	if cn.closed {
		return
	}
	cn.wbuf = fn(cn.wbuf[:0])
	_ = cn.c.Write(cn.wbuf)
}

// settle applies basic.ack, nack or reject.
func (ch *channel) settle(id methodID, tag uint64, multiple, requeue bool) *amqpError {
	cn := ch.conn
	cn.outMu.Lock()
	var ds []delivery
	if multiple {
		for t, d := range ch.unacked {
			if t <= tag || tag == 0 {
				ds = append(ds, d)
				delete(ch.unacked, t)
				d.c.unacked--
			}
		}
	} else if d, ok := ch.unacked[tag]; ok {
		ds = append(ds, d)
		delete(ch.unacked, tag)
		d.c.unacked--
	} else {
		cn.outMu.Unlock()
		return chanErr(codePrecondition, "PRECONDITION_FAILED - unknown delivery tag "+strconv.FormatUint(tag, 10))
	}
	cn.outMu.Unlock()
	sort.Slice(ds, func(i, j int) bool { return ds[i].seq < ds[j].seq })
	for _, d := range ds {
		q := d.c.q
		switch {
		case id == bAck:
			_ = q.cons.Ack(d.seq, broker.Ack, 0)
		case requeue:
			_ = q.cons.Ack(d.seq, broker.Nak, 0)
		default:
			q.deadLetter(d.seq)
			_ = q.cons.Ack(d.seq, broker.Term, 0)
		}
	}
	for _, d := range ds {
		if !d.c.get {
			d.c.topUp()
		}
	}
	return nil
}

// requeueAll gives every unacknowledged message of the channel back.
func (ch *channel) requeueAll() {
	cn := ch.conn
	cn.outMu.Lock()
	unacked := ch.unacked
	ch.unacked = map[uint64]delivery{}
	for _, d := range unacked {
		d.c.unacked--
	}
	cn.outMu.Unlock()
	for _, d := range unacked {
		_ = d.c.q.cons.Ack(d.seq, broker.Nak, 0)
	}
	for _, d := range unacked {
		if !d.c.get {
			d.c.topUp()
		}
	}
}

// deadLetter republishes a rejected message to the queue's dead-letter
// exchange, with its routing key or the queue's dead-letter key.
func (q *queue) deadLetter(seq uint64) {
	if !q.hasDLX && !q.hasDLK {
		return
	}
	m, err := q.stream.GetMsg(seq)
	if err != nil {
		return
	}
	var key, raw []byte
	for _, h := range m.Headers {
		switch string(h.Key) {
		case hdrRoutingKey:
			key = h.Value
		case hdrProps:
			raw = h.Value
		}
	}
	if q.hasDLK {
		key = []byte(q.dlk)
	}
	s := q.srv
	s.mu.RLock()
	x := s.exchanges[q.dlx]
	var targets []*queue
	var res router.Result[*queue]
	if x != nil {
		if x.name == "" {
			if t := s.queues[string(key)]; t != nil {
				targets = append(targets, t)
			}
		} else if x.live {
			var lr router.Result[broker.Receiver]
			if subj, err := router.SubjectFromAMQPRoutingKey(string(key)); err == nil && s.live.Match(subj, &lr) == nil {
				for _, r := range lr.Subs {
					if qr, ok := r.(*queueReceiver); ok {
						targets = append(targets, qr.q)
					}
				}
			}
		} else {
			var p props
			_ = parseProps(raw, &p)
			targets = x.route(targets, key, p.Headers, &res)
		}
	}
	s.mu.RUnlock()
	for _, t := range targets {
		if t != q {
			var hdrs [3]log.Header
			_ = t.publish(&hdrs, []byte(q.dlx), key, raw, m.Payload, noConfirm)
		}
	}
}

// consume serves basic.consume.
func (ch *channel) consume(m *Method) *amqpError {
	cn := ch.conn
	s := cn.srv
	tag := string(m.ConsumerTag)
	if tag == "" {
		ch.nextTag++
		tag = "amq.ctag-" + s.idBase + "-" + strconv.FormatUint(uint64(cn.c.ID()), 10) + "-" + strconv.Itoa(int(ch.id)) + "-" + strconv.Itoa(ch.nextTag)
	}
	if _, ok := ch.consumers[tag]; ok {
		return connErr(codeNotAllowed, "NOT_ALLOWED - attempt to reuse consumer tag '"+tag+"'")
	}
	for t := m.Arguments; len(t) > 0; {
		var f field
		f, t = nextField(t)
		if n := string(f.Name); strings.HasPrefix(n, "x-") {
			return connErr(codeNotImplemented, "NOT_IMPLEMENTED - consumer argument '"+n+"' is not supported")
		}
	}
	name := string(m.Queue)
	if name == "" {
		name = ch.lastQueue
	}
	id := ch.id
	if name != directReplyTo {
		if e := cn.permit(auth.Queue, auth.Read, name); e != nil {
			return e
		}
	}
	if name == directReplyTo {
		if !m.NoAck {
			return chanErr(codePrecondition, "PRECONDITION_FAILED - reply consumer cannot acknowledge")
		}
		if ch.replyName != "" {
			return chanErr(codePrecondition, "PRECONDITION_FAILED - reply consumer already set")
		}
		ch.replyName = directReplyTo + "." + s.idBase + strconv.FormatUint(s.nextID.Add(1), 36)
		c := &consumer{ch: ch, tag: tag, noAck: true}
		ch.consumers[tag] = c
		s.mu.Lock()
		s.replyTo[ch.replyName] = c
		s.mu.Unlock()
		if !m.NoWait {
			cn.write(func(b []byte) []byte { return appendTag(b, id, bConsumeOk, tag) })
		}
		return nil
	}
	s.mu.RLock()
	q := s.queues[name]
	s.mu.RUnlock()
	if q == nil {
		return chanErr(codeNotFound, "NOT_FOUND - no queue '"+name+"' in vhost '/'")
	}
	if q.exclusive && q.owner != cn {
		return chanErr(codeResourceLocked, "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '"+name+"' in vhost '/'")
	}
	c := &consumer{ch: ch, q: q, tag: tag, noAck: m.NoAck, prefetch: ch.prefetch,
		reply: "c." + strconv.FormatUint(uint64(cn.c.ID()), 10) + "." + strconv.Itoa(int(id)) + "." + tag}
	q.mu.Lock()
	if q.deleted {
		q.mu.Unlock()
		return chanErr(codeNotFound, "NOT_FOUND - no queue '"+name+"' in vhost '/'")
	}
	if m.Exclusive && q.consumers > 0 || q.exclusiveConsumer {
		q.mu.Unlock()
		return chanErr(codeAccessRefused, "ACCESS_REFUSED - queue '"+name+"' in vhost '/' in exclusive use")
	}
	q.exclusiveConsumer = m.Exclusive
	q.touch()
	q.consumers++
	q.hadConsumer = true
	q.subs[c.reply] = c
	q.mu.Unlock()
	ch.consumers[tag] = c
	if !m.NoWait {
		cn.write(func(b []byte) []byte { return appendTag(b, id, bConsumeOk, tag) })
	}
	c.topUp()
	return nil
}

// get serves basic.get: a pull request for one message that answers at
// once, get-ok or get-empty, from the queue's consumer goroutine.
func (ch *channel) get(m *Method) *amqpError {
	cn := ch.conn
	s := cn.srv
	name := string(m.Queue)
	if name == "" {
		name = ch.lastQueue
	}
	if e := cn.permit(auth.Queue, auth.Read, name); e != nil {
		return e
	}
	s.mu.RLock()
	q := s.queues[name]
	s.mu.RUnlock()
	if q == nil {
		return chanErr(codeNotFound, "NOT_FOUND - no queue '"+name+"' in vhost '/'")
	}
	if q.exclusive && q.owner != cn {
		return chanErr(codeResourceLocked, "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '"+name+"' in vhost '/'")
	}
	q.touch()
	c := &consumer{ch: ch, q: q, noAck: m.NoAck, get: true,
		reply: "g." + strconv.FormatUint(uint64(cn.c.ID()), 10) + "." + strconv.Itoa(int(ch.id)) + "." + strconv.FormatUint(s.nextID.Add(1), 36)}
	q.mu.Lock()
	q.subs[c.reply] = c
	q.mu.Unlock()
	if err := q.cons.Pull(broker.PullRequest{Reply: c.reply, Batch: 1, NoWait: true}); err != nil {
		q.removeSub(c)
		id := ch.id
		cn.write(func(b []byte) []byte { return appendTag(b, id, bGetEmpty, "") })
	}
	return nil
}

// deliverDirect sends a reply to a direct reply-to consumer; nothing is
// stored (RabbitMQ's semantics: the requester must be there).
func (c *consumer) deliverDirect(ex, key, props, body []byte) {
	cn := c.ch.conn
	cn.outMu.Lock()
	defer cn.outMu.Unlock()
	if c.dead || cn.closed {
		return
	}
	c.ch.lastTag++
	cn.write2(func(b []byte) []byte {
		return appendDeliver(b, c.ch.id, cn.frameMax, c.tag, c.ch.lastTag, false, ex, key, props, body)
	})
	cn.countOutLocked(len(body))
}

// serverCancel tells a consumer's client that its queue went away.
func (cn *conn) serverCancel(c *consumer) {
	cn.outMu.Lock()
	c.dead = true
	cn.outMu.Unlock()
	_ = cn.c.Do(func(*lnet.Conn) {
		if cn.channels[c.ch.id] == c.ch && c.ch.consumers[c.tag] == c {
			delete(c.ch.consumers, c.tag)
			cn.write(func(b []byte) []byte { return appendCancel(b, c.ch.id, c.tag) })
		}
	})
}
