package net

import (
	"bytes"
	"io"
	stdnet "net"
	"runtime"
	"sync"
	"testing"
	"time"
)

// benchMsg is a small telemetry-sized message: 64 bytes with its newline.
var benchMsg = append(bytes.Repeat([]byte("x"), 63), '\n')

func forEachTransportBench(b *testing.B, fn func(b *testing.B, tc transportCase)) {
	for _, tc := range transportCases() {
		// Default loop count (GOMAXPROCS), as the broker runs.
		tc.opts.Loops = 0
		b.Run(tc.name, func(b *testing.B) { fn(b, tc) })
	}
}

// pump writes msgs copies of benchMsg to nc in batches and reads back want
// bytes from rd, concurrently. The writer keeps at most echoWindow bytes
// unanswered: without that flow control a client that writes faster than it
// reads grows its queue on the server until it is cut off as a slow
// consumer, which is the broker's rule, not what is measured here.
func pump(b *testing.B, nc stdnet.Conn, msgs int, rd stdnet.Conn, want int, wg *sync.WaitGroup) {
	const batchMsgs = 64
	const echoWindow = 1 << 20
	batch := bytes.Repeat(benchMsg, batchMsgs)
	credit := make(chan struct{}, echoWindow/len(batch))
	for i := 0; i < cap(credit); i++ {
		credit <- struct{}{}
	}
	wg.Add(2)
	go func() {
		defer wg.Done()
		for left := msgs; left > 0; {
			n := min(left, batchMsgs)
			<-credit
			if _, err := nc.Write(batch[:n*len(benchMsg)]); err != nil {
				b.Error(err)
				return
			}
			left -= n
		}
	}()
	go func() {
		defer wg.Done()
		buf := make([]byte, 64<<10)
		read, credited := 0, 0
		for left := want; left > 0; {
			n, err := rd.Read(buf[:min(left, len(buf))])
			if err != nil {
				b.Error(err)
				return
			}
			left -= n
			read += n
			for ; read-credited >= len(batch); credited += len(batch) {
				select {
				case credit <- struct{}{}:
				default:
				}
			}
		}
	}()
}

// BenchmarkEcho measures small-message echo throughput with a few clients;
// one op is one 64-byte message sent and echoed.
func BenchmarkEcho(b *testing.B) {
	const clients = 4
	forEachTransportBench(b, func(b *testing.B, tc transportCase) {
		s := start(b, tc, &funcHandler{data: lineEcho}, func(o *Options) { o.MaxOutbound = 64 << 20 })
		ncs := dialBench(b, s, clients)
		per := b.N/clients + 1
		b.SetBytes(int64(len(benchMsg)))
		b.ReportAllocs()
		b.ResetTimer()
		t0 := time.Now()
		var wg sync.WaitGroup
		for _, nc := range ncs {
			pump(b, nc, per, nc, per*len(benchMsg), &wg)
		}
		wg.Wait()
		el := time.Since(t0)
		b.ReportMetric(float64(per*clients)/el.Seconds(), "msgs/s")
	})
}

// BenchmarkPingPong measures request/response: many clients with one
// 64-byte message in flight each, so every message costs a read and a write
// system call on both sides and the transports' per-message overhead shows.
func BenchmarkPingPong(b *testing.B) {
	const clients = 16
	forEachTransportBench(b, func(b *testing.B, tc transportCase) {
		s := start(b, tc, &funcHandler{data: lineEcho}, nil)
		ncs := dialBench(b, s, clients)
		per := b.N/clients + 1
		b.SetBytes(int64(len(benchMsg)))
		b.ReportAllocs()
		b.ResetTimer()
		t0 := time.Now()
		var wg sync.WaitGroup
		for _, nc := range ncs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				buf := make([]byte, len(benchMsg))
				for i := 0; i < per; i++ {
					if _, err := nc.Write(benchMsg); err != nil {
						b.Error(err)
						return
					}
					if _, err := io.ReadFull(nc, buf); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		el := time.Since(t0)
		b.ReportMetric(float64(per*clients)/el.Seconds(), "msgs/s")
	})
}

// BenchmarkCrossLoopFanout measures delivery from one publisher to three
// subscribers that sit on other loops: the handler of the publisher's loop
// writes into the subscribers' queues and wakes their loops. One op is one
// published message (three deliveries).
func BenchmarkCrossLoopFanout(b *testing.B) {
	const subs = 3
	forEachTransportBench(b, func(b *testing.B, tc transportCase) {
		var reg registry
		ev := newEvents()
		h := &funcHandler{
			open: func(c *Conn) { reg.add(c); ev.open(c) },
			data: func(c *Conn, in []byte) (int, error) {
				end := bytes.LastIndexByte(in, '\n')
				if end < 0 {
					return 0, nil
				}
				for _, o := range reg.conns { // fixed before the timer starts
					if o != c {
						if err := o.Write(in[:end+1]); err != nil {
							return 0, err
						}
					}
				}
				return end + 1, nil
			},
		}
		s := start(b, tc, h, func(o *Options) { o.MaxOutbound = 64 << 20 })
		var ncs []stdnet.Conn
		for i := 0; i < subs+1; i++ {
			nc := dial(b, s)
			nc.SetDeadline(time.Now().Add(time.Minute))
			ncs = append(ncs, nc)
			ev.waitOpen(b)
		}
		// The publisher keeps at most eight rounds in flight per subscriber:
		// without that flow control a firehose publisher fills the
		// subscribers' queues and gets them cut off as slow consumers,
		// which is the broker's rule, not what is measured here.
		const round = 64 * 16
		rounds := (b.N + round - 1) / round
		acks := make([]chan struct{}, subs)
		for i := range acks {
			acks[i] = make(chan struct{}, rounds)
		}
		b.SetBytes(int64(len(benchMsg)))
		b.ReportAllocs()
		b.ResetTimer()
		t0 := time.Now()
		var wg sync.WaitGroup
		pub := ncs[0]
		wg.Add(1)
		go func() {
			defer wg.Done()
			batch := bytes.Repeat(benchMsg, 64)
			for r := 0; r < rounds; r++ {
				if r >= 8 {
					for _, a := range acks {
						<-a
					}
				}
				for k := 0; k < round/64; k++ {
					if _, err := pub.Write(batch); err != nil {
						b.Error(err)
						return
					}
				}
			}
		}()
		for i, sub := range ncs[1:] {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for r := 0; r < rounds; r++ {
					if _, err := io.CopyN(io.Discard, sub, int64(round*len(benchMsg))); err != nil {
						b.Error(err)
						return
					}
					acks[i] <- struct{}{}
				}
			}()
		}
		wg.Wait()
		el := time.Since(t0)
		n := rounds * round
		b.ReportMetric(float64(n*subs)/el.Seconds(), "deliveries/s")
	})
}

// BenchmarkIdleConnMemory opens idleConns idle connections and reports
// what the server holds per connection: heap and goroutine stacks. Run it
// with -benchtime=1x; the clients are raw sockets on Linux so that only the
// server side is counted.
func BenchmarkIdleConnMemory(b *testing.B) {
	const idleConns = 2000
	forEachTransportBench(b, func(b *testing.B, tc transportCase) {
		for i := 0; i < b.N; i++ {
			s := start(b, tc, &funcHandler{data: lineEcho}, nil)
			runtime.GC()
			var m0, m1 runtime.MemStats
			runtime.ReadMemStats(&m0)
			closeAll := dialIdle(b, s.Addr().(*stdnet.TCPAddr), idleConns)
			waitFor(b, "every connection open", func() bool { return s.Stats().ConnsOpen == idleConns })
			runtime.GC()
			runtime.ReadMemStats(&m1)
			heap := float64(int64(m1.HeapAlloc) - int64(m0.HeapAlloc))
			stack := float64(int64(m1.StackInuse) - int64(m0.StackInuse))
			b.ReportMetric(heap/idleConns, "heap-B/conn")
			b.ReportMetric(stack/idleConns, "stack-B/conn")
			b.ReportMetric((heap+stack)/idleConns, "B/conn")
			closeAll()
			waitFor(b, "every connection closed", func() bool { return s.Stats().ConnsOpen == 0 })
		}
	})
}

// dialBench opens n client connections for a benchmark, each with a
// deadline that ends a stuck run instead of hanging it.
func dialBench(b *testing.B, s *Server, n int) []stdnet.Conn {
	ncs := make([]stdnet.Conn, 0, n)
	for i := 0; i < n; i++ {
		nc := dial(b, s)
		nc.SetDeadline(time.Now().Add(time.Minute))
		ncs = append(ncs, nc)
	}
	return ncs
}
