package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ledgemq/ledge/amqpgw"
	"github.com/ledgemq/ledge/auth"
	"github.com/ledgemq/ledge/auth/authtest"
	"github.com/ledgemq/ledge/broker"
	lnet "github.com/ledgemq/ledge/net"
	"github.com/ledgemq/ledge/router"
	"github.com/ledgemq/ledge/stompgw"
)

// startSTOMPLedge serves ledge's STOMP gateway on 127.0.0.1, on an AMQP
// gateway and a broker in a temporary folder, as cmd/ledge does, and
// returns its stomp:// URL.
func startSTOMPLedge(t testing.TB, opts stompgw.Options) string {
	t.Helper()
	var w io.Writer = io.Discard
	if testing.Verbose() {
		w = os.Stderr
	}
	logger := slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
	b, err := broker.Open(broker.Options{Dir: t.TempDir(), Logger: logger})
	if err != nil {
		t.Fatalf("open broker: %v", err)
	}
	live := router.New[broker.Receiver](router.Options{})
	agw, err := amqpgw.NewServer(amqpgw.Options{Logger: logger}, live, b)
	if err != nil {
		t.Fatalf("amqp server: %v", err)
	}
	opts.Logger = logger
	gw, err := stompgw.NewServer(opts, agw)
	if err != nil {
		t.Fatalf("stomp server: %v", err)
	}
	ln, err := lnet.Listen("tcp", "127.0.0.1:0", gw.Handler(), lnet.Options{MaxInput: gw.MaxInput()})
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ln.Shutdown(ctx)
		agw.Close()
		if err := b.Close(); err != nil {
			t.Errorf("close broker: %v", err)
		}
	})
	return "stomp://guest:guest@" + ln.Addr().String()
}

func TestSTOMPScenariosAgainstLedge(t *testing.T) {
	url := startSTOMPLedge(t, stompgw.Options{})
	cases := []struct {
		args           []string
		sent, received uint64
	}{
		{[]string{"-scenario", "pubsub", "-clients", "2", "-count", "3000"}, 3000, 3000},
		{[]string{"-scenario", "fanout", "-clients", "3", "-count", "2000", "-subject", "/topic/site.{n}.temp"}, 2000, 6000},
		{[]string{"-scenario", "fanin", "-clients", "5", "-count", "3000", "-subject", "/topic/site.{n}.temp", "-ack", "client"}, 3000, 3000},
		{[]string{"-scenario", "fanin", "-clients", "2", "-count", "1000", "-subject", "/exchange/amq.topic/site.{n}.temp", "-ack", "auto"}, 1000, 1000},
		{[]string{"-scenario", "fanin", "-clients", "3", "-count", "1500", "-subject", "/queue/inbox"}, 1500, 1500},
		{[]string{"-scenario", "pubsub", "-clients", "2", "-count", "2000", "-subject", "/queue/pair.{n}"}, 2000, 2000},
		{[]string{"-scenario", "queue", "-pubs", "4", "-subs", "4", "-count", "4000"}, 4000, 4000},
		{[]string{"-scenario", "queue", "-pubs", "4", "-subs", "4", "-count", "4000", "-subject", "/queue/jobs", "-durable", "-confirm", "-inflight", "64"}, 4000, 4000},
		{[]string{"-scenario", "queue", "-pubs", "2", "-subs", "3", "-count", "3000", "-subject", "/queue/cumulative", "-ack", "client", "-prefetch", "10"}, 3000, 3000},
		{[]string{"-scenario", "queue", "-clients", "3", "-count", "2000", "-subject", "/queue/fair", "-prefetch", "1"}, 2000, 2000},
		{[]string{"-scenario", "queue", "-clients", "2", "-count", "2000", "-subject", "/queue/auto", "-ack", "auto", "-max-ahead", "500"}, 2000, 2000},
		{[]string{"-scenario", "pubsub", "-count", "300", "-size", "300000", "-warmup", "100ms", "-max-ahead", "16", "-prefetch", "8"}, 300, 300},
		{[]string{"-scenario", "pubsub", "-count", "500", "-confirm", "-durable", "-subject", "/queue/persistent"}, 500, 500},
		{[]string{"-scenario", "reqrep", "-clients", "2", "-subs", "2", "-count", "300"}, 300, 300},
		{[]string{"-scenario", "reqrep", "-clients", "3", "-count", "300", "-subject", "/queue/rpc", "-durable", "-ack", "client"}, 300, 300},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			res := bench(t, url, append([]string{"-proto", "stomp"}, c.args...)...)
			if res.Scenario == "reqrep" {
				if res.Errors != 0 || res.Acked == nil || res.Acked.Msgs != c.sent || res.Receive.Msgs != c.received {
					t.Errorf("reqrep: errors %d (%s), replies %+v, received %+v", res.Errors, res.FirstError, res.Acked, res.Receive)
				}
				return
			}
			exact(t, res, c.sent, c.received)
			if res.Receive.Bytes != res.Receive.Msgs*uint64(res.Size) {
				t.Errorf("received %d bytes in %d messages of %d", res.Receive.Bytes, res.Receive.Msgs, res.Size)
			}
		})
	}
	t.Run("pub", func(t *testing.T) {
		res := bench(t, url, "-proto", "stomp", "-scenario", "pub", "-clients", "2", "-count", "5001", "-confirm", "-durable", "-subject", "/queue/sink")
		if res.Errors != 0 || res.Publish.Msgs != 5001 || res.Receive != nil {
			t.Errorf("pub: %+v", res)
		}
	})
}

// Idle STOMP connections are kept up by heart-beats: ledge closes a
// connection silent for two of its intervals (1 s at the least).
func TestSTOMPIdleHeartBeats(t *testing.T) {
	url := startSTOMPLedge(t, stompgw.Options{})
	res := bench(t, url, "-proto", "stomp", "-scenario", "idle", "-clients", "50", "-duration", "3500ms", "-keepalive", "1s")
	if res.Idle == nil || res.Idle.Opened != 50 || res.Idle.Connected != 50 || res.Errors != 0 {
		t.Fatalf("idle %+v, errors %d (%s)", res.Idle, res.Errors, res.FirstError)
	}
}

// A broker that is not there is an error, not a hang; a refused login
// and a queue that does not exist are named.
func TestSTOMPErrors(t *testing.T) {
	_, err := benchErr(t, "stomp://127.0.0.1:1", "-proto", "stomp", "-count", "10")
	if err == nil || !strings.Contains(err.Error(), "connect") {
		t.Errorf("dial to a closed port: %v", err)
	}
	logins := auth.New(auth.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Policy: authtest.Policy(t, "[user bench]\npassword = plain:secret\nroles = admin\n")})
	t.Cleanup(logins.Close)
	url := startSTOMPLedge(t, stompgw.Options{Auth: logins})
	_, err = benchErr(t, url, "-proto", "stomp", "-count", "10")
	if err == nil || !strings.Contains(err.Error(), "access refused") {
		t.Errorf("a wrong login: %v", err)
	}
	good := strings.Replace(url, "guest:guest", "bench:secret", 1)
	_, err = benchErr(t, good, "-proto", "stomp", "-scenario", "fanin", "-subject", "/amq/queue/nope", "-count", "10")
	if err == nil || !strings.Contains(err.Error(), "not_found") || !strings.Contains(err.Error(), "nope") {
		t.Errorf("a missing queue: %v", err)
	}
	res := bench(t, good, "-proto", "stomp", "-scenario", "pubsub", "-count", "100")
	exact(t, res, 100, 100)
}
