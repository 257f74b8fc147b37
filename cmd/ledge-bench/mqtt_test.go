package main

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ledgemq/ledge/broker"
	"github.com/ledgemq/ledge/mqttgw"
	lnet "github.com/ledgemq/ledge/net"
	"github.com/ledgemq/ledge/router"
)

// startMQTTLedge serves ledge's MQTT gateway on 127.0.0.1 with a broker
// in a temporary folder, as mqttgw's own tests and cmd/ledge do, and
// returns its mqtt:// URL.
func startMQTTLedge(t *testing.T) string {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := broker.Open(broker.Options{Dir: t.TempDir(), Logger: logger})
	if err != nil {
		t.Fatalf("open broker: %v", err)
	}
	live := router.New[broker.Receiver](router.Options{})
	srv, err := mqttgw.NewServer(mqttgw.Options{Logger: logger}, live, b)
	if err != nil {
		t.Fatalf("mqtt server: %v", err)
	}
	ln, err := lnet.Listen("tcp", "127.0.0.1:0", srv.Handler(), lnet.Options{MaxInput: srv.MaxInput()})
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ln.Shutdown(ctx)
		srv.Close()
		if err := b.Close(); err != nil {
			t.Errorf("close broker: %v", err)
		}
	})
	return "mqtt://" + ln.Addr().String()
}

func TestMQTTScenariosAgainstLedge(t *testing.T) {
	url := startMQTTLedge(t)
	cases := []struct {
		args           []string
		sent, received uint64
	}{
		{[]string{"-scenario", "pubsub", "-clients", "2", "-count", "3000"}, 3000, 3000},
		{[]string{"-scenario", "fanout", "-clients", "3", "-count", "2000", "-subject", "site/{n}/temp"}, 2000, 6000},
		{[]string{"-scenario", "fanin", "-clients", "20", "-count", "4000", "-subject", "site/{n}/temp", "-size", "100"}, 4000, 4000},
		{[]string{"-scenario", "fanin", "-clients", "20", "-count", "4000", "-subject", "site/{n}/temp", "-qos", "1", "-inflight", "8"}, 4000, 4000},
		{[]string{"-scenario", "fanin", "-clients", "5", "-count", "2000", "-qos", "1", "-persistent"}, 2000, 2000},
		{[]string{"-scenario", "fanin", "-clients", "5", "-count", "2000", "-qos", "2"}, 2000, 2000},
		{[]string{"-scenario", "fanin", "-clients", "5", "-count", "2000", "-qos", "1", "-mqtt-version", "5"}, 2000, 2000},
		{[]string{"-scenario", "pubsub", "-count", "1000", "-mqtt-version", "5", "-persistent", "-qos", "1"}, 1000, 1000},
		{[]string{"-scenario", "queue", "-clients", "3", "-pubs", "2", "-count", "3000"}, 3000, 3000},
		{[]string{"-scenario", "queue", "-clients", "3", "-count", "1000", "-qos", "1", "-mqtt-version", "5"}, 1000, 1000},
		{[]string{"-scenario", "pubsub", "-count", "300", "-size", "70000", "-warmup", "100ms", "-max-ahead", "16"}, 300, 300},
		{[]string{"-scenario", "fanin", "-clients", "20", "-count", "20000", "-max-ahead", "500"}, 20000, 20000},
		{[]string{"-scenario", "fanout", "-clients", "4", "-count", "2000", "-max-ahead", "100"}, 2000, 8000},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			res := bench(t, url, append([]string{"-proto", "mqtt"}, c.args...)...)
			exact(t, res, c.sent, c.received)
			if res.Receive.Bytes != res.Receive.Msgs*uint64(res.Size) {
				t.Errorf("received %d bytes in %d messages of %d", res.Receive.Bytes, res.Receive.Msgs, res.Size)
			}
		})
	}
	t.Run("pub", func(t *testing.T) {
		res := bench(t, url, "-proto", "mqtt", "-scenario", "pub", "-clients", "2", "-count", "5001", "-qos", "1")
		if res.Errors != 0 || res.Publish.Msgs != 5001 || res.Receive != nil {
			t.Errorf("pub: %+v", res)
		}
	})
}

// Paced devices beyond schedThreshold share a few goroutines; each still
// sends at its rate, and every message arrives.
func TestMQTTManyPacedDevices(t *testing.T) {
	url := startMQTTLedge(t)
	res := bench(t, url, "-proto", "mqtt", "-scenario", "fanin", "-clients", "500", "-rate", "4",
		"-duration", "1500ms", "-subject", "site/{n}/temp", "-size", "100")
	if res.Delivery == nil || res.Delivery.Lost != 0 || res.Delivery.Duplicates != 0 || res.Errors != 0 {
		t.Fatalf("delivery %+v, errors %d (%s)", res.Delivery, res.Errors, res.FirstError)
	}
	// 500 devices at 4 a second for 1.5 s, the first message of each
	// spread over the first quarter second: about 3,000.
	if n := res.Publish.Msgs; n < 2500 || n > 3600 {
		t.Errorf("published %d, want about 3000", n)
	}
}

// Idle connections stay up past the server's 1.5 x keep alive only if
// the client pings: the scenario proves it does.
func TestMQTTIdleKeepsConnectionsAlive(t *testing.T) {
	url := startMQTTLedge(t)
	res := bench(t, url, "-proto", "mqtt", "-scenario", "idle", "-clients", "300", "-duration", "4s", "-keepalive", "2s")
	if res.Idle == nil || res.Idle.Opened != 300 || res.Idle.Connected != 300 || res.Errors != 0 {
		t.Fatalf("idle %+v, errors %d (%s)", res.Idle, res.Errors, res.FirstError)
	}
}

// A broker that is not there is an error, not a hang.
func TestMQTTNoBroker(t *testing.T) {
	_, err := benchErr(t, "mqtt://127.0.0.1:1", "-proto", "mqtt", "-scenario", "pubsub", "-count", "10")
	if err == nil || !strings.Contains(err.Error(), "connect") {
		t.Errorf("dial to a closed port: %v", err)
	}
}
