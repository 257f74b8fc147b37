package packet

import (
	"bytes"
	"reflect"
	"testing"
)

// TestVarintSpecExamples checks the variable byte integer against the
// boundaries listed in MQTT 5.0 Table 1-1 (3.1.1 Table 2.4).
func TestVarintSpecExamples(t *testing.T) {
	for _, tc := range []struct {
		v    uint32
		wire []byte
	}{
		{0, []byte{0x00}},
		{127, []byte{0x7F}},
		{128, []byte{0x80, 0x01}},
		{16_383, []byte{0xFF, 0x7F}},
		{16_384, []byte{0x80, 0x80, 0x01}},
		{2_097_151, []byte{0xFF, 0xFF, 0x7F}},
		{2_097_152, []byte{0x80, 0x80, 0x80, 0x01}},
		{268_435_455, []byte{0xFF, 0xFF, 0xFF, 0x7F}},
	} {
		if got := appendVarint(nil, tc.v); !bytes.Equal(got, tc.wire) {
			t.Errorf("appendVarint(%d) = % x, want % x", tc.v, got, tc.wire)
		}
		if n := varintSize(int(tc.v)); n != len(tc.wire) {
			t.Errorf("varintSize(%d) = %d, want %d", tc.v, n, len(tc.wire))
		}
		v, n, state := readVarint(tc.wire)
		if v != tc.v || n != len(tc.wire) || state != varintOK {
			t.Errorf("readVarint(% x) = %d, %d, %d", tc.wire, v, n, state)
		}
	}
}

// specPacket is a packet written out by hand from the examples and layouts
// of the specifications, with the value it stands for.
type specPacket struct {
	name  string
	level Level
	wire  []byte
	p     Packet
}

func specPackets() []specPacket {
	return []specPacket{
		// MQTT 3.1.1 Figure 3.6, the CONNECT variable header example: flags
		// 0xCE are user name, password, will QoS 1, will, clean session;
		// keep alive 10.
		{"3.1.1 CONNECT example", Level311, []byte{
			0x10, 29,
			0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0xCE, 0x00, 0x0A,
			0x00, 0x02, 'c', '1',
			0x00, 0x01, 'w',
			0x00, 0x03, 'b', 'y', 'e',
			0x00, 0x01, 'u',
			0x00, 0x02, 'p', 'w',
		}, Packet{Type: TypeConnect, Connect: Connect{Level: Level311, CleanStart: true, KeepAlive: 10, ClientID: b("c1"),
			WillFlag: true, WillQoS: QoS1, WillTopic: b("w"), WillPayload: b("bye"),
			UsernameFlag: true, Username: b("u"), PasswordFlag: true, Password: b("pw")}}},
		// MQTT 5.0 Figure 3-7, the CONNECT variable header example, without
		// a will (flags 0xC2: user name, password, clean start): keep alive
		// 10, properties of length 5 holding a Session Expiry Interval of 10.
		{"5.0 CONNECT example", Level5, []byte{
			0x10, 27,
			0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05, 0xC2, 0x00, 0x0A,
			0x05, 0x11, 0x00, 0x00, 0x00, 0x0A,
			0x00, 0x02, 'c', '1',
			0x00, 0x01, 'u',
			0x00, 0x02, 'p', 'w',
		}, Packet{Type: TypeConnect, Connect: Connect{Level: Level5, CleanStart: true, KeepAlive: 10,
			Properties: props(func(p *Properties) { p.SessionExpiryInterval = 10; p.Present.Add(PropSessionExpiryInterval) }),
			ClientID:   b("c1"), UsernameFlag: true, Username: b("u"), PasswordFlag: true, Password: b("pw")}}},
		{"3.1.1 CONNACK accepted", Level311, []byte{0x20, 0x02, 0x00, 0x00},
			Packet{Type: TypeConnack}},
		{"3.1.1 CONNACK identifier rejected", Level311, []byte{0x20, 0x02, 0x00, 0x02},
			Packet{Type: TypeConnack, Connack: Connack{ReturnCode: RefusedIdentifierRejected}}},
		{"5.0 CONNACK session present", Level5, []byte{0x20, 0x03, 0x01, 0x00, 0x00},
			Packet{Type: TypeConnack, Connack: Connack{SessionPresent: true}}},
		// MQTT 3.1.1 Figure 3.11: topic "a/b", packet identifier 10.
		{"3.1.1 PUBLISH example", Level311, []byte{0x32, 0x09, 0x00, 0x03, 'a', '/', 'b', 0x00, 0x0A, 'h', 'i'},
			Packet{Type: TypePublish, Publish: Publish{QoS: QoS1, Topic: b("a/b"), PacketID: 10, Payload: b("hi")}}},
		// MQTT 5.0 Figure 3-9: the same, with no properties.
		{"5.0 PUBLISH example", Level5, []byte{0x3B, 0x0A, 0x00, 0x03, 'a', '/', 'b', 0x00, 0x0A, 0x00, 'h', 'i'},
			Packet{Type: TypePublish, Publish: Publish{Dup: true, QoS: QoS1, Retain: true, Topic: b("a/b"), PacketID: 10, Payload: b("hi")}}},
		{"3.1.1 PUBACK", Level311, []byte{0x40, 0x02, 0x00, 0x0A},
			Packet{Type: TypePuback, Ack: Ack{Type: TypePuback, PacketID: 10}}},
		{"5.0 PUBACK no matching subscribers", Level5, []byte{0x40, 0x03, 0x00, 0x0A, 0x10},
			Packet{Type: TypePuback, Ack: Ack{Type: TypePuback, PacketID: 10, Reason: NoMatchingSubscribers}}},
		{"3.1.1 PUBREC", Level311, []byte{0x50, 0x02, 0x00, 0x0A},
			Packet{Type: TypePubrec, Ack: Ack{Type: TypePubrec, PacketID: 10}}},
		{"3.1.1 PUBREL", Level311, []byte{0x62, 0x02, 0x00, 0x0A},
			Packet{Type: TypePubrel, Ack: Ack{Type: TypePubrel, PacketID: 10}}},
		{"3.1.1 PUBCOMP", Level311, []byte{0x70, 0x02, 0x00, 0x0A},
			Packet{Type: TypePubcomp, Ack: Ack{Type: TypePubcomp, PacketID: 10}}},
		// MQTT 3.1.1 Figure 3.22 (§3.8.3): packet identifier 10, "a/b" at
		// QoS 1 and "c/d" at QoS 2.
		{"3.1.1 SUBSCRIBE example", Level311, []byte{0x82, 0x0E, 0x00, 0x0A,
			0x00, 0x03, 'a', '/', 'b', 0x01, 0x00, 0x03, 'c', '/', 'd', 0x02},
			Packet{Type: TypeSubscribe, Subscribe: Subscribe{PacketID: 10, Subscriptions: []Subscription{
				{Filter: b("a/b"), QoS: QoS1}, {Filter: b("c/d"), QoS: QoS2}}}}},
		// MQTT 5.0 §3.8.3.1: options 0x2D are QoS 1, retain as published,
		// retain handling 2; 0x06 is QoS 2 with no local.
		{"5.0 SUBSCRIBE options", Level5, []byte{0x82, 0x0F, 0x00, 0x0A, 0x00,
			0x00, 0x03, 'a', '/', 'b', 0x29, 0x00, 0x03, 'c', '/', 'd', 0x06},
			Packet{Type: TypeSubscribe, Subscribe: Subscribe{PacketID: 10, Subscriptions: []Subscription{
				{Filter: b("a/b"), QoS: QoS1, RetainAsPublished: true, RetainHandling: 2},
				{Filter: b("c/d"), QoS: QoS2, NoLocal: true}}}}},
		// MQTT 3.1.1 Figure 3.26: granted QoS 0 and 2, and failure.
		{"3.1.1 SUBACK example", Level311, []byte{0x90, 0x05, 0x00, 0x0A, 0x00, 0x02, 0x80},
			Packet{Type: TypeSuback, Suback: Suback{PacketID: 10, ReasonCodes: []ReasonCode{GrantedQoS0, GrantedQoS2, UnspecifiedError}}}},
		// MQTT 3.1.1 Figure 3.30: unsubscribe "a/b" and "c/d".
		{"3.1.1 UNSUBSCRIBE example", Level311, []byte{0xA2, 0x0C, 0x00, 0x0A,
			0x00, 0x03, 'a', '/', 'b', 0x00, 0x03, 'c', '/', 'd'},
			Packet{Type: TypeUnsubscribe, Unsubscribe: Unsubscribe{PacketID: 10, Filters: [][]byte{b("a/b"), b("c/d")}}}},
		{"3.1.1 UNSUBACK", Level311, []byte{0xB0, 0x02, 0x00, 0x0A},
			Packet{Type: TypeUnsuback, Unsuback: Unsuback{PacketID: 10}}},
		{"5.0 UNSUBACK", Level5, []byte{0xB0, 0x05, 0x00, 0x0A, 0x00, 0x00, 0x11},
			Packet{Type: TypeUnsuback, Unsuback: Unsuback{PacketID: 10, ReasonCodes: []ReasonCode{Success, NoSubscriptionExisted}}}},
		{"PINGREQ", Level311, []byte{0xC0, 0x00}, Packet{Type: TypePingreq}},
		{"PINGRESP", Level5, []byte{0xD0, 0x00}, Packet{Type: TypePingresp}},
		{"3.1.1 DISCONNECT", Level311, []byte{0xE0, 0x00}, Packet{Type: TypeDisconnect}},
		{"5.0 DISCONNECT session taken over", Level5, []byte{0xE0, 0x01, 0x8E},
			Packet{Type: TypeDisconnect, Disconnect: Disconnect{Reason: SessionTakenOver}}},
		{"5.0 DISCONNECT with Session Expiry Interval", Level5, []byte{0xE0, 0x07, 0x00, 0x05, 0x11, 0x00, 0x00, 0x00, 0x00},
			Packet{Type: TypeDisconnect, Disconnect: Disconnect{Properties: props(func(p *Properties) { p.Present.Add(PropSessionExpiryInterval) })}}},
		{"5.0 AUTH continue", Level5, []byte{0xF0, 0x0A, 0x18, 0x08, 0x15, 0x00, 0x05, 'S', 'C', 'R', 'A', 'M'},
			Packet{Type: TypeAuth, Auth: Auth{Reason: ContinueAuthentication,
				Properties: props(func(p *Properties) { p.AuthenticationMethod = b("SCRAM"); p.Present.Add(PropAuthenticationMethod) })}}},
	}
}

// TestSpecPackets checks both directions against packets written out by
// hand: encoding the value gives exactly those bytes, and decoding the
// bytes gives the value.
func TestSpecPackets(t *testing.T) {
	for _, tc := range specPackets() {
		t.Run(tc.name, func(t *testing.T) {
			if got := AppendPacket(nil, tc.level, &tc.p); !bytes.Equal(got, tc.wire) {
				t.Errorf("encoded\n% x\nwant\n% x", got, tc.wire)
			}
			d := Decoder{Level: tc.level}
			if tc.p.Type == TypeConnect {
				d.Level = 0
			}
			var got Packet
			n, err := d.Decode(tc.wire, &got)
			if err != nil || n != len(tc.wire) {
				t.Fatalf("Decode = %d, %v", n, err)
			}
			if want, have := content(&tc.p), content(&got); got.Type != tc.p.Type || !reflect.DeepEqual(want, have) {
				t.Errorf("decoded\n%+v\nwant\n%+v", have, want)
			}
		})
	}
}

// TestSubackFailureByLevel: a 5.0 reason code of failure reaches a 3.1.1
// client as 0x80, the only failure its SUBACK can say; 5.0 keeps it.
func TestSubackFailureByLevel(t *testing.T) {
	s := &Suback{PacketID: 1, ReasonCodes: []ReasonCode{GrantedQoS1, TopicFilterInvalid, NotAuthorized}}
	if got, want := AppendSuback(nil, Level311, s), []byte{0x90, 0x05, 0x00, 0x01, 0x01, 0x80, 0x80}; !bytes.Equal(got, want) {
		t.Errorf("3.1.1 SUBACK\n% x\nwant\n% x", got, want)
	}
	if got, want := AppendSuback(nil, Level5, s), []byte{0x90, 0x06, 0x00, 0x01, 0x00, 0x01, 0x8F, 0x87}; !bytes.Equal(got, want) {
		t.Errorf("5.0 SUBACK\n% x\nwant\n% x", got, want)
	}
}

// TestDecodedBytesAlias pins the lifetime contract: decoded fields are
// views of the input, not copies.
func TestDecodedBytesAlias(t *testing.T) {
	buf := []byte{0x32, 0x09, 0x00, 0x03, 'a', '/', 'b', 0x00, 0x0A, 'h', 'i'}
	d := Decoder{Level: Level311}
	var p Packet
	if _, err := d.Decode(buf, &p); err != nil {
		t.Fatal(err)
	}
	buf[4], buf[9] = 'x', 'H'
	if string(p.Publish.Topic) != "x/b" || string(p.Publish.Payload) != "Hi" {
		t.Fatalf("topic %q payload %q do not alias the input", p.Publish.Topic, p.Publish.Payload)
	}
}

func TestValidTopicFilter(t *testing.T) {
	for f, want := range map[string]bool{
		"#": true, "+": true, "a/b": true, "a/+/c": true, "a/#": true, "+/+": true, "/": true, "//#": true,
		"$SYS/#": true, "$share/g/a/#": true, "$share/g/#": true, "$share/g//": true,
		"": false, "a#": false, "a/#/b": false, "#/": false, "a+": false, "+a": false, "a/b+/c": false,
		"$share/g": false, "$share//a": false, "$share/g/": false, "$share/+/a": false, "$share/a#/b": false,
	} {
		if got := ValidTopicFilter([]byte(f)); got != want {
			t.Errorf("ValidTopicFilter(%q) = %v, want %v", f, got, want)
		}
	}
}

func TestStrings(t *testing.T) {
	if Success.String() != "success" || MalformedPacket.String() != "malformed packet" || ReasonCode(0x03).String() != "reason code 0x03" {
		t.Error("ReasonCode.String")
	}
	if RefusedProtocolVersion.String() != "connection refused, unacceptable protocol version" || ConnectReturnCode(9).String() != "reserved return code 0x09" {
		t.Error("ConnectReturnCode.String")
	}
	if TypePubrel.String() != "PUBREL" || PropTopicAlias.String() != "Topic Alias" || Level5.String() != "5.0" {
		t.Error("Type, PropertyID or Level String")
	}
	for id := PropertyID(0); id < 0x30; id++ {
		if id.AllowedInWill() && !(id == PropWillDelayInterval || id.AllowedIn(TypePublish)) {
			t.Errorf("%v allowed in will properties", id)
		}
	}
}
