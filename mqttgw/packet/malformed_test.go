package packet

import (
	"errors"
	"testing"
)

// raw builds a packet from its first byte and body parts, with a correct
// remaining length.
func raw(b0 byte, parts ...[]byte) []byte {
	var body []byte
	for _, p := range parts {
		body = append(body, p...)
	}
	return append(appendVarint([]byte{b0}, uint32(len(body))), body...)
}

func u16(v uint16) []byte { return []byte{byte(v >> 8), byte(v)} }

// str is a two-byte-length-prefixed string or binary field.
func str(s string) []byte { return append(u16(uint16(len(s))), s...) }

// prop is a property block: its length, then the given properties.
func prop(parts ...[]byte) []byte {
	var body []byte
	for _, p := range parts {
		body = append(body, p...)
	}
	return append(appendVarint(nil, uint32(len(body))), body...)
}

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

var (
	noProps  = []byte{0}
	header5  = cat(str("MQTT"), []byte{5})
	header4  = cat(str("MQTT"), []byte{4})
	keep60   = u16(60)
	expiry10 = []byte{byte(PropMessageExpiryInterval), 0, 0, 0, 10}
)

type malformedCase struct {
	name       string
	level      Level // decoder level; 0 for a first packet
	max        int   // Decoder.MaxPacketSize
	in         []byte
	reason     ReasonCode
	returnCode ConnectReturnCode
}

func malformedCases() []malformedCase {
	return []malformedCase{
		// The fixed header.
		{"reserved type 0", Level5, 0, []byte{0x00, 0x00}, MalformedPacket, 0},
		{"AUTH before 5.0", Level311, 0, []byte{0xF0, 0x00}, MalformedPacket, 0},
		{"first packet not CONNECT", 0, 0, []byte{0xC0, 0x00}, ProtocolError, 0},
		{"PUBLISH QoS 3", Level5, 0, raw(0x36, str("a"), u16(1), noProps), MalformedPacket, 0},
		{"PUBLISH QoS 3 refused from the first byte", Level311, 0, []byte{0x36}, MalformedPacket, 0},
		{"PUBLISH DUP on QoS 0", Level311, 0, raw(0x38, str("a")), MalformedPacket, 0},
		{"PUBACK reserved flag", Level311, 0, raw(0x41, u16(1)), MalformedPacket, 0},
		{"PUBREL flags 0000", Level311, 0, raw(0x60, u16(1)), MalformedPacket, 0},
		{"SUBSCRIBE flags 0000", Level311, 0, raw(0x80, u16(1), str("a"), []byte{0}), MalformedPacket, 0},
		{"UNSUBSCRIBE flags 0011", Level311, 0, raw(0xA3, u16(1), str("a")), MalformedPacket, 0},
		{"PINGREQ reserved flag", Level5, 0, []byte{0xC8, 0x00}, MalformedPacket, 0},
		{"remaining length of five bytes", Level5, 0, []byte{0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F}, MalformedPacket, 0},
		{"remaining length not shortest", Level5, 0, []byte{0x30, 0x80, 0x00}, MalformedPacket, 0},

		// Size.
		{"oversized from the fixed header alone", Level5, 100, []byte{0x32, 0xE8, 0x07}, PacketTooLarge, 0},
		{"oversized at 3.1.1", Level311, 100, []byte{0x30, 0x80, 0x80, 0x80, 0x01}, PacketTooLarge, 0},
		{"oversized by one byte", Level5, 10, raw(0x30, str("abcd"), noProps, []byte("xy")), PacketTooLarge, 0},

		// Remaining length against contents.
		{"PUBACK 3.1.1 longer than 2", Level311, 0, raw(0x40, u16(1), []byte{0}), MalformedPacket, 0},
		{"PUBACK truncated", Level5, 0, raw(0x40, []byte{1}), MalformedPacket, 0},
		{"PINGREQ with a body", Level5, 0, raw(0xC0, []byte{0}), MalformedPacket, 0},
		{"DISCONNECT 3.1.1 with a body", Level311, 0, raw(0xE0, []byte{0}), MalformedPacket, 0},
		{"topic length past the end", Level311, 0, raw(0x30, u16(10), []byte("abc")), MalformedPacket, 0},
		{"property length past the end", Level5, 0, raw(0x30, str("a"), []byte{20, 1, 1}), MalformedPacket, 0},
		{"property value past its block", Level5, 0, raw(0x30, str("a"), []byte{3}, expiry10), MalformedPacket, 0},
		{"CONNECT with trailing bytes", 0, 0, raw(0x10, header4, []byte{2}, keep60, str("c"), []byte{0}), MalformedPacket, 0},
		{"SUBSCRIBE filter without options", Level311, 0, raw(0x82, u16(1), str("a")), MalformedPacket, 0},
		{"CONNACK 5.0 without property length", Level5, 0, raw(0x20, []byte{0, 0}), MalformedPacket, 0},

		// Strings (MQTT-1.5.4).
		{"topic not UTF-8", Level311, 0, raw(0x30, str("a/\xff")), MalformedPacket, 0},
		{"topic with a surrogate", Level5, 0, raw(0x30, str("a/\xed\xa0\x80"), noProps), MalformedPacket, 0},
		{"topic with U+0000", Level5, 0, raw(0x30, str("a\x00b"), noProps), MalformedPacket, 0},
		{"client identifier not UTF-8", 0, 0, raw(0x10, header5, []byte{2}, keep60, noProps, str("\xc3")), MalformedPacket, 0},
		{"user name with U+0000", 0, 0, raw(0x10, header4, []byte{0x82}, keep60, str("c"), str("\x00")), MalformedPacket, 0},
		{"filter not UTF-8", Level5, 0, raw(0x82, u16(1), noProps, str("\xfe"), []byte{0}), MalformedPacket, 0},
		{"reason string not UTF-8", Level5, 0, raw(0x40, u16(1), []byte{0x80}, prop([]byte{0x1F}, str("\xc0\xaf"))), MalformedPacket, 0},
		{"user property with U+0000", Level5, 0, raw(0x30, str("a"), prop([]byte{0x26}, str("k"), str("v\x00"))), MalformedPacket, 0},

		// Topics.
		{"PUBLISH topic with +", Level5, 0, raw(0x30, str("a/+/c"), noProps), TopicNameInvalid, 0},
		{"PUBLISH topic with #", Level311, 0, raw(0x30, str("a/#")), TopicNameInvalid, 0},
		{"empty topic without alias", Level5, 0, raw(0x30, str(""), noProps), ProtocolError, 0},
		{"empty topic at 3.1.1", Level311, 0, raw(0x30, str("")), ProtocolError, 0},
		{"topic alias 0", Level5, 0, raw(0x30, str(""), prop([]byte{0x23, 0, 0})), TopicAliasInvalid, 0},
		{"response topic with wildcard", Level5, 0, raw(0x30, str("a"), prop([]byte{0x08}, str("r/#"))), ProtocolError, 0},
		{"filter a/#/b", Level311, 0, raw(0x82, u16(1), str("a/#/b"), []byte{0}), TopicFilterInvalid, 0},
		{"filter a+", Level5, 0, raw(0x82, u16(1), noProps, str("a+"), []byte{0}), TopicFilterInvalid, 0},
		{"empty filter", Level5, 0, raw(0x82, u16(1), noProps, str(""), []byte{0}), TopicFilterInvalid, 0},
		{"shared filter without filter", Level5, 0, raw(0x82, u16(1), noProps, str("$share/g"), []byte{0}), TopicFilterInvalid, 0},
		{"shared filter with wildcard name", Level5, 0, raw(0x82, u16(1), noProps, str("$share/+/a"), []byte{0}), TopicFilterInvalid, 0},
		{"UNSUBSCRIBE filter #/a", Level311, 0, raw(0xA2, u16(1), str("#/a")), TopicFilterInvalid, 0},

		// Packet identifiers (MQTT-2.2.1-3).
		{"PUBLISH QoS 1 packet id 0", Level311, 0, raw(0x32, str("a"), u16(0)), ProtocolError, 0},
		{"PUBACK packet id 0", Level5, 0, raw(0x40, u16(0)), ProtocolError, 0},
		{"PUBREL packet id 0", Level311, 0, raw(0x62, u16(0)), ProtocolError, 0},
		{"SUBSCRIBE packet id 0", Level5, 0, raw(0x82, u16(0), noProps, str("a"), []byte{0}), ProtocolError, 0},
		{"UNSUBSCRIBE packet id 0", Level311, 0, raw(0xA2, u16(0), str("a")), ProtocolError, 0},
		{"SUBACK packet id 0", Level311, 0, raw(0x90, u16(0), []byte{0}), ProtocolError, 0},

		// SUBSCRIBE, UNSUBSCRIBE and their acknowledgements.
		{"SUBSCRIBE without filters 3.1.1", Level311, 0, raw(0x82, u16(1)), ProtocolError, 0},
		{"SUBSCRIBE without filters 5.0", Level5, 0, raw(0x82, u16(1), noProps), ProtocolError, 0},
		{"UNSUBSCRIBE without filters", Level5, 0, raw(0xA2, u16(1), noProps), ProtocolError, 0},
		{"SUBSCRIBE 5.0 QoS 3", Level5, 0, raw(0x82, u16(1), noProps, str("a"), []byte{3}), ProtocolError, 0},
		{"second CONNECT", Level311, 0, raw(0x10, header4, []byte{2}, keep60, str("c")), ProtocolError, 0},
		{"SUBSCRIBE QoS 3", Level311, 0, raw(0x82, u16(1), str("a"), []byte{3}), MalformedPacket, 0},
		{"SUBSCRIBE 3.1.1 reserved option bits", Level311, 0, raw(0x82, u16(1), str("a"), []byte{0x04}), MalformedPacket, 0},
		{"SUBSCRIBE 5.0 reserved option bits", Level5, 0, raw(0x82, u16(1), noProps, str("a"), []byte{0x40}), MalformedPacket, 0},
		{"SUBSCRIBE retain handling 3", Level5, 0, raw(0x82, u16(1), noProps, str("a"), []byte{0x30}), ProtocolError, 0},
		{"no local on a shared subscription", Level5, 0, raw(0x82, u16(1), noProps, str("$share/g/a"), []byte{0x04}), ProtocolError, 0},
		{"SUBSCRIBE two subscription identifiers", Level5, 0, raw(0x82, u16(1), prop([]byte{0x0B, 1, 0x0B, 2}), str("a"), []byte{0}), ProtocolError, 0},
		{"SUBSCRIBE subscription identifier 0", Level5, 0, raw(0x82, u16(1), prop([]byte{0x0B, 0}), str("a"), []byte{0}), ProtocolError, 0},
		{"SUBACK 3.1.1 return code 3", Level311, 0, raw(0x90, u16(1), []byte{3}), MalformedPacket, 0},
		{"SUBACK 5.0 reason 0x10", Level5, 0, raw(0x90, u16(1), noProps, []byte{0x10}), MalformedPacket, 0},
		{"SUBACK without reason codes", Level5, 0, raw(0x90, u16(1), noProps), ProtocolError, 0},
		{"UNSUBACK 5.0 reason 0x04", Level5, 0, raw(0xB0, u16(1), noProps, []byte{0x04}), MalformedPacket, 0},
		{"UNSUBACK 3.1.1 with a body", Level311, 0, raw(0xB0, u16(1), []byte{0}), MalformedPacket, 0},

		// Properties (MQTT 5.0 §2.2.2).
		{"duplicate Message Expiry Interval", Level5, 0, raw(0x30, str("a"), prop(expiry10, expiry10)), ProtocolError, 0},
		{"duplicate Reason String", Level5, 0, raw(0x40, u16(1), []byte{0x80}, prop([]byte{0x1F}, str("x"), []byte{0x1F}, str("y"))), ProtocolError, 0},
		{"Session Expiry Interval in PUBLISH", Level5, 0, raw(0x30, str("a"), prop([]byte{0x11, 0, 0, 0, 1})), MalformedPacket, 0},
		{"Topic Alias in PUBACK", Level5, 0, raw(0x40, u16(1), []byte{0}, prop([]byte{0x23, 0, 1})), MalformedPacket, 0},
		{"Reason String in SUBSCRIBE", Level5, 0, raw(0x82, u16(1), prop([]byte{0x1F}, str("x")), str("a"), []byte{0}), MalformedPacket, 0},
		{"unknown property 0x7F", Level5, 0, raw(0x30, str("a"), prop([]byte{0x7F, 0})), MalformedPacket, 0},
		{"unknown property 0x00", Level5, 0, raw(0xE0, []byte{0}, prop([]byte{0x00})), MalformedPacket, 0},
		{"Payload Format Indicator 2", Level5, 0, raw(0x30, str("a"), prop([]byte{0x01, 2})), ProtocolError, 0},
		{"Maximum QoS 2", Level5, 0, raw(0x20, []byte{0, 0}, prop([]byte{0x24, 2})), ProtocolError, 0},
		{"Receive Maximum 0", 0, 0, raw(0x10, header5, []byte{2}, keep60, prop([]byte{0x21, 0, 0}), str("c")), ProtocolError, 0},
		{"Maximum Packet Size 0", 0, 0, raw(0x10, header5, []byte{2}, keep60, prop([]byte{0x27, 0, 0, 0, 0}), str("c")), ProtocolError, 0},
		{"Authentication Data without Method", 0, 0, raw(0x10, header5, []byte{2}, keep60, prop([]byte{0x16}, str("d")), str("c")), ProtocolError, 0},
		{"Will Delay Interval in CONNECT properties", 0, 0, raw(0x10, header5, []byte{2}, keep60, prop([]byte{0x18, 0, 0, 0, 1}), str("c")), MalformedPacket, 0},
		{"Session Expiry Interval in will properties", 0, 0, raw(0x10, header5, []byte{0x06}, keep60, noProps, str("c"), prop([]byte{0x11, 0, 0, 0, 1}), str("w"), str("p")), MalformedPacket, 0},

		// Reason codes a packet cannot carry.
		{"PUBACK reason 0x92", Level5, 0, raw(0x40, u16(1), []byte{0x92}), MalformedPacket, 0},
		{"PUBREL reason 0x10", Level5, 0, raw(0x62, u16(1), []byte{0x10}), MalformedPacket, 0},
		{"DISCONNECT reason 0x01", Level5, 0, raw(0xE0, []byte{0x01}), MalformedPacket, 0},
		{"AUTH reason 0x80", Level5, 0, raw(0xF0, []byte{0x80}, noProps), MalformedPacket, 0},
		{"AUTH continue without method", Level5, 0, raw(0xF0, []byte{0x18}, noProps), ProtocolError, 0},
		{"CONNACK 5.0 reason 0x8E", Level5, 0, raw(0x20, []byte{0, 0x8E}, noProps), MalformedPacket, 0},
		{"CONNACK 3.1.1 return code 6", Level311, 0, raw(0x20, []byte{0, 6}), MalformedPacket, 0},
		{"CONNACK reserved flags", Level311, 0, raw(0x20, []byte{2, 0}), MalformedPacket, 0},
		{"CONNACK session present on refusal", Level5, 0, raw(0x20, []byte{1, 0x87}, noProps), ProtocolError, 0},

		// CONNECT (MQTT 3.1.1 §3.1, 5.0 §3.1).
		{"protocol name MQTX", 0, 0, raw(0x10, str("MQTX"), []byte{4, 2}, keep60, str("c")), MalformedPacket, 0},
		{"protocol level 6", 0, 0, raw(0x10, str("MQTT"), []byte{6, 2}, keep60, noProps, str("c")), UnsupportedProtocolVersion, RefusedProtocolVersion},
		{"MQIsdp at level 4", 0, 0, raw(0x10, str("MQIsdp"), []byte{4, 2}, keep60, str("c")), UnsupportedProtocolVersion, RefusedProtocolVersion},
		{"reserved connect flag", 0, 0, raw(0x10, header4, []byte{0x03}, keep60, str("c")), MalformedPacket, 0},
		{"will QoS 3", 0, 0, raw(0x10, header4, []byte{0x1E}, keep60, str("c"), str("w"), str("p")), MalformedPacket, 0},
		{"will retain without will", 0, 0, raw(0x10, header4, []byte{0x22}, keep60, str("c")), MalformedPacket, 0},
		{"will QoS without will", 0, 0, raw(0x10, header5, []byte{0x0A}, keep60, noProps, str("c")), MalformedPacket, 0},
		{"password without user name at 3.1.1", 0, 0, raw(0x10, header4, []byte{0x42}, keep60, str("c"), str("pw")), MalformedPacket, 0},
		{"empty client id without clean session", 0, 0, raw(0x10, header4, []byte{0}, keep60, str("")), ClientIdentifierNotValid, RefusedIdentifierRejected},
		{"will topic with wildcard", 0, 0, raw(0x10, header4, []byte{0x06}, keep60, str("c"), str("w/+"), str("p")), TopicNameInvalid, 0},
		{"will payload missing", 0, 0, raw(0x10, header4, []byte{0x06}, keep60, str("c"), str("w")), MalformedPacket, 0},
		{"user name missing", 0, 0, raw(0x10, header5, []byte{0x82}, keep60, noProps, str("c")), MalformedPacket, 0},
	}
}

// TestMalformed feeds packets that break the specifications and checks
// that each is refused with the reason code (and 3.1.1 return code) the
// gateway must send, and with a message and clause that say why.
func TestMalformed(t *testing.T) {
	for _, tc := range malformedCases() {
		t.Run(tc.name, func(t *testing.T) {
			d := Decoder{Level: tc.level, MaxPacketSize: tc.max}
			var p Packet
			n, err := d.Decode(tc.in, &p)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Decode(% x) = %d, %v; want an *Error with reason %v", tc.in, n, err, tc.reason)
			}
			if e.Reason != tc.reason || e.ReturnCode != tc.returnCode {
				t.Fatalf("Decode(% x): %v\nreason %#x (%v) return code %d; want reason %#x (%v) return code %d",
					tc.in, err, byte(e.Reason), e.Reason, e.ReturnCode, byte(tc.reason), tc.reason, tc.returnCode)
			}
			if n != 0 {
				t.Fatalf("Decode consumed %d bytes of a refused packet", n)
			}
			if e.Msg == "" || e.Clause == "" {
				t.Fatalf("error without message or clause: %#v", e)
			}
			t.Log(err)
		})
	}
}

// TestOversizedNeedsNoBody checks that a hostile remaining length is
// refused from the fixed header, with none of the body present, and that a
// packet at the limit is accepted.
func TestOversizedNeedsNoBody(t *testing.T) {
	d := Decoder{Level: Level5, MaxPacketSize: 1024}
	var p Packet
	_, err := d.Decode([]byte{0x30, 0xFF, 0xFF, 0xFF, 0x7F}, &p)
	var e *Error
	if !errors.As(err, &e) || e.Reason != PacketTooLarge {
		t.Fatalf("268 MB PUBLISH header: %v, want packet too large", err)
	}
	pub := Publish{Topic: b("t"), Payload: make([]byte, 1024-1-2-3-1)}
	buf := AppendPublish(nil, Level5, &pub)
	if len(buf) != 1024 {
		t.Fatalf("test packet is %d bytes", len(buf))
	}
	if n, err := d.Decode(buf, &p); err != nil || n != 1024 {
		t.Fatalf("packet at the limit: %d, %v", n, err)
	}
}

// TestIncomplete checks the need-more answers: nothing known before the
// remaining length is complete, the total length after.
func TestIncomplete(t *testing.T) {
	d := Decoder{Level: Level311}
	var p Packet
	for _, tc := range []struct {
		in   []byte
		need int
	}{
		{nil, 0},
		{[]byte{0x30}, 0},
		{[]byte{0x30, 0x80}, 0},
		{[]byte{0x30, 0x80, 0x80, 0x80}, 0},
		{[]byte{0x30, 0x80, 0x01}, 131},
		{[]byte{0x40, 0x02, 0x00}, 4},
		{[]byte{0x30, 0xFF, 0xFF, 0xFF, 0x7F}, MaxPacketSize},
	} {
		n, err := d.Decode(tc.in, &p)
		if !errors.Is(err, ErrIncomplete) || n != tc.need {
			t.Errorf("Decode(% x) = %d, %v; want %d, ErrIncomplete", tc.in, n, err, tc.need)
		}
	}
}

// TestLevelFromConnect checks that the level is learnt from CONNECT even
// when the rest of the CONNECT is refused, so the refusal can be sent in
// the client's version.
func TestLevelFromConnect(t *testing.T) {
	var d Decoder
	var p Packet
	_, err := d.Decode(raw(0x10, header5, []byte{2}, keep60, prop([]byte{0x21, 0, 0}), str("c")), &p)
	if err == nil || d.Level != Level5 {
		t.Fatalf("level %v, err %v; want level 5.0 and an error", d.Level, err)
	}
	d = Decoder{}
	if _, err := d.Decode(raw(0x10, str("MQIsdp"), []byte{3, 2}, keep60, str("c")), &p); err != nil || d.Level != Level31 {
		t.Fatalf("3.1 CONNECT: level %v, err %v", d.Level, err)
	}
	// After CONNECT, a 3.1 connection decodes with the 3.1.1 rules.
	if n, err := d.Decode(raw(0x82, u16(1), str("a/#"), []byte{1}), &p); err != nil || n != 10 || p.Type != TypeSubscribe {
		t.Fatalf("3.1 SUBSCRIBE: %d, %v", n, err)
	}
}
