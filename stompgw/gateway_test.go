package stompgw

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3"

	"github.com/ledgemq/ledge/amqpgw"
	"github.com/ledgemq/ledge/broker"
	lnet "github.com/ledgemq/ledge/net"
	"github.com/ledgemq/ledge/router"
	"github.com/ledgemq/ledge/stompgw/frame"
)

// gateway is a broker with the AMQP and STOMP gateways on it, as
// cmd/ledge wires them, STOMP served on 127.0.0.1.
type gateway struct {
	srv    *Server
	amqp   *amqpgw.Server
	live   *router.Router[broker.Receiver]
	broker *broker.Broker
	ln     *lnet.Server
	addr   string
	dir    string
	opts   Options
	net    lnet.Options
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// transports are the two the gateway runs on; tests that touch the
// network run on both.
var transports = []struct {
	name     string
	portable bool
}{{"epoll", false}, {"portable", true}}

// startGateway serves STOMP with a broker in dir ("" for a fresh
// temporary folder).
func startGateway(t testing.TB, portable bool, opts Options, dir string) *gateway {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	opts.Logger = quietLogger()
	b, err := broker.Open(broker.Options{Dir: dir, Logger: opts.Logger})
	if err != nil {
		t.Fatal(err)
	}
	live := router.New[broker.Receiver](router.Options{})
	a, err := amqpgw.NewServer(amqpgw.Options{Logger: opts.Logger}, live, b)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := NewServer(opts, a)
	if err != nil {
		t.Fatal(err)
	}
	no := lnet.Options{MaxInput: srv.MaxInput(), Portable: portable}
	ln, err := lnet.Listen("tcp", "127.0.0.1:0", srv.Handler(), no)
	if err != nil {
		t.Fatal(err)
	}
	g := &gateway{srv: srv, amqp: a, live: live, broker: b, ln: ln, addr: ln.Addr().String(), dir: dir, opts: opts, net: no}
	t.Cleanup(g.stop)
	return g
}

// listen serves another handler of the gateway (WebSocket, TLS).
func (g *gateway) listen(t testing.TB, h lnet.Handler, opts lnet.Options) string {
	t.Helper()
	opts.MaxInput = g.srv.MaxInput()
	ln, err := lnet.Listen("tcp", "127.0.0.1:0", h, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

func (g *gateway) stop() {
	if g.ln == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = g.ln.Shutdown(ctx)
	g.amqp.Close()
	_ = g.broker.Close()
	g.ln = nil
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// dial connects go-stomp to the gateway.
func dial(t testing.TB, addr string, opts ...func(*stomp.Conn) error) *stomp.Conn {
	t.Helper()
	opts = append([]func(*stomp.Conn) error{stomp.ConnOpt.Host("/")}, opts...)
	c, err := stomp.Dial("tcp", addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.MustDisconnect() })
	return c
}

// next waits for a subscription's next message.
func next(t testing.TB, sub *stomp.Subscription) *stomp.Message {
	t.Helper()
	select {
	case m, ok := <-sub.C:
		if !ok {
			t.Fatal("subscription closed")
		}
		if m.Err != nil {
			t.Fatalf("subscription error: %v", m.Err)
		}
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no message within 5s")
	}
	return nil
}

// none checks that no message comes within d.
func none(t testing.TB, sub *stomp.Subscription, d time.Duration) {
	t.Helper()
	select {
	case m := <-sub.C:
		t.Fatalf("unexpected message %q", m.Body)
	case <-time.After(d):
	}
}

// raw is a STOMP connection spoken by hand, for what go-stomp cannot
// send; it reads frames with the gateway's own decoder, unescaping as
// the negotiated version says.
type raw struct {
	t   testing.TB
	c   net.Conn
	rd  *bufio.Reader
	buf []byte
	v   frame.Version
}

func newReader(c net.Conn) *bufio.Reader { return bufio.NewReader(c) }

func dialRaw(t testing.TB, addr string) *raw {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &raw{t: t, c: c, rd: newReader(c), v: frame.V10}
}

func (r *raw) send(s string) {
	r.t.Helper()
	if _, err := r.c.Write([]byte(s)); err != nil {
		r.t.Fatal(err)
	}
}

// connect sends CONNECT for version v ("" for none) and reads CONNECTED.
func (r *raw) connect(v string) *rawFrame {
	r.t.Helper()
	hdr := "host:/\n"
	if v != "" {
		hdr += "accept-version:" + v + "\n"
	}
	r.send("CONNECT\n" + hdr + "\n\x00")
	f := r.read()
	if f.Command != "CONNECTED" {
		r.t.Fatalf("got %s %v %q", f.Command, f.Header, f.Body)
	}
	if pv, ok := frame.ParseVersion(f.Header.Get("version")); ok {
		r.v = pv
	}
	return f
}

// rawFrame is a frame read by raw.
type rawFrame struct {
	Command string
	Header  rawHeader
	Body    []byte
}

type rawHeader [][2]string

// Get returns the first header named k.
func (h rawHeader) Get(k string) string {
	for _, kv := range h {
		if kv[0] == k {
			return kv[1]
		}
	}
	return ""
}

// read reads the next frame, skipping heart-beats.
func (r *raw) read() *rawFrame {
	r.t.Helper()
	_ = r.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		r.buf = r.buf[frame.SkipEOL(r.buf):]
		if len(r.buf) > 0 {
			var f frame.Frame
			n, err := frame.Decode(r.buf, r.v, frame.Limits{MaxFrame: 1 << 24, MaxHeaders: 1000}, &f)
			if err == nil {
				out := &rawFrame{Command: f.Command.String(), Body: append([]byte(nil), f.Body...)}
				for _, h := range f.Headers {
					out.Header = append(out.Header, [2]string{string(h.Key), string(h.Value)})
				}
				r.buf = r.buf[n:]
				return out
			}
			if err != frame.ErrIncomplete {
				r.t.Fatalf("bad frame from the server: %v: %q", err, r.buf)
			}
		}
		var chunk [4096]byte
		n, err := r.rd.Read(chunk[:])
		if err != nil {
			r.t.Fatalf("read: %v (have %q)", err, r.buf)
		}
		r.buf = append(r.buf, chunk[:n]...)
	}
}

// readError reads an ERROR frame and checks that the connection closes
// after it.
func (r *raw) readError(wantMessage string) *rawFrame {
	r.t.Helper()
	f := r.read()
	if f.Command != "ERROR" || !strings.Contains(f.Header.Get("message"), wantMessage) {
		r.t.Fatalf("got %s message %q body %q, want ERROR %q", f.Command, f.Header.Get("message"), f.Body, wantMessage)
	}
	r.closed()
	return f
}

// closed checks that the server closes the connection.
func (r *raw) closed() {
	r.t.Helper()
	_ = r.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(r.rd); err != nil {
		r.t.Fatalf("connection not closed: %v", err)
	}
}

func amqpQueueOpts() amqpgw.QueueOptions { return amqpgw.QueueOptions{Durable: true} }

// TestMain-free helpers end here; the tests follow.

// The STOMP tutorial's pattern: a producer sends to /queue/name, a
// consumer receives; on both transports.
func TestSendAndReceive(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			g := startGateway(t, tr.portable, Options{}, "")
			c := dial(t, g.addr)
			sub, err := c.Subscribe("/queue/hello", stomp.AckAuto)
			must(t, err)
			must(t, c.Send("/queue/hello", "text/plain", []byte("hello world"), stomp.SendOpt.Receipt))
			m := next(t, sub)
			if string(m.Body) != "hello world" || m.ContentType != "text/plain" || m.Destination != "/queue/hello" {
				t.Fatalf("got %q %q %q", m.Body, m.ContentType, m.Destination)
			}
			if got := m.Header.Get("message-id"); got == "" {
				t.Fatal("no message-id")
			}
		})
	}
}

var _ = fmt.Sprintf
var _ = bytes.Equal
var _ = frame.V12
