package main

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	pahov5 "github.com/eclipse/paho.golang/paho"
	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// startAll runs the whole broker and returns every listener's address.
func startAll(t *testing.T) listening {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan listening, 1)
	done := make(chan error, 1)
	var logs syncBuffer
	go func() {
		done <- run(ctx, []string{"-nats-addr", "127.0.0.1:0", "-mqtt-addr", "127.0.0.1:0", "-mqtt-ws-addr", "127.0.0.1:0",
			"-amqp-addr", "127.0.0.1:0", "-stomp-addr", "127.0.0.1:0", "-stomp-ws-addr", "127.0.0.1:0", "-http-addr", "", "-data-dir", filepath.Join(t.TempDir(), "data")}, env(nil), &logs,
			func(l listening) { addrs <- l })
	}()
	select {
	case l := <-addrs:
		t.Cleanup(func() { cancel(); <-done })
		return l
	case err := <-done:
		cancel()
		t.Fatalf("broker did not start: %v\n%s", err, logs.String())
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("broker did not start in time")
	}
	return nil
}

func mqttClient(t *testing.T, addr, id string) paho.Client {
	t.Helper()
	c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).SetAutoReconnect(false))
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("mqtt connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(50) })
	return c
}

// A device's MQTT telemetry reaches NATS subscribers, and a NATS command
// reaches the device: one router for both protocols.
func TestMQTTAndNATSMeet(t *testing.T) {
	l := startAll(t)
	nc, err := nats.Connect("nats://" + l["nats"])
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	tele, _ := nc.SubscribeSync("site.*.temp")
	nc.Flush()

	dev := mqttClient(t, l["mqtt"], "device-7")
	cmds := make(chan paho.Message, 10)
	if tok := dev.Subscribe("cmd/7/#", 1, func(_ paho.Client, m paho.Message) { cmds <- m }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	if tok := dev.Publish("site/7/temp", 1, false, "21.5"); !tok.WaitTimeout(5 * time.Second) {
		t.Fatal("publish")
	}
	m, err := tele.NextMsg(5 * time.Second)
	if err != nil || m.Subject != "site.7.temp" || string(m.Data) != "21.5" {
		t.Fatalf("NATS got %v %v", m, err)
	}
	nc.Publish("cmd.7.reboot", []byte("now"))
	select {
	case c := <-cmds:
		if c.Topic() != "cmd/7/reboot" || string(c.Payload()) != "now" {
			t.Fatalf("device got %s %q", c.Topic(), c.Payload())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the NATS command did not reach the device")
	}
}

// Device (MQTT) → stream → nats.go work-queue consumer.
func TestMQTTIntoAWorkQueue(t *testing.T) {
	l := startAll(t)
	nc, err := nats.Connect("nats://" + l["nats"])
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "READINGS", Subjects: []string{"meter.>"}, Retention: jetstream.WorkQueuePolicy})
	if err != nil {
		t.Fatal(err)
	}
	dev := mqttClient(t, l["mqtt"], "meter-1")
	for i := 0; i < 5; i++ {
		// QoS 1: the PUBACK comes once the stream has it durably.
		if tok := dev.Publish("meter/1/kwh", 1, false, "1.5"); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatal("publish")
		}
	}
	c, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "billing", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := c.Fetch(5, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for m := range batch.Messages() {
		if m.Subject() != "meter.1.kwh" {
			t.Fatalf("subject %s", m.Subject())
		}
		m.Ack()
		n++
	}
	if n != 5 {
		t.Fatalf("fetched %d of 5", n)
	}
}

// A nats.go request answered by an MQTT 5.0 responder through its
// response topic.
func TestNATSRequestMQTT5Reply(t *testing.T) {
	l := startAll(t)
	conn, err := net.Dial("tcp", l["mqtt"])
	if err != nil {
		t.Fatal(err)
	}
	var responder *pahov5.Client
	responder = pahov5.NewClient(pahov5.ClientConfig{Conn: conn, OnPublishReceived: []func(pahov5.PublishReceived) (bool, error){
		func(pr pahov5.PublishReceived) (bool, error) {
			p := pr.Packet
			if p.Properties == nil || p.Properties.ResponseTopic == "" {
				return true, nil
			}
			go responder.Publish(context.Background(), &pahov5.Publish{Topic: p.Properties.ResponseTopic, Payload: []byte("pong:" + string(p.Payload))})
			return true, nil
		}}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := responder.Connect(ctx, &pahov5.Connect{ClientID: "svc", CleanStart: true, KeepAlive: 30}); err != nil {
		t.Fatal(err)
	}
	defer responder.Disconnect(&pahov5.Disconnect{})
	if _, err := responder.Subscribe(ctx, &pahov5.Subscribe{Subscriptions: []pahov5.SubscribeOptions{{Topic: "svc/ping", QoS: 0}}}); err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect("nats://" + l["nats"])
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	m, err := nc.Request("svc.ping", []byte("1"), 5*time.Second)
	if err != nil || string(m.Data) != "pong:1" {
		t.Fatalf("reply %v %v", m, err)
	}
}
