package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// TestCtlListQueues leaves an AMQP worker holding one message
// unacknowledged and reads "ledge ctl list_queues" as rabbitmqctl prints it.
func TestCtlListQueues(t *testing.T) {
	var logs syncBuffer
	dataDir := filepath.Join(t.TempDir(), "data")
	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan listening, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-nats-addr", "127.0.0.1:0", "-mqtt-addr", "", "-mqtt-ws-addr", "", "-amqp-addr", "127.0.0.1:0", "-stomp-addr", "127.0.0.1:0", "-stomp-ws-addr", "127.0.0.1:0", "-http-addr", "127.0.0.1:0", "-data-dir", dataDir}, env(nil), &logs,
			func(l listening) { addrs <- l })
	}()
	var l listening
	select {
	case l = <-addrs:
	case err := <-done:
		t.Fatalf("broker did not start: %v\n%s", err, logs.String())
	case <-time.After(10 * time.Second):
		t.Fatal("broker did not start in time")
	}
	defer func() { cancel(); <-done }()

	conn, err := amqp.Dial("amqp://guest:guest@" + l["amqp"] + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, _ := conn.Channel()
	if _, err := ch.QueueDeclare("task_queue", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", "task_queue", false, false, amqp.Publishing{DeliveryMode: 2, Body: []byte("job")})
		if err != nil {
			t.Fatal(err)
		}
		if ok, _ := dc.WaitContext(ctx); !ok {
			t.Fatal("not confirmed")
		}
	}
	_ = ch.Qos(1, 0, false)
	msgs, err := ch.Consume("task_queue", "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-msgs: // and never acknowledged
	case <-time.After(5 * time.Second):
		t.Fatal("no delivery")
	}

	var out, errOut bytes.Buffer
	cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
	defer ccancel()
	if err := runCtl(cctx, []string{"list_queues", "-url", "http://" + l["http"], "name", "messages_ready", "messages_unacknowledged", "consumers", "messages"}, env(nil), &out, &errOut); err != nil {
		t.Fatalf("ctl list_queues: %v\n%s", err, errOut.String())
	}
	want := "Listing queues for vhost / ...\nname\tmessages_ready\tmessages_unacknowledged\tconsumers\tmessages\ntask_queue\t2\t1\t1\t3\n"
	if out.String() != want {
		t.Fatalf("ctl list_queues printed:\n%q\nwant\n%q", out.String(), want)
	}
	if err := runCtl(cctx, []string{"list_queues", "-url", "http://" + l["http"], "pid"}, env(nil), &out, &errOut); err == nil || !strings.Contains(err.Error(), "pid") {
		t.Fatalf("unknown column: %v", err)
	}
}
