package stompgw

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"

	lnet "github.com/ledgemq/ledge/net"
)

// What monitoring reads of the gateway: its counters, its connected
// sessions and their subscriptions, from goroutines other than the event
// loops.

// Stats are the gateway's counters, safe to read at any time. Messages
// are counted as SENDs published (InMsgs, a transaction's at its COMMIT)
// and MESSAGE frames written (OutMsgs); bytes are their bodies.
type Stats struct {
	InMsgs, OutMsgs   atomic.Int64
	InBytes, OutBytes atomic.Int64
	// AuthFailures counts CONNECTs refused for their login or passcode.
	AuthFailures atomic.Int64
	// ProtocolErrors counts connections closed with an ERROR frame for
	// what the client sent (a malformed frame, an unknown command, a
	// missing header, an unknown ack id, a refused destination), not for
	// a refused login.
	ProtocolErrors atomic.Int64
}

// Stats returns the gateway's counters.
func (s *Server) Stats() *Stats { return &s.stats }

// connMon is a session's part for monitoring: inMsgs is counted on the
// loop, outMsgs under the session's outMu (every MESSAGE holds it), meta
// is set once CONNECT is accepted.
type connMon struct {
	inMsgs  atomic.Int64
	outMsgs int64
	meta    atomic.Pointer[connMeta]
}

// connMeta is what CONNECT said and the server agreed to.
type connMeta struct {
	login, clientID, host, version string
	heartBeatIn, heartBeatOut      time.Duration
	connected                      time.Time
}

// accepted records the accepted CONNECT and lists the session; on the
// loop.
func (s *session) accepted(login, host []byte) {
	cid := s.clientID
	if cid != "" {
		cid = cid[:len(cid)-1] // without the dash that names durable subscriptions
	}
	s.mon.meta.Store(&connMeta{login: string(login), clientID: cid, host: string(host), version: s.version.String(),
		heartBeatIn: s.hbIn, heartBeatOut: s.hbOut, connected: time.Now()})
	s.srv.conns.add(s)
}

// countIn counts a SEND published; on the loop.
func (s *session) countIn(size int) {
	s.mon.inMsgs.Add(1)
	s.srv.stats.InMsgs.Add(1)
	s.srv.stats.InBytes.Add(int64(size))
}

// countOutLocked counts a MESSAGE written; outMu held.
func (s *session) countOutLocked(size int) {
	s.mon.outMsgs++
	s.srv.stats.OutMsgs.Add(1)
	s.srv.stats.OutBytes.Add(int64(size))
}

// countError counts a connection closed with an ERROR frame.
func (s *session) countError() {
	if s.loginRefused {
		s.srv.stats.AuthFailures.Add(1)
		return
	}
	s.srv.stats.ProtocolErrors.Add(1)
}

// connRegistry is every connected session by network id.
type connRegistry struct {
	mu    sync.Mutex
	conns map[uint64]*session
}

func (r *connRegistry) add(s *session) {
	r.mu.Lock()
	if r.conns == nil {
		r.conns = make(map[uint64]*session)
	}
	r.conns[s.c.ID()] = s
	r.mu.Unlock()
}

func (r *connRegistry) remove(s *session) {
	r.mu.Lock()
	if r.conns[s.c.ID()] == s {
		delete(r.conns, s.c.ID())
	}
	r.mu.Unlock()
}

func (r *connRegistry) all() []*session {
	r.mu.Lock()
	out := make([]*session, 0, len(r.conns))
	for _, s := range r.conns {
		out = append(out, s)
	}
	r.mu.Unlock()
	return out
}

// ConnInfo is one connected STOMP session as monitoring shows it.
type ConnInfo struct {
	// ID is the network layer's connection id.
	ID uint64
	// Login, ClientID and Host are CONNECT's login, client-id and host
	// headers (the virtual host); Version is the version agreed, "1.0",
	// "1.1" or "1.2".
	Login, ClientID, Host, Version string
	// HeartBeatIn and HeartBeatOut are the agreed heart-beats: how often
	// the client must send something, how often the server does (0:
	// none).
	HeartBeatIn, HeartBeatOut time.Duration
	// Connected is when CONNECT was accepted.
	Connected time.Time
	WebSocket bool
	// Subscriptions are the session's subscriptions, by id.
	Subscriptions []SubscriptionInfo
	// InMsgs counts SENDs published, OutMsgs MESSAGE frames written.
	InMsgs, OutMsgs int64
	// Unacked counts messages written and not yet acknowledged, over
	// every subscription.
	Unacked int
	Pending int
	Net     lnet.ConnStats
	Remote  string
}

// SubscriptionInfo is one SUBSCRIBE (or a temporary queue's replies) of a
// session.
type SubscriptionInfo struct {
	ConnID uint64
	// ID is the subscription's id header, Destination what it
	// subscribed to, Queue the queue it consumes.
	ID, Destination, Queue string
	// Ack is auto, client or client-individual; Prefetch the
	// prefetch-count (0: none).
	Ack      string
	Prefetch int
	// Delivered counts MESSAGE frames written for it, Unacked those not
	// yet acknowledged.
	Delivered int64
	Unacked   int
}

var ackNames = [...]string{ackAuto: "auto", ackClient: "client", ackIndividual: "client-individual"}

func (s *session) info() ConnInfo {
	ci := ConnInfo{ID: s.c.ID(), WebSocket: s.ws, InMsgs: s.mon.inMsgs.Load(),
		Pending: s.c.Outbound(), Net: s.c.Stats(), Remote: s.c.RemoteAddr().String()}
	if m := s.mon.meta.Load(); m != nil {
		ci.Login, ci.ClientID, ci.Host, ci.Version = m.login, m.clientID, m.host, m.version
		ci.HeartBeatIn, ci.HeartBeatOut, ci.Connected = m.heartBeatIn, m.heartBeatOut, m.connected
	}
	s.outMu.Lock()
	ci.OutMsgs = s.mon.outMsgs
	for _, sub := range s.all {
		si := SubscriptionInfo{ConnID: ci.ID, ID: sub.id, Destination: sub.dest, Queue: sub.queue,
			Ack: ackNames[sub.mode], Prefetch: sub.prefetch, Delivered: int64(sub.nextTag), Unacked: sub.pend.live}
		if si.Destination == "" {
			si.Destination = sub.id // a temporary queue's replies: the subscription is named for it
		}
		ci.Unacked += si.Unacked
		ci.Subscriptions = append(ci.Subscriptions, si)
	}
	s.outMu.Unlock()
	sort.Slice(ci.Subscriptions, func(i, j int) bool { return ci.Subscriptions[i].ID < ci.Subscriptions[j].ID })
	return ci
}

// Conns returns every connected session (CONNECT accepted), by id.
func (s *Server) Conns() []ConnInfo {
	sessions := s.conns.all()
	out := make([]ConnInfo, 0, len(sessions))
	for _, ss := range sessions {
		out = append(out, ss.info())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Subscriptions returns every connected session's subscriptions, by
// connection and id.
func (s *Server) Subscriptions() []SubscriptionInfo {
	var out []SubscriptionInfo
	for _, ci := range s.Conns() {
		out = append(out, ci.Subscriptions...)
	}
	return out
}

// ConnCount returns the number of connected sessions.
func (s *Server) ConnCount() int {
	s.conns.mu.Lock()
	defer s.conns.mu.Unlock()
	return len(s.conns.conns)
}

// CloseConn closes the connection with network id id (ConnInfo.ID) after
// flushing what is queued for it, and reports whether there was one. What
// its subscriptions had not acknowledged goes back to their queues, as
// when the network drops.
func (s *Server) CloseConn(id uint64, reason error) bool {
	s.conns.mu.Lock()
	ss := s.conns.conns[id]
	s.conns.mu.Unlock()
	if ss == nil {
		return false
	}
	ss.c.Close(reason)
	return true
}
