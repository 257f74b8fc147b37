package mqttgw

import (
	"bytes"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/valyala/bytebufferpool"

	"github.com/ledgemq/ledge/auth"
	"github.com/ledgemq/ledge/broker"
	"github.com/ledgemq/ledge/mqttgw/packet"
	"github.com/ledgemq/ledge/router"
)

// sharePrefix starts a shared subscription's filter: $share/group/filter.
const sharePrefix = "$share/"

// subscription is one topic filter of one session: the router's handle.
// Its session is nil while the session is parked (disconnected but kept).
type subscription struct {
	session    atomic.Pointer[Session]
	filter     string // as the client sent it
	pattern    string
	compiled   router.Pattern
	group      string // shared subscription group, "" for none
	qos        packet.QoS
	noLocal    bool
	rap        bool // retain as published
	id         uint32
	skipDollar bool
	// stored: the QoS 1/2 messages of this subscription of a persistent
	// session come from the log (its consumer), not the live path.
	stored bool
	// check: the filter is wider than the client's rules, so each
	// delivery asks its auth.Client (auth.Filtered). The last subject
	// asked and its answer are kept here, under recvMu (publishers on
	// every loop deliver), until the rules change.
	check atomic.Bool
	recv  recvMemo
}

// mayReceive reports whether the session's rules let a message on subject
// reach this subscription.
func (sub *subscription) mayReceive(ss *Session, subject []byte) bool {
	if !sub.check.Load() {
		return true
	}
	return sub.recv.decide(subject, ss.client)
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

func (sub *subscription) routerSub() router.Subscription[broker.Receiver] {
	return router.Subscription[broker.Receiver]{Pattern: sub.pattern, Queue: sub.group, Handle: sub, SkipDollar: sub.skipDollar}
}

// Deliver implements broker.Receiver: it runs on the publisher's goroutine.
func (sub *subscription) Deliver(m *broker.Msg) bool {
	if sub.stored && m.QoS > 0 {
		// The publisher wrote it to the log for this session.
		return true
	}
	ss := sub.session.Load()
	if ss == nil {
		return false
	}
	if sub.noLocal && m.Origin == ss {
		return false
	}
	return ss.deliver(sub, m, false)
}

func (ss *Session) subscribe(p *packet.Subscribe) error {
	srv := ss.srv
	v5 := ss.level == packet.Level5
	var subID uint32
	if v5 && len(p.Properties.SubscriptionIdentifiers) > 0 {
		subID = p.Properties.SubscriptionIdentifiers[0]
	}
	codes := make([]packet.ReasonCode, len(p.Subscriptions))
	type retainedFor struct {
		sub *subscription
		p   router.Pattern
	}
	var sendRetained []retainedFor
	for i := range p.Subscriptions {
		s := &p.Subscriptions[i]
		filter := string(s.Filter)
		if s.NoLocal && strings.HasPrefix(filter, sharePrefix) {
			// MQTT-3.8.3-4
			return violation(packet.ProtocolError, "no local on a shared subscription")
		}
		sub, err := newSubscription(filter, s.QoS, s.NoLocal, s.RetainAsPublished, subID)
		if err != nil {
			codes[i] = packet.TopicFilterInvalid
			continue
		}
		if ss.client != nil {
			if rc, ok := ss.permitSub(sub); !ok {
				codes[i] = rc
				continue
			}
		}
		sub.stored = ss.persistent() && sub.qos > 0 && sub.group == ""
		sub.session.Store(ss)
		old, existed := ss.subs[filter]
		if existed {
			// MQTT-3.8.4-3: a subscription with the same filter is
			// replaced, not added.
			srv.removeSub(old)
			old.session.Store(nil)
		}
		if err := srv.addSub(sub); err != nil {
			codes[i] = packet.TopicFilterInvalid
			continue
		}
		if ss.subs == nil {
			ss.subs = make(map[string]*subscription)
		}
		ss.subs[filter] = sub
		codes[i] = packet.ReasonCode(sub.qos)
		if sub.group == "" && (s.RetainHandling == 0 || (s.RetainHandling == 1 && !existed)) {
			sendRetained = append(sendRetained, retainedFor{sub, sub.compiled})
		}
	}
	ss.subsChanged()
	ss.send(func(b []byte) []byte {
		return packet.AppendSuback(b, ss.level, &packet.Suback{PacketID: p.PacketID, ReasonCodes: codes})
	})
	// MQTT-3.3.1-9: retained messages follow the SUBACK.
	for _, r := range sendRetained {
		for _, rm := range srv.ret.matching(r.p, r.sub.skipDollar) {
			m := broker.Msg{Subject: []byte(rm.subject), QoS: rm.qos, Retain: true, Headers: rm.headers, Payload: rm.payload}
			ss.deliver(r.sub, &m, true)
		}
	}
	return nil
}

// permitSub relates a new subscription to the client's rules and limits:
// a refusal's code is 0x87 (5.0) or the failure 0x80 (3.1.1), for that
// filter only.
func (ss *Session) permitSub(sub *subscription) (packet.ReasonCode, bool) {
	refused := packet.UnspecifiedError // 3.1.1: 0x80 failure
	v5 := ss.level == packet.Level5
	if _, replaces := ss.subs[sub.filter]; !replaces && ss.maxSubs > 0 && len(ss.subs) >= ss.maxSubs {
		ss.srv.stats.Denied.Add(1)
		if v5 {
			refused = packet.QuotaExceeded
		}
		return refused, false
	}
	switch ss.client.Subscribe(sub.pattern) {
	case auth.Denied:
		ss.srv.stats.Denied.Add(1)
		ss.client.Denied("subscribe", sub.filter)
		if v5 {
			refused = packet.NotAuthorized
		}
		return refused, false
	case auth.Filtered:
		sub.check.Store(true)
	}
	return 0, true
}

func (ss *Session) unsubscribe(p *packet.Unsubscribe) error {
	codes := make([]packet.ReasonCode, len(p.Filters))
	for i, f := range p.Filters {
		sub, ok := ss.subs[string(f)]
		if !ok {
			codes[i] = packet.NoSubscriptionExisted
			continue
		}
		delete(ss.subs, sub.filter)
		ss.srv.removeSub(sub)
		sub.session.Store(nil)
	}
	ss.subsChanged()
	ss.send(func(b []byte) []byte {
		return packet.AppendUnsuback(b, ss.level, &packet.Unsuback{PacketID: p.PacketID, ReasonCodes: codes})
	})
	return nil
}

// deliver sends m to the client for sub: at once within the in-flight
// window, queued beyond it, dropped (and counted) beyond MaxQueued or the
// client's maximum packet size. retained marks a retained message sent on
// subscribe, which keeps its RETAIN flag (MQTT-3.3.1-8).
func (ss *Session) deliver(sub *subscription, m *broker.Msg, retained bool) bool {
	srv := ss.srv
	if !sub.mayReceive(ss, m.Subject) {
		srv.stats.Denied.Add(1)
		return false
	}
	if len(m.Reply) > 0 {
		// A responder under allow-responses may answer this.
		ss.client.NoteReply(m.Reply)
	}
	var tb [128]byte
	topic, err := router.AppendMQTTTopicFromSubject(tb[:0], string(m.Subject))
	if err != nil {
		return false
	}
	pub := packet.Publish{
		QoS:     min(packet.QoS(m.QoS), sub.qos),
		Retain:  retained || (sub.rap && m.Retain),
		Payload: m.Payload,
	}
	pub.Topic = topic
	v5 := ss.level == packet.Level5
	if propertiesFromHeaders(&pub.Properties, m, v5) {
		return false // expired (a retained message past its lifetime)
	}
	if v5 {
		if sub.id != 0 {
			pub.Properties.SubscriptionIdentifiers = append(pub.Properties.SubscriptionIdentifiers, sub.id)
		}
	}
	ss.outMu.Lock()
	defer ss.outMu.Unlock()
	if ss.closed {
		return false
	}
	queued := pub.QoS > 0 && ss.sent >= ss.sendQuota
	if pub.QoS > 0 {
		if len(ss.queue) >= srv.opts.MaxQueued {
			srv.stats.Dropped.Add(1)
			return false
		}
		pub.PacketID = ss.nextFreePIDLocked()
		ss.setInflightLocked(pub.PacketID, pub.QoS)
	}
	newAlias := false
	if !queued {
		// A queued packet goes out later, after packets sent now, so it
		// carries its full topic and sets no alias.
		newAlias = ss.aliasLocked(&pub)
	}
	buf := bytebufferpool.Get()
	defer bytebufferpool.Put(buf)
	out := packet.AppendPublish(buf.B[:0], ss.level, &pub)
	buf.B = out
	if ss.maxOut > 0 && len(out) > ss.maxOut {
		// MQTT-3.1.2-25: never send more than the client accepts.
		if pub.QoS > 0 {
			delete(ss.inflightOut, pub.PacketID)
		}
		if newAlias {
			delete(ss.aliasesOut, string(pub.Topic))
		}
		srv.stats.Dropped.Add(1)
		return false
	}
	if queued {
		ss.queue = append(ss.queue, bytes.Clone(out))
		return true
	}
	if pub.QoS > 0 {
		ss.sent++
	}
	if ss.conn.Write(out) != nil {
		return false
	}
	srv.stats.OutMsgs.Add(1)
	srv.stats.OutBytes.Add(int64(len(m.Payload)))
	ss.mon.outMsgs++
	return true
}

// subsChanged follows a change of the session's subscriptions: the copy
// that stored deliveries read, the consumer's filter and the record.
func (ss *Session) subsChanged() {
	ss.outMu.Lock()
	ss.outSubs = ss.outSubs[:0]
	for _, sub := range ss.subs {
		ss.outSubs = append(ss.outSubs, sub)
	}
	ss.outMu.Unlock()
	if ss.persistent() {
		ss.refilter()
		ss.saveSession()
	}
}

// aliasLocked gives an outbound PUBLISH a topic alias when the 5.0 client
// accepts them (MQTT 5.0 §3.3.2.3.4): the first use of a topic sets the
// alias, later ones send the alias alone. Aliases are never reassigned.
// It reports whether it set a new alias.
func (ss *Session) aliasLocked(pub *packet.Publish) bool {
	if ss.aliasMaxOut == 0 {
		return false
	}
	if a, ok := ss.aliasesOut[string(pub.Topic)]; ok {
		pub.Properties.Present.Add(packet.PropTopicAlias)
		pub.Properties.TopicAlias = a
		pub.Topic = nil
		return false
	}
	if len(ss.aliasesOut) >= int(ss.aliasMaxOut) {
		return false
	}
	a := uint16(len(ss.aliasesOut) + 1)
	ss.aliasesOut[string(pub.Topic)] = a
	pub.Properties.Present.Add(packet.PropTopicAlias)
	pub.Properties.TopicAlias = a
	return true
}

// nextFreePIDLocked returns a packet identifier not in flight.
func (ss *Session) nextFreePIDLocked() uint16 {
	for {
		ss.nextPID++
		if ss.nextPID == 0 {
			ss.nextPID = 1
		}
		if _, busy := ss.inflightOut[ss.nextPID]; !busy {
			return ss.nextPID
		}
	}
}

// flushQueueLocked sends queued publishes as the window opens.
func (ss *Session) flushQueueLocked() {
	for len(ss.queue) > 0 && ss.sent < ss.sendQuota && !ss.closed {
		out := ss.queue[0]
		ss.queue[0] = nil
		ss.queue = ss.queue[1:]
		ss.sent++
		_ = ss.conn.Write(out)
		ss.srv.stats.OutMsgs.Add(1)
		ss.mon.outMsgs++
	}
}

// propertiesFromHeaders sets a 5.0 PUBLISH's properties from a message's
// headers (the reverse of headersFromProperties) when v5 is set, and
// reports whether the message has expired.
func propertiesFromHeaders(pr *packet.Properties, m *broker.Msg, v5 bool) (expired bool) {
	for _, h := range m.Headers {
		switch string(h.Key) {
		case expiresHeader:
			at, err := strconv.ParseInt(string(h.Value), 10, 64)
			if err != nil {
				continue
			}
			left := at - time.Now().Unix()
			if left <= 0 {
				return true
			}
			if v5 {
				// MQTT-3.3.2-6: the interval sent is what is left of it.
				pr.Present.Add(packet.PropMessageExpiryInterval)
				pr.MessageExpiryInterval = uint32(left)
			}
		case contentTypeHeader:
			pr.Present.Add(packet.PropContentType)
			pr.ContentType = h.Value
		case correlationHeader:
			pr.Present.Add(packet.PropCorrelationData)
			pr.CorrelationData = h.Value
		case payloadFormatHeader:
			pr.Present.Add(packet.PropPayloadFormatIndicator)
			pr.PayloadFormatIndicator = 1
		default:
			pr.UserProperties = append(pr.UserProperties, packet.UserProperty{Key: h.Key, Value: h.Value})
		}
	}
	if !v5 {
		pr.UserProperties = pr.UserProperties[:0]
		pr.Present = 0
		return false
	}
	if len(m.Reply) > 0 {
		if t, err := router.AppendMQTTTopicFromSubject(nil, string(m.Reply)); err == nil {
			pr.Present.Add(packet.PropResponseTopic)
			pr.ResponseTopic = t
		}
	}
	return false
}
