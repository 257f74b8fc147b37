package mqttgw

import (
	"bytes"
	"errors"
	"io"
	stdnet "net"
	"testing"
	"time"

	"github.com/ledgemq/ledge/mqttgw/packet"
)

// rawConn is a client that writes packets by hand, for what real clients
// cannot be made to send.
type rawConn struct {
	t     testing.TB
	c     stdnet.Conn
	level packet.Level
	dec   packet.Decoder
	buf   []byte
}

func dialRaw(t testing.TB, addr string, level packet.Level) *rawConn {
	t.Helper()
	c, err := stdnet.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, c: c, level: level, dec: packet.Decoder{Level: level}}
}

func (r *rawConn) Close() error { return r.c.Close() }

func (r *rawConn) write(b []byte) {
	r.t.Helper()
	if _, err := r.c.Write(b); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

// read returns the next packet from the server, or an error at EOF.
func (r *rawConn) read() (*packet.Packet, error) { return r.readWithin(5 * time.Second) }

// quiet fails if the server sends a packet within d.
func (r *rawConn) quiet(d time.Duration) {
	r.t.Helper()
	if p, err := r.readWithin(d); err == nil {
		r.t.Fatalf("unexpected %v packet", p.Type)
	}
}

func (r *rawConn) readWithin(d time.Duration) (*packet.Packet, error) {
	_ = r.c.SetReadDeadline(time.Now().Add(d))
	var p packet.Packet
	for {
		if len(r.buf) > 0 {
			n, err := r.dec.Decode(r.buf, &p)
			if err == nil {
				r.buf = append([]byte(nil), r.buf[n:]...)
				return &p, nil
			}
			if !errors.Is(err, packet.ErrIncomplete) {
				return nil, err
			}
		}
		var tmp [4096]byte
		n, err := r.c.Read(tmp[:])
		if n > 0 {
			r.buf = append(r.buf, tmp[:n]...)
			continue
		}
		if err != nil {
			return nil, err
		}
	}
}

// closed reports whether the server closed the connection (after any
// packets it sent first, which are returned).
func (r *rawConn) closed() ([]*packet.Packet, bool) {
	var got []*packet.Packet
	for {
		p, err := r.read()
		if err != nil {
			var ne stdnet.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return got, false
			}
			return got, true
		}
		got = append(got, p)
	}
}

func rawConnect(t testing.TB, addr, id string, keepAlive uint16, willTopic string) *rawConn {
	t.Helper()
	r := dialRaw(t, addr, packet.Level311)
	c := &packet.Connect{Level: packet.Level311, CleanStart: true, KeepAlive: keepAlive, ClientID: []byte(id)}
	if willTopic != "" {
		c.WillFlag, c.WillTopic, c.WillPayload = true, []byte(willTopic), []byte("bye")
	}
	r.write(packet.AppendConnect(nil, c))
	p, err := r.read()
	if err != nil || p.Type != packet.TypeConnack || p.Connack.ReturnCode != packet.Accepted {
		t.Fatalf("connack: %+v %v", p, err)
	}
	return r
}

func TestMalformedInputClosesOnlyThatConnection(t *testing.T) {
	g := startGateway(t, false, Options{MaxPacketSize: 1024}, "")
	in := newInbox()
	bystander := client311(t, g.addr, "bystander", true)
	wait(t, bystander.Subscribe("ok/#", 1, in.handler))

	connect5 := packet.AppendConnect(nil, &packet.Connect{Level: packet.Level5, CleanStart: true, ClientID: []byte("bad5")})
	tests := []struct {
		name   string
		level  packet.Level
		before []byte
		send   []byte
		reason packet.ReasonCode // expected in a 5.0 DISCONNECT, 0 for none
	}{
		{"bad remaining length", packet.Level311, nil, []byte{0x10, 0xff, 0xff, 0xff, 0xff, 0x7f}, 0},
		{"first packet not CONNECT", packet.Level311, nil, packet.AppendPingreq(nil), 0},
		{"reserved flags on SUBSCRIBE", packet.Level5, connect5, []byte{0x80, 0x06, 0, 1, 0, 1, 'a', 0}, packet.MalformedPacket},
		{"wildcard in PUBLISH topic", packet.Level5, connect5, packet.AppendPublish(nil, packet.Level5, &packet.Publish{Topic: []byte("a/+"), Payload: []byte("x")}), packet.TopicNameInvalid},
		{"QoS 3", packet.Level5, connect5, []byte{0x36, 0x05, 0, 1, 'a', 0, 1}, packet.MalformedPacket},
		{"oversized packet", packet.Level5, connect5, append([]byte{0x30, 0x80, 0x10, 0, 1, 'a'}, make([]byte, 2045)...), packet.PacketTooLarge},
		{"invalid UTF-8 topic", packet.Level5, connect5, packet.AppendPublish(nil, packet.Level5, &packet.Publish{Topic: []byte{'a', 0xff}, Payload: []byte("x")}), packet.MalformedPacket},
		{"unknown topic alias", packet.Level5, connect5, packet.AppendPublish(nil, packet.Level5, &packet.Publish{Properties: func() packet.Properties {
			var p packet.Properties
			p.Present.Add(packet.PropTopicAlias)
			p.TopicAlias = 3
			return p
		}(), Payload: []byte("x")}), packet.ProtocolError},
		{"second CONNECT", packet.Level5, connect5, connect5, packet.ProtocolError},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := dialRaw(t, g.addr, tc.level)
			if tc.before != nil {
				r.write(tc.before)
				if p, err := r.read(); err != nil || p.Type != packet.TypeConnack {
					t.Fatalf("connack: %v", err)
				}
			}
			r.write(tc.send)
			got, closed := r.closed()
			if !closed {
				t.Fatal("connection left open")
			}
			if tc.reason != 0 {
				if len(got) == 0 || got[len(got)-1].Type != packet.TypeDisconnect || got[len(got)-1].Disconnect.Reason != tc.reason {
					t.Fatalf("got %d packets before close, want DISCONNECT %v", len(got), tc.reason)
				}
			}
		})
	}
	// The broker and its other clients are unaffected.
	pub := client311(t, g.addr, "pub", true)
	wait(t, pub.Publish("ok/still", 1, false, "fine"))
	if m := in.next(t); string(m.Payload()) != "fine" {
		t.Fatalf("bystander got %q", m.Payload())
	}
}

func TestConnectRefusals(t *testing.T) {
	g := startGateway(t, false, Options{Auth: newAuth(t, "[user dev]\npassword = plain:secret\n")}, "")
	tests := []struct {
		name string
		c    packet.Connect
		rc   packet.ConnectReturnCode
		rc5  packet.ReasonCode
	}{
		{"bad password 3.1.1", packet.Connect{Level: packet.Level311, CleanStart: true, ClientID: []byte("a"), UsernameFlag: true, Username: []byte("dev"), PasswordFlag: true, Password: []byte("nope")}, packet.RefusedBadUserNameOrPassword, 0},
		{"empty id, persistent 3.1.1", packet.Connect{Level: packet.Level311, ClientID: nil, UsernameFlag: true, Username: []byte("dev"), PasswordFlag: true, Password: []byte("secret")}, packet.RefusedIdentifierRejected, 0},
		{"bad password 5.0", packet.Connect{Level: packet.Level5, CleanStart: true, ClientID: []byte("a"), UsernameFlag: true, Username: []byte("dev"), PasswordFlag: true, Password: []byte("nope")}, 0, packet.BadUserNameOrPassword},
		{"unknown user 3.1.1", packet.Connect{Level: packet.Level311, CleanStart: true, ClientID: []byte("a"), UsernameFlag: true, Username: []byte("who"), PasswordFlag: true, Password: []byte("secret")}, packet.RefusedBadUserNameOrPassword, 0},
		{"anonymous 3.1.1", packet.Connect{Level: packet.Level311, CleanStart: true, ClientID: []byte("a")}, packet.RefusedNotAuthorized, 0},
		{"anonymous 5.0", packet.Connect{Level: packet.Level5, CleanStart: true, ClientID: []byte("a")}, 0, packet.NotAuthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := dialRaw(t, g.addr, tc.c.Level)
			r.write(packet.AppendConnect(nil, &tc.c))
			got, closed := r.closed()
			if !closed || len(got) != 1 || got[0].Type != packet.TypeConnack {
				t.Fatalf("closed=%v packets=%d", closed, len(got))
			}
			if tc.c.Level == packet.Level5 {
				if got[0].Connack.Reason != tc.rc5 {
					t.Fatalf("reason %v, want %v", got[0].Connack.Reason, tc.rc5)
				}
			} else if got[0].Connack.ReturnCode != tc.rc {
				t.Fatalf("return code %v, want %v", got[0].Connack.ReturnCode, tc.rc)
			}
		})
	}
}

func TestConnectThatNeverFinishes(t *testing.T) {
	g := startGateway(t, false, Options{ConnectTimeout: 200 * time.Millisecond}, "")
	r := dialRaw(t, g.addr, packet.Level311)
	// Half a CONNECT, then silence.
	full := packet.AppendConnect(nil, &packet.Connect{Level: packet.Level311, CleanStart: true, ClientID: []byte("slow")})
	r.write(full[:len(full)/2])
	start := time.Now()
	_ = r.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := io.ReadAll(r.c)
	if err != nil || time.Since(start) > 3*time.Second {
		t.Fatalf("not closed in time: %v after %v", err, time.Since(start))
	}
}

func TestQoS2ExactlyOnceOnResend(t *testing.T) {
	g := startGateway(t, false, Options{}, "")
	in := newInbox()
	sub := client311(t, g.addr, "sub", true)
	wait(t, sub.Subscribe("once", 2, in.handler))
	r := rawConnect(t, g.addr, "pub2", 0, "")
	pub := packet.AppendPublish(nil, packet.Level311, &packet.Publish{QoS: packet.QoS2, PacketID: 7, Topic: []byte("once"), Payload: []byte("x")})
	r.write(pub)
	if p, err := r.read(); err != nil || p.Type != packet.TypePubrec || p.Ack.PacketID != 7 {
		t.Fatalf("pubrec: %+v %v", p, err)
	}
	// The client did not see the PUBREC and sends again, with DUP.
	pub[0] |= 0x08
	r.write(pub)
	if p, err := r.read(); err != nil || p.Type != packet.TypePubrec {
		t.Fatalf("second pubrec: %v", err)
	}
	r.write(packet.AppendAck(nil, packet.Level311, &packet.Ack{Type: packet.TypePubrel, PacketID: 7}))
	if p, err := r.read(); err != nil || p.Type != packet.TypePubcomp {
		t.Fatalf("pubcomp: %v", err)
	}
	in.next(t)
	in.none(t, 200*time.Millisecond)
}

func TestManyConnectionsOpenedAndDropped(t *testing.T) {
	g := startGateway(t, false, Options{}, "")
	in := newInbox()
	sub := client311(t, g.addr, "sub", true)
	wait(t, sub.Subscribe("alive", 1, in.handler))
	n := 10000
	if testing.Short() {
		n = 2000
	}
	connect := packet.AppendConnect(nil, &packet.Connect{Level: packet.Level311, CleanStart: true, ClientID: []byte("x")})
	for i := 0; i < n; i++ {
		c, err := stdnet.Dial("tcp", g.addr)
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			_, _ = c.Write(connect[:5])
		} else {
			_, _ = c.Write(bytes.Repeat([]byte{0xff}, 8))
		}
		c.Close()
	}
	pub := client311(t, g.addr, "pub", true)
	wait(t, pub.Publish("alive", 1, false, "yes"))
	in.next(t)
}
