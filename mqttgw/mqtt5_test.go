package mqttgw

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/ledgemq/ledge/mqttgw/packet"
)

// client5 is a paho.golang MQTT 5.0 client whose received messages go to a
// channel.
type client5 struct {
	c      *paho.Client
	msgs   chan *paho.Publish
	connck *paho.Connack
	gone   chan *paho.Disconnect
	// Incoming topic aliases, resolved in the receive callback.
	aliases map[uint16]string
	aliased int
}

func connect5(t testing.TB, addr, id string, edit ...func(*paho.Connect)) *client5 {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	cl := &client5{msgs: make(chan *paho.Publish, 1000), gone: make(chan *paho.Disconnect, 1), aliases: map[uint16]string{}}
	cl.c = paho.NewClient(paho.ClientConfig{
		Conn: conn,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			// paho.golang leaves incoming topic aliases to the
			// application: resolve them as one would.
			p := pr.Packet
			if p.Properties != nil && p.Properties.TopicAlias != nil {
				a := *p.Properties.TopicAlias
				cl.aliased++
				if p.Topic != "" {
					cl.aliases[a] = p.Topic
				} else {
					p.Topic = cl.aliases[a]
				}
			}
			cl.msgs <- p
			return true, nil
		}},
		OnServerDisconnect: func(d *paho.Disconnect) { cl.gone <- d },
	})
	cp := &paho.Connect{ClientID: id, CleanStart: true, KeepAlive: 30}
	for _, e := range edit {
		e(cp)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ack, err := cl.c.Connect(ctx, cp)
	if err != nil {
		t.Fatalf("connect %s: %v", id, err)
	}
	cl.connck = ack
	t.Cleanup(func() { _ = cl.c.Disconnect(&paho.Disconnect{}) })
	return cl
}

func (cl *client5) sub(t testing.TB, opts ...paho.SubscribeOptions) *paho.Suback {
	t.Helper()
	return cl.subWith(t, nil, opts...)
}

func (cl *client5) subWith(t testing.TB, props *paho.SubscribeProperties, opts ...paho.SubscribeOptions) *paho.Suback {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sa, err := cl.c.Subscribe(ctx, &paho.Subscribe{Subscriptions: opts, Properties: props})
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	return sa
}

func (cl *client5) pub(t testing.TB, p *paho.Publish) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := cl.c.Publish(ctx, p); err != nil {
		t.Fatalf("publish %s: %v", p.Topic, err)
	}
}

func (cl *client5) next(t testing.TB) *paho.Publish {
	t.Helper()
	select {
	case m := <-cl.msgs:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no message within 5s")
		return nil
	}
}

func (cl *client5) none(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case m := <-cl.msgs:
		t.Fatalf("unexpected message on %s", m.Topic)
	case <-time.After(d):
	}
}

func TestMQTT5ConnackAdvertisesLimits(t *testing.T) {
	g := startGateway(t, false, Options{ReceiveMaximum: 20, TopicAliasMaximum: 5}, "")
	c := connect5(t, g.addr, "")
	p := c.connck.Properties
	if p == nil || p.AssignedClientID == "" || p.ReceiveMaximum == nil || *p.ReceiveMaximum != 20 ||
		p.TopicAliasMaximum == nil || *p.TopicAliasMaximum != 5 || p.MaximumPacketSize == nil {
		t.Fatalf("connack properties %+v", p)
	}
}

func TestMQTT5PropertiesAndRequestResponse(t *testing.T) {
	g := startGateway(t, false, Options{}, "")
	responder := connect5(t, g.addr, "responder")
	responder.sub(t, paho.SubscribeOptions{Topic: "svc/time", QoS: 1})
	requester := connect5(t, g.addr, "requester")
	requester.sub(t, paho.SubscribeOptions{Topic: "replies/requester", QoS: 1})

	requester.pub(t, &paho.Publish{Topic: "svc/time", QoS: 1, Payload: []byte("now?"), Properties: &paho.PublishProperties{
		ResponseTopic: "replies/requester", CorrelationData: []byte("c-42"), ContentType: "text/plain",
		User: paho.UserProperties{{Key: "unit", Value: "s"}},
	}})
	req := responder.next(t)
	if req.Properties == nil || req.Properties.ResponseTopic != "replies/requester" || string(req.Properties.CorrelationData) != "c-42" ||
		req.Properties.ContentType != "text/plain" || req.Properties.User.Get("unit") != "s" {
		t.Fatalf("request properties %+v", req.Properties)
	}
	responder.pub(t, &paho.Publish{Topic: req.Properties.ResponseTopic, QoS: 1, Payload: []byte("12:00"),
		Properties: &paho.PublishProperties{CorrelationData: req.Properties.CorrelationData}})
	rep := requester.next(t)
	if string(rep.Payload) != "12:00" || string(rep.Properties.CorrelationData) != "c-42" {
		t.Fatalf("reply %q %+v", rep.Payload, rep.Properties)
	}
}

func TestMQTT5NoLocalRetainHandlingSubscriptionID(t *testing.T) {
	g := startGateway(t, false, Options{}, "")
	c := connect5(t, g.addr, "self")
	id := 7
	c.subWith(t, &paho.SubscribeProperties{SubscriptionIdentifier: &id}, paho.SubscribeOptions{Topic: "chat/#", QoS: 1, NoLocal: true})
	c.pub(t, &paho.Publish{Topic: "chat/room", QoS: 1, Payload: []byte("mine")})
	c.none(t, 200*time.Millisecond)

	other := connect5(t, g.addr, "other")
	other.pub(t, &paho.Publish{Topic: "chat/room", QoS: 1, Payload: []byte("theirs"), Retain: true})
	m := c.next(t)
	if string(m.Payload) != "theirs" || m.Properties.SubscriptionIdentifier == nil || *m.Properties.SubscriptionIdentifier != 7 {
		t.Fatalf("got %q %+v", m.Payload, m.Properties)
	}
	// Retain handling 2: no retained messages on subscribe.
	late := connect5(t, g.addr, "late")
	late.sub(t, paho.SubscribeOptions{Topic: "chat/#", QoS: 1, RetainHandling: 2})
	late.none(t, 200*time.Millisecond)
	// Retain handling 0 with retain-as-published.
	late2 := connect5(t, g.addr, "late2")
	late2.sub(t, paho.SubscribeOptions{Topic: "chat/#", QoS: 1, RetainAsPublished: true})
	if m := late2.next(t); !m.Retain || string(m.Payload) != "theirs" {
		t.Fatalf("retained on subscribe: retain=%v %q", m.Retain, m.Payload)
	}
}

func TestMQTT5TopicAliasesBothWays(t *testing.T) {
	g := startGateway(t, false, Options{}, "")
	sub := connect5(t, g.addr, "sub", func(c *paho.Connect) {
		max := uint16(10)
		c.Properties = &paho.ConnectProperties{TopicAliasMaximum: &max}
	})
	sub.sub(t, paho.SubscribeOptions{Topic: "tele/#", QoS: 0})

	// A raw 5.0 publisher sets alias 1 and then sends by alias only.
	r := dialRaw(t, g.addr, packet.Level5)
	r.write(packet.AppendConnect(nil, &packet.Connect{Level: packet.Level5, CleanStart: true, ClientID: []byte("aliaser")}))
	if p, err := r.read(); err != nil || p.Type != packet.TypeConnack {
		t.Fatalf("connack: %v", err)
	}
	var props packet.Properties
	props.Present.Add(packet.PropTopicAlias)
	props.TopicAlias = 1
	r.write(packet.AppendPublish(nil, packet.Level5, &packet.Publish{Topic: []byte("tele/dev1/temp"), Properties: props, Payload: []byte("21")}))
	r.write(packet.AppendPublish(nil, packet.Level5, &packet.Publish{Properties: props, Payload: []byte("22")}))
	for _, want := range []string{"21", "22"} {
		m := sub.next(t)
		if m.Topic != "tele/dev1/temp" || string(m.Payload) != want {
			t.Fatalf("got %q on %q", m.Payload, m.Topic)
		}
	}
	// And the gateway used an alias towards the subscriber that allows
	// them: both messages carried one.
	if sub.aliased != 2 {
		t.Fatalf("%d of 2 deliveries used a topic alias", sub.aliased)
	}
}

func TestMQTT5TakeoverReasonCode(t *testing.T) {
	g := startGateway(t, false, Options{}, "")
	first := connect5(t, g.addr, "twin")
	connect5(t, g.addr, "twin")
	select {
	case d := <-first.gone:
		if d.ReasonCode != byte(packet.SessionTakenOver) {
			t.Fatalf("reason 0x%x", d.ReasonCode)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no DISCONNECT for the first connection")
	}
}

func TestMQTT5MessageExpiryWhileAway(t *testing.T) {
	g := startGateway(t, false, Options{}, "")
	expiry := uint32(3600)
	c := connect5(t, g.addr, "sleepy", func(cp *paho.Connect) {
		cp.CleanStart = false
		cp.Properties = &paho.ConnectProperties{SessionExpiryInterval: &expiry}
	})
	c.sub(t, paho.SubscribeOptions{Topic: "news/#", QoS: 1})
	_ = c.c.Disconnect(&paho.Disconnect{})
	time.Sleep(50 * time.Millisecond)

	pub := connect5(t, g.addr, "pub")
	short, long := uint32(1), uint32(600)
	pub.pub(t, &paho.Publish{Topic: "news/flash", QoS: 1, Payload: []byte("stale"), Properties: &paho.PublishProperties{MessageExpiry: &short}})
	pub.pub(t, &paho.Publish{Topic: "news/daily", QoS: 1, Payload: []byte("fresh"), Properties: &paho.PublishProperties{MessageExpiry: &long}})
	time.Sleep(2100 * time.Millisecond)

	c = connect5(t, g.addr, "sleepy", func(cp *paho.Connect) {
		cp.CleanStart = false
		cp.Properties = &paho.ConnectProperties{SessionExpiryInterval: &expiry}
	})
	if !c.connck.SessionPresent {
		t.Fatal("session not present")
	}
	m := c.next(t)
	if string(m.Payload) != "fresh" || m.Properties.MessageExpiry == nil || *m.Properties.MessageExpiry > 600 || *m.Properties.MessageExpiry < 590 {
		t.Fatalf("got %q expiry %v", m.Payload, m.Properties.MessageExpiry)
	}
	c.none(t, 200*time.Millisecond)
}
