package natsgw

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	stdnet "net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ledgemq/ledge/auth"
	"github.com/ledgemq/ledge/auth/authtest"
	lnet "github.com/ledgemq/ledge/net"
)

// transports are the network layers every end-to-end test runs on: the
// protocol code must not be able to tell them apart.
var transports = []struct {
	name     string
	portable bool
}{
	{"epoll", false},
	{"portable", true},
}

type gateway struct {
	srv *Server
	ln  *lnet.Server
	url string
}

func startGateway(t testing.TB, portable bool, opts Options, addr string) *gateway {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	srv := NewServer(opts)
	ln, err := lnet.Listen("tcp", addr, srv.Handler(), lnet.Options{
		Portable: portable,
		MaxInput: srv.MaxInput(),
	})
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	g := &gateway{srv: srv, ln: ln, url: "nats://" + ln.Addr().String()}
	t.Cleanup(g.stop)
	return g
}

func (g *gateway) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = g.ln.Shutdown(ctx)
}

func connect(t testing.TB, url string, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, append([]nats.Option{nats.Timeout(5 * time.Second)}, opts...)...)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// forEachTransport runs f as a subtest on every transport.
func forEachTransport(t *testing.T, f func(t *testing.T, portable bool)) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) { f(t, tr.portable) })
	}
}

func nextMsg(t testing.TB, sub *nats.Subscription) *nats.Msg {
	t.Helper()
	m, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatalf("next message on %s: %v", sub.Subject, err)
	}
	return m
}

func TestPublishSubscribe(t *testing.T) {
	forEachTransport(t, func(t *testing.T, portable bool) {
		g := startGateway(t, portable, Options{}, "")
		pub := connect(t, g.url)
		sc := connect(t, g.url)
		subjects := []string{"site.7.temp", "site.*.temp", "site.>", "*.*.*", ">"}
		subs := make([]*nats.Subscription, len(subjects))
		for i, s := range subjects {
			var err error
			if subs[i], err = sc.SubscribeSync(s); err != nil {
				t.Fatal(err)
			}
		}
		other, _ := sc.SubscribeSync("site.8.temp")
		if err := sc.Flush(); err != nil {
			t.Fatal(err)
		}
		if err := pub.Publish("site.7.temp", []byte("21.5")); err != nil {
			t.Fatal(err)
		}
		for i, sub := range subs {
			m := nextMsg(t, sub)
			if m.Subject != "site.7.temp" || string(m.Data) != "21.5" {
				t.Errorf("subscription %q got %q %q", subjects[i], m.Subject, m.Data)
			}
		}
		if m, err := other.NextMsg(50 * time.Millisecond); err == nil {
			t.Errorf("site.8.temp received %q published on site.7.temp", m.Subject)
		}
	})
}

func TestHeaders(t *testing.T) {
	forEachTransport(t, func(t *testing.T, portable bool) {
		g := startGateway(t, portable, Options{}, "")
		nc := connect(t, g.url)
		sub, _ := nc.SubscribeSync("h.>")
		nc.Flush()
		m := nats.NewMsg("h.1")
		m.Header.Set("Trace-Id", "abc")
		m.Header.Add("Multi", "1")
		m.Header.Add("Multi", "2")
		m.Data = []byte("with headers")
		if err := nc.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
		got := nextMsg(t, sub)
		if got.Header.Get("Trace-Id") != "abc" || len(got.Header.Values("Multi")) != 2 || string(got.Data) != "with headers" {
			t.Errorf("got header %v data %q", got.Header, got.Data)
		}
		// Headers with an empty body.
		m = nats.NewMsg("h.2")
		m.Header.Set("Only", "header")
		nc.PublishMsg(m)
		got = nextMsg(t, sub)
		if got.Header.Get("Only") != "header" || len(got.Data) != 0 {
			t.Errorf("got header %v data %q", got.Header, got.Data)
		}
	})
}

func TestQueueGroupDeliversEachMessageOnce(t *testing.T) {
	forEachTransport(t, func(t *testing.T, portable bool) {
		g := startGateway(t, portable, Options{}, "")
		const total, workers = 1000, 3
		var counts [workers]atomic.Int64
		var all atomic.Int64
		done := make(chan struct{})
		for w := 0; w < workers; w++ {
			nc := connect(t, g.url)
			if _, err := nc.QueueSubscribe("jobs.new", "workers", func(*nats.Msg) {
				counts[w].Add(1)
				if all.Add(1) == total {
					close(done)
				}
			}); err != nil {
				t.Fatal(err)
			}
			nc.Flush()
		}
		// A plain subscriber beside the group gets every message.
		watcher := connect(t, g.url)
		watch, _ := watcher.SubscribeSync("jobs.*")
		watch.SetPendingLimits(-1, -1)
		watcher.Flush()

		pub := connect(t, g.url)
		for i := 0; i < total; i++ {
			if err := pub.Publish("jobs.new", []byte(fmt.Sprint(i))); err != nil {
				t.Fatal(err)
			}
		}
		pub.Flush()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("workers got %d of %d messages", all.Load(), total)
		}
		for i := 0; i < total; i++ {
			nextMsg(t, watch)
		}
		// Let any duplicate arrive before counting.
		for _, c := range []*nats.Conn{pub, watcher} {
			c.Flush()
		}
		time.Sleep(20 * time.Millisecond)
		if all.Load() != total {
			t.Errorf("workers got %d messages in total, want exactly %d", all.Load(), total)
		}
		for w := range counts {
			if counts[w].Load() == 0 {
				t.Errorf("worker %d got nothing; the group must spread the work", w)
			}
		}
	})
}

func TestRequestReply(t *testing.T) {
	forEachTransport(t, func(t *testing.T, portable bool) {
		g := startGateway(t, portable, Options{}, "")
		svc := connect(t, g.url)
		svc.QueueSubscribe("svc.upper", "svc", func(m *nats.Msg) {
			m.Respond(bytes.ToUpper(m.Data))
		})
		svc.Flush()
		for _, style := range []struct {
			name string
			opts []nats.Option
		}{
			{"shared inbox", nil},
			{"old-style unique inbox", []nats.Option{nats.UseOldRequestStyle()}},
		} {
			nc := connect(t, g.url, style.opts...)
			for i := 0; i < 20; i++ {
				resp, err := nc.Request("svc.upper", []byte("ping"), 5*time.Second)
				if err != nil {
					t.Fatalf("%s: request %d: %v", style.name, i, err)
				}
				if string(resp.Data) != "PING" {
					t.Fatalf("%s: reply %q", style.name, resp.Data)
				}
			}
		}
	})
}

func TestNoResponders(t *testing.T) {
	forEachTransport(t, func(t *testing.T, portable bool) {
		g := startGateway(t, portable, Options{}, "")
		nc := connect(t, g.url)
		_, err := nc.Request("nobody.home", nil, 5*time.Second)
		if !errors.Is(err, nats.ErrNoResponders) {
			t.Fatalf("request with no subscriber: err = %v, want ErrNoResponders", err)
		}
		_, err = nc.Request("nobody.home", nil, 5*time.Second)
		if !errors.Is(err, nats.ErrNoResponders) {
			t.Fatalf("second request: err = %v, want ErrNoResponders", err)
		}
	})
}

func TestAutoUnsubscribe(t *testing.T) {
	forEachTransport(t, func(t *testing.T, portable bool) {
		g := startGateway(t, portable, Options{}, "")
		nc := connect(t, g.url)
		sub, _ := nc.SubscribeSync("count")
		if err := sub.AutoUnsubscribe(5); err != nil {
			t.Fatal(err)
		}
		nc.Flush()
		for i := 0; i < 10; i++ {
			nc.Publish("count", []byte{byte(i)})
		}
		nc.Flush()
		for i := 0; i < 5; i++ {
			if m := nextMsg(t, sub); m.Data[0] != byte(i) {
				t.Fatalf("message %d = %d", i, m.Data[0])
			}
		}
		if _, err := sub.NextMsg(50 * time.Millisecond); err == nil {
			t.Fatal("a sixth message arrived after auto-unsubscribe at 5")
		}
		if n := g.srv.router.Count(); n != 0 {
			t.Errorf("router still holds %d subscriptions after the limit was reached", n)
		}
	})
}

func TestFlushAndPayloadSizes(t *testing.T) {
	forEachTransport(t, func(t *testing.T, portable bool) {
		g := startGateway(t, portable, Options{}, "")
		nc := connect(t, g.url)
		if rtt, err := nc.RTT(); err != nil || rtt <= 0 {
			t.Fatalf("RTT = %v, %v", rtt, err)
		}
		if nc.MaxPayload() != DefaultMaxPayload {
			t.Errorf("client sees max payload %d, want %d", nc.MaxPayload(), DefaultMaxPayload)
		}
		sub, _ := nc.SubscribeSync("size")
		nc.Flush()
		for _, n := range []int{0, 1, 127, 4096, 65537, DefaultMaxPayload} {
			payload := bytes.Repeat([]byte{byte(n)}, n)
			for i := range payload {
				payload[i] = byte(i * 7)
			}
			if err := nc.Publish("size", payload); err != nil {
				t.Fatalf("publish %d bytes: %v", n, err)
			}
			m := nextMsg(t, sub)
			if !bytes.Equal(m.Data, payload) {
				t.Fatalf("payload of %d bytes came back as %d bytes, or changed", n, len(m.Data))
			}
		}
		if err := nc.Publish("size", make([]byte, DefaultMaxPayload+1)); !errors.Is(err, nats.ErrMaxPayload) {
			t.Errorf("client let an oversized payload through: %v", err)
		}
	})
}

func TestEchoOff(t *testing.T) {
	forEachTransport(t, func(t *testing.T, portable bool) {
		g := startGateway(t, portable, Options{}, "")
		nc := connect(t, g.url, nats.NoEcho())
		own, _ := nc.SubscribeSync("echo")
		nc.Flush()
		other := connect(t, g.url)
		theirs, _ := other.SubscribeSync("echo")
		other.Flush()
		nc.Publish("echo", []byte("x"))
		nc.Flush()
		nextMsg(t, theirs)
		if _, err := own.NextMsg(50 * time.Millisecond); err == nil {
			t.Error("a no-echo client received its own message")
		}
	})
}

func TestReconnectAfterRestart(t *testing.T) {
	forEachTransport(t, func(t *testing.T, portable bool) {
		g := startGateway(t, portable, Options{}, "")
		addr := g.ln.Addr().String()
		reconnected := make(chan struct{}, 1)
		nc := connect(t, g.url,
			nats.ReconnectWait(20*time.Millisecond),
			nats.MaxReconnects(-1),
			nats.ReconnectHandler(func(*nats.Conn) { reconnected <- struct{}{} }))
		sub, _ := nc.SubscribeSync("after.restart")
		nc.Flush()

		g.stop()
		g2 := startGateway(t, portable, Options{}, addr)
		select {
		case <-reconnected:
		case <-time.After(10 * time.Second):
			t.Fatal("client did not reconnect to the restarted broker")
		}
		// The client replays its subscriptions on reconnect.
		nc.Flush()
		other := connect(t, g2.url)
		other.Publish("after.restart", []byte("back"))
		if m := nextMsg(t, sub); string(m.Data) != "back" {
			t.Errorf("got %q", m.Data)
		}
	})
}

func TestManyConcurrentClients(t *testing.T) {
	n := 1000
	if testing.Short() {
		n = 200
	}
	forEachTransport(t, func(t *testing.T, portable bool) {
		g := startGateway(t, portable, Options{}, "")
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				nc, err := nats.Connect(g.url, nats.Timeout(10*time.Second))
				if err != nil {
					errs <- err
					return
				}
				defer nc.Close()
				subject := fmt.Sprintf("client.%d", i)
				sub, err := nc.SubscribeSync(subject)
				if err != nil {
					errs <- err
					return
				}
				if err := nc.Publish(subject, []byte(subject)); err != nil {
					errs <- err
					return
				}
				m, err := sub.NextMsg(10 * time.Second)
				if err != nil || string(m.Data) != subject {
					errs <- fmt.Errorf("client %d: %v", i, err)
				}
			}(i)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})
}

// rawClient is a plain TCP client for sending what nats.go never would.
type rawClient struct {
	c stdnet.Conn
	r *bufio.Reader
}

func dialRaw(t *testing.T, g *gateway) *rawClient {
	t.Helper()
	c, err := stdnet.Dial("tcp", g.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	rc := &rawClient{c: c, r: bufio.NewReader(c)}
	if line := rc.line(t); !strings.HasPrefix(line, "INFO {") {
		t.Fatalf("first line %q, want INFO", line)
	}
	return rc
}

func (rc *rawClient) send(t *testing.T, s string) {
	t.Helper()
	if _, err := rc.c.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
}

func (rc *rawClient) line(t *testing.T) string {
	t.Helper()
	rc.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	l, err := rc.r.ReadString('\n')
	if err != nil {
		t.Fatalf("read line: %v (got %q)", err, l)
	}
	return strings.TrimRight(l, "\r\n")
}

// closed reports whether the server closed the connection.
func (rc *rawClient) closed(t *testing.T) bool {
	rc.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := rc.r.ReadByte()
	return err != nil && !errors.Is(err, stdnet.ErrClosed) && !isTimeout(err)
}

func isTimeout(err error) bool {
	var ne stdnet.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// healthy checks that a well-behaved client still gets service.
func healthy(t *testing.T, nc *nats.Conn) {
	t.Helper()
	sub, err := nc.SubscribeSync(nats.NewInbox())
	if err != nil {
		t.Fatalf("bystander cannot subscribe: %v", err)
	}
	defer sub.Unsubscribe()
	if err := nc.Publish(sub.Subject, []byte("ok")); err != nil {
		t.Fatalf("bystander cannot publish: %v", err)
	}
	nextMsg(t, sub)
}

func TestBadInputClosesOnlyThatConnection(t *testing.T) {
	cases := []struct {
		name, input, wantErr string
	}{
		{"unknown verb", "HELLO world\r\n", "-ERR 'Unknown Protocol Operation'"},
		{"malformed pub", "PUB only.subject\r\n", "-ERR 'Parser Error'"},
		{"oversized payload", fmt.Sprintf("PUB big %d\r\n", DefaultMaxPayload+1), "-ERR 'Maximum Payload Violation'"},
		{"payload overrun", "PUB a 2\r\nabcdef\r\n", "-ERR 'Parser Error: payload not followed by CRLF'"},
		{"invalid subject", "SUB a..b 1\r\n", "-ERR 'Invalid Subject'"},
		{"bad connect", "CONNECT {nope\r\n", "-ERR 'Parser Error: bad CONNECT options'"},
		{"control line too long", "SUB " + strings.Repeat("x", DefaultMaxControlLine) + " 1\r\n", "-ERR 'Maximum Control Line Exceeded'"},
	}
	forEachTransport(t, func(t *testing.T, portable bool) {
		g := startGateway(t, portable, Options{}, "")
		bystander := connect(t, g.url)
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				rc := dialRaw(t, g)
				rc.send(t, tc.input)
				if got := rc.line(t); got != tc.wantErr {
					t.Errorf("answer %q, want %q", got, tc.wantErr)
				}
				if !rc.closed(t) {
					t.Error("connection left open after a protocol violation")
				}
				healthy(t, bystander)
			})
		}
	})
}

func TestVerboseAndPing(t *testing.T) {
	forEachTransport(t, func(t *testing.T, portable bool) {
		g := startGateway(t, portable, Options{}, "")
		rc := dialRaw(t, g)
		rc.send(t, `CONNECT {"verbose":true}`+"\r\nSUB a 1\r\nPUB a 2\r\nhi\r\nPING\r\n")
		want := []string{"+OK", "+OK", "+OK", "MSG a 1 2", "hi", "PONG"}
		var got []string
		for range want {
			got = append(got, rc.line(t))
		}
		// The MSG may overtake the PUB's +OK; both orders are correct.
		if strings.Join(got, "|") != strings.Join(want, "|") &&
			strings.Join(got, "|") != "+OK|+OK|MSG a 1 2|hi|+OK|PONG" {
			t.Errorf("got %q, want %q", got, want)
		}
	})
}

func TestSlowConsumerIsCutOff(t *testing.T) {
	forEachTransport(t, func(t *testing.T, portable bool) {
		g := startGateway(t, portable, Options{}, "")
		bystander := connect(t, g.url)
		// A client that subscribes and then never reads.
		rc := dialRaw(t, g)
		if tcp, ok := rc.c.(*stdnet.TCPConn); ok {
			tcp.SetReadBuffer(4096)
		}
		rc.send(t, "SUB flood 1\r\nPING\r\n")
		if l := rc.line(t); l != "PONG" {
			t.Fatalf("got %q", l)
		}
		pub := connect(t, g.url)
		payload := make([]byte, 32<<10)
		deadline := time.Now().Add(10 * time.Second)
		for g.srv.Stats().SlowConsumers.Load() == 0 && time.Now().Before(deadline) {
			for i := 0; i < 64; i++ {
				pub.Publish("flood", payload)
			}
			pub.Flush()
		}
		if g.srv.Stats().SlowConsumers.Load() == 0 {
			t.Fatal("a client that never reads was not cut off")
		}
		if st := g.ln.Stats(); st.SlowConsumers == 0 {
			t.Errorf("transport did not count the slow consumer: %+v", st)
		}
		healthy(t, bystander)
	})
}

func TestStaleConnectionIsDropped(t *testing.T) {
	forEachTransport(t, func(t *testing.T, portable bool) {
		g := startGateway(t, portable, Options{PingInterval: 30 * time.Millisecond, MaxPingsOut: 2}, "")
		bystander := connect(t, g.url)
		// A half-open peer: connected, but it never answers a PING.
		rc := dialRaw(t, g)
		pings := 0
		for {
			rc.c.SetReadDeadline(time.Now().Add(5 * time.Second))
			l, err := rc.r.ReadString('\n')
			if err != nil {
				t.Fatalf("connection ended (%v) before the stale error, after %d pings", err, pings)
			}
			l = strings.TrimRight(l, "\r\n")
			if l == "PING" {
				pings++
				continue
			}
			if l != "-ERR 'Stale Connection'" {
				t.Fatalf("got %q", l)
			}
			break
		}
		if pings != 2 {
			t.Errorf("sent %d pings before giving up, want 2", pings)
		}
		if !rc.closed(t) {
			t.Error("stale connection left open")
		}
		// The bystander answers pings (nats.go does) and stays.
		time.Sleep(150 * time.Millisecond)
		healthy(t, bystander)
	})
}

func TestAuthentication(t *testing.T) {
	forEachTransport(t, func(t *testing.T, portable bool) {
		svc := auth.New(auth.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Policy: authtest.Policy(t, `
[user dev]
password = plain:s3cret
[user tok]
token = `+auth.TokenDigest("t0ken")+`
`)})
		t.Cleanup(svc.Close)
		g := startGateway(t, portable, Options{Auth: svc, AuthTimeout: 200 * time.Millisecond}, "")
		if _, err := nats.Connect(g.url, nats.UserInfo("dev", "wrong")); err == nil || !strings.Contains(strings.ToLower(err.Error()), "authorization") {
			t.Errorf("wrong password: err = %v, want an authorization violation", err)
		}
		nc := connect(t, g.url, nats.UserInfo("dev", "s3cret"))
		healthy(t, nc)
		// A client that never sends CONNECT is dropped at the auth timeout.
		rc := dialRaw(t, g)
		if l := rc.line(t); l != "-ERR 'Authentication Timeout'" {
			t.Errorf("got %q", l)
		}
		// Operations before CONNECT are refused.
		rc2 := dialRaw(t, g)
		rc2.send(t, "SUB a 1\r\n")
		if l := rc2.line(t); l != "-ERR 'Authorization Violation'" {
			t.Errorf("got %q", l)
		}
		connect(t, g.url, nats.Token("t0ken"))
		if _, err := nats.Connect(g.url, nats.Token("bad")); err == nil {
			t.Error("a bad token was accepted")
		}
	})
}

// TestBurstReachesSlowReader publishes far more than a subscriber's
// outbound limit to a subscriber that reads slowly. The publisher is paused
// while the subscriber drains, so every message arrives and nobody is cut
// off.
func TestBurstReachesSlowReader(t *testing.T) {
	forEachTransport(t, func(t *testing.T, portable bool) {
		srv := NewServer(Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		ln, err := lnet.Listen("tcp", "127.0.0.1:0", srv.Handler(), lnet.Options{
			Portable:    portable,
			MaxInput:    srv.MaxInput(),
			MaxOutbound: 512 << 10,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		g := &gateway{srv: srv, ln: ln, url: "nats://" + ln.Addr().String()}

		rc := dialRaw(t, g)
		rc.send(t, "SUB burst 1\r\nPING\r\n")
		if l := rc.line(t); l != "PONG" {
			t.Fatalf("got %q", l)
		}
		const n, size = 4096, 1024 // 4 MiB through a 512 KiB limit
		pub := connect(t, g.url)
		go func() {
			payload := make([]byte, size)
			for i := 0; i < n; i++ {
				pub.Publish("burst", payload)
			}
			pub.Flush()
		}()
		for i := 0; i < n; i++ {
			if l := rc.line(t); !strings.HasPrefix(l, "MSG burst 1 1024") {
				t.Fatalf("message %d: got %q (slow consumers: %d)", i, l, srv.Stats().SlowConsumers.Load())
			}
			if _, err := rc.r.Discard(size + 2); err != nil {
				t.Fatalf("message %d: %v", i, err)
			}
			if i%32 == 0 {
				time.Sleep(time.Millisecond) // a reader slower than the publisher
			}
		}
		if sc := srv.Stats().SlowConsumers.Load(); sc != 0 {
			t.Errorf("slow consumers = %d, want 0", sc)
		}
		if srv.Stats().Stalls.Load() == 0 {
			t.Error("the publisher was never paused: the test did not congest the subscriber")
		}
	})
}
