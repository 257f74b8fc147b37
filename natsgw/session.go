package natsgw

import (
	"encoding/json"
	"errors"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/ledgemq/ledge/auth"
	"github.com/ledgemq/ledge/broker"
	"github.com/ledgemq/ledge/log"
	lnet "github.com/ledgemq/ledge/net"
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
	// ErrUserPayload is a publish larger than the user's max-payload;
	// nats-server closes the connection for it too.
	ErrUserPayload = &ProtocolError{"Maximum Payload Violation"}
	// ErrRateLimit ends a client that kept publishing above its rate.
	ErrRateLimit = &ProtocolError{"Rate Limit Exceeded"}
	// ErrTLSRequired: the listener's TLS could not be started.
	ErrTLSRequired = &ProtocolError{"Secure Connection - TLS Required"}
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
	// check: the filter is wider than the subscriber's rules, so each
	// delivery asks its auth.Client (auth.Filtered).
	check atomic.Bool
	// recv is the last subject checked for this subscription and its
	// answer, in memory a delivery touches anyway, read by publishers on
	// every loop without a lock; nil after the rules change.
	recv recvMemo
}

// mayReceive reports whether the subscriber's rules let a message on
// subject reach it. Safe from any goroutine: the publisher's.
func (sub *subscription) mayReceive(subject []byte) bool {
	if !sub.check.Load() {
		return true
	}
	ok := sub.recv.decide(subject, sub.session.client)
	if !ok {
		sub.session.srv.stats.PermissionDenials.Add(1)
	}
	return ok
}

// forgetReceive drops the remembered delivery decision.
func (sub *subscription) forgetReceive() { sub.recv.forget() }

// recvMemo remembers a filtered subscription's delivery decision for the
// subject it last saw twice in a row: a hit is one atomic load and a
// compare, and a stream of always new subjects allocates nothing (the
// Client's own cache answers them).
type recvMemo struct {
	last     atomic.Pointer[recvDecision]
	lastMiss atomic.Uint32
}

type recvDecision struct {
	subject string
	ok      bool
}

func (m *recvMemo) decide(subject []byte, cl *auth.Client) bool {
	if d := m.last.Load(); d != nil && d.subject == string(subject) {
		return d.ok
	}
	ok := cl.MayReceive(subject)
	h := fnv32(subject)
	if m.lastMiss.Swap(h) == h {
		m.last.Store(&recvDecision{subject: string(subject), ok: ok})
	}
	return ok
}

func (m *recvMemo) forget() { m.last.Store(nil) }

func fnv32(b []byte) uint32 {
	h := uint32(2166136261)
	for _, c := range b {
		h ^= uint32(c)
		h *= 16777619
	}
	return h
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
	// pub is the last subject published under rules and its lasting
	// answer (auth.Client.PublishDecision), kept until the rules change:
	// a device publishes to one subject again and again, and this way
	// asks nothing of its Client for it, in memory the parse touches.
	pub pubMemo

	connected bool // CONNECT was accepted
	// authWait holds the input while the CONNECT's password is checked;
	// until throttleEnd (after a publish over the rate) it waits too.
	// Here, beside what every Feed reads.
	authWait    bool
	throttleEnd time.Time
	// guarded: the client has rules or limits, so publishes are checked;
	// rated: it has a rate limit.
	guarded      bool
	rated        bool
	maxPayload   int64
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

	// Auth. client is nil without Options.Auth, which allows everything;
	// lc is the transport's connection, which the password check answers
	// on (nil for a session driven without one); authWait holds the
	// input while the check runs; pending carries its result to the loop.
	client     *auth.Client
	lc         *lnet.Conn
	pending    auth.Pending
	connectOpt connectOptions
	maxSubs    int

	// curSubject is the subject being published, for skipMember.
	curSubject []byte

	mon sessionStats // for monitoring (stats.go)
}

// throttledNow reports whether the input must wait out a throttle: the
// transport offers the rest of a read at once, and again when the pause
// ends; a pause that ended early is taken up again for what is left.
func (ss *Session) throttledNow() bool {
	if ss.throttleEnd.IsZero() {
		return false
	}
	left := time.Until(ss.throttleEnd)
	if left <= 0 {
		ss.throttleEnd = time.Time{}
		return false
	}
	ss.lc.PauseReading(left)
	return true
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
		pub:     pubMemo{n: -1},
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
	if ss.authWait || (!ss.throttleEnd.IsZero() && ss.throttledNow()) {
		// The CONNECT's password is being checked, or a throttle runs:
		// what follows waits (the transport holds it and presents it
		// again).
		return 0, nil
	}
	if ss.stalledOn != nil {
		if ss.stalledOn.Congested() && ss.stalls < maxStalls {
			ss.stall()
			return 0, nil
		}
		ss.stalledOn, ss.stalls = nil, 0
	}
	consumed, err = ss.parser.Parse(in, ss)
	if err == errStop {
		err = nil
	}
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

// errStop ends a Parse after the operation that returned it, which counts
// as consumed: the rest of the input waits (a password check, a throttle).
var errStop = errors.New("nats: stop parsing")

func (ss *Session) connect(raw []byte) error {
	var o connectOptions
	if err := json.Unmarshal(raw, &o); err != nil {
		return ErrBadConnect
	}
	if ss.connected {
		// A second CONNECT changes options, not who the client is.
		ss.applyConnect(&o)
		return nil
	}
	a := ss.srv.opts.Auth
	if a == nil {
		ss.applyConnect(&o)
		return nil
	}
	if ss.lc == nil {
		return ErrAuthorization
	}
	req := &auth.Request{
		Protocol: auth.NATS, Remote: ss.lc.RemoteAddr(), TLS: ss.lc.TLS(),
		Username: o.User, Password: []byte(o.Pass), Token: o.AuthToken,
	}
	ss.connectOpt = o
	lc := ss.lc
	cl, pending, err := a.Authenticate(req, func(cl *auth.Client, err error) {
		if ss.pending.Put(cl, err) {
			// If the connection is closing, Closed abandons the result.
			_ = lc.Do(ss.authDone)
		}
	})
	if !pending {
		return ss.authenticated(cl, err)
	}
	ss.authWait = true
	// Input waits until authDone resumes it; the auth timer bounds it.
	lc.PauseReading(ss.srv.opts.AuthTimeout + time.Second)
	return errStop
}

// authDone takes a password check's result on the connection's loop and
// lets the held input through.
func (ss *Session) authDone(c *lnet.Conn) {
	cl, err, ok := ss.pending.Take()
	if !ok {
		return
	}
	ss.authWait = false
	if err := ss.authenticated(cl, err); err != nil {
		ss.srv.stats.AuthFailures.Add(1)
		ss.sendErr(ErrAuthorization.Text)
		c.Close(err)
		return
	}
	c.ResumeReading()
}

// authenticated ends CONNECT with the authentication's result.
func (ss *Session) authenticated(cl *auth.Client, err error) error {
	if err != nil {
		// auth logs refusals, a flood of them within a budget.
		return ErrAuthorization
	}
	ss.client = cl
	ss.limitsChanged()
	if lc := ss.lc; lc != nil {
		cl.OnChange(func(err error) {
			_ = lc.Do(func(c *lnet.Conn) { ss.rulesChanged(c, err) })
		})
	}
	o := ss.connectOpt
	ss.connectOpt = connectOptions{}
	ss.applyConnect(&o)
	return nil
}

// rulesChanged follows a reload of the users, on the connection's loop:
// a revoked client is disconnected, and subscriptions its new rules deny
// are removed, each with the -ERR nats-server sends for them.
func (ss *Session) rulesChanged(c *lnet.Conn, err error) {
	cl := ss.client
	if cl == nil {
		return
	}
	if err != nil {
		ss.srv.stats.AuthFailures.Add(1)
		ss.sendErr(ErrAuthorization.Text)
		c.Close(ErrAuthorization)
		return
	}
	ss.limitsChanged()
	for sid, sub := range ss.subs {
		if sub.removed.Load() {
			continue
		}
		sub.forgetReceive()
		switch cl.Subscribe(sub.subject) {
		case auth.Denied:
			ss.srv.stats.PermissionDenials.Add(1)
			ss.sendErr(subscribeViolation(sub.subject, sub.queue))
			delete(ss.subs, sid)
			ss.srv.removeSub(sub)
		case auth.Filtered:
			sub.check.Store(true)
		default:
			sub.check.Store(false)
		}
	}
}

// The texts of nats-server's permission errors, which keep the
// connection open; nats.go reports them as nats.ErrPermissionViolation.
func publishViolation(subject []byte) string {
	return "Permissions Violation for Publish to " + strconv.Quote(string(subject))
}

func subscribeViolation(subject, queue string) string {
	if queue != "" {
		return "Permissions Violation for Subscription to " + strconv.Quote(subject) + " using queue " + strconv.Quote(queue)
	}
	return "Permissions Violation for Subscription to " + strconv.Quote(subject)
}

// applyConnect takes CONNECT's options.
func (ss *Session) applyConnect(o *connectOptions) {
	ss.connected = true
	meta := *o
	if ss.client != nil {
		// Monitoring shows who logged in, not who the client said it was.
		meta.User = ss.client.User()
	}
	ss.mon.setClient(&meta)
	ss.verbose, ss.pedantic = o.Verbose, o.Pedantic
	ss.echo = o.Echo == nil || *o.Echo
	ss.headers = o.Headers
	// No responders needs headers to carry the 503 status.
	ss.noResponders = o.NoResponders && o.Headers
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
	var stop error
	if ss.guarded {
		size := len(op.Header) + len(op.Payload)
		if ss.maxPayload > 0 && int64(size) > ss.maxPayload {
			return ErrUserPayload
		}
		if ss.rated {
			pause, err := ss.client.Rate(size)
			if err != nil {
				ss.srv.opts.Logger.Warn("nats: client disconnected for its publishing rate", "client", ss.id, "remote", ss.remote, "user", ss.client.User())
				return ErrRateLimit
			}
			if pause > 0 && ss.lc != nil {
				// Throttled: this message goes, the rest of the input waits.
				ss.lc.PauseReading(pause)
				ss.throttleEnd = time.Now().Add(pause)
				stop = errStop
			}
		}
		if !ss.mayPublish(op.Subject) {
			srv.stats.PermissionDenials.Add(1)
			ss.client.Denied("publish", string(op.Subject))
			ss.sendErr(publishViolation(op.Subject))
			return stop
		}
	}
	if err := ss.route(op); err != nil {
		return err
	}
	return stop
}

// pubMemo remembers one subject's publish decision inside the session.
type pubMemo struct {
	n    int8 // length of subj; -1: nothing remembered (or too long)
	ok   bool
	subj [62]byte
}

// mayPublish asks the client about a publish, remembering the lasting
// answer for the last subject.
func (ss *Session) mayPublish(subject []byte) bool {
	m := &ss.pub
	if int(m.n) == len(subject) && string(m.subj[:m.n]) == string(subject) {
		return m.ok
	}
	ok, lasting := ss.client.PublishDecision(subject)
	m.n = -1
	if lasting && len(subject) <= len(m.subj) {
		m.n, m.ok = int8(copy(m.subj[:], subject)), ok
	}
	return ok
}

// limitsChanged takes the client's limits into the session.
func (ss *Session) limitsChanged() {
	cl := ss.client
	ss.guarded, ss.rated = !cl.Unrestricted(), cl.HasRateLimit()
	lim := cl.Limits()
	ss.maxPayload, ss.maxSubs = lim.MaxPayload, lim.MaxSubscriptions
	ss.pub.n = -1
}

// route delivers a permitted publish.
func (ss *Session) route(op *Op) error {
	srv := ss.srv
	ss.curSubject = op.Subject
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
		if !sub.mayReceive(op.Subject) {
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
	return ok && (sub.removed.Load() || (sub.session == ss && !ss.echo) || !sub.mayReceive(ss.curSubject))
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
	if len(op.Reply) > 0 {
		// A responder under allow-responses may answer this.
		sub.session.client.NoteReply(op.Reply)
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
	if ss.client != nil {
		if ss.maxSubs > 0 && ss.liveSubs() >= ss.maxSubs {
			ss.srv.stats.PermissionDenials.Add(1)
			ss.sendErr("Maximum Subscriptions Exceeded")
			return errSidInUse
		}
		switch ss.client.Subscribe(sub.subject) {
		case auth.Denied:
			ss.srv.stats.PermissionDenials.Add(1)
			ss.client.Denied("subscribe", sub.subject)
			ss.sendErr(subscribeViolation(sub.subject, sub.queue))
			return errSidInUse // ignored, the connection stays
		case auth.Filtered:
			sub.check.Store(true)
		}
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

// liveSubs counts the subscriptions not yet removed.
func (ss *Session) liveSubs() int {
	n := 0
	for _, sub := range ss.subs {
		if !sub.removed.Load() {
			n++
		}
	}
	return n
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
// not authenticated by then (its TLS handshake and password check
// included) is refused.
func (ss *Session) AuthTimer() error {
	if (ss.connected && !ss.authWait) || !ss.srv.opts.authRequired() {
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
	ss.pending.Abandon()
	ss.client.Close()
}

func (ss *Session) sendErr(text string) {
	ss.flushBatches()
	_ = ss.conn.Write(AppendErr(nil, text))
}
