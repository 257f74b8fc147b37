package stompgw

import (
	"errors"
	"time"

	"github.com/ledgemq/ledge/auth"
	lnet "github.com/ledgemq/ledge/net"
	"github.com/ledgemq/ledge/stompgw/frame"
)

// Users and permissions (package auth). CONNECT's login and passcode (or,
// over TLS, a verified client certificate) are checked off the event
// loop: the CONNECT is left unconsumed and decoded again once the answer
// is in. What a client may do then is the AMQP gateway's to check, since
// STOMP's destinations are its exchanges and queues: the session's Owner
// and Publisher carry the client, so /queue, /topic and /exchange
// destinations need RabbitMQ's resource permissions, and /topic the
// subject rules, as an AMQP connection's would (amqpgw/permissions.go). A
// refusal is an ERROR frame, after which the connection closes, as STOMP
// wants.

// errWaitAuth leaves a CONNECT unconsumed while its passcode is checked.
var errWaitAuth = errors.New("stomp: waiting for the password check")

// ErrRevoked is the close reason of a connection whose access a reload of
// the users took away.
var ErrRevoked = errors.New("stomp: access revoked by a reload of the users")

// login authenticates CONNECT. It returns nil once the session has its
// client, errWaitAuth while the check runs, or the error that closes the
// connection after its ERROR.
func (s *session) login(f *frame.Frame) error {
	a := s.srv.opts.Auth
	if a == nil || s.client != nil {
		return nil
	}
	loginB, _ := f.Get("login")
	passcode, _ := f.Get("passcode")
	req := &auth.Request{Protocol: auth.STOMP, Remote: s.c.RemoteAddr(), TLS: s.c.TLS(),
		Username: string(loginB), Password: append([]byte(nil), passcode...)}
	c := s.c
	cl, pending, err := a.Authenticate(req, func(cl *auth.Client, err error) {
		if s.pending.Put(cl, err) {
			// If the connection is closing, its close abandons it.
			_ = c.Do(s.authDone)
		}
	})
	if pending {
		s.authWait = true
		c.PauseReading(s.srv.opts.ConnectTimeout + time.Second)
		return errWaitAuth
	}
	return s.loggedIn(f, cl, err)
}

// authDone takes a check's answer on the connection's loop.
func (s *session) authDone(c *lnet.Conn) {
	cl, err, ok := s.pending.Take()
	if !ok {
		return
	}
	s.authWait = false
	if err := s.loggedIn(nil, cl, err); err != nil {
		c.Close(err)
		return
	}
	// The CONNECT is decoded again, now with its client.
	c.ResumeReading()
	if s.ws {
		s.resumeWebSocket()
	}
}

// loggedIn takes an authentication's result.
func (s *session) loggedIn(f *frame.Frame, cl *auth.Client, err error) error {
	if err != nil {
		// auth logs refusals, a flood of them within a budget.
		s.loginRefused = true
		return s.fail(f, "access refused", err.Error())
	}
	s.client = cl
	c := s.c
	cl.OnChange(func(err error) {
		_ = c.Do(func(*lnet.Conn) { s.rulesChanged(err) })
	})
	return nil
}

// rulesChanged follows a reload of the users on the connection's loop: a
// revoked client gets an ERROR and the connection closes; otherwise the
// subscriptions of queues it may no longer read are cancelled (STOMP has
// no way to say so but an ERROR, which would close the connection; the
// log says it).
func (s *session) rulesChanged(err error) {
	if s.client == nil || s.stopped {
		return
	}
	if err != nil {
		s.c.Close(s.failReceipt("", "access refused", ErrRevoked.Error()))
		return
	}
	if s.pub != nil {
		s.pub.RulesChanged()
	}
	for id, sub := range s.subs {
		if sub.queue == "" || s.client.MayAccess(auth.Queue, auth.Read, sub.queue) {
			continue
		}
		s.srv.opts.Logger.Info("stomp: subscription cancelled: the user's rules no longer allow it", "session", s.id, "user", s.client.User(), "subscription", id, "queue", sub.queue)
		delete(s.subs, id)
		s.stop(sub)
	}
}

// throttle applies the client's rate limit after a SEND: the reading
// pauses for what the publisher says.
func (s *session) throttle() {
	if s.pub == nil {
		return
	}
	if d := s.pub.Pause(); d > 0 {
		s.c.PauseReading(d)
		s.throttleEnd = time.Now().Add(d)
	}
}

// throttledNow reports whether the input waits out a throttle; a pause
// that ended early is taken up again for what is left.
func (s *session) throttledNow() bool {
	if s.throttleEnd.IsZero() {
		return false
	}
	left := time.Until(s.throttleEnd)
	if left <= 0 {
		s.throttleEnd = time.Time{}
		return false
	}
	s.c.PauseReading(left)
	return true
}
