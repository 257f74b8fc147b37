package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestCtlQueues runs the broker, leaves a worker holding two messages
// unacknowledged, and reads the queue view "ledge ctl queues" prints.
func TestCtlQueues(t *testing.T) {
	var logs syncBuffer
	l, stop := startBrokerAll(t, filepath.Join(t.TempDir(), "data"), &logs)
	defer stop()
	addr := l["nats"]
	nc, err := nats.Connect("nats://" + addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "JOBS", Subjects: []string{"jobs.>"}, Retention: jetstream.WorkQueuePolicy})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "IDLE"}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if _, err := js.Publish(ctx, "jobs.resize", []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	c, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "workers", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := c.Fetch(2, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for range batch.Messages() {
		got++ // and never acknowledged
	}
	if got != 2 {
		t.Fatalf("fetched %d", got)
	}

	var out, errOut bytes.Buffer
	if err := runCtl(ctx, []string{"queues", "-url", "http://" + l["http"]}, env(nil), &out, &errOut); err != nil {
		t.Fatalf("ctl queues: %v\n%s", err, errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	want := [][]string{
		{"STREAM", "CONSUMER", "MESSAGES", "READY", "UNACKED", "REDELIVERED", "WAITING"},
		// The AMQP gateway's definitions.
		{"AMQP_meta", "-", "0", "-", "-", "-", "-"},
		{"IDLE", "-", "0", "-", "-", "-", "-"},
		{"JOBS", "workers", "5", "3", "2", "0", "0"},
		// The MQTT gateway's own streams: its persistent sessions'
		// queues show here too.
		{"MQTT_msgs", "-", "0", "-", "-", "-", "-"},
		{"MQTT_retained", "-", "0", "-", "-", "-", "-"},
		{"MQTT_sessions", "-", "0", "-", "-", "-", "-"},
	}
	if len(lines) != len(want) {
		t.Fatalf("ctl queues printed:\n%s", out.String())
	}
	for i, w := range want {
		if f := strings.Fields(lines[i]); strings.Join(f, " ") != strings.Join(w, " ") {
			t.Errorf("line %d: %q, want %q", i, f, w)
		}
	}
}
