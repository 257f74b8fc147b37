package stompgw

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/ledgemq/ledge/amqpgw"
	"github.com/ledgemq/ledge/auth"
	"github.com/ledgemq/ledge/broker"
	lnet "github.com/ledgemq/ledge/net"
	"github.com/ledgemq/ledge/net/websocket"
	"github.com/ledgemq/ledge/stompgw/frame"
)

// session is one STOMP connection. Its fields are the event loop's,
// except those under outMu, which the queues' consumer goroutines (that
// deliver MESSAGE frames) and the log's commit callbacks (that write
// RECEIPTs) share with it.
type session struct {
	srv *Server
	c   *lnet.Conn
	id  string

	connected bool
	version   frame.Version
	// clientID is CONNECT's client-id and a dash, which names durable
	// subscriptions.
	clientID string
	// stopped: after DISCONNECT or an ERROR, input is ignored.
	stopped bool
	// loginRefused: the ERROR is for CONNECT's credentials.
	loginRefused bool
	mon          connMon
	// busy: work that may block (a queue declaration) runs off the loop;
	// input waits until it is done, so frames keep their order.
	busy bool
	f    frame.Frame

	owner *amqpgw.Owner
	pub   *amqpgw.Publisher
	msg   amqpgw.Publishing
	hdrs  []amqpgw.Header
	subs  map[string]*subscription
	temps map[string]*tempQueue
	txs   map[string]*transaction
	acks  []uint64

	// Heart-beats: reads counts OnData calls, wrote says a frame went out
	// since the last beat.
	reads   uint64
	wrote   atomic.Bool
	hbIn    time.Duration
	hbOut   time.Duration
	lastHit uint64

	// WebSocket: the upgrade, and STOMP bytes taken out of frames but not
	// yet used.
	ws       bool
	upgraded bool
	wsIn     []byte
	wsBinary bool

	sendDone func(broker.PubAck, error)

	// Auth (auth.go): the client (nil without Options.Auth); while
	// authWait the CONNECT waits for its check, whose answer pending
	// carries to the loop; until throttleEnd input waits for the rate.
	client      *auth.Client
	authWait    bool
	pending     auth.Pending
	throttleEnd time.Time

	outMu sync.Mutex
	wbuf  []byte
	wsBuf []byte
	// closed: the connection is gone; nothing more is written.
	closed bool
	// all is every subscription started, also while its SUBSCRIBE is
	// still being set up off the loop, so that the close cancels it.
	all []*subscription
	// inflight counts SENDs whose stores have not confirmed them; a
	// DISCONNECT's receipt waits for them.
	inflight      int
	disconnecting bool
	discReceipt   string
}

func newSession(srv *Server, c *lnet.Conn, ws bool) *session {
	s := &session{srv: srv, c: c, ws: ws, version: frame.V10,
		id: srv.idBase + "-" + strconv.FormatUint(srv.nextID.Add(1), 10)}
	s.sendDone = s.settled
	return s
}

// feed consumes the frames at the start of in.
func (s *session) feed(in []byte) (int, error) {
	used := 0
	for used < len(in) {
		if s.stopped {
			return len(in), nil
		}
		if s.authWait || s.throttledNow() {
			break
		}
		if s.busy {
			if !s.ws {
				// The input is presented again when the pause ends.
				s.c.PauseReading(time.Millisecond)
			}
			break
		}
		used += frame.SkipEOL(in[used:])
		if used == len(in) {
			break
		}
		n, err := frame.Decode(in[used:], s.version, s.srv.limits, &s.f)
		if err == frame.ErrIncomplete {
			break
		}
		if err != nil {
			var fe *frame.Error
			errors.As(err, &fe)
			return used, s.fail(nil, "malformed frame", fe.Message)
		}
		used += n
		if err := s.handle(&s.f); err != nil {
			if err == errWaitAuth {
				// The CONNECT is decoded again once its check is done.
				return used - n, nil
			}
			return used, err
		}
	}
	return used, nil
}

// handle serves one frame; an error closes the connection, after the
// ERROR frame it wrote.
func (s *session) handle(f *frame.Frame) error {
	switch f.Command {
	case frame.CONNECT, frame.STOMP:
		if s.connected {
			return s.fail(f, "already connected", "a second "+f.Command.String()+" frame")
		}
		return s.connect(f)
	}
	if !s.connected {
		return s.fail(f, "not connected", "the first frame must be CONNECT or STOMP")
	}
	switch f.Command {
	case frame.SEND:
		return s.send(f, false)
	case frame.SUBSCRIBE:
		return s.subscribe(f)
	case frame.UNSUBSCRIBE:
		return s.unsubscribe(f)
	case frame.ACK, frame.NACK:
		return s.ack(f, false)
	case frame.BEGIN, frame.COMMIT, frame.ABORT:
		return s.transaction(f)
	case frame.DISCONNECT:
		return s.disconnect(f)
	}
	return s.fail(f, "unknown command", "no such command: "+printable(f.Name))
}

// printable quotes client bytes for an error text.
func printable(b []byte) string {
	if len(b) > 64 {
		b = b[:64]
	}
	return strconv.Quote(string(b))
}

// connect serves CONNECT and STOMP: version negotiation, credentials and
// heart-beats.
func (s *session) connect(f *frame.Frame) error {
	v := frame.V10
	if list, ok := f.Get("accept-version"); ok {
		v = 0
		for _, p := range strings.Split(string(list), ",") {
			if pv, ok := frame.ParseVersion(strings.TrimSpace(p)); ok && pv > v {
				v = pv
			}
		}
		if v == 0 {
			s.writeFrame(func(b []byte) []byte {
				b = frame.AppendCommand(b, frame.ERROR)
				b = frame.AppendHeader(b, frame.V10, frame.ERROR, "version", "1.0,1.1,1.2")
				b = frame.AppendHeader(b, frame.V10, frame.ERROR, "content-type", "text/plain")
				b = frame.AppendHeader(b, frame.V10, frame.ERROR, "message", "unsupported protocol version")
				return frame.AppendBody(b, []byte("Supported protocol versions are 1.0,1.1,1.2"))
			})
			s.stopped = true
			s.countError()
			return fmt.Errorf("%w: no common version in %q", ErrProtocol, list)
		}
	}
	if err := s.login(f); err != nil {
		return err
	}
	var cx, cy time.Duration
	if hb, ok := f.Get("heart-beat"); ok && v >= frame.V11 {
		var ok bool
		if cx, cy, ok = parseHeartBeat(hb); !ok {
			return s.fail(f, "malformed heart-beat header", "want two non-negative numbers of milliseconds, got "+printable(hb))
		}
	}
	// The client can send every cx and wants a beat every cy; the server
	// answers what it can send and what it wants, no shorter than its
	// floor, and each side then uses the larger of the two.
	floor := s.srv.opts.MinHeartBeat
	if cy > 0 {
		s.hbOut = max(cy, floor)
	}
	if cx > 0 {
		s.hbIn = max(cx, floor)
	}
	if cid, ok := f.Get("client-id"); ok && len(cid) > 0 {
		s.clientID = string(cid) + "-"
	}
	s.version = v
	s.connected = true
	s.subs = make(map[string]*subscription)
	s.owner = s.srv.amqp.NewOwner()
	s.pub = s.srv.amqp.NewPublisher()
	if s.client != nil {
		s.owner.SetClient(s.client)
		s.pub.SetClient(s.client)
	}
	s.writeFrame(func(b []byte) []byte {
		b = frame.AppendCommand(b, frame.CONNECTED)
		if v >= frame.V11 {
			b = frame.AppendHeader(b, v, frame.CONNECTED, "version", v.String())
			b = append(b, "heart-beat:"...)
			b = strconv.AppendInt(b, s.hbOut.Milliseconds(), 10)
			b = append(b, ',')
			b = strconv.AppendInt(b, s.hbIn.Milliseconds(), 10)
			b = append(b, '\n')
		}
		b = frame.AppendHeader(b, v, frame.CONNECTED, "server", "ledge/"+s.srv.opts.Version)
		b = frame.AppendHeader(b, v, frame.CONNECTED, "session", s.id)
		return append(b, '\n', 0)
	})
	s.startHeartBeats()
	host, _ := f.Get("host")
	login, _ := f.Get("login")
	if s.client != nil {
		// Monitoring shows who logged in (a certificate has no login).
		login = []byte(s.client.User())
	}
	s.accepted(login, host)
	return nil
}

// parseHeartBeat reads "cx,cy" in milliseconds.
func parseHeartBeat(b []byte) (cx, cy time.Duration, ok bool) {
	a, c, found := strings.Cut(string(b), ",")
	if !found {
		return 0, 0, false
	}
	x, err1 := strconv.ParseUint(strings.TrimSpace(a), 10, 31)
	y, err2 := strconv.ParseUint(strings.TrimSpace(c), 10, 31)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return time.Duration(x) * time.Millisecond, time.Duration(y) * time.Millisecond, true
}

// startHeartBeats sends an EOL when nothing else went out for hbOut, and
// closes a connection silent for twice hbIn (STOMP leaves the tolerance
// to the implementation; twice allows for a beat just missed).
func (s *session) startHeartBeats() {
	if s.hbOut > 0 {
		var t *lnet.Timer
		t = s.c.AfterFunc(s.hbOut, func(*lnet.Conn) {
			if !s.wrote.Swap(false) {
				s.writeRaw([]byte{'\n'})
				s.wrote.Store(false)
			}
			t.Reset(s.hbOut)
		})
	}
	if s.hbIn > 0 {
		s.lastHit = s.reads
		silent := 0
		var t *lnet.Timer
		t = s.c.AfterFunc(s.hbIn, func(c *lnet.Conn) {
			if s.reads != s.lastHit {
				s.lastHit, silent = s.reads, 0
			} else if silent++; silent >= 2 {
				c.Close(ErrMissedHeartBeats)
				return
			}
			t.Reset(s.hbIn)
		})
	}
}

// fail writes an ERROR frame about f (which may be nil) and returns the
// error that closes the connection once it is flushed.
func (s *session) fail(f *frame.Frame, message, detail string) error {
	var receipt []byte
	if f != nil {
		receipt, _ = f.Get("receipt")
	}
	return s.failReceipt(string(receipt), message, detail)
}

// failReceipt is fail with the receipt id already copied out of the
// frame (for work finished off the loop).
func (s *session) failReceipt(receipt, message, detail string) error {
	s.writeError(receipt, message, detail)
	s.stopped = true
	s.countError()
	return fmt.Errorf("%w: %s: %s", ErrProtocol, message, detail)
}

// writeError writes an ERROR frame; safe from any goroutine. The caller
// closes the connection.
func (s *session) writeError(receipt, message, detail string) {
	v := s.version
	s.writeFrame(func(b []byte) []byte {
		b = frame.AppendCommand(b, frame.ERROR)
		b = frame.AppendHeader(b, v, frame.ERROR, "message", message)
		if receipt != "" {
			b = frame.AppendHeader(b, v, frame.ERROR, "receipt-id", receipt)
		}
		b = frame.AppendHeader(b, v, frame.ERROR, "content-type", "text/plain")
		return frame.AppendBody(b, []byte(detail))
	})
}

// failAMQP reports a refusal of the broker model, as RabbitMQ's STOMP
// plugin does: its reply text's name as the message, the text as body.
func (s *session) failAMQP(receipt string, err error) error {
	var e *amqpgw.Error
	if errors.As(err, &e) {
		name, _, _ := strings.Cut(e.Text, " - ")
		return s.failReceipt(receipt, strings.ToLower(name), e.Text)
	}
	return s.failReceipt(receipt, "internal error", err.Error())
}

// receipt answers a frame's receipt header, if it has one.
func (s *session) receipt(f *frame.Frame) {
	if r, ok := f.Get("receipt"); ok {
		s.writeReceipt(r)
	}
}

func (s *session) writeReceipt(id []byte) {
	v := s.version
	s.writeFrame(func(b []byte) []byte {
		b = frame.AppendCommand(b, frame.RECEIPT)
		b = frame.AppendHeader(b, v, frame.RECEIPT, "receipt-id", id)
		return append(b, '\n', 0)
	})
}

// writeFrame builds a frame in the session's buffer and queues it; safe
// from any goroutine.
func (s *session) writeFrame(build func([]byte) []byte) {
	s.outMu.Lock()
	defer s.outMu.Unlock()
	if s.closed {
		return
	}
	s.wbuf = build(s.wbuf[:0])
	_ = s.outLocked(s.wbuf)
	s.trimLocked()
}

// writeRaw queues b (a heart-beat).
func (s *session) writeRaw(b []byte) {
	s.outMu.Lock()
	defer s.outMu.Unlock()
	if !s.closed {
		_ = s.outLocked(b)
	}
}

// outLocked queues STOMP bytes, in a WebSocket frame over WebSocket:
// binary when the client sends binary frames or the bytes are not UTF-8,
// text otherwise (what browsers' STOMP clients expect).
func (s *session) outLocked(b []byte) error {
	s.wrote.Store(true)
	if !s.ws {
		return s.c.Write(b)
	}
	op := byte(websocket.OpText)
	if s.wsBinary || !utf8.Valid(b) {
		op = websocket.OpBinary
	}
	s.wsBuf = websocket.AppendFrame(s.wsBuf[:0], op, b)
	err := s.c.Write(s.wsBuf)
	if cap(s.wsBuf) > 1<<20 {
		s.wsBuf = nil
	}
	return err
}

// trimLocked lets a large frame's buffer go rather than keep it per
// connection.
func (s *session) trimLocked() {
	if cap(s.wbuf) > 1<<20 {
		s.wbuf = nil
	}
}

// later runs op off the event loop, where it may block on the broker
// (declaring a queue writes its definition), then finish on the loop.
// Input waits meanwhile. An error from finish closes the connection (it
// has written the ERROR).
func (s *session) later(op func() error, finish func(error) error) {
	s.busy = true
	go func() {
		err := op()
		_ = s.c.Do(func(c *lnet.Conn) {
			s.busy = false
			if e := finish(err); e != nil {
				c.Close(e)
				return
			}
			if s.ws {
				s.resumeWebSocket()
			}
		})
	}()
}

// settled is the confirm of a SEND without a receipt.
func (s *session) settled(_ broker.PubAck, err error) {
	if err != nil {
		s.srv.opts.Logger.Debug("stomp: message not stored", "session", s.id, "err", err)
	}
	s.outMu.Lock()
	s.inflight--
	fin := s.disconnecting && s.inflight == 0
	s.outMu.Unlock()
	if fin {
		s.finishDisconnect()
	}
}

// disconnect serves DISCONNECT: its receipt once every SEND before it is
// stored, then the close.
func (s *session) disconnect(f *frame.Frame) error {
	s.stopped = true
	r, _ := f.Get("receipt")
	s.outMu.Lock()
	s.disconnecting = true
	s.discReceipt = string(r)
	now := s.inflight == 0
	s.outMu.Unlock()
	if now {
		if len(r) > 0 {
			s.writeReceipt(r)
		}
		return errDisconnected
	}
	return nil
}

func (s *session) finishDisconnect() {
	if s.discReceipt != "" {
		s.writeReceipt([]byte(s.discReceipt))
	}
	s.c.Close(nil)
}

// closed is the connection's end: subscriptions stop and give back what
// they had not acknowledged, and the exclusive queues (temporary queues,
// topic subscriptions) go.
func (s *session) closedConn() {
	s.pending.Abandon()
	defer s.client.Close()
	s.outMu.Lock()
	s.closed = true
	all := s.all
	s.all = nil
	pend := make([][]uint64, len(all))
	for i, sub := range all {
		sub.gone = true
		pend[i] = sub.pend.all(nil)
	}
	s.outMu.Unlock()
	for i, sub := range all {
		if sub.amqp != nil {
			sub.amqp.Cancel(pend[i])
		}
	}
	if s.owner != nil {
		go s.owner.Release()
	}
}
