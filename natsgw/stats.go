package natsgw

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ledgemq/ledge/broker"
	lnet "github.com/ledgemq/ledge/net"
)

// What monitoring reads of the gateway: its sessions and their
// subscriptions. Everything here is read from other goroutines than the
// event loops, through atomics and the registry's lock; nothing on the
// publish path takes a lock for it.

// sessionStats are a session's counters and the client's description,
// readable from any goroutine.
type sessionStats struct {
	inMsgs, outMsgs atomic.Int64
	subs            atomic.Int32
	client          atomic.Pointer[clientMeta]
}

// clientMeta is what the client said of itself in CONNECT.
type clientMeta struct {
	name, lang, version, user string
}

func (st *sessionStats) setClient(o *connectOptions) {
	st.client.Store(&clientMeta{name: o.Name, lang: o.Lang, version: o.Version, user: o.User})
}

// sessionRegistry is every open session by client id.
type sessionRegistry struct {
	mu       sync.Mutex
	sessions map[uint64]*Session
}

func (r *sessionRegistry) add(ss *Session) {
	r.mu.Lock()
	if r.sessions == nil {
		r.sessions = make(map[uint64]*Session)
	}
	r.sessions[ss.id] = ss
	r.mu.Unlock()
}

func (r *sessionRegistry) remove(ss *Session) {
	r.mu.Lock()
	delete(r.sessions, ss.id)
	r.mu.Unlock()
}

func (r *sessionRegistry) get(id uint64) *Session {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sessions[id]
}

func (r *sessionRegistry) all() []*Session {
	r.mu.Lock()
	out := make([]*Session, 0, len(r.sessions))
	for _, ss := range r.sessions {
		out = append(out, ss)
	}
	r.mu.Unlock()
	return out
}

// ConnInfo is one client connection as monitoring shows it.
type ConnInfo struct {
	// ID is the client id the client was given in INFO.
	ID uint64
	// IP is the client's address without the port; Net has the port.
	IP string
	// Name, Lang and Version are what the client sent in CONNECT, User
	// the user it authenticated as; empty before CONNECT.
	Name, Lang, Version, User string
	// Subscriptions counts the client's live subscriptions.
	Subscriptions int
	// InMsgs counts messages the client published, OutMsgs messages
	// delivered to it.
	InMsgs, OutMsgs int64
	// Pending is the bytes queued for the client and not yet written.
	Pending int
	// Net is the connection's traffic; zero when the session runs on a
	// Conn other than the network layer's (tests).
	Net     lnet.ConnStats
	Network bool // Net is set
	// Remote is the peer's address with its port, when Network.
	Remote string
}

// netConn is what the network layer's connection offers beyond Conn.
type netConn interface {
	Stats() lnet.ConnStats
	Outbound() int
	Close(reason error)
	String() string
}

func (ss *Session) info() ConnInfo {
	ci := ConnInfo{
		ID:            ss.id,
		IP:            ss.remote,
		Subscriptions: int(ss.mon.subs.Load()),
		InMsgs:        ss.mon.inMsgs.Load(),
		OutMsgs:       ss.mon.outMsgs.Load(),
	}
	if m := ss.mon.client.Load(); m != nil {
		ci.Name, ci.Lang, ci.Version, ci.User = m.name, m.lang, m.version, m.user
	}
	if nc, ok := ss.conn.(*lnet.Conn); ok {
		ci.Net, ci.Network, ci.Pending = nc.Stats(), true, nc.Outbound()
		ci.Remote = nc.RemoteAddr().String()
	}
	return ci
}

// Conns returns every open connection, by client id.
func (s *Server) Conns() []ConnInfo {
	sessions := s.sessions.all()
	out := make([]ConnInfo, 0, len(sessions))
	for _, ss := range sessions {
		out = append(out, ss.info())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// ConnCount returns the number of open connections.
func (s *Server) ConnCount() int {
	s.sessions.mu.Lock()
	defer s.sessions.mu.Unlock()
	return len(s.sessions.sessions)
}

// CloseConn closes the connection with client id id, after flushing what
// is queued for it, and reports whether there was one.
func (s *Server) CloseConn(id uint64, reason error) bool {
	ss := s.sessions.get(id)
	if ss == nil {
		return false
	}
	if nc, ok := ss.conn.(interface{ Close(error) }); ok {
		nc.Close(reason)
		return true
	}
	return false
}

// SubInfo is one NATS subscription as monitoring shows it.
type SubInfo struct {
	ConnID  uint64
	SID     string
	Subject string
	Queue   string
	// Delivered counts the messages delivered to it; Max is its UNSUB
	// limit (0: none).
	Delivered, Max int64
}

// Subscriptions returns the live NATS subscriptions (those of other
// protocols share the router but are not listed), by connection and sid.
func (s *Server) Subscriptions() []SubInfo {
	var out []SubInfo
	s.router.Walk(func(_, _ string, r broker.Receiver) bool {
		if sub, ok := r.(*subscription); ok && !sub.removed.Load() {
			out = append(out, SubInfo{ConnID: sub.session.id, SID: sub.sid, Subject: sub.subject, Queue: sub.queue,
				Delivered: sub.delivered.Load(), Max: sub.max.Load()})
		}
		return true
	})
	sort.Slice(out, func(i, j int) bool {
		if out[i].ConnID != out[j].ConnID {
			return out[i].ConnID < out[j].ConnID
		}
		return out[i].SID < out[j].SID
	})
	return out
}

// Settings are the gateway's options as /varz reports them.
type Settings struct {
	ServerID, ServerName string
	MaxPayload           int
	MaxControlLine       int
	PingInterval         time.Duration
	MaxPingsOut          int
	AuthTimeout          time.Duration
	AuthRequired         bool
	JetStream            bool
	ProtocolVersion      string
}

// Settings returns the gateway's effective options.
func (s *Server) Settings() Settings {
	o := &s.opts
	return Settings{
		ServerID: s.id, ServerName: o.ServerName, MaxPayload: o.MaxPayload, MaxControlLine: o.MaxControlLine,
		PingInterval: o.PingInterval, MaxPingsOut: o.MaxPingsOut, AuthTimeout: o.AuthTimeout,
		AuthRequired: o.authRequired(), JetStream: s.js != nil, ProtocolVersion: ProtocolVersion,
	}
}
