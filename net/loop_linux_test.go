//go:build linux

package net

import (
	"encoding/binary"
	"testing"

	"golang.org/x/sys/unix"
)

// TestEpollHotPathDoesNotAllocate pins the steady state of the epoll path:
// the wait, a read into the loop's buffer, the handler's replies queued into pooled
// buffers and a by-reference write, and the flush with one writev, all
// without an allocation per message.
func TestEpollHotPathDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[1])
	ref := make([]byte, 256)
	release := func() {}
	h := &funcHandler{data: func(c *Conn, in []byte) (int, error) {
		for i := 0; i < 8; i++ {
			if err := c.Write(in); err != nil {
				return 0, err
			}
		}
		return len(in), c.WriteRef(ref, release)
	}}
	srv := &Server{handler: h, opts: Options{}.withDefaults()}
	l, err := newLoop(&epollTransport{srv: srv})
	if err != nil {
		t.Fatal(err)
	}
	defer l.closeFDs()
	c := &Conn{srv: srv, drv: l, fd: fds[0]}
	l.open(c)
	defer l.finalize(c)

	msg := []byte("PUB sensors.temp 5\r\n21.5\r\n")
	sink := make([]byte, 64<<10)
	want := 8*len(msg) + len(ref)
	step := func() {
		if _, err := unix.Write(fds[1], msg); err != nil {
			t.Fatal(err)
		}
		// One loop iteration, as run does it.
		n, err := l.wait(true)
		if err != nil || n == 0 {
			t.Fatalf("wait: %d events, %v", n, err)
		}
		for i := 0; i < n; i++ {
			l.handle(&l.events[i])
		}
		l.runTimers()
		l.runWork()
		if n, err := unix.Read(fds[1], sink); err != nil || n != want {
			t.Fatalf("peer read %d bytes (%v), want %d", n, err, want)
		}
	}
	for i := 0; i < 100; i++ { // warm the pools
		step()
	}
	if allocs := testing.AllocsPerRun(1000, step); allocs != 0 {
		t.Fatalf("%.2f allocations per message", allocs)
	}
}

// TestCrossGoroutineWritesShareOneWakeup pins the batching of wakeups: many
// writes handed to a sleeping loop cost one eventfd write, and writes handed
// to an awake loop cost none.
func TestCrossGoroutineWritesShareOneWakeup(t *testing.T) {
	srv := &Server{handler: &funcHandler{}, opts: Options{}.withDefaults()}
	l, err := newLoop(&epollTransport{srv: srv})
	if err != nil {
		t.Fatal(err)
	}
	defer l.closeFDs()
	conns := make([]*Conn, 100)
	for i := range conns {
		conns[i] = &Conn{srv: srv, drv: l, fd: -1}
	}
	counter := func() uint64 {
		var b [8]byte
		if _, err := unix.Read(l.efd, b[:]); err != nil {
			return 0 // EAGAIN: the counter is zero
		}
		return binary.NativeEndian.Uint64(b[:])
	}

	// Awake (as while running callbacks): no system call at all.
	for _, c := range conns {
		c.Write([]byte("x"))
	}
	if n := counter(); n != 0 {
		t.Fatalf("%d eventfd writes to an awake loop", n)
	}
	// Take the pending list, as the loop would (without flushing: these
	// connections have no sockets).
	l.mu.Lock()
	for _, c := range l.pending {
		c.mu.Lock()
		c.queued = false
		c.mu.Unlock()
	}
	l.pending = l.pending[:0]
	l.mu.Unlock()

	// Asleep: the first hand-off wakes it, the rest ride along.
	l.notified.Store(false)
	for _, c := range conns {
		c.Write([]byte("y"))
	}
	if n := counter(); n != 1 {
		t.Fatalf("%d eventfd writes for %d hand-offs, want 1", n, len(conns))
	}
	l.mu.Lock()
	pending := len(l.pending)
	l.mu.Unlock()
	if pending != len(conns) {
		t.Fatalf("%d connections pending, want %d", pending, len(conns))
	}
}
