package mqttgw

import (
	"strconv"
	"sync/atomic"
	"time"

	"github.com/ledgemq/ledge/broker"
	"github.com/ledgemq/ledge/log"
	"github.com/ledgemq/ledge/mqttgw/packet"
	"github.com/ledgemq/ledge/router"
)

// Header names under which MQTT 5.0 properties travel to other protocols.
// User properties travel under their own names.
const (
	contentTypeHeader   = "Content-Type"
	correlationHeader   = "Mqtt-Correlation-Data"
	payloadFormatHeader = "Mqtt-Payload-Format"
	// expiresHeader holds when a message with a 5.0 expiry interval
	// expires, in Unix seconds, so that what waits in the log ages.
	expiresHeader = "Mqtt-Expires"
)

// headersFromProperties appends a 5.0 PUBLISH's (or will's) properties to
// dst as headers and returns the response topic as a subject. The slices
// alias the packet unless copy is set.
func headersFromProperties(dst []log.Header, pr *packet.Properties, copyBytes bool) ([]log.Header, []byte) {
	cp := func(b []byte) []byte {
		if copyBytes {
			return append([]byte(nil), b...)
		}
		return b
	}
	for _, up := range pr.UserProperties {
		dst = append(dst, log.Header{Key: cp(up.Key), Value: cp(up.Value)})
	}
	if pr.Present.Has(packet.PropContentType) {
		dst = append(dst, log.Header{Key: []byte(contentTypeHeader), Value: cp(pr.ContentType)})
	}
	if pr.Present.Has(packet.PropCorrelationData) {
		dst = append(dst, log.Header{Key: []byte(correlationHeader), Value: cp(pr.CorrelationData)})
	}
	if pr.Present.Has(packet.PropPayloadFormatIndicator) && pr.PayloadFormatIndicator == 1 {
		dst = append(dst, log.Header{Key: []byte(payloadFormatHeader), Value: []byte("1")})
	}
	var reply []byte
	if pr.Present.Has(packet.PropResponseTopic) {
		reply, _ = router.AppendSubjectFromMQTTTopic(nil, string(pr.ResponseTopic))
	}
	return dst, reply
}

// publish takes a client's PUBLISH: to the retained store, the live
// subscribers of every protocol and the stream that captures its subject;
// a QoS 1 or 2 publish is acknowledged once those that store it have it
// durably.
func (ss *Session) publish(p *packet.Publish) error {
	srv := ss.srv
	v5 := ss.level == packet.Level5
	topic := p.Topic
	if v5 {
		if len(p.Properties.SubscriptionIdentifiers) > 0 {
			return violation(packet.ProtocolError, "subscription identifier in a client's PUBLISH (MQTT-3.3.4-6)")
		}
		if p.Properties.Present.Has(packet.PropTopicAlias) {
			a := p.Properties.TopicAlias
			if a == 0 || a > srv.opts.TopicAliasMaximum {
				return violation(packet.TopicAliasInvalid, "topic alias %d outside 1..%d", a, srv.opts.TopicAliasMaximum)
			}
			if ss.aliasesIn == nil {
				ss.aliasesIn = make(map[uint16]string)
			}
			if len(topic) > 0 {
				ss.aliasesIn[a] = string(topic)
			} else {
				t, ok := ss.aliasesIn[a]
				if !ok {
					return violation(packet.ProtocolError, "topic alias %d was never set (MQTT-3.3.4-7)", a)
				}
				topic = []byte(t)
			}
		}
	}
	subject, err := router.AppendSubjectFromMQTTTopic(ss.subject[:0], string(topic))
	if err != nil {
		return violation(packet.TopicNameInvalid, "topic %q: %v", topic, err)
	}
	if ss.guarded {
		if ok, err := ss.permitPublish(p, topic, subject); !ok || err != nil {
			ss.subject = subject
			return err
		}
	}
	if p.QoS > 0 {
		if v5 && int(ss.inflight.Load()) >= int(srv.opts.ReceiveMaximum) {
			return violation(packet.ReceiveMaximumExceeded, "more than %d unacknowledged publishes", srv.opts.ReceiveMaximum)
		}
		if p.QoS == packet.QoS2 {
			if ss.awaitRel == nil {
				ss.awaitRel = make(map[uint16]struct{})
			}
			if _, dup := ss.awaitRel[p.PacketID]; dup {
				// A resend of a message already taken: acknowledge it
				// again, deliver it once (MQTT-4.3.3-10).
				ss.sendAck(packet.TypePubrec, p.PacketID, packet.Success)
				return nil
			}
			ss.awaitRel[p.PacketID] = struct{}{}
			ss.saveSession()
		}
		ss.inflight.Add(1)
	}
	ss.subject = subject
	srv.stats.InMsgs.Add(1)
	srv.stats.InBytes.Add(int64(len(p.Payload)))
	ss.mon.inMsgs.Add(1)

	m := broker.Msg{Subject: subject, Payload: p.Payload, QoS: byte(p.QoS), Retain: p.Retain, Origin: ss}
	if v5 {
		ss.hdrs, m.Reply = headersFromProperties(ss.hdrs[:0], &p.Properties, false)
		if p.Properties.Present.Has(packet.PropMessageExpiryInterval) {
			at := time.Now().Unix() + int64(p.Properties.MessageExpiryInterval)
			ss.hdrs = append(ss.hdrs, log.Header{Key: []byte(expiresHeader), Value: strconv.AppendInt(nil, at, 10)})
		}
		m.Headers = ss.hdrs
	}
	var ack *pendingAck
	if p.QoS > 0 {
		ack = &pendingAck{ss: ss, pid: p.PacketID, qos: p.QoS}
		ack.waiting.Store(1)
	}
	if p.Retain {
		if ack != nil {
			ack.waiting.Add(1)
		}
		srv.ret.set(&m, ack.done)
	}
	if err := srv.live.MatchBytes(subject, &ss.res); err == nil {
		deliverAll(&ss.res, &m)
	}
	if ack != nil {
		ack.waiting.Add(1)
		if !srv.storePublish(subject, &m, &ss.storedRes, ack.done) {
			ack.done(nil)
		}
	}
	if srv.broker != nil {
		if st := srv.broker.Capture(subject, &ss.capRes); st != nil {
			if ack != nil {
				ack.waiting.Add(1)
			}
			msg := broker.Message{Subject: subject, Headers: m.Headers, Payload: p.Payload}
			if err := st.Publish(&msg, func(_ broker.PubAck, err error) { ack.done(err) }); err != nil {
				ack.done(err)
			}
		}
	}
	ack.done(nil)
	return nil
}

// permitPublish applies the client's limits and rules to a publish. A
// publish over the rate limit goes on but stops the reading for the
// throttle's pause; one kept over it too long ends the connection (5.0:
// DISCONNECT 0x96). A denied publish changes nothing: 5.0 answers a QoS 1
// or 2 one with reason 0x87 (0x95 over the user's max-payload); 3.1.1 has
// no such answer, so it is acknowledged as if taken, and dropped; both
// are counted and logged.
func (ss *Session) permitPublish(p *packet.Publish, topic, subject []byte) (bool, error) {
	cl := ss.client
	reason := packet.NotAuthorized
	ok := true
	if max := ss.maxPayload; max > 0 && int64(len(p.Payload)) > max {
		reason, ok = packet.PacketTooLarge, false
	} else {
		if ss.rated {
			pause, err := cl.Rate(len(p.Payload))
			if err != nil {
				ss.srv.opts.Logger.Warn("mqtt: client disconnected for its publishing rate", "client", ss.clientID, "user", cl.User())
				return false, violation(packet.MessageRateTooHigh, "publishing above the rate limit for too long")
			}
			if pause > 0 && ss.lc != nil {
				ss.lc.PauseReading(pause)
				ss.throttleEnd = time.Now().Add(pause)
			}
		}
		ok = ss.mayPublish(subject)
	}
	if ok {
		return true, nil
	}
	ss.srv.stats.Denied.Add(1)
	cl.Denied("publish", string(topic))
	v5 := ss.level == packet.Level5
	switch p.QoS {
	case packet.QoS1:
		if !v5 {
			reason = packet.Success
		}
		ss.sendAck(packet.TypePuback, p.PacketID, reason)
	case packet.QoS2:
		if v5 {
			// A PUBREC with an error ends the exchange (no PUBREL).
			ss.sendAck(packet.TypePubrec, p.PacketID, reason)
			break
		}
		// 3.1.1 goes on with PUBREL, which must find the exchange.
		if ss.awaitRel == nil {
			ss.awaitRel = make(map[uint16]struct{})
		}
		if _, dup := ss.awaitRel[p.PacketID]; !dup {
			ss.awaitRel[p.PacketID] = struct{}{}
			ss.inflight.Add(1)
		}
		ss.sendAck(packet.TypePubrec, p.PacketID, packet.Success)
	}
	return false, nil
}

// pendingAck sends a publish's PUBACK or PUBREC once every store that
// keeps it has it durably: those callbacks come from the log's goroutines.
type pendingAck struct {
	ss      *Session
	pid     uint16
	qos     packet.QoS
	waiting atomic.Int32
	failed  atomic.Bool
}

func (a *pendingAck) done(err error) {
	if a == nil {
		return
	}
	if err != nil {
		a.failed.Store(true)
	}
	if a.waiting.Add(-1) != 0 {
		return
	}
	reason := packet.Success
	if a.failed.Load() {
		// The message is not stored: a 5.0 client learns it; a 3.1.1
		// client has no way to hear it and gets no acknowledgement, so
		// it sends the message again when it reconnects.
		if a.ss.level != packet.Level5 {
			a.ss.srv.opts.Logger.Warn("mqtt: publish not stored; not acknowledged", "client", a.ss.clientID)
			return
		}
		reason = packet.UnspecifiedError
	}
	if a.qos == packet.QoS1 {
		a.ss.inflight.Add(-1)
		a.ss.sendAck(packet.TypePuback, a.pid, reason)
	} else {
		a.ss.sendAck(packet.TypePubrec, a.pid, reason)
	}
}

// sendAck writes a PUBACK, PUBREC, PUBREL or PUBCOMP; safe from any
// goroutine.
func (ss *Session) sendAck(t packet.Type, pid uint16, reason packet.ReasonCode) {
	var buf [16]byte
	out := packet.AppendAck(buf[:0], ss.level, &packet.Ack{Type: t, PacketID: pid, Reason: reason})
	_ = ss.conn.Write(out)
}

// ack handles PUBACK, PUBREC, PUBREL and PUBCOMP from the client.
func (ss *Session) ack(a *packet.Ack) error {
	if a.Type == packet.TypePubrel {
		reason := packet.Success
		if _, ok := ss.awaitRel[a.PacketID]; ok {
			delete(ss.awaitRel, a.PacketID)
			ss.inflight.Add(-1)
			ss.saveSession()
		} else {
			reason = packet.PacketIdentifierNotFound
		}
		ss.sendAck(packet.TypePubcomp, a.PacketID, reason)
		return nil
	}
	ss.outMu.Lock()
	q, ok := ss.inflightOut[a.PacketID]
	var seq uint64
	var stored, released, save bool
	switch {
	case !ok:
	case a.Type == packet.TypePubrec && q == packet.QoS2 && a.Reason < 0x80:
		// The client has it: the log may let go of it, and the exchange
		// goes on with PUBREL, which a restart must not forget.
		seq, stored = ss.storedAckLocked(a.PacketID)
		if stored {
			ss.inflightOut[a.PacketID] = qosReleasingStored
		} else {
			ss.inflightOut[a.PacketID] = qosReleasing
		}
		released, save = true, true
	default:
		// PUBACK, PUBCOMP, or a PUBREC with an error: the exchange ends.
		delete(ss.inflightOut, a.PacketID)
		seq, stored = ss.storedAckLocked(a.PacketID)
		save = q >= qosReleasing
		if !stored && q != qosReleasingStored && ss.sent > 0 {
			// A live delivery leaves the window it was counted in.
			ss.sent--
			ss.flushQueueLocked()
		}
	}
	ss.outMu.Unlock()
	if stored && ss.cons != nil {
		_ = ss.cons.Ack(seq, broker.Ack, 0)
	}
	if save {
		ss.saveSession()
	}
	if a.Type == packet.TypePubrec {
		reason := packet.Success
		if !ok {
			reason = packet.PacketIdentifierNotFound
		}
		if ok && !released {
			return nil // an error PUBREC: no PUBREL
		}
		ss.sendAck(packet.TypePubrel, a.PacketID, reason)
	}
	return nil
}

// qosReleasing and qosReleasingStored mark an outbound QoS 2 message whose
// PUBREC arrived and whose PUBCOMP is awaited: a live delivery, counted in
// the session's window, or one from the log, counted by its consumer.
const (
	qosReleasing       packet.QoS = 3
	qosReleasingStored packet.QoS = 4
)
