package packet

// The fixed header (MQTT 3.1.1 §2.2, 5.0 §2.1): one byte of packet type and
// flags, then the remaining length as a variable byte integer of one to four
// bytes. A packet is 2 to 268,435,460 bytes long.

// Type is the MQTT control packet type, the high four bits of the first byte
// of the fixed header.
type Type byte

// The control packet types. AUTH exists only in MQTT 5.0; in 3.1.1 its
// value is reserved.
const (
	TypeConnect     Type = 1
	TypeConnack     Type = 2
	TypePublish     Type = 3
	TypePuback      Type = 4
	TypePubrec      Type = 5
	TypePubrel      Type = 6
	TypePubcomp     Type = 7
	TypeSubscribe   Type = 8
	TypeSuback      Type = 9
	TypeUnsubscribe Type = 10
	TypeUnsuback    Type = 11
	TypePingreq     Type = 12
	TypePingresp    Type = 13
	TypeDisconnect  Type = 14
	TypeAuth        Type = 15
)

var typeNames = [16]string{
	"reserved type 0", "CONNECT", "CONNACK", "PUBLISH", "PUBACK", "PUBREC", "PUBREL", "PUBCOMP",
	"SUBSCRIBE", "SUBACK", "UNSUBSCRIBE", "UNSUBACK", "PINGREQ", "PINGRESP", "DISCONNECT", "AUTH",
}

// String returns the packet type's name as the specification spells it.
func (t Type) String() string {
	if t < 16 {
		return typeNames[t]
	}
	return "invalid type"
}

// QoS is a quality of service level: how many times a message is delivered.
type QoS byte

// The three levels. A fourth value, 3, is malformed wherever a QoS appears
// (MQTT-3.3.1-4).
const (
	QoS0 QoS = 0 // at most once
	QoS1 QoS = 1 // at least once
	QoS2 QoS = 2 // exactly once
)

// Level is the protocol level a client states in CONNECT (called the
// protocol version in 5.0). A connection keeps one level for its lifetime.
type Level byte

// The protocol levels the codec speaks. MQTT 3.1 (protocol name "MQIsdp")
// is accepted in CONNECT and then decoded with the rules of 3.1.1, which
// differ from it only in details the codec does not check.
const (
	Level31  Level = 3
	Level311 Level = 4
	Level5   Level = 5
)

// String returns the MQTT version the level stands for.
func (l Level) String() string {
	switch l {
	case Level31:
		return "3.1"
	case Level311:
		return "3.1.1"
	case Level5:
		return "5.0"
	case 0:
		return "unknown"
	}
	return "invalid"
}

// MaxRemainingLength is the largest remaining length a four-byte variable
// byte integer can state (MQTT 5.0 §1.5.5).
const MaxRemainingLength = 268_435_455

// MaxPacketSize is the largest packet the protocol allows: a one-byte type,
// a four-byte remaining length and MaxRemainingLength bytes of body.
const MaxPacketSize = 1 + 4 + MaxRemainingLength

// flagsFor returns the fixed-header flags each type other than PUBLISH must
// carry. PUBREL, SUBSCRIBE and UNSUBSCRIBE carry 0b0010, the others zero
// (MQTT-3.6.1-1, MQTT-3.8.1-1, MQTT-3.10.1-1, MQTT-2.1.3-1).
func flagsFor(t Type) byte {
	switch t {
	case TypePubrel, TypeSubscribe, TypeUnsubscribe:
		return 0b0010
	}
	return 0
}

// checkFixedHeader validates the first byte of a packet, so that a bad type
// or reserved flag is refused as soon as the byte arrives.
func checkFixedHeader(b0 byte, level Level) error {
	t := Type(b0 >> 4)
	flags := b0 & 0x0f
	switch {
	case t == 0:
		return newError(t, MalformedPacket, "MQTT 5.0 §2.1.2", "reserved packet type 0")
	case t == TypeAuth && level != Level5 && level != 0:
		return newError(t, MalformedPacket, "MQTT 5.0 §2.1.2", "AUTH is a reserved packet type before MQTT 5.0")
	case level == 0 && t != TypeConnect:
		return newError(t, ProtocolError, "MQTT-3.1.0-1", "the first packet on a connection must be CONNECT")
	case level != 0 && t == TypeConnect:
		return newError(t, ProtocolError, "MQTT-3.1.0-2", "a second CONNECT on the connection")
	case t == TypePublish:
		qos := flags >> 1 & 3
		if qos == 3 {
			return newError(t, MalformedPacket, "MQTT-3.3.1-4", "QoS 3")
		}
		if qos == 0 && flags&0b1000 != 0 {
			return newError(t, MalformedPacket, "MQTT-3.3.1-2", "DUP set on a QoS 0 message")
		}
	case flags != flagsFor(t):
		return newError(t, MalformedPacket, "MQTT-2.1.3-1", "reserved flag bits set wrongly in the fixed header")
	}
	return nil
}

// The results of readVarint besides success.
const (
	varintOK = iota
	varintShort
	varintTooLong
	varintNotMinimal
)

// readVarint reads a variable byte integer (MQTT 5.0 §1.5.5, 3.1.1 §2.2.3)
// from the start of b. It returns the value, the number of bytes it took and
// varintOK, or varintShort when b ends inside it, or an error state when it
// is longer than four bytes or not in its shortest form (MQTT-1.5.5-1).
func readVarint(b []byte) (v uint32, n int, state int) {
	var shift uint
	for i := 0; i < 4; i++ {
		if i >= len(b) {
			return 0, 0, varintShort
		}
		c := b[i]
		v |= uint32(c&0x7f) << shift
		if c&0x80 == 0 {
			if c == 0 && i > 0 {
				return 0, 0, varintNotMinimal
			}
			return v, i + 1, varintOK
		}
		shift += 7
	}
	return 0, 0, varintTooLong
}

// appendVarint appends v, which must not exceed MaxRemainingLength, as a
// variable byte integer.
func appendVarint(dst []byte, v uint32) []byte {
	for v >= 0x80 {
		dst = append(dst, byte(v)|0x80)
		v >>= 7
	}
	return append(dst, byte(v))
}

// varintSize returns how many bytes appendVarint takes for v.
func varintSize(v int) int {
	switch {
	case v < 1<<7:
		return 1
	case v < 1<<14:
		return 2
	case v < 1<<21:
		return 3
	}
	return 4
}

// appendFixedHeader appends the first byte and the remaining length.
func appendFixedHeader(dst []byte, t Type, flags byte, remaining int) []byte {
	dst = append(dst, byte(t)<<4|flags)
	return appendVarint(dst, uint32(remaining))
}
