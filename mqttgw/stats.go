package mqttgw

import (
	"sort"
	"sync/atomic"
	"time"

	"github.com/ledgemq/ledge/broker"
	lnet "github.com/ledgemq/ledge/net"
	"github.com/ledgemq/ledge/router"
)

// What monitoring reads of the gateway: its connected sessions, their
// subscriptions and the retained messages, from goroutines other than the
// event loops.

// sessionStats are a session's counters for monitoring. inMsgs is the
// session loop's; outMsgs and the rest are guarded by the session's outMu,
// which every delivery holds anyway.
type sessionStats struct {
	inMsgs  atomic.Int64
	outMsgs int64
	// user is the CONNECT's user name and persistent whether the session
	// outlives the connection, set before the session joins the client
	// table and never changed (a 5.0 DISCONNECT may change the expiry
	// on the loop; monitoring does not read it there).
	user       string
	persistent bool
}

// ConnInfo is one connected MQTT session as monitoring shows it.
type ConnInfo struct {
	// ID is the session's number among this gateway's connections, the
	// network layer's connection id, stable while it is connected.
	ID       uint64
	ClientID string
	IP       string
	User     string
	// Version is "3.1.1" or "5.0"; WebSocket says it came over WebSocket.
	Version   string
	WebSocket bool
	// Clean is the clean session (3.1.1) or clean start (5.0) flag;
	// Persistent says the session outlives the connection.
	Clean, Persistent bool
	KeepAlive         time.Duration
	// Subscriptions are the session's topic filters.
	Subscriptions []string
	// InMsgs counts PUBLISHes from the client, OutMsgs those sent to it.
	InMsgs, OutMsgs int64
	// Inflight are QoS 1 and 2 messages sent and not yet acknowledged,
	// Queued those waiting for the client's receive window.
	Inflight, Queued int
	Pending          int
	Net              lnet.ConnStats
	Network          bool
	Remote           string
}

// netConn returns the network layer's connection under the session's, or
// nil (tests).
func (ss *Session) netConn() (*lnet.Conn, bool) {
	switch c := ss.conn.(type) {
	case lnetConn:
		return c.c, false
	case wsConn:
		return c.c, true
	}
	return nil, false
}

func (ss *Session) info() ConnInfo {
	ci := ConnInfo{
		ClientID: ss.clientID, IP: ss.remote, User: ss.mon.user, Version: ss.level.String(),
		Clean: ss.clean, Persistent: ss.mon.persistent, KeepAlive: ss.keepAlive,
		InMsgs: ss.mon.inMsgs.Load(),
	}
	ss.outMu.Lock()
	ci.OutMsgs = ss.mon.outMsgs
	ci.Inflight, ci.Queued = len(ss.inflightOut), len(ss.queue)
	for _, sub := range ss.outSubs {
		ci.Subscriptions = append(ci.Subscriptions, sub.filter)
	}
	ss.outMu.Unlock()
	sort.Strings(ci.Subscriptions)
	if nc, ws := ss.netConn(); nc != nil {
		ci.ID, ci.WebSocket = nc.ID(), ws
		ci.Net, ci.Network, ci.Pending = nc.Stats(), true, nc.Outbound()
		ci.Remote = nc.RemoteAddr().String()
	}
	return ci
}

// connected returns the sessions in the client table.
func (s *Server) connected() []*Session {
	s.mu.Lock()
	out := make([]*Session, 0, len(s.clients))
	for _, ss := range s.clients {
		out = append(out, ss)
	}
	s.mu.Unlock()
	return out
}

// Conns returns every connected session (CONNECT accepted), by client id.
func (s *Server) Conns() []ConnInfo {
	sessions := s.connected()
	out := make([]ConnInfo, 0, len(sessions))
	for _, ss := range sessions {
		out = append(out, ss.info())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ClientID < out[j].ClientID })
	return out
}

// CloseConn closes the connection with network id id (ConnInfo.ID), as a
// server-side disconnect: the will is published and a persistent session
// is kept, as when the network drops. It reports whether there was one.
func (s *Server) CloseConn(id uint64, reason error) bool {
	for _, ss := range s.connected() {
		if nc, _ := ss.netConn(); nc != nil && nc.ID() == id {
			nc.Close(reason)
			return true
		}
	}
	return false
}

// RetainedInfo is one retained message.
type RetainedInfo struct {
	Topic string
	QoS   byte
	// Payload is the stored payload; the caller must not modify it.
	Payload []byte
}

// Retained returns the retained messages whose topic matches the MQTT
// filter ("#" for all), by topic. An invalid filter is an error.
func (s *Server) Retained(filter string) ([]RetainedInfo, error) {
	pattern, err := router.PatternFromMQTTFilter(filter)
	if err != nil {
		return nil, err
	}
	p, err := router.CompilePattern(pattern)
	if err != nil {
		return nil, err
	}
	var out []RetainedInfo
	for _, m := range s.ret.matching(p, false) {
		topic, err := router.MQTTTopicFromSubject(m.subject)
		if err != nil {
			topic = m.subject
		}
		out = append(out, RetainedInfo{Topic: topic, QoS: m.qos, Payload: m.payload})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Topic < out[j].Topic })
	return out, nil
}

// RetainedCount returns the number of retained messages.
func (s *Server) RetainedCount() int { return s.ret.count() }

// SubInfo is one MQTT subscription of a connected session.
type SubInfo struct {
	ClientID string
	Filter   string
	// Group is the shared subscription's group ("" for none).
	Group string
	QoS   byte
}

// Subscriptions returns the live subscriptions of every MQTT session in
// the shared router (a parked persistent session's included), by client
// id and filter.
func (s *Server) Subscriptions() []SubInfo {
	var out []SubInfo
	s.live.Walk(func(_, _ string, r broker.Receiver) bool {
		sub, ok := r.(*subscription)
		if !ok {
			return true
		}
		id := ""
		if ss := sub.session.Load(); ss != nil {
			id = ss.clientID
		}
		out = append(out, SubInfo{ClientID: id, Filter: sub.filter, Group: sub.group, QoS: byte(sub.qos)})
		return true
	})
	sort.Slice(out, func(i, j int) bool {
		if out[i].ClientID != out[j].ClientID {
			return out[i].ClientID < out[j].ClientID
		}
		return out[i].Filter < out[j].Filter
	})
	return out
}
