package amqpgw

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ledgemq/ledge/auth"
	"github.com/ledgemq/ledge/broker"
	"github.com/ledgemq/ledge/router"
)

// Options configure a Server. The zero value serves with the defaults.
type Options struct {
	// FrameMax is the largest frame the server accepts and proposes
	// (128 KiB when zero).
	FrameMax int
	// ChannelMax is the most channels a connection may open (2047 when
	// zero).
	ChannelMax int
	// Heartbeat is the interval the server proposes (60 s when zero;
	// negative: none).
	Heartbeat time.Duration
	// HandshakeTimeout is how long a new connection has to complete its
	// handshake (10 s when zero).
	HandshakeTimeout time.Duration
	// MaxMessageSize bounds a message body (16 MiB when zero).
	MaxMessageSize int
	// Auth lets clients in and says what each may do (package auth):
	// PLAIN and AMQPLAIN credentials, or with EXTERNAL a TLS client
	// certificate, are checked off the event loop; RabbitMQ's resource
	// permissions (configure, write, read) apply to exchanges and queues,
	// and the subject rules to what is published to and bound on
	// amq.topic. nil lets every client do everything.
	Auth   auth.Authenticator
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.FrameMax <= 0 {
		o.FrameMax = 128 << 10
	}
	o.FrameMax = max(o.FrameMax, frameMinSize)
	if o.ChannelMax <= 0 {
		o.ChannelMax = 2047
	}
	if o.Heartbeat == 0 {
		o.Heartbeat = 60 * time.Second
	}
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = 10 * time.Second
	}
	if o.MaxMessageSize <= 0 {
		o.MaxMessageSize = 16 << 20
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Server is the AMQP gateway: exchanges, queues and bindings, shared by
// its connections. It is safe for concurrent use by the event loops.
type Server struct {
	opts Options
	live *router.Router[broker.Receiver]
	b    *broker.Broker
	meta *broker.Stream

	// adminMu serialises administrative operations, which run off the
	// event loops because they write files.
	adminMu sync.Mutex
	// mu guards the tables; publishes read them under the read lock.
	mu        sync.RWMutex
	exchanges map[string]*exchange
	queues    map[string]*queue
	// replyTo are the direct reply-to consumers by their pseudo-queue name.
	replyTo map[string]*consumer

	nextID atomic.Uint64
	idBase string
	closed atomic.Bool
	// denied counts methods and publishes refused by the clients'
	// permissions.
	denied atomic.Int64

	// For monitoring (stats.go).
	stats Stats
	conns connRegistry
}

// Denied returns how many methods and publishes the clients' permissions
// refused.
func (s *Server) Denied() int64 { return s.denied.Load() }

// NewServer returns an AMQP gateway that keeps its queues and definitions
// in b and bridges amq.topic to live, the router shared with the other
// protocols.
func NewServer(opts Options, live *router.Router[broker.Receiver], b *broker.Broker) (*Server, error) {
	if b == nil {
		return nil, errors.New("amqp: a broker is required")
	}
	var id [6]byte
	_, _ = rand.Read(id[:])
	s := &Server{
		opts:      opts.withDefaults(),
		live:      live,
		b:         b,
		exchanges: make(map[string]*exchange),
		queues:    make(map[string]*queue),
		replyTo:   make(map[string]*consumer),
		idBase:    hex.EncodeToString(id[:]),
	}
	for _, d := range []struct{ name, kind string }{
		{"", kindDirect}, {"amq.direct", kindDirect}, {"amq.fanout", kindFanout},
		{"amq.topic", kindTopic}, {"amq.headers", kindHeaders}, {"amq.match", kindHeaders},
	} {
		x := newExchange(d.name, d.kind, true, false, false, nil)
		x.live = d.name == "amq.topic"
		s.exchanges[d.name] = x
	}
	var err error
	s.meta, err = s.b.Stream(metaStream)
	if errors.Is(err, broker.ErrStreamNotFound) {
		s.meta, err = s.b.AddStream(broker.StreamConfig{
			Name:              metaStream,
			Description:       "AMQP exchanges, durable queues and bindings, one record each",
			Subjects:          []string{metaPrefix + ">"},
			MaxMsgsPerSubject: 1,
		})
	}
	if err != nil {
		return nil, fmt.Errorf("amqp: stream %s: %w", metaStream, err)
	}
	if err := s.load(); err != nil {
		return nil, err
	}
	return s, nil
}

// Close forgets the gateway's bindings in the live router and stops its
// queues' timers. Call it once the listener has shut down.
func (s *Server) Close() {
	s.closed.Store(true)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, q := range s.queues {
		if q.timer != nil {
			q.timer.Stop()
		}
		if q.expTimer != nil {
			q.expTimer.Stop()
		}
	}
	if x := s.exchanges["amq.topic"]; x != nil {
		for _, b := range x.bindings {
			s.live.Remove(router.Subscription[broker.Receiver]{Pattern: b.pattern, Handle: b.q.receiver})
		}
	}
}

// Definitions persist in AMQP_meta as JSON records, the latest per subject.
const (
	metaStream = "AMQP_meta"
	metaPrefix = "$AMQP.meta."
)

type metaRecord struct {
	Kind       string `json:"kind"` // exchange, queue, binding
	Name       string `json:"name,omitempty"`
	Type       string `json:"type,omitempty"`
	AutoDelete bool   `json:"auto_delete,omitempty"`
	Internal   bool   `json:"internal,omitempty"`
	Args       []byte `json:"args,omitempty"`
	Exchange   string `json:"exchange,omitempty"`
	Queue      string `json:"queue,omitempty"`
	Key        string `json:"key,omitempty"`
}

func metaSubject(kind string, parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return metaPrefix + kind + "." + hex.EncodeToString(h.Sum(nil)[:16])
}

func (r *metaRecord) subject() string {
	switch r.Kind {
	case "exchange":
		return metaSubject("x", r.Name)
	case "queue":
		return metaSubject("q", r.Name)
	}
	if r.Kind == "xbinding" {
		return metaSubject("e", r.Exchange, r.Name, r.Key, string(r.Args))
	}
	return metaSubject("b", r.Exchange, r.Queue, r.Key, string(r.Args))
}

// saveMeta writes a record and waits until it is durable: it runs on
// the administrative goroutine.
func (s *Server) saveMeta(r *metaRecord) error {
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	err = s.meta.Publish(&broker.Message{Subject: []byte(r.subject()), Payload: data},
		func(_ broker.PubAck, err error) { done <- err })
	if err != nil {
		return err
	}
	return <-done
}

func (s *Server) dropMeta(r *metaRecord) {
	_, _ = s.meta.Purge(broker.PurgeRequest{Filter: r.subject()})
}

// load rebuilds the durable exchanges, queues and bindings, and removes
// the streams of transient queues left by the last run.
func (s *Server) load() error {
	var recs []metaRecord
	for subject := range s.meta.Subjects("") {
		m, err := s.meta.GetLastMsg(subject)
		if err != nil || len(m.Payload) == 0 {
			continue
		}
		var r metaRecord
		if err := json.Unmarshal(m.Payload, &r); err != nil {
			s.opts.Logger.Warn("amqp: unreadable definition; dropped", "subject", subject, "err", err)
			continue
		}
		recs = append(recs, r)
	}
	keep := map[string]bool{}
	for _, kind := range []string{"exchange", "queue", "binding", "xbinding"} {
		for i := range recs {
			r := &recs[i]
			if r.Kind != kind {
				continue
			}
			switch kind {
			case "exchange":
				s.exchanges[r.Name] = newExchange(r.Name, r.Type, true, r.AutoDelete, r.Internal, r.Args)
			case "queue":
				a, aerr := parseQueueArgs(r.Args)
				if aerr != nil {
					continue
				}
				q := &queue{srv: s, name: r.Name, durable: true, autoDelete: r.AutoDelete, args: r.Args,
					dlx: a.dlx, dlk: a.dlk, hasDLX: a.hasDLX, hasDLK: a.hasDLK}
				if err := s.openQueueStream(q, a); err != nil {
					s.opts.Logger.Warn("amqp: queue not reopened", "queue", r.Name, "err", err)
					continue
				}
				s.queues[r.Name] = q
				keep[q.stream.Name()] = true
				dropTransient(q.stream)
			case "binding":
				x, q := s.exchanges[r.Exchange], s.queues[r.Queue]
				if x == nil || q == nil {
					continue
				}
				_ = s.addBinding(&binding{ex: x, q: q, key: r.Key, args: r.Args})
			case "xbinding":
				x, d := s.exchanges[r.Exchange], s.exchanges[r.Name]
				if x == nil || d == nil {
					continue
				}
				_ = s.addExchangeBinding(&binding{ex: x, dst: d, key: r.Key, args: r.Args})
			}
		}
	}
	for _, st := range s.b.Streams() {
		if strings.HasPrefix(st.Name(), queueStreamPrefix) && !keep[st.Name()] {
			_ = s.b.DeleteStream(st.Name())
		}
	}
	return nil
}

// newName returns a server-generated queue name.
func (s *Server) newName() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "amq.gen-" + hex.EncodeToString(b[:])
}

// deleteQueue removes q with its bindings and stream, and cancels its
// consumers. It runs on the administrative goroutine.
func (s *Server) deleteQueue(q *queue) uint32 {
	s.mu.Lock()
	if s.queues[q.name] != q {
		s.mu.Unlock()
		return 0
	}
	delete(s.queues, q.name)
	var autoX []*exchange
	for len(q.bindings) > 0 {
		b := q.bindings[len(q.bindings)-1]
		s.removeBinding(b)
		if b.ex.autoDelete && len(b.ex.bindings) == 0 {
			autoX = append(autoX, b.ex)
		}
	}
	for _, x := range autoX {
		delete(s.exchanges, x.name)
	}
	s.mu.Unlock()
	for _, x := range autoX {
		if x.durable {
			s.dropMeta(&metaRecord{Kind: "exchange", Name: x.name})
		}
	}
	n := uint32(q.stream.Info().State.Msgs)
	q.mu.Lock()
	q.deleted = true
	subs := q.subs
	q.subs = map[string]*consumer{}
	local := q.local
	q.local = nil
	q.mu.Unlock()
	for _, c := range subs {
		if c.get {
			continue
		}
		c.ch.conn.serverCancel(c)
	}
	for _, l := range local {
		l.cancelled()
	}
	q.cons.Detach(q)
	if q.timer != nil {
		q.timer.Stop()
	}
	if q.expTimer != nil {
		q.expTimer.Stop()
	}
	if q.durable {
		s.dropMeta(&metaRecord{Kind: "queue", Name: q.name})
		for subj := range s.meta.Subjects(metaPrefix + "b.*") {
			m, err := s.meta.GetLastMsg(subj)
			if err != nil {
				continue
			}
			var r metaRecord
			if json.Unmarshal(m.Payload, &r) == nil && r.Queue == q.name {
				_, _ = s.meta.Purge(broker.PurgeRequest{Filter: subj})
			}
		}
	}
	_ = s.b.DeleteStream(q.stream.Name())
	return n
}

// dropTransient removes the messages of a durable queue that were not
// published persistent (delivery mode 2): like RabbitMQ's, they do not
// outlive the broker.
func dropTransient(st *broker.Stream) {
	info := st.Info()
	if info.State.Msgs == 0 {
		return
	}
	var p props
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := st.GetNextMsg(seq, "")
		if err != nil {
			return
		}
		seq = m.Seq
		persistent := false
		for _, h := range m.Headers {
			if string(h.Key) == hdrProps {
				persistent = parseProps(h.Value, &p) == nil && p.DeliveryMode == 2
			}
		}
		if !persistent {
			_ = st.DeleteMsg(m.Seq)
		}
	}
}

// QueueInfo is one queue as "rabbitmqctl list_queues" shows it.
type QueueInfo struct {
	Name string `json:"name"`
	// Ready are messages waiting for a consumer; Unacked were delivered
	// and not yet acknowledged.
	Ready     uint64 `json:"messages_ready"`
	Unacked   uint64 `json:"messages_unacknowledged"`
	Consumers int    `json:"consumers"`
	Durable   bool   `json:"durable"`
}

// Queues returns every queue, sorted by name.
func (s *Server) Queues() []QueueInfo {
	s.mu.RLock()
	qs := make([]*queue, 0, len(s.queues))
	for _, q := range s.queues {
		qs = append(qs, q)
	}
	s.mu.RUnlock()
	out := make([]QueueInfo, 0, len(qs))
	for _, q := range qs {
		info := q.cons.Info()
		q.mu.Lock()
		n := q.consumers
		q.mu.Unlock()
		out = append(out, QueueInfo{Name: q.name, Ready: info.NumPending, Unacked: uint64(info.NumAckPending), Consumers: n, Durable: q.durable})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
