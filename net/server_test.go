package net

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	stdnet "net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestEchoRoundTrip(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tc transportCase) {
		s := start(t, tc, &funcHandler{data: lineEcho}, nil)
		nc := dial(t, s)
		r := bufio.NewReader(nc)
		for i := 0; i < 10; i++ {
			msg := fmt.Sprintf("hello %d\n", i)
			if _, err := io.WriteString(nc, msg); err != nil {
				t.Fatal(err)
			}
			if got := readLine(t, r); got != msg {
				t.Fatalf("got %q, want %q", got, msg)
			}
		}
		// The counter is added after the write that the client has seen.
		waitFor(t, "BytesOut", func() bool { st := s.Stats(); return st.BytesOut == st.BytesIn })
		if st := s.Stats(); st.ConnsOpen != 1 || st.ConnsTotal != 1 || st.BytesIn != 80 {
			t.Fatalf("stats %+v", st)
		}
		if s.Addr().(*stdnet.TCPAddr).Port == 0 {
			t.Fatal("Addr does not report the bound port")
		}
	})
}

func TestFramesSplitAtEveryByteAreReassembled(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tc transportCase) {
		s := start(t, tc, &funcHandler{data: frameEcho}, nil)
		nc := dial(t, s)
		nc.(*stdnet.TCPConn).SetNoDelay(true)
		var stream []byte
		for i := 0; i < 20; i++ {
			stream = append(stream, frame(bytes.Repeat([]byte{byte('a' + i)}, i*7))...)
		}
		// One byte per write: with TCP_NODELAY most arrive in reads of
		// their own, so frames are split at every boundary.
		go func() {
			for i := range stream {
				if _, err := nc.Write(stream[i : i+1]); err != nil {
					return
				}
			}
		}()
		got := make([]byte, len(stream))
		if _, err := io.ReadFull(nc, got); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, stream) {
			t.Fatal("echoed stream differs")
		}
		waitFor(t, "held buffers released", func() bool { return s.Stats().HeldBuffers == 0 })
	})
}

func TestManyConcurrentClients(t *testing.T) {
	const clients, msgs = 200, 50
	forEachTransport(t, func(t *testing.T, tc transportCase) {
		s := start(t, tc, &funcHandler{data: lineEcho}, nil)
		var wg sync.WaitGroup
		errs := make(chan error, clients)
		for i := 0; i < clients; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				nc, err := stdnet.DialTimeout("tcp", s.Addr().String(), testTimeout)
				if err != nil {
					errs <- err
					return
				}
				defer nc.Close()
				_ = nc.SetDeadline(time.Now().Add(testTimeout))
				// Pipeline every message, then read them back.
				var out bytes.Buffer
				for j := 0; j < msgs; j++ {
					fmt.Fprintf(&out, "client %d message %d\n", i, j)
				}
				want := out.String()
				go nc.Write(out.Bytes())
				got := make([]byte, len(want))
				if _, err := io.ReadFull(nc, got); err != nil {
					errs <- fmt.Errorf("client %d: %w", i, err)
					return
				}
				if string(got) != want {
					errs <- fmt.Errorf("client %d: echo differs", i)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if st := s.Stats(); st.ConnsTotal != clients {
			t.Fatalf("ConnsTotal %d, want %d", st.ConnsTotal, clients)
		}
	})
}

// hub delivers every line a client sends to every other client: the
// broker's fan-out, which on epoll writes from one loop into connections of
// the others.
func TestWritesFromOtherLoopsAndGoroutines(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tc transportCase) {
		var reg registry
		ev := newEvents()
		h := &funcHandler{
			open: func(c *Conn) { reg.add(c); ev.open(c) },
			data: func(c *Conn, in []byte) (int, error) {
				end := bytes.LastIndexByte(in, '\n')
				if end < 0 {
					return 0, nil
				}
				for _, o := range reg.list() {
					if o != c {
						_ = o.Write(in[:end+1])
					}
				}
				return end + 1, nil
			},
		}
		s := start(t, tc, h, nil)
		const n = 6
		var ncs []stdnet.Conn
		var rs []*bufio.Reader
		for i := 0; i < n; i++ {
			nc := dial(t, s)
			ncs = append(ncs, nc)
			rs = append(rs, bufio.NewReader(nc))
			ev.waitOpen(t)
		}
		if tc.name == "epoll" {
			loops := map[driver]bool{}
			for _, c := range reg.list() {
				loops[c.drv] = true
			}
			if len(loops) < 2 {
				t.Fatalf("connections on %d loops, want them spread", len(loops))
			}
		}
		// From a client, through the handler, to every other client.
		if _, err := io.WriteString(ncs[0], "pub 1\n"); err != nil {
			t.Fatal(err)
		}
		for i := 1; i < n; i++ {
			if got := readLine(t, rs[i]); got != "pub 1\n" {
				t.Fatalf("client %d got %q", i, got)
			}
		}
		// From goroutines that are not loops: many writes, batched wakeups.
		var wg sync.WaitGroup
		for _, c := range reg.list() {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := 0; j < 100; j++ {
					if err := c.Write([]byte(fmt.Sprintf("to %d #%d\n", c.ID(), j))); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		for i, c := range reg.list() {
			_ = c
			for j := 0; j < 100; j++ {
				line := readLine(t, rs[i])
				var id uint64
				var k int
				if _, err := fmt.Sscanf(line, "to %d #%d\n", &id, &k); err != nil || k != j {
					t.Fatalf("client %d line %q, want #%d", i, line, j)
				}
				if id != reg.list()[i].ID() {
					t.Fatalf("client %d got a line for conn %d", i, id)
				}
			}
		}
	})
}

func TestWriteRefReleasedOnceWhenSent(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tc transportCase) {
		payload := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
		var released atomic.Int32
		h := &funcHandler{open: func(c *Conn) {
			if err := c.Write([]byte("head:")); err != nil {
				t.Error(err)
			}
			if err := c.WriteRef(payload, func() { released.Add(1) }); err != nil {
				t.Error(err)
			}
			if err := c.Write([]byte(":tail")); err != nil {
				t.Error(err)
			}
		}}
		s := start(t, tc, h, nil)
		nc := dial(t, s)
		got := make([]byte, 5+len(payload)+5)
		if _, err := io.ReadFull(nc, got); err != nil {
			t.Fatal(err)
		}
		if string(got[:5]) != "head:" || !bytes.Equal(got[5:5+len(payload)], payload) || string(got[5+len(payload):]) != ":tail" {
			t.Fatal("payload differs")
		}
		waitFor(t, "release", func() bool { return released.Load() == 1 })
		nc.Close()
		waitFor(t, "connection closed", func() bool { return s.Stats().ConnsOpen == 0 })
		if n := released.Load(); n != 1 {
			t.Fatalf("released %d times", n)
		}
	})
}

func TestWriteRefReleasedOnceWhenDropped(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tc transportCase) {
		payload := make([]byte, 1<<20)
		var released, refs atomic.Int32
		ev := newEvents()
		h := &funcHandler{open: ev.open, close: ev.close}
		s := start(t, tc, h, func(o *Options) { o.MaxOutbound = 64 << 20 })
		nc := dial(t, s)
		nc.(*stdnet.TCPConn).SetReadBuffer(4096)
		c := ev.waitOpen(t)
		// The client never reads: queue refs until the kernel buffers are
		// full and some stay queued, then drop the connection.
		for i := 0; i < 48; i++ {
			refs.Add(1)
			if err := c.WriteRef(payload, func() { released.Add(1) }); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, "a queue the kernel cannot take", func() bool { return c.Outbound() > 0 })
		c.mu.Lock()
		c.closeLocked(errors.New("drop"), true)
		c.mu.Unlock()
		if got := ev.waitClose(t); got.err == nil || got.err.Error() != "drop" {
			t.Fatalf("close reason %v", got.err)
		}
		waitFor(t, "every release", func() bool { return released.Load() == refs.Load() })
		// After the close: ErrClosed, and the release still runs once.
		refs.Add(1)
		if err := c.WriteRef(payload, func() { released.Add(1) }); !errors.Is(err, ErrClosed) {
			t.Fatalf("WriteRef after close: %v", err)
		}
		if released.Load() != refs.Load() {
			t.Fatalf("released %d of %d", released.Load(), refs.Load())
		}
	})
}

func TestSlowConsumerIsCutOffOthersUnaffected(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tc transportCase) {
		ev := newEvents()
		h := &funcHandler{open: ev.open, close: ev.close, data: lineEcho}
		s := start(t, tc, h, func(o *Options) { o.MaxOutbound = 256 << 10 })
		slow := dial(t, s)
		slow.(*stdnet.TCPConn).SetReadBuffer(4096)
		sc := ev.waitOpen(t)
		fast := dial(t, s)
		ev.waitOpen(t)

		chunk := make([]byte, 32<<10)
		var err error
		for i := 0; i < 10000 && err == nil; i++ {
			err = sc.Write(chunk)
		}
		if !errors.Is(err, ErrSlowConsumer) {
			t.Fatalf("write error %v, want ErrSlowConsumer", err)
		}
		if got := ev.waitClose(t); got.c != sc || !errors.Is(got.err, ErrSlowConsumer) {
			t.Fatalf("closed %v with %v", got.c, got.err)
		}
		if n := s.Stats().SlowConsumers; n != 1 {
			t.Fatalf("SlowConsumers %d", n)
		}
		r := bufio.NewReader(fast)
		io.WriteString(fast, "still here\n")
		if got := readLine(t, r); got != "still here\n" {
			t.Fatalf("fast client got %q", got)
		}
	})
}

func TestConnectionLimitRefusesAndCounts(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tc transportCase) {
		ev := newEvents()
		var refused atomic.Int32
		h := &funcHandler{open: ev.open, data: lineEcho}
		s := start(t, tc, h, func(o *Options) {
			o.MaxConns = 2
			o.RefuseMessage = []byte("-ERR too many\n")
			o.OnRefuse = func(_ stdnet.Addr, err error) {
				if errors.Is(err, ErrTooManyConns) {
					refused.Add(1)
				}
			}
		})
		a := dial(t, s)
		ev.waitOpen(t)
		dial(t, s)
		ev.waitOpen(t)
		third := dial(t, s)
		if got := string(expectEOF(t, third)); got != "-ERR too many\n" {
			t.Fatalf("refused client read %q", got)
		}
		if st := s.Stats(); st.ConnsRefused != 1 || st.ConnsOpen != 2 || refused.Load() != 1 {
			t.Fatalf("stats %+v, OnRefuse %d", st, refused.Load())
		}
		io.WriteString(a, "ok\n")
		if got := readLine(t, bufio.NewReader(a)); got != "ok\n" {
			t.Fatalf("got %q", got)
		}
	})
}

func TestOversizedInputClosesOnlyThatConnection(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tc transportCase) {
		ev := newEvents()
		h := &funcHandler{open: ev.open, close: ev.close, data: lineEcho}
		s := start(t, tc, h, func(o *Options) { o.MaxInput = 1024 })
		big := dial(t, s)
		bc := ev.waitOpen(t)
		other := dial(t, s)
		ev.waitOpen(t)
		go big.Write(bytes.Repeat([]byte("x"), 64<<10)) // no newline, ever
		got := ev.waitClose(t)
		if got.c != bc || !errors.Is(got.err, ErrInputTooLarge) {
			t.Fatalf("closed %v with %v", got.c, got.err)
		}
		if s.Stats().InputTooLarge != 1 {
			t.Fatal("InputTooLarge not counted")
		}
		io.WriteString(other, "fine\n")
		if got := readLine(t, bufio.NewReader(other)); got != "fine\n" {
			t.Fatalf("got %q", got)
		}
	})
}

func TestHandlerErrorFlushesThenClosesThatConnection(t *testing.T) {
	errQuit := errors.New("quit")
	forEachTransport(t, func(t *testing.T, tc transportCase) {
		ev := newEvents()
		// One line per call: the transport calls again while lines remain.
		h := &funcHandler{open: ev.open, close: ev.close, data: func(c *Conn, in []byte) (int, error) {
			end := bytes.IndexByte(in, '\n')
			if end < 0 {
				return 0, nil
			}
			if string(in[:end]) == "QUIT" {
				c.Write([]byte("-ERR bye\n"))
				return end + 1, errQuit
			}
			return end + 1, c.Write(in[:end+1])
		}}
		s := start(t, tc, h, nil)
		q := dial(t, s)
		qc := ev.waitOpen(t)
		other := dial(t, s)
		ev.waitOpen(t)
		io.WriteString(q, "hi\nQUIT\n")
		if got := string(expectEOF(t, q)); got != "hi\n-ERR bye\n" {
			t.Fatalf("got %q", got)
		}
		if got := ev.waitClose(t); got.c != qc || !errors.Is(got.err, errQuit) {
			t.Fatalf("closed %v with %v", got.c, got.err)
		}
		io.WriteString(other, "alive\n")
		if got := readLine(t, bufio.NewReader(other)); got != "alive\n" {
			t.Fatalf("got %q", got)
		}
	})
}

var errIdle = errors.New("idle")

func TestKeepaliveTimerClosesIdleAndStopCancels(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tc transportCase) {
		ev := newEvents()
		var cancelledRan atomic.Bool
		type session struct{ keepalive *Timer }
		h := &funcHandler{
			open: func(c *Conn) {
				// A timer that is stopped at once must never run...
				c.AfterFunc(20*time.Millisecond, func(*Conn) { cancelledRan.Store(true) }).Stop()
				// ...while the keepalive closes the connection when it
				// sees no data for 100ms.
				c.SetContext(&session{keepalive: c.AfterFunc(100*time.Millisecond, func(c *Conn) {
					c.Write([]byte("-ERR idle\n"))
					c.Close(errIdle)
				})})
				ev.open(c)
			},
			data: func(c *Conn, in []byte) (int, error) {
				c.Context().(*session).keepalive.Reset(100 * time.Millisecond)
				return lineEcho(c, in)
			},
			close: ev.close,
		}
		s := start(t, tc, h, nil)
		nc := dial(t, s)
		ev.waitOpen(t)
		io.WriteString(nc, "ping\n")
		if got := string(expectEOF(t, nc)); got != "ping\n-ERR idle\n" {
			t.Fatalf("got %q", got)
		}
		if got := ev.waitClose(t); !errors.Is(got.err, errIdle) {
			t.Fatalf("close reason %v", got.err)
		}
		if cancelledRan.Load() {
			t.Fatal("a stopped timer ran")
		}
	})
}

func TestTimerStopAndResetReport(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tc transportCase) {
		ev := newEvents()
		fired := make(chan string, 4)
		h := &funcHandler{open: func(c *Conn) {
			a := c.AfterFunc(time.Hour, func(*Conn) { fired <- "a" })
			if !a.Stop() {
				t.Error("Stop of a scheduled timer reported false")
			}
			if a.Stop() {
				t.Error("second Stop reported true")
			}
			if a.Reset(time.Millisecond) {
				t.Error("Reset of a stopped timer reported true")
			}
			b := c.AfterFunc(time.Hour, func(*Conn) { fired <- "b" })
			b.Reset(5 * time.Millisecond)
			ev.open(c)
		}}
		s := start(t, tc, h, nil)
		dial(t, s)
		ev.waitOpen(t)
		got := map[string]bool{}
		for len(got) < 2 {
			select {
			case f := <-fired:
				got[f] = true
			case <-time.After(testTimeout):
				t.Fatalf("fired %v", got)
			}
		}
	})
}

func TestIdleConnectionsHoldNoInputBuffer(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tc transportCase) {
		s := start(t, tc, &funcHandler{data: lineEcho}, nil)
		const n = 20
		var ncs []stdnet.Conn
		for i := 0; i < n; i++ {
			nc := dial(t, s)
			io.WriteString(nc, "complete\npartial")
			ncs = append(ncs, nc)
		}
		waitFor(t, "a held buffer per partial frame", func() bool { return s.Stats().HeldBuffers == n })
		for _, nc := range ncs {
			io.WriteString(nc, " done\n")
		}
		for _, nc := range ncs {
			r := bufio.NewReader(nc)
			if readLine(t, r) != "complete\n" || readLine(t, r) != "partial done\n" {
				t.Fatal("wrong echo")
			}
		}
		if h := s.Stats().HeldBuffers; h != 0 {
			t.Fatalf("idle connections hold %d buffers", h)
		}
	})
}

func TestShutdownFlushesQueuedData(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tc transportCase) {
		payload := bytes.Repeat([]byte("z"), 4<<20)
		ev := newEvents()
		h := &funcHandler{open: func(c *Conn) {
			c.Write(payload)
			ev.open(c)
		}, close: ev.close}
		s, err := Listen("tcp", "127.0.0.1:0", h, tc.opts)
		if err != nil {
			t.Fatal(err)
		}
		nc := dial(t, s)
		ev.waitOpen(t)
		done := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			done <- s.Shutdown(ctx)
		}()
		got := expectEOF(t, nc)
		if !bytes.Equal(got, payload) {
			t.Fatalf("read %d bytes, want %d", len(got), len(payload))
		}
		if err := <-done; err != nil {
			t.Fatalf("shutdown: %v", err)
		}
		if got := ev.waitClose(t); !errors.Is(got.err, ErrServerClosed) {
			t.Fatalf("close reason %v", got.err)
		}
		if _, err := stdnet.DialTimeout("tcp", s.Addr().String(), time.Second); err == nil {
			t.Fatal("still accepting after shutdown")
		}
	})
}

func TestShutdownDeadlineDropsStuckConnections(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tc transportCase) {
		ev := newEvents()
		h := &funcHandler{open: func(c *Conn) {
			c.Write(make([]byte, 16<<20))
			ev.open(c)
		}, close: ev.close}
		opts := tc.opts
		opts.MaxOutbound = 64 << 20
		s, err := Listen("tcp", "127.0.0.1:0", h, opts)
		if err != nil {
			t.Fatal(err)
		}
		nc := dial(t, s)
		nc.(*stdnet.TCPConn).SetReadBuffer(4096)
		ev.waitOpen(t)
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if err := s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("shutdown of a stuck client: %v", err)
		}
		ev.waitClose(t)
		if s.Stats().ConnsOpen != 0 {
			t.Fatal("connections left open")
		}
	})
}

func TestCloseFromAnotherGoroutine(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tc transportCase) {
		ev := newEvents()
		s := start(t, tc, &funcHandler{open: ev.open, close: ev.close}, nil)
		nc := dial(t, s)
		c := ev.waitOpen(t)
		go func() {
			c.Write([]byte("bye\n"))
			c.Close(nil)
		}()
		if got := string(expectEOF(t, nc)); got != "bye\n" {
			t.Fatalf("got %q", got)
		}
		if got := ev.waitClose(t); got.err != nil {
			t.Fatalf("close reason %v", got.err)
		}
		if err := c.Write([]byte("x")); !errors.Is(err, ErrClosed) {
			t.Fatalf("write after close: %v", err)
		}
	})
}

func TestPeerCloseReportsNil(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tc transportCase) {
		ev := newEvents()
		s := start(t, tc, &funcHandler{open: ev.open, close: ev.close}, nil)
		nc := dial(t, s)
		c := ev.waitOpen(t)
		if c.RemoteAddr().String() != nc.LocalAddr().String() || c.LocalAddr().String() != nc.RemoteAddr().String() {
			t.Fatalf("addresses %v %v vs %v %v", c.RemoteAddr(), c.LocalAddr(), nc.LocalAddr(), nc.RemoteAddr())
		}
		nc.Close()
		if got := ev.waitClose(t); got.err != nil {
			t.Fatalf("close reason %v", got.err)
		}
		if st := s.Stats(); st.ConnsOpen != 0 {
			t.Fatalf("stats %+v", st)
		}
	})
}

// binaryU32 keeps encoding/binary imported for frame helpers in this file.
var _ = binary.BigEndian

func TestCloseUnschedulesTimers(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tc transportCase) {
		ev := newEvents()
		h := &funcHandler{open: func(c *Conn) {
			c.AfterFunc(time.Hour, func(*Conn) {})
			c.AfterFunc(2*time.Hour, func(*Conn) {}).Stop()
			c.AfterFunc(3*time.Hour, func(*Conn) {})
			ev.open(c)
		}, close: ev.close}
		s := start(t, tc, h, nil)
		nc := dial(t, s)
		c := ev.waitOpen(t)
		nc.Close()
		ev.waitClose(t)
		c.mu.Lock()
		left := c.timers
		c.mu.Unlock()
		if left != nil {
			t.Fatal("a closed connection still has scheduled timers")
		}
		if c.AfterFunc(time.Millisecond, func(*Conn) { t.Error("timer ran after close") }).Stop() {
			t.Fatal("a timer was scheduled on a closed connection")
		}
	})
}

func TestDoRunsSerializedWithCallbacksInOrder(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tc transportCase) {
		type session struct{ log []string } // touched only by callbacks and Do
		ev := newEvents()
		h := &funcHandler{
			open: func(c *Conn) { c.SetContext(&session{}); ev.open(c) },
			data: func(c *Conn, in []byte) (int, error) {
				s := c.Context().(*session)
				s.log = append(s.log, "data")
				return len(in), nil
			},
			close: ev.close,
		}
		s := start(t, tc, h, nil)
		nc := dial(t, s)
		c := ev.waitOpen(t)
		const n = 200
		go func() {
			for i := 0; i < n; i++ {
				io.WriteString(nc, "x")
			}
		}()
		for i := 0; i < n; i++ {
			if err := c.Do(func(c *Conn) {
				s := c.Context().(*session)
				s.log = append(s.log, fmt.Sprint(i))
				c.Write([]byte(fmt.Sprintf("%d\n", i)))
			}); err != nil {
				t.Fatal(err)
			}
		}
		r := bufio.NewReader(nc)
		for i := 0; i < n; i++ {
			if got := readLine(t, r); got != fmt.Sprintf("%d\n", i) {
				t.Fatalf("task output %q, want %d", got, i)
			}
		}
		done := make(chan []string, 1)
		c.Do(func(c *Conn) { done <- append([]string(nil), c.Context().(*session).log...) })
		var tasks []string
		for _, e := range <-done {
			if e != "data" {
				tasks = append(tasks, e)
			}
		}
		for i, e := range tasks {
			if e != fmt.Sprint(i) {
				t.Fatalf("task %d ran as %s", i, e)
			}
		}
		nc.Close()
		ev.waitClose(t)
		if err := c.Do(func(*Conn) { t.Error("task ran after close") }); !errors.Is(err, ErrClosed) {
			t.Fatalf("Do after close: %v", err)
		}
	})
}

func TestCloseTimeoutDropsPeerThatNeverReads(t *testing.T) {
	errBye := errors.New("bye")
	forEachTransport(t, func(t *testing.T, tc transportCase) {
		ev := newEvents()
		h := &funcHandler{open: ev.open, close: ev.close, data: func(c *Conn, in []byte) (int, error) {
			c.Write(make([]byte, 8<<20)) // far more than the socket buffers take
			return len(in), errBye
		}}
		s := start(t, tc, h, func(o *Options) {
			o.MaxOutbound = 16 << 20
			o.CloseTimeout = 100 * time.Millisecond
		})
		nc := dial(t, s)
		nc.(*stdnet.TCPConn).SetReadBuffer(4096)
		ev.waitOpen(t)
		io.WriteString(nc, "go\n")
		if got := ev.waitClose(t); !errors.Is(got.err, errBye) {
			t.Fatalf("close reason %v", got.err)
		}
		if s.Stats().ConnsOpen != 0 {
			t.Fatal("connection still open")
		}
	})
}
