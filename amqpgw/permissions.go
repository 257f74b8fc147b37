package amqpgw

import (
	"time"

	"github.com/ledgemq/ledge/auth"
	"github.com/ledgemq/ledge/router"
)

// RabbitMQ's resource permissions, and the subject rules where AMQP meets
// the other protocols. Every method is checked on the loop, before its
// work is handed to the administrative goroutine, so a refused one
// changes nothing: channel.close 403 ACCESS_REFUSED, as RabbitMQ answers.
//
//	exchange.declare        configure on the exchange (not when passive)
//	exchange.delete         configure on the exchange
//	exchange.bind, unbind   write on the destination, read on the source
//	queue.declare           configure on the queue (not when passive)
//	queue.delete            configure on the queue
//	queue.bind, unbind      write on the queue, read on the exchange
//	queue.purge             read on the queue
//	basic.consume, get      read on the queue
//	basic.publish           write on the exchange ("amq.default" for "")
//
// amq.topic is where the other protocols' subjects flow: a publish to it
// needs the publish rule of its routing key's subject, and a binding on it
// (of a queue, or of an exchange to it as source) a subscribe rule that
// covers the whole binding key (auth.Allowed, not Filtered: a queue is
// shared and its deliveries cannot be filtered per subscriber), so a
// message an AMQP client may not read never enters its queues.

// topicBind is an amq.topic binding made on this connection.
type topicBind struct {
	queue, key string
}

// accessErr is the channel exception of a refused resource permission.
func (cn *conn) accessErr(r auth.Resource, p auth.Perm, name string) *amqpError {
	if r == auth.Exchange && name == "" {
		name = "amq.default"
	}
	cn.srv.denied.Add(1)
	cn.client.Denied(p.String()+" "+r.String(), name)
	return chanErr(codeAccessRefused, "ACCESS_REFUSED - "+p.String()+" access to "+r.String()+" '"+name+"' in vhost '/' refused for user '"+cn.client.User()+"'")
}

// permit checks one resource permission.
func (cn *conn) permit(r auth.Resource, p auth.Perm, name string) *amqpError {
	if cn.client == nil || cn.client.MayAccess(r, p, name) {
		return nil
	}
	return cn.accessErr(r, p, name)
}

// permitBindKey checks that a binding key on amq.topic is within the
// client's subscribe rules.
func (cn *conn) permitBindKey(key string) *amqpError {
	if cn.client == nil {
		return nil
	}
	pattern, err := router.PatternFromAMQPBindingKey(key)
	if err == nil && cn.client.Subscribe(pattern) == auth.Allowed {
		return nil
	}
	cn.srv.denied.Add(1)
	cn.client.Denied("bind", key)
	return chanErr(codeAccessRefused, "ACCESS_REFUSED - read access to topic '"+key+"' in exchange 'amq.topic' in vhost '/' refused for user '"+cn.client.User()+"'")
}

// permitAdmin checks an administrative method before it is served.
func (cn *conn) permitAdmin(r *adminReq) *amqpError {
	if cn.client == nil {
		return nil
	}
	var e *amqpError
	switch r.id {
	case exDeclare:
		if !r.passive {
			e = cn.permit(auth.Exchange, auth.Configure, r.exchange)
		}
	case exDelete:
		e = cn.permit(auth.Exchange, auth.Configure, r.exchange)
	case exBind, exUnbind:
		// r.exchange is the source, r.queue the destination exchange.
		if e = cn.permit(auth.Exchange, auth.Write, r.queue); e == nil {
			e = cn.permit(auth.Exchange, auth.Read, r.exchange)
		}
		if e == nil && r.id == exBind && r.exchange == liveExchange {
			e = cn.permitBindKey(r.key)
		}
	case qDeclare:
		if !r.passive {
			e = cn.permit(auth.Queue, auth.Configure, r.queue)
		}
	case qDelete:
		e = cn.permit(auth.Queue, auth.Configure, r.queue)
	case qBind, qUnbind:
		if e = cn.permit(auth.Queue, auth.Write, r.queue); e == nil {
			e = cn.permit(auth.Exchange, auth.Read, r.exchange)
		}
		if e == nil && r.id == qBind && r.exchange == liveExchange {
			e = cn.permitBindKey(r.key)
		}
	case qPurge:
		e = cn.permit(auth.Queue, auth.Read, r.queue)
	}
	return e
}

// liveExchange is the exchange bridged to the other protocols.
const liveExchange = "amq.topic"

// permitPublish checks basic.publish: the write permission on the
// exchange (remembered per channel for its last exchange), the user's
// payload and rate limits.
func (ch *channel) permitPublish(ex []byte, size int) *amqpError {
	cn := ch.conn
	cl := cn.client
	if cl == nil {
		return nil
	}
	if !ch.permSet || ch.permGen != cn.permGen || string(ex) != ch.permEx {
		ch.permEx, ch.permGen, ch.permSet = string(ex), cn.permGen, true
		ch.permOK = cl.MayAccess(auth.Exchange, auth.Write, ch.permEx)
	}
	if !ch.permOK {
		return cn.accessErr(auth.Exchange, auth.Write, string(ex))
	}
	if cn.guarded() {
		lim := cl.Limits()
		if lim.MaxPayload > 0 && int64(size) > lim.MaxPayload {
			cn.srv.denied.Add(1)
			return chanErr(codePrecondition, "PRECONDITION_FAILED - message size is larger than the user's max-payload")
		}
		pause, err := cl.Rate(size)
		if err != nil {
			cn.srv.opts.Logger.Warn("amqp: client disconnected for its publishing rate", "remote", cn.c.RemoteAddr().String(), "user", cl.User())
			return connErr(codeConnectionForced, "CONNECTION_FORCED - publishing above the rate limit for too long")
		}
		if pause > 0 {
			cn.c.PauseReading(pause)
			cn.throttleEnd = time.Now().Add(pause)
		}
	}
	return nil
}

// permitTopic checks a publish to amq.topic against the publish rules of
// its subject.
func (ch *channel) permitTopic(subject []byte, key []byte) *amqpError {
	cl := ch.conn.client
	if cl == nil || cl.MayPublish(subject) {
		return nil
	}
	ch.conn.srv.denied.Add(1)
	cl.Denied("publish", string(subject))
	return chanErr(codeAccessRefused, "ACCESS_REFUSED - write access to topic '"+string(key)+"' in exchange 'amq.topic' in vhost '/' refused for user '"+cl.User()+"'")
}

func (cn *conn) guarded() bool { return cn.client != nil && !cn.client.Unrestricted() }

// rulesChanged follows a reload of the users on the connection's loop: a
// revoked client's connection is closed with 320 CONNECTION_FORCED;
// otherwise consumers of queues it may no longer read are cancelled
// (basic.cancel, which RabbitMQ's clients expect: consumer_cancel_notify)
// and its amq.topic bindings outside its new rules are removed.
func (cn *conn) rulesChanged(err error) {
	if cn.client == nil {
		return
	}
	cn.permGen++
	if err != nil {
		cn.c.Close(cn.fail(connErr(codeConnectionForced, "CONNECTION_FORCED - access revoked by a reload of the users"), 0))
		return
	}
	for _, ch := range cn.channels {
		for tag, c := range ch.consumers {
			if c.q == nil || cn.client.MayAccess(auth.Queue, auth.Read, c.q.name) {
				continue
			}
			cn.srv.denied.Add(1)
			delete(ch.consumers, tag)
			cn.outMu.Lock()
			c.dead = true
			cn.outMu.Unlock()
			c.q.removeSub(c)
			id := ch.id
			cn.write(func(b []byte) []byte { return appendCancel(b, id, tag) })
		}
	}
	keep := cn.topicBinds[:0]
	var gone []topicBind
	for _, tb := range cn.topicBinds {
		pattern, err := router.PatternFromAMQPBindingKey(tb.key)
		if err == nil && cn.client.Subscribe(pattern) == auth.Allowed {
			keep = append(keep, tb)
		} else {
			gone = append(gone, tb)
		}
	}
	cn.topicBinds = keep
	if len(gone) == 0 {
		return
	}
	srv := cn.srv
	go func() {
		srv.adminMu.Lock()
		defer srv.adminMu.Unlock()
		for _, tb := range gone {
			srv.denied.Add(1)
			srv.opts.Logger.Info("amqp: binding removed: the user's rules no longer allow it", "user", cn.client.User(), "queue", tb.queue, "key", tb.key)
			_, _, _ = srv.bindQueue(cn, &adminReq{id: qUnbind, exchange: liveExchange, queue: tb.queue, key: tb.key})
		}
	}()
}
