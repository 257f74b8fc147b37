package natsgw

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ledgemq/ledge/broker"
)

// jsGateway is a broker in a folder and a gateway that serves it.
type jsGateway struct {
	*gateway
	b   *broker.Broker
	dir string
}

// startJS opens a broker in dir (a new temporary folder when empty) and a
// gateway serving it on 127.0.0.1; both stop with the test or with stop.
func startJS(t testing.TB, portable bool, dir string, addr string) *jsGateway {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := broker.Open(broker.Options{Dir: dir, Logger: logger, StateFlushInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatalf("open broker: %v", err)
	}
	g := startGateway(t, portable, Options{Broker: b, Logger: logger}, addr)
	jg := &jsGateway{gateway: g, b: b, dir: dir}
	t.Cleanup(jg.stop)
	return jg
}

// stop shuts the gateway, then the broker.
func (g *jsGateway) stop() {
	g.gateway.stop()
	_ = g.b.Close()
}

func newJS(t testing.TB, url string, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc := connect(t, url, opts...)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestJetStreamBasics(t *testing.T) {
	forEachTransport(t, func(t *testing.T, portable bool) {
		g := startJS(t, portable, "", "")
		_, js := newJS(t, g.url)
		ctx := ctxT(t)
		s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}})
		if err != nil {
			t.Fatalf("create stream: %v", err)
		}
		for i := 1; i <= 10; i++ {
			ack, err := js.Publish(ctx, "orders.new", []byte(fmt.Sprint(i)))
			if err != nil {
				t.Fatalf("publish %d: %v", i, err)
			}
			if ack.Stream != "ORDERS" || ack.Sequence != uint64(i) {
				t.Fatalf("publish %d: ack %+v", i, ack)
			}
		}
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Msgs != 10 || info.State.LastSeq != 10 || info.Config.Name != "ORDERS" {
			t.Fatalf("info %+v", info.State)
		}
		c, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "proc", AckPolicy: jetstream.AckExplicitPolicy})
		if err != nil {
			t.Fatalf("create consumer: %v", err)
		}
		batch, err := c.Fetch(10, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			md, err := m.Metadata()
			if err != nil {
				t.Fatal(err)
			}
			if md.Sequence.Stream != uint64(n) || md.Stream != "ORDERS" || md.Consumer != "proc" || md.NumDelivered != 1 {
				t.Fatalf("metadata %+v", md)
			}
			if string(m.Data()) != fmt.Sprint(n) {
				t.Fatalf("message %d: %q", n, m.Data())
			}
			if err := m.DoubleAck(ctx); err != nil {
				t.Fatalf("ack %d: %v", n, err)
			}
		}
		if batch.Error() != nil || n != 10 {
			t.Fatalf("fetched %d, err %v", n, batch.Error())
		}
		ci, err := c.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ci.NumAckPending != 0 || ci.NumPending != 0 || ci.AckFloor.Stream != 10 {
			t.Fatalf("consumer info %+v", ci)
		}
		// Nothing more: a no-wait fetch ends at once.
		batch, err = c.FetchNoWait(5)
		if err != nil {
			t.Fatal(err)
		}
		for range batch.Messages() {
			t.Fatal("unexpected message")
		}
		if batch.Error() != nil {
			t.Fatalf("no-wait fetch: %v", batch.Error())
		}
	})
}

// apiCall sends a raw API request and decodes the answer.
func apiCall(t testing.TB, nc *nats.Conn, subject string, body string) map[string]any {
	t.Helper()
	m, err := nc.Request(subject, []byte(body), 5*time.Second)
	if err != nil {
		t.Fatalf("%s: %v", subject, err)
	}
	var out map[string]any
	if err := json.Unmarshal(m.Data, &out); err != nil {
		t.Fatalf("%s: answer %q: %v", subject, m.Data, err)
	}
	return out
}

// errCode returns the err_code of an API answer, 0 without an error.
func errCode(resp map[string]any) int {
	e, ok := resp["error"].(map[string]any)
	if !ok {
		return 0
	}
	n, _ := e["err_code"].(float64)
	return int(n)
}

var _ = errors.Is
var _ = sync.Mutex{}
var _ atomic.Int64
