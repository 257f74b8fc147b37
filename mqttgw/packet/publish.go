package packet

import "encoding/binary"

// Publish is a PUBLISH packet (MQTT 3.1.1 §3.3, 5.0 §3.3): an application
// message, in either direction. PacketID is on the wire only for QoS 1 and
// 2; Properties only at Level5.
type Publish struct {
	Dup        bool
	QoS        QoS
	Retain     bool
	Topic      []byte // empty only at Level5 with a Topic Alias
	PacketID   uint16
	Properties Properties
	Payload    []byte
}

func (p *Publish) decode(flags byte, body []byte, level Level) error {
	r := reader{b: body, t: TypePublish}
	// The fixed header was checked already: QoS is not 3, DUP implies QoS > 0.
	p.Dup = flags&0b1000 != 0
	p.QoS = QoS(flags >> 1 & 3)
	p.Retain = flags&1 != 0
	topic, err := r.binary("topic name")
	if err != nil {
		return err
	}
	// One pass over the topic for what MQTT-1.5.4-1, MQTT-1.5.4-2 and
	// MQTT-3.3.2-2 forbid; only a topic with a NUL or non-ASCII byte takes
	// the slow path.
	wildcard, ascii := false, true
	for _, c := range topic {
		switch {
		case c == '+' || c == '#':
			wildcard = true
		case c == 0 || c >= 0x80:
			ascii = false
		}
	}
	if !ascii && !validString(topic) {
		return badString(TypePublish, "topic name", topic)
	}
	if wildcard {
		// MQTT-3.3.2-2: 0x90 is the DISCONNECT reason code for a topic name
		// that is well-formed but not accepted.
		return newError(TypePublish, TopicNameInvalid, "MQTT-3.3.2-2", "topic name contains a wildcard")
	}
	p.Topic = topic
	p.PacketID = 0
	if p.QoS > 0 {
		if p.PacketID, err = r.uint16("packet identifier"); err != nil {
			return err
		}
		if p.PacketID == 0 {
			return newError(TypePublish, ProtocolError, "MQTT-2.2.1-3", "packet identifier 0")
		}
	}
	if level == Level5 {
		if err := p.Properties.decode(&r, TypePublish); err != nil {
			return err
		}
		if len(topic) == 0 && !p.Properties.Present.Has(PropTopicAlias) {
			return newError(TypePublish, ProtocolError, "MQTT 5.0 §3.3.2.1", "empty topic name without a Topic Alias")
		}
		if p.Properties.Present.Has(PropResponseTopic) && !ValidTopicName(p.Properties.ResponseTopic) {
			return newError(TypePublish, ProtocolError, "MQTT-3.3.2-14", "Response Topic is empty or contains a wildcard")
		}
	} else {
		if len(topic) == 0 {
			return newError(TypePublish, ProtocolError, "MQTT-4.7.3-1", "empty topic name")
		}
		p.Properties.clear()
	}
	p.Payload = r.b
	return nil
}

func (p *Publish) flags() byte {
	f := byte(p.QoS&3) << 1
	if p.Dup {
		f |= 0b1000
	}
	if p.Retain {
		f |= 1
	}
	return f
}

// AppendPublish appends p as a PUBLISH packet at the given level to dst and
// returns the extended slice. It writes what p says without checking it;
// the topic must be at most 65,535 bytes. It allocates only if dst must
// grow.
func AppendPublish(dst []byte, level Level, p *Publish) []byte {
	n := 2 + len(p.Topic) + len(p.Payload)
	if p.QoS > 0 {
		n += 2
	}
	if level == Level5 {
		n += p.Properties.wireSize()
	}
	dst = appendFixedHeader(dst, TypePublish, p.flags(), n)
	dst = appendBinary(dst, p.Topic)
	if p.QoS > 0 {
		dst = binary.BigEndian.AppendUint16(dst, p.PacketID)
	}
	if level == Level5 {
		dst = p.Properties.appendTo(dst)
	}
	return append(dst, p.Payload...)
}

// Ack is one of the four packets that acknowledge a publication by its
// packet identifier: PUBACK (QoS 1), and PUBREC, PUBREL, PUBCOMP (the
// exchange of QoS 2), MQTT 5.0 §3.4 to §3.7. Type says which. Reason and
// Properties exist only at Level5.
type Ack struct {
	Type       Type // TypePuback, TypePubrec, TypePubrel or TypePubcomp
	PacketID   uint16
	Reason     ReasonCode
	Properties Properties
}

func (a *Ack) decode(t Type, body []byte, level Level) error {
	r := reader{b: body, t: t}
	a.Type = t
	var err error
	if a.PacketID, err = r.uint16("packet identifier"); err != nil {
		return err
	}
	if a.PacketID == 0 {
		return newError(t, ProtocolError, "MQTT-2.2.1-3", "packet identifier 0")
	}
	a.Reason = Success
	a.Properties.clear()
	if level == Level5 {
		// A remaining length of 2 means Success without properties, of 3
		// a reason code without properties (MQTT 5.0 §3.4.2.1, §3.4.2.2).
		if len(r.b) > 0 {
			c, _ := r.byte1("reason code")
			a.Reason = ReasonCode(c)
			if !a.Reason.ValidFor(t) {
				// MQTT-3.4.2-1, MQTT-3.5.2-1, MQTT-3.6.2-1, MQTT-3.7.2-1.
				return newError(t, MalformedPacket, "MQTT-3."+itoa(int(t))+".2-1", "reason code 0x"+hex2(c)+" is not a reason code of "+t.String())
			}
			if len(r.b) > 0 {
				if err := a.Properties.decode(&r, t); err != nil {
					return err
				}
			}
		}
	}
	if len(r.b) != 0 {
		return trailing(t)
	}
	return nil
}

// AppendAck appends a as the packet a.Type (PUBACK, PUBREC, PUBREL or
// PUBCOMP) at the given level to dst and returns the extended slice. At
// Level5 it takes the short forms MQTT 5.0 §3.4.2.1 allows: no reason code
// for Success without properties, no property length without properties.
// It allocates only if dst must grow.
func AppendAck(dst []byte, level Level, a *Ack) []byte {
	n := 2
	full := level == Level5 && !a.Properties.Empty()
	short := level == Level5 && !full && a.Reason != Success
	switch {
	case full:
		n += 1 + a.Properties.wireSize()
	case short:
		n++
	}
	dst = appendFixedHeader(dst, a.Type, flagsFor(a.Type), n)
	dst = binary.BigEndian.AppendUint16(dst, a.PacketID)
	switch {
	case full:
		dst = append(dst, byte(a.Reason))
		dst = a.Properties.appendTo(dst)
	case short:
		dst = append(dst, byte(a.Reason))
	}
	return dst
}
