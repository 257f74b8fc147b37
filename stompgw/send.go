package stompgw

import (
	"bytes"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/ledgemq/ledge/amqpgw"
	"github.com/ledgemq/ledge/broker"
	"github.com/ledgemq/ledge/stompgw/frame"
)

// Headers of SEND that are STOMP's or become AMQP properties; every other
// header travels in the AMQP headers table.
var sendHeaders = map[string]bool{
	"destination": true, "content-length": true, "receipt": true, "transaction": true,
	"content-type": true, "content-encoding": true, "persistent": true, "priority": true,
	"correlation-id": true, "reply-to": true, "expiration": true, "amqp-message-id": true,
	"timestamp": true, "type": true, "user-id": true, "app-id": true,
	"durable": true, "auto-delete": true, "exclusive": true,
}

const tempQueuePrefix = "/temp-queue/"

// send serves SEND. A replayed one comes from a COMMIT: its transaction
// is done and what it needed was set up when it was buffered.
func (s *session) send(f *frame.Frame, replay bool) error {
	destB, ok := f.Get("destination")
	if !ok {
		return s.fail(f, "missing header", "SEND needs a destination header")
	}
	d, ok := parseDest(destB)
	if !ok {
		return s.fail(f, "invalid destination", printable(destB)+": "+destHelp)
	}
	if len(f.Body) > s.srv.opts.MaxBodySize {
		return s.fail(f, "message too large", "the body is "+strconv.Itoa(len(f.Body))+" bytes, over the limit of "+strconv.Itoa(s.srv.opts.MaxBodySize))
	}
	var tx *transaction
	if !replay {
		if id, ok := f.Get("transaction"); ok {
			if tx = s.txs[string(id)]; tx == nil {
				return s.fail(f, "unknown transaction", "no transaction "+printable(id)+" was begun")
			}
		}
	}
	if replay {
		return s.publish(f, d, nil)
	}
	// What must exist before the message can go: its queue, the
	// connection's temporary queues it names.
	var qname string
	var qopts amqpgw.QueueOptions
	if d.kind == destQueue && !s.srv.amqp.HasQueue(d.name) {
		var e string
		if qopts, _, e = queueHeaders(f, amqpgw.QueueOptions{Durable: true}); e != "" {
			return s.fail(f, "invalid queue property", e)
		}
		qname = string(d.name)
	}
	var temps []tempReq
	if d.kind == destTempQueue && s.temps[string(d.name)] == nil {
		temps = append(temps, tempReq{name: string(d.name)})
	}
	if r, ok := f.Get("reply-to"); ok && bytes.HasPrefix(r, []byte(tempQueuePrefix)) {
		name := string(r[len(tempQueuePrefix):])
		if name == "" {
			return s.fail(f, "invalid destination", "reply-to "+printable(r)+" names no temporary queue")
		}
		switch t := s.temps[name]; {
		case len(temps) > 0 && temps[0].name == name:
			temps[0].subscribe = true
		case t == nil:
			temps = append(temps, tempReq{name: name, subscribe: true})
		case t.sub == nil:
			// Made by a SEND to it, never subscribed: replies need a
			// subscription.
			temps = append(temps, tempReq{name: name, subscribe: true, made: t})
		}
	}
	if qname == "" && len(temps) == 0 {
		if tx != nil {
			return s.buffer(tx, f)
		}
		return s.publish(f, d, nil)
	}
	cp := cloneFrame(f)
	receipt := cp.receipt()
	s.later(func() error {
		if qname != "" {
			// The owner carries the client, whose configure permission
			// the declaration needs; the queue is not its own.
			if _, err := s.srv.amqp.DeclareQueue(s.owner, qname, qopts); err != nil {
				return err
			}
		}
		for i := range temps {
			if err := s.makeTemp(&temps[i]); err != nil {
				return err
			}
		}
		return nil
	}, func(err error) error {
		for i := range temps {
			if temps[i].made != nil {
				s.addTemp(&temps[i])
			}
		}
		if err != nil {
			return s.failAMQP(receipt, err)
		}
		d, _ := parseDest(cp.dest())
		if tx != nil {
			if s.txs[cp.txID()] != tx {
				return s.failReceipt(receipt, "unknown transaction", "the transaction ended")
			}
			return s.buffer(tx, &cp.f)
		}
		return s.publish(&cp.f, d, nil)
	})
	return nil
}

// publish sends a SEND's message to its destination, which is set up.
// Its receipt comes when every store has it durably; commit, when not
// nil, is told instead (a COMMIT's SENDs).
func (s *session) publish(f *frame.Frame, d dest, commit *commitWait) error {
	m := &s.msg
	*m = amqpgw.Publishing{Body: f.Body}
	switch d.kind {
	case destQueue, destAmqQueue, destReplyQueue:
		m.RoutingKey = d.name
	case destTempQueue:
		t := s.temps[string(d.name)]
		if t == nil {
			return s.fail(f, "invalid destination", "no temporary queue "+printable(d.name))
		}
		m.RoutingKey = t.queue
	case destTopic:
		m.Exchange, m.RoutingKey = []byte("amq.topic"), d.key
	case destExchange:
		m.Exchange, m.RoutingKey = d.name, d.key
	}
	if e := s.properties(f, &m.Properties); e != "" {
		return s.fail(f, "invalid header", e)
	}
	var done func(broker.PubAck, error)
	switch r, ok := f.Get("receipt"); {
	case commit != nil:
		commit.add()
		done = commit.done
	case ok:
		rw := &receiptWait{s: s, id: string(r)}
		done = rw.done
	default:
		done = s.sendDone
	}
	s.outMu.Lock()
	s.inflight++
	s.outMu.Unlock()
	if _, err := s.pub.Publish(m, done); err != nil {
		s.outMu.Lock()
		s.inflight--
		s.outMu.Unlock()
		if commit != nil {
			commit.left.Add(-1)
		}
		r, _ := f.Get("receipt")
		return s.failAMQP(string(r), err)
	}
	s.countIn(len(f.Body))
	s.throttle()
	return nil
}

// properties maps a SEND's headers onto AMQP properties, as RabbitMQ's
// STOMP plugin does. Of repeated headers the first counts.
func (s *session) properties(f *frame.Frame, p *amqpgw.Properties) string {
	s.hdrs = s.hdrs[:0]
	for i, h := range f.Headers {
		k := string(h.Key)
		if repeated(f, i) {
			continue
		}
		if !sendHeaders[k] {
			s.hdrs = append(s.hdrs, amqpgw.Header{Key: h.Key, Value: h.Value})
			continue
		}
		v := h.Value
		switch k {
		case "content-type":
			p.ContentType = v
		case "content-encoding":
			p.ContentEncoding = v
		case "persistent":
			if string(v) == "true" {
				p.DeliveryMode = 2
			}
		case "priority":
			n, err := strconv.ParseUint(string(v), 10, 8)
			if err != nil {
				return "priority must be a number from 0 to 255, not " + printable(v)
			}
			p.Priority, p.HasPriority = uint8(n), true
		case "correlation-id":
			p.CorrelationID = v
		case "reply-to":
			if bytes.HasPrefix(v, []byte(tempQueuePrefix)) {
				if t := s.temps[string(v[len(tempQueuePrefix):])]; t != nil {
					v = t.queue
				}
			}
			p.ReplyTo = amqpReplyTo(v)
		case "expiration":
			p.Expiration = v
		case "amqp-message-id":
			p.MessageID = v
		case "timestamp":
			if n, err := strconv.ParseInt(string(v), 10, 64); err == nil {
				p.Timestamp, p.HasTimestamp = n, true
			}
		case "type":
			p.Type = v
		case "user-id":
			p.UserID = v
		case "app-id":
			p.AppID = v
		}
	}
	p.Headers = s.hdrs
	return ""
}

// repeated reports whether header i of f repeats an earlier one.
func repeated(f *frame.Frame, i int) bool {
	k := f.Headers[i].Key
	for j := 0; j < i; j++ {
		if bytes.Equal(f.Headers[j].Key, k) {
			return true
		}
	}
	return false
}

// receiptWait sends a SEND's receipt once its message is stored, or an
// ERROR if a store refused it.
type receiptWait struct {
	s  *session
	id string
}

func (rw *receiptWait) done(_ broker.PubAck, err error) {
	s := rw.s
	if err != nil {
		s.writeError(rw.id, "message not stored", err.Error())
		s.c.Close(err)
	} else {
		s.writeReceipt([]byte(rw.id))
	}
	s.settled(broker.PubAck{}, nil)
}

// commitWait sends a COMMIT's receipt once every message it published is
// stored. It starts with one hold, which release drops once COMMIT has
// published them all.
type commitWait struct {
	s    *session
	id   string
	left atomic.Int32
	mu   sync.Mutex
	err  error
}

func newCommitWait(s *session, id string) *commitWait {
	cw := &commitWait{s: s, id: id}
	cw.left.Store(1)
	return cw
}

func (cw *commitWait) add() { cw.left.Add(1) }

func (cw *commitWait) done(_ broker.PubAck, err error) {
	if err != nil {
		cw.mu.Lock()
		if cw.err == nil {
			cw.err = err
		}
		cw.mu.Unlock()
	}
	cw.release()
	cw.s.settled(broker.PubAck{}, nil)
}

func (cw *commitWait) release() {
	if cw.left.Add(-1) != 0 {
		return
	}
	cw.mu.Lock()
	err := cw.err
	cw.mu.Unlock()
	if err != nil {
		cw.s.writeError(cw.id, "message not stored", err.Error())
		cw.s.c.Close(err)
		return
	}
	if cw.id != "" {
		cw.s.writeReceipt([]byte(cw.id))
	}
}
