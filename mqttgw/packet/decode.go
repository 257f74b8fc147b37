package packet

// Decoder decodes the packets of one connection from its input stream. It
// holds the connection's protocol level and size limit, nothing else, so it
// costs a few bytes per connection; decoded packets go into a Packet the
// caller supplies, which can be shared by every connection of an event loop.
// A Decoder is not safe for concurrent use.
type Decoder struct {
	// Level is the connection's protocol level. While it is zero only
	// CONNECT is accepted (MQTT-3.1.0-1), and Decode sets it from the
	// CONNECT's protocol level; after that a CONNECT is refused
	// (MQTT-3.1.0-2). A client sets it to the level it sent.
	Level Level

	// MaxPacketSize, when positive, is the largest packet accepted, counted
	// as MQTT 5.0 §3.1.2.11.4 counts it: the whole packet, fixed header
	// included. A larger packet is refused from its fixed header alone,
	// before its body is read or buffered.
	MaxPacketSize int
}

// Packet receives one decoded packet. Type says which of the other fields
// holds it; PINGREQ and PINGRESP have no fields. Ack holds PUBACK, PUBREC,
// PUBREL and PUBCOMP. A Packet is about 4 KiB, so an event loop keeps one
// for all its connections rather than one per connection: a packet is
// handled before the next is decoded.
//
// Lifetime: every []byte in a decoded packet (topics, payloads, client
// identifier, property values, filters) aliases the buffer given to Decode,
// and is valid only as long as the caller leaves those bytes alone; copy
// what must outlive the buffer, such as a topic kept in a session. The
// slices of the struct itself (Subscriptions, Filters, ReasonCodes,
// UserProperties, SubscriptionIdentifiers) are reused by the next Decode
// into the same Packet, which is what makes decoding allocation-free once
// they have grown.
type Packet struct {
	Type        Type
	Connect     Connect
	Connack     Connack
	Publish     Publish
	Ack         Ack
	Subscribe   Subscribe
	Suback      Suback
	Unsubscribe Unsubscribe
	Unsuback    Unsuback
	Disconnect  Disconnect
	Auth        Auth
}

// Decode decodes the packet at the start of b into p.
//
// It returns the length of the packet and a nil error when b holds a whole
// valid packet; the caller consumes that many bytes. When b ends inside the
// packet it returns ErrIncomplete, with n the total length of the packet
// once the fixed header is complete (so the caller can size its buffer),
// or 0 before. Otherwise the error is an *Error saying what is wrong and
// what to answer; the connection cannot continue after it, since the
// stream can no longer be framed reliably.
//
// Decode allocates nothing except for an *Error, and when a reused slice
// of p must grow. See Packet for how long the decoded fields stay valid.
func (d *Decoder) Decode(b []byte, p *Packet) (n int, err error) {
	if len(b) == 0 {
		return 0, ErrIncomplete
	}
	if err := checkFixedHeader(b[0], d.Level); err != nil {
		return 0, err
	}
	t := Type(b[0] >> 4)
	rl, vn, state := readVarint(b[1:])
	switch state {
	case varintShort:
		return 0, ErrIncomplete
	case varintTooLong:
		return 0, newError(t, MalformedPacket, "MQTT 5.0 §2.1.4", "remaining length is longer than four bytes")
	case varintNotMinimal:
		return 0, newError(t, MalformedPacket, "MQTT-1.5.5-1", "remaining length is not in its shortest form")
	}
	total := 1 + vn + int(rl)
	if d.MaxPacketSize > 0 && total > d.MaxPacketSize {
		// MQTT-3.2.2-15 binds a 5.0 client to the limit the server stated
		// in CONNACK. Refused here, before the body costs a buffer.
		return 0, newError(t, PacketTooLarge, "MQTT-3.2.2-15", "packet of "+itoa(total)+" bytes exceeds the maximum packet size of "+itoa(d.MaxPacketSize))
	}
	if len(b) < total {
		return total, ErrIncomplete
	}
	body := b[1+vn : total : total]
	p.Type = t
	switch t {
	case TypeConnect:
		err = p.Connect.decode(body, d)
	case TypeConnack:
		err = p.Connack.decode(body, d.Level)
	case TypePublish:
		err = p.Publish.decode(b[0]&0x0f, body, d.Level)
	case TypePuback, TypePubrec, TypePubrel, TypePubcomp:
		err = p.Ack.decode(t, body, d.Level)
	case TypeSubscribe:
		err = p.Subscribe.decode(body, d.Level)
	case TypeSuback:
		err = p.Suback.decode(body, d.Level)
	case TypeUnsubscribe:
		err = p.Unsubscribe.decode(body, d.Level)
	case TypeUnsuback:
		err = p.Unsuback.decode(body, d.Level)
	case TypePingreq, TypePingresp:
		if len(body) != 0 {
			err = trailing(t)
		}
	case TypeDisconnect:
		err = p.Disconnect.decode(body, d.Level)
	case TypeAuth:
		err = p.Auth.decode(body)
	}
	if err != nil {
		return 0, err
	}
	return total, nil
}
