//go:build linux

package net

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	stdnet "net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	// maxIovecs is Linux's IOV_MAX: the most buffers one writev takes.
	maxIovecs = 1024
	// maxEvents is how many ready fds one poll of the epoll set returns.
	maxEvents = 256
	// acceptBatch bounds accepts per wakeup so a connection storm cannot
	// starve loop 0's own connections.
	acceptBatch = 128
	// acceptPause is how long accepting stops when the process is out of
	// file descriptors, instead of spinning on a listener that stays ready.
	acceptPause = 100 * time.Millisecond
)

func epollSupported(network string) bool {
	switch network {
	case "tcp", "tcp4", "tcp6":
		return true
	}
	return false
}

// epollTransport runs a Server on epoll loops. Loop 0 owns the listening
// socket and deals accepted connections round-robin to all loops, which keeps
// the loops balanced (EPOLLEXCLUSIVE tends to favour one waiter).
type epollTransport struct {
	srv   *Server
	loops []*loop
	laddr stdnet.Addr
	next  int // round-robin cursor, used by loop 0 only
	done  chan struct{}
}

// loop is one event loop: an epoll instance, the connections it owns, one
// read buffer shared by all of them, and a timer heap.
type loop struct {
	t    *epollTransport
	srv  *Server
	epfd int
	// epf wraps epfd so that the loop waits in the Go netpoller (an epoll
	// fd is readable while it has ready events) instead of in a blocking
	// epoll_wait system call, which would hold one of the few Ps.
	epf *os.File
	rc  syscall.RawConn
	efd int
	lfd int // listening socket on loop 0, -1 elsewhere and after shutdown

	// Loop-goroutine state.
	conns    map[int]*Conn
	buf      []byte
	events   []unix.EpollEvent
	ev       unix.EpollEvent
	iov      []unix.Iovec
	rel      []func()
	work     []*Conn
	tasks    []func(*Conn)
	newWork  []*Conn
	fired    []*Timer
	epoch    time.Time
	readAt   int64 // wall clock of this iteration's reads, for Conn.Stats
	wakeOne  [8]byte
	wakeBuf  [8]byte
	shutting bool
	forced   bool
	dlSet    bool // a read deadline is set on epf
	pollFn   func(uintptr) bool
	polled   int
	pollErr  error
	dlWhen   int64 // the timer deadline it was set for

	// notified is true while the loop is awake or a wakeup is pending; see
	// wake.
	notified atomic.Bool

	mu          sync.Mutex // guards the hand-off state below
	pending     []*Conn    // connections with queued output or a close request
	incoming    []*Conn    // accepted connections dealt to this loop
	shutdownReq bool
	forceReq    bool
	exited      bool

	tmu    sync.Mutex // guards timers, which other goroutines may arm
	timers timerHeap
}

func listenEpoll(s *Server, network, address string) (transport, error) {
	// The standard library resolves the address and sets up the socket
	// (SO_REUSEADDR, dual stack); the loop then owns a duplicate of its fd.
	ln, err := stdnet.Listen(network, address)
	if err != nil {
		return nil, err
	}
	laddr := ln.Addr()
	rc, err := ln.(*stdnet.TCPListener).SyscallConn()
	if err != nil {
		ln.Close()
		return nil, err
	}
	lfd := -1
	var dupErr error
	if err := rc.Control(func(fd uintptr) {
		lfd, dupErr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		dupErr = err
	}
	ln.Close()
	if dupErr != nil {
		return nil, fmt.Errorf("dup listener: %w", dupErr)
	}
	if err := unix.SetNonblock(lfd, true); err != nil {
		unix.Close(lfd)
		return nil, fmt.Errorf("listener nonblock: %w", err)
	}

	t := &epollTransport{srv: s, laddr: laddr, done: make(chan struct{})}
	for i := 0; i < s.opts.Loops; i++ {
		l, err := newLoop(t)
		if err != nil {
			for _, l := range t.loops {
				l.closeFDs()
			}
			unix.Close(lfd)
			return nil, err
		}
		t.loops = append(t.loops, l)
	}
	l0 := t.loops[0]
	l0.lfd = lfd
	if err := l0.ctl(unix.EPOLL_CTL_ADD, lfd, unix.EPOLLIN); err != nil {
		for _, l := range t.loops {
			l.closeFDs()
		}
		unix.Close(lfd)
		return nil, fmt.Errorf("register listener: %w", err)
	}
	var wg sync.WaitGroup
	for _, l := range t.loops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.run()
		}()
	}
	go func() {
		wg.Wait()
		close(t.done)
	}()
	return t, nil
}

func newLoop(t *epollTransport) (*loop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	// Non-blocking, so that os.NewFile registers it with the netpoller.
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("epoll nonblock: %w", err)
	}
	epf := os.NewFile(uintptr(epfd), "epoll")
	rc, err := epf.SyscallConn()
	if err != nil {
		epf.Close()
		return nil, fmt.Errorf("epoll rawconn: %w", err)
	}
	efd, err := newEventFD()
	if err != nil {
		epf.Close()
		return nil, err
	}
	l := &loop{
		t:       t,
		srv:     t.srv,
		epfd:    epfd,
		epf:     epf,
		rc:      rc,
		efd:     efd,
		lfd:     -1,
		conns:   make(map[int]*Conn),
		buf:     make([]byte, t.srv.opts.ReadBufferSize),
		events:  make([]unix.EpollEvent, maxEvents),
		iov:     make([]unix.Iovec, 0, 64),
		epoch:   time.Now(),
		wakeOne: wakeOne(),
	}
	l.pollFn = l.pollReady
	l.notified.Store(true) // awake until the first wait
	if err := l.ctl(unix.EPOLL_CTL_ADD, efd, unix.EPOLLIN); err != nil {
		l.closeFDs()
		return nil, fmt.Errorf("register eventfd: %w", err)
	}
	return l, nil
}

func (t *epollTransport) addr() stdnet.Addr { return t.laddr }

func (t *epollTransport) shutdown(ctx context.Context) error {
	for _, l := range t.loops {
		l.request(false)
	}
	select {
	case <-t.done:
		return nil
	case <-ctx.Done():
	}
	for _, l := range t.loops {
		l.request(true)
	}
	<-t.done
	return ctx.Err()
}

// request asks the loop to shut down: gracefully, or at once when force.
func (l *loop) request(force bool) {
	l.mu.Lock()
	l.shutdownReq = true
	l.forceReq = l.forceReq || force
	l.mu.Unlock()
	l.wake()
}

func (l *loop) ctl(op, fd int, events uint32) error {
	l.ev = unix.EpollEvent{Events: events, Fd: int32(fd)}
	return unix.EpollCtl(l.epfd, op, fd, &l.ev)
}

func (l *loop) closeFDs() {
	l.epf.Close()
	unix.Close(l.efd)
}

func (l *loop) now() int64 { return int64(time.Since(l.epoch)) }

// run is the loop: wait for readiness, timers or a wakeup; handle ready
// fds; run due timers; then act on hand-offs, which includes flushing every
// connection written to during this iteration with one writev each.
func (l *loop) run() {
	for {
		// Clear notified before looking for work: a hand-off that lands
		// after the look sees false and writes the eventfd.
		l.notified.Store(false)
		n, err := l.wait(!l.hasWork())
		l.notified.Store(true)
		if err != nil && !errors.Is(err, unix.EINTR) {
			l.fail(fmt.Errorf("epoll wait: %w", err))
			return
		}
		if n > 0 {
			// One clock reading per wakeup dates every read it does.
			l.readAt = time.Now().UnixNano()
		}
		for i := 0; i < n; i++ {
			l.handle(&l.events[i])
		}
		l.runTimers()
		l.runWork()
		if l.shutting && len(l.conns) == 0 && l.exit() {
			return
		}
	}
}

// wait returns ready events; with block, it waits for one, for a wakeup or
// for the earliest timer. It parks in the netpoller rather than blocking in
// epoll_wait: a goroutine in a blocking system call keeps its P until sysmon
// takes it away, which on a two-core box starves every other goroutine, and
// getting a P back on wakeup costs more than a small request.
func (l *loop) wait(block bool) (int, error) {
	n, errno := l.poll()
	if n > 0 || !block {
		return n, errno
	}
	when, ok := l.nextTimer()
	switch {
	case ok && when <= l.now():
		return 0, nil
	case !ok && l.dlSet:
		l.dlSet = false
		if err := l.epf.SetReadDeadline(time.Time{}); err != nil {
			return 0, err
		}
	case ok && (!l.dlSet || l.dlWhen != when):
		l.dlSet, l.dlWhen = true, when
		if err := l.epf.SetReadDeadline(l.epoch.Add(time.Duration(when))); err != nil {
			return 0, err
		}
	}
	err := l.rc.Read(l.pollFn)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return l.polled, l.pollErr
}

// pollReady is the netpoller callback: it reports false, "would block",
// until events are ready. Results go to loop fields because a closure over
// locals would allocate on every wait.
func (l *loop) pollReady(uintptr) bool {
	l.polled, l.pollErr = l.poll()
	return l.polled > 0 || l.pollErr != nil
}

// poll collects ready events without blocking. epoll_pwait with a nil
// signal mask is epoll_wait, and exists on every Linux architecture.
func (l *loop) poll() (int, error) {
	r, _, errno := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(l.epfd),
		uintptr(unsafe.Pointer(&l.events[0])), uintptr(len(l.events)), 0, 0, 0)
	switch errno {
	case 0:
		return int(r), nil
	case unix.EINTR:
		return 0, nil
	}
	return 0, errno
}

// exit closes the loop once nothing more can arrive.
func (l *loop) exit() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.incoming) > 0 {
		return false
	}
	l.exited = true
	l.closeFDs()
	return true
}

// fail drops every connection after an unrecoverable epoll error.
func (l *loop) fail(err error) {
	for _, c := range l.conns {
		c.mu.Lock()
		c.closeLocked(err, true)
		c.mu.Unlock()
		l.finalize(c)
	}
	if l.lfd >= 0 {
		unix.Close(l.lfd)
		l.lfd = -1
	}
	l.mu.Lock()
	l.exited = true
	incoming := l.incoming
	l.incoming = nil
	l.closeFDs()
	l.mu.Unlock()
	for _, c := range incoming {
		unix.Close(c.fd)
		l.srv.stats.open.Add(-1)
	}
}

func (l *loop) hasWork() bool {
	l.mu.Lock()
	w := len(l.pending) > 0 || len(l.incoming) > 0 ||
		(l.shutdownReq && !l.shutting) || (l.forceReq && !l.forced)
	l.mu.Unlock()
	return w
}

func (l *loop) handle(ev *unix.EpollEvent) {
	fd := int(ev.Fd)
	switch fd {
	case l.efd:
		l.drainWake()
		return
	case l.lfd:
		l.accept()
		return
	}
	c := l.conns[fd]
	if c == nil {
		return
	}
	e := ev.Events
	if e&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		if c.events&unix.EPOLLIN != 0 {
			l.read(c)
		} else if e&(unix.EPOLLHUP|unix.EPOLLERR) != 0 {
			// Closing and the peer is gone: nothing more can be flushed.
			l.finalize(c)
			return
		}
	}
	if e&unix.EPOLLOUT != 0 {
		l.process(c, true)
	}
}

// read does one read per readiness event, which keeps loops fair between
// busy and quiet connections; level triggering brings the rest back.
func (l *loop) read(c *Conn) {
	n, err := unix.Read(c.fd, l.buf)
	switch {
	case n > 0:
		l.srv.stats.in.Add(uint64(n))
		c.counted.read(n, l.readAt)
		if c.closing() {
			return
		}
		if err := c.deliver(l.buf[:n]); err != nil {
			c.Close(err)
		}
	case err == nil:
		// EOF: the peer will send no more, but may still read what is
		// queued for it.
		c.Close(nil)
	case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EINTR):
	default:
		c.mu.Lock()
		c.closeLocked(fmt.Errorf("read: %w", err), true)
		c.mu.Unlock()
	}
}

func (l *loop) accept() {
	srv := l.srv
	for i := 0; i < acceptBatch; i++ {
		nfd, sa, err := unix.Accept4(l.lfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		if err != nil {
			switch {
			case errors.Is(err, unix.EAGAIN):
			case errors.Is(err, unix.EINTR), errors.Is(err, unix.ECONNABORTED):
				continue
			default:
				// Out of fds or memory: stop listening for a while rather
				// than spin on a listener that stays readable.
				l.pauseAccept()
			}
			return
		}
		if max := srv.opts.MaxConns; max > 0 && srv.stats.open.Load() >= int64(max) {
			srv.stats.refused.Add(1)
			if srv.opts.OnRefuse != nil {
				srv.opts.OnRefuse(sockaddrToTCP(sa), ErrTooManyConns)
			}
			if msg := srv.opts.RefuseMessage; len(msg) > 0 {
				_, _ = unix.Write(nfd, msg)
			}
			unix.Close(nfd)
			continue
		}
		// Writes are batched per loop iteration already; Nagle would only
		// add latency to the batch.
		_ = unix.SetsockoptInt(nfd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		srv.stats.open.Add(1)
		srv.stats.total.Add(1)
		c := &Conn{srv: srv, fd: nfd, id: srv.stats.nextID.Add(1), remote: sockaddrToTCP(sa)}
		c.counted.opened = time.Now().UnixNano()
		if lsa, err := unix.Getsockname(nfd); err == nil {
			c.local = sockaddrToTCP(lsa)
		}
		target := l.t.loops[l.t.next%len(l.t.loops)]
		l.t.next++
		c.drv = target
		target.handoff(c)
	}
}

func (l *loop) pauseAccept() {
	_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, l.lfd, nil)
	t := &Timer{index: -1, internal: true, fn: func(*Conn) {
		if l.lfd >= 0 {
			_ = l.ctl(unix.EPOLL_CTL_ADD, l.lfd, unix.EPOLLIN)
		}
	}}
	l.armTimer(t, acceptPause)
}

// handoff gives an accepted connection to this loop.
func (l *loop) handoff(c *Conn) {
	l.mu.Lock()
	if l.shutdownReq || l.exited {
		l.mu.Unlock()
		unix.Close(c.fd)
		l.srv.stats.open.Add(-1)
		return
	}
	l.incoming = append(l.incoming, c)
	l.mu.Unlock()
	l.wake()
}

// startTLS implements driver: TLS needs the portable transport.
func (l *loop) startTLS(*Conn, *tls.Config) error { return ErrNoUpgrade }

// post implements driver: tasks run when the loop processes c.
func (l *loop) post(c *Conn) { l.kick(c) }

// pauseRead implements driver: the next pass over c drops EPOLLIN from its
// interest, so a level-triggered loop stops reading it.
func (l *loop) pauseRead(c *Conn) {
	c.mu.Lock()
	l.kick(c)
	c.mu.Unlock()
}

// resumeRead implements driver: the next pass restores EPOLLIN, and input
// that waited in the kernel makes the socket readable at once.
func (l *loop) resumeRead(c *Conn) { l.pauseRead(c) }

// kick implements driver: queue c for the loop's next pass.
func (l *loop) kick(c *Conn) {
	if c.queued {
		return
	}
	c.queued = true
	l.mu.Lock()
	l.pending = append(l.pending, c)
	l.mu.Unlock()
	l.wake()
}

func (l *loop) runWork() {
	l.mu.Lock()
	l.work, l.pending = l.pending, l.work[:0]
	l.newWork, l.incoming = l.incoming, l.newWork[:0]
	shut, force := l.shutdownReq, l.forceReq
	l.mu.Unlock()

	for i, c := range l.newWork {
		l.newWork[i] = nil
		l.open(c)
	}
	if shut && !l.shutting {
		l.beginShutdown()
	}
	if force && !l.forced {
		l.forced = true
		for _, c := range l.conns {
			c.mu.Lock()
			c.closeLocked(ErrServerClosed, true)
			c.mu.Unlock()
			l.finalize(c)
		}
	}
	for i, c := range l.work {
		l.work[i] = nil
		l.process(c, false)
	}
}

func (l *loop) open(c *Conn) {
	c.events = unix.EPOLLIN | unix.EPOLLRDHUP
	if err := l.ctl(unix.EPOLL_CTL_ADD, c.fd, c.events); err != nil {
		unix.Close(c.fd)
		l.srv.stats.open.Add(-1)
		return
	}
	l.conns[c.fd] = c
	l.srv.handler.OnOpen(c)
}

func (l *loop) beginShutdown() {
	l.shutting = true
	if l.lfd >= 0 {
		_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, l.lfd, nil)
		unix.Close(l.lfd)
		l.lfd = -1
	}
	for _, c := range l.conns {
		c.Close(ErrServerClosed)
	}
}

// process acts on a connection's queued output and close request. writable
// says EPOLLOUT fired; otherwise a connection already waiting for EPOLLOUT is
// not written to, as the kernel has said its buffer is full.
func (l *loop) process(c *Conn, writable bool) {
	c.mu.Lock()
	c.queued = false
	if c.state == stateClosed {
		c.mu.Unlock()
		return
	}
	if len(c.tasks) > 0 && c.state == stateOpen && !c.drop {
		// Run tasks before the flush so that what they write goes out in
		// this pass.
		l.tasks, c.tasks = c.tasks, l.tasks[:0]
		c.mu.Unlock()
		for i, fn := range l.tasks {
			l.tasks[i] = nil
			if !c.closing() {
				fn(c)
			}
		}
		l.tasks = l.tasks[:0]
		c.mu.Lock()
		if c.state == stateClosed {
			c.mu.Unlock()
			return
		}
	}
	if !c.drop && !c.out.empty() && (writable || c.events&unix.EPOLLOUT == 0) {
		l.flushLocked(c)
	}
	drop := c.drop
	closing := c.state == stateClosing
	drained := c.out.empty()
	c.mu.Unlock()
	l.rel = runReleases(l.rel)

	if drop || (closing && drained) {
		l.finalize(c)
		return
	}
	var want uint32
	if !closing && !c.readPaused {
		// While paused, RDHUP is left out too: level triggering would
		// report a peer's close over and over until reads resume.
		want = unix.EPOLLIN | unix.EPOLLRDHUP
	}
	if !drained {
		// Only while a partial write left bytes behind.
		want |= unix.EPOLLOUT
	}
	if want != c.events {
		c.events = want
		_ = l.ctl(unix.EPOLL_CTL_MOD, c.fd, want)
	}
	if closing && !c.lingered {
		c.lingered = true
		t := &Timer{c: c, index: -1, internal: true, fn: func(c *Conn) {
			c.mu.Lock()
			c.closeLocked(nil, true)
			c.mu.Unlock()
		}}
		l.armTimer(t, l.srv.opts.CloseTimeout)
	}
}

// flushLocked writes the queue with writev, IOV_MAX buffers at a time, until
// it is empty or the socket is full. It is called with c.mu held and drops
// it around the system call, so that a publisher on another loop is not held
// up while the kernel copies: writers only append (new pieces, or bytes past
// the end of the last pooled buffer, which no iovec covers), and only this
// loop removes pieces, so the iovecs stay valid without the lock.
func (l *loop) flushLocked(c *Conn) {
	q := &c.out
	for {
		iov := l.iov[:0]
		want := 0
		for i := q.head; i < len(q.pieces) && len(iov) < maxIovecs; i++ {
			b := q.pieces[i].b
			if i == q.head {
				b = b[q.off:]
			}
			if len(b) == 0 {
				continue
			}
			var v unix.Iovec
			v.Base = &b[0]
			v.SetLen(len(b))
			iov = append(iov, v)
			want += len(b)
		}
		l.iov = iov
		if len(iov) == 0 {
			l.rel = q.advance(0, l.rel)
			return
		}
		c.mu.Unlock()
		n, _, errno := unix.Syscall(unix.SYS_WRITEV, uintptr(c.fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
		clear(iov) // do not keep sent buffers reachable from the loop
		c.mu.Lock()
		switch errno {
		case 0:
		case unix.EAGAIN:
			return
		case unix.EINTR:
			continue
		default:
			c.closeLocked(fmt.Errorf("write: %w", errno), true)
			return
		}
		l.srv.stats.out.Add(uint64(n))
		c.counted.out.Add(uint64(n))
		l.rel = q.advance(int(n), l.rel)
		c.noteQueueLocked()
		if int(n) < want || q.empty() {
			return
		}
	}
}

// finalize closes the socket and reports the close. It runs on the loop.
func (l *loop) finalize(c *Conn) {
	c.mu.Lock()
	if c.state == stateClosed {
		c.mu.Unlock()
		return
	}
	c.state = stateClosed
	reason := c.reason
	l.rel = c.out.drop(l.rel)
	c.noteQueueLocked()
	clear(c.tasks)
	c.tasks = nil
	c.mu.Unlock()

	l.tmu.Lock()
	for t := c.timers; t != nil; {
		next := t.next
		l.timers.remove(t)
		t.prev, t.next = nil, nil
		t = next
	}
	c.timers = nil
	l.tmu.Unlock()

	delete(l.conns, c.fd)
	_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, c.fd, nil)
	unix.Close(c.fd)
	c.releaseHeld()
	l.srv.stats.open.Add(-1)
	l.rel = runReleases(l.rel)
	l.srv.handler.OnClose(c, reason)
}

// armTimer implements driver with the loop's heap.
func (l *loop) armTimer(t *Timer, d time.Duration) bool {
	when := l.now() + int64(d)
	l.tmu.Lock()
	if c := t.c; c != nil {
		// finalize marks the connection closed before it unschedules its
		// timers under tmu, so a timer armed after that is refused here.
		c.mu.Lock()
		closed := c.state == stateClosed
		c.mu.Unlock()
		if closed {
			l.tmu.Unlock()
			return false
		}
	}
	was := t.index >= 0
	t.when = when
	if was {
		l.timers.fix(t)
	} else {
		l.timers.push(t)
		if t.c != nil {
			t.c.linkTimer(t)
		}
	}
	first := t.index == 0
	l.tmu.Unlock()
	if first {
		// The loop may be parked with a later deadline.
		l.wake()
	}
	return was
}

// stopTimer implements driver.
func (l *loop) stopTimer(t *Timer) bool {
	l.tmu.Lock()
	was := t.index >= 0
	if was {
		l.timers.remove(t)
		if t.c != nil {
			t.c.unlinkTimer(t)
		}
	}
	l.tmu.Unlock()
	return was
}

// nextTimer returns the deadline of the earliest timer on the loop's clock.
func (l *loop) nextTimer() (int64, bool) {
	l.tmu.Lock()
	defer l.tmu.Unlock()
	if len(l.timers) == 0 {
		return 0, false
	}
	return l.timers[0].when, true
}

func (l *loop) runTimers() {
	now := l.now()
	l.tmu.Lock()
	for len(l.timers) > 0 && l.timers[0].when <= now {
		t := l.timers[0]
		l.timers.remove(t)
		if t.c != nil {
			t.c.unlinkTimer(t)
		}
		l.fired = append(l.fired, t)
	}
	l.tmu.Unlock()
	for i, t := range l.fired {
		l.fired[i] = nil
		if c := t.c; c != nil {
			c.mu.Lock()
			st := c.state
			c.mu.Unlock()
			if st == stateClosed || (st == stateClosing && !t.internal) {
				continue
			}
		}
		t.fn(t.c)
	}
	l.fired = l.fired[:0]
}

// sockaddrToTCP converts an accepted peer address for Conn.RemoteAddr.
func sockaddrToTCP(sa unix.Sockaddr) stdnet.Addr {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return &stdnet.TCPAddr{IP: stdnet.IP(append([]byte(nil), a.Addr[:]...)), Port: a.Port}
	case *unix.SockaddrInet6:
		addr := &stdnet.TCPAddr{IP: stdnet.IP(append([]byte(nil), a.Addr[:]...)), Port: a.Port}
		if a.ZoneId != 0 {
			if ifi, err := stdnet.InterfaceByIndex(int(a.ZoneId)); err == nil {
				addr.Zone = ifi.Name
			}
		}
		return addr
	}
	return nil
}
