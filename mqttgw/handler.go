package mqttgw

import (
	"errors"
	stdnet "net"

	lnet "github.com/ledgemq/ledge/net"
)

// Handler returns the network handler that serves this gateway; give it to
// lnet.Listen with Options.MaxInput at least MaxInput.
func (s *Server) Handler() lnet.Handler { return handler{s} }

// MaxInput is the unconsumed input a connection needs room for: the
// largest packet this gateway accepts.
func (s *Server) MaxInput() int { return s.opts.MaxPacketSize }

type handler struct{ srv *Server }

// lnetConn adapts a transport connection to the session's Conn.
type lnetConn struct{ c *lnet.Conn }

func (l lnetConn) Write(b []byte) error { return l.c.Write(b) }
func (l lnetConn) Close(reason error)   { l.c.Close(reason) }

func (h handler) OnOpen(c *lnet.Conn) {
	ip := ""
	if a, ok := c.RemoteAddr().(*stdnet.TCPAddr); ok {
		ip = a.IP.String()
	}
	ss := h.srv.Open(lnetConn{c}, ip)
	c.SetContext(ss)
	// A connection that does not complete its CONNECT in time is closed:
	// half-open connections must not pile up (MQTT-3.1.4).
	c.AfterFunc(h.srv.opts.ConnectTimeout, func(c *lnet.Conn) {
		if !ss.connected {
			c.Close(ErrConnectTimeout)
		}
	})
}

func (h handler) OnData(c *lnet.Conn, in []byte) (int, error) {
	ss := c.Context().(*Session)
	wasConnected := ss.connected
	n, err := ss.Feed(in)
	if !wasConnected && ss.connected && ss.keepAlive > 0 {
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
	ss, ok := c.Context().(*Session)
	if !ok {
		return
	}
	if errors.Is(err, lnet.ErrHandlerPanic) {
		h.srv.opts.Logger.Error("mqtt: session failed; connection closed", "client", ss.clientID, "remote", ss.remote, "err", err)
	}
	ss.Closed()
}
