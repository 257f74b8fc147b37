package net

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	stdnet "net"
	"sync"
	"testing"
	"time"
)

// testTimeout bounds every wait in the tests; nothing waits on a sleep.
const testTimeout = 10 * time.Second

// transportCase is one row of the transport table every behaviour test runs
// on: the portable transport everywhere, epoll where it exists.
type transportCase struct {
	name string
	opts Options
}

func transportCases() []transportCase {
	cs := []transportCase{{name: "portable", opts: Options{Portable: true}}}
	if epollSupported("tcp") {
		cs = append(cs, transportCase{name: "epoll", opts: Options{Loops: 2}})
	}
	return cs
}

// forEachTransport runs fn as a subtest per transport.
func forEachTransport(t *testing.T, fn func(t *testing.T, tc transportCase)) {
	for _, tc := range transportCases() {
		t.Run(tc.name, func(t *testing.T) { fn(t, tc) })
	}
}

// funcHandler adapts functions to Handler; nil functions do nothing.
type funcHandler struct {
	open  func(c *Conn)
	data  func(c *Conn, in []byte) (int, error)
	close func(c *Conn, err error)
}

func (h *funcHandler) OnOpen(c *Conn) {
	if h.open != nil {
		h.open(c)
	}
}

func (h *funcHandler) OnData(c *Conn, in []byte) (int, error) {
	if h.data != nil {
		return h.data(c, in)
	}
	return len(in), nil
}

func (h *funcHandler) OnClose(c *Conn, err error) {
	if h.close != nil {
		h.close(c, err)
	}
}

// lineEcho consumes every complete line and writes it back; an incomplete
// tail is left for the next call.
func lineEcho(c *Conn, in []byte) (int, error) {
	end := bytes.LastIndexByte(in, '\n')
	if end < 0 {
		return 0, nil
	}
	if err := c.Write(in[:end+1]); err != nil {
		return 0, err
	}
	return end + 1, nil
}

// frameEcho handles 4-byte big-endian length-prefixed frames, one frame per
// call, and echoes each frame whole.
func frameEcho(c *Conn, in []byte) (int, error) {
	if len(in) < 4 {
		return 0, nil
	}
	n := int(binary.BigEndian.Uint32(in))
	if len(in) < 4+n {
		return 0, nil
	}
	if err := c.Write(in[:4+n]); err != nil {
		return 0, err
	}
	return 4 + n, nil
}

func frame(payload []byte) []byte {
	b := make([]byte, 4+len(payload))
	binary.BigEndian.PutUint32(b, uint32(len(payload)))
	copy(b[4:], payload)
	return b
}

// closeEvent is what OnClose reported.
type closeEvent struct {
	c   *Conn
	err error
}

// events records opens and closes for tests to wait on.
type events struct {
	opened chan *Conn
	closed chan closeEvent
}

func newEvents() *events {
	return &events{opened: make(chan *Conn, 4096), closed: make(chan closeEvent, 4096)}
}

func (e *events) open(c *Conn)             { e.opened <- c }
func (e *events) close(c *Conn, err error) { e.closed <- closeEvent{c, err} }

func (e *events) waitOpen(t testing.TB) *Conn {
	t.Helper()
	select {
	case c := <-e.opened:
		return c
	case <-time.After(testTimeout):
		t.Fatal("timed out waiting for OnOpen")
	}
	return nil
}

func (e *events) waitClose(t testing.TB) closeEvent {
	t.Helper()
	select {
	case ev := <-e.closed:
		return ev
	case <-time.After(testTimeout):
		t.Fatal("timed out waiting for OnClose")
	}
	return closeEvent{}
}

// start serves h on 127.0.0.1:0 and shuts the server down with the test.
func start(t testing.TB, tc transportCase, h Handler, mod func(*Options)) *Server {
	t.Helper()
	opts := tc.opts
	if mod != nil {
		mod(&opts)
	}
	s, err := Listen("tcp", "127.0.0.1:0", h, opts)
	if err != nil {
		t.Fatal(err)
	}
	if s.Transport() != tc.name {
		t.Fatalf("transport %q, want %q", s.Transport(), tc.name)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return s
}

func dial(t testing.TB, s *Server) stdnet.Conn {
	t.Helper()
	nc, err := stdnet.DialTimeout("tcp", s.Addr().String(), testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	_ = nc.SetDeadline(time.Now().Add(testTimeout))
	t.Cleanup(func() { nc.Close() })
	return nc
}

// readLine reads one line with a deadline.
func readLine(t testing.TB, r *bufio.Reader) string {
	t.Helper()
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("read line: %v (got %q)", err, line)
	}
	return line
}

// waitFor polls cond, for counters that have no event to wait on, with a
// deadline.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// expectEOF reads until the peer closes and returns what was read.
func expectEOF(t testing.TB, nc stdnet.Conn) []byte {
	t.Helper()
	var buf bytes.Buffer
	_, err := buf.ReadFrom(nc)
	if err != nil && !errors.Is(err, stdnet.ErrClosed) && !isReset(err) {
		t.Fatalf("read to EOF: %v", err)
	}
	return buf.Bytes()
}

func isReset(err error) bool {
	var oe *stdnet.OpError
	return errors.As(err, &oe) && !oe.Timeout()
}

// registry collects the server side of connections for tests that write
// from other goroutines.
type registry struct {
	mu    sync.Mutex
	conns []*Conn
}

func (r *registry) add(c *Conn) {
	r.mu.Lock()
	r.conns = append(r.conns, c)
	r.mu.Unlock()
}

func (r *registry) list() []*Conn {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*Conn(nil), r.conns...)
}
