package amqpgw

import (
	"encoding/binary"
	"strings"

	"github.com/ledgemq/ledge/broker"
)

// adminReq is an administrative method copied out of the input buffer,
// so that it can be served off the event loop.
type adminReq struct {
	id                                     methodID
	exchange, queue, key, kind             string
	args                                   []byte
	passive, durable, autoDelete, internal bool
	exclusive, ifUnused, ifEmpty, noWait   bool
	// named: the server named the queue (queue.declare with "").
	named bool
}

// admin serves exchange and queue methods off the loop (they create and
// delete streams and write definitions), then answers on the loop.
func (ch *channel) admin(m *Method) {
	cn := ch.conn
	if m.ID == exBind || m.ID == exUnbind {
		m.Exchange, m.Queue = m.Source, m.Destination
	}
	r := adminReq{id: m.ID, exchange: string(m.Exchange), queue: string(m.Queue), key: string(m.RoutingKey),
		kind: string(m.Type), args: clone(m.Arguments), passive: m.Passive, durable: m.Durable,
		autoDelete: m.AutoDelete, internal: m.Internal, exclusive: m.Exclusive, ifUnused: m.IfUnused,
		ifEmpty: m.IfEmpty, noWait: m.NoWait}
	if r.queue == "" && (r.id == qBind || r.id == qUnbind || r.id == qPurge || r.id == qDelete) {
		r.queue = ch.lastQueue
	}
	if r.id == qDeclare && r.queue == "" && !r.passive {
		// Named here, so that the configure permission is asked of the
		// name the queue will have, as RabbitMQ does.
		r.queue, r.named = cn.srv.newName(), true
	}
	if e := cn.permitAdmin(&r); e != nil {
		if err := ch.raise(e, r.id); err != nil {
			cn.c.Close(err)
		}
		return
	}
	cn.async(func() func() {
		reply, q, e := cn.srv.serveAdmin(cn, &r)
		return func() {
			if cn.channels[ch.id] != ch || ch.closing {
				return
			}
			if e != nil {
				if err := ch.raise(e, r.id); err != nil {
					cn.c.Close(err)
				}
				return
			}
			if r.id == qBind && r.exchange == liveExchange && cn.client != nil {
				cn.topicBinds = append(cn.topicBinds, topicBind{queue: r.queue, key: r.key})
			}
			if q != nil && r.id == qDeclare {
				ch.lastQueue = q.name
				if q.exclusive && !r.passive && !contains(cn.exclusive, q) {
					cn.exclusive = append(cn.exclusive, q)
				}
			}
			if reply != nil && !r.noWait {
				// Replies are built for channel 0; the frame is this one's.
				cn.write(func(b []byte) []byte {
					at := len(b)
					b = reply(b)
					binary.BigEndian.PutUint16(b[at+1:], ch.id)
					return b
				})
			}
		}
	})
}

func contains(qs []*queue, q *queue) bool {
	for _, o := range qs {
		if o == q {
			return true
		}
	}
	return false
}

// serveAdmin runs on the administrative goroutine (Server.adminMu held).
func (s *Server) serveAdmin(cn *conn, r *adminReq) (func([]byte) []byte, *queue, *amqpError) {
	switch r.id {
	case exDeclare:
		return s.declareExchange(r)
	case exDelete:
		return s.deleteExchange(r)
	case qDeclare:
		return s.declareQueue(cn, r)
	case exBind, exUnbind:
		return s.bindExchange(r)
	case qBind, qUnbind:
		return s.bindQueue(cn, r)
	case qPurge:
		q, e := s.ownQueue(cn, r.queue)
		if e != nil {
			return nil, nil, e
		}
		n, _ := q.stream.Purge(broker.PurgeRequest{})
		return func(b []byte) []byte { return appendCount(b, 0, qPurgeOk, uint32(n)) }, nil, nil
	case qDelete:
		s.mu.RLock()
		q := s.queues[r.queue]
		s.mu.RUnlock()
		if q == nil {
			return func(b []byte) []byte { return appendCount(b, 0, qDeleteOk, 0) }, nil, nil
		}
		if q.exclusive && q.owner != cn {
			return nil, nil, chanErr(codeResourceLocked, "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '"+q.name+"' in vhost '/'")
		}
		msgs, consumers := q.counts()
		if r.ifUnused && consumers > 0 {
			return nil, nil, chanErr(codePrecondition, "PRECONDITION_FAILED - queue '"+q.name+"' in vhost '/' in use")
		}
		if r.ifEmpty && q.stream.Info().State.Msgs > 0 {
			return nil, nil, chanErr(codePrecondition, "PRECONDITION_FAILED - queue '"+q.name+"' in vhost '/' is not empty")
		}
		_ = msgs
		n := s.deleteQueue(q)
		return func(b []byte) []byte { return appendCount(b, 0, qDeleteOk, n) }, nil, nil
	}
	return nil, nil, connErr(codeCommandInvalid, "COMMAND_INVALID")
}

func (s *Server) ownQueue(cn *conn, name string) (*queue, *amqpError) {
	s.mu.RLock()
	q := s.queues[name]
	s.mu.RUnlock()
	if q == nil {
		return nil, chanErr(codeNotFound, "NOT_FOUND - no queue '"+name+"' in vhost '/'")
	}
	if q.exclusive && q.owner != cn {
		return nil, chanErr(codeResourceLocked, "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '"+name+"' in vhost '/'")
	}
	return q, nil
}

func (s *Server) declareExchange(r *adminReq) (func([]byte) []byte, *queue, *amqpError) {
	s.mu.RLock()
	x := s.exchanges[r.exchange]
	s.mu.RUnlock()
	ok := func(b []byte) []byte { return appendEmpty(b, 0, exDeclareOk) }
	if r.passive {
		if x == nil {
			return nil, nil, chanErr(codeNotFound, "NOT_FOUND - no exchange '"+r.exchange+"' in vhost '/'")
		}
		return ok, nil, nil
	}
	if !validKind(r.kind) {
		return nil, nil, connErr(codeCommandInvalid, "COMMAND_INVALID - invalid exchange type '"+r.kind+"'")
	}
	if x != nil {
		if x.kind != r.kind {
			return nil, nil, chanErr(codePrecondition, "PRECONDITION_FAILED - inequivalent arg 'type' for exchange '"+r.exchange+"' in vhost '/': received '"+r.kind+"' but current is '"+x.kind+"'")
		}
		if x.durable != r.durable {
			return nil, nil, chanErr(codePrecondition, "PRECONDITION_FAILED - inequivalent arg 'durable' for exchange '"+r.exchange+"' in vhost '/'")
		}
		return ok, nil, nil
	}
	if r.exchange == "" || strings.HasPrefix(r.exchange, "amq.") {
		return nil, nil, chanErr(codeAccessRefused, "ACCESS_REFUSED - exchange name '"+r.exchange+"' contains reserved prefix 'amq.*'")
	}
	for t := r.args; len(t) > 0; {
		var f field
		f, t = nextField(t)
		if n := string(f.Name); n != "alternate-exchange" && strings.HasPrefix(n, "x-") {
			return nil, nil, connErr(codeNotImplemented, "NOT_IMPLEMENTED - exchange argument '"+n+"' is not supported")
		}
	}
	x = newExchange(r.exchange, r.kind, r.durable, r.autoDelete, r.internal, r.args)
	if r.durable {
		if err := s.saveMeta(&metaRecord{Kind: "exchange", Name: x.name, Type: x.kind, AutoDelete: x.autoDelete, Internal: x.internal, Args: x.args}); err != nil {
			return nil, nil, chanErr(codeInternalError, "INTERNAL_ERROR - "+err.Error())
		}
	}
	s.mu.Lock()
	s.exchanges[x.name] = x
	s.mu.Unlock()
	return ok, nil, nil
}

func (s *Server) deleteExchange(r *adminReq) (func([]byte) []byte, *queue, *amqpError) {
	ok := func(b []byte) []byte { return appendEmpty(b, 0, exDeleteOk) }
	if r.exchange == "" || strings.HasPrefix(r.exchange, "amq.") {
		return nil, nil, chanErr(codeAccessRefused, "ACCESS_REFUSED - operation not permitted on exchange '"+r.exchange+"'")
	}
	s.mu.Lock()
	x := s.exchanges[r.exchange]
	if x == nil {
		s.mu.Unlock()
		return ok, nil, nil
	}
	if r.ifUnused && len(x.bindings)+len(x.exBindings) > 0 {
		s.mu.Unlock()
		return nil, nil, chanErr(codePrecondition, "PRECONDITION_FAILED - exchange '"+r.exchange+"' in vhost '/' in use")
	}
	var bs []*binding
	for _, b := range x.bindings {
		bs = append(bs, b)
	}
	for _, b := range bs {
		s.removeBinding(b)
	}
	delete(s.exchanges, x.name)
	// Bindings to other exchanges, from it and to it, go with it.
	xbs := x.exBindings
	x.exBindings = nil
	for _, o := range s.exchanges {
		kept := o.exBindings[:0]
		for _, b := range o.exBindings {
			if b.dst == x {
				xbs = append(xbs, b)
				continue
			}
			kept = append(kept, b)
		}
		o.exBindings = kept
	}
	s.mu.Unlock()
	if x.durable {
		s.dropMeta(&metaRecord{Kind: "exchange", Name: x.name})
		for _, b := range bs {
			s.dropMeta(&metaRecord{Kind: "binding", Exchange: x.name, Queue: b.q.name, Key: b.key, Args: b.args})
		}
		for _, b := range xbs {
			s.dropMeta(&metaRecord{Kind: "xbinding", Exchange: b.ex.name, Name: b.dst.name, Key: b.key, Args: b.args})
		}
	}
	return ok, nil, nil
}

func (s *Server) declareQueue(cn *conn, r *adminReq) (func([]byte) []byte, *queue, *amqpError) {
	name := r.queue
	if name == directReplyTo && r.passive {
		return func(b []byte) []byte { return appendQueueDeclareOk(b, 0, name, 0, 0) }, nil, nil
	}
	if name == "" {
		if r.passive {
			return nil, nil, chanErr(codeNotFound, "NOT_FOUND - no queue '' in vhost '/'")
		}
		name = s.newName()
	}
	s.mu.RLock()
	q := s.queues[name]
	s.mu.RUnlock()
	answer := func(q *queue) func([]byte) []byte {
		msgs, consumers := q.counts()
		return func(b []byte) []byte { return appendQueueDeclareOk(b, 0, q.name, msgs, consumers) }
	}
	if q != nil {
		if q.exclusive && q.owner != cn {
			return nil, nil, chanErr(codeResourceLocked, "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '"+name+"' in vhost '/'")
		}
		if !r.passive {
			for _, c := range []struct {
				arg  string
				a, b bool
			}{{"durable", q.durable, r.durable}, {"exclusive", q.exclusive, r.exclusive}, {"auto_delete", q.autoDelete, r.autoDelete}} {
				if c.a != c.b {
					return nil, nil, chanErr(codePrecondition, "PRECONDITION_FAILED - inequivalent arg '"+c.arg+"' for queue '"+name+"' in vhost '/'")
				}
			}
			if string(q.args) != string(r.args) {
				return nil, nil, chanErr(codePrecondition, "PRECONDITION_FAILED - inequivalent arguments for queue '"+name+"' in vhost '/'")
			}
		}
		if !r.passive {
			q.touch()
		}
		return answer(q), q, nil
	}
	if r.passive {
		return nil, nil, chanErr(codeNotFound, "NOT_FOUND - no queue '"+name+"' in vhost '/'")
	}
	if strings.HasPrefix(name, "amq.") && r.queue != "" && !r.named {
		return nil, nil, chanErr(codeAccessRefused, "ACCESS_REFUSED - queue name '"+name+"' contains reserved prefix 'amq.*'")
	}
	a, e := parseQueueArgs(r.args)
	if e != nil {
		return nil, nil, e
	}
	if f, ok := lookup(r.args, "x-queue-type"); ok {
		if v, _ := f.stringValue(); string(v) != "classic" && (!r.durable || r.exclusive || r.autoDelete) {
			return nil, nil, chanErr(codePrecondition, "PRECONDITION_FAILED - invalid property for queue type '"+string(v)+"'")
		}
	}
	q = &queue{srv: s, name: name, durable: r.durable, exclusive: r.exclusive, autoDelete: r.autoDelete,
		args: r.args, dlx: a.dlx, dlk: a.dlk, hasDLX: a.hasDLX, hasDLK: a.hasDLK}
	if r.exclusive {
		q.owner = cn
	}
	if err := s.openQueueStream(q, a); err != nil {
		return nil, nil, chanErr(codeInternalError, "INTERNAL_ERROR - "+err.Error())
	}
	if q.durable && !q.exclusive {
		if err := s.saveMeta(&metaRecord{Kind: "queue", Name: name, AutoDelete: q.autoDelete, Args: q.args}); err != nil {
			_ = s.b.DeleteStream(q.stream.Name())
			return nil, nil, chanErr(codeInternalError, "INTERNAL_ERROR - "+err.Error())
		}
	} else {
		q.durable = q.durable && !q.exclusive
	}
	s.mu.Lock()
	s.queues[name] = q
	s.mu.Unlock()
	return answer(q), q, nil
}

func (s *Server) bindQueue(cn *conn, r *adminReq) (func([]byte) []byte, *queue, *amqpError) {
	q, e := s.ownQueue(cn, r.queue)
	if e != nil {
		return nil, nil, e
	}
	if r.exchange == "" {
		return nil, nil, chanErr(codeAccessRefused, "ACCESS_REFUSED - operation not permitted on the default exchange")
	}
	s.mu.Lock()
	x := s.exchanges[r.exchange]
	if x == nil {
		s.mu.Unlock()
		return nil, nil, chanErr(codeNotFound, "NOT_FOUND - no exchange '"+r.exchange+"' in vhost '/'")
	}
	rec := &metaRecord{Kind: "binding", Exchange: x.name, Queue: q.name, Key: r.key, Args: r.args}
	persist := x.durable && q.durable
	if r.id == qBind {
		if err := s.addBinding(&binding{ex: x, q: q, key: r.key, args: r.args}); err != nil {
			s.mu.Unlock()
			return nil, nil, chanErr(codePrecondition, "PRECONDITION_FAILED - invalid binding key '"+r.key+"'")
		}
		s.mu.Unlock()
		if persist {
			if err := s.saveMeta(rec); err != nil {
				return nil, nil, chanErr(codeInternalError, "INTERNAL_ERROR - "+err.Error())
			}
		}
		return func(b []byte) []byte { return appendEmpty(b, 0, qBindOk) }, nil, nil
	}
	b := x.bindings[bindingKey{q.name, r.key, string(r.args)}]
	if b != nil {
		s.removeBinding(b)
	}
	autoGone := b != nil && x.autoDelete && len(x.bindings) == 0
	if autoGone {
		delete(s.exchanges, x.name)
	}
	s.mu.Unlock()
	if persist && b != nil {
		s.dropMeta(rec)
	}
	if autoGone && x.durable {
		s.dropMeta(&metaRecord{Kind: "exchange", Name: x.name})
	}
	r.noWait = false // queue.unbind has no no-wait
	return func(b []byte) []byte { return appendEmpty(b, 0, qUnbindOk) }, nil, nil
}

// bindExchange serves exchange.bind and exchange.unbind: r.exchange is
// the source, r.queue the destination exchange.
func (s *Server) bindExchange(r *adminReq) (func([]byte) []byte, *queue, *amqpError) {
	okID := exBindOk
	if r.id == exUnbind {
		okID = exUnbindOk
	}
	ok := func(b []byte) []byte { return appendEmpty(b, 0, okID) }
	if r.exchange == "" || r.queue == "" {
		return nil, nil, chanErr(codeAccessRefused, "ACCESS_REFUSED - operation not permitted on the default exchange")
	}
	s.mu.Lock()
	src, dst := s.exchanges[r.exchange], s.exchanges[r.queue]
	for _, e := range []struct {
		x    *exchange
		name string
	}{{src, r.exchange}, {dst, r.queue}} {
		if e.x == nil {
			s.mu.Unlock()
			return nil, nil, chanErr(codeNotFound, "NOT_FOUND - no exchange '"+e.name+"' in vhost '/'")
		}
	}
	rec := &metaRecord{Kind: "xbinding", Exchange: src.name, Name: dst.name, Key: r.key, Args: r.args}
	persist := src.durable && dst.durable
	if r.id == exBind {
		err := s.addExchangeBinding(&binding{ex: src, dst: dst, key: r.key, args: r.args})
		s.mu.Unlock()
		if err != nil {
			return nil, nil, chanErr(codePrecondition, "PRECONDITION_FAILED - invalid binding key '"+r.key+"'")
		}
		if persist {
			if err := s.saveMeta(rec); err != nil {
				return nil, nil, chanErr(codeInternalError, "INTERNAL_ERROR - "+err.Error())
			}
		}
		return ok, nil, nil
	}
	removed := s.removeExchangeBinding(src, dst, r.key, r.args)
	s.mu.Unlock()
	if removed && persist {
		s.dropMeta(rec)
	}
	return ok, nil, nil
}
