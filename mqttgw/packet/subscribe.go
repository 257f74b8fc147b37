package packet

import "encoding/binary"

// Subscription is one topic filter of a SUBSCRIBE with its subscription
// options (MQTT 5.0 §3.8.3.1). Before 5.0 only QoS exists.
type Subscription struct {
	Filter            []byte
	QoS               QoS  // maximum QoS the subscriber accepts
	NoLocal           bool // 5.0: do not send the client its own publications
	RetainAsPublished bool // 5.0: keep the RETAIN flag of forwarded messages
	RetainHandling    byte // 5.0: 0 send retained on subscribe, 1 only if new, 2 never
}

// Subscribe is a SUBSCRIBE packet (MQTT 3.1.1 §3.8, 5.0 §3.8). Properties
// exist only at Level5. A decoded Subscribe has at least one Subscription,
// each with a valid filter.
type Subscribe struct {
	PacketID      uint16
	Properties    Properties
	Subscriptions []Subscription
}

// The subscription options byte (MQTT 5.0 §3.8.3.1).
const (
	optQoSMask             = 0x03
	optNoLocal             = 0x04
	optRetainAsPublished   = 0x08
	optRetainHandlingShift = 4
	optReservedV5          = 0xC0
	optReservedV3          = 0xFC
)

func (s *Subscribe) decode(body []byte, level Level) error {
	r := reader{b: body, t: TypeSubscribe}
	var err error
	if s.PacketID, err = r.uint16("packet identifier"); err != nil {
		return err
	}
	if s.PacketID == 0 {
		return newError(TypeSubscribe, ProtocolError, "MQTT-2.2.1-3", "packet identifier 0")
	}
	if level == Level5 {
		if err := s.Properties.decode(&r, TypeSubscribe); err != nil {
			return err
		}
	} else {
		s.Properties.clear()
	}
	s.Subscriptions = s.Subscriptions[:0]
	if len(r.b) == 0 {
		return newError(TypeSubscribe, ProtocolError, "MQTT-3.8.3-2", "SUBSCRIBE without a topic filter")
	}
	for len(r.b) > 0 {
		f, err := r.string("topic filter")
		if err != nil {
			return err
		}
		o, err := r.byte1("subscription options")
		if err != nil {
			return err
		}
		if !ValidTopicFilter(f) {
			return newError(TypeSubscribe, TopicFilterInvalid, "MQTT 5.0 §4.7", "topic filter is empty or misuses a wildcard")
		}
		sub := Subscription{Filter: f, QoS: QoS(o & optQoSMask)}
		if sub.QoS == 3 {
			// Malformed in 3.1.1 (MQTT-3-8.3-4), a Protocol Error in 5.0
			// (§3.8.3.1).
			if level == Level5 {
				return newError(TypeSubscribe, ProtocolError, "MQTT 5.0 §3.8.3.1", "maximum QoS 3")
			}
			return newError(TypeSubscribe, MalformedPacket, "MQTT-3-8.3-4 (3.1.1)", "requested QoS 3")
		}
		if level == Level5 {
			if o&optReservedV5 != 0 {
				return newError(TypeSubscribe, MalformedPacket, "MQTT-3.8.3-5", "reserved subscription option bits are set")
			}
			sub.NoLocal = o&optNoLocal != 0
			sub.RetainAsPublished = o&optRetainAsPublished != 0
			sub.RetainHandling = o >> optRetainHandlingShift & 3
			if sub.RetainHandling == 3 {
				return newError(TypeSubscribe, ProtocolError, "MQTT 5.0 §3.8.3.1", "retain handling 3")
			}
			if sub.NoLocal && isShared(f) {
				return newError(TypeSubscribe, ProtocolError, "MQTT-3.8.3-4", "no local on a shared subscription")
			}
		} else if o&optReservedV3 != 0 {
			return newError(TypeSubscribe, MalformedPacket, "MQTT-3-8.3-4 (3.1.1)", "reserved requested QoS bits are set")
		}
		s.Subscriptions = append(s.Subscriptions, sub)
	}
	return nil
}

func (sub *Subscription) options(level Level) byte {
	o := byte(sub.QoS & optQoSMask)
	if level == Level5 {
		if sub.NoLocal {
			o |= optNoLocal
		}
		if sub.RetainAsPublished {
			o |= optRetainAsPublished
		}
		o |= (sub.RetainHandling & 3) << optRetainHandlingShift
	}
	return o
}

// AppendSubscribe appends s as a SUBSCRIBE packet at the given level to dst
// and returns the extended slice. It writes what s says without checking
// it. It allocates only if dst must grow.
func AppendSubscribe(dst []byte, level Level, s *Subscribe) []byte {
	n := 2
	if level == Level5 {
		n += s.Properties.wireSize()
	}
	for i := range s.Subscriptions {
		n += 2 + len(s.Subscriptions[i].Filter) + 1
	}
	dst = appendFixedHeader(dst, TypeSubscribe, flagsFor(TypeSubscribe), n)
	dst = binary.BigEndian.AppendUint16(dst, s.PacketID)
	if level == Level5 {
		dst = s.Properties.appendTo(dst)
	}
	for i := range s.Subscriptions {
		sub := &s.Subscriptions[i]
		dst = appendBinary(dst, sub.Filter)
		dst = append(dst, sub.options(level))
	}
	return dst
}

// Suback is a SUBACK packet (MQTT 3.1.1 §3.9, 5.0 §3.9): one reason code
// per filter of the SUBSCRIBE it answers, in order. Before 5.0 the codes
// are return codes: GrantedQoS0 to GrantedQoS2, or 0x80 (UnspecifiedError)
// for failure. Properties exist only at Level5.
type Suback struct {
	PacketID    uint16
	Properties  Properties
	ReasonCodes []ReasonCode
}

func (s *Suback) decode(body []byte, level Level) error {
	r := reader{b: body, t: TypeSuback}
	var err error
	if s.PacketID, err = r.uint16("packet identifier"); err != nil {
		return err
	}
	if s.PacketID == 0 {
		return newError(TypeSuback, ProtocolError, "MQTT-2.2.1-3", "packet identifier 0")
	}
	if level == Level5 {
		if err := s.Properties.decode(&r, TypeSuback); err != nil {
			return err
		}
	} else {
		s.Properties.clear()
	}
	s.ReasonCodes = s.ReasonCodes[:0]
	if len(r.b) == 0 {
		return newError(TypeSuback, ProtocolError, "MQTT-3.9.3-2", "SUBACK without a reason code")
	}
	for _, c := range r.b {
		rc := ReasonCode(c)
		if level == Level5 && !rc.ValidFor(TypeSuback) || level != Level5 && !validSubackV3(rc) {
			return newError(TypeSuback, MalformedPacket, "MQTT-3.9.3-2", "reason code 0x"+hex2(c)+" is not a reason code of SUBACK")
		}
		s.ReasonCodes = append(s.ReasonCodes, rc)
	}
	return nil
}

// AppendSuback appends s as a SUBACK packet at the given level to dst and
// returns the extended slice. It allocates only if dst must grow. Before
// 5.0 every failure is written as 0x80, the one failure code 3.1.1 has
// (MQTT-3.9.3-2), so a gateway may give the 5.0 reason whatever the level.
func AppendSuback(dst []byte, level Level, s *Suback) []byte {
	n := 2 + len(s.ReasonCodes)
	if level == Level5 {
		n += s.Properties.wireSize()
	}
	dst = appendFixedHeader(dst, TypeSuback, 0, n)
	dst = binary.BigEndian.AppendUint16(dst, s.PacketID)
	if level == Level5 {
		dst = s.Properties.appendTo(dst)
	}
	for _, rc := range s.ReasonCodes {
		if level != Level5 && rc.IsError() {
			rc = UnspecifiedError
		}
		dst = append(dst, byte(rc))
	}
	return dst
}

// Unsubscribe is an UNSUBSCRIBE packet (MQTT 3.1.1 §3.10, 5.0 §3.10).
// Properties exist only at Level5. A decoded Unsubscribe has at least one
// filter, each valid.
type Unsubscribe struct {
	PacketID   uint16
	Properties Properties
	Filters    [][]byte
}

func (u *Unsubscribe) decode(body []byte, level Level) error {
	r := reader{b: body, t: TypeUnsubscribe}
	var err error
	if u.PacketID, err = r.uint16("packet identifier"); err != nil {
		return err
	}
	if u.PacketID == 0 {
		return newError(TypeUnsubscribe, ProtocolError, "MQTT-2.2.1-3", "packet identifier 0")
	}
	if level == Level5 {
		if err := u.Properties.decode(&r, TypeUnsubscribe); err != nil {
			return err
		}
	} else {
		u.Properties.clear()
	}
	u.Filters = u.Filters[:0]
	if len(r.b) == 0 {
		return newError(TypeUnsubscribe, ProtocolError, "MQTT-3.10.3-2", "UNSUBSCRIBE without a topic filter")
	}
	for len(r.b) > 0 {
		f, err := r.string("topic filter")
		if err != nil {
			return err
		}
		if !ValidTopicFilter(f) {
			return newError(TypeUnsubscribe, TopicFilterInvalid, "MQTT 5.0 §4.7", "topic filter is empty or misuses a wildcard")
		}
		u.Filters = append(u.Filters, f)
	}
	return nil
}

// AppendUnsubscribe appends u as an UNSUBSCRIBE packet at the given level to
// dst and returns the extended slice. It allocates only if dst must grow.
func AppendUnsubscribe(dst []byte, level Level, u *Unsubscribe) []byte {
	n := 2
	if level == Level5 {
		n += u.Properties.wireSize()
	}
	for _, f := range u.Filters {
		n += 2 + len(f)
	}
	dst = appendFixedHeader(dst, TypeUnsubscribe, flagsFor(TypeUnsubscribe), n)
	dst = binary.BigEndian.AppendUint16(dst, u.PacketID)
	if level == Level5 {
		dst = u.Properties.appendTo(dst)
	}
	for _, f := range u.Filters {
		dst = appendBinary(dst, f)
	}
	return dst
}

// Unsuback is an UNSUBACK packet (MQTT 3.1.1 §3.11, 5.0 §3.11). Before 5.0
// it carries only the packet identifier; at Level5 it has properties and
// one reason code per filter of the UNSUBSCRIBE it answers.
type Unsuback struct {
	PacketID    uint16
	Properties  Properties
	ReasonCodes []ReasonCode
}

func (u *Unsuback) decode(body []byte, level Level) error {
	r := reader{b: body, t: TypeUnsuback}
	var err error
	if u.PacketID, err = r.uint16("packet identifier"); err != nil {
		return err
	}
	if u.PacketID == 0 {
		return newError(TypeUnsuback, ProtocolError, "MQTT-2.2.1-3", "packet identifier 0")
	}
	u.ReasonCodes = u.ReasonCodes[:0]
	u.Properties.clear()
	if level != Level5 {
		if len(r.b) != 0 {
			return trailing(TypeUnsuback)
		}
		return nil
	}
	if err := u.Properties.decode(&r, TypeUnsuback); err != nil {
		return err
	}
	if len(r.b) == 0 {
		return newError(TypeUnsuback, ProtocolError, "MQTT-3.11.3-2", "UNSUBACK without a reason code")
	}
	for _, c := range r.b {
		rc := ReasonCode(c)
		if !rc.ValidFor(TypeUnsuback) {
			return newError(TypeUnsuback, MalformedPacket, "MQTT-3.11.3-2", "reason code 0x"+hex2(c)+" is not a reason code of UNSUBACK")
		}
		u.ReasonCodes = append(u.ReasonCodes, rc)
	}
	return nil
}

// AppendUnsuback appends u as an UNSUBACK packet at the given level to dst
// and returns the extended slice; before 5.0 it writes only the packet
// identifier. It allocates only if dst must grow.
func AppendUnsuback(dst []byte, level Level, u *Unsuback) []byte {
	if level != Level5 {
		dst = appendFixedHeader(dst, TypeUnsuback, 0, 2)
		return binary.BigEndian.AppendUint16(dst, u.PacketID)
	}
	n := 2 + u.Properties.wireSize() + len(u.ReasonCodes)
	dst = appendFixedHeader(dst, TypeUnsuback, 0, n)
	dst = binary.BigEndian.AppendUint16(dst, u.PacketID)
	dst = u.Properties.appendTo(dst)
	for _, rc := range u.ReasonCodes {
		dst = append(dst, byte(rc))
	}
	return dst
}
