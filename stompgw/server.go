package stompgw

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/ledgemq/ledge/amqpgw"
	"github.com/ledgemq/ledge/auth"
	lnet "github.com/ledgemq/ledge/net"
	"github.com/ledgemq/ledge/stompgw/frame"
)

// Close reasons of connections, passed to the transport.
var (
	ErrConnectTimeout   = errors.New("stomp: CONNECT not received in time")
	ErrMissedHeartBeats = errors.New("stomp: no heart-beat from the client in time")
	ErrProtocol         = errors.New("stomp: protocol error")
	errDisconnected     = errors.New("stomp: disconnected by the client")
)

// Options configure a Server. The zero value serves with the defaults.
type Options struct {
	// MaxBodySize bounds a frame's body (16 MiB when zero).
	MaxBodySize int
	// MaxHeaderSize bounds a frame's command and headers together
	// (64 KiB when zero).
	MaxHeaderSize int
	// MaxHeaders bounds a frame's header lines (256 when zero).
	MaxHeaders int
	// ConnectTimeout is how long a new connection has to send CONNECT
	// (10 s when zero).
	ConnectTimeout time.Duration
	// MinHeartBeat is the shortest heart-beat interval the server agrees
	// to in either direction (1 s when zero): a client asking for
	// shorter gets this.
	MinHeartBeat time.Duration
	// Auth lets clients in and says what each may do (package auth):
	// CONNECT's login and passcode, or a TLS client certificate, are
	// checked off the event loop, and the destinations need the
	// permissions of the AMQP exchanges and queues they are (auth.go).
	// nil lets every client do everything.
	Auth auth.Authenticator
	// Version is what the server header says after "ledge/".
	Version string
	Logger  *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.MaxBodySize <= 0 {
		o.MaxBodySize = 16 << 20
	}
	if o.MaxHeaderSize <= 0 {
		o.MaxHeaderSize = 64 << 10
	}
	if o.MaxHeaders <= 0 {
		o.MaxHeaders = 256
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 10 * time.Second
	}
	if o.MinHeartBeat <= 0 {
		o.MinHeartBeat = time.Second
	}
	if o.Version == "" {
		o.Version = "dev"
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Server is the STOMP gateway. Its queues, exchanges and bindings are the
// AMQP gateway's, so both protocols see the same ones. It is safe for
// concurrent use by the event loops.
type Server struct {
	opts   Options
	amqp   *amqpgw.Server
	limits frame.Limits
	idBase string
	nextID atomic.Uint64
	stats  Stats
	conns  connRegistry
}

// NewServer returns a STOMP gateway on the AMQP gateway's exchanges and
// queues.
func NewServer(opts Options, amqp *amqpgw.Server) (*Server, error) {
	if amqp == nil {
		return nil, errors.New("stomp: the AMQP gateway is required")
	}
	opts = opts.withDefaults()
	var id [4]byte
	_, _ = rand.Read(id[:])
	return &Server{
		opts:   opts,
		amqp:   amqp,
		limits: frame.Limits{MaxFrame: opts.MaxHeaderSize + opts.MaxBodySize, MaxHeaders: opts.MaxHeaders},
		idBase: hex.EncodeToString(id[:]),
	}, nil
}

// Handler returns the network handler that serves STOMP over TCP (or
// TLS); give it to lnet.Listen with Options.MaxInput at least MaxInput.
func (s *Server) Handler() lnet.Handler { return handler{srv: s} }

// WebSocketHandler returns the handler that serves STOMP over WebSocket
// (subprotocols v12.stomp, v11.stomp and v10.stomp), for browsers.
func (s *Server) WebSocketHandler() lnet.Handler { return handler{srv: s, ws: true} }

// MaxInput is the unconsumed input a connection needs room for: the
// largest frame and its WebSocket framing.
func (s *Server) MaxInput() int { return s.limits.MaxFrame + 16 }
