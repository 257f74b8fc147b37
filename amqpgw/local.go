package amqpgw

import (
	"encoding/binary"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ledgemq/ledge/auth"
	"github.com/ledgemq/ledge/broker"
	"github.com/ledgemq/ledge/log"
	"github.com/ledgemq/ledge/router"
)

// This file is the gateway's door for another gateway of the same process
// (STOMP): it declares, binds and deletes queues, publishes to exchanges
// and consumes queues as an AMQP client would, on the same tables and
// streams, without a connection. What it declares is what AMQP clients see,
// and the reverse.

// Error is a refusal of the in-process API: the AMQP reply code and
// RabbitMQ's text for it, as an AMQP client would have been told.
type Error struct {
	Code int
	Text string
}

func (e *Error) Error() string { return "amqp: " + e.Text }

// Reply codes of the refusals callers branch on.
const (
	CodeAccessRefused  = codeAccessRefused
	CodeNotFound       = codeNotFound
	CodeResourceLocked = codeResourceLocked
	CodePrecondition   = codePrecondition
	CodeNotImplemented = codeNotImplemented
)

func localErr(e *amqpError) error {
	if e == nil {
		return nil
	}
	return &Error{Code: e.code, Text: e.text}
}

// Owner is a connection of another gateway: the exclusive queues it
// declares are its own, as an AMQP connection's are, and are deleted by
// Release. It is safe for concurrent use.
type Owner struct {
	s *Server
	// cn stands for the owner where queues record theirs; it has no
	// network connection and no channels.
	cn *conn

	mu        sync.Mutex
	exclusive []*queue
	released  bool
}

// NewOwner returns an owner for one connection of another gateway.
func (s *Server) NewOwner() *Owner { return &Owner{s: s, cn: &conn{srv: s}} }

// SetClient gives the owner the client its connection logged in as: the
// declarations, bindings and consumers made for it then need the same
// resource permissions (and amq.topic the same subject rules) as an AMQP
// connection's (permissions.go). Set it before the owner is used; nil is
// no auth.
func (o *Owner) SetClient(cl *auth.Client) { o.cn.client = cl }

// client is the owner's client, nil without one.
func (o *Owner) client() *auth.Client {
	if o == nil {
		return nil
	}
	return o.cn.client
}

func (o *Owner) conn() *conn {
	if o == nil {
		return nil
	}
	return o.cn
}

// Release deletes the owner's exclusive queues, with their messages. It
// blocks on the administrative lock and stream deletion: call it off the
// event loops.
func (o *Owner) Release() {
	// Under the administrative lock, so that no declaration for o is
	// half done: one that comes later is refused.
	o.s.adminMu.Lock()
	defer o.s.adminMu.Unlock()
	o.mu.Lock()
	qs := o.exclusive
	o.exclusive = nil
	o.released = true
	o.mu.Unlock()
	for _, q := range qs {
		o.s.deleteQueue(q)
	}
}

// Table is an AMQP field table being built, for queue and binding
// arguments. The zero value is an empty table.
type Table struct{ b []byte }

// SetString adds a long-string field.
func (t *Table) SetString(name, value string) { t.b = appendStringField(t.b, name, value) }

// SetInt adds a 64-bit integer field.
func (t *Table) SetInt(name string, v int64) {
	t.b = appendShortstr(t.b, name)
	t.b = append(t.b, 'l')
	t.b = binary.BigEndian.AppendUint64(t.b, uint64(v))
}

// SetBool adds a boolean field.
func (t *Table) SetBool(name string, v bool) { t.b = appendBoolField(t.b, name, v) }

// QueueOptions are queue.declare's flags and arguments.
type QueueOptions struct {
	Durable, Exclusive, AutoDelete bool
	Arguments                      Table
}

// HasQueue reports whether a queue named name exists.
func (s *Server) HasQueue(name []byte) bool {
	s.mu.RLock()
	_, ok := s.queues[string(name)]
	s.mu.RUnlock()
	return ok
}

// HasExchange reports whether an exchange named name exists.
func (s *Server) HasExchange(name []byte) bool {
	s.mu.RLock()
	_, ok := s.exchanges[string(name)]
	s.mu.RUnlock()
	return ok
}

// admin serves an administrative request for o, as queue.declare and
// friends are served for a channel. It blocks: call it off the loops.
func (s *Server) admin(o *Owner, r *adminReq) (*queue, error) {
	s.adminMu.Lock()
	defer s.adminMu.Unlock()
	if o != nil {
		o.mu.Lock()
		gone := o.released
		o.mu.Unlock()
		if gone {
			return nil, &Error{Code: codeResourceLocked, Text: "RESOURCE_LOCKED - owner released"}
		}
	}
	if cn := o.conn(); cn != nil && cn.client != nil {
		if r.id == qDeclare && r.queue == "" && !r.passive {
			// Named here, so that the configure permission is asked of
			// the name the queue will have.
			r.queue, r.named = s.newName(), true
		}
		if e := cn.permitAdmin(r); e != nil {
			return nil, localErr(e)
		}
	}
	_, q, e := s.serveAdmin(o.conn(), r)
	if e != nil {
		return nil, localErr(e)
	}
	if q != nil && q.exclusive && o != nil {
		o.mu.Lock()
		if !contains(o.exclusive, q) {
			o.exclusive = append(o.exclusive, q)
		}
		o.mu.Unlock()
	}
	return q, nil
}

// DeclareQueue declares a queue as queue.declare does, for owner o (which
// may be nil when the queue is not exclusive), and returns its name: the
// server makes one up when name is empty. It blocks on the
// administrative lock and on writing the definition: call it off the
// event loops.
func (s *Server) DeclareQueue(o *Owner, name string, opts QueueOptions) (string, error) {
	q, err := s.admin(o, &adminReq{id: qDeclare, queue: name, durable: opts.Durable, exclusive: opts.Exclusive,
		autoDelete: opts.AutoDelete, args: opts.Arguments.b})
	if err != nil {
		return "", err
	}
	return q.name, nil
}

// DeleteQueue deletes a queue with its messages, cancelling its
// consumers, as queue.delete does. It blocks: call it off the loops.
func (s *Server) DeleteQueue(o *Owner, name string) error {
	_, err := s.admin(o, &adminReq{id: qDelete, queue: name})
	return err
}

// Bind binds a queue to an exchange with a binding key, as queue.bind
// does. It blocks: call it off the loops.
func (s *Server) Bind(o *Owner, queue, exchange, key string, args Table) error {
	_, err := s.admin(o, &adminReq{id: qBind, queue: queue, exchange: exchange, key: key, args: args.b})
	return err
}

// Unbind removes a binding, as queue.unbind does. It blocks: call it off
// the loops.
func (s *Server) Unbind(o *Owner, queue, exchange, key string, args Table) error {
	_, err := s.admin(o, &adminReq{id: qUnbind, queue: queue, exchange: exchange, key: key, args: args.b})
	return err
}

// Header is an application header of a message: an entry of the AMQP
// headers table, its value written as a string.
type Header struct {
	Key, Value []byte
}

// Properties are a message's AMQP content properties. The Has fields say
// whether the numeric ones are set.
type Properties struct {
	ContentType, ContentEncoding []byte
	Headers                      []Header
	// DeliveryMode 2 is persistent: kept in a durable queue across a
	// restart.
	DeliveryMode  uint8
	Priority      uint8
	HasPriority   bool
	CorrelationID []byte
	ReplyTo       []byte
	Expiration    []byte
	MessageID     []byte
	Timestamp     int64 // seconds since the epoch
	HasTimestamp  bool
	Type          []byte
	UserID        []byte
	AppID         []byte
}

// appendProperties appends p as raw content properties: the flag word and
// the property list. Application headers become long-string fields.
func appendProperties(dst []byte, p *Properties) []byte {
	at := len(dst)
	dst = append(dst, 0, 0)
	var flags uint16
	str := func(bit uint16, v []byte) {
		if v != nil {
			flags |= bit
			dst = appendShortstrB(dst, v)
		}
	}
	str(propContentType, p.ContentType)
	str(propContentEncoding, p.ContentEncoding)
	if len(p.Headers) > 0 {
		flags |= propHeaders
		dst = appendTable(dst, func(b []byte) []byte {
			for _, h := range p.Headers {
				b = appendShortstrB(b, h.Key)
				b = append(b, 'S')
				b = binary.BigEndian.AppendUint32(b, uint32(len(h.Value)))
				b = append(b, h.Value...)
			}
			return b
		})
	}
	if p.DeliveryMode != 0 {
		flags |= propDeliveryMode
		dst = append(dst, p.DeliveryMode)
	}
	if p.HasPriority {
		flags |= propPriority
		dst = append(dst, p.Priority)
	}
	str(propCorrelationID, p.CorrelationID)
	str(propReplyTo, p.ReplyTo)
	str(propExpiration, p.Expiration)
	str(propMessageID, p.MessageID)
	if p.HasTimestamp {
		flags |= propTimestamp
		dst = binary.BigEndian.AppendUint64(dst, uint64(p.Timestamp))
	}
	str(propType, p.Type)
	str(propUserID, p.UserID)
	str(propAppID, p.AppID)
	binary.BigEndian.PutUint16(dst[at:], flags)
	return dst
}

// propScratch is reused storage for decoded properties: the headers and
// the text of numeric header values.
type propScratch struct {
	hdrs []Header
	num  []byte
}

// decodeProperties reads raw content properties into p; its slices point
// into raw and sc. Headers of types without a string form (nested tables,
// arrays, decimals, void) are left out.
func decodeProperties(raw []byte, p *Properties, sc *propScratch) bool {
	*p = Properties{}
	if len(raw) < 2 {
		return len(raw) == 0
	}
	flags := binary.BigEndian.Uint16(raw)
	r := reader{b: raw[2:]}
	for bit := uint16(1 << 15); bit >= propClusterID; bit >>= 1 {
		if flags&bit == 0 {
			continue
		}
		switch bit {
		case propContentType:
			p.ContentType = r.shortstr()
		case propContentEncoding:
			p.ContentEncoding = r.shortstr()
		case propHeaders:
			p.Headers = sc.headers(r.table())
		case propDeliveryMode:
			p.DeliveryMode = r.u8()
		case propPriority:
			p.Priority, p.HasPriority = r.u8(), true
		case propCorrelationID:
			p.CorrelationID = r.shortstr()
		case propReplyTo:
			p.ReplyTo = r.shortstr()
		case propExpiration:
			p.Expiration = r.shortstr()
		case propMessageID:
			p.MessageID = r.shortstr()
		case propTimestamp:
			p.Timestamp, p.HasTimestamp = int64(r.u64()), true
		case propType:
			p.Type = r.shortstr()
		case propUserID:
			p.UserID = r.shortstr()
		case propAppID:
			p.AppID = r.shortstr()
		default:
			r.shortstr()
		}
	}
	return r.err == nil
}

var trueText, falseText = []byte("true"), []byte("false")

// headers decodes a validated table's fields with a string form.
func (sc *propScratch) headers(t []byte) []Header {
	sc.hdrs = sc.hdrs[:0]
	sc.num = sc.num[:0]
	// The numbers' text is appended to num, which may move as it grows:
	// their places are noted first and the slices made at the end.
	type numAt struct{ i, from, to int }
	var spans [8]numAt
	nums := spans[:0]
	for len(t) > 0 {
		var f field
		f, t = nextField(t)
		h := Header{Key: f.Name}
		switch f.Type {
		case 'S', 'x':
			h.Value = f.Value[4:]
		case 't':
			h.Value = falseText
			if f.Value[0] != 0 {
				h.Value = trueText
			}
		case 'f', 'd':
			from := len(sc.num)
			if f.Type == 'f' {
				sc.num = strconv.AppendFloat(sc.num, float64(math.Float32frombits(binary.BigEndian.Uint32(f.Value))), 'g', -1, 32)
			} else {
				sc.num = strconv.AppendFloat(sc.num, math.Float64frombits(binary.BigEndian.Uint64(f.Value)), 'g', -1, 64)
			}
			nums = append(nums, numAt{len(sc.hdrs), from, len(sc.num)})
		default:
			v, ok := f.intValue()
			if !ok {
				continue
			}
			from := len(sc.num)
			sc.num = strconv.AppendInt(sc.num, v, 10)
			nums = append(nums, numAt{len(sc.hdrs), from, len(sc.num)})
		}
		sc.hdrs = append(sc.hdrs, h)
	}
	for _, n := range nums {
		sc.hdrs[n.i].Value = sc.num[n.from:n.to:n.to]
	}
	return sc.hdrs
}

// Publishing is one message for Publisher.Publish.
type Publishing struct {
	Exchange, RoutingKey []byte
	Properties           Properties
	Body                 []byte
}

// Publisher publishes into the gateway's exchanges for one connection of
// another gateway, with reused scratch. It is not safe for concurrent use.
type Publisher struct {
	s       *Server
	targets []*queue
	others  []broker.Receiver
	res     router.Result[*queue]
	liveRes router.Result[broker.Receiver]
	capRes  router.Result[*broker.Stream]
	hdrs    [3]log.Header
	props   []byte
	subject []byte
	liveHdr []log.Header

	// cl is the publishing client (nil: no auth); the write permission
	// of the last exchange is remembered.
	cl      *auth.Client
	permEx  string
	permOK  bool
	permSet bool
	pause   time.Duration
}

// NewPublisher returns a publisher with its own scratch.
func (s *Server) NewPublisher() *Publisher { return &Publisher{s: s} }

// SetClient makes the publisher's messages need the client's write
// permission on their exchange and, through amq.topic, its publish rules,
// with its payload and rate limits, as an AMQP channel's do. For the
// connection's loop, like Publish; nil is no auth.
func (p *Publisher) SetClient(cl *auth.Client) {
	p.cl = cl
	p.permSet = false
}

// RulesChanged forgets the publisher's remembered permission, after the
// client's rules changed.
func (p *Publisher) RulesChanged() { p.permSet = false }

// Pause returns how long the publisher's connection should stop reading to
// keep to its client's rate, as Publish left it (zero when within it).
func (p *Publisher) Pause() time.Duration { return p.pause }

// permit checks a publish to exchange ex of size bytes.
func (p *Publisher) permit(ex []byte, size int) error {
	cl := p.cl
	p.pause = 0
	if !p.permSet || string(ex) != p.permEx {
		p.permEx, p.permSet = string(ex), true
		p.permOK = cl.MayAccess(auth.Exchange, auth.Write, p.permEx)
	}
	if !p.permOK {
		return localErr(p.accessConn().accessErr(auth.Exchange, auth.Write, string(ex)))
	}
	if cl.Unrestricted() {
		return nil
	}
	lim := cl.Limits()
	if lim.MaxPayload > 0 && int64(size) > lim.MaxPayload {
		p.s.denied.Add(1)
		return &Error{Code: codePrecondition, Text: "PRECONDITION_FAILED - message size is larger than the user's max-payload"}
	}
	if cl.HasRateLimit() {
		pause, err := cl.Rate(size)
		if err != nil {
			return &Error{Code: codeConnectionForced, Text: "CONNECTION_FORCED - publishing above the rate limit for too long"}
		}
		p.pause = pause
	}
	return nil
}

// accessConn is the connection that refusals are counted and named for.
func (p *Publisher) accessConn() *conn { return &conn{srv: p.s, client: p.cl} }

// Publish routes m as basic.publish routes a message to m.Exchange with
// m.RoutingKey: into the queues bound there, and through amq.topic to the
// live subscribers of every protocol and the stream that captures its
// subject. It reports whether anything took the message, or returns an
// *Error for an exchange that does not exist or is internal. done, when
// not nil, is called once (from any goroutine) when every queue and stream
// that took the message has it durably, with the first error if one
// refused it; at once when none did. Publish does not block and does not
// keep m.
func (p *Publisher) Publish(m *Publishing, done func(broker.PubAck, error)) (bool, error) {
	s := p.s
	if p.cl != nil {
		if err := p.permit(m.Exchange, len(m.Body)); err != nil {
			return false, err
		}
	}
	p.props = appendProperties(p.props[:0], &m.Properties)
	ex, key := m.Exchange, m.RoutingKey
	targets := p.targets[:0]
	others := p.others[:0]
	var capture *broker.Stream
	var reply *consumer
	s.mu.RLock()
	x := s.exchanges[string(ex)]
	if x == nil {
		s.mu.RUnlock()
		return false, &Error{Code: codeNotFound, Text: "NOT_FOUND - no exchange '" + string(ex) + "' in vhost '/'"}
	}
	if x.internal {
		s.mu.RUnlock()
		return false, &Error{Code: codeAccessRefused, Text: "ACCESS_REFUSED - cannot publish to internal exchange '" + string(ex) + "' in vhost '/'"}
	}
	for hops := 0; x != nil && hops < 4; hops++ {
		switch {
		case x.name == "":
			if q := s.queues[string(key)]; q != nil {
				targets = append(targets, q)
			} else if strings.HasPrefix(string(key), directReplyTo+".") {
				reply = s.replyTo[string(key)]
			}
		case x.live:
			p.subject = p.subject[:0]
			subj, err := router.SubjectFromAMQPRoutingKey(string(key))
			if err == nil && p.cl != nil {
				p.subject = append(p.subject, subj...)
				if !p.cl.MayPublish(p.subject) {
					s.mu.RUnlock()
					s.denied.Add(1)
					p.cl.Denied("publish", subj)
					return false, &Error{Code: codeAccessRefused, Text: "ACCESS_REFUSED - write access to topic '" + string(key) + "' in exchange 'amq.topic' in vhost '/' refused for user '" + p.cl.User() + "'"}
				}
				p.subject = p.subject[:0]
			}
			if err == nil && s.live.Match(subj, &p.liveRes) == nil {
				for _, r := range p.liveRes.Subs {
					if qr, ok := r.(*queueReceiver); ok {
						targets = append(targets, qr.q)
					} else {
						others = append(others, r)
					}
				}
				for i := range p.liveRes.Groups {
					if r, ok := p.liveRes.Groups[i].Pick(nil); ok {
						others = append(others, r)
					}
				}
				p.subject = append(p.subject, subj...)
				capture = s.b.Capture(p.subject, &p.capRes)
			}
		default:
			var hdrs []byte
			if x.kind == kindHeaders {
				hdrs = p.headersTable(&m.Properties)
			}
			targets = x.route(targets, key, hdrs, &p.res)
		}
		if len(x.exBindings) > 0 {
			var hdrs []byte
			if len(m.Properties.Headers) > 0 {
				hdrs = p.headersTable(&m.Properties)
			}
			targets = dedupe(s.routeOnward(targets, x, key, hdrs, 0))
		}
		if len(targets) > 0 || len(others) > 0 || reply != nil || x.alternate == "" {
			break
		}
		x = s.exchanges[x.alternate]
	}
	s.mu.RUnlock()
	p.targets, p.others = targets, others

	if len(others) > 0 {
		p.liveHdr = p.liveHdr[:0]
		for _, h := range m.Properties.Headers {
			p.liveHdr = append(p.liveHdr, log.Header{Key: h.Key, Value: h.Value})
		}
		lm := broker.Msg{Subject: p.subject, Reply: m.Properties.ReplyTo, Headers: p.liveHdr, Payload: m.Body}
		for _, r := range others {
			r.Deliver(&lm)
		}
	}
	if reply != nil {
		reply.deliverDirect(ex, key, p.props, m.Body)
	}
	routed := len(targets) > 0 || len(others) > 0 || reply != nil || capture != nil
	stores := len(targets)
	if capture != nil {
		stores++
	}
	cb := done
	switch {
	case done == nil:
		cb = noConfirm
	case stores == 0:
		done(broker.PubAck{}, nil)
	case stores > 1:
		lp := &localPending{done: done}
		lp.left.Store(int32(stores))
		cb = lp.settle
	}
	for _, q := range targets {
		if err := q.publish(&p.hdrs, ex, key, p.props, m.Body, cb); err != nil {
			cb(broker.PubAck{}, err)
		}
	}
	if capture != nil {
		if err := capture.Publish(&broker.Message{Subject: p.subject, Headers: p.liveHdr, Payload: m.Body}, cb); err != nil {
			cb(broker.PubAck{}, err)
		}
	}
	return routed, nil
}

// headersTable returns the application headers as a table's content, for
// a headers exchange to match.
func (p *Publisher) headersTable(props *Properties) []byte {
	if len(props.Headers) == 0 {
		return nil
	}
	// The raw properties start with the flags, content type and encoding;
	// the table follows them.
	r := reader{b: p.props[2:]}
	flags := binary.BigEndian.Uint16(p.props)
	if flags&propContentType != 0 {
		r.shortstr()
	}
	if flags&propContentEncoding != 0 {
		r.shortstr()
	}
	return r.table()
}

// localPending is a publish waiting for several stores.
type localPending struct {
	left atomic.Int32
	err  atomic.Pointer[error]
	done func(broker.PubAck, error)
}

func (lp *localPending) settle(a broker.PubAck, err error) {
	if err != nil {
		lp.err.CompareAndSwap(nil, &err)
	}
	if lp.left.Add(-1) == 0 {
		var e error
		if p := lp.err.Load(); p != nil {
			e = *p
		}
		lp.done(a, e)
	}
}

// Delivery is one message for a Sink. Its slices are valid only during
// Sink.Deliver.
type Delivery struct {
	Exchange, RoutingKey []byte
	Properties           Properties
	Body                 []byte
	// Seq identifies the message to Subscription.Ack and Nack.
	Seq uint64
	// Redelivered says it was delivered before and not acknowledged.
	Redelivered bool
}

// Sink is where a Subscription's messages go: a subscription of another
// gateway's connection.
type Sink interface {
	// Deliver hands over one message. It runs on the queue's consumer
	// goroutine and must not block or call back into the Subscription;
	// false refuses the message, which goes back to the queue.
	Deliver(d *Delivery) bool
	// Do runs fn later on the sink's own goroutine (the connection's
	// event loop), serialized with its other work; false when the sink
	// is gone.
	Do(fn func()) bool
	// Congested reports that the sink's connection is backed up: the
	// next request for messages waits until it is not.
	Congested() bool
	// Cancelled says the queue was deleted: nothing more will come.
	Cancelled()
}

// ConsumeOptions configure a Subscription.
type ConsumeOptions struct {
	// Prefetch caps the messages delivered and not acknowledged (0: no
	// cap; the connection's backlog holds deliveries back instead).
	Prefetch int
	// NoAck acknowledges every message as it is delivered.
	NoAck bool
	// Exclusive refuses other consumers while this one lasts.
	Exclusive bool
	// Owner may consume its own exclusive queues.
	Owner *Owner
}

// Subscription is a consumer of a queue, as basic.consume makes one, for
// another gateway. Its methods are safe from any goroutine except the
// queue's consumer goroutine (inside Sink.Deliver).
type Subscription struct {
	s        *Server
	q        *queue
	sink     Sink
	reply    string
	noAck    bool
	prefetch int

	mu        sync.Mutex
	credit    int
	lastBatch int
	bigNext   bool
	unacked   int
	dead      bool
	draining  atomic.Bool
	acks      []uint64 // NoAck: delivered, to be acknowledged by drain
	spare     []uint64
	ackQueued bool

	// Used on the consumer goroutine only.
	d       Delivery
	scratch propScratch
	drainFn func()
	topUpFn func()
}

// Consume starts a consumer of the queue named queue, delivering to sink.
// It returns an *Error when the queue does not exist, is another's
// exclusive queue or has an exclusive consumer. It does not block.
func (s *Server) Consume(queue string, opts ConsumeOptions, sink Sink) (*Subscription, error) {
	// Asked first, so that a refusal does not tell which queues exist.
	if cl := opts.Owner.client(); cl != nil && !cl.MayAccess(auth.Queue, auth.Read, queue) {
		return nil, localErr(opts.Owner.cn.accessErr(auth.Queue, auth.Read, queue))
	}
	s.mu.RLock()
	q := s.queues[queue]
	s.mu.RUnlock()
	if q == nil {
		return nil, &Error{Code: codeNotFound, Text: "NOT_FOUND - no queue '" + queue + "' in vhost '/'"}
	}
	if q.exclusive && q.owner != opts.Owner.conn() {
		return nil, &Error{Code: codeResourceLocked, Text: "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '" + queue + "' in vhost '/'"}
	}
	sub := &Subscription{s: s, q: q, sink: sink, noAck: opts.NoAck, prefetch: opts.Prefetch,
		reply: "l." + s.idBase + "." + strconv.FormatUint(s.nextID.Add(1), 36)}
	sub.drainFn = sub.drain
	sub.topUpFn = sub.topUp
	q.mu.Lock()
	if q.deleted {
		q.mu.Unlock()
		return nil, &Error{Code: codeNotFound, Text: "NOT_FOUND - no queue '" + queue + "' in vhost '/'"}
	}
	if opts.Exclusive && q.consumers > 0 || q.exclusiveConsumer {
		q.mu.Unlock()
		return nil, &Error{Code: codeAccessRefused, Text: "ACCESS_REFUSED - queue '" + queue + "' in vhost '/' in exclusive use"}
	}
	q.exclusiveConsumer = opts.Exclusive
	q.touch()
	q.consumers++
	q.hadConsumer = true
	if q.local == nil {
		q.local = make(map[string]*Subscription)
	}
	q.local[sub.reply] = sub
	q.mu.Unlock()
	sub.topUp()
	return sub, nil
}

// Queue returns the name of the queue consumed.
func (sub *Subscription) Queue() string { return sub.q.name }

// deliver hands a delivery to the sink; it runs on the queue's consumer
// goroutine.
func (sub *Subscription) deliver(bd *broker.Delivery) bool {
	var exchange, key, props []byte
	for _, h := range bd.Headers {
		switch string(h.Key) {
		case hdrExchange:
			exchange = h.Value
		case hdrRoutingKey:
			key = h.Value
		case hdrProps:
			props = h.Value
		}
	}
	if sub.q.expired(bd.Time, props) {
		sub.mu.Lock()
		if sub.credit > 0 {
			sub.credit--
		}
		sub.mu.Unlock()
		seq := bd.StreamSeq
		sub.sink.Do(func() {
			sub.q.deadLetter(seq)
			_ = sub.q.cons.Ack(seq, broker.Term, 0)
			sub.topUp()
		})
		return true
	}
	sub.mu.Lock()
	if sub.dead {
		sub.mu.Unlock()
		return false
	}
	if sub.credit > 0 {
		sub.credit--
	}
	if !sub.noAck {
		sub.unacked++
	}
	refill := !sub.noAck && sub.prefetch == 0 && sub.credit == 0
	sub.mu.Unlock()
	d := &sub.d
	if !decodeProperties(props, &d.Properties, &sub.scratch) {
		d.Properties = Properties{}
	}
	d.Exchange, d.RoutingKey, d.Body = exchange, key, bd.Payload
	d.Seq, d.Redelivered = bd.StreamSeq, bd.Deliveries > 1
	if !sub.sink.Deliver(d) {
		sub.mu.Lock()
		if !sub.noAck {
			sub.unacked--
		}
		sub.mu.Unlock()
		return false
	}
	if sub.noAck {
		sub.mu.Lock()
		sub.acks = append(sub.acks, bd.StreamSeq)
		queue := !sub.ackQueued
		sub.ackQueued = true
		sub.mu.Unlock()
		if queue {
			sub.sink.Do(sub.drainFn)
		}
	} else if refill {
		// The request is used up: the next need not wait for an ack.
		sub.sink.Do(sub.topUpFn)
	}
	return true
}

// drain acknowledges what a NoAck subscription was sent, off the consumer
// goroutine, and asks for more.
func (sub *Subscription) drain() {
	sub.mu.Lock()
	acks := sub.acks
	sub.acks = sub.spare[:0]
	sub.ackQueued = false
	sub.mu.Unlock()
	for _, seq := range acks {
		_ = sub.q.cons.Ack(seq, broker.Ack, 0)
	}
	sub.mu.Lock()
	sub.spare = acks[:0]
	sub.mu.Unlock()
	sub.topUp()
}

// status handles a pull request's end: its byte budget spent.
func (sub *Subscription) status(st broker.Status) {
	if st.Kind != broker.StatusMaxBytes {
		return
	}
	sub.mu.Lock()
	sub.credit = 0
	// A message larger than the budget alone ended it: the next request
	// asks for that one without a budget.
	sub.bigNext = st.PendingMsgs == sub.lastBatch
	sub.mu.Unlock()
	sub.sink.Do(sub.topUpFn)
}

func (sub *Subscription) alive() bool {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	return !sub.dead
}

// topUp asks the queue for as many messages as the prefetch has room for,
// or for the next batch when there is none.
func (sub *Subscription) topUp() {
	if sub.sink.Congested() {
		// Wait for the connection to drain rather than cut it off as a
		// slow consumer.
		if sub.draining.CompareAndSwap(false, true) {
			time.AfterFunc(2*time.Millisecond, func() {
				sub.draining.Store(false)
				sub.sink.Do(sub.topUpFn)
			})
		}
		return
	}
	sub.mu.Lock()
	want, maxBytes := 0, 0
	if !sub.dead {
		if sub.prefetch > 0 && !sub.noAck {
			want = sub.prefetch - sub.unacked - sub.credit
			if sub.credit > 0 && want < (sub.prefetch+3)/4 {
				// A request is still out: ask again for a quarter of the
				// prefetch at once rather than one message per ack, each
				// request costing the consumer a wake-up.
				want = 0
			}
		} else if sub.credit == 0 {
			want, maxBytes = unlimitedBatch, unlimitedBytes
			if sub.bigNext {
				want, maxBytes = 1, 0
				sub.bigNext = false
			}
			sub.lastBatch = want
		}
	}
	if want > 0 {
		sub.credit += want
	}
	sub.mu.Unlock()
	if want > 0 {
		_ = sub.q.cons.Pull(broker.PullRequest{Reply: sub.reply, Batch: want, MaxBytes: maxBytes})
	}
}

// Ack acknowledges the delivered message seq: it is done and leaves the
// queue.
func (sub *Subscription) Ack(seq uint64) error {
	err := sub.q.cons.Ack(seq, broker.Ack, 0)
	sub.settled()
	return err
}

// Nack gives the delivered message seq back to the queue, to be delivered
// again, or with requeue false drops it (dead-lettering it when the queue
// has a dead-letter exchange).
func (sub *Subscription) Nack(seq uint64, requeue bool) error {
	var err error
	if requeue {
		err = sub.q.cons.Ack(seq, broker.Nak, 0)
	} else {
		sub.q.deadLetter(seq)
		err = sub.q.cons.Ack(seq, broker.Term, 0)
	}
	sub.settled()
	return err
}

func (sub *Subscription) settled() {
	sub.mu.Lock()
	if sub.unacked > 0 {
		sub.unacked--
	}
	sub.mu.Unlock()
	sub.topUp()
}

// Cancel stops the subscription and gives unacked, the messages it was
// delivered and did not acknowledge, back to the queue in that order, to
// be delivered again with Redelivered set. An auto-delete queue goes with
// its last consumer.
func (sub *Subscription) Cancel(unacked []uint64) {
	sub.mu.Lock()
	was := sub.dead
	sub.dead = true
	sub.mu.Unlock()
	q := sub.q
	for _, seq := range unacked {
		_ = q.cons.Ack(seq, broker.Nak, 0)
	}
	if was {
		return
	}
	q.mu.Lock()
	if q.local[sub.reply] == sub {
		delete(q.local, sub.reply)
		q.touch()
		q.consumers--
		q.exclusiveConsumer = false
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

// cancelled is the queue's deletion: the sink is told.
func (sub *Subscription) cancelled() {
	sub.mu.Lock()
	sub.dead = true
	sub.mu.Unlock()
	sub.sink.Cancelled()
}
