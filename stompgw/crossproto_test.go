package stompgw

import (
	"context"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/go-stomp/stomp/v3"
	"github.com/nats-io/nats.go"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/ledgemq/ledge/mqttgw"
	"github.com/ledgemq/ledge/natsgw"
	lnet "github.com/ledgemq/ledge/net"
)

// withAMQP serves the gateway's AMQP side too, for amqp091-go.
func (g *gateway) withAMQP(t *testing.T) *amqp.Channel {
	t.Helper()
	addr := g.listen(t, g.amqp.Handler(), lnet.Options{MaxInput: g.amqp.MaxInput()})
	conn, err := amqp.Dial("amqp://guest:guest@" + addr + "/")
	must(t, err)
	t.Cleanup(func() { conn.Close() })
	ch, err := conn.Channel()
	must(t, err)
	return ch
}

// withNATS serves NATS on the gateway's live router and connects nats.go.
func (g *gateway) withNATS(t *testing.T) *nats.Conn {
	t.Helper()
	gw := natsgw.NewServer(natsgw.Options{Logger: quietLogger(), Broker: g.broker, Live: g.live})
	ln, err := lnet.Listen("tcp", "127.0.0.1:0", gw.Handler(), lnet.Options{MaxInput: gw.MaxInput()})
	must(t, err)
	t.Cleanup(func() { ln.Close() })
	nc, err := nats.Connect("nats://" + ln.Addr().String())
	must(t, err)
	t.Cleanup(nc.Close)
	return nc
}

// withMQTT serves MQTT on the gateway's live router and connects paho.
func (g *gateway) withMQTT(t *testing.T) paho.Client {
	t.Helper()
	mq, err := mqttgw.NewServer(mqttgw.Options{Logger: quietLogger(), SysInterval: -1}, g.live, g.broker)
	must(t, err)
	ln, err := lnet.Listen("tcp", "127.0.0.1:0", mq.Handler(), lnet.Options{MaxInput: mq.MaxInput()})
	must(t, err)
	t.Cleanup(func() { ln.Close(); mq.Close() })
	c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + ln.Addr().String()).SetClientID("dev-7").SetAutoReconnect(false))
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("mqtt connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(50) })
	return c
}

// A STOMP SEND to /topic/KEY reaches MQTT and NATS subscribers through
// amq.topic and the shared router; their publishes reach STOMP /topic
// subscribers.
func TestTopicReachesMQTTAndNATS(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			g := startGateway(t, tr.portable, Options{}, "")
			nc := g.withNATS(t)
			ns, err := nc.SubscribeSync("site.*.temp")
			must(t, err)
			must(t, nc.Flush())
			mc := g.withMQTT(t)
			got := make(chan paho.Message, 10)
			if tok := mc.Subscribe("site/+/temp", 1, func(_ paho.Client, m paho.Message) { got <- m }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
				t.Fatalf("mqtt subscribe: %v", tok.Error())
			}

			c := dial(t, g.addr)
			must(t, c.Send("/topic/site.7.temp", "text/plain", []byte("21.5"), stomp.SendOpt.Receipt, stomp.SendOpt.Header("unit", "C")))
			m, err := ns.NextMsg(5 * time.Second)
			if err != nil || m.Subject != "site.7.temp" || string(m.Data) != "21.5" || m.Header.Get("unit") != "C" {
				t.Fatalf("NATS got %v %v", m, err)
			}
			select {
			case pm := <-got:
				if pm.Topic() != "site/7/temp" || string(pm.Payload()) != "21.5" {
					t.Fatalf("MQTT got %s %q", pm.Topic(), pm.Payload())
				}
			case <-time.After(5 * time.Second):
				t.Fatal("MQTT subscriber got nothing")
			}

			// The other way: devices and NATS clients to a STOMP subscriber.
			sub, err := c.Subscribe("/topic/cmd.#", stomp.AckClientIndividual)
			must(t, err)
			syncConn(t, c)
			if tok := mc.Publish("cmd/valve/7", 1, false, "open"); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
				t.Fatalf("mqtt publish: %v", tok.Error())
			}
			sm := next(t, sub)
			if string(sm.Body) != "open" || sm.Destination != "/topic/cmd.valve.7" {
				t.Fatalf("from MQTT: %q at %q", sm.Body, sm.Destination)
			}
			must(t, c.Ack(sm))
			must(t, nc.Publish("cmd.pump.2", []byte("stop")))
			sm = next(t, sub)
			if string(sm.Body) != "stop" || sm.Destination != "/topic/cmd.pump.2" {
				t.Fatalf("from NATS: %q at %q", sm.Body, sm.Destination)
			}
			must(t, c.Ack(sm))
		})
	}
}

// An AMQP client's queue is read through /amq/queue/NAME, with the
// message's properties as headers; what STOMP sends to /queue/NAME an AMQP
// consumer of NAME gets, with its headers as properties.
func TestAMQPQueueAndSTOMP(t *testing.T) {
	g := startGateway(t, false, Options{}, "")
	ch := g.withAMQP(t)
	_, err := ch.QueueDeclare("invoices", true, false, false, false, amqp.Table{"x-max-length": int32(1000)})
	must(t, err)
	ctx := context.Background()
	must(t, ch.PublishWithContext(ctx, "", "invoices", false, false, amqp.Publishing{
		ContentType: "application/json", CorrelationId: "inv-1", DeliveryMode: amqp.Persistent, Priority: 4,
		MessageId: "m-1", Type: "invoice", AppId: "billing", Headers: amqp.Table{"customer": "acme", "lines": int32(3)},
		Body: []byte(`{"total":12}`)}))

	c := dial(t, g.addr)
	sub, err := c.Subscribe("/amq/queue/invoices", stomp.AckClientIndividual)
	must(t, err)
	m := next(t, sub)
	want := map[string]string{"content-type": "application/json", "correlation-id": "inv-1", "persistent": "true", "priority": "4",
		"amqp-message-id": "m-1", "type": "invoice", "app-id": "billing", "customer": "acme", "lines": "3", "destination": "/queue/invoices"}
	for k, v := range want {
		if got := m.Header.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	if string(m.Body) != `{"total":12}` {
		t.Fatalf("body %q", m.Body)
	}
	must(t, c.Ack(m))
	unsubscribe(t, sub)

	// STOMP to an AMQP consumer; /queue/invoices is the same queue (its
	// arguments are the AMQP declaration's).
	deliveries, err := ch.Consume("invoices", "", false, false, false, false, nil)
	must(t, err)
	must(t, c.Send("/queue/invoices", "text/plain", []byte("from stomp"), stomp.SendOpt.Receipt,
		stomp.SendOpt.Header("persistent", "true"), stomp.SendOpt.Header("region", "eu"), stomp.SendOpt.Header("reply-to", "/reply-queue/answers")))
	select {
	case d := <-deliveries:
		if string(d.Body) != "from stomp" || d.ContentType != "text/plain" || d.DeliveryMode != 2 || d.Headers["region"] != "eu" || d.ReplyTo != "answers" {
			t.Fatalf("AMQP got %q %+v", d.Body, d)
		}
		must(t, d.Ack(false))
	case <-time.After(5 * time.Second):
		t.Fatal("AMQP consumer got nothing")
	}
	// /amq/queue never declares.
	r := dialRaw(t, g.addr)
	r.connect("1.2")
	r.send("SUBSCRIBE\nid:0\ndestination:/amq/queue/missing\n\n\x00")
	r.readError("not_found")
}

// An AMQP responder answers a STOMP request on its temporary queue: it
// sees the reply-to as a plain queue name and publishes there through the
// default exchange.
func TestAMQPResponderToTempQueue(t *testing.T) {
	g := startGateway(t, false, Options{}, "")
	ch := g.withAMQP(t)
	_, err := ch.QueueDeclare("rpc", false, false, false, false, nil)
	must(t, err)
	reqs, err := ch.Consume("rpc", "", true, false, false, false, nil)
	must(t, err)
	go func() {
		for d := range reqs {
			_ = ch.PublishWithContext(context.Background(), "", d.ReplyTo, false, false, amqp.Publishing{
				CorrelationId: d.CorrelationId, Body: append([]byte("re: "), d.Body...)})
		}
	}()
	c := dial(t, g.addr)
	replies, err := c.Subscribe("/temp-queue/r", stomp.AckAuto)
	must(t, err)
	must(t, c.Send("/amq/queue/rpc", "text/plain", []byte("ping"), stomp.SendOpt.Header("reply-to", "/temp-queue/r"), stomp.SendOpt.Header("correlation-id", "9")))
	m := next(t, replies)
	if string(m.Body) != "re: ping" || m.Header.Get("correlation-id") != "9" {
		t.Fatalf("reply %q %v", m.Body, m.Header)
	}
}

// A queue deleted under a STOMP subscription ends it with an ERROR, as
// RabbitMQ does; the connection's other work is gone with it.
func TestQueueDeletedUnderSubscription(t *testing.T) {
	g := startGateway(t, false, Options{}, "")
	ch := g.withAMQP(t)
	_, err := ch.QueueDeclare("short-lived", false, false, false, false, nil)
	must(t, err)
	r := dialRaw(t, g.addr)
	r.connect("1.2")
	r.send("SUBSCRIBE\nid:s\ndestination:/amq/queue/short-lived\nreceipt:r\n\n\x00")
	if f := r.read(); f.Command != "RECEIPT" {
		t.Fatalf("%s %v", f.Command, f.Header)
	}
	_, err = ch.QueueDelete("short-lived", false, false, false)
	must(t, err)
	r.readError("subscription cancelled")
}
