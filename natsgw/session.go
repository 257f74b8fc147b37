package natsgw

import (
	"encoding/json"
	"errors"
	"sync/atomic"
	"time"

	"github.com/ledgemq/ledge/broker"
	"github.com/ledgemq/ledge/log"
	"github.com/ledgemq/ledge/router"
)

// Conn is what a session needs of its network connection; both of ledge's
// transports provide it.
type Conn interface {
	// Write queues a copy of b to be sent to the client. It is safe from any
	// goroutine and does not block; it fails once the connection is closed
	// or when its outbound queue is full, which makes the client a slow
	// consumer that the transport disconnects.
	Write(b []byte) error
	// Congested reports, from any goroutine, that the outbound queue is
	// over half full.
	Congested() bool
	// PauseReading stops reading the client's input for a while; the
	// session calls it on its own connection only.
	PauseReading(d time.Duration)
}

// A publisher whose messages congest a receiver is paused for stallPause at
// a time, at most maxStalls times in a row: long enough for a merely slow
// receiver to drain, short enough that one that stopped reading reaches its
// outbound limit and is cut off within about a second, instead of holding
// its publishers back for good. nats-server bounds its producer stalls the
// same way.
const (
	stallPause = 2 * time.Millisecond
	maxStalls  = 10
)

// minSweep is the smallest subscription map that is swept for spent
// entries.
const minSweep = 64

// Errors a session reports to its transport, which closes the connection
// after flushing the -ERR line the session queued.
var (
	ErrAuthorization = &ProtocolError{"Authorization Violation"}
	ErrAuthTimeout   = &ProtocolError{"Authentication Timeout"}
	ErrStale         = &ProtocolError{"Stale Connection"}
	ErrInvalidSubj   = &ProtocolError{"Invalid Subject"}
	ErrBadConnect    = &ProtocolError{"Parser Error: bad CONNECT options"}
	// errSidInUse is a warning, not a disconnect: the SUB is ignored.
	errSidInUse = errors.New("sid in use")
)

// subscription is the router's handle for one SUB of one session.
type subscription struct {
	session *Session
	sid     string
	subject string
	queue   string
	// headers says whether the subscriber's client understands HMSG; it is
	// fixed when the subscription is made so that publishers on other loops
	// can read it without a lock.
	headers bool
	// max is the number of deliveries after which the subscription ends
	// (UNSUB <sid> <max>); 0 means no limit. delivered counts them. Both
	// are touched by publishers on any loop.
	max       atomic.Int64
	delivered atomic.Int64
	removed   atomic.Bool
}

// connectOptions is CONNECT's object, the fields ledge acts on.
type connectOptions struct {
	Verbose      bool   `json:"verbose"`
	Pedantic     bool   `json:"pedantic"`
	Echo         *bool  `json:"echo"`
	Headers      bool   `json:"headers"`
	NoResponders bool   `json:"no_responders"`
	Name         string `json:"name"`
	Lang         string `json:"lang"`
	Version      string `json:"version"`
	Protocol     int    `json:"protocol"`
	User         string `json:"user"`
	Pass         string `json:"pass"`
	AuthToken    string `json:"auth_token"`
}

// Session is one client connection's protocol state. Its methods other
// than Closed run on the event loop that owns the connection and must not
// be called concurrently; deliveries from publishers on other loops only
// write to its Conn.
type Session struct {
	srv    *Server
	conn   Conn
	id     uint64
	remote string
	parser Parser

	connected    bool // CONNECT was accepted
	verbose      bool
	pedantic     bool
	echo         bool
	headers      bool
	noResponders bool

	subs map[string]*subscription // by sid
	// sweepAt is the size of subs at which entries removed by their UNSUB
	// limit (on a publisher's loop, which cannot touch this map) are
	// swept out; see subscribe.
	sweepAt  int
	pingsOut int
	active   bool // input arrived since the last ping timer

	// stalledOn is a receiver this session's messages congested; while it
	// stays congested the session takes no more input (see stallPause).
	stalledOn Conn
	stalls    int

	// Reused on every publish; only this session's loop touches them.
	res router.Result[broker.Receiver]
	// foreign is the message as other protocols' subscribers get it,
	// built once per publish when one of them matches.
	foreign     broker.Msg
	foreignHdrs []log.Header
	out         []byte

	// JetStream: the stream capture lookup, the message handed to a
	// stream and its parsed headers, and the consumer last acknowledged
	// or pulled from (see jsapi.go).
	streamRes    router.Result[*broker.Stream]
	jsMsg        broker.Message
	jsHdrs       []log.Header
	jsExpSeq     uint64
	jsExpSubjSeq uint64
	ackCons      *broker.Consumer

	// Deliveries gathered during one Feed (batch.go), and the message
	// counts added to the server's statistics once per Feed.
	batches         [maxBatches]outBatch
	nbatch          int
	inMsgs, inBytes int64

	mon sessionStats // for monitoring (stats.go)
}

// Open starts a session on a new connection and sends the INFO line.
// remoteIP is the client's address without the port, reported back in
// INFO.
func (s *Server) Open(c Conn, remoteIP string) *Session {
	ss := &Session{
		srv:     s,
		conn:    c,
		id:      s.nextCID.Add(1),
		remote:  remoteIP,
		echo:    true,
		subs:    make(map[string]*subscription),
		sweepAt: minSweep,
		parser:  Parser{MaxControlLine: s.opts.MaxControlLine, MaxPayload: s.opts.MaxPayload},
	}
	info, _ := json.Marshal(s.info(ss.id, remoteIP))
	line := make([]byte, 0, len(info)+8)
	line = append(line, "INFO "...)
	line = append(line, info...)
	line = append(line, crlf...)
	_ = c.Write(line)
	s.sessions.add(ss)
	return ss
}

// ID returns the client id reported in INFO.
func (ss *Session) ID() uint64 { return ss.id }

// Feed decodes and acts on the bytes that arrived, and returns how many it
// used; the caller keeps the rest and presents it again with the next
// bytes. A non-nil error means the session queued an -ERR line and the
// caller must close the connection after flushing it.
func (ss *Session) Feed(in []byte) (consumed int, err error) {
	ss.active = true
	if ss.stalledOn != nil {
		if ss.stalledOn.Congested() && ss.stalls < maxStalls {
			ss.stall()
			return 0, nil
		}
		ss.stalledOn, ss.stalls = nil, 0
	}
	consumed, err = ss.parser.Parse(in, ss)
	ss.flushBatches()
	if ss.inMsgs > 0 {
		ss.srv.stats.InMsgs.Add(ss.inMsgs)
		ss.srv.stats.InBytes.Add(ss.inBytes)
		ss.mon.inMsgs.Add(ss.inMsgs)
		ss.inMsgs, ss.inBytes = 0, 0
	}
	if ss.stalledOn != nil && err == nil {
		ss.stall()
	}
	if err != nil {
		var pe *ProtocolError
		if errors.As(err, &pe) {
			if pe == ErrAuthorization {
				ss.srv.stats.AuthFailures.Add(1)
			} else {
				ss.srv.stats.ProtocolErrors.Add(1)
			}
			ss.sendErr(pe.Text)
		}
	}
	return consumed, err
}

// stall pauses this publisher's input while a receiver drains.
func (ss *Session) stall() {
	ss.stalls++
	ss.srv.stats.Stalls.Add(1)
	ss.conn.PauseReading(stallPause)
}

// HandleOp implements OpHandler; it is called by Feed for each operation.
func (ss *Session) HandleOp(op *Op) error {
	if !ss.connected && op.Kind != OpConnect && ss.srv.opts.authRequired() {
		return ErrAuthorization
	}
	switch op.Kind {
	case OpConnect:
		if err := ss.connect(op.JSON); err != nil {
			return err
		}
	case OpPing:
		ss.flushBatches()
		return ss.conn.Write(pongLine)
	case OpPong:
		ss.pingsOut = 0
		return nil
	case OpPub, OpHPub:
		if err := ss.publish(op); err != nil {
			return err
		}
	case OpSub:
		if err := ss.subscribe(op); err != nil {
			if err == errSidInUse {
				return nil
			}
			return err
		}
	case OpUnsub:
		ss.unsubscribe(op)
	}
	if ss.verbose {
		ss.flushBatches()
		return ss.conn.Write(okLine)
	}
	return nil
}

func (ss *Session) connect(raw []byte) error {
	var o connectOptions
	if err := json.Unmarshal(raw, &o); err != nil {
		return ErrBadConnect
	}
	opts := &ss.srv.opts
	if opts.authRequired() {
		ok := (opts.Token != "" && o.AuthToken == opts.Token) ||
			(opts.Username != "" && o.User == opts.Username && o.Pass == opts.Password)
		if !ok {
			ss.srv.opts.Logger.Info("nats: authorization failed", "client", ss.id, "remote", ss.remote, "user", o.User)
			return ErrAuthorization
		}
	}
	ss.connected = true
	ss.mon.setClient(&o)
	ss.verbose, ss.pedantic = o.Verbose, o.Pedantic
	ss.echo = o.Echo == nil || *o.Echo
	ss.headers = o.Headers
	// No responders needs headers to carry the 503 status.
	ss.noResponders = o.NoResponders && o.Headers
	return nil
}

// publish routes one message to every matching subscription. The subject
// is looked up straight from the parser's buffer, which the router does
// not keep.
func (ss *Session) publish(op *Op) error {
	srv := ss.srv
	ss.inMsgs++
	ss.inBytes += int64(len(op.Header) + len(op.Payload))
	if ss.pedantic {
		if err := router.ValidateSubject(string(op.Subject)); err != nil {
			return ErrInvalidSubj
		}
	}
	// The JetStream API's own subjects ($JS.API, $JS.ACK, $JS.FC) are
	// served here; core subscribers ("nats sub '>'") still see them, as
	// with nats-server, but they never make a request "no responders".
	jsOwned := srv.js != nil && len(op.Subject) > 0 && op.Subject[0] == '$' && ss.jsPublish(op)
	if err := srv.router.MatchBytes(op.Subject, &ss.res); err != nil {
		if jsOwned {
			// A consumer create subject may end in its filter, wildcards
			// and all: served, but no subscriber can match it.
			return nil
		}
		return ErrInvalidSubj
	}
	// Like nats-server, "no responders" means no interest: a request that
	// reached a subscriber whose connection was closing is not answered
	// with a 503.
	delivered := 0
	ss.foreign.Subject = nil
	for _, r := range ss.res.Subs {
		sub, ok := r.(*subscription)
		if !ok {
			// An MQTT, AMQP or STOMP subscriber: the message in the
			// protocols' common form.
			if r.Deliver(ss.foreignMsg(op)) {
				delivered++
			}
			continue
		}
		if sub.session == ss && !ss.echo {
			continue
		}
		if ss.deliver(sub, op) {
			delivered++
		}
	}
	for i := range ss.res.Groups {
		g := &ss.res.Groups[i]
		// A member that has been removed (auto-unsubscribe reached its
		// limit on another loop) or is this publisher without echo is
		// passed over.
		r, ok := g.Pick(ss.skipMember)
		if !ok {
			continue
		}
		if sub, isNATS := r.(*subscription); isNATS {
			if ss.deliver(sub, op) {
				delivered++
			}
		} else if r.Deliver(ss.foreignMsg(op)) {
			delivered++
		}
	}
	if srv.js != nil && !jsOwned {
		// A stream that captures the subject stores it; with a reply
		// subject, the PubAck answers once the message is durable.
		if st := srv.js.b.Capture(op.Subject, &ss.streamRes); st != nil && ss.capture(st, op) {
			delivered++
		}
	}
	if delivered == 0 && !jsOwned && len(op.Reply) > 0 && ss.noResponders {
		ss.sendNoResponders(op.Reply)
	}
	return nil
}

func (ss *Session) skipMember(r broker.Receiver) bool {
	sub, ok := r.(*subscription)
	return ok && (sub.removed.Load() || (sub.session == ss && !ss.echo))
}

// foreignMsg returns op as a broker.Msg, parsing its header block once per
// publish. Its slices alias the parser's buffer, valid during the publish.
func (ss *Session) foreignMsg(op *Op) *broker.Msg {
	m := &ss.foreign
	if m.Subject != nil {
		return m
	}
	ss.foreignHdrs = ss.foreignHdrs[:0]
	if len(op.Header) > 0 {
		ss.foreignHdrs, _ = ParseHeaders(ss.foreignHdrs, op.Header)
	}
	*m = broker.Msg{Subject: op.Subject, Reply: op.Reply, Headers: ss.foreignHdrs, Payload: op.Payload, Origin: ss}
	return m
}

// deliver queues one MSG or HMSG for the subscription's connection and
// reports whether the subscription takes it (false past its UNSUB limit).
func (ss *Session) deliver(sub *subscription, op *Op) bool {
	// Every delivery counts, so that "UNSUB <sid> <max>" limits the total
	// as the client library expects, whenever it arrives.
	n := sub.delivered.Add(1)
	if max := sub.max.Load(); max > 0 {
		if n > max {
			return false
		}
		if n == max {
			sub.session.srv.removeSub(sub)
		}
	}
	header := op.Header
	if !sub.headers {
		// A client that did not announce headers gets the payload alone,
		// as nats-server does.
		header = nil
	}
	ss.deliverTo(sub.session, op, sub.sid, header)
	return true
}

// appendMsg appends the whole MSG or HMSG of op for subscription sid.
func appendMsg(dst []byte, op *Op, sid string, header []byte) []byte {
	dst = AppendMsgLine(dst, op.Subject, sid, op.Reply, len(header), len(op.Payload))
	dst = append(dst, header...)
	dst = append(dst, op.Payload...)
	return append(dst, crlf...)
}

// sendNoResponders tells this client that nobody listens on the subject of
// its request, by a 503 status message on its own subscriptions to the
// reply subject.
func (ss *Session) sendNoResponders(reply []byte) {
	ss.flushBatches()
	if err := ss.srv.router.MatchBytes(reply, &ss.res); err != nil {
		return
	}
	for _, r := range ss.res.Subs {
		sub, ok := r.(*subscription)
		if !ok || sub.session != ss {
			continue
		}
		out := AppendMsgLine(ss.out[:0], reply, sub.sid, nil, len(noRespondersHeader), 0)
		out = append(out, noRespondersHeader...)
		out = append(out, crlf...)
		ss.out = out
		_ = ss.conn.Write(out)
	}
}

func (ss *Session) subscribe(op *Op) error {
	sid := string(op.SID)
	if old, dup := ss.subs[sid]; dup && !old.removed.Load() {
		return errSidInUse
	}
	if len(ss.subs) >= ss.sweepAt {
		// Old-style requests subscribe with "UNSUB <sid> 1" and never
		// unsubscribe again; without this sweep their spent entries would
		// pile up for the life of the connection. Sweeping when the map has
		// doubled keeps it within twice the live subscriptions, at a cost
		// spread over the subscribes.
		for k, sub := range ss.subs {
			if sub.removed.Load() {
				delete(ss.subs, k)
			}
		}
		ss.sweepAt = max(minSweep, 2*len(ss.subs))
	}
	sub := &subscription{
		session: ss,
		sid:     sid,
		subject: string(op.Subject),
		queue:   string(op.Queue),
		headers: ss.headers,
	}
	if _, err := ss.srv.router.Insert(router.Subscription[broker.Receiver]{
		Pattern: sub.subject,
		Queue:   sub.queue,
		Handle:  sub,
	}); err != nil {
		return ErrInvalidSubj
	}
	ss.subs[sid] = sub
	ss.mon.subs.Add(1)
	return nil
}

func (ss *Session) unsubscribe(op *Op) {
	sub, ok := ss.subs[string(op.SID)]
	if !ok {
		return
	}
	if op.Max > 0 {
		// Deliver up to max messages in all, then remove; publishers on
		// other loops see max and remove it when they reach it.
		sub.max.Store(op.Max)
		if sub.delivered.Load() < op.Max {
			return
		}
	}
	delete(ss.subs, sub.sid)
	ss.srv.removeSub(sub)
}

// removeSub takes a subscription out of the router once.
func (s *Server) removeSub(sub *subscription) {
	if sub.removed.Swap(true) {
		return
	}
	sub.session.mon.subs.Add(-1)
	s.router.Remove(router.Subscription[broker.Receiver]{
		Pattern: sub.subject,
		Queue:   sub.queue,
		Handle:  sub,
	})
}

// PingTimer is called by the transport every Options.PingInterval. A
// client that sent nothing since the last call is pinged; one that has left
// MaxPingsOut pings unanswered is stale: PingTimer queues the -ERR and
// returns ErrStale, and the caller closes the connection.
func (ss *Session) PingTimer() error {
	if ss.active {
		// Traffic proves the client is alive; nats-server skips the ping
		// then too.
		ss.active = false
		ss.pingsOut = 0
		return nil
	}
	if ss.pingsOut >= ss.srv.opts.MaxPingsOut {
		ss.sendErr(ErrStale.Text)
		return ErrStale
	}
	ss.pingsOut++
	return ss.conn.Write(pingLine)
}

// AuthTimer is called by the transport once, Options.AuthTimeout after the
// connection opened, when authentication is required. A client that has
// not authenticated by then is refused.
func (ss *Session) AuthTimer() error {
	if ss.connected || !ss.srv.opts.authRequired() {
		return nil
	}
	ss.srv.stats.AuthFailures.Add(1)
	ss.sendErr(ErrAuthTimeout.Text)
	return ErrAuthTimeout
}

// Closed ends the session when its connection is gone: its subscriptions
// leave the router. The transport calls it once, serialized with Feed and
// the timers like every other callback of the connection.
func (ss *Session) Closed() {
	ss.srv.sessions.remove(ss)
	for _, sub := range ss.subs {
		ss.srv.removeSub(sub)
	}
}

func (ss *Session) sendErr(text string) {
	ss.flushBatches()
	_ = ss.conn.Write(AppendErr(nil, text))
}
