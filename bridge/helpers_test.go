package bridge

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ledgemq/ledge/broker"
	"github.com/ledgemq/ledge/log"
	"github.com/ledgemq/ledge/mqttgw"
	"github.com/ledgemq/ledge/natsgw"
	lnet "github.com/ledgemq/ledge/net"
	"github.com/ledgemq/ledge/router"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("LEDGE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// upstream is an embedded nats-server with JetStream, restartable on the
// same port and store.
type upstream struct {
	t    testing.TB
	opts server.Options
	srv  *server.Server
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func startUpstream(t testing.TB, edit func(*server.Options)) *upstream {
	t.Helper()
	u := &upstream{t: t, opts: server.Options{
		Host:      "127.0.0.1",
		Port:      freePort(t),
		JetStream: true,
		StoreDir:  t.TempDir(),
		NoLog:     true,
		NoSigs:    true,
	}}
	if edit != nil {
		edit(&u.opts)
	}
	u.start()
	t.Cleanup(u.stop)
	return u
}

func (u *upstream) start() {
	u.t.Helper()
	opts := u.opts
	s, err := server.NewServer(&opts)
	if err != nil {
		u.t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		u.t.Fatal("upstream not ready")
	}
	u.srv = s
}

func (u *upstream) stop() {
	if u.srv != nil {
		u.srv.Shutdown()
		u.srv.WaitForShutdown()
		u.srv = nil
	}
}

func (u *upstream) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", u.opts.Port) }

// addStream creates an upstream stream.
func (u *upstream) addStream(name string, subjects ...string) {
	u.t.Helper()
	nc, js := u.js()
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: subjects}); err != nil {
		u.t.Fatal(err)
	}
}

func (u *upstream) js() (*nats.Conn, jetstream.JetStream) {
	u.t.Helper()
	nc, err := nats.Connect(u.url(), nats.UserInfo(u.opts.Username, u.opts.Password))
	if err != nil {
		u.t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		u.t.Fatal(err)
	}
	return nc, js
}

// count returns the messages in an upstream stream (0 while it is down).
func (u *upstream) count(name string) uint64 {
	nc, err := nats.Connect(u.url(), nats.UserInfo(u.opts.Username, u.opts.Password), nats.Timeout(time.Second))
	if err != nil {
		return 0
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, name)
	if err != nil {
		return 0
	}
	return s.CachedInfo().State.Msgs
}

// read returns every message of an upstream stream in order.
func (u *upstream) read(name string) []jetstream.Msg {
	u.t.Helper()
	nc, js := u.js()
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, name)
	if err != nil {
		u.t.Fatal(err)
	}
	want := s.CachedInfo().State.Msgs
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		u.t.Fatal(err)
	}
	var out []jetstream.Msg
	for uint64(len(out)) < want {
		b, err := c.Fetch(int(min(1000, want-uint64(len(out)))), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			u.t.Fatal(err)
		}
		for m := range b.Messages() {
			out = append(out, m)
		}
		if b.Error() != nil {
			u.t.Fatal(b.Error())
		}
	}
	return out
}

// checkExactlyOnce verifies that the upstream stream holds each of the
// payloads "<subject> <n>" for n below want[subject] exactly once, in
// order per subject, and that no message id repeats.
func checkExactlyOnce(t testing.TB, msgs []jetstream.Msg, want map[string]int) {
	t.Helper()
	next := map[string]int{}
	ids := map[string]bool{}
	total := 0
	for _, m := range msgs {
		id := m.Headers().Get(broker.MsgIDHeader)
		if ids[id] {
			t.Fatalf("message id %s upstream twice", id)
		}
		ids[id] = true
		subj, num, ok := strings.Cut(string(m.Data()), " ")
		if !ok {
			t.Fatalf("payload %q", m.Data())
		}
		n, _ := strconv.Atoi(num)
		if n != next[subj] {
			t.Fatalf("subject %s: got message %d, want %d (upstream subject %s)", subj, n, next[subj], m.Subject())
		}
		next[subj]++
		total++
	}
	for subj, n := range want {
		if next[subj] != n {
			t.Errorf("subject %s: %d messages upstream, want %d", subj, next[subj], n)
		}
	}
	if len(next) != len(want) {
		t.Errorf("%d subjects upstream, want %d", len(next), len(want))
	}
}

func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// edge is a local broker with its gateways, as cmd/ledge wires them.
type edge struct {
	t      testing.TB
	b      *broker.Broker
	live   *router.Router[broker.Receiver]
	lns    []*lnet.Server
	mqtt   *mqttgw.Server
	natsAt string
	mqttAt string
	br     *Bridge
}

func openEdge(t testing.TB, dir string, gateways bool) *edge {
	t.Helper()
	b, err := broker.Open(broker.Options{Dir: dir, Sync: log.SyncNever, StateFlushInterval: 20 * time.Millisecond, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	e := &edge{t: t, b: b, live: router.New[broker.Receiver](router.Options{})}
	t.Cleanup(e.close)
	if !gateways {
		return e
	}
	ng := natsgw.NewServer(natsgw.Options{Broker: b, Logger: testLogger(t)})
	ln, err := lnet.Listen("tcp", "127.0.0.1:0", ng.Handler(), lnet.Options{MaxInput: ng.MaxInput()})
	if err != nil {
		t.Fatal(err)
	}
	e.lns = append(e.lns, ln)
	e.natsAt = ln.Addr().String()
	mg, err := mqttgw.NewServer(mqttgw.Options{Logger: testLogger(t)}, e.live, b)
	if err != nil {
		t.Fatal(err)
	}
	e.mqtt = mg
	ln, err = lnet.Listen("tcp", "127.0.0.1:0", mg.Handler(), lnet.Options{MaxInput: mg.MaxInput()})
	if err != nil {
		t.Fatal(err)
	}
	e.lns = append(e.lns, ln)
	e.mqttAt = ln.Addr().String()
	return e
}

func (e *edge) startBridge(ups ...Uplink) *Bridge {
	e.t.Helper()
	br, err := New(e.b, e.live, Config{GatewayID: "edge1", Uplinks: ups, Logger: testLogger(e.t)})
	if err != nil {
		e.t.Fatal(err)
	}
	e.br = br
	return br
}

func (e *edge) close() {
	if e.br != nil {
		e.br.Close()
		e.br = nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, ln := range e.lns {
		_ = ln.Shutdown(ctx)
	}
	e.lns = nil
	if e.mqtt != nil {
		e.mqtt.Close()
		e.mqtt = nil
	}
	if e.b != nil {
		_ = e.b.Close()
		e.b = nil
	}
}

func (e *edge) status(name string) Status {
	for _, s := range e.br.Status() {
		if s.Name == name {
			return s
		}
	}
	e.t.Fatalf("no uplink %s", name)
	return Status{}
}

// proxy is a TCP proxy between the bridge and the upstream that can drop
// every connection and refuse new ones.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  map[net.Conn]bool
	down   bool
	drops  int
	frozen atomic.Bool
}

func startProxy(t testing.TB, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	go p.accept()
	t.Cleanup(func() { ln.Close(); p.dropAll() })
	return p
}

func (p *proxy) url() string { return "nats://" + p.ln.Addr().String() }

func (p *proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.down {
			p.mu.Unlock()
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns[c], p.conns[up] = true, true
		p.mu.Unlock()
		go p.pipe(c, up, true)
		go p.pipe(up, c, false)
	}
}

// pipe copies src to dst; toClient is the upstream's direction, which a
// frozen proxy swallows (the link is up, nothing comes back).
func (p *proxy) pipe(dst, src net.Conn, toClient bool) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !(toClient && p.frozen.Load()) {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *proxy) dropAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
	p.drops++
}

func (p *proxy) setDown(down bool) {
	p.mu.Lock()
	p.down = down
	p.mu.Unlock()
	if down {
		p.dropAll()
	}
}

// flap drops every connection at random moments until stop is closed.
func (p *proxy) flap(stop <-chan struct{}, minGap, maxGap time.Duration) {
	for {
		select {
		case <-stop:
			return
		case <-time.After(minGap + rand.N(maxGap-minGap)):
			p.dropAll()
		}
	}
}

// publishLocal stores n messages per subject directly in a local stream,
// payload "<subject> <i>", interleaving the subjects.
func publishLocal(t testing.TB, st *broker.Stream, subjects []string, from, n int) {
	t.Helper()
	var wg sync.WaitGroup
	for i := from; i < from+n; i++ {
		for _, s := range subjects {
			wg.Add(1)
			m := &broker.Message{Subject: []byte(s), Payload: []byte(fmt.Sprintf("%s %d", s, i))}
			if err := st.Publish(m, func(_ broker.PubAck, err error) {
				if err != nil {
					t.Error(err)
				}
				wg.Done()
			}); err != nil {
				t.Fatal(err)
			}
		}
	}
	wg.Wait()
}
