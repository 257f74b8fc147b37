package natsgw

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ledgemq/ledge/broker"
)

// FuzzJetStreamOps feeds a session publishes on the subjects the
// JetStream layer parses on the event loop (acks, flow-control replies,
// pull requests, captured publishes with headers): whatever the bytes,
// the session neither panics nor fails, and the stream stays consistent.
func FuzzJetStreamOps(f *testing.F) {
	seeds := []struct{ subject, hdr, payload string }{
		{"$JS.ACK.S.c.1.1.1.0.0", "", "+ACK"},
		{"$JS.ACK.S.c.1.1.1.0.0", "", "-NAK {\"delay\":1000}"},
		{"$JS.ACK.S.c.1.1.1.0.0", "", "+NXT {\"batch\":2}"},
		{"$JS.ACK.S.c.1.1.1.0.0", "", "+TERM why"},
		{"$JS.ACK.d.a.S.c.1.1.1.0.0.t.x", "", "+WPI"},
		{"$JS.FC.S.c.1", "", ""},
		{"$JS.API.CONSUMER.MSG.NEXT.S.c", "", "{\"batch\":3,\"no_wait\":true}"},
		{"$JS.API.CONSUMER.MSG.NEXT.S.c", "", "7"},
		{"s.x", "NATS/1.0\r\nNats-Msg-Id: 1\r\nNats-Expected-Last-Sequence: 0\r\n\r\n", "p"},
		{"s.x", "NATS/1.0\r\nNats-Expected-Last-Subject-Sequence: x\r\n\r\n", "p"},
	}
	for _, s := range seeds {
		f.Add(s.subject, s.hdr, s.payload)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := broker.Open(broker.Options{Dir: f.TempDir(), Logger: logger})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { b.Close() })
	st, err := b.AddStream(broker.StreamConfig{Name: "S", Subjects: []string{"s.>"}, Storage: broker.MemoryStorage, MaxMsgs: 100})
	if err != nil {
		f.Fatal(err)
	}
	if _, err := st.AddConsumer(broker.ConsumerConfig{Name: "c", Durable: true, AckWait: time.Second}, broker.CreateOrUpdate); err != nil {
		f.Fatal(err)
	}
	srv := NewServer(Options{Broker: b, Logger: logger})
	f.Fuzz(func(t *testing.T, subject, hdr, payload string) {
		var conn lockedSink
		ss := srv.Open(&conn, "127.0.0.1")
		defer ss.Closed()
		in := "CONNECT {\"headers\":true}\r\nSUB _INBOX.> 1\r\n"
		if hdr == "" {
			in += fmt.Sprintf("PUB %s _INBOX.r %d\r\n%s\r\n", subject, len(payload), payload)
		} else {
			in += fmt.Sprintf("HPUB %s _INBOX.r %d %d\r\n%s%s\r\n", subject, len(hdr), len(hdr)+len(payload), hdr, payload)
		}
		// Protocol errors (a subject with a space) are the parser's
		// business; only a panic or an inconsistent stream fails here.
		_, _ = ss.Feed([]byte(in))
		info := st.Info()
		if info.State.Msgs > 100 || (info.State.Msgs > 0 && info.State.FirstSeq > info.State.LastSeq) {
			t.Fatalf("stream state %+v", info.State)
		}
	})
}

// lockedSink is a connection written from the broker's goroutines too.
type lockedSink struct{ n atomic.Int64 }

func (s *lockedSink) Write(b []byte) error       { s.n.Add(int64(len(b))); return nil }
func (s *lockedSink) Congested() bool            { return false }
func (s *lockedSink) PauseReading(time.Duration) {}

// TestConsumeStream: nats.go's Consume (pull requests kept topped up, with
// heartbeats) reads a stream that is written while it runs.
func TestConsumeStream(t *testing.T) {
	g := startJS(t, false, "", "")
	_, js := newJS(t, g.url)
	ctx := ctxT(t)
	s, _ := js.CreateStream(ctx, jetstream.StreamConfig{Name: "C", Subjects: []string{"c"}})
	c, _ := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "c", AckPolicy: jetstream.AckExplicitPolicy})
	const total = 3000
	got := make(chan int, total)
	var next atomic.Int64
	cc, err := c.Consume(func(m jetstream.Msg) {
		md, _ := m.Metadata()
		if want := next.Add(1); int64(md.Sequence.Stream) != want {
			t.Errorf("got sequence %d, want %d", md.Sequence.Stream, want)
		}
		m.Ack()
		got <- 1
	}, jetstream.PullMaxMessages(100), jetstream.PullHeartbeat(500*time.Millisecond), jetstream.PullExpiry(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Stop()
	for i := 0; i < total; i++ {
		if _, err := js.PublishAsync("c", []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
		if i%1000 == 999 {
			<-js.PublishAsyncComplete()
			time.Sleep(300 * time.Millisecond) // let requests expire and be renewed
		}
	}
	for i := 0; i < total; i++ {
		select {
		case <-got:
		case <-ctx.Done():
			t.Fatalf("consumed %d of %d", i, total)
		}
	}
	waitFor(t, func() bool {
		ci, _ := c.Info(ctx)
		return ci.NumAckPending == 0 && ci.AckFloor.Stream == total
	}, "every message acknowledged")
}

// FuzzAPIRequest: any administrative request, subject and body, is
// answered (or ignored) without a panic.
func FuzzAPIRequest(f *testing.F) {
	for _, s := range [][2]string{
		{"INFO", ""},
		{"STREAM.CREATE.S", `{"name":"S","subjects":["f.>"],"max_msgs":-1,"consumer_limits":{}}`},
		{"STREAM.UPDATE.S", `{"name":"S","subjects":["f.*"],"max_age":1000000000}`},
		{"STREAM.INFO.S", `{"subjects_filter":">","offset":3}`},
		{"STREAM.NAMES", `{"offset":-4,"subject":"f.*"}`},
		{"STREAM.LIST", `{"subject":">"}`},
		{"STREAM.PURGE.S", `{"filter":"f.a","keep":2}`},
		{"STREAM.MSG.GET.S", `{"seq":1}`},
		{"STREAM.MSG.GET.S", `{"last_by_subj":"f.a"}`},
		{"STREAM.MSG.DELETE.S", `{"seq":2}`},
		{"DIRECT.GET.S.f.a", ``},
		{"CONSUMER.CREATE.S.c.f.>", `{"stream_name":"S","config":{"name":"c","filter_subject":"f.>","backoff":[1,2],"max_deliver":3}}`},
		{"CONSUMER.DURABLE.CREATE.S.d", `{"stream_name":"S","config":{"deliver_subject":"x","flow_control":true,"idle_heartbeat":1000}}`},
		{"CONSUMER.LIST.S", `{"offset":1}`},
		{"CONSUMER.DELETE.S.c", ``},
		{"STREAM.DELETE.S", ``},
	} {
		f.Add(s[0], s[1])
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := broker.Open(broker.Options{Dir: f.TempDir(), Logger: logger})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { b.Close() })
	srv := NewServer(Options{Broker: b, Logger: logger})
	f.Fuzz(func(t *testing.T, subject, body string) {
		// Streams are kept to memory and few, so the fuzzer measures the
		// API, not the disk.
		body = strings.ReplaceAll(body, `"file"`, `"memory"`)
		if !strings.Contains(body, `"storage"`) && strings.HasPrefix(subject, "STREAM.CREATE.") {
			body = strings.Replace(body, "{", `{"storage":"memory",`, 1)
		}
		_ = srv.apiResponse(apiRequest{subject: subject, reply: "r", body: []byte(body)})
		if streams := b.Streams(); len(streams) > 20 {
			for _, st := range streams {
				b.DeleteStream(st.Name())
			}
		}
	})
}
