package net

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	stdnet "net"
	"sync"
	"time"

	"github.com/valyala/bytebufferpool"
)

// portableReadSize is the per-connection read buffer of the portable
// transport. Each connection blocks in Read with its own buffer, so it is
// kept small; the epoll transport has one larger buffer per loop instead.
const portableReadSize = 8 << 10

// portableTransport serves connections with the standard library: an accept
// goroutine, a reader goroutine per connection, and a writer goroutine that
// exists only while the connection has bytes to send. It runs where epoll
// does not (non-Linux systems) and for TLS.
type portableTransport struct {
	srv *Server
	ln  stdnet.Listener
	wg  sync.WaitGroup // the accept goroutine and every reader

	mu      sync.Mutex
	conns   map[*Conn]*pconn
	closing bool
}

// pconn is the portable driver of one connection.
type pconn struct {
	t  *portableTransport
	c  *Conn
	nc stdnet.Conn // guarded by ncMu once StartTLS may replace it
	// ncMu guards nc, which StartTLS replaces with its TLS connection.
	ncMu   sync.Mutex
	closed chan struct{} // closed once nc is closed
	once   sync.Once
	// resumed wakes a reader waiting out PauseReading.
	resumed chan struct{}

	// cbMu serializes the connection's callbacks: reads and timers run on
	// different goroutines here.
	cbMu sync.Mutex

	// Under c.mu.
	writing   bool
	lingering bool
	tasking   bool // a goroutine is running c.tasks
	// upgrading: StartTLS was called and the handshake is not done; no
	// writer starts, and plain holds what was queued before the call,
	// sent in plaintext first.
	upgrading  bool
	upgradeCfg *tls.Config
	plain      outQueue
	// idle is signalled by a writer as it exits, for an upgrade waiting
	// for the plaintext bytes to go out.
	idle chan struct{}

	// Owned by the writer goroutine.
	batch outQueue
	bufs  [][]byte
	rel   []func()
}

func listenPortable(s *Server, network, address string) (transport, error) {
	ln, err := stdnet.Listen(network, address)
	if err != nil {
		return nil, err
	}
	if s.opts.TLSConfig != nil {
		ln = tls.NewListener(ln, s.opts.TLSConfig)
	}
	t := &portableTransport{srv: s, ln: ln, conns: make(map[*Conn]*pconn)}
	t.wg.Add(1)
	go t.acceptLoop()
	return t, nil
}

func (t *portableTransport) addr() stdnet.Addr { return t.ln.Addr() }

func (t *portableTransport) acceptLoop() {
	defer t.wg.Done()
	srv := t.srv
	var delay time.Duration
	for {
		nc, err := t.ln.Accept()
		if err != nil {
			t.mu.Lock()
			closing := t.closing
			t.mu.Unlock()
			if closing || errors.Is(err, stdnet.ErrClosed) {
				return
			}
			// Out of fds and the like: back off instead of spinning.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			time.Sleep(delay)
			continue
		}
		delay = 0
		if max := srv.opts.MaxConns; max > 0 && srv.stats.open.Load() >= int64(max) {
			srv.stats.refused.Add(1)
			t.refuse(nc)
			continue
		}
		c := &Conn{srv: srv, id: srv.stats.nextID.Add(1), local: nc.LocalAddr(), remote: nc.RemoteAddr(), fd: -1}
		c.counted.opened = time.Now().UnixNano()
		p := &pconn{t: t, c: c, nc: nc, closed: make(chan struct{}), resumed: make(chan struct{}, 1), idle: make(chan struct{}, 1)}
		c.drv = p
		t.mu.Lock()
		if t.closing {
			t.mu.Unlock()
			nc.Close()
			return
		}
		t.conns[c] = p
		t.mu.Unlock()
		srv.stats.open.Add(1)
		srv.stats.total.Add(1)
		t.wg.Add(1)
		go p.readLoop()
	}
}

// refuse closes a connection beyond MaxConns, first sending RefuseMessage on
// its own goroutine: with TLS the write needs a handshake, which must not
// hold up accepting.
func (t *portableTransport) refuse(nc stdnet.Conn) {
	opts := &t.srv.opts
	if opts.OnRefuse != nil {
		opts.OnRefuse(nc.RemoteAddr(), ErrTooManyConns)
	}
	if len(opts.RefuseMessage) == 0 {
		nc.Close()
		return
	}
	go func() {
		_ = nc.SetDeadline(time.Now().Add(time.Second))
		_, _ = nc.Write(opts.RefuseMessage)
		nc.Close()
	}()
}

func (t *portableTransport) shutdown(ctx context.Context) error {
	t.mu.Lock()
	t.closing = true
	t.mu.Unlock()
	t.ln.Close()
	for _, c := range t.snapshot() {
		c.Close(ErrServerClosed)
	}
	done := make(chan struct{})
	go func() {
		t.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	for _, c := range t.snapshot() {
		c.mu.Lock()
		c.closeLocked(ErrServerClosed, true)
		c.mu.Unlock()
	}
	<-done
	return ctx.Err()
}

func (t *portableTransport) snapshot() []*Conn {
	t.mu.Lock()
	defer t.mu.Unlock()
	cs := make([]*Conn, 0, len(t.conns))
	for c := range t.conns {
		cs = append(cs, c)
	}
	return cs
}

// conn returns the connection's socket (its TLS connection after
// StartTLS).
func (p *pconn) conn() stdnet.Conn {
	p.ncMu.Lock()
	defer p.ncMu.Unlock()
	return p.nc
}

// closeNC closes the socket once; the reader then finalizes the connection.
func (p *pconn) closeNC() {
	p.once.Do(func() {
		// Signal first, so the reader never takes the error of our own
		// close for a failure of the connection.
		close(p.closed)
		p.conn().Close()
	})
}

// kick implements driver; c.mu is held.
func (p *pconn) kick(c *Conn) {
	if c.drop {
		// Dropping: closing the socket aborts a write in progress; the
		// writer and the reader release what is queued.
		p.closeNC()
		return
	}
	if p.upgrading {
		if c.state == stateClosing {
			// Nothing can be flushed before the handshake: end it.
			p.closeNC()
		}
		return
	}
	if c.state == stateClosing && !p.lingering {
		p.lingering = true
		_ = p.conn().SetWriteDeadline(time.Now().Add(c.srv.opts.CloseTimeout))
	}
	if !p.writing {
		p.writing = true
		go p.writeLoop()
	}
}

// pauseRead implements driver: the reader checks c.readPaused before each
// read, so there is nothing to do now.
func (p *pconn) pauseRead(*Conn) {}

// resumeRead implements driver: it wakes the reader if it is waiting.
func (p *pconn) resumeRead(*Conn) {
	select {
	case p.resumed <- struct{}{}:
	default:
	}
}

// post implements driver: a goroutine runs the queued tasks in order and
// exits when there are none, so an idle connection has none.
func (p *pconn) post(c *Conn) {
	if !p.tasking {
		p.tasking = true
		go p.runTasks()
	}
}

func (p *pconn) runTasks() {
	c := p.c
	for {
		c.mu.Lock()
		if len(c.tasks) == 0 || c.state != stateOpen {
			clear(c.tasks)
			c.tasks = c.tasks[:0]
			p.tasking = false
			c.mu.Unlock()
			return
		}
		fns := c.tasks
		c.tasks = nil
		c.mu.Unlock()
		p.cbMu.Lock()
		for _, fn := range fns {
			if !c.closing() {
				fn(c)
			}
		}
		p.cbMu.Unlock()
	}
}

// startTLS implements driver: the reader upgrades the connection before
// its next read. c.mu is held.
func (p *pconn) startTLS(c *Conn, cfg *tls.Config) error {
	if p.upgrading || c.tlsState != nil || c.srv.opts.TLSConfig != nil || c.state != stateOpen {
		return ErrNoUpgrade
	}
	p.upgrading, p.upgradeCfg = true, cfg
	// What was queued before the call goes out in plaintext, before the
	// handshake; what is written after waits for it.
	p.plain, c.out = c.out, p.plain
	c.noteQueueLocked()
	return nil
}

// handshake runs the TLS handshake of a connection accepted on a TLS
// listener, before OnOpen, within HandshakeTimeout.
func (p *pconn) handshake(tc *tls.Conn) error {
	c := p.c
	_ = tc.SetDeadline(time.Now().Add(c.srv.opts.HandshakeTimeout))
	err := tc.Handshake()
	_ = tc.SetDeadline(time.Time{})
	if err != nil {
		c.srv.stats.tlsFailures.Add(1)
		return err
	}
	st := tc.ConnectionState()
	c.tlsState = &st
	return nil
}

// upgrade does what StartTLS asked for, on the reader's goroutine: it
// waits for a running writer, sends the plaintext bytes, and replaces the
// socket with a TLS server connection whose handshake it runs.
func (p *pconn) upgrade() error {
	c := p.c
	c.mu.Lock()
	for p.writing {
		c.mu.Unlock()
		select {
		case <-p.idle:
		case <-p.closed:
			return ErrClosed
		}
		c.mu.Lock()
	}
	plain := p.plain
	p.plain = outQueue{}
	cfg := p.upgradeCfg
	c.mu.Unlock()

	raw := p.conn()
	_ = raw.SetDeadline(time.Now().Add(c.srv.opts.HandshakeTimeout))
	var werr error
	for _, b := range plain.appendTo(nil, len(plain.pieces)) {
		if werr == nil {
			var n int
			n, werr = raw.Write(b)
			c.srv.stats.out.Add(uint64(n))
		}
	}
	runReleases(plain.drop(nil))
	if werr != nil {
		return fmt.Errorf("write: %w", werr)
	}
	tc := tls.Server(raw, cfg)
	p.ncMu.Lock()
	p.nc = tc
	p.ncMu.Unlock()
	select {
	case <-p.closed:
		// Closed while we swapped: close what we now hold too.
		tc.Close()
		return ErrClosed
	default:
	}
	err := tc.Handshake()
	_ = raw.SetDeadline(time.Time{})
	if err != nil {
		c.srv.stats.tlsFailures.Add(1)
		return fmt.Errorf("tls handshake: %w", err)
	}
	st := tc.ConnectionState()
	p.cbMu.Lock()
	c.tlsState = &st
	p.cbMu.Unlock()
	c.mu.Lock()
	p.upgrading = false
	if !c.out.empty() && !p.writing && c.state != stateClosed {
		p.writing = true
		go p.writeLoop()
	}
	c.mu.Unlock()
	return nil
}

// readLoop runs the connection's input side and, when it ends, finalizes
// the connection.
func (p *pconn) readLoop() {
	defer p.t.wg.Done()
	c := p.c
	h := c.srv.handler
	if tc, ok := p.nc.(*tls.Conn); ok {
		if err := p.handshake(tc); err != nil {
			// The handler never saw it: no OnOpen, so no OnClose.
			p.closeNC()
			p.finalizeUnopened()
			return
		}
	}
	p.cbMu.Lock()
	h.OnOpen(c)
	p.cbMu.Unlock()

	var buf []byte
	var rerr error
	for {
		if p.upgradeCfg != nil && c.tlsState == nil {
			if err := p.upgrade(); err != nil {
				c.mu.Lock()
				c.closeLocked(err, true)
				c.mu.Unlock()
				rerr = err
				break
			}
		}
		if buf == nil {
			// Allocated once reading starts: a connection stuck in its
			// handshake holds no read buffer.
			buf = make([]byte, portableReadSize)
		}
		p.cbMu.Lock()
		paused := c.readPaused
		p.cbMu.Unlock()
		if paused {
			select {
			case <-p.resumed:
				continue
			case <-p.closed:
				// Closed while paused: no resume will come.
				rerr = ErrClosed
			}
			break
		}
		n, err := p.conn().Read(buf)
		if n > 0 {
			c.srv.stats.in.Add(uint64(n))
			c.counted.read(n, time.Now().UnixNano())
			p.cbMu.Lock()
			if !c.closing() {
				if err := c.deliver(buf[:n]); err != nil {
					c.Close(err)
				}
			}
			p.cbMu.Unlock()
		}
		if err != nil {
			rerr = err
			break
		}
	}
	if errors.Is(rerr, io.EOF) {
		// The peer sends no more but may still read what is queued.
		c.Close(nil)
	} else if rerr != nil {
		select {
		case <-p.closed:
			// Our own close of the socket: the recorded reason stands.
		default:
			c.mu.Lock()
			c.closeLocked(fmt.Errorf("read: %w", rerr), true)
			c.mu.Unlock()
		}
	}
	<-p.closed
	p.finalize()
}

// finalizeUnopened forgets a connection whose TLS handshake failed.
func (p *pconn) finalizeUnopened() {
	c := p.c
	c.mu.Lock()
	c.state = stateClosed
	c.mu.Unlock()
	p.t.mu.Lock()
	delete(p.t.conns, c)
	p.t.mu.Unlock()
	c.srv.stats.open.Add(-1)
}

func (p *pconn) finalize() {
	c := p.c
	c.mu.Lock()
	c.state = stateClosed
	reason := c.reason
	rel := c.out.drop(nil)
	c.noteQueueLocked()
	// Unschedule the timers so their closures stop holding the connection.
	for t := c.timers; t != nil; {
		next := t.next
		t.rt.Stop()
		t.active = false
		t.prev, t.next = nil, nil
		t = next
	}
	c.timers = nil
	c.mu.Unlock()
	runReleases(rel)

	p.t.mu.Lock()
	delete(p.t.conns, c)
	p.t.mu.Unlock()
	c.srv.stats.open.Add(-1)

	p.cbMu.Lock()
	c.releaseHeld()
	c.srv.handler.OnClose(c, reason)
	p.cbMu.Unlock()
}

// writeLoop drains the queue and exits when it is empty, so an idle
// connection has no writer goroutine. It takes the whole queue at a time,
// leaving an empty one for concurrent writers.
func (p *pconn) writeLoop() {
	c := p.c
	defer func() {
		select {
		case p.idle <- struct{}{}:
		default:
		}
	}()
	for {
		c.mu.Lock()
		if c.drop || c.state == stateClosed {
			p.writing = false
			c.mu.Unlock()
			p.closeNC()
			return
		}
		if p.upgrading {
			// StartTLS: the rest goes out once the handshake is done.
			p.writing = false
			c.mu.Unlock()
			return
		}
		if c.out.empty() {
			p.writing = false
			closing := c.state == stateClosing
			c.mu.Unlock()
			if closing {
				p.closeNC()
			}
			return
		}
		c.out, p.batch = p.batch, c.out
		c.inflight = p.batch.bytes
		c.mu.Unlock()

		n, err := p.writeBatch()
		c.srv.stats.out.Add(uint64(n))
		c.counted.out.Add(uint64(n))
		p.rel = p.batch.drop(p.rel)
		p.rel = runReleases(p.rel)

		c.mu.Lock()
		c.inflight = 0
		c.noteQueueLocked()
		if err != nil {
			c.closeLocked(fmt.Errorf("write: %w", err), true)
			p.writing = false
			c.mu.Unlock()
			p.closeNC()
			return
		}
		c.mu.Unlock()
	}
}

// writeBatch writes p.batch: with writev on TCP (net.Buffers), and
// coalesced into record-sized writes on TLS, where every Write is a record.
func (p *pconn) writeBatch() (int64, error) {
	nc := p.conn()
	if tc, ok := nc.(*stdnet.TCPConn); ok {
		p.bufs = p.batch.appendTo(p.bufs[:0], len(p.batch.pieces))
		bufs := stdnet.Buffers(p.bufs)
		n, err := bufs.WriteTo(tc)
		clear(p.bufs)
		return n, err
	}
	scratch := bytebufferpool.Get()
	defer bytebufferpool.Put(scratch)
	var total int64
	flush := func() error {
		if len(scratch.B) == 0 {
			return nil
		}
		n, err := nc.Write(scratch.B)
		total += int64(n)
		scratch.B = scratch.B[:0]
		return err
	}
	q := &p.batch
	for i := q.head; i < len(q.pieces); i++ {
		b := q.pieces[i].b
		if len(b) >= chunkSize {
			if err := flush(); err != nil {
				return total, err
			}
			n, err := nc.Write(b)
			total += int64(n)
			if err != nil {
				return total, err
			}
			continue
		}
		scratch.B = append(scratch.B, b...)
		if len(scratch.B) >= chunkSize {
			if err := flush(); err != nil {
				return total, err
			}
		}
	}
	return total, flush()
}

// armTimer implements driver with a runtime timer; cbMu in fire keeps the
// function serialized with the connection's other callbacks.
func (p *pconn) armTimer(t *Timer, d time.Duration) bool {
	c := p.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == stateClosed {
		return false
	}
	was := t.active
	if !was {
		c.linkTimer(t)
	}
	t.active = true
	t.deadline = time.Now().Add(d)
	if t.rt == nil {
		t.rt = time.AfterFunc(d, func() { p.fire(t) })
	} else {
		t.rt.Reset(d)
	}
	return was
}

// stopTimer implements driver.
func (p *pconn) stopTimer(t *Timer) bool {
	c := p.c
	c.mu.Lock()
	defer c.mu.Unlock()
	was := t.active
	if was {
		c.unlinkTimer(t)
	}
	t.active = false
	if t.rt != nil {
		t.rt.Stop()
	}
	return was
}

// fire runs a due timer unless it was stopped, or reset to a later deadline
// while this firing waited for the lock.
func (p *pconn) fire(t *Timer) {
	c := p.c
	p.cbMu.Lock()
	defer p.cbMu.Unlock()
	c.mu.Lock()
	run := t.active && c.state == stateOpen && !time.Now().Before(t.deadline)
	if run {
		t.active = false
		c.unlinkTimer(t)
	}
	c.mu.Unlock()
	if run {
		t.fn(c)
	}
}
