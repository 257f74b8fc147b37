package packet

import (
	"encoding/binary"
	"math/bits"
)

// Properties (MQTT 5.0 §2.2.2): a variable byte integer length, then
// properties, each an identifier followed by a value of the identifier's
// type. Which identifiers a packet may carry is fixed by Table 2-4; any
// other is a Malformed Packet. Each may appear once, except User Property
// anywhere and Subscription Identifier in PUBLISH, which may repeat.

// PropertyID is a property identifier.
type PropertyID byte

// The property identifiers of MQTT 5.0 §2.2.2.2, Table 2-4.
const (
	PropPayloadFormatIndicator          PropertyID = 0x01
	PropMessageExpiryInterval           PropertyID = 0x02
	PropContentType                     PropertyID = 0x03
	PropResponseTopic                   PropertyID = 0x08
	PropCorrelationData                 PropertyID = 0x09
	PropSubscriptionIdentifier          PropertyID = 0x0B
	PropSessionExpiryInterval           PropertyID = 0x11
	PropAssignedClientIdentifier        PropertyID = 0x12
	PropServerKeepAlive                 PropertyID = 0x13
	PropAuthenticationMethod            PropertyID = 0x15
	PropAuthenticationData              PropertyID = 0x16
	PropRequestProblemInformation       PropertyID = 0x17
	PropWillDelayInterval               PropertyID = 0x18
	PropRequestResponseInformation      PropertyID = 0x19
	PropResponseInformation             PropertyID = 0x1A
	PropServerReference                 PropertyID = 0x1C
	PropReasonString                    PropertyID = 0x1F
	PropReceiveMaximum                  PropertyID = 0x21
	PropTopicAliasMaximum               PropertyID = 0x22
	PropTopicAlias                      PropertyID = 0x23
	PropMaximumQoS                      PropertyID = 0x24
	PropRetainAvailable                 PropertyID = 0x25
	PropUserProperty                    PropertyID = 0x26
	PropMaximumPacketSize               PropertyID = 0x27
	PropWildcardSubscriptionAvailable   PropertyID = 0x28
	PropSubscriptionIdentifierAvailable PropertyID = 0x29
	PropSharedSubscriptionAvailable     PropertyID = 0x2A
)

const maxPropertyID = PropSharedSubscriptionAvailable

// The data type of a property's value (MQTT 5.0 §1.5).
const (
	kindNone   = iota // not a property identifier
	kindByte          // Byte
	kindUint16        // Two Byte Integer
	kindUint32        // Four Byte Integer
	kindVarint        // Variable Byte Integer
	kindString        // UTF-8 Encoded String
	kindBinary        // Binary Data
	kindPair          // UTF-8 String Pair
)

// willContext stands for the will properties of CONNECT in the property
// table, at the bit of packet type 0, which never occurs.
const willContext Type = 0

// propertyTable gives each identifier's name, value type and the packets
// (bit 1<<Type, bit 0 for the will properties) that may carry it.
var propertyTable = [maxPropertyID + 1]struct {
	name  string
	kind  int
	where uint16
}{
	PropPayloadFormatIndicator:          {"Payload Format Indicator", kindByte, 1<<TypePublish | 1},
	PropMessageExpiryInterval:           {"Message Expiry Interval", kindUint32, 1<<TypePublish | 1},
	PropContentType:                     {"Content Type", kindString, 1<<TypePublish | 1},
	PropResponseTopic:                   {"Response Topic", kindString, 1<<TypePublish | 1},
	PropCorrelationData:                 {"Correlation Data", kindBinary, 1<<TypePublish | 1},
	PropSubscriptionIdentifier:          {"Subscription Identifier", kindVarint, 1<<TypePublish | 1<<TypeSubscribe},
	PropSessionExpiryInterval:           {"Session Expiry Interval", kindUint32, 1<<TypeConnect | 1<<TypeConnack | 1<<TypeDisconnect},
	PropAssignedClientIdentifier:        {"Assigned Client Identifier", kindString, 1 << TypeConnack},
	PropServerKeepAlive:                 {"Server Keep Alive", kindUint16, 1 << TypeConnack},
	PropAuthenticationMethod:            {"Authentication Method", kindString, 1<<TypeConnect | 1<<TypeConnack | 1<<TypeAuth},
	PropAuthenticationData:              {"Authentication Data", kindBinary, 1<<TypeConnect | 1<<TypeConnack | 1<<TypeAuth},
	PropRequestProblemInformation:       {"Request Problem Information", kindByte, 1 << TypeConnect},
	PropWillDelayInterval:               {"Will Delay Interval", kindUint32, 1},
	PropRequestResponseInformation:      {"Request Response Information", kindByte, 1 << TypeConnect},
	PropResponseInformation:             {"Response Information", kindString, 1 << TypeConnack},
	PropServerReference:                 {"Server Reference", kindString, 1<<TypeConnack | 1<<TypeDisconnect},
	PropReasonString:                    {"Reason String", kindString, 1<<TypeConnack | 1<<TypePuback | 1<<TypePubrec | 1<<TypePubrel | 1<<TypePubcomp | 1<<TypeSuback | 1<<TypeUnsuback | 1<<TypeDisconnect | 1<<TypeAuth},
	PropReceiveMaximum:                  {"Receive Maximum", kindUint16, 1<<TypeConnect | 1<<TypeConnack},
	PropTopicAliasMaximum:               {"Topic Alias Maximum", kindUint16, 1<<TypeConnect | 1<<TypeConnack},
	PropTopicAlias:                      {"Topic Alias", kindUint16, 1 << TypePublish},
	PropMaximumQoS:                      {"Maximum QoS", kindByte, 1 << TypeConnack},
	PropRetainAvailable:                 {"Retain Available", kindByte, 1 << TypeConnack},
	PropUserProperty:                    {"User Property", kindPair, 1<<TypeConnect | 1<<TypeConnack | 1<<TypePublish | 1<<TypePuback | 1<<TypePubrec | 1<<TypePubrel | 1<<TypePubcomp | 1<<TypeSubscribe | 1<<TypeSuback | 1<<TypeUnsubscribe | 1<<TypeUnsuback | 1<<TypeDisconnect | 1<<TypeAuth | 1},
	PropMaximumPacketSize:               {"Maximum Packet Size", kindUint32, 1<<TypeConnect | 1<<TypeConnack},
	PropWildcardSubscriptionAvailable:   {"Wildcard Subscription Available", kindByte, 1 << TypeConnack},
	PropSubscriptionIdentifierAvailable: {"Subscription Identifier Available", kindByte, 1 << TypeConnack},
	PropSharedSubscriptionAvailable:     {"Shared Subscription Available", kindByte, 1 << TypeConnack},
}

// String returns the property's name as the specification spells it.
func (id PropertyID) String() string {
	if id <= maxPropertyID && propertyTable[id].kind != kindNone {
		return propertyTable[id].name
	}
	return "property 0x" + hex2(byte(id))
}

// AllowedIn reports whether a packet of type t may carry the property
// (MQTT 5.0 Table 2-4). The will properties of CONNECT are a context of
// their own; AllowedInWill reports on them.
func (id PropertyID) AllowedIn(t Type) bool {
	return t != willContext && id.allowed(t)
}

// AllowedInWill reports whether the property may be one of the will
// properties of a CONNECT (MQTT 5.0 §3.1.3.2).
func (id PropertyID) AllowedInWill() bool { return id.allowed(willContext) }

func (id PropertyID) allowed(ctx Type) bool {
	return id <= maxPropertyID && propertyTable[id].where&(1<<ctx) != 0
}

// PropertySet is a set of property identifiers: the single-valued
// properties present in a Properties.
type PropertySet uint64

// Has reports whether id is in the set.
func (s PropertySet) Has(id PropertyID) bool { return id < 64 && s&(1<<id) != 0 }

// Add puts id in the set.
func (s *PropertySet) Add(id PropertyID) { *s |= 1 << (id & 63) }

// Remove takes id out of the set.
func (s *PropertySet) Remove(id PropertyID) { *s &^= 1 << (id & 63) }

// UserProperty is one name/value pair of a User Property (MQTT 5.0
// §3.1.2.11.8). Names may repeat; their order is kept.
type UserProperty struct {
	Key, Value []byte
}

// Properties holds the MQTT 5.0 properties of one packet. A single-valued
// property is on the wire exactly when its identifier is in Present: the
// decoder sets Present, and the encoder writes only what is in it, so a
// property that is absent and one present with a zero value stay distinct
// (an absent Maximum QoS means 2, a present zero means 0). The repeatable
// properties, UserProperties and SubscriptionIdentifiers, are present when
// non-empty and are not recorded in Present.
//
// In a decoded packet the []byte fields alias the decoder's input; the
// slices are reused by the next decode into the same Properties.
type Properties struct {
	Present PropertySet

	PayloadFormatIndicator          byte   // 0 unspecified bytes, 1 UTF-8
	MessageExpiryInterval           uint32 // seconds
	ContentType                     []byte
	ResponseTopic                   []byte
	CorrelationData                 []byte
	SubscriptionIdentifiers         []uint32 // 1 to 268,435,455; several only in PUBLISH
	SessionExpiryInterval           uint32   // seconds
	AssignedClientIdentifier        []byte
	ServerKeepAlive                 uint16 // seconds
	AuthenticationMethod            []byte
	AuthenticationData              []byte
	RequestProblemInformation       byte
	WillDelayInterval               uint32 // seconds
	RequestResponseInformation      byte
	ResponseInformation             []byte
	ServerReference                 []byte
	ReasonString                    []byte
	ReceiveMaximum                  uint16
	TopicAliasMaximum               uint16
	TopicAlias                      uint16
	MaximumQoS                      byte
	RetainAvailable                 byte
	UserProperties                  []UserProperty
	MaximumPacketSize               uint32
	WildcardSubscriptionAvailable   byte
	SubscriptionIdentifierAvailable byte
	SharedSubscriptionAvailable     byte
}

// Reset empties p, keeping the capacity of its repeatable properties.
func (p *Properties) Reset() {
	*p = Properties{UserProperties: p.UserProperties[:0], SubscriptionIdentifiers: p.SubscriptionIdentifiers[:0]}
}

// Empty reports whether p holds no property, so that nothing but a zero
// property length would be written.
func (p *Properties) Empty() bool {
	return p.Present == 0 && len(p.UserProperties) == 0 && len(p.SubscriptionIdentifiers) == 0
}

func (p *Properties) bytesOf(id PropertyID) []byte {
	switch id {
	case PropContentType:
		return p.ContentType
	case PropResponseTopic:
		return p.ResponseTopic
	case PropCorrelationData:
		return p.CorrelationData
	case PropAssignedClientIdentifier:
		return p.AssignedClientIdentifier
	case PropAuthenticationMethod:
		return p.AuthenticationMethod
	case PropAuthenticationData:
		return p.AuthenticationData
	case PropResponseInformation:
		return p.ResponseInformation
	case PropServerReference:
		return p.ServerReference
	case PropReasonString:
		return p.ReasonString
	}
	return nil
}

func (p *Properties) setBytes(id PropertyID, v []byte) {
	switch id {
	case PropContentType:
		p.ContentType = v
	case PropResponseTopic:
		p.ResponseTopic = v
	case PropCorrelationData:
		p.CorrelationData = v
	case PropAssignedClientIdentifier:
		p.AssignedClientIdentifier = v
	case PropAuthenticationMethod:
		p.AuthenticationMethod = v
	case PropAuthenticationData:
		p.AuthenticationData = v
	case PropResponseInformation:
		p.ResponseInformation = v
	case PropServerReference:
		p.ServerReference = v
	case PropReasonString:
		p.ReasonString = v
	}
}

func (p *Properties) intOf(id PropertyID) uint32 {
	switch id {
	case PropPayloadFormatIndicator:
		return uint32(p.PayloadFormatIndicator)
	case PropMessageExpiryInterval:
		return p.MessageExpiryInterval
	case PropSessionExpiryInterval:
		return p.SessionExpiryInterval
	case PropServerKeepAlive:
		return uint32(p.ServerKeepAlive)
	case PropRequestProblemInformation:
		return uint32(p.RequestProblemInformation)
	case PropWillDelayInterval:
		return p.WillDelayInterval
	case PropRequestResponseInformation:
		return uint32(p.RequestResponseInformation)
	case PropReceiveMaximum:
		return uint32(p.ReceiveMaximum)
	case PropTopicAliasMaximum:
		return uint32(p.TopicAliasMaximum)
	case PropTopicAlias:
		return uint32(p.TopicAlias)
	case PropMaximumQoS:
		return uint32(p.MaximumQoS)
	case PropRetainAvailable:
		return uint32(p.RetainAvailable)
	case PropMaximumPacketSize:
		return p.MaximumPacketSize
	case PropWildcardSubscriptionAvailable:
		return uint32(p.WildcardSubscriptionAvailable)
	case PropSubscriptionIdentifierAvailable:
		return uint32(p.SubscriptionIdentifierAvailable)
	case PropSharedSubscriptionAvailable:
		return uint32(p.SharedSubscriptionAvailable)
	}
	return 0
}

func (p *Properties) setInt(id PropertyID, v uint32) {
	switch id {
	case PropPayloadFormatIndicator:
		p.PayloadFormatIndicator = byte(v)
	case PropMessageExpiryInterval:
		p.MessageExpiryInterval = v
	case PropSessionExpiryInterval:
		p.SessionExpiryInterval = v
	case PropServerKeepAlive:
		p.ServerKeepAlive = uint16(v)
	case PropRequestProblemInformation:
		p.RequestProblemInformation = byte(v)
	case PropWillDelayInterval:
		p.WillDelayInterval = v
	case PropRequestResponseInformation:
		p.RequestResponseInformation = byte(v)
	case PropReceiveMaximum:
		p.ReceiveMaximum = uint16(v)
	case PropTopicAliasMaximum:
		p.TopicAliasMaximum = uint16(v)
	case PropTopicAlias:
		p.TopicAlias = uint16(v)
	case PropMaximumQoS:
		p.MaximumQoS = byte(v)
	case PropRetainAvailable:
		p.RetainAvailable = byte(v)
	case PropMaximumPacketSize:
		p.MaximumPacketSize = v
	case PropWildcardSubscriptionAvailable:
		p.WildcardSubscriptionAvailable = byte(v)
	case PropSubscriptionIdentifierAvailable:
		p.SubscriptionIdentifierAvailable = byte(v)
	case PropSharedSubscriptionAvailable:
		p.SharedSubscriptionAvailable = byte(v)
	}
}

// clear is Reset for the decoder, which skips the work when p is already
// empty: the decoder sets no field without adding it to Present, so an
// empty Present and no repeatable properties mean every field is zero
// unless the caller wrote one behind Present's back.
func (p *Properties) clear() {
	if !p.Empty() {
		p.Reset()
	}
}

// size returns the length of the properties without the property length
// that precedes them.
func (p *Properties) size() int {
	if p.Empty() {
		return 0
	}
	n := 0
	for s := uint64(p.Present); s != 0; s &= s - 1 {
		id := PropertyID(bits.TrailingZeros64(s))
		if id > maxPropertyID {
			continue
		}
		switch propertyTable[id].kind {
		case kindByte:
			n += 2
		case kindUint16:
			n += 3
		case kindUint32:
			n += 5
		case kindString, kindBinary:
			n += 3 + len(p.bytesOf(id))
		}
	}
	for _, v := range p.SubscriptionIdentifiers {
		n += 1 + varintSize(int(v))
	}
	for _, u := range p.UserProperties {
		n += 5 + len(u.Key) + len(u.Value)
	}
	return n
}

// wireSize returns the length of the properties with their property length.
func (p *Properties) wireSize() int {
	n := p.size()
	return varintSize(n) + n
}

// appendTo appends the property length and the properties, single-valued
// ones in identifier order, then subscription identifiers, then user
// properties in their order (MQTT-3.3.2-18 asks that order be kept).
func (p *Properties) appendTo(dst []byte) []byte {
	if p.Empty() {
		return append(dst, 0)
	}
	dst = appendVarint(dst, uint32(p.size()))
	for s := uint64(p.Present); s != 0; s &= s - 1 {
		id := PropertyID(bits.TrailingZeros64(s))
		if id > maxPropertyID {
			continue
		}
		switch propertyTable[id].kind {
		case kindByte:
			dst = append(dst, byte(id), byte(p.intOf(id)))
		case kindUint16:
			dst = append(dst, byte(id))
			dst = binary.BigEndian.AppendUint16(dst, uint16(p.intOf(id)))
		case kindUint32:
			dst = append(dst, byte(id))
			dst = binary.BigEndian.AppendUint32(dst, p.intOf(id))
		case kindString, kindBinary:
			dst = append(dst, byte(id))
			dst = appendBinary(dst, p.bytesOf(id))
		}
	}
	for _, v := range p.SubscriptionIdentifiers {
		dst = append(dst, byte(PropSubscriptionIdentifier))
		dst = appendVarint(dst, v)
	}
	for _, u := range p.UserProperties {
		dst = append(dst, byte(PropUserProperty))
		dst = appendBinary(dst, u.Key)
		dst = appendBinary(dst, u.Value)
	}
	return dst
}

// decode reads a property length and the properties after it from r into
// p, for a packet of type ctx (willContext for will properties), and checks
// them: an identifier the packet may not carry is a Malformed Packet
// (MQTT 5.0 §2.2.2.2), a repeated single-valued property and a value out of
// its range are Protocol Errors.
func (p *Properties) decode(r *reader, ctx Type) error {
	n, err := r.varint("property length")
	if err != nil {
		return err
	}
	if int64(n) > int64(len(r.b)) {
		return newError(r.t, MalformedPacket, "MQTT 5.0 §2.1.4", "property length runs past the remaining length")
	}
	pr := reader{b: r.b[:n], t: r.t}
	r.b = r.b[n:]
	p.clear()
	for len(pr.b) > 0 {
		v, err := pr.varint("property identifier")
		if err != nil {
			return err
		}
		if v > uint32(maxPropertyID) || propertyTable[v].kind == kindNone {
			return newError(r.t, MalformedPacket, "MQTT 5.0 §2.2.2.2", "unknown property identifier "+itoa(int(v)))
		}
		id := PropertyID(v)
		if !id.allowed(ctx) {
			where := "a " + r.t.String()
			if ctx == willContext {
				where = "the will properties"
			}
			return newError(r.t, MalformedPacket, "MQTT 5.0 §2.2.2.2", id.String()+" is not allowed in "+where)
		}
		if p.Present.Has(id) {
			return newError(r.t, ProtocolError, "MQTT 5.0 §2.2.2.2", id.String()+" appears more than once")
		}
		switch propertyTable[id].kind {
		case kindByte:
			c, err := pr.byte1(id.String())
			if err != nil {
				return err
			}
			// Every byte property is a boolean or, for Maximum QoS, 0 or
			// 1; anything else is a Protocol Error (e.g. MQTT 5.0
			// §3.2.2.3.4, §3.1.2.11.6).
			if c > 1 {
				return newError(r.t, ProtocolError, "MQTT 5.0 §2.2.2.2", id.String()+" is neither 0 nor 1")
			}
			p.setInt(id, uint32(c))
		case kindUint16:
			x, err := pr.uint16(id.String())
			if err != nil {
				return err
			}
			if x == 0 && id == PropReceiveMaximum {
				return newError(r.t, ProtocolError, "MQTT 5.0 §3.1.2.11.3", "Receive Maximum is 0")
			}
			if x == 0 && id == PropTopicAlias {
				return newError(r.t, TopicAliasInvalid, "MQTT-3.3.2-8", "Topic Alias is 0")
			}
			p.setInt(id, uint32(x))
		case kindUint32:
			x, err := pr.uint32(id.String())
			if err != nil {
				return err
			}
			if x == 0 && id == PropMaximumPacketSize {
				return newError(r.t, ProtocolError, "MQTT 5.0 §3.1.2.11.4", "Maximum Packet Size is 0")
			}
			p.setInt(id, x)
		case kindVarint: // only Subscription Identifier
			x, err := pr.varint(id.String())
			if err != nil {
				return err
			}
			if x == 0 {
				return newError(r.t, ProtocolError, "MQTT 5.0 §3.8.2.1.2", "Subscription Identifier is 0")
			}
			if ctx != TypePublish && len(p.SubscriptionIdentifiers) > 0 {
				return newError(r.t, ProtocolError, "MQTT 5.0 §3.8.2.1.2", "Subscription Identifier appears more than once")
			}
			p.SubscriptionIdentifiers = append(p.SubscriptionIdentifiers, x)
			continue
		case kindString:
			s, err := pr.string(id.String())
			if err != nil {
				return err
			}
			p.setBytes(id, s)
		case kindBinary:
			s, err := pr.binary(id.String())
			if err != nil {
				return err
			}
			p.setBytes(id, s)
		case kindPair:
			k, err := pr.string("User Property name")
			if err != nil {
				return err
			}
			val, err := pr.string("User Property value")
			if err != nil {
				return err
			}
			p.UserProperties = append(p.UserProperties, UserProperty{Key: k, Value: val})
			continue
		}
		p.Present.Add(id)
	}
	// MQTT 5.0 §3.1.2.11.10, §3.2.2.3.18, §3.15.2.2.3.
	if p.Present.Has(PropAuthenticationData) && !p.Present.Has(PropAuthenticationMethod) {
		return newError(r.t, ProtocolError, "MQTT 5.0 §3.1.2.11.10", "Authentication Data without an Authentication Method")
	}
	return nil
}
