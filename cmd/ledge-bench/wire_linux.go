//go:build linux

package main

// The Linux transport of the lean clients (wire.go): a few epoll loops,
// each owning many connections. A loop reads a ready socket into its own
// buffer, has the protocol decode the frames in place and answer them
// (PUBACK, basic.ack, ...); a connection keeps a buffer of its own only
// for a partial frame. Writes
// are queued on the connection by any goroutine and made by its loop,
// woken through an eventfd, so a publisher's burst leaves in one write.
// Keep alive pings come from a once-a-second sweep of each loop's
// connections, not a timer per connection.
//
// Why epoll and not a pool of goroutines polling with short read
// deadlines: a Read on a Go net.Conn with a deadline parks the goroutine
// in the runtime's poller until data or the deadline comes, so a
// goroutine owning 2,500 connections would sweep them one deadline at a
// time, and a deadline already past fails the Read before it looks at
// the socket. epoll tells a loop which of its sockets are ready, whatever
// their number, at one system call per wakeup.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// connIO is a connection's socket as its loop sees it.
type connIO struct {
	loop    *wireLoop
	fdMu    sync.Mutex // the loop closing fd against shutdown from other goroutines
	fd      int        // -1 once closed; only the loop changes it
	partial []byte     // the start of a packet not yet complete
	wantOut bool       // EPOLLOUT is registered: the socket was full
}

// wireLoop is one epoll loop and the connections it owns.
type wireLoop struct {
	epfd, efd int
	woken     atomic.Bool

	mu    sync.Mutex
	conns map[int32]loopConn
	wakeq []*wireConn

	buf []byte
	s   scratch
}

var (
	wireLoopsOnce sync.Once
	wireLoopsErr  error
	wireLoopList  []*wireLoop
	wireLoopNext  atomic.Uint32
)

// wireLoopCount is how many loops the process runs: one per core, at most
// four; a loop handles tens of thousands of mostly idle connections, and
// more loops than cores only take CPU from the broker under test.
func wireLoopCount() int {
	return max(1, min(4, runtime.GOMAXPROCS(0)))
}

// pickLoop returns the next loop, round robin, starting them on first use.
// They live as long as the process.
func pickLoop() (*wireLoop, error) {
	wireLoopsOnce.Do(func() {
		for range wireLoopCount() {
			l, err := newWireLoop()
			if err != nil {
				wireLoopsErr = err
				return
			}
			wireLoopList = append(wireLoopList, l)
			go l.run()
		}
	})
	if wireLoopsErr != nil {
		return nil, wireLoopsErr
	}
	return wireLoopList[int(wireLoopNext.Add(1))%len(wireLoopList)], nil
}

func newWireLoop() (*wireLoop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll: %w", err)
	}
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, efd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(efd)}); err != nil {
		unix.Close(epfd)
		unix.Close(efd)
		return nil, fmt.Errorf("epoll: %w", err)
	}
	return &wireLoop{epfd: epfd, efd: efd, conns: make(map[int32]loopConn), buf: make([]byte, 64<<10)}, nil
}

// attach takes the socket of nc over (nc itself is closed) and gives it
// to a loop; initWire has been called.
func (c *wireConn) attach(nc net.Conn) error {
	defer nc.Close()
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return fmt.Errorf("not a TCP connection: %T", nc)
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return err
	}
	fd, derr := -1, error(nil)
	if err := raw.Control(func(s uintptr) { fd, derr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return err
	}
	if derr != nil {
		return fmt.Errorf("dup: %w", derr)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return err
	}
	l, err := pickLoop()
	if err != nil {
		unix.Close(fd)
		return err
	}
	c.io.loop, c.io.fd = l, fd
	l.mu.Lock()
	l.conns[int32(fd)] = c.conn
	l.mu.Unlock()
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(fd)}); err != nil {
		l.mu.Lock()
		delete(l.conns, int32(fd))
		l.mu.Unlock()
		unix.Close(fd)
		return fmt.Errorf("epoll: %w", err)
	}
	return nil
}

// wake has the loop write what is queued on c.
func (c *wireConn) wake() {
	l := c.io.loop
	l.mu.Lock()
	l.wakeq = append(l.wakeq, c)
	l.mu.Unlock()
	if !l.woken.Swap(true) {
		var one [8]byte
		binary.NativeEndian.PutUint64(one[:], 1)
		unix.Write(l.efd, one[:])
	}
}

// shutdown ends the connection; its loop then closes the socket and
// closes c.done. Safe from any goroutine, any number of times.
func (c *wireConn) shutdown() {
	c.io.fdMu.Lock()
	if c.io.fd >= 0 {
		unix.Shutdown(c.io.fd, unix.SHUT_RDWR)
	}
	c.io.fdMu.Unlock()
}

func (l *wireLoop) run() {
	events := make([]unix.EpollEvent, 256)
	var q []*wireConn
	nextTick := time.Now().Add(time.Second)
	for {
		wait := max(0, int(time.Until(nextTick)/time.Millisecond)+1)
		n, err := unix.EpollWait(l.epfd, events, wait)
		if err != nil && !errors.Is(err, unix.EINTR) {
			panic(fmt.Sprintf("ledge-bench: epoll_wait: %v", err))
		}
		for i := range n {
			ev := &events[i]
			if ev.Fd == int32(l.efd) {
				var b [8]byte
				unix.Read(l.efd, b[:])
				l.woken.Store(false)
				l.mu.Lock()
				q, l.wakeq = l.wakeq, q[:0]
				l.mu.Unlock()
				for _, c := range q {
					l.flush(c)
				}
				clear(q)
				continue
			}
			l.mu.Lock()
			lc := l.conns[ev.Fd]
			l.mu.Unlock()
			if lc == nil {
				continue
			}
			c := lc.wire()
			if ev.Events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
				l.read(c)
			}
			if ev.Events&unix.EPOLLOUT != 0 {
				l.flush(c)
			}
		}
		if now := time.Now(); !now.Before(nextTick) {
			nextTick = now.Add(time.Second)
			l.tick(now)
		}
	}
}

// tick runs every connection's keep alive check.
func (l *wireLoop) tick(now time.Time) {
	l.mu.Lock()
	all := make([]loopConn, 0, len(l.conns))
	for _, c := range l.conns {
		all = append(all, c)
	}
	l.mu.Unlock()
	for _, lc := range all {
		c := lc.wire()
		c.mu.Lock()
		c.inLoop = true
		c.mu.Unlock()
		lc.tick(now)
		l.afterInput(c)
	}
}

// afterInput writes what the input (or the tick) queued on c.
func (l *wireLoop) afterInput(c *wireConn) {
	c.mu.Lock()
	c.inLoop = false
	flush := c.needFlush
	c.needFlush = false
	c.mu.Unlock()
	if flush {
		l.flush(c)
	}
}

// read takes one buffer's worth from c's socket: the loop's epoll is
// level-triggered, so what is left is reported again on the next round,
// and one busy connection cannot starve the others.
func (l *wireLoop) read(c *wireConn) {
	fd := c.io.fd
	if fd < 0 {
		return
	}
	n, err := unix.Read(fd, l.buf)
	switch {
	case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EINTR):
		return
	case err != nil:
		l.closeConn(c, err)
		return
	case n == 0:
		l.closeConn(c, io.EOF)
		return
	}
	data := l.buf[:n]
	fromPartial := len(c.io.partial) > 0
	if fromPartial {
		c.io.partial = append(c.io.partial, data...)
		data = c.io.partial
	}
	c.mu.Lock()
	c.inLoop = true
	c.mu.Unlock()
	used, perr := c.conn.input(data, &l.s)
	l.afterInput(c)
	rest := data[used:]
	if fromPartial {
		c.io.partial = c.io.partial[:copy(c.io.partial, rest)]
	} else {
		c.io.partial = append(c.io.partial[:0], rest...)
	}
	if len(c.io.partial) == 0 && cap(c.io.partial) > wireKeepBuffer {
		c.io.partial = nil
	}
	if perr != nil {
		l.closeConn(c, perr)
	}
}

// flush writes what is queued on c; when the socket is full it asks
// epoll to say when it has room again.
func (l *wireLoop) flush(c *wireConn) {
	fd := c.io.fd
	if fd < 0 {
		return
	}
	c.mu.Lock()
	var werr error
	for len(c.out) > 0 {
		n, err := unix.Write(fd, c.out)
		if n > 0 {
			c.wrote(n)
		}
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil && !errors.Is(err, unix.EAGAIN) {
			werr = err
		}
		if err != nil {
			break
		}
	}
	full := len(c.out) > 0
	c.mu.Unlock()
	if werr != nil {
		l.closeConn(c, werr)
		return
	}
	if full != c.io.wantOut {
		ev := uint32(unix.EPOLLIN | unix.EPOLLRDHUP)
		if full {
			ev |= unix.EPOLLOUT
		}
		unix.EpollCtl(l.epfd, unix.EPOLL_CTL_MOD, fd, &unix.EpollEvent{Events: ev, Fd: int32(fd)})
		c.io.wantOut = full
	}
}

// closeConn closes c's socket for good and tells its waiters why.
func (l *wireLoop) closeConn(c *wireConn, err error) {
	fd := c.io.fd
	if fd < 0 {
		return
	}
	l.mu.Lock()
	delete(l.conns, int32(fd))
	l.mu.Unlock()
	unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, fd, nil)
	c.io.fdMu.Lock()
	unix.Close(fd)
	c.io.fd = -1
	c.io.fdMu.Unlock()
	c.io.partial = nil
	c.mu.Lock()
	c.conn.failLocked(err)
	c.mu.Unlock()
	close(c.done)
}
