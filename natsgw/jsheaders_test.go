package natsgw

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/ledgemq/ledge/broker"
	"github.com/ledgemq/ledge/log"
)

func TestParseHeaders(t *testing.T) {
	cases := []struct {
		name, block string
		ok          bool
		want        []string // key=value
	}{
		{"empty block", "NATS/1.0\r\n\r\n", true, nil},
		{"two headers", "NATS/1.0\r\nNats-Msg-Id: a1\r\nTrace:  x y \r\n\r\n", true, []string{"Nats-Msg-Id=a1", "Trace=x y"}},
		{"repeated key", "NATS/1.0\r\nK: 1\r\nK: 2\r\n\r\n", true, []string{"K=1", "K=2"}},
		{"status line", "NATS/1.0 503\r\n\r\n", true, nil},
		{"value with colon", "NATS/1.0\r\nUrl: http://x\r\n\r\n", true, []string{"Url=http://x"}},
		{"no version", "HTTP/1.1\r\nK: v\r\n\r\n", false, nil},
		{"line without colon", "NATS/1.0\r\nnocolon\r\n\r\n", false, nil},
		{"empty key", "NATS/1.0\r\n: v\r\n\r\n", false, nil},
	}
	for _, c := range cases {
		hdrs, ok := ParseHeaders(nil, []byte(c.block))
		if ok != c.ok {
			t.Errorf("%s: ok = %v", c.name, ok)
			continue
		}
		if !ok {
			continue
		}
		var got []string
		for _, h := range hdrs {
			got = append(got, string(h.Key)+"="+string(h.Value))
		}
		if len(got) != len(c.want) {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
			continue
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("%s: got %q, want %q", c.name, got, c.want)
			}
		}
	}
}

func TestParseHeadersDoesNotAllocate(t *testing.T) {
	block := []byte("NATS/1.0\r\nNats-Msg-Id: abc\r\nNats-Expected-Last-Sequence: 12\r\nTrace: 1\r\n\r\n")
	dst := make([]log.Header, 0, 8)
	if n := testing.AllocsPerRun(100, func() { dst, _ = ParseHeaders(dst[:0], block) }); n != 0 {
		t.Errorf("ParseHeaders allocates %.1f times", n)
	}
}

// FuzzParseHeaders: any input parses or is refused without panic, and
// what parses is rebuilt into a block that parses to the same headers.
func FuzzParseHeaders(f *testing.F) {
	for _, s := range []string{"NATS/1.0\r\n\r\n", "NATS/1.0\r\nK: v\r\n\r\n", "NATS/1.0 404 No Messages\r\n\r\n", "NATS/1.0\r\nK:v\nL: w\r\n", "NATS/1.0\r\n:\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		hdrs, ok := ParseHeaders(nil, b)
		if !ok {
			return
		}
		again, ok := ParseHeaders(nil, appendHeaderBlock(nil, "", hdrs))
		if !ok || len(again) != len(hdrs) {
			t.Fatalf("rebuilt block of %q does not parse back", b)
		}
		for i := range hdrs {
			if !bytes.Equal(hdrs[i].Key, again[i].Key) || !bytes.Equal(hdrs[i].Value, again[i].Value) {
				t.Fatalf("header %d of %q: %q: %q became %q: %q", i, b, hdrs[i].Key, hdrs[i].Value, again[i].Key, again[i].Value)
			}
		}
	})
}

// TestUncapturedPublishDoesNotAllocate: with a broker and streams on other
// subjects, the core pub/sub path stays free of allocation.
func TestUncapturedPublishDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race")
	}
	b, err := broker.Open(broker.Options{Dir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := b.AddStream(broker.StreamConfig{Name: "OTHER", Subjects: []string{"other.>"}, Storage: broker.MemoryStorage}); err != nil {
		t.Fatal(err)
	}
	srv := NewServer(Options{Broker: b, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	var subConn, pubConn sink
	sub := srv.Open(&subConn, "127.0.0.1")
	feedAll(t, sub, "CONNECT {\"headers\":true}\r\nSUB site.*.temp 1\r\n")
	pub := srv.Open(&pubConn, "127.0.0.1")
	feedAll(t, pub, "CONNECT {\"headers\":true}\r\n")
	msg := []byte("PUB site.42.temp 4\r\n21.5\r\nHPUB site.42.temp 12 16\r\nNATS/1.0\r\n\r\nbody\r\n")
	allocs := testing.AllocsPerRun(500, func() {
		subConn.out = subConn.out[:0]
		if _, err := pub.Feed(msg); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("publishing beside streams allocates %.1f times per PUB/HPUB pair", allocs)
	}
}

// BenchmarkPublishCaptured measures publishes without a reply into a
// memory stream: the gateway's header parsing and the broker's store.
func BenchmarkPublishCaptured(b *testing.B) {
	br, err := broker.Open(broker.Options{Dir: b.TempDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	defer br.Close()
	if _, err := br.AddStream(broker.StreamConfig{Name: "S", Subjects: []string{"site.>"}, Storage: broker.MemoryStorage, MaxMsgs: 10000}); err != nil {
		b.Fatal(err)
	}
	srv := NewServer(Options{Broker: br, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	var pubConn sink
	pub := srv.Open(&pubConn, "127.0.0.1")
	msg := []byte("HPUB site.42.temp 29 45\r\nNATS/1.0\r\nTrace-Id: 12345\r\n\r\n0123456789abcdef\r\n")
	b.SetBytes(16)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := pub.Feed(msg); err != nil {
			b.Fatal(err)
		}
	}
	time.Sleep(0)
}

// TestOutletDeliverDoesNotAllocate: a consumer's delivery, its ack
// subject and its rebuilt header block cost no allocation once the
// scratch buffers have grown.
func TestOutletDeliverDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race")
	}
	srv := newTestServer()
	var conn sink
	ss := srv.Open(&conn, "127.0.0.1")
	feedAll(t, ss, "CONNECT {\"headers\":true}\r\nSUB _INBOX.abc.* 1\r\n")
	d := &broker.Delivery{
		Stream: "ORDERS", Consumer: "workers", Subject: []byte("orders.new"),
		Headers:   []log.Header{{Key: []byte("Nats-Msg-Id"), Value: []byte("id-1")}},
		Payload:   []byte("hello"),
		StreamSeq: 12, ConsumerSeq: 7, Deliveries: 1, Time: 1764000000000000000, Pending: 3,
	}
	o := outlet{srv}
	allocs := testing.AllocsPerRun(500, func() {
		conn.out = conn.out[:0]
		if !o.Deliver("_INBOX.abc.1", d) {
			t.Fatal("not delivered")
		}
	})
	if allocs != 0 {
		t.Errorf("Deliver allocates %.1f times per message", allocs)
	}
	// The MSG line names the stored message's own subject, as nats-server
	// sends it; the inbox only chooses the subscription.
	want := "HMSG orders.new 1 $JS.ACK.ORDERS.workers.1.12.7.1764000000000000000.3 31 36\r\nNATS/1.0\r\nNats-Msg-Id: id-1\r\n\r\nhello\r\n"
	if string(conn.out) != want {
		t.Errorf("delivered %q, want %q", conn.out, want)
	}
}

// TestPubAckDoesNotAllocate: the gateway's part of a PubAck (the pending
// reply, the JSON, the delivery) allocates nothing.
func TestPubAckDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race")
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	br, err := broker.Open(broker.Options{Dir: t.TempDir(), Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	defer br.Close()
	if _, err := br.AddStream(broker.StreamConfig{Name: "S", Subjects: []string{"site.>"}, Storage: broker.MemoryStorage, MaxMsgs: 10}); err != nil {
		t.Fatal(err)
	}
	srv := NewServer(Options{Broker: br, Logger: logger})
	var conn sink
	ss := srv.Open(&conn, "127.0.0.1")
	feedAll(t, ss, "CONNECT {\"headers\":true}\r\nSUB _INBOX.x.* 1\r\n")
	withReply := []byte("PUB site.42.temp _INBOX.x.1 4\r\n21.5\r\n")
	without := []byte("PUB site.42.temp 4\r\n21.5\r\n")
	measure := func(msg []byte) float64 {
		return testing.AllocsPerRun(500, func() {
			conn.out = conn.out[:0]
			if _, err := ss.Feed(msg); err != nil {
				t.Fatal(err)
			}
		})
	}
	// One more is allowed: the broker wraps the callback in a closure of
	// its own (Stream.store); the gateway's part is pooled.
	base, acked := measure(without), measure(withReply)
	if acked > base+1 {
		t.Errorf("a publish with a PubAck allocates %.1f times, without %.1f", acked, base)
	}
	if want := "MSG _INBOX.x.1 1 "; !bytes.HasPrefix(conn.out, []byte(want)) || !bytes.Contains(conn.out, []byte(`{"stream":"S","seq":`)) {
		t.Errorf("PubAck %q", conn.out)
	}
}

// BenchmarkPublishBesideStreams is BenchmarkPublish's subs=1 case with a
// broker whose streams capture other subjects (as the MQTT gateway's
// always do): the cost of the capture lookup on the core path.
func BenchmarkPublishBesideStreams(b *testing.B) {
	for _, streams := range []bool{false, true} {
		b.Run(fmt.Sprintf("streams=%v", streams), func(b *testing.B) {
			logger := slog.New(slog.NewTextHandler(io.Discard, nil))
			br, err := broker.Open(broker.Options{Dir: b.TempDir(), Logger: logger})
			if err != nil {
				b.Fatal(err)
			}
			defer br.Close()
			if streams {
				if _, err := br.AddStream(broker.StreamConfig{Name: "OTHER", Subjects: []string{"other.>"}, Storage: broker.MemoryStorage}); err != nil {
					b.Fatal(err)
				}
			}
			srv := NewServer(Options{Broker: br, Logger: logger})
			var subConn, pubConn sink
			sub := srv.Open(&subConn, "127.0.0.1")
			if _, err := sub.Feed([]byte("SUB site.*.temp 1\r\n")); err != nil {
				b.Fatal(err)
			}
			pub := srv.Open(&pubConn, "127.0.0.1")
			msg := append([]byte("PUB site.42.temp 16\r\n"), "0123456789abcdef\r\n"...)
			read := bytes.Repeat(msg, 64)
			b.SetBytes(16)
			b.ReportAllocs()
			for b.Loop() {
				subConn.out = subConn.out[:0]
				if _, err := pub.Feed(read); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*64)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
