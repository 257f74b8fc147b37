package natsgw

import (
	"encoding/json"
	"github.com/ledgemq/ledge/log"
	"strconv"
	"sync"
	"time"

	"github.com/ledgemq/ledge/broker"
	"github.com/ledgemq/ledge/router"
)

// Messages the server makes itself (API replies, publish acks, consumers'
// deliveries, advisories) come from goroutines other than the sessions'
// loops: the API's, the log's commit goroutine, each consumer's. They are
// routed like a client's publish but written straight to each receiver's
// connection (Conn.Write is safe from any goroutine), never through a
// session's per-Feed batches.

// routeScratch is the reusable state of one such delivery.
type routeScratch struct {
	res   router.Result[broker.Receiver]
	hdrs  []log.Header
	subj  []byte
	hdr   []byte
	reply []byte
	out   []byte
}

var scratchPool = sync.Pool{New: func() any { return new(routeScratch) }}

func getScratch() *routeScratch { return scratchPool.Get().(*routeScratch) }

func putScratch(rs *routeScratch) {
	// The result keeps its slices (they are what makes a match free of
	// allocation); the pool drops idle scratch at each collection, and
	// with it the handles it still refers to. Buffers a large message
	// grew are let go.
	if cap(rs.out) > 64<<10 {
		rs.out = nil
	}
	if cap(rs.hdr) > 64<<10 {
		rs.hdr = nil
	}
	scratchPool.Put(rs)
}

// deliverServerMsg routes a message made by the server to every
// subscription of subject (one member per queue group) and returns how
// many took it. hdr is a whole header block or nil; subscribers that did
// not announce headers get a message with a header block only if hdr has
// no status (a status message means nothing to them). It is safe from any
// goroutine.
func (s *Server) deliverServerMsg(rs *routeScratch, subject string, reply, hdr, payload []byte, status bool) int {
	rs.subj = append(rs.subj[:0], subject...)
	return s.deliverServerMsgBytes(rs, rs.subj, reply, hdr, payload, status)
}

// deliverServerMsgBytes is deliverServerMsg for a subject held as bytes.
func (s *Server) deliverServerMsgBytes(rs *routeScratch, subject, reply, hdr, payload []byte, status bool) int {
	return s.deliverTo(rs, subject, subject, reply, hdr, payload, status)
}

// deliverTo routes by target and writes msgSubject in the MSG line: a
// stored message goes to a consumer's deliver subject or pull inbox under
// its own subject, as nats-server sends it.
func (s *Server) deliverTo(rs *routeScratch, target, subject, reply, hdr, payload []byte, status bool) int {
	if s.router.MatchBytes(target, &rs.res) != nil {
		return 0
	}
	n := 0
	for _, r := range rs.res.Subs {
		if s.writeServerMsgTo(rs, r, subject, reply, hdr, payload, status) {
			n++
		}
	}
	for i := range rs.res.Groups {
		g := &rs.res.Groups[i]
		if r, ok := g.Pick(isRemoved); ok && s.writeServerMsgTo(rs, r, subject, reply, hdr, payload, status) {
			n++
		}
	}
	return n
}

func isRemoved(r broker.Receiver) bool {
	sub, ok := r.(*subscription)
	return ok && sub.removed.Load()
}

// writeServerMsgTo writes to a NATS subscription, or hands a message to
// another protocol's subscriber (status messages are NATS's own and go to
// NATS subscribers only).
func (s *Server) writeServerMsgTo(rs *routeScratch, r broker.Receiver, subject, reply, hdr, payload []byte, status bool) bool {
	if sub, ok := r.(*subscription); ok {
		return s.writeServerMsg(rs, sub, subject, reply, hdr, payload, status)
	}
	if status {
		return false
	}
	rs.hdrs = rs.hdrs[:0]
	if len(hdr) > 0 {
		rs.hdrs, _ = ParseHeaders(rs.hdrs, hdr)
	}
	return r.Deliver(&broker.Msg{Subject: subject, Reply: reply, Headers: rs.hdrs, Payload: payload})
}

// writeServerMsg writes one MSG or HMSG to a subscription's connection.
func (s *Server) writeServerMsg(rs *routeScratch, sub *subscription, subject, reply, hdr, payload []byte, status bool) bool {
	if !sub.headers {
		if status {
			return false
		}
		hdr = nil
	}
	n := sub.delivered.Add(1)
	if max := sub.max.Load(); max > 0 {
		if n > max {
			return false
		}
		if n == max {
			s.removeSub(sub)
		}
	}
	out := AppendMsgLine(rs.out[:0], subject, sub.sid, reply, len(hdr), len(payload))
	out = append(out, hdr...)
	out = append(out, payload...)
	out = append(out, crlf...)
	rs.out = out
	if err := sub.session.conn.Write(out); err != nil {
		return false
	}
	s.stats.OutMsgs.Add(1)
	s.stats.OutBytes.Add(int64(len(hdr) + len(payload)))
	sub.session.mon.outMsgs.Add(1)
	return true
}

// reply sends a message without headers to subject; safe from any
// goroutine.
func (s *Server) reply(subject string, payload []byte) {
	if subject == "" {
		return
	}
	rs := getScratch()
	s.deliverServerMsg(rs, subject, nil, nil, payload, false)
	putScratch(rs)
}

// replyJSON marshals v and sends it to subject.
func (s *Server) replyJSON(subject string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		b, _ = json.Marshal(errorResponse{Type: typeAPIError, Error: newAPIError(500, errCodeBadRequest, "%v", err)})
	}
	s.reply(subject, b)
}

// outlet carries the broker's consumers' messages to NATS subscribers.
type outlet struct{ s *Server }

var _ broker.Outlet = outlet{}

// Deliver implements broker.Outlet: the stored message goes to subject
// with the reply subject that acknowledges it, and its headers rebuilt as
// a NATS header block.
func (o outlet) Deliver(subject string, d *broker.Delivery) bool {
	rs := getScratch()
	defer putScratch(rs)
	hdr := rs.hdr[:0]
	if len(d.Headers) > 0 || d.HeadersOnly {
		hdr = append(hdr, headerVersion...)
		hdr = append(hdr, crlf...)
		stored := 0
		for _, h := range d.Headers {
			hdr = appendHeaderLine(hdr, string(h.Key), h.Value)
			stored += len(h.Key) + len(h.Value)
		}
		if d.HeadersOnly {
			hdr = appendHeaderInt(hdr, "Nats-Msg-Size", int64(max(d.Size-stored, 0)))
		}
		hdr = append(hdr, crlf...)
	}
	rs.hdr = hdr
	rs.reply = appendAckSubject(rs.reply[:0], d)
	rs.subj = append(rs.subj[:0], subject...)
	return o.s.deliverTo(rs, rs.subj, d.Subject, rs.reply, hdr, d.Payload, false) > 0
}

// appendAckSubject appends
// $JS.ACK.<stream>.<consumer>.<deliveries>.<sseq>.<cseq>.<time ns>.<pending>.
func appendAckSubject(dst []byte, d *broker.Delivery) []byte {
	dst = append(dst, "$JS.ACK."...)
	dst = append(dst, d.Stream...)
	dst = append(dst, '.')
	dst = append(dst, d.Consumer...)
	dst = append(dst, '.')
	dst = strconv.AppendInt(dst, int64(d.Deliveries), 10)
	dst = append(dst, '.')
	dst = strconv.AppendUint(dst, d.StreamSeq, 10)
	dst = append(dst, '.')
	dst = strconv.AppendUint(dst, d.ConsumerSeq, 10)
	dst = append(dst, '.')
	dst = strconv.AppendInt(dst, d.Time, 10)
	dst = append(dst, '.')
	return strconv.AppendUint(dst, d.Pending, 10)
}

// statusLine is the status and description of each status message, as
// nats-server sends them and nats.go matches them.
func statusLine(k broker.StatusKind) string {
	switch k {
	case broker.StatusNoMessages:
		return "404 No Messages"
	case broker.StatusTimeout:
		return "408 Request Timeout"
	case broker.StatusMaxBytes:
		return "409 Message Size Exceeds MaxBytes"
	case broker.StatusHeartbeat:
		return "100 Idle Heartbeat"
	case broker.StatusFlowControl:
		return "100 FlowControl Request"
	case broker.StatusConsumerDeleted:
		return "409 Consumer Deleted"
	case broker.StatusMaxWaiting:
		return "409 Exceeded MaxWaiting"
	}
	return "400 Bad Request"
}

// Status implements broker.Outlet.
func (o outlet) Status(subject string, st broker.Status) {
	rs := getScratch()
	defer putScratch(rs)
	hdr := append(rs.hdr[:0], headerVersion...)
	hdr = append(hdr, ' ')
	hdr = append(hdr, statusLine(st.Kind)...)
	hdr = append(hdr, crlf...)
	var reply []byte
	switch st.Kind {
	case broker.StatusTimeout, broker.StatusMaxBytes:
		// What the request still had room for, which nats.go's Consume
		// takes back from its count of outstanding messages.
		hdr = appendHeaderInt(hdr, "Nats-Pending-Messages", int64(st.PendingMsgs))
		hdr = appendHeaderInt(hdr, "Nats-Pending-Bytes", int64(st.PendingBytes))
	case broker.StatusHeartbeat:
		if st.LastConsumerSeq > 0 || st.LastStreamSeq > 0 {
			hdr = appendHeaderInt(hdr, "Nats-Last-Consumer", int64(st.LastConsumerSeq))
			hdr = appendHeaderInt(hdr, "Nats-Last-Stream", int64(st.LastStreamSeq))
		}
	case broker.StatusFlowControl:
		reply = append(rs.reply[:0], st.Reply...)
		rs.reply = reply
	}
	hdr = append(hdr, crlf...)
	rs.hdr = hdr
	o.s.deliverServerMsg(rs, subject, reply, hdr, nil, true)
}

// sendStatus sends a status message with a free description (a refused
// pull request) to subject.
func (s *Server) sendStatus(subject, line string) {
	rs := getScratch()
	hdr := append(rs.hdr[:0], headerVersion...)
	hdr = append(hdr, ' ')
	hdr = append(hdr, line...)
	hdr = append(hdr, "\r\n\r\n"...)
	rs.hdr = hdr
	s.deliverServerMsg(rs, subject, nil, hdr, nil, true)
	putScratch(rs)
}

// Interest implements broker.Outlet.
func (o outlet) Interest(subject string) bool {
	rs := getScratch()
	defer putScratch(rs)
	if o.s.router.Match(subject, &rs.res) != nil {
		return false
	}
	for _, r := range rs.res.Subs {
		if !isRemoved(r) {
			return true
		}
	}
	for i := range rs.res.Groups {
		for _, r := range rs.res.Groups[i].Members {
			if !isRemoved(r) {
				return true
			}
		}
	}
	return false
}

// maxDeliverAdvisory and terminatedAdvisory are nats-server's advisories.
type maxDeliverAdvisory struct {
	Type       string    `json:"type"`
	ID         string    `json:"id"`
	Time       time.Time `json:"timestamp"`
	Stream     string    `json:"stream"`
	Consumer   string    `json:"consumer"`
	StreamSeq  uint64    `json:"stream_seq"`
	Deliveries int       `json:"deliveries"`
}

type terminatedAdvisory struct {
	Type       string    `json:"type"`
	ID         string    `json:"id"`
	Time       time.Time `json:"timestamp"`
	Stream     string    `json:"stream"`
	Consumer   string    `json:"consumer"`
	StreamSeq  uint64    `json:"stream_seq"`
	Deliveries int       `json:"deliveries"`
	Reason     string    `json:"reason,omitempty"`
}

// Event implements broker.Outlet: advisories are published on
// $JS.EVENT.ADVISORY.CONSUMER.*.
func (o outlet) Event(ev broker.Event) {
	id := strconv.FormatInt(time.Now().UnixNano(), 36)
	now := time.Now().UTC()
	var subject string
	var v any
	switch ev.Kind {
	case broker.EventMaxDeliveries:
		subject = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + ev.Stream + "." + ev.Consumer
		v = maxDeliverAdvisory{"io.nats.jetstream.advisory.v1.max_deliver", id, now, ev.Stream, ev.Consumer, ev.StreamSeq, ev.Deliveries}
	case broker.EventTerminated:
		subject = "$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED." + ev.Stream + "." + ev.Consumer
		v = terminatedAdvisory{"io.nats.jetstream.advisory.v1.terminated", id, now, ev.Stream, ev.Consumer, ev.StreamSeq, ev.Deliveries, ev.Reason}
	default:
		return
	}
	b, _ := json.Marshal(v)
	o.s.reply(subject, b)
}
