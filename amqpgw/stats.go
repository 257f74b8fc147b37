package amqpgw

import (
	"sort"
	"sync"
	"sync/atomic"

	lnet "github.com/ledgemq/ledge/net"
)

// What monitoring reads of the gateway: its counters, its connections and
// its queues, from goroutines other than the event loops.

// Stats are the gateway's counters, safe to read at any time.
type Stats struct {
	InMsgs, OutMsgs   atomic.Int64
	InBytes, OutBytes atomic.Int64
	// AuthFailures counts logins refused for bad credentials.
	AuthFailures atomic.Int64
	// ProtocolErrors counts connections closed by a connection exception.
	ProtocolErrors atomic.Int64
}

// Stats returns the gateway's counters.
func (s *Server) Stats() *Stats { return &s.stats }

// connStats are a connection's counters for monitoring: inMsgs and
// channels are the loop's, outMsgs is guarded by the connection's outMu
// (every delivery holds it).
type connStats struct {
	inMsgs   atomic.Int64
	channels atomic.Int32
	outMsgs  int64
	client   atomic.Pointer[clientMeta]
}

// clientMeta is what the client said of itself in connection.start-ok.
type clientMeta struct {
	user, name, product, version, platform string
}

// setClient records the user and the client properties of start-ok.
func (st *connStats) setClient(user string, props []byte) {
	m := &clientMeta{user: user}
	if len(props) > 0 && validateTable(props, 0) == nil {
		str := func(key string) string {
			if f, ok := lookup(props, key); ok {
				if v, ok := f.stringValue(); ok {
					return string(v)
				}
			}
			return ""
		}
		m.name, m.product, m.version, m.platform = str("connection_name"), str("product"), str("version"), str("platform")
	}
	st.client.Store(m)
}

// connRegistry is every open connection by network id.
type connRegistry struct {
	mu    sync.Mutex
	conns map[uint64]*conn
}

func (r *connRegistry) add(cn *conn) {
	r.mu.Lock()
	if r.conns == nil {
		r.conns = make(map[uint64]*conn)
	}
	r.conns[cn.c.ID()] = cn
	r.mu.Unlock()
}

func (r *connRegistry) remove(cn *conn) {
	r.mu.Lock()
	delete(r.conns, cn.c.ID())
	r.mu.Unlock()
}

func (r *connRegistry) all() []*conn {
	r.mu.Lock()
	out := make([]*conn, 0, len(r.conns))
	for _, cn := range r.conns {
		out = append(out, cn)
	}
	r.mu.Unlock()
	return out
}

// ConnInfo is one AMQP connection as monitoring shows it.
type ConnInfo struct {
	// ID is the network layer's connection id.
	ID uint64
	// User is the login; Name, Product, Version and Platform are the
	// client properties connection_name, product, version and platform.
	User, Name, Product, Version, Platform string
	// Open says the handshake is complete.
	Open     bool
	Channels int
	// InMsgs counts messages the client published, OutMsgs messages
	// delivered to it (basic.deliver and basic.get-ok).
	InMsgs, OutMsgs int64
	Pending         int
	Net             lnet.ConnStats
	Remote          string
}

// Conns returns every open connection, by id.
func (s *Server) Conns() []ConnInfo {
	conns := s.conns.all()
	out := make([]ConnInfo, 0, len(conns))
	for _, cn := range conns {
		ci := ConnInfo{ID: cn.c.ID(), InMsgs: cn.mon.inMsgs.Load(), Channels: int(cn.mon.channels.Load()),
			Pending: cn.c.Outbound(), Net: cn.c.Stats(), Remote: cn.c.RemoteAddr().String()}
		if m := cn.mon.client.Load(); m != nil {
			ci.User, ci.Name, ci.Product, ci.Version, ci.Platform = m.user, m.name, m.product, m.version, m.platform
		}
		cn.outMu.Lock()
		ci.OutMsgs = cn.mon.outMsgs
		cn.outMu.Unlock()
		ci.Open = ci.Channels > 0 || cn.mon.client.Load() != nil
		out = append(out, ci)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// CloseConn closes the connection with network id id, after flushing what
// is queued for it, and reports whether there was one. Its unacknowledged
// messages go back to their queues, as when the network drops.
func (s *Server) CloseConn(id uint64, reason error) bool {
	s.conns.mu.Lock()
	cn := s.conns.conns[id]
	s.conns.mu.Unlock()
	if cn == nil {
		return false
	}
	cn.c.Close(reason)
	return true
}

// QueueRef is an AMQP queue and where it lives in the broker: monitoring
// reads its counts from the stream's consumer.
type QueueRef struct {
	Name string
	// Stream and Consumer are the broker stream that holds the queue and
	// the consumer that delivers it.
	Stream, Consumer string
	// Consumers counts the basic.consume subscriptions on it.
	Consumers                      int
	Durable, Exclusive, AutoDelete bool
}

// QueueRefs returns every queue, sorted by name.
func (s *Server) QueueRefs() []QueueRef {
	s.mu.RLock()
	qs := make([]*queue, 0, len(s.queues))
	for _, q := range s.queues {
		qs = append(qs, q)
	}
	s.mu.RUnlock()
	out := make([]QueueRef, 0, len(qs))
	for _, q := range qs {
		q.mu.Lock()
		n := q.consumers
		q.mu.Unlock()
		out = append(out, QueueRef{Name: q.name, Stream: q.stream.Name(), Consumer: q.cons.Name(), Consumers: n,
			Durable: q.durable, Exclusive: q.exclusive, AutoDelete: q.autoDelete})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// countIn counts a message the client published; on the connection's loop.
func (cn *conn) countIn(size int) {
	cn.mon.inMsgs.Add(1)
	cn.srv.stats.InMsgs.Add(1)
	cn.srv.stats.InBytes.Add(int64(size))
}

// countOutLocked counts a message delivered to the client; outMu held.
func (cn *conn) countOutLocked(size int) {
	cn.mon.outMsgs++
	cn.srv.stats.OutMsgs.Add(1)
	cn.srv.stats.OutBytes.Add(int64(size))
}

// ConnCount returns the number of open connections.
func (s *Server) ConnCount() int {
	s.conns.mu.Lock()
	defer s.conns.mu.Unlock()
	return len(s.conns.conns)
}
