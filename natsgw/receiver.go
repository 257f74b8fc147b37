package natsgw

import (
	"github.com/valyala/bytebufferpool"

	"github.com/ledgemq/ledge/broker"
	lnet "github.com/ledgemq/ledge/net"
)

// Deliver implements broker.Receiver: a message from another protocol's
// publisher (MQTT, AMQP, STOMP, the uplink's downlink), on the publisher's
// goroutine. NATS publishers deliver to NATS subscriptions directly, with
// their batching; this is the path for everything else. The message's
// headers become a NATS header block for clients that announced headers.
func (sub *subscription) Deliver(m *broker.Msg) bool {
	ss := sub.session
	if sub.removed.Load() || (m.Origin == ss && !ss.echo) || !sub.mayReceive(m.Subject) {
		return false
	}
	n := sub.delivered.Add(1)
	if max := sub.max.Load(); max > 0 {
		if n > max {
			return false
		}
		if n == max {
			ss.srv.removeSub(sub)
		}
	}
	if len(m.Reply) > 0 {
		ss.client.NoteReply(m.Reply)
	}
	hb := bytebufferpool.Get()
	defer bytebufferpool.Put(hb)
	if sub.headers && len(m.Headers) > 0 {
		hb.B = appendHeaderBlock(hb.B[:0], "", m.Headers)
	}
	hdr := hb.B
	buf := bytebufferpool.Get()
	defer bytebufferpool.Put(buf)
	msg := AppendMsgLine(buf.B[:0], m.Subject, sub.sid, m.Reply, len(hdr), len(m.Payload))
	msg = append(msg, hdr...)
	msg = append(msg, m.Payload...)
	msg = append(msg, crlf...)
	buf.B = msg
	srv := ss.srv
	if err := ss.conn.Write(msg); err != nil {
		if err == lnet.ErrSlowConsumer {
			srv.stats.SlowConsumers.Add(1)
		}
		return false
	}
	srv.stats.OutMsgs.Add(1)
	srv.stats.OutBytes.Add(int64(len(hdr) + len(m.Payload)))
	ss.mon.outMsgs.Add(1)
	return true
}
