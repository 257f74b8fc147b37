package natsgw

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// sink is a connection that keeps what is written to it.
type sink struct{ out []byte }

func (s *sink) Write(b []byte) error       { s.out = append(s.out, b...); return nil }
func (s *sink) Congested() bool            { return false }
func (s *sink) PauseReading(time.Duration) {}

func newTestServer() *Server {
	return NewServer(Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
}

func feedAll(t testing.TB, ss *Session, in string) {
	t.Helper()
	n, err := ss.Feed([]byte(in))
	if err != nil || n != len(in) {
		t.Fatalf("Feed(%q) = %d, %v", in, n, err)
	}
}

// TestPublishDoesNotAllocate pins the gateway's hot path: parsing a PUB,
// matching it, and writing a MSG to a plain subscriber and to one member of
// a queue group allocate nothing once the session's buffers have grown.
func TestPublishDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race")
	}
	srv := newTestServer()
	var subConn, pubConn sink
	sub := srv.Open(&subConn, "127.0.0.1")
	feedAll(t, sub, "CONNECT {\"headers\":true}\r\nSUB site.*.temp 1\r\nSUB site.> workers 2\r\nSUB site.> workers 3\r\n")
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
		t.Errorf("publishing allocates %.1f times per PUB/HPUB pair; the hot path must not allocate", allocs)
	}
	want := "MSG site.42.temp 1 4\r\n21.5\r\n"
	if got := string(subConn.out); len(got) < len(want) || got[:len(want)] != want {
		t.Errorf("subscriber got %q", got)
	}
}

// BenchmarkPublish measures one publisher's PUBs matched and delivered to
// each of subs subscribers, with perRead messages arriving in one read: a
// request arrives alone, a telemetry burst many at a time. An op is one
// read; msgs/s counts messages published.
func BenchmarkPublish(b *testing.B) {
	for _, bc := range []struct{ subs, perRead int }{{1, 1}, {1, 64}, {4, 1}, {4, 64}} {
		b.Run(fmt.Sprintf("subs=%d/perRead=%d", bc.subs, bc.perRead), func(b *testing.B) {
			srv := newTestServer()
			var pubConn sink
			conns := make([]sink, bc.subs)
			for i := range conns {
				ss := srv.Open(&conns[i], "127.0.0.1")
				if _, err := ss.Feed([]byte("SUB site.*.temp 1\r\n")); err != nil {
					b.Fatal(err)
				}
			}
			pub := srv.Open(&pubConn, "127.0.0.1")
			payload := make([]byte, 16)
			msg := append(append([]byte("PUB site.42.temp 16\r\n"), payload...), "\r\n"...)
			read := bytes.Repeat(msg, bc.perRead)
			b.SetBytes(int64(len(payload)))
			b.ReportAllocs()
			for b.Loop() {
				for i := range conns {
					conns[i].out = conns[i].out[:0]
				}
				if _, err := pub.Feed(read); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*bc.perRead)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// TestSpentSubscriptionsDoNotAccumulate plays a long-lived client that makes
// old-style requests (SUB, UNSUB <sid> 1, PUB, reply): the subscriptions
// its replies use up must not pile up in its session.
func TestSpentSubscriptionsDoNotAccumulate(t *testing.T) {
	srv := newTestServer()
	var reqConn, svcConn sink
	svc := srv.Open(&svcConn, "127.0.0.1")
	feedAll(t, svc, "SUB svc 1\r\n")
	req := srv.Open(&reqConn, "127.0.0.1")
	for i := 0; i < 10000; i++ {
		inbox := fmt.Sprintf("_INBOX.%d", i)
		feedAll(t, req, fmt.Sprintf("SUB %s %d\r\nUNSUB %d 1\r\nPUB svc %s 2\r\nhi\r\n", inbox, i+2, i+2, inbox))
		feedAll(t, svc, fmt.Sprintf("PUB %s 2\r\nok\r\n", inbox))
	}
	if n := len(req.subs); n > 2*minSweep {
		t.Errorf("after 10,000 one-shot requests the session holds %d subscriptions, want at most %d", n, 2*minSweep)
	}
	if n := srv.router.Count(); n != 1 {
		t.Errorf("router holds %d subscriptions, want only the service's", n)
	}
	if got := strings.Count(string(reqConn.out), "MSG _INBOX."); got != 10000 {
		t.Errorf("requester got %d replies, want 10000", got)
	}
}
