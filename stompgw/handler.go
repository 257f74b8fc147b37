package stompgw

import (
	"errors"

	lnet "github.com/ledgemq/ledge/net"
	"github.com/ledgemq/ledge/net/websocket"
)

// handler serves STOMP on the transport's callbacks, over TCP or inside
// WebSocket frames.
type handler struct {
	srv *Server
	ws  bool
}

func (h handler) OnOpen(c *lnet.Conn) {
	s := newSession(h.srv, c, h.ws)
	c.SetContext(s)
	// A connection that does not send CONNECT in time is closed:
	// half-open connections must not pile up.
	c.AfterFunc(h.srv.opts.ConnectTimeout, func(c *lnet.Conn) {
		if !s.connected {
			c.Close(ErrConnectTimeout)
		}
	})
}

func (h handler) OnData(c *lnet.Conn, in []byte) (int, error) {
	s := c.Context().(*session)
	s.reads++
	if !s.ws {
		return s.feed(in)
	}
	used := 0
	if !s.upgraded {
		n, resp, err := websocket.Upgrade(in, "v12.stomp", "v11.stomp", "v10.stomp", "stomp")
		if errors.Is(err, websocket.ErrIncomplete) {
			return 0, nil
		}
		if resp != nil {
			_ = c.Write(resp)
		}
		if err != nil {
			return n, err
		}
		s.upgraded = true
		used = n
	}
	var f websocket.Frame
	for used < len(in) {
		n, err := websocket.Decode(in[used:], h.srv.limits.MaxFrame, &f)
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
			if f.Opcode == websocket.OpBinary {
				s.wsBinary = true
			}
			s.wsIn = append(s.wsIn, f.Payload...)
		}
	}
	return used, s.feedWebSocket()
}

// feedWebSocket feeds the STOMP bytes gathered from WebSocket frames.
func (s *session) feedWebSocket() error {
	if len(s.wsIn) == 0 {
		return nil
	}
	n, err := s.feed(s.wsIn)
	s.wsIn = append(s.wsIn[:0], s.wsIn[n:]...)
	if len(s.wsIn) > s.srv.limits.MaxFrame {
		return errors.New("stomp: frame over the size limit across WebSocket frames")
	}
	if len(s.wsIn) == 0 {
		s.wsIn = nil // an idle connection holds no buffer
	}
	return err
}

// resumeWebSocket feeds what waited while the session was busy: over
// WebSocket those bytes are the session's, not the transport's, so no
// pause brings them back.
func (s *session) resumeWebSocket() {
	if err := s.feedWebSocket(); err != nil {
		s.c.Close(err)
	}
}

func (h handler) OnClose(c *lnet.Conn, err error) {
	s, ok := c.Context().(*session)
	if !ok {
		return
	}
	if errors.Is(err, lnet.ErrHandlerPanic) {
		h.srv.opts.Logger.Error("stomp: session failed; connection closed", "session", s.id, "remote", c.RemoteAddr(), "err", err)
	}
	h.srv.conns.remove(s)
	s.closedConn()
}
