package amqpgw

import (
	"context"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/ledgemq/ledge/broker"
	"github.com/ledgemq/ledge/mqttgw"
	lnet "github.com/ledgemq/ledge/net"
)

// An MQTT publish through mqttgw reaches an AMQP queue bound to
// amq.topic, and an AMQP publish to amq.topic reaches an MQTT subscriber:
// both gateways share the live router, as cmd/ledge wires them.
func TestMQTTAndAMQPThroughAmqTopic(t *testing.T) {
	g := startGateway(t, Options{}, "")
	mq, err := mqttgw.NewServer(mqttgw.Options{Logger: quietLogger(), SysInterval: -1}, g.live, g.broker)
	must(t, err)
	ln, err := lnet.Listen("tcp", "127.0.0.1:0", mq.Handler(), lnet.Options{MaxInput: mq.MaxInput()})
	must(t, err)
	t.Cleanup(func() { ln.Close(); mq.Close() })

	_, ch := dial(t, g)
	q, err := ch.QueueDeclare("telemetry", true, false, false, false, nil)
	must(t, err)
	must(t, ch.QueueBind(q.Name, "site.*.temp", "amq.topic", false, nil))
	must(t, ch.QueueBind(q.Name, "site.#", "amq.topic", false, nil)) // overlapping: delivered once
	msgs, err := ch.Consume(q.Name, "", false, false, false, false, nil)
	must(t, err)

	opts := paho.NewClientOptions().AddBroker("tcp://" + ln.Addr().String()).SetClientID("dev-7")
	mc := paho.NewClient(opts)
	if tok := mc.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("mqtt connect: %v", tok.Error())
	}
	defer mc.Disconnect(100)
	got := make(chan string, 1)
	if tok := mc.Subscribe("cmd/#", 1, func(_ paho.Client, m paho.Message) { got <- m.Topic() + " " + string(m.Payload()) }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("mqtt subscribe: %v", tok.Error())
	}

	if tok := mc.Publish("site/7/temp", 1, false, "21.5"); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("mqtt publish: %v", tok.Error())
	}
	d := recv(t, msgs)
	if string(d.Body) != "21.5" || d.RoutingKey != "site.7.temp" || d.Exchange != "amq.topic" {
		t.Fatalf("AMQP got %q key %q exchange %q", d.Body, d.RoutingKey, d.Exchange)
	}
	must(t, d.Ack(false))
	none(t, msgs, 100*time.Millisecond)

	publish(t, ch, "amq.topic", "cmd.valve.7", text("open"))
	select {
	case s := <-got:
		if s != "cmd/valve/7 open" {
			t.Fatalf("MQTT got %q", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("MQTT subscriber got nothing")
	}
}

// An AMQP publish to amq.topic is stored by a stream that captures its
// subject, as a NATS or MQTT publish is, and confirmed once it is.
func TestAmqTopicPublishCapturedByStream(t *testing.T) {
	g := startGateway(t, Options{}, "")
	st, err := g.broker.AddStream(broker.StreamConfig{Name: "TELE", Subjects: []string{"tele.>"}})
	must(t, err)
	_, ch := dial(t, g)
	must(t, ch.Confirm(false))
	dc, err := ch.PublishWithDeferredConfirmWithContext(context.Background(), "amq.topic", "tele.7.temp", true, false, text("20"))
	must(t, err)
	if ok, err := dc.WaitContext(context.Background()); !ok || err != nil {
		t.Fatal("not confirmed")
	}
	m, err := st.GetLastMsg("tele.7.temp")
	must(t, err)
	if string(m.Payload) != "20" {
		t.Fatalf("stored %q", m.Payload)
	}
}
