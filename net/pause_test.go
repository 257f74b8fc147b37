package net

import (
	"bufio"
	"errors"
	"io"
	stdnet "net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// relay is a test protocol where one producer's lines are copied to one
// consumer connection, slowing the producer down with PauseReading while
// the consumer is congested, as a gateway does for its publishers.
type relay struct {
	mu       sync.Mutex
	consumer *Conn
	pauses   atomic.Int64
	stalled  bool // the last delivery found the consumer congested
}

func (r *relay) OnOpen(c *Conn) {}

func (r *relay) OnData(c *Conn, in []byte) (int, error) {
	if string(in) == "consumer\n" {
		r.mu.Lock()
		r.consumer = c
		r.mu.Unlock()
		return len(in), c.Write([]byte("ok\n"))
	}
	r.mu.Lock()
	dst := r.consumer
	r.mu.Unlock()
	end := strings.LastIndexByte(string(in), '\n')
	if end < 0 || dst == nil {
		return 0, nil
	}
	if r.stalled && dst.Congested() {
		// Still congested: take nothing more until it drains.
		r.pauses.Add(1)
		c.PauseReading(2 * time.Millisecond)
		return 0, nil
	}
	r.stalled = false
	if err := dst.Write(in[:end+1]); err != nil {
		return end + 1, nil
	}
	if dst.Congested() {
		r.stalled = true
		r.pauses.Add(1)
		c.PauseReading(2 * time.Millisecond)
	}
	return end + 1, nil
}

func (r *relay) OnClose(c *Conn, err error) {}

// TestPausedProducerDoesNotCutOffConsumer sends far more than the outbound
// limit through a consumer that reads slowly. Without backpressure the
// consumer would be cut off as slow; with PauseReading the producer waits
// and every byte arrives.
func TestPausedProducerDoesNotCutOffConsumer(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tc transportCase) {
		opts := tc.opts
		// Room above half the limit for one full read (64 KiB).
		opts.MaxOutbound = 256 << 10
		r := &relay{}
		srv, err := Listen("tcp", "127.0.0.1:0", r, opts)
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()

		consumer, err := stdnet.Dial("tcp", srv.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer consumer.Close()
		consumer.SetDeadline(time.Now().Add(testTimeout))
		io.WriteString(consumer, "consumer\n")
		cr := bufio.NewReader(consumer)
		if l, err := cr.ReadString('\n'); err != nil || l != "ok\n" {
			t.Fatalf("consumer registration: %q %v", l, err)
		}

		producer, err := stdnet.Dial("tcp", srv.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer producer.Close()
		line := strings.Repeat("x", 1023) + "\n"
		const lines = 4096 // 4 MiB through a 256 KiB outbound limit
		go func() {
			w := bufio.NewWriter(producer)
			for i := 0; i < lines; i++ {
				w.WriteString(line)
			}
			w.Flush()
		}()
		got := 0
		buf := make([]byte, 4096)
		for got < lines*len(line) {
			// A slow reader: small reads with a pause now and then.
			n, err := cr.Read(buf)
			if err != nil {
				t.Fatalf("consumer cut off after %d of %d bytes: %v (stats %+v)", got, lines*len(line), err, srv.Stats())
			}
			got += n
			if got%(256<<10) < n {
				time.Sleep(time.Millisecond)
			}
		}
		if st := srv.Stats(); st.SlowConsumers != 0 {
			t.Errorf("slow consumers = %d, want 0", st.SlowConsumers)
		}
		if r.pauses.Load() == 0 {
			t.Error("the producer was never paused; the test did not congest the consumer")
		}
	})
}

// TestHandlerPanicClosesOnlyThatConnection feeds a handler input that makes
// it panic: that connection closes with a *HandlerPanicError and the server
// goes on serving others.
func TestHandlerPanicClosesOnlyThatConnection(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tc transportCase) {
		closed := make(chan error, 4)
		h := &funcHandler{
			data: func(c *Conn, in []byte) (int, error) {
				if strings.HasPrefix(string(in), "boom") {
					var m map[string]int
					m["x"] = 1 // a bug reached by bad input
				}
				return lineEcho(c, in)
			},
			close: func(c *Conn, err error) { closed <- err },
		}
		srv, err := Listen("tcp", "127.0.0.1:0", h, tc.opts)
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		bad, _ := stdnet.Dial("tcp", srv.Addr().String())
		defer bad.Close()
		io.WriteString(bad, "boom\n")
		select {
		case err := <-closed:
			var hp *HandlerPanicError
			if !errors.As(err, &hp) || !errors.Is(err, ErrHandlerPanic) || len(hp.Stack) == 0 {
				t.Fatalf("close reason %v, want a *HandlerPanicError with a stack", err)
			}
		case <-time.After(testTimeout):
			t.Fatal("the panicking connection was not closed")
		}
		good, _ := stdnet.Dial("tcp", srv.Addr().String())
		defer good.Close()
		good.SetDeadline(time.Now().Add(testTimeout))
		io.WriteString(good, "still here\n")
		if l, err := bufio.NewReader(good).ReadString('\n'); err != nil || l != "still here\n" {
			t.Fatalf("server after a handler panic: %q %v", l, err)
		}
		if srv.Stats().HandlerPanics != 1 {
			t.Errorf("HandlerPanics = %d, want 1", srv.Stats().HandlerPanics)
		}
	})
}
