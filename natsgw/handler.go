package natsgw

import (
	"errors"
	stdnet "net"

	lnet "github.com/ledgemq/ledge/net"
)

// Handler returns the network handler that serves this gateway; give it to
// lnet.Listen. The listener's Options.MaxInput should leave room for
// MaxPayload plus MaxControlLine (see MaxInput).
func (s *Server) Handler() lnet.Handler { return handler{s} }

// MaxInput is the unconsumed input a connection needs room for: the
// largest operation this gateway accepts.
func (s *Server) MaxInput() int {
	return s.opts.MaxPayload + s.opts.MaxControlLine + len("\r\n")
}

type handler struct{ srv *Server }

func (h handler) OnOpen(c *lnet.Conn) {
	ip := ""
	if a, ok := c.RemoteAddr().(*stdnet.TCPAddr); ok {
		ip = a.IP.String()
	}
	ss := h.srv.Open(c, ip)
	ss.lc = c
	c.SetContext(ss)
	if tc := h.srv.opts.TLS; tc != nil {
		// INFO went out in plaintext; the client's handshake follows.
		if err := c.StartTLS(tc); err != nil {
			h.srv.opts.Logger.Error("nats: TLS needs a portable, plaintext listener", "err", err)
			ss.sendErr(ErrTLSRequired.Text)
			c.Close(err)
			return
		}
	}

	interval := h.srv.opts.PingInterval
	var ping *lnet.Timer
	// The timer's function runs serialized with this connection's other
	// callbacks, never before OnOpen returns, so ping is set by then.
	ping = c.AfterFunc(interval, func(c *lnet.Conn) {
		if err := ss.PingTimer(); err != nil {
			c.Close(err)
			return
		}
		ping.Reset(interval)
	})
	if h.srv.opts.authRequired() {
		c.AfterFunc(h.srv.opts.AuthTimeout, func(c *lnet.Conn) {
			if err := ss.AuthTimer(); err != nil {
				c.Close(err)
			}
		})
	}
}

func (h handler) OnData(c *lnet.Conn, in []byte) (int, error) {
	return c.Context().(*Session).Feed(in)
}

func (h handler) OnClose(c *lnet.Conn, err error) {
	ss, ok := c.Context().(*Session)
	if !ok {
		return
	}
	if errors.Is(err, lnet.ErrHandlerPanic) {
		// A bug reached by this client's input: the connection is gone,
		// the broker goes on, and the stack says where to look.
		h.srv.opts.Logger.Error("nats: session failed; connection closed", "client", ss.id, "remote", ss.remote, "err", err)
	}
	ss.Closed()
}
