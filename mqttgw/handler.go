package mqttgw

import (
	"errors"
	stdnet "net"

	"github.com/valyala/bytebufferpool"

	lnet "github.com/ledgemq/ledge/net"
	"github.com/ledgemq/ledge/net/websocket"
)

// Handler returns the network handler that serves this gateway over TCP
// (or TLS); give it to lnet.Listen with Options.MaxInput at least MaxInput.
func (s *Server) Handler() lnet.Handler { return handler{srv: s} }

// WebSocketHandler returns the handler that serves MQTT over WebSocket
// (subprotocol "mqtt"), for browser dashboards.
func (s *Server) WebSocketHandler() lnet.Handler { return handler{srv: s, ws: true} }

// MaxInput is the unconsumed input a connection needs room for: the
// largest packet this gateway accepts (and its WebSocket framing).
func (s *Server) MaxInput() int { return s.opts.MaxPacketSize + 14 }

type handler struct {
	srv *Server
	ws  bool
}

// connState is a connection's context: its session, and over WebSocket
// the upgrade and the MQTT bytes taken out of frames but not yet used.
type connState struct {
	ss       *Session
	ws       bool
	upgraded bool
	pending  []byte
	armed    bool // keep-alive timer started
}

// lnetConn adapts a transport connection to the session's Conn.
type lnetConn struct{ c *lnet.Conn }

func (l lnetConn) Write(b []byte) error { return l.c.Write(b) }
func (l lnetConn) Close(reason error)   { l.c.Close(reason) }

// wsConn writes the session's packets as binary WebSocket frames.
type wsConn struct{ c *lnet.Conn }

func (w wsConn) Write(b []byte) error {
	buf := bytebufferpool.Get()
	defer bytebufferpool.Put(buf)
	buf.B = websocket.AppendFrame(buf.B[:0], websocket.OpBinary, b)
	return w.c.Write(buf.B)
}

func (w wsConn) Close(reason error) {
	_ = w.c.Write(websocket.AppendFrame(nil, websocket.OpClose, []byte{0x03, 0xE8})) // 1000: normal closure
	w.c.Close(reason)
}

func (h handler) OnOpen(c *lnet.Conn) {
	ip := ""
	if a, ok := c.RemoteAddr().(*stdnet.TCPAddr); ok {
		ip = a.IP.String()
	}
	var conn Conn = lnetConn{c}
	if h.ws {
		conn = wsConn{c}
	}
	st := &connState{ss: h.srv.Open(conn, ip), ws: h.ws}
	st.ss.lc = c
	st.ss.resume = func(c *lnet.Conn) {
		// After a password check: the held input goes on, and over
		// WebSocket the MQTT bytes already taken out of frames too.
		c.ResumeReading()
		if st.ws && len(st.pending) > 0 && !st.ss.authWait {
			if err := st.feedPending(c, h.srv.opts.MaxPacketSize); err != nil {
				c.Close(err)
			}
		}
	}
	c.SetContext(st)
	// A connection that does not complete its CONNECT in time is closed:
	// half-open connections must not pile up.
	c.AfterFunc(h.srv.opts.ConnectTimeout, func(c *lnet.Conn) {
		if !st.ss.connected {
			c.Close(ErrConnectTimeout)
		}
	})
}

func (h handler) OnData(c *lnet.Conn, in []byte) (int, error) {
	st := c.Context().(*connState)
	if !st.ws {
		return st.feed(c, in)
	}
	used := 0
	if !st.upgraded {
		n, resp, err := websocket.Upgrade(in, "mqtt")
		if errors.Is(err, websocket.ErrIncomplete) {
			return 0, nil
		}
		if resp != nil {
			_ = c.Write(resp)
		}
		if err != nil {
			return n, err
		}
		st.upgraded = true
		used = n
	}
	var f websocket.Frame
	for used < len(in) {
		n, err := websocket.Decode(in[used:], h.srv.opts.MaxPacketSize, &f)
		if errors.Is(err, websocket.ErrIncomplete) {
			break
		}
		if err != nil {
			return used, err
		}
		used += n
		switch f.Opcode {
		case websocket.OpPing:
			_ = c.Write(websocket.AppendFrame(nil, websocket.OpPong, f.Payload))
		case websocket.OpPong:
		case websocket.OpClose:
			_ = c.Write(websocket.AppendFrame(nil, websocket.OpClose, f.Payload))
			return used, websocket.ErrClosedByPeer
		default:
			st.pending = append(st.pending, f.Payload...)
		}
	}
	if len(st.pending) > 0 {
		if err := st.feedPending(c, h.srv.opts.MaxPacketSize); err != nil {
			return used, err
		}
	}
	return used, nil
}

// feedPending hands the MQTT bytes taken out of WebSocket frames to the
// session.
func (st *connState) feedPending(c *lnet.Conn, maxPacket int) error {
	n, err := st.feed(c, st.pending)
	st.pending = append(st.pending[:0], st.pending[n:]...)
	if len(st.pending) > maxPacket+maxPacket/2 {
		return errors.New("mqtt: packet over the size limit across frames")
	}
	if len(st.pending) == 0 {
		st.pending = nil // an idle connection holds no buffer
	}
	return err
}

// feed hands MQTT bytes to the session and starts the keep-alive timer
// once it is connected.
func (st *connState) feed(c *lnet.Conn, in []byte) (int, error) {
	ss := st.ss
	n, err := ss.Feed(in)
	if !st.armed && ss.connected && ss.keepAlive > 0 {
		st.armed = true
		// Checked every half period; three silent checks are one and a
		// half periods (MQTT-3.1.2-24).
		half := ss.keepAlive / 2
		ticks := 0
		var t *lnet.Timer
		t = c.AfterFunc(half, func(c *lnet.Conn) {
			if err := ss.KeepAliveTimer(&ticks); err != nil {
				c.Close(err)
				return
			}
			t.Reset(half)
		})
	}
	return n, err
}

func (h handler) OnClose(c *lnet.Conn, err error) {
	st, ok := c.Context().(*connState)
	if !ok {
		return
	}
	if errors.Is(err, lnet.ErrHandlerPanic) {
		h.srv.opts.Logger.Error("mqtt: session failed; connection closed", "client", st.ss.clientID, "remote", st.ss.remote, "err", err)
	}
	st.ss.Closed()
}
