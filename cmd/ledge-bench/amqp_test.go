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
	"github.com/ledgemq/ledge/broker"
	lnet "github.com/ledgemq/ledge/net"
	"github.com/ledgemq/ledge/router"
)

// startAMQPLedge serves ledge's AMQP gateway on 127.0.0.1 with a broker
// in a temporary folder, as cmd/ledge does, and returns its amqp:// URL.
func startAMQPLedge(t testing.TB) string {
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
	gw, err := amqpgw.NewServer(amqpgw.Options{Logger: logger}, live, b)
	if err != nil {
		t.Fatalf("amqp server: %v", err)
	}
	ln, err := lnet.Listen("tcp", "127.0.0.1:0", gw.Handler(), lnet.Options{MaxInput: gw.MaxInput()})
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ln.Shutdown(ctx)
		gw.Close()
		if err := b.Close(); err != nil {
			t.Errorf("close broker: %v", err)
		}
	})
	return "amqp://guest:guest@" + ln.Addr().String() + "/"
}

func TestAMQPScenariosAgainstLedge(t *testing.T) {
	url := startAMQPLedge(t)
	cases := []struct {
		args           []string
		sent, received uint64
	}{
		{[]string{"-scenario", "pubsub", "-clients", "2", "-count", "3000"}, 3000, 3000},
		{[]string{"-scenario", "fanout", "-clients", "3", "-count", "2000", "-subject", "site.{n}.temp"}, 2000, 6000},
		{[]string{"-scenario", "fanout", "-clients", "3", "-count", "1000", "-subject", "logs", "-exchange", "amq.direct"}, 1000, 3000},
		{[]string{"-scenario", "fanin", "-clients", "5", "-count", "3000", "-subject", "site.{n}.temp", "-exchange", "bench.topic"}, 3000, 3000},
		{[]string{"-scenario", "queue", "-pubs", "4", "-subs", "4", "-count", "4000", "-subject", "jobs", "-exchange", "", "-durable", "-confirm", "-inflight", "64"}, 4000, 4000},
		{[]string{"-scenario", "queue", "-pubs", "4", "-subs", "4", "-count", "4000", "-subject", "jobs", "-exchange", "amq.direct", "-max-ahead", "1000"}, 4000, 4000},
		{[]string{"-scenario", "queue", "-clients", "3", "-count", "2000", "-prefetch", "1"}, 2000, 2000},
		{[]string{"-scenario", "queue", "-clients", "2", "-count", "2000", "-auto-ack"}, 2000, 2000},
		{[]string{"-scenario", "pubsub", "-count", "300", "-size", "300000", "-warmup", "100ms", "-max-ahead", "16", "-prefetch", "8"}, 300, 300},
		{[]string{"-scenario", "pubsub", "-count", "500", "-size", "64", "-confirm"}, 500, 500},
		{[]string{"-scenario", "reqrep", "-clients", "2", "-subs", "2", "-count", "300"}, 300, 300},
		{[]string{"-scenario", "reqrep", "-clients", "2", "-count", "300", "-reply-to", "queue", "-subject", "rpc", "-exchange", ""}, 300, 300},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			res := bench(t, url, append([]string{"-proto", "amqp"}, c.args...)...)
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
		res := bench(t, url, "-proto", "amqp", "-scenario", "pub", "-clients", "2", "-count", "5001", "-confirm")
		if res.Errors != 0 || res.Publish.Msgs != 5001 || res.Receive != nil {
			t.Errorf("pub: %+v", res)
		}
	})
}

// jspub stores into a durable queue with confirms; jsconsume then takes
// them from it with acks, and a second run finds nothing left.
func TestAMQPDurableQueue(t *testing.T) {
	url := startAMQPLedge(t)
	res := bench(t, url, "-proto", "amqp", "-scenario", "jspub", "-create-stream", "-stream", "ORDERS", "-clients", "3", "-count", "3000", "-max-pending", "100")
	if res.Errors != 0 || res.Publish.Msgs != 3000 || res.Acked == nil || res.Acked.Msgs != 3000 || res.Latency == nil || res.Latency.Count != 3000 {
		t.Fatalf("jspub: errors %d (%s), published %+v, acked %+v", res.Errors, res.FirstError, res.Publish, res.Acked)
	}
	res = bench(t, url, "-proto", "amqp", "-scenario", "jsconsume", "-stream", "ORDERS", "-clients", "2", "-count", "3000", "-max-pending", "50")
	if res.Errors != 0 || res.Receive.Msgs != 3000 || res.Delivery.Duplicates != 0 {
		t.Fatalf("jsconsume: errors %d (%s), received %+v, delivery %+v", res.Errors, res.FirstError, res.Receive, res.Delivery)
	}
	res = bench(t, url, "-proto", "amqp", "-scenario", "jsconsume", "-stream", "ORDERS", "-count", "10", "-grace", "300ms")
	if res.Receive.Msgs != 0 {
		t.Fatalf("a second jsconsume got %d messages of a drained queue", res.Receive.Msgs)
	}
}

// Idle AMQP connections are kept up by heartbeats: the broker closes a
// connection that misses two.
func TestAMQPIdleKeepsConnectionsAlive(t *testing.T) {
	url := startAMQPLedge(t)
	res := bench(t, url, "-proto", "amqp", "-scenario", "idle", "-clients", "50", "-duration", "3500ms", "-keepalive", "1s")
	if res.Idle == nil || res.Idle.Opened != 50 || res.Idle.Connected != 50 || res.Errors != 0 {
		t.Fatalf("idle %+v, errors %d (%s)", res.Idle, res.Errors, res.FirstError)
	}
}

// A broker that is not there is an error, not a hang; a queue that does
// not exist is named.
func TestAMQPErrors(t *testing.T) {
	_, err := benchErr(t, "amqp://127.0.0.1:1", "-proto", "amqp", "-scenario", "pubsub", "-count", "10")
	if err == nil || !strings.Contains(err.Error(), "connect") {
		t.Errorf("dial to a closed port: %v", err)
	}
	url := startAMQPLedge(t)
	_, err = benchErr(t, url, "-proto", "amqp", "-scenario", "jsconsume", "-stream", "NOPE", "-count", "10")
	if err == nil || !strings.Contains(err.Error(), "NOPE") || !strings.Contains(err.Error(), "404") {
		t.Errorf("a missing queue: %v", err)
	}
	_, err = benchErr(t, strings.Replace(url, "guest:guest", "guest:wrong", 1), "-proto", "amqp", "-count", "10")
	t.Logf("wrong password: %v", err)
}
