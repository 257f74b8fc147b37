package packet

import "encoding/binary"

// Connect is a CONNECT packet (MQTT 3.1.1 §3.1, 5.0 §3.1), the first packet
// a client sends. Level decides its layout: Properties and WillProperties
// exist only at Level5, and before 5.0 a password requires a user name.
type Connect struct {
	Level      Level // protocol level: Level31 ("MQIsdp"), Level311 or Level5 ("MQTT")
	CleanStart bool  // Clean Session in 3.1.1
	KeepAlive  uint16
	Properties Properties
	ClientID   []byte

	WillFlag       bool
	WillQoS        QoS
	WillRetain     bool
	WillProperties Properties
	WillTopic      []byte
	WillPayload    []byte

	UsernameFlag bool
	Username     []byte
	PasswordFlag bool
	Password     []byte
}

// The connect flags (MQTT 3.1.1 §3.1.2.3, 5.0 §3.1.2.2).
const (
	flagReserved     = 0x01
	flagCleanStart   = 0x02
	flagWill         = 0x04
	flagWillQoSShift = 3
	flagWillRetain   = 0x20
	flagPassword     = 0x40
	flagUsername     = 0x80
)

// decodeConnect decodes a CONNECT body. It sets d.Level from the protocol
// level as soon as it has been read, when d.Level is still unknown, so a
// caller refusing the rest of the packet knows which CONNACK to send.
func (c *Connect) decode(body []byte, d *Decoder) error {
	r := reader{b: body, t: TypeConnect}
	name, err := r.binary("protocol name")
	if err != nil {
		return err
	}
	lv, err := r.byte1("protocol level")
	if err != nil {
		return err
	}
	level := Level(lv)
	switch {
	case string(name) == "MQTT" && (level == Level311 || level == Level5),
		string(name) == "MQIsdp" && level == Level31:
	case string(name) == "MQTT" || string(name) == "MQIsdp":
		// MQTT-3.1.2-2: an unsupported level is answered with 0x01 (3.1.1) or 0x84 (5.0).
		e := newError(TypeConnect, UnsupportedProtocolVersion, "MQTT-3.1.2-2", "unsupported protocol level "+itoa(int(lv)))
		e.ReturnCode = RefusedProtocolVersion
		return e
	default:
		// MQTT-3.1.2-1: a client speaking something else is disconnected.
		return newError(TypeConnect, MalformedPacket, "MQTT-3.1.2-1", "protocol name is not MQTT")
	}
	if d.Level == 0 {
		d.Level = level
	}
	c.Level = level

	flags, err := r.byte1("connect flags")
	if err != nil {
		return err
	}
	if flags&flagReserved != 0 {
		return newError(TypeConnect, MalformedPacket, "MQTT-3.1.2-3", "reserved connect flag is set")
	}
	c.CleanStart = flags&flagCleanStart != 0
	c.WillFlag = flags&flagWill != 0
	c.WillQoS = QoS(flags >> flagWillQoSShift & 3)
	c.WillRetain = flags&flagWillRetain != 0
	c.UsernameFlag = flags&flagUsername != 0
	c.PasswordFlag = flags&flagPassword != 0
	if c.WillQoS == 3 {
		return newError(TypeConnect, MalformedPacket, "MQTT 5.0 §3.1.2.6", "will QoS 3")
	}
	if !c.WillFlag && c.WillQoS != 0 {
		return newError(TypeConnect, MalformedPacket, "MQTT-3.1.2-11", "will QoS set without the will flag")
	}
	if !c.WillFlag && c.WillRetain {
		return newError(TypeConnect, MalformedPacket, "MQTT-3.1.2-13", "will retain set without the will flag")
	}
	if level != Level5 && c.PasswordFlag && !c.UsernameFlag {
		// 5.0 lifted this rule; 3.1.1 closes the connection.
		return newError(TypeConnect, MalformedPacket, "MQTT-3.1.2-22 (3.1.1)", "password flag set without the user name flag")
	}
	if c.KeepAlive, err = r.uint16("keep alive"); err != nil {
		return err
	}
	if level == Level5 {
		if err := c.Properties.decode(&r, TypeConnect); err != nil {
			return err
		}
	} else {
		c.Properties.clear()
	}
	if c.ClientID, err = r.string("client identifier"); err != nil {
		return err
	}
	if len(c.ClientID) == 0 && !c.CleanStart && level != Level5 {
		// MQTT-3.1.3-8: 3.1.1 refuses an empty client identifier with a
		// persistent session; 5.0 lets the server assign one.
		e := newError(TypeConnect, ClientIdentifierNotValid, "MQTT-3.1.3-8 (3.1.1)", "empty client identifier without clean session")
		e.ReturnCode = RefusedIdentifierRejected
		return e
	}
	c.WillProperties.clear()
	c.WillTopic, c.WillPayload = nil, nil
	if c.WillFlag {
		if level == Level5 {
			if err := c.WillProperties.decode(&r, willContext); err != nil {
				return err
			}
		}
		if c.WillTopic, err = r.string("will topic"); err != nil {
			return err
		}
		if !ValidTopicName(c.WillTopic) {
			return newError(TypeConnect, TopicNameInvalid, "MQTT-3.3.2-2", "will topic is empty or contains a wildcard")
		}
		if c.WillPayload, err = r.binary("will payload"); err != nil {
			return err
		}
	}
	c.Username, c.Password = nil, nil
	if c.UsernameFlag {
		if c.Username, err = r.string("user name"); err != nil {
			return err
		}
	}
	if c.PasswordFlag {
		if c.Password, err = r.binary("password"); err != nil {
			return err
		}
	}
	if len(r.b) != 0 {
		return trailing(TypeConnect)
	}
	return nil
}

// AppendConnect appends c as a CONNECT packet to dst and returns the
// extended slice. It writes what c says without checking it, so tests can
// build packets that break the rules; strings and binary data must be at
// most 65,535 bytes. It allocates only if dst must grow.
func AppendConnect(dst []byte, c *Connect) []byte {
	name := "MQTT"
	if c.Level == Level31 {
		name = "MQIsdp"
	}
	n := 2 + len(name) + 1 + 1 + 2 + 2 + len(c.ClientID)
	v5 := c.Level == Level5
	if v5 {
		n += c.Properties.wireSize()
	}
	var flags byte
	if c.CleanStart {
		flags |= flagCleanStart
	}
	if c.WillFlag {
		flags |= flagWill
		n += 2 + len(c.WillTopic) + 2 + len(c.WillPayload)
		if v5 {
			n += c.WillProperties.wireSize()
		}
	}
	flags |= byte(c.WillQoS&3) << flagWillQoSShift
	if c.WillRetain {
		flags |= flagWillRetain
	}
	if c.UsernameFlag {
		flags |= flagUsername
		n += 2 + len(c.Username)
	}
	if c.PasswordFlag {
		flags |= flagPassword
		n += 2 + len(c.Password)
	}
	dst = appendFixedHeader(dst, TypeConnect, 0, n)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(name)))
	dst = append(dst, name...)
	dst = append(dst, byte(c.Level), flags)
	dst = binary.BigEndian.AppendUint16(dst, c.KeepAlive)
	if v5 {
		dst = c.Properties.appendTo(dst)
	}
	dst = appendBinary(dst, c.ClientID)
	if c.WillFlag {
		if v5 {
			dst = c.WillProperties.appendTo(dst)
		}
		dst = appendBinary(dst, c.WillTopic)
		dst = appendBinary(dst, c.WillPayload)
	}
	if c.UsernameFlag {
		dst = appendBinary(dst, c.Username)
	}
	if c.PasswordFlag {
		dst = appendBinary(dst, c.Password)
	}
	return dst
}

// Connack is a CONNACK packet (MQTT 3.1.1 §3.2, 5.0 §3.2), the server's
// answer to CONNECT. At Level5 the result is Reason and Properties apply;
// before 5.0 it is ReturnCode.
type Connack struct {
	SessionPresent bool
	Reason         ReasonCode        // 5.0
	ReturnCode     ConnectReturnCode // 3.1.1
	Properties     Properties        // 5.0
}

func (c *Connack) decode(body []byte, level Level) error {
	r := reader{b: body, t: TypeConnack}
	flags, err := r.byte1("connect acknowledge flags")
	if err != nil {
		return err
	}
	if flags&^1 != 0 {
		return newError(TypeConnack, MalformedPacket, "MQTT-3.2.2-1", "reserved connect acknowledge flags are set")
	}
	c.SessionPresent = flags == 1
	code, err := r.byte1("reason code")
	if err != nil {
		return err
	}
	c.Reason, c.ReturnCode = 0, 0
	if level == Level5 {
		c.Reason = ReasonCode(code)
		if !c.Reason.ValidFor(TypeConnack) {
			return newError(TypeConnack, MalformedPacket, "MQTT-3.2.2-8", "reason code 0x"+hex2(code)+" is not a reason code of CONNACK")
		}
		if err := c.Properties.decode(&r, TypeConnack); err != nil {
			return err
		}
	} else {
		c.ReturnCode = ConnectReturnCode(code)
		if code > byte(RefusedNotAuthorized) {
			return newError(TypeConnack, MalformedPacket, "MQTT 3.1.1 §3.2.2.3", "reserved return code 0x"+hex2(code))
		}
		c.Properties.clear()
	}
	if c.SessionPresent && code != 0 {
		// MQTT-3.2.2-6 (5.0), MQTT-3.2.2-4 (3.1.1).
		return newError(TypeConnack, ProtocolError, "MQTT-3.2.2-6", "session present on a refused connection")
	}
	if len(r.b) != 0 {
		return trailing(TypeConnack)
	}
	return nil
}

// AppendConnack appends c as a CONNACK packet at the given level to dst and
// returns the extended slice. It allocates only if dst must grow.
func AppendConnack(dst []byte, level Level, c *Connack) []byte {
	n := 2
	code := byte(c.ReturnCode)
	if level == Level5 {
		n += c.Properties.wireSize()
		code = byte(c.Reason)
	}
	dst = appendFixedHeader(dst, TypeConnack, 0, n)
	var flags byte
	if c.SessionPresent {
		flags = 1
	}
	dst = append(dst, flags, code)
	if level == Level5 {
		dst = c.Properties.appendTo(dst)
	}
	return dst
}

// itoa formats a small non-negative number for an error message.
func itoa(v int) string {
	if v == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for v > 0 {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
	}
	return string(b[i:])
}
