package amqpgw

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/ledgemq/ledge/auth"
	lnet "github.com/ledgemq/ledge/net"
)

// Close reasons of connections, passed to the transport.
var (
	ErrBadProtocolHeader = errors.New("amqp: not an AMQP 0-9-1 protocol header")
	ErrHandshakeTimeout  = errors.New("amqp: handshake not completed in time")
	ErrMissedHeartbeats  = errors.New("amqp: missed heartbeats")
	errClientClosed      = errors.New("amqp: closed by the client")
	errConnException     = errors.New("amqp: connection exception")
	ErrRevoked           = errors.New("amqp: access revoked by a reload of the users")
)

// amqpError is an exception: a channel's (the channel closes) or the
// connection's (the connection closes).
type amqpError struct {
	code int
	text string
	conn bool
}

func chanErr(code int, text string) *amqpError { return &amqpError{code: code, text: text} }
func connErr(code int, text string) *amqpError {
	return &amqpError{code: code, text: text, conn: true}
}

// Connection states.
const (
	stateHeader = iota
	stateStartOk
	stateTuneOk
	stateOpen
	stateOpened
)

// conn is one AMQP connection. Its fields are the event loop's, except
// those guarded by outMu, which consumer goroutines also use.
type conn struct {
	srv        *Server
	c          *lnet.Conn
	state      int
	frameMax   int
	channelMax int
	heartbeat  time.Duration
	lastRead   time.Time
	channels   map[uint16]*channel
	exclusive  []*queue
	// busy: an administrative method is being served off the loop; input
	// waits until its answer is written.
	busy bool
	m    Method
	obuf []byte

	// Auth. client is nil without Options.Auth, which allows everything;
	// while authWait the start-ok's credentials are being checked and
	// the input waits; pending carries the answer to the loop; until
	// throttleEnd input waits after a publish over the rate limit.
	client      *auth.Client
	authWait    bool
	pending     auth.Pending
	mech        string
	throttleEnd time.Time
	// topicBinds are the amq.topic bindings made on this connection, to
	// check again when the rules change.
	topicBinds []topicBind
	// permGen changes with the client's rules, so that channels' cached
	// decisions are made again.
	permGen int

	outMu  sync.Mutex
	wbuf   []byte
	closed bool

	mon connStats // for monitoring (stats.go)
}

// Handler returns the network handler that serves AMQP; give it to
// lnet.Listen with Options.MaxInput at least MaxInput.
func (s *Server) Handler() lnet.Handler { return handler{s} }

// MaxInput is the unconsumed input a connection needs room for.
func (s *Server) MaxInput() int { return s.opts.FrameMax + 64 }

type handler struct{ srv *Server }

func (h handler) OnOpen(c *lnet.Conn) {
	cn := &conn{srv: h.srv, c: c, frameMax: h.srv.opts.FrameMax, channels: make(map[uint16]*channel)}
	c.SetContext(cn)
	h.srv.conns.add(cn)
	c.AfterFunc(h.srv.opts.HandshakeTimeout, func(c *lnet.Conn) {
		if cn.state != stateOpened {
			c.Close(ErrHandshakeTimeout)
		}
	})
}

func (h handler) OnClose(c *lnet.Conn, err error) {
	cn, ok := c.Context().(*conn)
	if !ok {
		return
	}
	h.srv.conns.remove(cn)
	cn.outMu.Lock()
	cn.closed = true
	cn.outMu.Unlock()
	cn.pending.Abandon()
	cn.client.Close()
	for _, ch := range cn.channels {
		ch.release()
	}
	cn.channels = nil
	if len(cn.exclusive) > 0 {
		qs := cn.exclusive
		go func() {
			h.srv.adminMu.Lock()
			defer h.srv.adminMu.Unlock()
			for _, q := range qs {
				h.srv.deleteQueue(q)
			}
		}()
	}
}

func (h handler) OnData(c *lnet.Conn, in []byte) (int, error) {
	cn := c.Context().(*conn)
	if cn.authWait || cn.throttledNow() {
		return 0, nil
	}
	if cn.busy {
		c.PauseReading(time.Millisecond)
		return 0, nil
	}
	used := 0
	if cn.state == stateHeader {
		if len(in) < len(protocolHeader) {
			if !bytes.HasPrefix(protocolHeader, in) {
				_ = c.Write(protocolHeader)
				return len(in), ErrBadProtocolHeader
			}
			return 0, nil
		}
		if !bytes.Equal(in[:8], protocolHeader) {
			// Spec 4.2.2: answer with the header we speak, then close.
			_ = c.Write(protocolHeader)
			return 8, ErrBadProtocolHeader
		}
		used = 8
		cn.sendStart()
		cn.state = stateStartOk
	}
	var f Frame
	for used < len(in) && !cn.busy && !cn.authWait && cn.throttleEnd.IsZero() {
		n, err := decodeFrame(in[used:], cn.frameMax, &f)
		if err == errIncomplete {
			break
		}
		if err != nil {
			var fe *frameError
			errors.As(err, &fe)
			return used, cn.fail(connErr(fe.Code, fe.Text), 0)
		}
		used += n
		cn.lastRead = time.Now()
		if err := cn.frame(&f); err != nil {
			return used, err
		}
	}
	return used, nil
}

// write appends a frame built by fn and queues it; safe from any goroutine.
func (cn *conn) write(fn func([]byte) []byte) {
	cn.outMu.Lock()
	defer cn.outMu.Unlock()
	if cn.closed {
		return
	}
	cn.wbuf = fn(cn.wbuf[:0])
	_ = cn.c.Write(cn.wbuf)
}

// fail raises an exception: a channel's closes the channel, a connection's
// returns the error that closes the connection once the close is written.
func (cn *conn) fail(e *amqpError, cause methodID) error {
	if e.conn {
		if e.code != codeAccessRefused {
			cn.srv.stats.ProtocolErrors.Add(1)
		}
		cn.write(func(b []byte) []byte { return appendClose(b, 0, connClose, e.code, e.text, cause) })
		return fmt.Errorf("%w: %d %s", errConnException, e.code, e.text)
	}
	return nil
}

func (cn *conn) sendStart() {
	cn.write(func(b []byte) []byte {
		b, at := appendMethodStart(b, 0, connStart)
		b = append(b, 0, 9)
		b = appendTable(b, func(b []byte) []byte {
			b = appendStringField(b, "product", "ledge")
			b = appendStringField(b, "platform", "Go")
			b = appendShortstr(b, "capabilities")
			b = append(b, 'F')
			return appendTable(b, func(b []byte) []byte {
				for _, c := range []string{"publisher_confirms", "basic.nack", "consumer_cancel_notify",
					"per_consumer_qos", "direct_reply_to", "authentication_failure_close"} {
					b = appendBoolField(b, c, true)
				}
				return appendBoolField(b, "exchange_exchange_bindings", false)
			})
		})
		mechs := "PLAIN AMQPLAIN"
		if st := cn.c.TLS(); st != nil && len(st.VerifiedChains) > 0 {
			// A verified client certificate may be the login (SASL
			// EXTERNAL, as RabbitMQ's rabbitmq_auth_mechanism_ssl).
			mechs += " EXTERNAL"
		}
		b = appendLongstr(b, mechs)
		b = appendLongstr(b, "en_US")
		return finishFrame(b, at)
	})
}

// frame handles one frame.
func (cn *conn) frame(f *Frame) error {
	switch f.Type {
	case frameHeartbeat:
		if f.Channel != 0 {
			return cn.fail(connErr(codeFrameError, "FRAME_ERROR - heartbeat on a channel other than 0"), 0)
		}
		return nil
	case frameMethod:
		if err := decodeMethod(f.Payload, &cn.m); err != nil {
			var fe *frameError
			errors.As(err, &fe)
			return cn.fail(connErr(fe.Code, fe.Text), cn.m.ID)
		}
		if f.Channel == 0 {
			return cn.connMethod(&cn.m)
		}
		if cn.state != stateOpened {
			return cn.fail(connErr(codeChannelError, "CHANNEL_ERROR - connection not open"), cn.m.ID)
		}
		if cn.m.ID>>16 == classConnection {
			return cn.fail(connErr(codeCommandInvalid, "COMMAND_INVALID - connection method on a channel"), cn.m.ID)
		}
		return cn.chanMethod(f.Channel, &cn.m)
	case frameHeader, frameBody:
		ch := cn.channels[f.Channel]
		if cn.state != stateOpened || ch == nil {
			return cn.fail(connErr(codeUnexpectedFrame, "UNEXPECTED_FRAME - content frame outside a publish"), 0)
		}
		if ch.closing {
			return nil
		}
		return ch.content(f)
	default:
		return cn.fail(connErr(codeFrameError, "FRAME_ERROR - unknown frame type "+strconv.Itoa(int(f.Type))), 0)
	}
}

// connMethod handles the methods of channel 0.
func (cn *conn) connMethod(m *Method) error {
	want := map[int]methodID{stateStartOk: connStartOk, stateTuneOk: connTuneOk, stateOpen: connOpen}
	if w, ok := want[cn.state]; ok && m.ID != w && m.ID != connClose {
		return cn.fail(connErr(codeCommandInvalid, "COMMAND_INVALID - unexpected method in the handshake"), m.ID)
	}
	switch m.ID {
	case connStartOk:
		mech := string(m.Mechanism)
		external := mech == "EXTERNAL" && cn.c.TLS() != nil
		if mech != "PLAIN" && mech != "AMQPLAIN" && !external {
			return cn.fail(connErr(codeAccessRefused, "ACCESS_REFUSED - unsupported mechanism"), m.ID)
		}
		var user, pass string
		if !external {
			user, pass = plainCredentials(m.Mechanism, m.Response)
		}
		cn.mon.setClient(user, m.ClientProperties)
		if a := cn.srv.opts.Auth; a != nil {
			req := &auth.Request{Protocol: auth.AMQP, Remote: cn.c.RemoteAddr(), TLS: cn.c.TLS()}
			if !external {
				req.Username, req.Password = user, []byte(pass)
			}
			cn.mech = mech
			c := cn.c
			cl, pending, err := a.Authenticate(req, func(cl *auth.Client, err error) {
				if cn.pending.Put(cl, err) {
					// If the connection is closing, OnClose abandons it.
					_ = c.Do(cn.authDone)
				}
			})
			if pending {
				cn.authWait = true
				c.PauseReading(cn.srv.opts.HandshakeTimeout + time.Second)
				return nil
			}
			if err := cn.loggedIn(cl, err); err != nil {
				return err
			}
		}
		cn.sendTune()
	case connTuneOk:
		cn.channelMax = cn.srv.opts.ChannelMax
		if m.ChannelMax != 0 && int(m.ChannelMax) < cn.channelMax {
			cn.channelMax = int(m.ChannelMax)
		}
		if m.FrameMax != 0 {
			if int(m.FrameMax) < frameMinSize || int(m.FrameMax) > cn.srv.opts.FrameMax {
				return cn.fail(connErr(codeSyntaxError, "SYNTAX_ERROR - frame-max out of range"), m.ID)
			}
			cn.frameMax = int(m.FrameMax)
		}
		cn.heartbeat = time.Duration(m.Heartbeat) * time.Second
		cn.state = stateOpen
	case connOpen:
		if v := string(m.VirtualHost); v != "/" && v != "" {
			// One namespace: other virtual hosts do not exist.
			return cn.fail(connErr(codeNotAllowed, "NOT_ALLOWED - vhost "+v+" not found"), m.ID)
		}
		cn.write(func(b []byte) []byte { return appendTag(b, 0, connOpenOk, "") })
		cn.state = stateOpened
		cn.startHeartbeat()
	case connClose:
		cn.write(func(b []byte) []byte { return appendEmpty(b, 0, connCloseOk) })
		return errClientClosed
	case connCloseOk:
		return errClientClosed
	case connBlocked, connUnblocked:
	case connUpdSecret:
		return cn.fail(connErr(codeNotImplemented, "NOT_IMPLEMENTED - connection.update-secret"), m.ID)
	default:
		return cn.fail(connErr(codeCommandInvalid, "COMMAND_INVALID - method not allowed on channel 0"), m.ID)
	}
	return nil
}

// sendTune answers a login that was let in.
func (cn *conn) sendTune() {
	hb := uint16(0)
	if cn.srv.opts.Heartbeat > 0 {
		hb = uint16(cn.srv.opts.Heartbeat / time.Second)
	}
	cn.write(func(b []byte) []byte {
		b, at := appendMethodStart(b, 0, connTune)
		b = binary.BigEndian.AppendUint16(b, uint16(cn.srv.opts.ChannelMax))
		b = binary.BigEndian.AppendUint32(b, uint32(cn.srv.opts.FrameMax))
		b = binary.BigEndian.AppendUint16(b, hb)
		return finishFrame(b, at)
	})
	cn.state = stateTuneOk
}

// authDone takes a password check's answer on the connection's loop.
func (cn *conn) authDone(c *lnet.Conn) {
	cl, err, ok := cn.pending.Take()
	if !ok {
		return
	}
	cn.authWait = false
	if err := cn.loggedIn(cl, err); err != nil {
		c.Close(err)
		return
	}
	cn.sendTune()
	c.ResumeReading()
}

// loggedIn takes an authentication's result: a refusal is
// connection.close 403 ACCESS_REFUSED, RabbitMQ's answer.
func (cn *conn) loggedIn(cl *auth.Client, err error) error {
	if err != nil {
		// auth logs refusals, a flood of them within a budget.
		cn.srv.stats.AuthFailures.Add(1)
		return cn.fail(connErr(codeAccessRefused, "ACCESS_REFUSED - Login was refused using authentication mechanism "+cn.mech+". For details see the broker logfile."), connStartOk)
	}
	cn.client = cl
	if m := cn.mon.client.Load(); m != nil && m.user != cl.User() {
		// Monitoring shows who logged in (a certificate, a token).
		who := *m
		who.user = cl.User()
		cn.mon.client.Store(&who)
	}
	c := cn.c
	cl.OnChange(func(err error) {
		_ = c.Do(func(*lnet.Conn) { cn.rulesChanged(err) })
	})
	return nil
}

// throttledNow reports whether the input waits out a throttle; a pause
// that ended early is taken up again for what is left.
func (cn *conn) throttledNow() bool {
	if cn.throttleEnd.IsZero() {
		return false
	}
	left := time.Until(cn.throttleEnd)
	if left <= 0 {
		cn.throttleEnd = time.Time{}
		return false
	}
	cn.c.PauseReading(left)
	return true
}

// plainCredentials reads PLAIN's "\0user\0password" (AMQPLAIN's table too).
func plainCredentials(mech, resp []byte) (string, string) {
	if string(mech) == "AMQPLAIN" {
		if validateTable(resp, 0) != nil {
			return "", ""
		}
		var u, p []byte
		if f, ok := lookup(resp, "LOGIN"); ok {
			u, _ = f.stringValue()
		}
		if f, ok := lookup(resp, "PASSWORD"); ok {
			p, _ = f.stringValue()
		}
		return string(u), string(p)
	}
	parts := bytes.SplitN(resp, []byte{0}, 3)
	if len(parts) != 3 {
		return "", ""
	}
	return string(parts[1]), string(parts[2])
}

// startHeartbeat sends a heartbeat every half interval and closes a
// connection silent for two intervals (spec 4.2.7).
func (cn *conn) startHeartbeat() {
	hb := cn.heartbeat
	if hb <= 0 {
		return
	}
	var t *lnet.Timer
	t = cn.c.AfterFunc(hb/2, func(c *lnet.Conn) {
		if time.Since(cn.lastRead) > 2*hb {
			c.Close(ErrMissedHeartbeats)
			return
		}
		cn.write(appendHeartbeat)
		t.Reset(hb / 2)
	})
}

// async serves an administrative method off the event loop: op runs on a
// goroutine, one at a time across the server, and returns what to do on
// the loop once it is done. Input waits meanwhile, so methods stay in
// order.
func (cn *conn) async(op func() func()) {
	cn.busy = true
	go func() {
		cn.srv.adminMu.Lock()
		apply := op()
		cn.srv.adminMu.Unlock()
		_ = cn.c.Do(func(c *lnet.Conn) {
			cn.busy = false
			if cn.channels != nil {
				apply()
			}
		})
	}()
}
