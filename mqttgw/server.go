package mqttgw

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ledgemq/ledge/auth"
	"github.com/ledgemq/ledge/broker"
	"github.com/ledgemq/ledge/router"
)

// Options configure a Server. The zero value serves with the defaults.
type Options struct {
	// MaxPacketSize bounds a packet from a client, fixed header included
	// (1 MiB when zero). A larger one is refused from its header alone.
	MaxPacketSize int
	// ReceiveMaximum is how many QoS 1 and 2 publishes a client may have
	// unacknowledged towards the server (100 when zero).
	ReceiveMaximum uint16
	// TopicAliasMaximum is how many topic aliases a 5.0 client may set
	// (64 when zero).
	TopicAliasMaximum uint16
	// MaxKeepAlive caps the keep alive a client asks for; 5.0 clients are
	// told the server's (0: no cap).
	MaxKeepAlive time.Duration
	// ConnectTimeout is how long a new connection has to complete its
	// CONNECT (10 s when zero).
	ConnectTimeout time.Duration
	// MaxSessionExpiry caps how long a disconnected session is kept
	// (1 day when zero).
	MaxSessionExpiry time.Duration
	// MaxQueued bounds the QoS 1 and 2 messages waiting for a connected
	// client's in-flight window; more are dropped and counted (1000 when
	// zero).
	MaxQueued int
	// MaxSessionBacklog bounds the messages a persistent session may have
	// waiting in the log; beyond it the oldest are dropped, counted and
	// logged (100,000 when zero).
	MaxSessionBacklog int
	// SysInterval is how often the $SYS/broker topics are published
	// (10 s when zero; negative: never).
	SysInterval time.Duration
	// Auth lets clients in and says what each may do (package auth): the
	// CONNECT's user name and password (or a TLS client certificate) are
	// checked off the event loop, and publishes, subscriptions, wills and
	// deliveries follow the client's rules, %c in them being the client
	// id. nil lets every client do everything.
	Auth   auth.Authenticator
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.MaxPacketSize <= 0 {
		o.MaxPacketSize = 1 << 20
	}
	if o.ReceiveMaximum == 0 {
		o.ReceiveMaximum = 100
	}
	if o.TopicAliasMaximum == 0 {
		o.TopicAliasMaximum = 64
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 10 * time.Second
	}
	if o.MaxSessionExpiry <= 0 {
		o.MaxSessionExpiry = 24 * time.Hour
	}
	if o.MaxQueued <= 0 {
		o.MaxQueued = 1000
	}
	if o.MaxSessionBacklog <= 0 {
		o.MaxSessionBacklog = 100_000
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Stats are the gateway's counters, safe to read at any time.
type Stats struct {
	Connections       atomic.Int64 // open now, CONNECT accepted
	InMsgs, OutMsgs   atomic.Int64
	InBytes, OutBytes atomic.Int64
	// Dropped counts QoS 1 and 2 messages dropped because a client's
	// queue was full, and messages larger than a client accepts.
	Dropped        atomic.Int64
	ProtocolErrors atomic.Int64
	AuthFailures   atomic.Int64
	Takeovers      atomic.Int64
	// Denied counts publishes refused (a 3.1.1 QoS 1 or 2 one is
	// acknowledged and dropped, the spec leaving no other answer),
	// subscriptions refused and deliveries withheld by the rules.
	Denied atomic.Int64
}

// Server is the MQTT gateway: the state its sessions share. It is safe for
// concurrent use by the event loops.
type Server struct {
	opts   Options
	live   *router.Router[broker.Receiver]
	broker *broker.Broker
	ret    *retained
	// persist keeps persistent sessions in the log; nil without a broker.
	persist *persistence
	stats   Stats
	start   time.Time

	mu sync.Mutex
	// clients are the connected sessions by client id, for takeover.
	clients map[string]*Session
	// parked are the subscriptions of disconnected sessions that asked to
	// be kept, by client id.
	parked map[string]*parkedSession
	// wills waiting out their delay, by client id.
	wills map[string]*time.Timer

	nextID atomic.Uint64
	idBase string

	quit      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// parkedSession is what a disconnected persistent session keeps.
type parkedSession struct {
	subs    map[string]*subscription
	expires time.Time
	timer   *time.Timer
	// record is the saved state of a session loaded after a restart.
	record *sessionRecord
}

// NewServer returns an MQTT gateway; Close stops it that publishes into and subscribes on
// live, the router shared with the other protocols, and keeps retained
// messages in b. b may be nil, which keeps retained messages in memory
// only (for tests and for a broker without a data folder).
func NewServer(opts Options, live *router.Router[broker.Receiver], b *broker.Broker) (*Server, error) {
	var id [6]byte
	_, _ = rand.Read(id[:])
	s := &Server{
		opts:    opts.withDefaults(),
		live:    live,
		broker:  b,
		start:   time.Now(),
		clients: make(map[string]*Session),
		parked:  make(map[string]*parkedSession),
		wills:   make(map[string]*time.Timer),
		idBase:  "ledge-" + hex.EncodeToString(id[:]) + "-",
		quit:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	ret, err := openRetained(b)
	if err != nil {
		return nil, err
	}
	s.ret = ret
	if b != nil {
		if s.persist, err = openPersistence(b); err != nil {
			return nil, err
		}
		if err := s.loadSessions(); err != nil {
			return nil, err
		}
	}
	go s.run()
	return s, nil
}

// Stats returns the gateway's counters.
func (s *Server) Stats() *Stats { return &s.stats }
