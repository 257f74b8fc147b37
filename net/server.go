package net

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	stdnet "net"
	"runtime"
	"sync/atomic"
	"time"
)

// Sentinel errors that callers branch on.
var (
	// ErrClosed is returned by writes to a connection that is closing or
	// closed.
	ErrClosed = errors.New("ledge/net: connection closed")
	// ErrSlowConsumer is the reason a connection is cut off when its
	// outbound queue would exceed Options.MaxOutbound.
	ErrSlowConsumer = errors.New("ledge/net: slow consumer, outbound queue limit reached")
	// ErrInputTooLarge is the reason a connection is closed when it holds
	// more unconsumed input than Options.MaxInput.
	ErrInputTooLarge = errors.New("ledge/net: unconsumed input exceeds limit")
	// ErrTooManyConns is the reason given to Options.OnRefuse for a
	// connection refused because Options.MaxConns were open.
	ErrTooManyConns = errors.New("ledge/net: too many connections")
	// ErrServerClosed is the reason given to OnClose for connections closed
	// by Server.Shutdown.
	ErrServerClosed = errors.New("ledge/net: server shut down")
	// ErrNoUpgrade is returned by Conn.StartTLS where a connection cannot
	// be upgraded: on the epoll transport, on a TLS listener, twice, or
	// from a goroutine other than the connection's reader.
	ErrNoUpgrade = errors.New("ledge/net: StartTLS needs a plaintext connection of the portable transport, from OnOpen or OnData")
)

// Defaults used for zero fields of Options. They are sized for an edge
// gateway: thousands of mostly idle device connections in a few MiB.
const (
	DefaultMaxOutbound    = 4 << 20
	DefaultMaxInput       = 1 << 20
	DefaultReadBufferSize = 64 << 10
	DefaultCloseTimeout   = 5 * time.Second
	// DefaultHandshakeTimeout is a TLS handshake's bound.
	DefaultHandshakeTimeout = 10 * time.Second
)

// Handler is a protocol: it is given a connection's bytes and reacts with
// writes, timers and closes. See the package documentation for the contract.
type Handler interface {
	// OnOpen is called once, before any OnData, when a connection is
	// accepted.
	OnOpen(c *Conn)
	// OnData is given the connection's unconsumed input, valid only during
	// the call, and returns how many leading bytes it consumed. A non-nil
	// error closes the connection after flushing what was queued.
	OnData(c *Conn, in []byte) (consumed int, err error)
	// OnClose is called exactly once when the connection is closed, with nil
	// for a clean close or the reason.
	OnClose(c *Conn, err error)
}

// Options configures a Server. The zero value is usable.
type Options struct {
	// Loops is the number of epoll event loops; 0 means GOMAXPROCS.
	Loops int
	// MaxConns refuses connections while this many are open; 0 means no
	// limit.
	MaxConns int
	// MaxOutbound is the byte limit of one connection's outbound queue,
	// counting bytes queued by WriteRef too (they pin log segments); a write
	// beyond it cuts the connection off as a slow consumer.
	MaxOutbound int
	// MaxInput is the byte limit of one connection's unconsumed input. It
	// bounds payload size and control-line length; protocols set it from
	// their own maximum frame size. A read may present up to MaxInput plus
	// one read buffer to OnData before the limit is checked.
	MaxInput int
	// ReadBufferSize is the size of each epoll loop's read buffer (one per
	// loop, not per connection). The portable transport ignores it and
	// reads into an 8 KiB buffer per connection.
	ReadBufferSize int
	// CloseTimeout bounds how long a closing connection may take to flush
	// its queue before it is dropped.
	CloseTimeout time.Duration
	// TLSConfig, when set, serves TLS; TLS listeners use the portable
	// transport. The handshake is done before OnOpen, so the handler sees
	// only connections that completed it (Conn.TLS has their state); one
	// that fails or does not finish within HandshakeTimeout is closed
	// without a callback and counted in Stats.TLSHandshakeFailures.
	TLSConfig *tls.Config
	// HandshakeTimeout bounds a TLS handshake, at accept or after
	// Conn.StartTLS (DefaultHandshakeTimeout when zero).
	HandshakeTimeout time.Duration
	// RefuseMessage, when set, is written (best effort, without blocking)
	// to a connection refused by MaxConns before it is closed, so a protocol
	// can say why, e.g. "-ERR 'maximum connections exceeded'\r\n".
	RefuseMessage []byte
	// OnRefuse, when set, is called with the peer's address and the reason
	// for every refused connection. It runs on the accepting goroutine and
	// must not block.
	OnRefuse func(remote stdnet.Addr, err error)
	// Portable forces the portable transport even where epoll is available.
	Portable bool
}

func (o Options) withDefaults() Options {
	if o.Loops <= 0 {
		o.Loops = runtime.GOMAXPROCS(0)
	}
	if o.MaxOutbound <= 0 {
		o.MaxOutbound = DefaultMaxOutbound
	}
	if o.MaxInput <= 0 {
		o.MaxInput = DefaultMaxInput
	}
	if o.ReadBufferSize <= 0 {
		o.ReadBufferSize = DefaultReadBufferSize
	}
	if o.CloseTimeout <= 0 {
		o.CloseTimeout = DefaultCloseTimeout
	}
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = DefaultHandshakeTimeout
	}
	return o
}

// Stats is a snapshot of a Server's counters.
type Stats struct {
	ConnsOpen     int64  // connections currently open
	ConnsTotal    uint64 // connections accepted since start
	ConnsRefused  uint64 // connections refused by MaxConns
	BytesIn       uint64 // bytes read from connections
	BytesOut      uint64 // bytes written to connections
	SlowConsumers uint64 // connections cut off by MaxOutbound
	InputTooLarge uint64 // connections closed by MaxInput
	HeldBuffers   int64  // pooled input buffers held for partial frames
	HandlerPanics uint64 // connections closed because their handler panicked
	// TLSHandshakeFailures counts TLS connections closed because their
	// handshake failed or did not finish in time.
	TLSHandshakeFailures uint64
}

// counters are the live values behind Stats; typed atomics keep 64-bit
// alignment right on 32-bit ARM.
type counters struct {
	open, held                                   atomic.Int64
	total, refused, in, out, slow, inputTooLarge atomic.Uint64
	panics, tlsFailures                          atomic.Uint64
	nextID                                       atomic.Uint64
}

// transport is what a Server runs on: epoll loops or the portable one.
type transport interface {
	addr() stdnet.Addr
	shutdown(ctx context.Context) error
}

// Server accepts connections on one listener and runs them through a
// Handler.
type Server struct {
	handler Handler
	opts    Options
	stats   counters
	tr      transport
	kind    string
}

// Listen listens on network ("tcp", "tcp4", "tcp6") and address (port 0
// picks a free port, see Addr) and starts serving connections with h.
func Listen(network, address string, h Handler, opts Options) (*Server, error) {
	if h == nil {
		return nil, errors.New("ledge/net: listen: nil handler")
	}
	s := &Server{handler: h, opts: opts.withDefaults()}
	var err error
	if s.opts.TLSConfig != nil || s.opts.Portable || !epollSupported(network) {
		s.kind = "portable"
		s.tr, err = listenPortable(s, network, address)
	} else {
		s.kind = "epoll"
		s.tr, err = listenEpoll(s, network, address)
	}
	if err != nil {
		return nil, fmt.Errorf("ledge/net: listen %s %s: %w", network, address, err)
	}
	return s, nil
}

// Addr reports the address the server is bound to.
func (s *Server) Addr() stdnet.Addr { return s.tr.addr() }

// Transport names the transport in use: "epoll" or "portable".
func (s *Server) Transport() string { return s.kind }

// Shutdown stops accepting, asks every connection to close after flushing
// its queue, and waits until they are closed. When ctx ends first, the
// remaining connections are dropped and ctx's error is returned.
func (s *Server) Shutdown(ctx context.Context) error { return s.tr.shutdown(ctx) }

// Close drops every connection at once without waiting for queues to drain.
func (s *Server) Close() error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Shutdown(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// Stats returns a snapshot of the server's counters. It is safe from any
// goroutine and cheap enough for a monitor to poll.
func (s *Server) Stats() Stats {
	return Stats{
		ConnsOpen:     s.stats.open.Load(),
		ConnsTotal:    s.stats.total.Load(),
		ConnsRefused:  s.stats.refused.Load(),
		BytesIn:       s.stats.in.Load(),
		BytesOut:      s.stats.out.Load(),
		SlowConsumers: s.stats.slow.Load(),
		InputTooLarge: s.stats.inputTooLarge.Load(),
		HeldBuffers:   s.stats.held.Load(),
		HandlerPanics: s.stats.panics.Load(),

		TLSHandshakeFailures: s.stats.tlsFailures.Load(),
	}
}
