package mqttgw

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/ledgemq/ledge/broker"
	"github.com/ledgemq/ledge/mqttgw/packet"
	"github.com/ledgemq/ledge/router"
)

// discardConn is a connection that keeps what the session writes.
type discardConn struct {
	mu     sync.Mutex
	n      int
	closed bool
}

func (d *discardConn) Write(b []byte) error {
	d.mu.Lock()
	d.n += len(b)
	d.mu.Unlock()
	return nil
}

func (d *discardConn) Close(error) {
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
}

// FuzzSession feeds arbitrary bytes to a connected session, in arbitrary
// pieces: whatever a client sends, the session answers or refuses it
// without panicking, and a second session on the same server still works.
func FuzzSession(f *testing.F) {
	for _, level := range []packet.Level{packet.Level311, packet.Level5} {
		sub := packet.AppendSubscribe(nil, level, &packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: []byte("a/#"), QoS: 2}, {Filter: []byte("$share/g/b/+"), QoS: 1}}})
		pub := packet.AppendPublish(nil, level, &packet.Publish{Topic: []byte("a/b"), QoS: 2, PacketID: 9, Retain: true, Payload: []byte("x")})
		rel := packet.AppendAck(nil, level, &packet.Ack{Type: packet.TypePubrel, PacketID: 9})
		f.Add(byte(level), append(append(append([]byte(nil), sub...), pub...), rel...), uint8(3))
	}
	f.Add(byte(4), []byte{0xC0, 0x00, 0xE0, 0x00}, uint8(1))
	// The classes of bugs other brokers shipped as CVEs: thousands of
	// levels in a filter and a topic, empty and wildcard-only levels, a
	// zero-length topic without an alias.
	deep := []byte(strings.Repeat("+/", 3000) + "#")
	deepTopic := []byte(strings.Repeat("a/", 3000) + "b")
	for _, level := range []packet.Level{packet.Level311, packet.Level5} {
		sub := packet.AppendSubscribe(nil, level, &packet.Subscribe{PacketID: 2, Subscriptions: []packet.Subscription{{Filter: deep}, {Filter: []byte("//+//#")}}})
		pub := packet.AppendPublish(nil, level, &packet.Publish{Topic: deepTopic, Payload: []byte("x")})
		f.Add(byte(level), append(sub, pub...), uint8(7))
		f.Add(byte(level), packet.AppendPublish(nil, level, &packet.Publish{Topic: []byte("/"), QoS: 1, PacketID: 3}), uint8(0))
	}
	f.Add(byte(5), []byte{0x30, 0x03, 0x00, 0x00, 0x00}, uint8(2))
	live := router.New[broker.Receiver](router.Options{})
	srv, err := NewServer(Options{Logger: quietLogger(), SysInterval: -1}, live, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(srv.Close)
	f.Fuzz(func(t *testing.T, level byte, in []byte, cut uint8) {
		lv := packet.Level311
		if level%2 == 1 {
			lv = packet.Level5
		}
		conn := &discardConn{}
		ss := srv.Open(conn, "fuzz")
		connect := packet.AppendConnect(nil, &packet.Connect{Level: lv, CleanStart: true, ClientID: []byte("fuzzer"), KeepAlive: 30})
		if _, err := ss.Feed(connect); err != nil || !ss.connected {
			t.Fatalf("connect: %v", err)
		}
		// Feed in two pieces, keeping what the session did not use, as
		// the transport does.
		k := int(cut) % (len(in) + 1)
		buf := append([]byte(nil), in[:k]...)
		n, err := ss.Feed(buf)
		if err == nil {
			buf = append(buf[n:], in[k:]...)
			_, err = ss.Feed(buf)
		}
		var pe *packet.Error
		var se *protocolError
		if err != nil && !errors.As(err, &pe) && !errors.As(err, &se) && !errors.Is(err, ErrDisconnect) {
			t.Fatalf("unexpected error %T %v", err, err)
		}
		ss.Closed()
	})
}
