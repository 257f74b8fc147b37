package mqttgw

import (
	"fmt"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/ledgemq/ledge/mqttgw/packet"
)

// A persistent session's QoS 1 messages published while it is away wait
// in the log, across a broker restart, and arrive when it returns.
func TestOfflineMessagesSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	g := startGateway(t, false, Options{}, dir)
	in := newInbox()
	dev := client311(t, g.addr, "device-7", false, func(o *paho.ClientOptions) { o.SetDefaultPublishHandler(in.handler) })
	wait(t, dev.Subscribe("cmd/device-7/#", 1, in.handler))
	dev.Disconnect(50)

	pub := client311(t, g.addr, "app", true)
	for i := 0; i < 5; i++ {
		wait(t, pub.Publish(fmt.Sprintf("cmd/device-7/set/%d", i), 1, false, fmt.Sprint(i)))
	}
	// QoS 0 is not kept for an absent session.
	wait(t, pub.Publish("cmd/device-7/noise", 0, false, "lost"))
	pub.Disconnect(50)
	g.stop()

	g = startGateway(t, false, Options{}, dir)
	client311(t, g.addr, "device-7", false, func(o *paho.ClientOptions) { o.SetDefaultPublishHandler(in.handler) })
	for i := 0; i < 5; i++ {
		m := in.next(t)
		if string(m.Payload()) != fmt.Sprint(i) || m.Qos() != 1 {
			t.Fatalf("message %d: %q at QoS %d", i, m.Payload(), m.Qos())
		}
	}
	in.none(t, 200*time.Millisecond)
	// Once acknowledged, the stored messages are released.
	eventually(t, "stored messages released", func() bool {
		s, err := g.broker.Stream(msgsStream)
		return err == nil && s.Info().State.Msgs == 0
	})
}

// An unacknowledged QoS 1 message is sent again, with DUP and the same
// packet id, when the session resumes (MQTT-4.4.0-1).
func TestUnackedResentWithDupOnResume(t *testing.T) {
	g := startGateway(t, false, Options{}, "")
	r := rawSession(t, g.addr, "raw-1", false)
	r.write(packet.AppendSubscribe(nil, packet.Level311, &packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: []byte("jobs"), QoS: packet.QoS1}}}))
	if p, err := r.read(); err != nil || p.Type != packet.TypeSuback {
		t.Fatalf("suback: %v", err)
	}
	pub := client311(t, g.addr, "app", true)
	wait(t, pub.Publish("jobs", 1, false, "job-1"))
	p, err := r.read()
	if err != nil || p.Type != packet.TypePublish || p.Publish.Dup {
		t.Fatalf("first delivery: %+v %v", p, err)
	}
	pid := p.Publish.PacketID
	r.Close()

	r = rawSession(t, g.addr, "raw-1", false)
	p, err = r.read()
	if err != nil || p.Type != packet.TypePublish || !p.Publish.Dup || p.Publish.PacketID != pid || string(p.Publish.Payload) != "job-1" {
		t.Fatalf("resent: %+v %v", p, err)
	}
	r.write(packet.AppendAck(nil, packet.Level311, &packet.Ack{Type: packet.TypePuback, PacketID: pid}))
	r.Close()
	r = rawSession(t, g.addr, "raw-1", false)
	r.quiet(300 * time.Millisecond)
}

// The QoS 2 exchange in progress survives a restart: the PUBREL is sent
// again on resume.
func TestQoS2ReleaseSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	g := startGateway(t, false, Options{}, dir)
	r := rawSession(t, g.addr, "raw-2", false)
	r.write(packet.AppendSubscribe(nil, packet.Level311, &packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: []byte("exact"), QoS: packet.QoS2}}}))
	if p, err := r.read(); err != nil || p.Type != packet.TypeSuback {
		t.Fatalf("suback: %v", err)
	}
	pub := client311(t, g.addr, "app", true)
	wait(t, pub.Publish("exact", 2, false, "once"))
	p, err := r.read()
	if err != nil || p.Type != packet.TypePublish || p.Publish.QoS != packet.QoS2 {
		t.Fatalf("delivery: %+v %v", p, err)
	}
	pid := p.Publish.PacketID
	r.write(packet.AppendAck(nil, packet.Level311, &packet.Ack{Type: packet.TypePubrec, PacketID: pid}))
	if p, err := r.read(); err != nil || p.Type != packet.TypePubrel || p.Ack.PacketID != pid {
		t.Fatalf("pubrel: %+v %v", p, err)
	}
	r.Close()
	pub.Disconnect(50)
	time.Sleep(50 * time.Millisecond)
	g.stop()

	g = startGateway(t, false, Options{}, dir)
	r = rawSession(t, g.addr, "raw-2", false)
	p, err = r.read()
	if err != nil || p.Type != packet.TypePubrel || p.Ack.PacketID != pid {
		t.Fatalf("after restart: %+v %v", p, err)
	}
	r.write(packet.AppendAck(nil, packet.Level311, &packet.Ack{Type: packet.TypePubcomp, PacketID: pid}))
	r.quiet(300 * time.Millisecond)
}

// rawSession connects a raw 3.1.1 client and checks the CONNACK.
func rawSession(t testing.TB, addr, id string, clean bool) *rawConn {
	t.Helper()
	r := dialRaw(t, addr, packet.Level311)
	r.write(packet.AppendConnect(nil, &packet.Connect{Level: packet.Level311, CleanStart: clean, ClientID: []byte(id)}))
	p, err := r.read()
	if err != nil || p.Type != packet.TypeConnack || p.Connack.ReturnCode != packet.Accepted {
		t.Fatalf("connack: %+v %v", p, err)
	}
	return r
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
