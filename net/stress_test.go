package net

import (
	"errors"
	"io"
	"math/rand/v2"
	stdnet "net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestLifecycleUnderConcurrentChurn drives writes, by-reference writes,
// tasks, timers and closes from several goroutines at connections whose
// clients read, stall or hang up at random, and checks the invariants that
// matter for a broker: every release runs exactly once, every connection
// gets exactly one OnClose, and nothing stays open.
func TestLifecycleUnderConcurrentChurn(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tc transportCase) {
		var (
			reg            registry
			opened, closes atomic.Int64
			refs, released atomic.Int64
			doubleClose    atomic.Bool
			closedOnce     sync.Map
			payload        = make([]byte, 8<<10)
			errChurn       = errors.New("churn")
		)
		h := &funcHandler{
			open: func(c *Conn) {
				opened.Add(1)
				reg.add(c)
				c.AfterFunc(time.Duration(rand.IntN(20))*time.Millisecond, func(c *Conn) {
					c.Write([]byte("tick\n"))
				})
			},
			data: func(c *Conn, in []byte) (int, error) {
				c.Write(in)
				if rand.IntN(50) == 0 {
					return len(in), errChurn
				}
				return len(in), nil
			},
			close: func(c *Conn, err error) {
				if _, dup := closedOnce.LoadOrStore(c, true); dup {
					doubleClose.Store(true)
				}
				closes.Add(1)
			},
		}
		s := start(t, tc, h, func(o *Options) { o.MaxOutbound = 64 << 10 })

		const clients = 40
		var cwg sync.WaitGroup
		for i := 0; i < clients; i++ {
			cwg.Add(1)
			go func() {
				defer cwg.Done()
				nc, err := stdnet.DialTimeout("tcp", s.Addr().String(), testTimeout)
				if err != nil {
					t.Error(err)
					return
				}
				defer nc.Close()
				nc.SetDeadline(time.Now().Add(2 * time.Second))
				mode := rand.IntN(3)
				buf := make([]byte, 4096)
				for j := 0; j < 200; j++ {
					if _, err := io.WriteString(nc, "hello\n"); err != nil {
						return
					}
					switch mode {
					case 0: // reads
						if _, err := nc.Read(buf); err != nil {
							return
						}
					case 1: // never reads
					case 2: // hangs up early
						if j == 5 {
							return
						}
					}
				}
			}()
		}
		var swg sync.WaitGroup
		stop := make(chan struct{})
		for g := 0; g < 4; g++ {
			swg.Add(1)
			go func() {
				defer swg.Done()
				for k := 0; ; k++ {
					select {
					case <-stop:
						return
					default:
					}
					cs := reg.list()
					if len(cs) == 0 {
						time.Sleep(time.Millisecond)
						continue
					}
					c := cs[rand.IntN(len(cs))]
					switch rand.IntN(5) {
					case 0:
						c.Write(payload[:rand.IntN(len(payload))+1])
					case 1:
						refs.Add(1)
						c.WriteRef(payload, func() { released.Add(1) })
					case 2:
						c.Do(func(c *Conn) { c.Write([]byte("task\n")) })
					case 3:
						if rand.IntN(20) == 0 {
							c.Close(errChurn)
						}
					case 4:
						c.AfterFunc(time.Millisecond, func(c *Conn) {}).Stop()
					}
					if k%64 == 0 {
						time.Sleep(100 * time.Microsecond)
					}
				}
			}()
		}
		cwg.Wait()
		close(stop)
		swg.Wait()
		waitFor(t, "every connection closed", func() bool { return s.Stats().ConnsOpen == 0 })
		waitFor(t, "every release", func() bool { return released.Load() == refs.Load() })
		waitFor(t, "every OnClose", func() bool { return closes.Load() == opened.Load() })
		if doubleClose.Load() {
			t.Fatal("OnClose ran twice for a connection")
		}
		if h := s.Stats().HeldBuffers; h != 0 {
			t.Fatalf("%d input buffers held after every connection closed", h)
		}
		t.Logf("%d connections, %d by-reference writes, %+v", opened.Load(), refs.Load(), s.Stats())
		// Releases must not run again later.
		if released.Load() != refs.Load() {
			t.Fatalf("released %d of %d", released.Load(), refs.Load())
		}
	})
}
