package mqttgw

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ledgemq/ledge/auth"
	"github.com/ledgemq/ledge/broker"
	"github.com/ledgemq/ledge/log"
	"github.com/ledgemq/ledge/mqttgw/packet"
	lnet "github.com/ledgemq/ledge/net"
	"github.com/ledgemq/ledge/router"
)

// Conn is what a session needs of its network connection; both of ledge's
// transports provide it.
type Conn interface {
	// Write queues a copy of b; safe from any goroutine, never blocks.
	Write(b []byte) error
	// Close closes the connection after flushing what is queued; safe from
	// any goroutine.
	Close(reason error)
}

// Reasons a session ends, as the transport is told.
var (
	ErrKeepAlive      = errors.New("mqtt: keep alive timeout")
	ErrConnectTimeout = errors.New("mqtt: no CONNECT in time")
	ErrTakenOver      = errors.New("mqtt: session taken over by a new connection")
	ErrDisconnect     = errors.New("mqtt: client disconnected")
	ErrRevoked        = errors.New("mqtt: access revoked by a reload of the users")
	// errWaitAuth leaves a CONNECT unconsumed while its password is
	// checked off the loop; it is decoded again once the check is done.
	errWaitAuth = errors.New("mqtt: waiting for the password check")
)

// packets are shared by the sessions: a Packet is only needed during one
// Feed, and an idle connection should not hold one.
var packets = sync.Pool{New: func() any { return new(packet.Packet) }}

// will is the message a session leaves for an ungraceful end.
type will struct {
	msg   broker.Msg
	delay time.Duration
}

// Session is one MQTT connection. Feed, the timers and Closed run on the
// connection's event loop, serialized; Deliver (through its
// subscriptions) runs on publishers' goroutines and takes outMu.
type Session struct {
	srv    *Server
	conn   Conn
	dec    packet.Decoder
	remote string

	connected bool
	clientID  string
	level     packet.Level
	clean     bool
	expiry    time.Duration // session expiry after disconnect
	keepAlive time.Duration
	active    bool // a packet arrived since the last keep-alive check
	will      *will
	subs      map[string]*subscription // by filter as sent
	aliasesIn map[uint16]string
	awaitRel  map[uint16]struct{} // inbound QoS 2 packet ids awaiting PUBREL
	// inflight counts inbound QoS 1 and 2 publishes not yet acknowledged;
	// acknowledgements are sent from the log's goroutines.
	inflight   atomic.Int32
	disconnect bool // a DISCONNECT arrived

	// The live path's match result and scratch, used on this loop only.
	res     router.Result[broker.Receiver]
	capRes  router.Result[*broker.Stream]
	subject []byte
	hdrs    []log.Header
	out     []byte

	// Outbound state, shared with publishers on other loops.
	outMu       sync.Mutex
	closed      bool
	handedOver  bool // subscriptions went to a new connection or were parked
	nextPID     uint16
	inflightOut map[uint16]packet.QoS // sent QoS 1/2 awaiting PUBACK/PUBREC/PUBCOMP
	queue       [][]byte              // encoded PUBLISHes waiting for window (packet id set on send)
	sent        int                   // QoS 1/2 sent and not yet acknowledged
	sendQuota   int                   // the client's receive maximum
	maxOut      int                   // the client's maximum packet size (0: none)
	aliasMaxOut uint16                // topic aliases the client accepts
	aliasesOut  map[string]uint16
	problemInfo bool
	// Persistent sessions: the consumer whose deliveries are the stored
	// messages, the packet ids of those in flight, and the copy of the
	// subscriptions that deliveries from the consumer's goroutine read.
	cons    *broker.Consumer
	seqPID  map[uint64]uint16
	pidSeq  map[uint16]uint64
	outSubs []*subscription
	out2    []byte
	// storedRes is the publish path's match in the stored-subscriptions
	// router.
	storedRes router.Result[*subscription]

	// Auth. client is nil without Options.Auth, which allows everything;
	// lc is the transport's connection, which the password check answers
	// on; while authWait the CONNECT and what follows wait unconsumed;
	// resume lets them through again (the handler's, WebSocket aware).
	client       *auth.Client
	lc           *lnet.Conn
	resume       func(*lnet.Conn)
	authWait     bool
	connectLevel packet.Level
	pending      auth.Pending
	assignedID   string
	// guarded: the client has rules or limits, so publishes are checked;
	// until throttleEnd (after a publish over the rate) input waits.
	guarded     bool
	throttleEnd time.Time
	maxPayload  int64
	maxSubs     int
	// rated: the client has a rate limit. pub is the last subject
	// published and its lasting answer, kept until the rules change: a
	// device publishes to one topic again and again.
	rated bool
	pub   pubMemo

	mon sessionStats // for monitoring (stats.go)
}

// pubMemo remembers one subject's publish decision inside the session.
type pubMemo struct {
	n    int8 // length of subj; -1: nothing remembered (or too long)
	ok   bool
	subj [62]byte
}

// Open starts a session on a new connection.
func (s *Server) Open(c Conn, remote string) *Session {
	return &Session{
		srv:    s,
		conn:   c,
		remote: remote,
		pub:    pubMemo{n: -1},
		dec:    packet.Decoder{MaxPacketSize: s.opts.MaxPacketSize},
	}
}

// ClientID returns the session's client identifier, once connected.
func (ss *Session) ClientID() string { return ss.clientID }

// Feed decodes and acts on the bytes that arrived and returns how many it
// used. A non-nil error means the connection must be closed after the
// packets the session queued (a CONNACK or DISCONNECT with the reason).
func (ss *Session) Feed(in []byte) (int, error) {
	ss.active = true
	if ss.authWait || ss.throttledNow() {
		return 0, nil
	}
	p := packets.Get().(*packet.Packet)
	defer packets.Put(p)
	used := 0
	for used < len(in) {
		n, err := ss.dec.Decode(in[used:], p)
		if errors.Is(err, packet.ErrIncomplete) {
			return used, nil
		}
		if err != nil {
			return used, ss.refuse(err)
		}
		used += n
		if err := ss.handle(p); err != nil {
			if err == errWaitAuth {
				// The CONNECT is decoded again once its check is done,
				// which the decoder must take for a first one.
				ss.connectLevel, ss.dec.Level = ss.dec.Level, 0
				return used - n, nil
			}
			return used, ss.refuse(err)
		}
		if ss.disconnect {
			return used, ErrDisconnect
		}
		if !ss.throttleEnd.IsZero() {
			return used, nil
		}
	}
	return used, nil
}

// protocolError is a session-level violation with the 5.0 reason code.
type protocolError struct {
	reason packet.ReasonCode
	msg    string
}

func (e *protocolError) Error() string { return "mqtt: " + e.msg }

func violation(reason packet.ReasonCode, format string, args ...any) error {
	return &protocolError{reason: reason, msg: fmt.Sprintf(format, args...)}
}

// refuse answers a violation as the protocol level says and returns the
// error that closes the connection.
func (ss *Session) refuse(err error) error {
	if errors.Is(err, ErrDisconnect) {
		return err
	}
	ss.srv.stats.ProtocolErrors.Add(1)
	var reason packet.ReasonCode = packet.UnspecifiedError
	rc := packet.Accepted
	var pe *packet.Error
	var se *protocolError
	switch {
	case errors.As(err, &pe):
		reason, rc = pe.Reason, pe.ReturnCode
	case errors.As(err, &se):
		reason = se.reason
	}
	if !ss.connected {
		// A refused CONNECT is answered with CONNACK; 3.1.1 has return
		// codes for some refusals only, and closes silently otherwise.
		if ss.dec.Level == packet.Level5 {
			ss.send(func(b []byte) []byte {
				return packet.AppendConnack(b, packet.Level5, &packet.Connack{Reason: reason})
			})
		} else if rc != packet.Accepted {
			ss.send(func(b []byte) []byte {
				return packet.AppendConnack(b, ss.dec.Level, &packet.Connack{ReturnCode: rc})
			})
		}
		return err
	}
	if ss.level == packet.Level5 {
		// MQTT-4.13.1-1: a 5.0 server may say why before it closes.
		ss.send(func(b []byte) []byte {
			return packet.AppendDisconnect(b, packet.Level5, &packet.Disconnect{Reason: reason})
		})
	}
	return err
}

// send encodes one packet into the session's scratch and writes it.
func (ss *Session) send(enc func([]byte) []byte) {
	ss.out = enc(ss.out[:0])
	_ = ss.conn.Write(ss.out)
}

func (ss *Session) handle(p *packet.Packet) error {
	switch p.Type {
	case packet.TypeConnect:
		if ss.connected {
			return violation(packet.ProtocolError, "second CONNECT (MQTT-3.1.0-2)")
		}
		return ss.connect(&p.Connect)
	case packet.TypePublish:
		return ss.publish(&p.Publish)
	case packet.TypePuback, packet.TypePubrec, packet.TypePubrel, packet.TypePubcomp:
		return ss.ack(&p.Ack)
	case packet.TypeSubscribe:
		return ss.subscribe(&p.Subscribe)
	case packet.TypeUnsubscribe:
		return ss.unsubscribe(&p.Unsubscribe)
	case packet.TypePingreq:
		ss.send(packet.AppendPingresp)
		return nil
	case packet.TypeDisconnect:
		return ss.disconnected(&p.Disconnect)
	case packet.TypeAuth:
		return violation(packet.BadAuthenticationMethod, "enhanced authentication is not offered")
	}
	return violation(packet.ProtocolError, "a client may not send %v", p.Type)
}

func (ss *Session) connect(c *packet.Connect) error {
	srv := ss.srv
	opts := &srv.opts
	ss.level = c.Level
	if ss.level == packet.Level31 {
		ss.level = packet.Level311
	}
	v5 := ss.level == packet.Level5
	if c.Properties.Present.Has(packet.PropAuthenticationMethod) {
		return &packet.Error{Packet: packet.TypeConnect, Reason: packet.BadAuthenticationMethod, Msg: "enhanced authentication is not offered"}
	}
	ss.clean = c.CleanStart
	id := string(c.ClientID)
	assigned := false
	if id == "" {
		// MQTT-3.1.3-8: a 3.1.1 client without an id must ask for a clean
		// session; 5.0 clients are given one either way.
		if !v5 && !c.CleanStart {
			return &packet.Error{Packet: packet.TypeConnect, Reason: packet.ClientIdentifierNotValid, ReturnCode: packet.RefusedIdentifierRejected, Msg: "empty client id needs a clean session"}
		}
		if ss.assignedID == "" {
			// Kept for the second decoding of a CONNECT whose password
			// was checked off the loop.
			ss.assignedID = srv.idBase + strconv.FormatUint(srv.nextID.Add(1), 10)
		}
		id = ss.assignedID
		assigned = true
	}
	if opts.Auth != nil && ss.client == nil {
		if err := ss.authenticate(c, id); err != nil {
			return err
		}
	}
	ss.clientID = id
	if v5 {
		ss.expiry = min(time.Duration(c.Properties.SessionExpiryInterval)*time.Second, opts.MaxSessionExpiry)
		if c.Properties.SessionExpiryInterval == 0xFFFFFFFF {
			ss.expiry = opts.MaxSessionExpiry
		}
	} else if !c.CleanStart {
		ss.expiry = opts.MaxSessionExpiry
	}
	ss.keepAlive = time.Duration(c.KeepAlive) * time.Second
	serverKeepAlive := false
	if opts.MaxKeepAlive > 0 && (ss.keepAlive == 0 || ss.keepAlive > opts.MaxKeepAlive) && v5 {
		ss.keepAlive = opts.MaxKeepAlive
		serverKeepAlive = true
	}
	ss.outMu.Lock()
	ss.sendQuota = 65535
	if c.Properties.Present.Has(packet.PropReceiveMaximum) {
		ss.sendQuota = int(c.Properties.ReceiveMaximum)
	}
	ss.maxOut = int(c.Properties.MaximumPacketSize)
	ss.aliasMaxOut = c.Properties.TopicAliasMaximum
	if ss.aliasMaxOut > 0 {
		ss.aliasesOut = make(map[string]uint16)
	}
	ss.problemInfo = !c.Properties.Present.Has(packet.PropRequestProblemInformation) || c.Properties.RequestProblemInformation == 1
	// The maps of the outbound state are made on first use: an idle
	// device connection should cost as little as possible.
	ss.outMu.Unlock()
	if c.WillFlag {
		ss.will = ss.newWill(c)
		if ss.will != nil && !ss.client.MayPublish(ss.will.msg.Subject) {
			// mosquitto refuses such a CONNECT too: the device learns
			// its will could never be sent.
			srv.stats.Denied.Add(1)
			ss.client.Denied("will", string(c.WillTopic))
			return &packet.Error{Packet: packet.TypeConnect, Reason: packet.NotAuthorized, ReturnCode: packet.RefusedNotAuthorized, Msg: "the will's topic is not allowed"}
		}
	}

	ss.mon.user, ss.mon.persistent = string(c.Username), ss.persistent()
	if ss.client != nil {
		// Monitoring shows who logged in (a certificate, a token).
		ss.mon.user = ss.client.User()
	}
	present, rec := srv.attach(ss)
	ss.connected = true
	srv.stats.Connections.Add(1)
	if rec != nil && present {
		for _, pid := range rec.AwaitRel {
			if ss.awaitRel == nil {
				ss.awaitRel = make(map[uint16]struct{})
			}
			ss.awaitRel[pid] = struct{}{}
		}
		ss.outMu.Lock()
		for _, pid := range rec.Releasing {
			ss.setInflightLocked(pid, qosReleasingStored)
		}
		ss.outMu.Unlock()
	}
	if ss.client != nil {
		// Subscriptions taken over or resumed were made under someone's
		// rules, maybe another user's: they must pass this client's.
		if ss.recheckSubs() {
			ss.subsChanged()
		}
	}
	ss.subsChangedQuiet()
	if ss.persistent() {
		if err := ss.openConsumer(); err != nil {
			srv.opts.Logger.Error("mqtt: persistent session unavailable", "client", ss.clientID, "err", err)
			return &packet.Error{Packet: packet.TypeConnect, Reason: packet.ServerUnavailable, ReturnCode: packet.RefusedServerUnavailable, Msg: err.Error()}
		}
		ss.saveSession()
	}

	ack := packet.Connack{SessionPresent: present}
	if v5 {
		pr := &ack.Properties
		pr.Present.Add(packet.PropReceiveMaximum)
		pr.ReceiveMaximum = opts.ReceiveMaximum
		pr.Present.Add(packet.PropTopicAliasMaximum)
		pr.TopicAliasMaximum = opts.TopicAliasMaximum
		pr.Present.Add(packet.PropMaximumPacketSize)
		pr.MaximumPacketSize = uint32(opts.MaxPacketSize)
		if assigned {
			pr.Present.Add(packet.PropAssignedClientIdentifier)
			pr.AssignedClientIdentifier = []byte(id)
		}
		if serverKeepAlive {
			pr.Present.Add(packet.PropServerKeepAlive)
			pr.ServerKeepAlive = uint16(ss.keepAlive / time.Second)
		}
		if time.Duration(c.Properties.SessionExpiryInterval)*time.Second > ss.expiry && c.Properties.SessionExpiryInterval != 0xFFFFFFFF {
			pr.Present.Add(packet.PropSessionExpiryInterval)
			pr.SessionExpiryInterval = uint32(ss.expiry / time.Second)
		}
	}
	ss.send(func(b []byte) []byte { return packet.AppendConnack(b, ss.level, &ack) })
	if present {
		// MQTT-4.4.0-1: a resumed session resends PUBREL for the QoS 2
		// exchanges it had in progress (and, through its consumer, the
		// PUBLISHes not yet acknowledged).
		ss.outMu.Lock()
		var rel []uint16
		for pid, q := range ss.inflightOut {
			if q >= qosReleasing {
				rel = append(rel, pid)
			}
		}
		ss.outMu.Unlock()
		for _, pid := range rel {
			ss.sendAck(packet.TypePubrel, pid, packet.Success)
		}
	}
	ss.attachConsumer(present)
	return nil
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
	if ss.lc != nil {
		ss.lc.PauseReading(left)
	}
	return true
}

// authenticate checks the CONNECT's credentials. A decision made at once
// is returned (nil: in); otherwise it returns errWaitAuth and authDone
// takes the answer on the loop.
func (ss *Session) authenticate(c *packet.Connect, clientID string) error {
	lc := ss.lc
	if lc == nil {
		return &packet.Error{Packet: packet.TypeConnect, Reason: packet.NotAuthorized, ReturnCode: packet.RefusedNotAuthorized, Msg: "no connection to authenticate"}
	}
	req := &auth.Request{Protocol: auth.MQTT, Remote: lc.RemoteAddr(), TLS: lc.TLS(), ClientID: clientID}
	if c.UsernameFlag {
		req.Username = string(c.Username)
	}
	if c.PasswordFlag {
		req.Password = bytes.Clone(c.Password)
	}
	cl, pending, err := ss.srv.opts.Auth.Authenticate(req, func(cl *auth.Client, err error) {
		if ss.pending.Put(cl, err) {
			// If the connection is closing, Closed abandons the result.
			_ = lc.Do(ss.authDone)
		}
	})
	if !pending {
		return ss.admitted(cl, err, req.Username)
	}
	ss.authWait = true
	lc.PauseReading(ss.srv.opts.ConnectTimeout + time.Second)
	return errWaitAuth
}

// authDone takes a password check's answer on the connection's loop: a
// refusal is answered with CONNACK; otherwise the CONNECT is decoded again,
// now with its client.
func (ss *Session) authDone(c *lnet.Conn) {
	cl, err, ok := ss.pending.Take()
	if !ok {
		return
	}
	ss.authWait = false
	if err := ss.admitted(cl, err, ""); err != nil {
		ss.dec.Level = ss.connectLevel // for the CONNACK's encoding
		c.Close(ss.refuse(err))
		return
	}
	if ss.resume != nil {
		ss.resume(c)
	} else {
		c.ResumeReading()
	}
}

// admitted takes an authentication's result: the client, or the CONNACK
// refusal for its error.
func (ss *Session) admitted(cl *auth.Client, err error, user string) error {
	srv := ss.srv
	if err != nil {
		srv.stats.AuthFailures.Add(1)
		pe := &packet.Error{Packet: packet.TypeConnect, Reason: packet.NotAuthorized, ReturnCode: packet.RefusedNotAuthorized, Msg: err.Error()}
		switch {
		case errors.Is(err, auth.ErrBadCredentials):
			pe.Reason, pe.ReturnCode = packet.BadUserNameOrPassword, packet.RefusedBadUserNameOrPassword
		case errors.Is(err, auth.ErrTooManyConnections):
			pe.Reason = packet.QuotaExceeded
		case errors.Is(err, auth.ErrLoginRate):
			pe.Reason = packet.ConnectionRateExceeded
		case errors.Is(err, auth.ErrBusy):
			pe.Reason, pe.ReturnCode = packet.ServerBusy, packet.RefusedServerUnavailable
		}
		return pe
	}
	ss.client = cl
	ss.limitsChanged()
	if lc := ss.lc; lc != nil {
		cl.OnChange(func(err error) {
			_ = lc.Do(func(c *lnet.Conn) { ss.rulesChanged(c, err) })
		})
	}
	return nil
}

func (ss *Session) limitsChanged() {
	ss.guarded, ss.rated = !ss.client.Unrestricted(), ss.client.HasRateLimit()
	lim := ss.client.Limits()
	ss.maxPayload, ss.maxSubs = lim.MaxPayload, lim.MaxSubscriptions
	ss.pub.n = -1
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

// rulesChanged follows a reload of the users on the connection's loop: a
// revoked client is disconnected (5.0: with reason 0x87), and the
// subscriptions its new rules deny are removed. MQTT cannot tell a client
// that a subscription ended; the log says it.
func (ss *Session) rulesChanged(c *lnet.Conn, err error) {
	if ss.client == nil || !ss.connected {
		return
	}
	if err != nil {
		if ss.level == packet.Level5 {
			ss.send(func(b []byte) []byte {
				return packet.AppendDisconnect(b, packet.Level5, &packet.Disconnect{Reason: packet.NotAuthorized})
			})
		}
		c.Close(ErrRevoked)
		return
	}
	ss.limitsChanged()
	if ss.recheckSubs() {
		ss.subsChanged()
	}
}

// recheckSubs relates each subscription to the client's rules, removing
// the denied ones; it reports whether it removed any.
func (ss *Session) recheckSubs() bool {
	removed := false
	for f, sub := range ss.subs {
		sub.forgetReceive()
		switch ss.client.Subscribe(sub.pattern) {
		case auth.Denied:
			ss.srv.stats.Denied.Add(1)
			ss.srv.opts.Logger.Info("mqtt: subscription removed: the client's rules no longer allow it", "client", ss.clientID, "user", ss.client.User(), "filter", f)
			delete(ss.subs, f)
			ss.srv.removeSub(sub)
			sub.session.Store(nil)
			removed = true
		case auth.Filtered:
			sub.check.Store(true)
		default:
			sub.check.Store(false)
		}
	}
	return removed
}

// setInflightLocked records an outbound packet id in flight.
func (ss *Session) setInflightLocked(pid uint16, q packet.QoS) {
	if ss.inflightOut == nil {
		ss.inflightOut = make(map[uint16]packet.QoS)
	}
	ss.inflightOut[pid] = q
}

// subsChangedQuiet refreshes the copy of the subscriptions that stored
// deliveries read, without touching the consumer or the record.
func (ss *Session) subsChangedQuiet() {
	ss.outMu.Lock()
	ss.outSubs = ss.outSubs[:0]
	for _, sub := range ss.subs {
		ss.outSubs = append(ss.outSubs, sub)
	}
	ss.outMu.Unlock()
}

func (ss *Session) newWill(c *packet.Connect) *will {
	w := &will{}
	subj, err := router.AppendSubjectFromMQTTTopic(nil, string(c.WillTopic))
	if err != nil {
		return nil
	}
	w.msg = broker.Msg{
		Subject: subj,
		Payload: append([]byte(nil), c.WillPayload...),
		QoS:     byte(c.WillQoS),
		Retain:  c.WillRetain,
	}
	if ss.level == packet.Level5 {
		w.delay = time.Duration(c.WillProperties.WillDelayInterval) * time.Second
		w.msg.Headers, w.msg.Reply = headersFromProperties(nil, &c.WillProperties, true)
	}
	return w
}

// attach registers a connected session under its client id, taking over a
// connected one and resuming or discarding a parked one. It reports
// whether a session was present, with its saved record if it was loaded
// after a restart.
func (s *Server) attach(ss *Session) (present bool, rec *sessionRecord) {
	s.mu.Lock()
	old := s.clients[ss.clientID]
	s.clients[ss.clientID] = ss
	if t, ok := s.wills[ss.clientID]; ok && !ss.clean {
		// MQTT-3.1.3-9 (5.0): a session resumed before the will delay
		// ends cancels the will.
		t.Stop()
		delete(s.wills, ss.clientID)
	}
	parked := s.parked[ss.clientID]
	delete(s.parked, ss.clientID)
	s.mu.Unlock()
	if old != nil {
		s.stats.Takeovers.Add(1)
		// The old connection hands its subscriptions over when the new
		// one keeps the session.
		subs, oldRec := old.takeover()
		parked = &parkedSession{subs: subs, record: oldRec}
	}
	if parked == nil {
		if ss.clean {
			s.dropSession(ss.clientID)
		}
		return false, nil
	}
	if parked.timer != nil {
		parked.timer.Stop()
	}
	if ss.clean {
		for _, sub := range parked.subs {
			s.removeSub(sub)
		}
		s.dropSession(ss.clientID)
		return false, nil
	}
	if ss.subs == nil {
		ss.subs = make(map[string]*subscription, len(parked.subs))
	}
	for f, sub := range parked.subs {
		if want := ss.persistent() && sub.qos > 0 && sub.group == ""; want != sub.stored {
			s.removeSub(sub)
			sub.stored = want
			_ = s.addSub(sub)
		}
		sub.session.Store(ss)
		ss.subs[f] = sub
	}
	return true, parked.record
}

// takeover ends this session for a new connection with the same client
// id, and returns its subscriptions, which stay in the router, and the
// state of its QoS 2 exchanges.
func (ss *Session) takeover() (map[string]*subscription, *sessionRecord) {
	rec := ss.record()
	ss.outMu.Lock()
	ss.closed = true
	ss.outMu.Unlock()
	if ss.level == packet.Level5 {
		out := packet.AppendDisconnect(nil, packet.Level5, &packet.Disconnect{Reason: packet.SessionTakenOver})
		_ = ss.conn.Write(out)
	}
	ss.conn.Close(ErrTakenOver)
	return ss.handOver(), rec
}

func (ss *Session) handOver() map[string]*subscription {
	ss.outMu.Lock()
	defer ss.outMu.Unlock()
	subs := ss.subs
	ss.subs = nil
	ss.handedOver = true
	return subs
}

func (ss *Session) disconnected(d *packet.Disconnect) error {
	if ss.level == packet.Level5 {
		if d.Properties.Present.Has(packet.PropSessionExpiryInterval) {
			if ss.expiry == 0 && d.Properties.SessionExpiryInterval != 0 {
				// MQTT-3.14.2-2
				return violation(packet.ProtocolError, "session expiry set on DISCONNECT after CONNECT had none")
			}
			ss.expiry = min(time.Duration(d.Properties.SessionExpiryInterval)*time.Second, ss.srv.opts.MaxSessionExpiry)
		}
		if d.Reason != packet.DisconnectWithWillMessage {
			ss.will = nil
		}
	} else {
		// MQTT-3.14.4-3: a normal DISCONNECT discards the will.
		ss.will = nil
	}
	ss.disconnect = true
	return nil
}

// KeepAliveTimer is called by the transport every half keep-alive period;
// a client silent for one and a half periods is cut off (MQTT-3.1.2-24).
func (ss *Session) KeepAliveTimer(ticks *int) error {
	if ss.active {
		ss.active = false
		*ticks = 0
		return nil
	}
	*ticks++
	if *ticks >= 3 {
		if ss.level == packet.Level5 {
			ss.send(func(b []byte) []byte {
				return packet.AppendDisconnect(b, packet.Level5, &packet.Disconnect{Reason: packet.KeepAliveTimeout})
			})
		}
		return ErrKeepAlive
	}
	return nil
}

// Closed ends the session when its connection is gone: the will is sent
// unless the client said goodbye, and the subscriptions are parked for a
// persistent session or removed.
func (ss *Session) Closed() {
	srv := ss.srv
	ss.pending.Abandon()
	defer ss.client.Close()
	if !ss.connected {
		return
	}
	srv.stats.Connections.Add(-1)
	var rec *sessionRecord
	if ss.persistent() {
		rec = ss.record()
		rec.Disconnected = time.Now().UTC()
	}
	// Leaving the client table and parking are one step under the
	// server's lock: a reconnect with the same id finds this connection
	// (and takes it over) or the parked session, never neither.
	id := ss.clientID
	srv.mu.Lock()
	ss.outMu.Lock()
	ss.closed = true
	handedOver := ss.handedOver
	subs := ss.subs
	ss.subs = nil
	ss.handedOver = true
	ss.outMu.Unlock()
	if srv.clients[id] == ss {
		delete(srv.clients, id)
	}
	if !handedOver && ss.expiry > 0 {
		for _, sub := range subs {
			sub.session.Store(nil)
		}
		p := &parkedSession{subs: subs, expires: time.Now().Add(ss.expiry)}
		p.timer = time.AfterFunc(ss.expiry, func() { srv.expire(id, p) })
		srv.parked[id] = p
	}
	srv.mu.Unlock()
	if ss.cons != nil {
		ss.cons.Detach(sessionOutlet{ss})
	}
	if w := ss.will; w != nil {
		if ss.client.Allowed(w.msg.Subject) {
			srv.sendWill(id, w, ss.expiry)
		} else {
			// A reload took the will's topic away since CONNECT.
			srv.stats.Denied.Add(1)
			ss.client.Denied("will", string(w.msg.Subject))
		}
	}
	if handedOver {
		return
	}
	if ss.expiry <= 0 {
		for _, sub := range subs {
			srv.removeSub(sub)
		}
		if ss.cons != nil {
			srv.dropSession(id)
		}
		return
	}
	if rec != nil {
		srv.saveRecord(rec, func(err error) {
			if err != nil {
				srv.opts.Logger.Error("mqtt: session record not saved", "client", id, "err", err)
			}
		})
	}
}

// expire removes a parked session whose expiry ran out.
func (s *Server) expire(id string, p *parkedSession) {
	s.mu.Lock()
	if s.parked[id] != p {
		s.mu.Unlock()
		return
	}
	delete(s.parked, id)
	s.mu.Unlock()
	for _, sub := range p.subs {
		s.removeSub(sub)
	}
	s.dropSession(id)
}

// sendWill publishes a will now or after its delay (5.0: at most the
// session's expiry, MQTT-3.1.3-9).
func (s *Server) sendWill(id string, w *will, expiry time.Duration) {
	delay := w.delay
	if delay > expiry {
		delay = expiry
	}
	if delay <= 0 {
		s.publishLive(&w.msg, nil)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var t *time.Timer
	t = time.AfterFunc(delay, func() {
		s.mu.Lock()
		if s.wills[id] != t {
			s.mu.Unlock()
			return
		}
		delete(s.wills, id)
		s.mu.Unlock()
		s.publishLive(&w.msg, nil)
	})
	s.wills[id] = t
}

// publishLive sends m to the live subscribers of its subject and the
// retained store, from a goroutine that owns no session (wills).
func (s *Server) publishLive(m *broker.Msg, origin *Session) {
	if m.Retain {
		s.ret.set(m, func(error) {})
	}
	var res router.Result[broker.Receiver]
	if s.live.MatchBytes(m.Subject, &res) != nil {
		return
	}
	deliverAll(&res, m)
	if s.broker != nil {
		var cres router.Result[*broker.Stream]
		if st := s.broker.Capture(m.Subject, &cres); st != nil {
			_ = st.Publish(&broker.Message{Subject: m.Subject, Headers: m.Headers, Payload: m.Payload}, nil)
		}
	}
}

// deliverAll hands m to every plain subscriber and one member of each
// queue group (MQTT shared subscriptions, NATS queue groups).
func deliverAll(res *router.Result[broker.Receiver], m *broker.Msg) int {
	n := 0
	for _, r := range res.Subs {
		if r.Deliver(m) {
			n++
		}
	}
	for i := range res.Groups {
		g := &res.Groups[i]
		for tries := 0; tries < 3; tries++ {
			r, ok := g.Pick(nil)
			if !ok {
				break
			}
			if r.Deliver(m) {
				n++
				break
			}
		}
	}
	return n
}
