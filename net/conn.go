package net

import (
	"crypto/tls"
	"errors"
	"fmt"
	stdnet "net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/bytebufferpool"
)

type connState uint8

const (
	stateOpen    connState = iota
	stateClosing           // no new reads or writes; flushing the queue
	stateClosed            // gone; OnClose has been or is being called
)

// driver is the transport side of a connection: the epoll loop that owns it
// or its portable goroutines.
type driver interface {
	// kick is called with c.mu held after data was queued or a close was
	// requested; it makes sure the transport will act on it.
	kick(c *Conn)
	// armTimer schedules t to fire after d, replacing an earlier schedule;
	// it reports whether t was already scheduled.
	armTimer(t *Timer, d time.Duration) bool
	// stopTimer unschedules t and reports whether it was scheduled.
	stopTimer(t *Timer) bool
	// post is called with c.mu held after a task was queued in c.tasks.
	post(c *Conn)
	// pauseRead and resumeRead are called from the connection's callbacks
	// after c.readPaused changed.
	pauseRead(c *Conn)
	resumeRead(c *Conn)
	// startTLS arranges for the connection to become a TLS server
	// connection after what is queued; c.mu is held.
	startTLS(c *Conn, cfg *tls.Config) error
}

// Conn is one accepted connection. Its methods are safe from any goroutine
// unless their documentation says otherwise.
type Conn struct {
	srv    *Server
	drv    driver
	id     uint64
	local  stdnet.Addr
	remote stdnet.Addr
	ctx    any

	// held keeps the unconsumed tail of the input between reads; nil while
	// the connection has no partial frame. Touched only by the goroutine
	// running the connection's callbacks.
	held *bytebufferpool.ByteBuffer

	mu       sync.Mutex
	out      outQueue
	inflight int // bytes taken from out by a portable writer, not yet written
	state    connState
	drop     bool  // close without flushing
	reason   error // first close reason

	// epoll fields, owned by the connection's loop except queued (under mu).
	fd       int
	events   uint32 // epoll interest currently registered
	queued   bool   // in the loop's pending list
	lingered bool   // close timer armed

	timers *Timer        // scheduled timers, see Timer.prev
	tasks  []func(*Conn) // queued by Do, under mu

	// congested says the outbound queue holds more than half of
	// MaxOutbound. It is updated under mu wherever the queue grows or
	// shrinks and read without it by producers on other loops.
	congested atomic.Bool

	// readPaused stops reading input until resume fires (PauseReading).
	// Owned by the connection's callbacks.
	readPaused bool
	resume     *Timer

	// tlsState is the TLS connection's state once its handshake is done;
	// set by the transport before the callbacks that may read it.
	tlsState *tls.ConnectionState

	// counted are the connection's traffic counters (connstats.go).
	counted connCounters
}

// noteQueueLocked refreshes congested after the queue changed; c.mu held.
func (c *Conn) noteQueueLocked() {
	c.congested.Store(2*(c.out.bytes+c.inflight) > c.srv.opts.MaxOutbound)
}

// Congested reports whether the connection's outbound queue is more than
// half full. A protocol that writes to a congested connection on behalf of
// a producer should slow the producer down with PauseReading, so that a
// burst is absorbed by TCP flow control instead of cutting the consumer off
// as slow. It is safe from any goroutine and takes no lock.
func (c *Conn) Congested() bool { return c.congested.Load() }

// PauseReading stops reading the connection's input for d: the bytes the
// peer sends meanwhile wait in the kernel, whose full socket buffer then
// slows the peer down through TCP flow control. When the pause ends, input
// the handler left unconsumed is presented to OnData again even if nothing
// new arrived, so a handler may decline input (consume nothing) while it
// waits. A second call while paused keeps the first deadline. It is meant
// for the connection's callbacks and takes effect before the next read.
//
// For this to keep a consumer under MaxOutbound, the handler must check
// Congested before it delivers more, and MaxOutbound must leave room above
// its half for what one read can produce (ReadBufferSize times the fan-out).
func (c *Conn) PauseReading(d time.Duration) {
	if c.readPaused || d <= 0 {
		return
	}
	c.readPaused = true
	if c.resume == nil {
		c.resume = c.AfterFunc(d, resumeReading)
	} else {
		c.resume.Reset(d)
	}
	c.drv.pauseRead(c)
}

// ResumeReading ends a pause of PauseReading before its time: reading
// starts again and input the handler left unconsumed is presented to
// OnData at once. It is how work finished off the loop (a password check)
// lets the connection go on: the handler pauses for as long as the work
// may take, and the function given to Do resumes. It is meant for the
// connection's callbacks other than OnData, which would be re-entered.
func (c *Conn) ResumeReading() {
	if !c.readPaused {
		return
	}
	if c.resume != nil {
		c.resume.Stop()
	}
	resumeReading(c)
}

// StartTLS makes a plaintext connection a TLS one, server side: what was
// written before the call is sent in plaintext, then the TLS handshake
// runs (within Options.HandshakeTimeout) and every later byte, both ways,
// is encrypted. It is how NATS serves TLS: INFO in plaintext, then the
// handshake the client starts on reading it. OnData is not called again
// until the handshake is done, and Conn.TLS then has its state; a failed
// handshake closes the connection with the reason. It must be called from
// OnOpen or OnData, and only on the portable transport (a listener with
// Options.Portable and no TLSConfig); elsewhere it returns ErrNoUpgrade.
func (c *Conn) StartTLS(cfg *tls.Config) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.drv.startTLS(c, cfg)
}

// TLS returns the state of a TLS connection once its handshake is done,
// with the client's verified certificate chains, and nil for a plaintext
// connection (or one whose StartTLS has not completed). On a TLS listener
// the handshake is done before OnOpen. It is meant for the callbacks.
func (c *Conn) TLS() *tls.ConnectionState { return c.tlsState }

// resumeReading ends a pause. Input that arrived before the pause and was
// left unconsumed is handed to the handler again now, since the peer may
// have nothing more to send that would bring it back.
func resumeReading(c *Conn) {
	c.readPaused = false
	if c.held != nil && len(c.held.B) > 0 && !c.closing() {
		if err := c.deliver(nil); err != nil {
			c.Close(err)
		}
	}
	c.drv.resumeRead(c)
}

// HandlerPanicError is the close reason of a connection whose handler
// panicked while handling its input: the connection is closed, the process
// and every other connection go on.
type HandlerPanicError struct {
	Value any
	Stack []byte
}

func (e *HandlerPanicError) Error() string {
	return fmt.Sprintf("ledge/net: handler panic: %v\n%s", e.Value, e.Stack)
}

// ErrHandlerPanic matches every *HandlerPanicError with errors.Is.
var ErrHandlerPanic = errors.New("ledge/net: handler panic")

// Is lets errors.Is(err, ErrHandlerPanic) match.
func (e *HandlerPanicError) Is(target error) bool { return target == ErrHandlerPanic }

// ID returns a number unique among the server's connections, for logs and
// monitoring.
func (c *Conn) ID() uint64 { return c.id }

// LocalAddr returns the local address of the connection.
func (c *Conn) LocalAddr() stdnet.Addr { return c.local }

// RemoteAddr returns the peer's address.
func (c *Conn) RemoteAddr() stdnet.Addr { return c.remote }

// SetContext stores protocol state for the connection, typically the
// session. It is meant for the connection's callbacks.
func (c *Conn) SetContext(v any) { c.ctx = v }

// Context returns what SetContext stored.
func (c *Conn) Context() any { return c.ctx }

// Server returns the server that accepted the connection.
func (c *Conn) Server() *Server { return c.srv }

// Outbound returns the number of bytes queued and not yet written.
func (c *Conn) Outbound() int {
	c.mu.Lock()
	n := c.out.bytes + c.inflight
	c.mu.Unlock()
	return n
}

// Write queues a copy of p. It never blocks on the network: the bytes are
// written by the connection's transport, after the current callback when
// called from one. It returns ErrClosed once the connection is closing, and
// ErrSlowConsumer when p would take the outbound queue past
// Options.MaxOutbound, in which case the connection is cut off.
func (c *Conn) Write(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	c.mu.Lock()
	if err := c.admitLocked(len(p)); err != nil {
		c.mu.Unlock()
		return err
	}
	c.out.appendCopy(p)
	c.noteQueueLocked()
	c.drv.kick(c)
	c.mu.Unlock()
	return nil
}

// WriteRef queues p by reference, without copying it, for large payloads
// such as slices of a memory-mapped log segment. The caller must not modify
// p until release is called. release (which may be nil) is called exactly
// once, from any goroutine: when the kernel has taken all of p, when the
// connection is dropped with p unsent, or before WriteRef returns an error.
func (c *Conn) WriteRef(p []byte, release func()) error {
	c.mu.Lock()
	err := c.admitLocked(len(p))
	if err == nil && len(p) > 0 {
		c.out.appendRef(p, release)
		c.noteQueueLocked()
		c.drv.kick(c)
		c.mu.Unlock()
		return nil
	}
	c.mu.Unlock()
	if release != nil {
		release()
	}
	return err
}

// Do runs fn serialized with the connection's callbacks (on its event loop
// with epoll), so that work finished on another goroutine, such as an fsync
// or a password check, can update the session without locks of its own. It
// is safe from any goroutine; functions queued by one goroutine run in
// order. fn does not run if the connection is closing by then, and Do
// returns ErrClosed when it already is.
func (c *Conn) Do(fn func(c *Conn)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != stateOpen {
		return ErrClosed
	}
	c.tasks = append(c.tasks, fn)
	c.drv.post(c)
	return nil
}

// admitLocked checks that n more bytes may be queued, cutting the
// connection off as a slow consumer when they may not.
func (c *Conn) admitLocked(n int) error {
	if c.state != stateOpen {
		return ErrClosed
	}
	if c.out.bytes+c.inflight+n > c.srv.opts.MaxOutbound {
		c.srv.stats.slow.Add(1)
		c.closeLocked(ErrSlowConsumer, true)
		return ErrSlowConsumer
	}
	return nil
}

// Close closes the connection after flushing what is queued, waiting at most
// Options.CloseTimeout for the peer to take it. reason is passed to OnClose;
// nil means a normal close. Later calls are ignored.
func (c *Conn) Close(reason error) {
	c.mu.Lock()
	c.closeLocked(reason, false)
	c.mu.Unlock()
}

// closeLocked records the first close request; drop discards the queue
// instead of flushing it and may upgrade an earlier graceful request.
func (c *Conn) closeLocked(reason error, drop bool) {
	switch c.state {
	case stateOpen:
		c.state = stateClosing
		c.reason = reason
	case stateClosing:
		if !drop || c.drop {
			return
		}
		if c.reason == nil {
			c.reason = reason
		}
	default:
		return
	}
	c.drop = c.drop || drop
	c.drv.kick(c)
}

// closing reports whether a close was requested; callers on the callback
// goroutine use it to stop feeding input.
func (c *Conn) closing() bool {
	c.mu.Lock()
	s := c.state
	c.mu.Unlock()
	return s != stateOpen
}

// deliver feeds freshly read bytes to the handler through the held-buffer
// reassembly: unconsumed input is kept and presented again in front of the
// next read. It runs on the connection's callback goroutine. A non-nil error
// means the connection must close with it as reason.
//
// A panic in the handler is recovered here and becomes the connection's
// close reason (*HandlerPanicError): input that trips a bug in a protocol
// costs that one connection, never the broker.
func (c *Conn) deliver(fresh []byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			c.releaseHeld()
			c.srv.stats.panics.Add(1)
			err = &HandlerPanicError{Value: r, Stack: debug.Stack()}
		}
	}()
	return c.deliverInput(fresh)
}

// deliverInput is deliver without the panic guard.
func (c *Conn) deliverInput(fresh []byte) error {
	data := fresh
	if c.held != nil {
		c.held.B = append(c.held.B, fresh...)
		data = c.held.B
	}
	h := c.srv.handler
	total := len(data)
	for {
		n, err := h.OnData(c, data)
		if n < 0 || n > len(data) {
			c.releaseHeld()
			return fmt.Errorf("ledge/net: handler consumed %d of %d bytes", n, len(data))
		}
		data = data[n:]
		if err != nil {
			c.releaseHeld()
			return err
		}
		if n == 0 || len(data) == 0 || c.closing() {
			break
		}
	}
	switch {
	case len(data) == 0:
		c.releaseHeld()
	case len(data) > c.srv.opts.MaxInput:
		c.releaseHeld()
		c.srv.stats.inputTooLarge.Add(1)
		return ErrInputTooLarge
	case c.held == nil:
		c.held = bytebufferpool.Get()
		c.held.B = append(c.held.B[:0], data...)
		c.srv.stats.held.Add(1)
	case len(data) < total:
		// data aliases the tail of held.B; copy handles the overlap.
		c.held.B = c.held.B[:copy(c.held.B, data)]
	}
	return nil
}

// releaseHeld returns the held input buffer to the pool.
func (c *Conn) releaseHeld() {
	if c.held != nil {
		bytebufferpool.Put(c.held)
		c.held = nil
		c.srv.stats.held.Add(-1)
	}
}

// String identifies the connection in logs.
func (c *Conn) String() string {
	return fmt.Sprintf("conn %d %v", c.id, c.remote)
}
