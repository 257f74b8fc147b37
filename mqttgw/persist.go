package mqttgw

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ledgemq/ledge/broker"
	"github.com/ledgemq/ledge/log"
	"github.com/ledgemq/ledge/mqttgw/packet"
	"github.com/ledgemq/ledge/router"
)

// Persistent sessions live in the log, not in memory. A QoS 1 or 2
// publish that some persistent session's QoS 1 or 2 subscription matches
// is stored once in the stream MQTT_msgs (subject prefixed with msgsPrefix),
// and each persistent session is a durable consumer on it whose filter is
// its subscriptions: its queue while it is away is that consumer's
// position, so a box with little memory holds days of backlog, across
// restarts. The stream's interest retention removes a message once every
// session that wanted it has acknowledged it. A session's own record
// (subscriptions, expiry, the QoS 2 exchanges in progress) is the latest
// message on its subject in MQTT_sessions.
const (
	msgsStream  = "MQTT_msgs"
	msgsPrefix  = "$MQTT.msgs."
	sessStream  = "MQTT_sessions"
	sessPrefix  = "$MQTT.sess."
	deliverBase = "$MQTT.deliver."
	// sessionAckWait is how long a delivered message waits for its
	// acknowledgement: MQTT resends only when a session resumes
	// (MQTT-4.4.0-1), so in practice forever.
	sessionAckWait = 365 * 24 * time.Hour
)

// sessionRecord is what a persistent session keeps across restarts.
type sessionRecord struct {
	ClientID     string      `json:"client_id"`
	Level        byte        `json:"level"`
	ExpirySecs   int64       `json:"expiry_secs"`
	Disconnected time.Time   `json:"disconnected,omitzero"`
	Subs         []subRecord `json:"subs,omitempty"`
	// Releasing are outbound QoS 2 packet ids whose PUBREC came and whose
	// PUBCOMP has not: PUBREL is sent again on resume.
	Releasing []uint16 `json:"releasing,omitempty"`
	// AwaitRel are inbound QoS 2 packet ids taken and not yet released.
	AwaitRel []uint16 `json:"await_rel,omitempty"`
}

type subRecord struct {
	Filter  string `json:"filter"`
	QoS     byte   `json:"qos"`
	NoLocal bool   `json:"no_local,omitempty"`
	RAP     bool   `json:"rap,omitempty"`
	ID      uint32 `json:"id,omitempty"`
}

// persistence is the gateway's use of the broker for sessions.
type persistence struct {
	msgs *broker.Stream
	sess *broker.Stream
	// stored holds the QoS 1/2 subscriptions of persistent sessions: a
	// publish that matches one is written to msgs.
	stored *router.Router[*subscription]
}

func openPersistence(b *broker.Broker) (*persistence, error) {
	p := &persistence{stored: router.New[*subscription](router.Options{})}
	var err error
	if p.msgs, err = ensureStream(b, broker.StreamConfig{
		Name:        msgsStream,
		Description: "MQTT QoS 1 and 2 messages for persistent sessions",
		Subjects:    []string{msgsPrefix + ">"},
		Retention:   broker.InterestPolicy,
	}); err != nil {
		return nil, err
	}
	if p.sess, err = ensureStream(b, broker.StreamConfig{
		Name:              sessStream,
		Description:       "MQTT persistent sessions, one record per client",
		Subjects:          []string{sessPrefix + ">"},
		MaxMsgsPerSubject: 1,
	}); err != nil {
		return nil, err
	}
	return p, nil
}

func ensureStream(b *broker.Broker, cfg broker.StreamConfig) (*broker.Stream, error) {
	s, err := b.Stream(cfg.Name)
	if errors.Is(err, broker.ErrStreamNotFound) {
		s, err = b.AddStream(cfg)
	}
	if err != nil {
		return nil, fmt.Errorf("mqtt: stream %s: %w", cfg.Name, err)
	}
	return s, nil
}

// sessionName turns a client id, which may hold any character, into the
// name of its consumer and record subject.
func sessionName(clientID string) string {
	h := sha256.Sum256([]byte(clientID))
	return hex.EncodeToString(h[:16])
}

// loadSessions parks every persistent session found in the records, so
// that messages for them are stored while they are away.
func (s *Server) loadSessions() error {
	p := s.persist
	for subject := range p.sess.Subjects("") {
		m, err := p.sess.GetLastMsg(subject)
		if err != nil || len(m.Payload) == 0 {
			continue
		}
		var rec sessionRecord
		if err := json.Unmarshal(m.Payload, &rec); err != nil {
			s.opts.Logger.Warn("mqtt: unreadable session record; dropped", "subject", subject, "err", err)
			continue
		}
		expires := rec.Disconnected.Add(time.Duration(rec.ExpirySecs) * time.Second)
		if rec.Disconnected.IsZero() {
			// The broker stopped while the client was connected.
			expires = time.Now().Add(time.Duration(rec.ExpirySecs) * time.Second)
		}
		if time.Until(expires) <= 0 {
			s.dropSession(rec.ClientID)
			continue
		}
		ps := &parkedSession{subs: make(map[string]*subscription), expires: expires, record: &rec}
		for _, sr := range rec.Subs {
			sub, err := newSubscription(sr.Filter, packet.QoS(sr.QoS), sr.NoLocal, sr.RAP, sr.ID)
			if err != nil {
				continue
			}
			sub.stored = sub.qos > 0 && sub.group == ""
			ps.subs[sr.Filter] = sub
			s.addSub(sub)
		}
		id := rec.ClientID
		ps.timer = time.AfterFunc(time.Until(expires), func() { s.expire(id, ps) })
		s.parked[id] = ps
	}
	return nil
}

// saveRecord writes a persistent session's record; done runs once it is
// durable.
func (s *Server) saveRecord(rec *sessionRecord, done func(error)) {
	b, err := json.Marshal(rec)
	if err != nil {
		done(err)
		return
	}
	err = s.persist.sess.Publish(&broker.Message{
		Subject: []byte(sessPrefix + sessionName(rec.ClientID)),
		Payload: b,
	}, func(_ broker.PubAck, err error) { done(err) })
	if err != nil {
		done(err)
	}
}

// dropSession forgets a persistent session: its consumer (and with it its
// claim on stored messages) and its record.
func (s *Server) dropSession(clientID string) {
	if s.persist == nil {
		return
	}
	name := sessionName(clientID)
	_ = s.persist.msgs.DeleteConsumer(name)
	_, _ = s.persist.sess.Purge(broker.PurgeRequest{Filter: sessPrefix + name})
}

// record returns the session's record as it is now.
func (ss *Session) record() *sessionRecord {
	rec := &sessionRecord{
		ClientID:   ss.clientID,
		Level:      byte(ss.level),
		ExpirySecs: int64(ss.expiry / time.Second),
	}
	for _, sub := range ss.subs {
		rec.Subs = append(rec.Subs, subRecord{Filter: sub.filter, QoS: byte(sub.qos), NoLocal: sub.noLocal, RAP: sub.rap, ID: sub.id})
	}
	for pid := range ss.awaitRel {
		rec.AwaitRel = append(rec.AwaitRel, pid)
	}
	ss.outMu.Lock()
	for pid, q := range ss.inflightOut {
		if q >= qosReleasing {
			rec.Releasing = append(rec.Releasing, pid)
		}
	}
	ss.outMu.Unlock()
	return rec
}

// saveSession writes the record of a persistent session (logging a
// failure: the session goes on in memory).
func (ss *Session) saveSession() {
	if !ss.persistent() {
		return
	}
	id := ss.clientID
	logger := ss.srv.opts.Logger
	ss.srv.saveRecord(ss.record(), func(err error) {
		if err != nil {
			logger.Error("mqtt: session record not saved", "client", id, "err", err)
		}
	})
}

func (ss *Session) persistent() bool { return ss.srv.persist != nil && ss.expiry > 0 }

// storedFilters are the consumer filter of the session's subscriptions
// whose QoS 1/2 messages come from the log.
func (ss *Session) storedFilters() []string {
	var out []string
	for _, sub := range ss.subs {
		if sub.stored {
			out = append(out, msgsPrefix+sub.pattern)
		}
	}
	if len(out) == 0 {
		// A consumer with no filter would want everything; this pattern
		// matches nothing a client can publish.
		out = append(out, msgsPrefix+"$none")
	}
	return out
}

// openConsumer finds the persistent session's consumer, creating it the
// first time; attachConsumer starts its deliveries once the CONNACK is out.
func (ss *Session) openConsumer() error {
	p := ss.srv.persist
	name := sessionName(ss.clientID)
	cfg := broker.ConsumerConfig{
		Name:           name,
		Durable:        true,
		Description:    "MQTT session " + ss.clientID,
		DeliverPolicy:  broker.DeliverNew,
		AckWait:        sessionAckWait,
		MaxAckPending:  min(ss.sendQuota, 65535),
		DeliverSubject: deliverBase + name,
		FilterSubjects: ss.storedFilters(),
	}
	c, err := p.msgs.Consumer(name)
	if err == nil {
		cur := c.Config()
		cfg.DeliverPolicy = cur.DeliverPolicy
		cfg.Created = cur.Created
	}
	c, err = p.msgs.AddConsumer(cfg, broker.CreateOrUpdate)
	if err != nil {
		return fmt.Errorf("mqtt: session %q: %w", ss.clientID, err)
	}
	ss.cons = c
	return nil
}

// attachConsumer starts deliveries from the session's consumer, first
// resending what it had not acknowledged.
func (ss *Session) attachConsumer(resume bool) {
	if ss.cons == nil {
		return
	}
	ss.cons.Attach(sessionOutlet{ss})
	if resume {
		ss.cons.RedeliverPending()
	}
}

// refilter gives the session's consumer its subscriptions' filter.
func (ss *Session) refilter() {
	if ss.cons == nil {
		return
	}
	cfg := ss.cons.Config()
	cfg.FilterSubjects = ss.storedFilters()
	if _, err := ss.srv.persist.msgs.AddConsumer(cfg, broker.UpdateOnly); err != nil {
		ss.srv.opts.Logger.Error("mqtt: session filter not updated", "client", ss.clientID, "err", err)
	}
}

// storePublish writes a QoS 1/2 publish to the log when a persistent
// session wants it; done is called once it is durable (or not needed).
func (s *Server) storePublish(subject []byte, m *broker.Msg, res *router.Result[*subscription], done func(error)) bool {
	if s.persist == nil || m.QoS == 0 {
		return false
	}
	if s.persist.stored.MatchBytes(subject, res) != nil || res.Len() == 0 {
		return false
	}
	hdrs := append(m.Headers[:len(m.Headers):len(m.Headers)], log.Header{Key: []byte(qosHeader), Value: []byte{'0' + m.QoS}})
	buf := make([]byte, 0, len(msgsPrefix)+len(subject))
	buf = append(append(buf, msgsPrefix...), subject...)
	err := s.persist.msgs.Publish(&broker.Message{Subject: buf, Headers: hdrs, Payload: m.Payload},
		func(_ broker.PubAck, err error) { done(err) })
	if err != nil {
		done(err)
	}
	return true
}

// sessionOutlet delivers a persistent session's stored messages to its
// connection.
type sessionOutlet struct{ ss *Session }

func (o sessionOutlet) Deliver(_ string, d *broker.Delivery) bool { return o.ss.deliverStored(d) }
func (o sessionOutlet) Status(string, broker.Status)              {}
func (o sessionOutlet) Event(broker.Event)                        {}
func (o sessionOutlet) Interest(string) bool {
	o.ss.outMu.Lock()
	defer o.ss.outMu.Unlock()
	return !o.ss.closed
}

// deliverStored sends a message from the session's consumer: at the lower
// of its QoS and the best matching subscription's, with DUP when it is
// sent again, under a packet id derived from its sequence so that a resend
// after a broker restart uses the same id.
func (ss *Session) deliverStored(d *broker.Delivery) bool {
	subject := string(d.Subject[len(msgsPrefix):])
	msgQoS := packet.QoS1
	var hdrs []log.Header
	for _, h := range d.Headers {
		if string(h.Key) == qosHeader {
			q, _ := strconv.Atoi(string(h.Value))
			msgQoS = packet.QoS(q)
			continue
		}
		hdrs = append(hdrs, h)
	}
	ss.outMu.Lock()
	defer ss.outMu.Unlock()
	if ss.closed {
		return false
	}
	var subQoS packet.QoS
	var sub *subscription
	check := false
	for _, s := range ss.outSubs {
		if s.stored && s.compiled.Matches(subject) && s.qos >= subQoS {
			subQoS, sub = s.qos, s
			check = check || s.check.Load()
		}
	}
	if sub != nil && check && !ss.client.MayReceive(d.Subject[len(msgsPrefix):]) {
		// Stored for a filter wider than the rules (or before a reload
		// narrowed them): withheld, and done with.
		ss.srv.stats.Denied.Add(1)
		sub = nil
	}
	if sub == nil {
		// Unsubscribed since it was stored: done with it.
		go ss.cons.Ack(d.StreamSeq, broker.Ack, 0)
		return true
	}
	var tb [128]byte
	topic, err := router.AppendMQTTTopicFromSubject(tb[:0], subject)
	if err != nil {
		go ss.cons.Ack(d.StreamSeq, broker.Ack, 0)
		return true
	}
	pub := packet.Publish{QoS: min(msgQoS, subQoS), Topic: topic, Payload: d.Payload, Dup: d.Deliveries > 1}
	m := broker.Msg{Headers: hdrs}
	if propertiesFromHeaders(&pub.Properties, &m, ss.level == packet.Level5) {
		// MQTT-3.3.2-5: an expired message is not delivered.
		go ss.cons.Ack(d.StreamSeq, broker.Ack, 0)
		return true
	}
	if ss.level == packet.Level5 {
		if sub.id != 0 {
			pub.Properties.SubscriptionIdentifiers = append(pub.Properties.SubscriptionIdentifiers, sub.id)
		}
	}
	if pub.QoS > 0 {
		pid, ok := ss.seqPID[d.StreamSeq]
		if !ok {
			pid = ss.pidForSeqLocked(d.StreamSeq)
			if ss.seqPID == nil {
				ss.seqPID = make(map[uint64]uint16)
				ss.pidSeq = make(map[uint16]uint64)
			}
			ss.seqPID[d.StreamSeq] = pid
			ss.pidSeq[pid] = d.StreamSeq
			ss.setInflightLocked(pid, pub.QoS)
		}
		pub.PacketID = pid
	}
	newAlias := ss.aliasLocked(&pub)
	ss.out2 = packet.AppendPublish(ss.out2[:0], ss.level, &pub)
	if ss.maxOut > 0 && len(ss.out2) > ss.maxOut {
		if newAlias {
			delete(ss.aliasesOut, string(pub.Topic))
		}
		ss.srv.stats.Dropped.Add(1)
		ss.forgetPIDLocked(pub.PacketID)
		go ss.cons.Ack(d.StreamSeq, broker.Ack, 0)
		return true
	}
	if err := ss.conn.Write(ss.out2); err != nil {
		return false
	}
	ss.srv.stats.OutMsgs.Add(1)
	ss.srv.stats.OutBytes.Add(int64(len(d.Payload)))
	ss.mon.outMsgs++
	if pub.QoS == 0 {
		go ss.cons.Ack(d.StreamSeq, broker.Ack, 0)
	}
	return true
}

// pidForSeqLocked derives a packet id from a sequence, stepping past ids
// in use.
func (ss *Session) pidForSeqLocked(seq uint64) uint16 {
	pid := uint16(seq%65535) + 1
	for {
		if _, busy := ss.inflightOut[pid]; !busy {
			return pid
		}
		pid++
		if pid == 0 {
			pid = 1
		}
	}
}

func (ss *Session) forgetPIDLocked(pid uint16) {
	if seq, ok := ss.pidSeq[pid]; ok {
		delete(ss.seqPID, seq)
		delete(ss.pidSeq, pid)
	}
	delete(ss.inflightOut, pid)
}

// storedAck is called (under outMu) when the client acknowledged a
// packet id; it returns the sequence of a stored message, if it was one.
func (ss *Session) storedAckLocked(pid uint16) (uint64, bool) {
	seq, ok := ss.pidSeq[pid]
	if !ok {
		return 0, false
	}
	delete(ss.pidSeq, pid)
	delete(ss.seqPID, seq)
	return seq, true
}

// newSubscription parses a filter (with its $share prefix) into a
// subscription.
func newSubscription(filter string, qos packet.QoS, noLocal, rap bool, id uint32) (*subscription, error) {
	group, topicFilter := "", filter
	if strings.HasPrefix(filter, sharePrefix) {
		g, f, ok := strings.Cut(filter[len(sharePrefix):], "/")
		if !ok || g == "" || f == "" || strings.ContainsAny(g, "+#") {
			return nil, fmt.Errorf("bad shared subscription %q", filter)
		}
		group, topicFilter = g, f
	}
	pattern, err := router.PatternFromMQTTFilter(topicFilter)
	if err != nil {
		return nil, err
	}
	compiled, err := router.CompilePattern(pattern)
	if err != nil {
		return nil, err
	}
	return &subscription{
		filter:     filter,
		pattern:    pattern,
		compiled:   compiled,
		group:      group,
		qos:        min(qos, packet.QoS2),
		noLocal:    noLocal,
		rap:        rap,
		id:         id,
		skipDollar: strings.HasPrefix(topicFilter, "+") || strings.HasPrefix(topicFilter, "#"),
	}, nil
}

// addSub puts a subscription into the routers.
func (s *Server) addSub(sub *subscription) error {
	if _, err := s.live.Insert(sub.routerSub()); err != nil {
		return err
	}
	if sub.stored && s.persist != nil {
		_, _ = s.persist.stored.Insert(router.Subscription[*subscription]{Pattern: sub.pattern, Handle: sub, SkipDollar: sub.skipDollar})
	}
	return nil
}

// removeSub takes a subscription out of the routers.
func (s *Server) removeSub(sub *subscription) {
	s.live.Remove(sub.routerSub())
	if sub.stored && s.persist != nil {
		s.persist.stored.Remove(router.Subscription[*subscription]{Pattern: sub.pattern, Handle: sub, SkipDollar: sub.skipDollar})
	}
}
