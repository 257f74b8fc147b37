package stompgw

import (
	"bufio"
	"net"
	"sync/atomic"
	"testing"

	"github.com/ledgemq/ledge/amqpgw"
	"github.com/ledgemq/ledge/stompgw/frame"
)

// sendFrame is a producer's SEND of a 128-byte message.
var sendFrame = []byte("SEND\ndestination:/queue/work\ncontent-type:text/plain\npersistent:true\nreceipt:r-17\n" +
	"correlation-id:c-1\nsite:7\ncontent-length:128\n\n" + string(make([]byte, 128)) + "\x00")

// The SEND path, decoding the frame, reading its destination and mapping
// its headers onto AMQP properties, allocates nothing.
func TestSendCodecAllocatesNothing(t *testing.T) {
	s := newSession(&Server{opts: Options{}.withDefaults(), limits: frame.Limits{MaxFrame: 1 << 20, MaxHeaders: 64}}, nil, false)
	s.version = frame.V12
	in := make([]byte, len(sendFrame))
	var p amqpgw.Properties
	allocs := testing.AllocsPerRun(1000, func() {
		copy(in, sendFrame)
		if _, err := frame.Decode(in, s.version, s.srv.limits, &s.f); err != nil {
			t.Fatal(err)
		}
		dst, _ := s.f.Get("destination")
		if d, ok := parseDest(dst); !ok || string(d.name) != "work" {
			t.Fatal("destination")
		}
		p = amqpgw.Properties{}
		if e := s.properties(&s.f, &p); e != "" {
			t.Fatal(e)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per SEND", allocs)
	}
	if p.DeliveryMode != 2 || string(p.CorrelationID) != "c-1" || len(p.Headers) != 1 || string(p.Headers[0].Key) != "site" {
		t.Fatalf("properties %+v", p)
	}
}

// The MESSAGE path, encoding a delivery with its properties as a frame,
// allocates nothing.
func TestMessageCodecAllocatesNothing(t *testing.T) {
	s := newSession(&Server{opts: Options{}.withDefaults()}, nil, false)
	s.version = frame.V12
	sub := s.newSubscription("sub-0", ackIndividual)
	d := &amqpgw.Delivery{RoutingKey: []byte("work"), Body: make([]byte, 128), Seq: 7, Redelivered: true,
		Properties: amqpgw.Properties{ContentType: []byte("text/plain"), DeliveryMode: 2, CorrelationID: []byte("c-1"),
			ReplyTo: []byte("amq.gen-x"), Headers: []amqpgw.Header{{Key: []byte("site"), Value: []byte("7")}}}}
	buf := make([]byte, 0, 1024)
	allocs := testing.AllocsPerRun(1000, func() {
		buf = sub.appendMessage(buf[:0], d, 12345)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per MESSAGE", allocs)
	}
	var f frame.Frame
	if _, err := frame.Decode(buf, frame.V12, frame.Limits{MaxFrame: 4096, MaxHeaders: 64}, &f); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"subscription": "sub-0", "destination": "/queue/work", "message-id": "sub-0@@12345",
		"ack": "sub-0@@12345", "redelivered": "true", "persistent": "true", "reply-to": "/reply-queue/amq.gen-x", "site": "7"} {
		if v, _ := f.Get(k); string(v) != want {
			t.Errorf("%s = %q, want %q", k, v, want)
		}
	}
}

func BenchmarkEncodeMessage(b *testing.B) {
	s := newSession(&Server{opts: Options{}.withDefaults()}, nil, false)
	s.version = frame.V12
	sub := s.newSubscription("sub-0", ackIndividual)
	d := &amqpgw.Delivery{RoutingKey: []byte("work"), Body: make([]byte, 128), Seq: 7,
		Properties: amqpgw.Properties{ContentType: []byte("text/plain")}}
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	b.SetBytes(128)
	for i := 0; b.Loop(); i++ {
		buf = sub.appendMessage(buf[:0], d, uint64(i))
	}
}

// BenchmarkQueueClientIndividual moves 128-byte messages through a
// durable /queue from one producer to two competing subscribers with
// client-individual acks and prefetch 100, over TCP, the clients speaking
// with the gateway's own codec so that they cost little: the issue's
// scenario, in process. Messages are transient, as STOMP's are unless
// sent persistent:true.
func BenchmarkQueueClientIndividual(b *testing.B) {
	g := startGateway(b, false, Options{}, "")
	_, err := g.amqp.DeclareQueue(nil, "work", amqpgw.QueueOptions{Durable: true})
	must(b, err)
	body := make([]byte, 128)
	var got atomic.Int64
	n := int64(b.N)
	done := make(chan struct{})
	for i := 0; i < 2; i++ {
		c := benchConn(b, g.addr)
		_, err := c.w.WriteString("SUBSCRIBE\nid:w\ndestination:/queue/work\nack:client-individual\nprefetch-count:100\n\n\x00")
		must(b, err)
		must(b, c.w.Flush())
		go c.consume(func() {
			if got.Add(1) == n {
				close(done)
			}
		})
	}
	p := benchConn(b, g.addr)
	send := []byte("SEND\ndestination:/queue/work\ncontent-type:application/octet-stream\ncontent-length:128\n\n")
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_, _ = p.w.Write(send)
		_, _ = p.w.Write(body)
		_ = p.w.WriteByte(0)
	}
	must(b, p.w.Flush())
	<-done
	b.StopTimer()
}

// benchClient is a lean STOMP client for the benchmark.
type benchClient struct {
	c   net.Conn
	w   *bufio.Writer
	buf []byte
}

func benchConn(b *testing.B, addr string) *benchClient {
	c, err := net.Dial("tcp", addr)
	must(b, err)
	b.Cleanup(func() { c.Close() })
	bc := &benchClient{c: c, w: bufio.NewWriterSize(c, 64<<10), buf: make([]byte, 0, 256<<10)}
	_, _ = bc.w.WriteString("CONNECT\naccept-version:1.2\nhost:/\n\n\x00")
	must(b, bc.w.Flush())
	connected := false
	bc.read(func(f *frame.Frame) bool {
		connected = f.Command == frame.CONNECTED
		return false
	})
	if !connected {
		b.Fatal("not connected")
	}
	return bc
}

// read calls fn for each frame until it returns false or the connection
// ends, flushing what fn wrote before each read from the socket.
func (bc *benchClient) read(fn func(*frame.Frame) bool) {
	var f frame.Frame
	lim := frame.Limits{MaxFrame: 1 << 20, MaxHeaders: 64}
	for {
		used := 0
		for {
			used += frame.SkipEOL(bc.buf[used:])
			n, err := frame.Decode(bc.buf[used:], frame.V12, lim, &f)
			if err != nil {
				break
			}
			used += n
			if !fn(&f) {
				bc.buf = append(bc.buf[:0], bc.buf[used:]...)
				return
			}
		}
		bc.buf = append(bc.buf[:0], bc.buf[used:]...)
		if bc.w.Flush() != nil {
			return
		}
		k, err := bc.c.Read(bc.buf[len(bc.buf):cap(bc.buf)])
		if err != nil {
			return
		}
		bc.buf = bc.buf[:len(bc.buf)+k]
	}
}

// consume acknowledges each MESSAGE, calling got for each, until the
// connection closes.
func (bc *benchClient) consume(got func()) {
	bc.read(func(f *frame.Frame) bool {
		if f.Command != frame.MESSAGE {
			return false
		}
		id, _ := f.Get("ack")
		_, _ = bc.w.WriteString("ACK\nid:")
		_, _ = bc.w.Write(id)
		_, _ = bc.w.WriteString("\n\n\x00")
		got()
		return true
	})
}
