package bridge

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.mqtt.golang"
	"github.com/klauspost/compress/s2"
	"github.com/ledgemq/ledge/broker"
	"github.com/ledgemq/ledge/log"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func quickUplink(name, url string) Uplink {
	return Uplink{
		Name:         name,
		URLs:         []string{url},
		Prefix:       "edge1.",
		StallTimeout: 2 * time.Second,
		BackoffMin:   20 * time.Millisecond,
		BackoffMax:   200 * time.Millisecond,
	}
}

// TestForwardCapturesSubjects: -uplink-subjects captures into UPLINK_<name>
// and forwards under the prefix with message ids; forwarded messages leave
// the local disk.
func TestForwardCapturesSubjects(t *testing.T) {
	up := startUpstream(t, nil)
	up.addStream("UP", "edge1.>")
	e := openEdge(t, t.TempDir(), false)
	u := quickUplink("cloud", up.url())
	u.Subjects = []string{"tele.>"}
	e.startBridge(u)
	st, err := e.b.Stream("UPLINK_cloud")
	if err != nil {
		t.Fatal(err)
	}
	publishLocal(t, st, []string{"tele.a", "tele.b"}, 0, 500)
	waitFor(t, 10*time.Second, "1000 upstream", func() bool { return up.count("UP") == 1000 })
	msgs := up.read("UP")
	checkExactlyOnce(t, msgs, map[string]int{"tele.a": 500, "tele.b": 500})
	if s := msgs[0].Subject(); !strings.HasPrefix(s, "edge1.tele.") {
		t.Errorf("upstream subject %q, want the prefix", s)
	}
	if id := msgs[0].Headers().Get(broker.MsgIDHeader); id != "edge1:UPLINK_cloud:1" {
		t.Errorf("message id %q", id)
	}
	waitFor(t, 5*time.Second, "local backlog forwarded and removed", func() bool {
		s := e.status("cloud")
		return s.BacklogMsgs == 0 && st.Info().State.Msgs == 0
	})
	s := e.status("cloud")
	if s.State != "up" || s.Mode != "jetstream" || s.Forwarded != 1000 || s.Server == "" {
		t.Errorf("status %+v", s)
	}
}

// TestForwardOutage: 1,000 forwarded, the upstream stopped, 10,000 more
// published locally over MQTT QoS 1 and NATS, the upstream started again
// on the same store: all 11,000 upstream exactly once, in order per
// subject.
func TestForwardOutage(t *testing.T) {
	up := startUpstream(t, nil)
	up.addStream("UP", "edge1.>")
	e := openEdge(t, t.TempDir(), true)
	u := quickUplink("cloud", up.url())
	u.Subjects = []string{"site.>"}
	e.startBridge(u)

	nc, err := nats.Connect("nats://" + e.natsAt)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	publishNATS := func(subject string, from, n int) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for i := from; i < from+n; i++ {
			if _, err := js.PublishAsync(fmt.Sprintf("%s", subject), []byte(fmt.Sprintf("%s %d", subject, i))); err != nil {
				t.Fatal(err)
			}
		}
		select {
		case <-js.PublishAsyncComplete():
		case <-ctx.Done():
			t.Fatal("local publishes not confirmed")
		}
	}
	publishNATS("site.nats", 0, 1000)
	waitFor(t, 10*time.Second, "1000 upstream", func() bool { return up.count("UP") == 1000 })
	waitFor(t, 10*time.Second, "1000 acknowledged", func() bool { return e.status("cloud").BacklogMsgs == 0 })

	up.stop()
	waitFor(t, 10*time.Second, "uplink down", func() bool { return e.status("cloud").State != "up" })

	mc := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("tcp://" + e.mqttAt).SetClientID("dev1"))
	if tok := mc.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal("mqtt connect", tok.Error())
	}
	defer mc.Disconnect(0)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var toks []mqtt.Token
		for i := 0; i < 5000; i++ {
			toks = append(toks, mc.Publish("site/mqtt", 1, false, fmt.Sprintf("site.mqtt %d", i)))
		}
		for _, tok := range toks {
			if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
				t.Error("mqtt publish", tok.Error())
				return
			}
		}
	}()
	publishNATS("site.nats", 1000, 5000)
	wg.Wait()
	if t.Failed() {
		return
	}
	s := e.status("cloud")
	if s.BacklogMsgs != 10000 || s.State == "up" || s.LastError == "" {
		t.Fatalf("during the outage: %+v", s)
	}
	if s.OldestAge <= 0 || s.BacklogBytes == 0 {
		t.Errorf("backlog age %v, bytes %d", s.OldestAge, s.BacklogBytes)
	}

	up.start()
	waitFor(t, 20*time.Second, "11000 upstream", func() bool { return up.count("UP") >= 11000 })
	checkExactlyOnce(t, up.read("UP"), map[string]int{"site.nats": 6000, "site.mqtt": 5000})
	waitFor(t, 5*time.Second, "backlog gone", func() bool { return e.status("cloud").BacklogMsgs == 0 })
}

// TestForwardFlappingLink: a proxy drops the connection at random moments
// during a 50,000-message forward: nothing lost, nothing twice, and the
// bridge never holds more than its window.
func TestForwardFlappingLink(t *testing.T) {
	up := startUpstream(t, nil)
	up.addStream("UP", "edge1.>")
	p := startProxy(t, fmt.Sprintf("127.0.0.1:%d", up.opts.Port))
	e := openEdge(t, t.TempDir(), false)
	st, err := e.b.AddStream(broker.StreamConfig{Name: "DATA", Subjects: []string{"data.>"}})
	if err != nil {
		t.Fatal(err)
	}
	u := quickUplink("cloud", p.url())
	u.Streams = []string{"DATA"}
	u.Window = 256
	stop := make(chan struct{})
	go p.flap(stop, 5*time.Millisecond, 60*time.Millisecond)
	e.startBridge(u)
	subjects := []string{"data.1", "data.2", "data.3", "data.4", "data.5"}
	publishLocal(t, st, subjects, 0, 10000)
	maxQueue := 0
	waitFor(t, 120*time.Second, "50000 upstream", func() bool {
		maxQueue = max(maxQueue, len(e.br.uplinks[0].queue))
		return up.count("UP") >= 50000
	})
	close(stop)
	want := map[string]int{}
	for _, s := range subjects {
		want[s] = 10000
	}
	checkExactlyOnce(t, up.read("UP"), want)
	s := e.status("cloud")
	t.Logf("connections dropped %d, sessions %d, max queued %d", p.drops, s.Sessions, maxQueue)
	if s.Sessions < 3 {
		t.Errorf("only %d sessions: the link did not flap", s.Sessions)
	}
	if maxQueue > u.Window {
		t.Errorf("queue held %d messages, window %d", maxQueue, u.Window)
	}
}

// TestDownlinkAfterReconnect: a command published upstream while the
// gateway is cut off reaches an MQTT subscriber on the gateway once the
// link returns, through the durable upstream consumer.
func TestDownlinkAfterReconnect(t *testing.T) {
	up := startUpstream(t, nil)
	up.addStream("CMDS", "edge1.cmd.>")
	p := startProxy(t, fmt.Sprintf("127.0.0.1:%d", up.opts.Port))
	e := openEdge(t, t.TempDir(), true)
	u := quickUplink("cloud", p.url())
	u.Downlink = []string{"cmd.>"}
	u.DownlinkStream, u.DownlinkDurable = "CMDS", "edge1"
	e.startBridge(u)
	waitFor(t, 10*time.Second, "uplink up", func() bool { return e.status("cloud").State == "up" })

	got := make(chan string, 10)
	mc := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("tcp://" + e.mqttAt).SetClientID("dev7"))
	if tok := mc.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal("mqtt connect", tok.Error())
	}
	defer mc.Disconnect(0)
	if tok := mc.Subscribe("cmd/site42/#", 1, func(_ mqtt.Client, m mqtt.Message) {
		got <- m.Topic() + " " + string(m.Payload())
	}); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal("mqtt subscribe", tok.Error())
	}

	p.setDown(true)
	waitFor(t, 10*time.Second, "uplink down", func() bool { return e.status("cloud").State == "down" })
	nc, js := up.js()
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := js.Publish(ctx, "edge1.cmd.site42.valve", []byte("open")); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		t.Fatalf("delivered while down: %s", m)
	case <-time.After(200 * time.Millisecond):
	}
	p.setDown(false)
	select {
	case m := <-got:
		if m != "cmd/site42/valve open" {
			t.Errorf("got %q", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("command not delivered after reconnect")
	}
	if s := e.status("cloud"); s.Downlinked != 1 {
		t.Errorf("downlinked %d", s.Downlinked)
	}
}

// TestCoreModeAndCompression: an upstream without JetStream gets core
// publishes (at-least-once, to subscribers there), compressed with s2
// and marked.
func TestCoreModeAndCompression(t *testing.T) {
	up := startUpstream(t, func(o *server.Options) { o.JetStream = false })
	nc, err := nats.Connect(up.url())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	sub, err := nc.SubscribeSync("edge1.>")
	if err != nil {
		t.Fatal(err)
	}
	_ = nc.Flush()
	e := openEdge(t, t.TempDir(), false)
	u := quickUplink("cloud", up.url())
	u.Subjects = []string{"logs.>"}
	u.Compress = true
	e.startBridge(u)
	waitFor(t, 10*time.Second, "uplink up", func() bool { return e.status("cloud").State == "up" })
	st, _ := e.b.Stream("UPLINK_cloud")
	payload := strings.Repeat("all quiet on the line ", 20)
	for i := 0; i < 10; i++ {
		if err := st.Publish(&broker.Message{Subject: []byte("logs.x"), Payload: []byte(payload)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 10; i++ {
		m, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if m.Header.Get(CompressionHeader) != "s2" || len(m.Data) >= len(payload) {
			t.Fatalf("not compressed: %d bytes, header %q", len(m.Data), m.Header.Get(CompressionHeader))
		}
		d, err := s2.Decode(nil, m.Data)
		if err != nil || string(d) != payload {
			t.Fatalf("decoded %q, %v", d, err)
		}
	}
	if s := e.status("cloud"); s.Mode != "core" {
		t.Errorf("mode %q", s.Mode)
	}
}

// TestBadConfiguration: an unreachable upstream, wrong credentials and a
// missing upstream stream each give a clear error in the status, retries
// with backoff, and a broker that stores and serves as before.
func TestBadConfiguration(t *testing.T) {
	dead := fmt.Sprintf("nats://127.0.0.1:%d", freePort(t))
	authed := startUpstream(t, func(o *server.Options) { o.Username, o.Password = "cloud", "right" })
	nostream := startUpstream(t, nil)

	e := openEdge(t, t.TempDir(), true)
	unreachable := quickUplink("unreachable", dead)
	unreachable.Subjects = []string{"a.>"}
	wrongCreds := quickUplink("creds", authed.url())
	wrongCreds.User, wrongCreds.Password = "cloud", "wrong"
	wrongCreds.Subjects = []string{"b.>"}
	missing := quickUplink("missing", nostream.url())
	missing.Subjects = []string{"c.>"}
	named := quickUplink("named", nostream.url())
	named.Subjects = []string{"d.>"}
	named.UpstreamStream = "NOPE"
	e.startBridge(unreachable, wrongCreds, missing, named)

	nc, err := nats.Connect("nats://" + e.natsAt)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, s := range []string{"a.1", "b.1", "c.1", "d.1"} {
		if _, err := js.Publish(ctx, s, []byte("x")); err != nil {
			t.Fatalf("local publish %s with uplinks failing: %v", s, err)
		}
	}
	want := map[string]string{
		"unreachable": "connection refused",
		"creds":       "Authorization Violation",
		"missing":     "no upstream stream captures",
		"named":       "stream not found",
	}
	for name, text := range want {
		var s Status
		waitFor(t, 10*time.Second, name+" error", func() bool {
			s = e.status(name)
			return strings.Contains(s.LastError, text)
		})
		if s.State == "up" {
			t.Errorf("%s: state %s with error %q", name, s.State, s.LastError)
		}
		first := s.LastErrAt
		waitFor(t, 10*time.Second, name+" retried", func() bool { return e.status(name).LastErrAt.After(first) })
		if s.BacklogMsgs != 1 {
			t.Errorf("%s: backlog %d", name, s.BacklogMsgs)
		}
	}
	// The broker serves as before: a local subscriber still gets messages.
	sub, err := nc.SubscribeSync("z.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Publish("z.1", []byte("still here")); err != nil {
		t.Fatal(err)
	}
	if _, err := sub.NextMsg(2 * time.Second); err != nil {
		t.Fatal(err)
	}
}

// TestStalledLinkReconnects: a link that stays up but whose
// acknowledgements stop coming is shown as stalled, not up, and is
// reconnected; what the upstream stored meanwhile is not stored twice.
func TestStalledLinkReconnects(t *testing.T) {
	up := startUpstream(t, nil)
	up.addStream("UP", "edge1.>")
	p := startProxy(t, fmt.Sprintf("127.0.0.1:%d", up.opts.Port))
	e := openEdge(t, t.TempDir(), false)
	u := quickUplink("cloud", p.url())
	u.Subjects = []string{"s.>"}
	u.DialTimeout = time.Second
	e.startBridge(u)
	waitFor(t, 10*time.Second, "uplink up", func() bool { return e.status("cloud").State == "up" })
	st, _ := e.b.Stream("UPLINK_cloud")

	p.frozen.Store(true)
	publishLocal(t, st, []string{"s.1"}, 0, 100)
	waitFor(t, 10*time.Second, "stalled shown", func() bool { return e.status("cloud").State == "stalled" })
	waitFor(t, 10*time.Second, "stall ends the session", func() bool {
		return strings.Contains(e.status("cloud").LastError, "stalled")
	})
	if n := up.count("UP"); n != 100 {
		t.Logf("upstream stored %d while its acknowledgements were lost", n)
	}
	p.frozen.Store(false)
	p.dropAll()
	waitFor(t, 10*time.Second, "backlog forwarded", func() bool {
		s := e.status("cloud")
		if os.Getenv("LEDGE_TEST_LOG") != "" {
			fmt.Fprintf(os.Stderr, "%+v\n", s)
		}
		return s.BacklogMsgs == 0
	})
	checkExactlyOnce(t, up.read("UP"), map[string]int{"s.1": 100})
}

// TestDiskBudget: over its budget the uplink's stream drops the oldest
// unforwarded messages and counts them, or refuses new publishes.
func TestDiskBudget(t *testing.T) {
	dead := fmt.Sprintf("nats://127.0.0.1:%d", freePort(t))
	e := openEdge(t, t.TempDir(), false)
	old := quickUplink("old", dead)
	old.Subjects = []string{"old.>"}
	old.MaxBytes = 64 << 10
	refuse := quickUplink("refuse", dead)
	refuse.Subjects = []string{"new.>"}
	refuse.MaxBytes = 64 << 10
	refuse.Budget = RefuseNew
	e.startBridge(old, refuse)
	payload := []byte(strings.Repeat("x", 100))
	sOld, _ := e.b.Stream("UPLINK_old")
	for i := 0; i < 2000; i++ {
		if err := sOld.Publish(&broker.Message{Subject: []byte("old.a"), Payload: payload}, nil); err != nil {
			t.Fatal(err)
		}
	}
	var s Status
	waitFor(t, 10*time.Second, "drops counted", func() bool {
		s = e.status("old")
		return s.Dropped > 0 && s.Dropped+s.BacklogMsgs == 2000
	})
	if s.BacklogBytes > 64<<10 {
		t.Errorf("backlog %d bytes over the budget", s.BacklogBytes)
	}
	sNew, _ := e.b.Stream("UPLINK_refuse")
	refused := 0
	for i := 0; i < 2000; i++ {
		if err := sNew.Publish(&broker.Message{Subject: []byte("new.a"), Payload: payload}, nil); err != nil {
			refused++
		}
	}
	if refused == 0 {
		t.Error("nothing refused over the budget")
	}
	if s := e.status("refuse"); s.Dropped != 0 || s.BacklogMsgs != uint64(2000-refused) {
		t.Errorf("refuse-new: %+v with %d refused", s, refused)
	}
}

// TestRateLimit: the uplink sends no faster than its byte rate.
func TestRateLimit(t *testing.T) {
	up := startUpstream(t, nil)
	up.addStream("UP", "edge1.>")
	e := openEdge(t, t.TempDir(), false)
	u := quickUplink("cloud", up.url())
	u.Subjects = []string{"r.>"}
	u.RateLimit = 100 << 10
	e.startBridge(u)
	st, _ := e.b.Stream("UPLINK_cloud")
	payload := []byte(strings.Repeat("y", 1000))
	start := time.Now()
	for i := 0; i < 300; i++ {
		if err := st.Publish(&broker.Message{Subject: []byte("r.a"), Payload: payload}, nil); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 20*time.Second, "300 upstream", func() bool { return up.count("UP") == 300 })
	// 300 KB at 100 KB/s with a second's burst: at least about 2 s.
	if d := time.Since(start); d < 1500*time.Millisecond {
		t.Errorf("300 KB went in %s at 100 KB/s", d)
	}
}

// TestWindowBytesBoundsLargeMessages: a stream of 64 KiB messages gets a
// window that fits the byte bound, so the uplink holds about a MiB, not
// 4,096 of them.
func TestWindowBytesBoundsLargeMessages(t *testing.T) {
	up := startUpstream(t, nil)
	up.addStream("UP", "edge1.>")
	e := openEdge(t, t.TempDir(), false)
	st, err := e.b.AddStream(broker.StreamConfig{Name: "BIG", Subjects: []string{"big.>"}})
	if err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, 64<<10)
	for i := 0; i < 200; i++ {
		if err := st.Publish(&broker.Message{Subject: []byte("big.a"), Payload: payload}, nil); err != nil {
			t.Fatal(err)
		}
	}
	u := quickUplink("cloud", up.url())
	u.Streams = []string{"BIG"}
	u.WindowBytes = 1 << 20
	e.startBridge(u)
	maxQueue := 0
	waitFor(t, 20*time.Second, "200 upstream", func() bool {
		maxQueue = max(maxQueue, len(e.br.uplinks[0].queue))
		return up.count("UP") == 200
	})
	c, err := st.Consumer("uplink_cloud")
	if err != nil {
		t.Fatal(err)
	}
	if w := c.Config().MaxAckPending; w != 16 {
		t.Errorf("window %d for 64 KiB messages in 1 MiB, want 16", w)
	}
	if maxQueue > 16 {
		t.Errorf("%d messages queued", maxQueue)
	}
}

// TestDownlinkCoreStoresLocally: a core downlink subscription republishes
// upstream messages locally without the prefix: to a live MQTT subscriber
// and into the local stream that captures the subject, s2 payloads
// decoded. A downlinked subject that the uplink forwards is not stored,
// so it cannot loop.
func TestDownlinkCoreStoresLocally(t *testing.T) {
	up := startUpstream(t, nil)
	e := openEdge(t, t.TempDir(), true)
	log, err := e.b.AddStream(broker.StreamConfig{Name: "CMDLOG", Subjects: []string{"cmd.>"}})
	if err != nil {
		t.Fatal(err)
	}
	u := quickUplink("cloud", up.url())
	u.Subjects = []string{"echo.>"}
	u.Downlink = []string{"cmd.>", "echo.>"}
	e.startBridge(u)
	waitFor(t, 10*time.Second, "uplink up", func() bool { return e.status("cloud").State == "up" })

	got := make(chan string, 10)
	mc := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("tcp://" + e.mqttAt).SetClientID("dev9"))
	if tok := mc.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal("mqtt connect", tok.Error())
	}
	defer mc.Disconnect(0)
	if tok := mc.Subscribe("cmd/#", 1, func(_ mqtt.Client, m mqtt.Message) {
		got <- m.Topic() + " " + string(m.Payload())
	}); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal("mqtt subscribe", tok.Error())
	}
	nc, err := nats.Connect(up.url())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	big := strings.Repeat("reboot now ", 10)
	m := nats.NewMsg("edge1.cmd.reboot")
	m.Header.Set(CompressionHeader, "s2")
	m.Data = s2.Encode(nil, []byte(big))
	if err := nc.PublishMsg(m); err != nil {
		t.Fatal(err)
	}
	if err := nc.Publish("edge1.echo.x", []byte("loop?")); err != nil {
		t.Fatal(err)
	}
	select {
	case g := <-got:
		if g != "cmd/reboot "+big {
			t.Errorf("got %q", g)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("downlinked command not delivered")
	}
	waitFor(t, 5*time.Second, "stored locally", func() bool { return log.Info().State.Msgs == 1 })
	waitFor(t, 5*time.Second, "both downlinked", func() bool { return e.status("cloud").Downlinked == 2 })
	if own, _ := e.b.Stream("UPLINK_cloud"); own.Info().State.LastSeq != 0 {
		t.Error("a downlinked message was captured by the uplink's own stream")
	}
}

// TestCatchUpOrder: after an outage, in-order sends the backlog before a
// message published once the link is back; newest-first sends that live
// message ahead of most of the backlog. Both forward everything exactly
// once, in order within each subject.
func TestCatchUpOrder(t *testing.T) {
	const backlog = 1000
	// A header pads each message to about 130 bytes on the link.
	pad := []log.Header{{Key: []byte("Pad"), Value: bytes.Repeat([]byte("p"), 100)}}
	publish := func(t *testing.T, st *broker.Stream, subject string, n int) {
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			m := &broker.Message{Subject: []byte(subject), Headers: pad, Payload: []byte(fmt.Sprintf("%s %d", subject, i))}
			if err := st.Publish(m, func(_ broker.PubAck, err error) {
				if err != nil {
					t.Error(err)
				}
				wg.Done()
			}); err != nil {
				t.Fatal(err)
			}
		}
		wg.Wait()
	}
	for _, order := range []CatchUp{InOrder, NewestFirst} {
		t.Run(order.String(), func(t *testing.T) {
			up := startUpstream(t, nil)
			up.addStream("UP", "edge1.>")
			e := openEdge(t, t.TempDir(), false)
			u := quickUplink("cloud", up.url())
			u.Subjects = []string{"n.>"}
			u.CatchUp = order
			u.Window = 16
			// The link takes about two seconds for the backlog after its
			// first second's burst, so the live message meets it draining.
			u.RateLimit = 40 << 10
			up.stop()
			e.startBridge(u)
			st, _ := e.b.Stream("UPLINK_cloud")
			publish(t, st, "n.old", backlog)
			up.start()
			waitFor(t, 20*time.Second, "uplink up", func() bool { return e.status("cloud").State == "up" })
			publish(t, st, "n.live", 1)
			waitFor(t, 30*time.Second, "all upstream", func() bool { return up.count("UP") >= backlog+1 })
			msgs := up.read("UP")
			checkExactlyOnce(t, msgs, map[string]int{"n.old": backlog, "n.live": 1})
			at := -1
			for i, m := range msgs {
				if m.Subject() == "edge1.n.live" {
					at = i
				}
			}
			t.Logf("%s: the live message is upstream at %d of %d", order, at, backlog+1)
			switch {
			case order == InOrder && at != backlog:
				t.Fatalf("in order: the live message is upstream at %d, want %d (after the backlog)", at, backlog)
			case order == NewestFirst && at >= backlog/2:
				t.Fatalf("newest first: the live message is upstream at %d, behind half the backlog of %d", at, backlog)
			}
			waitFor(t, 5*time.Second, "backlog gone", func() bool { return e.status("cloud").BacklogMsgs == 0 })
		})
	}
}
