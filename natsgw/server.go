package natsgw

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"log/slog"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/ledgemq/ledge/auth"
	"github.com/ledgemq/ledge/broker"
	"github.com/ledgemq/ledge/router"
)

// ProtocolVersion is the NATS server version ledge reports in INFO. Clients
// use it to decide which protocol features they may use (headers, no
// responders), so it names the NATS release whose client protocol ledge
// implements, not ledge's own version, which is in the server name.
const ProtocolVersion = "2.10.0"

// Options configures a Server. The zero value serves with the defaults.
type Options struct {
	// ServerName is reported to clients in INFO; "ledge" when empty.
	ServerName string
	// Host and Port are reported in INFO; the listener is the caller's.
	Host string
	Port int
	// MaxPayload bounds a message's headers plus payload
	// (DefaultMaxPayload when zero).
	MaxPayload int
	// MaxControlLine bounds an operation's line (DefaultMaxControlLine
	// when zero).
	MaxControlLine int
	// PingInterval is how often the server pings an otherwise quiet client
	// to find dead connections (2 minutes when zero).
	PingInterval time.Duration
	// MaxPingsOut is how many pings may go unanswered before the client is
	// disconnected as stale (2 when zero).
	MaxPingsOut int
	// AuthTimeout is how long a client has to complete CONNECT, its TLS
	// handshake and its password check included, when Auth is set (2
	// seconds when zero).
	AuthTimeout time.Duration
	// Auth lets clients in and says what each may do (package auth): the
	// CONNECT's user and password, token or TLS client certificate are
	// checked off the event loop, and every publish, subscription and
	// delivery follows the client's rules. nil lets every client do
	// everything.
	Auth auth.Authenticator
	// TLS, when set, makes clients use TLS: INFO says tls_required and
	// the handshake follows it, as nats.go expects. The listener must be
	// portable and plaintext (lnet.Options.Portable, no TLSConfig): the
	// connection is upgraded after INFO (lnet.Conn.StartTLS).
	TLS *tls.Config
	// TLSHandshakeFirst says the listener itself does TLS before INFO
	// (lnet.Options.TLSConfig), for clients that connect with
	// nats.TLSHandshakeFirst(); INFO then says tls_required too.
	TLSHandshakeFirst bool
	// TLSVerify says clients must present a certificate (reported in
	// INFO as tls_verify).
	TLSVerify bool
	// Logger receives connection events; slog.Default() when nil.
	Logger *slog.Logger
	// Broker, when set, serves JetStream: its streams capture published
	// subjects, $JS.API requests manage them, and its consumers deliver
	// through this gateway (the server becomes the broker's Outlet).
	Broker *broker.Broker
	// Live is the router of live subscribers shared with the other
	// protocols' gateways, so that messages cross protocols; nil gives the
	// gateway a router of its own.
	Live *router.Router[broker.Receiver]
}

func (o Options) withDefaults() Options {
	if o.ServerName == "" {
		o.ServerName = "ledge"
	}
	if o.MaxPayload <= 0 {
		o.MaxPayload = DefaultMaxPayload
	}
	if o.MaxControlLine <= 0 {
		o.MaxControlLine = DefaultMaxControlLine
	}
	if o.PingInterval <= 0 {
		o.PingInterval = 2 * time.Minute
	}
	if o.MaxPingsOut <= 0 {
		o.MaxPingsOut = 2
	}
	if o.AuthTimeout <= 0 {
		o.AuthTimeout = 2 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

func (o Options) authRequired() bool { return o.Auth != nil }

func (o Options) tlsRequired() bool { return o.TLS != nil || o.TLSHandshakeFirst }

// Stats are the gateway's counters, safe to read at any time.
type Stats struct {
	InMsgs, OutMsgs   atomic.Int64
	InBytes, OutBytes atomic.Int64
	// SlowConsumers counts deliveries refused because a receiver's outbound
	// queue was full (the network layer then disconnects it).
	SlowConsumers atomic.Int64
	// Stalls counts the pauses of publishers whose messages congested a
	// receiver (flow control instead of a cut-off).
	Stalls atomic.Int64
	// ProtocolErrors counts connections closed for violating the protocol.
	ProtocolErrors atomic.Int64
	// AuthFailures counts connections refused for bad credentials.
	AuthFailures atomic.Int64
	// PermissionDenials counts publishes and subscriptions refused, and
	// deliveries withheld, by the clients' rules.
	PermissionDenials atomic.Int64
}

// Server is the NATS gateway: the state shared by its client sessions. It
// is safe for concurrent use by the event loops.
type Server struct {
	opts Options
	id   string
	// router is the live router every protocol shares (Options.Live):
	// NATS subscriptions are Receivers in it beside MQTT and AMQP ones.
	router  *router.Router[broker.Receiver]
	nextCID atomic.Uint64
	stats   Stats
	// sessions are the open sessions, for monitoring (stats.go).
	sessions sessionRegistry
	// js is the JetStream API; nil without a broker.
	js *jetStream
}

// NewServer returns a NATS gateway on opts.Live, or on a router of its own
// when that is nil.
func NewServer(opts Options) *Server {
	var id [11]byte
	_, _ = rand.Read(id[:])
	s := &Server{
		opts:   opts.withDefaults(),
		id:     "LEDGE" + hex.EncodeToString(id[:]),
		router: opts.Live,
	}
	if s.router == nil {
		s.router = router.New[broker.Receiver](router.Options{})
	}
	if opts.Broker != nil {
		s.js = &jetStream{b: opts.Broker}
		opts.Broker.SetOutlet(outlet{s})
	}
	return s
}

// Stats returns the gateway's counters.
func (s *Server) Stats() *Stats { return &s.stats }

// serverInfo is the INFO line's object, in the field names nats.go reads.
type serverInfo struct {
	ServerID     string `json:"server_id"`
	ServerName   string `json:"server_name"`
	Version      string `json:"version"`
	Proto        int    `json:"proto"`
	Go           string `json:"go"`
	Host         string `json:"host"`
	Port         int    `json:"port"`
	Headers      bool   `json:"headers"`
	MaxPayload   int    `json:"max_payload"`
	AuthRequired bool   `json:"auth_required,omitempty"`
	TLSRequired  bool   `json:"tls_required,omitempty"`
	TLSVerify    bool   `json:"tls_verify,omitempty"`
	ClientID     uint64 `json:"client_id"`
	ClientIP     string `json:"client_ip,omitempty"`
	JetStream    bool   `json:"jetstream,omitempty"`
}

func (s *Server) info(cid uint64, clientIP string) serverInfo {
	return serverInfo{
		ServerID:     s.id,
		ServerName:   s.opts.ServerName,
		Version:      ProtocolVersion,
		Proto:        1,
		Go:           runtime.Version(),
		Host:         s.opts.Host,
		Port:         s.opts.Port,
		Headers:      true,
		MaxPayload:   s.opts.MaxPayload,
		AuthRequired: s.opts.authRequired(),
		TLSRequired:  s.opts.tlsRequired(),
		TLSVerify:    s.opts.TLSVerify && s.opts.tlsRequired(),
		ClientID:     cid,
		ClientIP:     clientIP,
		JetStream:    s.js != nil,
	}
}
