package stompgw

import (
	"strconv"

	"github.com/ledgemq/ledge/amqpgw"
	"github.com/ledgemq/ledge/stompgw/frame"
)

// transaction is a BEGIN's SENDs, ACKs and NACKs, held until COMMIT
// applies them in order or ABORT drops them.
type transaction struct {
	ops   []*frameCopy
	bytes int
}

// Bounds of one transaction, so that a client cannot hold the broker's
// memory in one that never ends.
const (
	maxTxFrames = 100_000
	minTxBytes  = 16 << 20
)

// transaction serves BEGIN, COMMIT and ABORT.
func (s *session) transaction(f *frame.Frame) error {
	idB, ok := f.Get("transaction")
	if !ok {
		return s.fail(f, "missing header", f.Command.String()+" needs a transaction header")
	}
	id := string(idB)
	tx := s.txs[id]
	switch f.Command {
	case frame.BEGIN:
		if tx != nil {
			return s.fail(f, "transaction already begun", "transaction "+printable(idB)+" is already open")
		}
		if s.txs == nil {
			s.txs = make(map[string]*transaction)
		}
		s.txs[id] = &transaction{}
		s.receipt(f)
		return nil
	case frame.ABORT:
		if tx == nil {
			return s.fail(f, "unknown transaction", "no transaction "+printable(idB)+" was begun")
		}
		delete(s.txs, id)
		s.receipt(f)
		return nil
	}
	if tx == nil {
		return s.fail(f, "unknown transaction", "no transaction "+printable(idB)+" was begun")
	}
	delete(s.txs, id)
	r, _ := f.Get("receipt")
	cw := newCommitWait(s, string(r))
	for _, op := range tx.ops {
		var err error
		if op.f.Command == frame.SEND {
			d, _ := parseDest(op.dest())
			err = s.publish(&op.f, d, cw)
		} else {
			err = s.ack(&op.f, true)
		}
		if err != nil {
			return err
		}
	}
	// The receipt once every message of the transaction is stored.
	cw.release()
	return nil
}

// buffer adds a frame to a transaction, and answers its receipt: the
// frame is accepted.
func (s *session) buffer(tx *transaction, f *frame.Frame) error {
	cp := cloneFrame(f)
	limit := max(minTxBytes, 2*s.srv.limits.MaxFrame)
	if len(tx.ops) >= maxTxFrames || tx.bytes+len(cp.buf) > limit {
		return s.fail(f, "transaction too large", "a transaction holds at most "+strconv.Itoa(maxTxFrames)+" frames and "+strconv.Itoa(limit)+" bytes")
	}
	tx.ops = append(tx.ops, cp)
	tx.bytes += len(cp.buf)
	s.receipt(f)
	return nil
}

// frameCopy is a frame copied out of the input, for later: its slices
// point into buf.
type frameCopy struct {
	f   frame.Frame
	buf []byte
}

func cloneFrame(f *frame.Frame) *frameCopy {
	n := len(f.Name) + len(f.Body)
	for _, h := range f.Headers {
		n += len(h.Key) + len(h.Value)
	}
	cp := &frameCopy{buf: make([]byte, 0, n)}
	take := func(b []byte) []byte {
		at := len(cp.buf)
		cp.buf = append(cp.buf, b...)
		return cp.buf[at:len(cp.buf):len(cp.buf)]
	}
	cp.f = frame.Frame{Command: f.Command, Name: take(f.Name), ContentLength: f.ContentLength,
		Headers: make([]frame.Header, len(f.Headers))}
	for i, h := range f.Headers {
		cp.f.Headers[i] = frame.Header{Key: take(h.Key), Value: take(h.Value)}
	}
	cp.f.Body = take(f.Body)
	return cp
}

func (cp *frameCopy) dest() []byte {
	d, _ := cp.f.Get("destination")
	return d
}

func (cp *frameCopy) receipt() string {
	r, _ := cp.f.Get("receipt")
	return string(r)
}

func (cp *frameCopy) txID() string {
	t, _ := cp.f.Get("transaction")
	return string(t)
}

// tempQueue is one of the connection's temporary queues: an exclusive
// queue named by the server, and its subscription once it has one.
type tempQueue struct {
	queue []byte
	sub   *subscription
}

// tempReq asks for a temporary queue; subscribe makes the subscription
// that a reply-to of it implies (sub, when given, is a SUBSCRIBE's);
// made is the queue once there, or already at the start.
type tempReq struct {
	name      string
	subscribe bool
	sub       *subscription
	opts      amqpgw.ConsumeOptions
	made      *tempQueue
}

// makeTemp declares a temporary queue (unless r.made is one already)
// and consumes it; it runs off the loop, while the loop waits for it.
func (s *session) makeTemp(r *tempReq) error {
	if r.made == nil {
		q, err := s.srv.amqp.DeclareQueue(s.owner, "", amqpgw.QueueOptions{Exclusive: true, AutoDelete: true})
		if err != nil {
			return err
		}
		r.made = &tempQueue{queue: []byte(q)}
	}
	if !r.subscribe {
		return nil
	}
	q := string(r.made.queue)
	sub := r.sub
	if sub == nil {
		// RabbitMQ's convention: replies come on a subscription named for
		// the temporary queue.
		dest := tempQueuePrefix + r.name
		sub = s.newSubscription(dest, ackAuto)
		sub.fixedDest = frame.AppendHeader(nil, s.version, frame.MESSAGE, "destination", dest)
	}
	opts := r.opts
	if r.sub == nil {
		opts = amqpgw.ConsumeOptions{NoAck: true}
	}
	opts.Owner = s.owner
	if err := s.consume(sub, q, opts); err != nil {
		return err
	}
	r.made.sub = sub
	return nil
}

// addTemp records a temporary queue made off the loop.
func (s *session) addTemp(r *tempReq) {
	if s.temps == nil {
		s.temps = make(map[string]*tempQueue)
	}
	s.temps[r.name] = r.made
	if sub := r.made.sub; sub != nil && r.sub == nil && s.subs[sub.id] == nil {
		s.subs[sub.id] = sub
	}
}
