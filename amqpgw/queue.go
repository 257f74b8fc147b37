package amqpgw

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ledgemq/ledge/broker"
	"github.com/ledgemq/ledge/log"
	lnet "github.com/ledgemq/ledge/net"
	"github.com/ledgemq/ledge/router"
)

// A queue is a broker stream with one durable pull consumer. Its messages
// carry the exchange, routing key and raw content properties they were
// published with as headers, so a delivery is the published message again.
const (
	queueStreamPrefix  = "AMQP_q_"
	queueSubjectPrefix = "$AMQP.q."
	queueConsumer      = "amqp"
	hdrExchange        = "Amqp-Exchange"
	hdrRoutingKey      = "Amqp-Routing-Key"
	hdrProps           = "Amqp-Props"
	// queueAckWait: AMQP has no acknowledgement deadline; a message waits
	// for its consumer's channel to ack it or to close. A day bounds what a
	// lost channel could hold.
	queueAckWait = 24 * time.Hour
	// A consumer without prefetch (or with no-ack) has one pull request
	// at a time, of at most unlimitedBatch messages and unlimitedBytes
	// bytes, and the next only once the connection is not congested: the
	// socket, not a count, holds it back, as TCP does RabbitMQ's.
	unlimitedBatch = 256
	unlimitedBytes = 1 << 20
)

// queue is an AMQP queue. Its definition fields are set at declaration;
// bindings are guarded by Server.mu, subscribers by mu.
type queue struct {
	srv        *Server
	name       string
	durable    bool
	exclusive  bool
	autoDelete bool
	owner      *conn
	args       []byte
	dlx        string
	dlk        string
	hasDLX     bool
	hasDLK     bool

	stream   *broker.Stream
	cons     *broker.Consumer
	subject  []byte
	receiver *queueReceiver
	bindings []*binding

	ttl      time.Duration
	sweepTTL bool
	timer    *time.Timer
	expires  time.Duration
	expTimer *time.Timer
	lastUsed atomic.Int64

	mu sync.Mutex
	// subs are the consumers and basic.gets waiting, by reply subject.
	subs map[string]*consumer
	// local are the consumers of other gateways (local.go), by reply
	// subject.
	local       map[string]*Subscription
	consumers   int
	hadConsumer bool
	// exclusiveConsumer: a basic.consume with exclusive holds the queue.
	exclusiveConsumer bool
	deleted           bool
}

// streamName is the broker stream of queue name: the name itself when it
// is a valid stream name, else a hash of it.
func streamName(name string) string {
	ok := len(name) > 0 && len(name) <= 200
	for i := 0; ok && i < len(name); i++ {
		c := name[i]
		ok = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
	}
	if ok {
		return queueStreamPrefix + name
	}
	h := sha256.Sum256([]byte(name))
	return queueStreamPrefix + "h" + hex.EncodeToString(h[:20])
}

// queueArgs are the queue arguments the gateway implements.
type queueArgs struct {
	ttl       time.Duration
	expires   time.Duration
	maxLen    int64
	maxBytes  int64
	rejectNew bool
	dlx, dlk  string
	hasDLX    bool
	hasDLK    bool
}

// parseQueueArgs reads a queue's arguments; a refused one comes back as a
// *amqpError.
func parseQueueArgs(t []byte) (queueArgs, *amqpError) {
	var a queueArgs
	for len(t) > 0 {
		var f field
		f, t = nextField(t)
		name := string(f.Name)
		switch name {
		case "x-message-ttl", "x-max-length", "x-max-length-bytes":
			v, ok := f.intValue()
			if !ok || v < 0 {
				return a, chanErr(codePrecondition, "PRECONDITION_FAILED - invalid arg '"+name+"'")
			}
			switch name {
			case "x-message-ttl":
				a.ttl = time.Duration(v) * time.Millisecond
				if v == 0 {
					return a, connErr(codeNotImplemented, "NOT_IMPLEMENTED - x-message-ttl 0 is not supported")
				}
			case "x-max-length":
				a.maxLen = v
				if v == 0 {
					return a, connErr(codeNotImplemented, "NOT_IMPLEMENTED - x-max-length 0 is not supported")
				}
			default:
				a.maxBytes = v
			}
		case "x-expires":
			v, ok := f.intValue()
			if !ok || v <= 0 {
				return a, chanErr(codePrecondition, "PRECONDITION_FAILED - invalid arg 'x-expires'")
			}
			a.expires = time.Duration(v) * time.Millisecond
		case "x-overflow":
			s, _ := f.stringValue()
			switch string(s) {
			case "drop-head":
			case "reject-publish":
				a.rejectNew = true
			default:
				return a, connErr(codeNotImplemented, "NOT_IMPLEMENTED - x-overflow '"+string(s)+"' is not supported")
			}
		case "x-dead-letter-exchange":
			s, ok := f.stringValue()
			if !ok {
				return a, chanErr(codePrecondition, "PRECONDITION_FAILED - invalid arg 'x-dead-letter-exchange'")
			}
			a.dlx, a.hasDLX = string(s), true
		case "x-dead-letter-routing-key":
			s, ok := f.stringValue()
			if !ok {
				return a, chanErr(codePrecondition, "PRECONDITION_FAILED - invalid arg 'x-dead-letter-routing-key'")
			}
			a.dlk, a.hasDLK = string(s), true
		case "x-queue-type":
			s, _ := f.stringValue()
			switch string(s) {
			case "classic", "quorum", "stream":
				// All are the one queue model: a stream with a consumer.
			default:
				return a, chanErr(codePrecondition, "PRECONDITION_FAILED - invalid arg 'x-queue-type'")
			}
		case "x-queue-mode", "x-queue-version", "x-queue-leader-locator":
			// Storage hints with no meaning here.
		default:
			if len(name) > 2 && name[:2] == "x-" {
				return a, connErr(codeNotImplemented, "NOT_IMPLEMENTED - queue argument '"+name+"' is not supported")
			}
		}
	}
	if (a.hasDLX || a.hasDLK) && a.maxLen+a.maxBytes > 0 && !a.rejectNew {
		// The stream drops the head itself, without telling anyone.
		return a, connErr(codeNotImplemented, "NOT_IMPLEMENTED - dead-lettering of messages dropped by x-max-length")
	}
	return a, nil
}

// openQueueStream creates or opens the stream and consumer of q.
func (s *Server) openQueueStream(q *queue, a queueArgs) error {
	sn := streamName(q.name)
	q.subject = []byte(queueSubjectPrefix + sn[len(queueStreamPrefix):])
	cfg := broker.StreamConfig{
		Name:        sn,
		Description: q.name,
		Subjects:    []string{string(q.subject)},
		Retention:   broker.WorkQueuePolicy,
		MaxMsgs:     a.maxLen,
		MaxBytes:    a.maxBytes,
		MaxAge:      a.ttl,
	}
	q.ttl, q.expires = a.ttl, a.expires
	if a.hasDLX || a.hasDLK {
		// Expired messages are dead-lettered by the gateway's sweep, not
		// dropped silently by the stream's age limit.
		cfg.MaxAge = 0
		q.sweepTTL = a.ttl > 0
	}
	if !q.durable {
		cfg.Storage = broker.MemoryStorage
	}
	if a.rejectNew {
		cfg.Discard = broker.DiscardNew
	}
	st, err := s.b.Stream(sn)
	if err == nil && st.Config().Storage != cfg.Storage {
		_ = s.b.DeleteStream(sn)
		err = broker.ErrStreamNotFound
	}
	if errors.Is(err, broker.ErrStreamNotFound) {
		st, err = s.b.AddStream(cfg)
	} else if err == nil {
		cur := st.Config()
		cfg.Created = cur.Created
		st, err = s.b.UpdateStream(cfg)
	}
	if err != nil {
		return err
	}
	c, err := st.AddConsumer(broker.ConsumerConfig{
		Name:          queueConsumer,
		Durable:       true,
		AckPolicy:     broker.AckExplicit,
		AckWait:       queueAckWait,
		MaxAckPending: -1,
		MaxWaiting:    1 << 20,
	}, broker.CreateOrUpdate)
	if err != nil {
		return err
	}
	q.stream, q.cons = st, c
	q.subs = make(map[string]*consumer)
	q.receiver = &queueReceiver{q}
	c.Attach(q)
	q.touch()
	if q.sweepTTL {
		q.timer = time.AfterFunc(time.Hour, q.sweep)
		q.timer.Reset(min(q.ttl, time.Second))
	}
	if q.expires > 0 {
		q.expTimer = time.AfterFunc(time.Hour, q.expire)
		q.expTimer.Reset(q.expires)
	}
	return nil
}

// counts returns the messages ready and the consumers of q.
func (q *queue) counts() (ready uint32, consumers uint32) {
	info := q.cons.Info()
	q.mu.Lock()
	n := q.consumers
	q.mu.Unlock()
	return uint32(info.NumPending), uint32(n)
}

// Header keys as bytes, made once.
var (
	keyExchange   = []byte(hdrExchange)
	keyRoutingKey = []byte(hdrRoutingKey)
	keyProps      = []byte(hdrProps)
)

// publish stores a message in q; done is the publisher confirm. hdrs is
// the caller's scratch for the three headers (the broker copies them).
func (q *queue) publish(hdrs *[3]log.Header, exchange, key, rawProps, body []byte, done func(broker.PubAck, error)) error {
	*hdrs = [3]log.Header{
		{Key: keyExchange, Value: exchange},
		{Key: keyRoutingKey, Value: key},
		{Key: keyProps, Value: rawProps},
	}
	return q.stream.Publish(&broker.Message{Subject: q.subject, Headers: hdrs[:], Payload: body}, done)
}

// queueReceiver is a queue bound to amq.topic, in the live router: what
// MQTT and NATS publish there is stored in the queue.
type queueReceiver struct{ q *queue }

// Deliver stores a message from another protocol.
func (r *queueReceiver) Deliver(m *broker.Msg) bool {
	key, err := router.AMQPRoutingKeyFromSubject(string(m.Subject))
	if err != nil {
		return false
	}
	var props []byte
	if len(m.Headers) > 0 {
		props = append(props, byte(propHeaders>>8), 0)
		props = appendTable(props, func(b []byte) []byte {
			for _, h := range m.Headers {
				b = appendStringField(b, string(h.Key), string(h.Value))
			}
			return b
		})
	}
	var hdrs [3]log.Header
	err = r.q.publish(&hdrs, []byte("amq.topic"), []byte(key), props, m.Payload, noConfirm)
	return err == nil
}

// Deliver is the queue's broker.Outlet: it hands a delivery to the
// consumer or basic.get whose reply subject it names.
func (q *queue) Deliver(subject string, d *broker.Delivery) bool {
	q.mu.Lock()
	c := q.subs[subject]
	if c != nil && c.get {
		delete(q.subs, subject)
	}
	l := q.local[subject]
	q.mu.Unlock()
	if c != nil && c.deliver(d) || l != nil && l.deliver(d) {
		return true
	}
	// Taken by a consumer that just went away: back to the queue, from
	// another goroutine since the consumer's lock is held here.
	seq := d.StreamSeq
	go func() { _ = q.cons.Ack(seq, broker.Nak, 0) }()
	return false
}

// Status ends a basic.get that found nothing.
func (q *queue) Status(subject string, st broker.Status) {
	q.mu.Lock()
	c := q.subs[subject]
	if c != nil && c.get {
		delete(q.subs, subject)
	}
	l := q.local[subject]
	q.mu.Unlock()
	if l != nil {
		l.status(st)
	}
	if c != nil && c.get && st.Kind == broker.StatusNoMessages {
		c.ch.conn.write(func(b []byte) []byte { return appendTag(b, c.ch.id, bGetEmpty, "") })
	}
	if c != nil && !c.get && st.Kind == broker.StatusMaxBytes {
		// The request's byte budget is spent: the next one when the
		// connection has room. A message larger than the budget alone
		// ended it: the next asks for just that one, without a budget.
		cn := c.ch.conn
		cn.outMu.Lock()
		c.credit = 0
		c.bigNext = st.PendingMsgs == c.lastBatch
		cn.outMu.Unlock()
		_ = cn.c.Do(func(*lnet.Conn) { c.topUp() })
	}
}

// Interest reports whether the consumer or basic.get is still there.
func (q *queue) Interest(subject string) bool {
	q.mu.Lock()
	c := q.subs[subject]
	l := q.local[subject]
	q.mu.Unlock()
	return c != nil && !c.isDead() || l != nil && l.alive()
}

// Event is not used: AMQP has no advisories.
func (q *queue) Event(broker.Event) {}

// consumer is a basic.consume, or a basic.get waiting for its message.
type consumer struct {
	ch       *channel
	q        *queue
	tag      string
	reply    string
	noAck    bool
	get      bool
	prefetch int
	// draining: a top-up waits for the connection to drain (loop only).
	draining bool
	// Guarded by the connection's outMu.
	credit    int
	lastBatch int
	bigNext   bool
	unacked   int
	dead      bool
}

func (c *consumer) isDead() bool {
	cn := c.ch.conn
	cn.outMu.Lock()
	defer cn.outMu.Unlock()
	return c.dead
}

// deliver writes a delivery to the channel; it runs on the queue's
// consumer goroutine.
func (c *consumer) deliver(d *broker.Delivery) bool {
	cn := c.ch.conn
	var exchange, key, props []byte
	for _, h := range d.Headers {
		switch string(h.Key) {
		case hdrExchange:
			exchange = h.Value
		case hdrRoutingKey:
			key = h.Value
		case hdrProps:
			props = h.Value
		}
	}
	if c.q.expired(d.Time, props) {
		cn.outMu.Lock()
		if c.credit > 0 {
			c.credit--
		}
		cn.outMu.Unlock()
		if c.get {
			cn.write(func(b []byte) []byte { return appendTag(b, c.ch.id, bGetEmpty, "") })
		}
		seq := d.StreamSeq
		_ = cn.c.Do(func(*lnet.Conn) {
			c.q.deadLetter(seq)
			_ = c.q.cons.Ack(seq, broker.Term, 0)
			if !c.get {
				c.topUp()
			}
		})
		return true
	}
	cn.outMu.Lock()
	if c.dead || cn.closed {
		cn.outMu.Unlock()
		return false
	}
	ch := c.ch
	ch.lastTag++
	tag := ch.lastTag
	if c.credit > 0 {
		c.credit--
	}
	if !c.noAck {
		ch.unacked[tag] = delivery{c: c, seq: d.StreamSeq}
		c.unacked++
	}
	redelivered := d.Deliveries > 1
	if c.get {
		cn.wbuf = appendGetOk(cn.wbuf[:0], ch.id, cn.frameMax, tag, redelivered, exchange, key, uint32(d.Pending), props, d.Payload)
	} else {
		cn.wbuf = appendDeliver(cn.wbuf[:0], ch.id, cn.frameMax, c.tag, tag, redelivered, exchange, key, props, d.Payload)
	}
	_ = cn.c.Write(cn.wbuf)
	cn.countOutLocked(len(d.Payload))
	refill := !c.noAck && !c.get && c.prefetch == 0 && c.credit == 0
	cn.outMu.Unlock()
	if refill {
		// An acking consumer without prefetch used up its request: the
		// next need not wait for an ack.
		_ = cn.c.Do(func(*lnet.Conn) { c.topUp() })
	}
	if c.noAck {
		seq := d.StreamSeq
		_ = cn.c.Do(func(*lnet.Conn) {
			_ = c.q.cons.Ack(seq, broker.Ack, 0)
			if !c.get {
				c.topUp()
			}
		})
	}
	return true
}

// topUp asks the queue for as many messages as the consumer's prefetch
// has room for. It runs on the connection's loop.
func (c *consumer) topUp() {
	cn := c.ch.conn
	if cn.c.Congested() {
		// Wait for the connection to drain rather than cut it off as a
		// slow consumer: for a consumer without prefetch nothing else
		// bounds what it is sent.
		if !c.draining {
			c.draining = true
			cn.c.AfterFunc(2*time.Millisecond, func(*lnet.Conn) {
				c.draining = false
				c.topUp()
			})
		}
		return
	}
	cn.outMu.Lock()
	want, maxBytes := 0, 0
	if !c.dead {
		if c.prefetch > 0 && !c.noAck {
			want = c.prefetch - c.unacked - c.credit
		} else if c.credit == 0 {
			want, maxBytes = unlimitedBatch, unlimitedBytes
			if c.bigNext {
				want, maxBytes = 1, 0
				c.bigNext = false
			}
			c.lastBatch = want
		}
	}
	if want > 0 {
		c.credit += want
	}
	cn.outMu.Unlock()
	if want > 0 {
		_ = c.q.cons.Pull(broker.PullRequest{Reply: c.reply, Batch: want, MaxBytes: maxBytes})
	}
}

// expired reports whether a message stored at t (Unix nanoseconds) has
// outlived the queue's TTL or its own expiration property (milliseconds).
func (q *queue) expired(t int64, rawProps []byte) bool {
	now := time.Now().UnixNano()
	if q.ttl > 0 && now-t >= int64(q.ttl) {
		return true
	}
	if len(rawProps) < 2 || rawProps[0]&(propExpiration>>8) == 0 {
		return false
	}
	var p props
	if parseProps(rawProps, &p) != nil || len(p.Expiration) == 0 {
		return false
	}
	ms := int64(0)
	for _, c := range p.Expiration {
		if c < '0' || c > '9' || ms > 1<<40 {
			return false
		}
		ms = ms*10 + int64(c-'0')
	}
	return now-t >= ms*int64(time.Millisecond)
}

// sweep dead-letters the messages at the head of the queue whose TTL has
// passed, as RabbitMQ does for a queue without consumers.
func (q *queue) sweep() {
	q.mu.Lock()
	deleted := q.deleted
	q.mu.Unlock()
	if deleted || q.srv.closed.Load() {
		return
	}
	for {
		info := q.stream.Info()
		if info.State.Msgs == 0 {
			break
		}
		m, err := q.stream.GetNextMsg(info.State.FirstSeq, "")
		if err != nil || time.Since(m.Time) < q.ttl {
			break
		}
		q.deadLetter(m.Seq)
		if q.stream.DeleteMsg(m.Seq) != nil {
			break
		}
	}
	q.timer.Reset(min(q.ttl, time.Second))
}

// touch records a use of the queue, for x-expires.
func (q *queue) touch() { q.lastUsed.Store(time.Now().UnixNano()) }

// expire deletes a queue unused for x-expires: no consumers, no
// basic.get and no redeclaration.
func (q *queue) expire() {
	if q.srv.closed.Load() {
		return
	}
	q.mu.Lock()
	idle := q.consumers == 0 && !q.deleted
	q.mu.Unlock()
	if !idle {
		q.expTimer.Reset(q.expires)
		return
	}
	if left := q.expires - time.Duration(time.Now().UnixNano()-q.lastUsed.Load()); left > 0 {
		q.expTimer.Reset(left)
		return
	}
	q.srv.adminMu.Lock()
	defer q.srv.adminMu.Unlock()
	q.srv.deleteQueue(q)
}
