package amqpgw

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
)

// Field tables (spec 4.2.5.5, with RabbitMQ's errata for the type
// octets): a sequence of short-string names, each followed by a type
// octet and its value. The gateway keeps tables raw, as they came, and
// reads single fields out of them in place; it never builds a map.

var errBadTable = errors.New("amqp: malformed field table")

// maxTableDepth bounds nested tables and arrays, so a hostile frame
// cannot make validation recurse without end.
const maxTableDepth = 16

// validateTable checks that t is a well-formed table content.
func validateTable(t []byte, depth int) error {
	if depth > maxTableDepth {
		return errBadTable
	}
	for len(t) > 0 {
		n := int(t[0])
		if len(t) < 1+n+1 {
			return errBadTable
		}
		t = t[1+n:]
		size, err := valueSize(t[0], t[1:], depth)
		if err != nil {
			return err
		}
		t = t[1+size:]
	}
	return nil
}

// valueSize returns the size of a field value of type typ at the start
// of b, checking nested tables and arrays.
func valueSize(typ byte, b []byte, depth int) (int, error) {
	fixed := -1
	switch typ {
	case 't', 'b', 'B':
		fixed = 1
	case 's', 'u', 'U':
		fixed = 2
	case 'I', 'i', 'f':
		fixed = 4
	case 'l', 'L', 'd', 'T':
		fixed = 8
	case 'D':
		fixed = 5
	case 'V':
		fixed = 0
	case 'S', 'x':
		if len(b) < 4 {
			return 0, errBadTable
		}
		n := binary.BigEndian.Uint32(b)
		if uint64(len(b)-4) < uint64(n) {
			return 0, errBadTable
		}
		return 4 + int(n), nil
	case 'F':
		if len(b) < 4 {
			return 0, errBadTable
		}
		n := binary.BigEndian.Uint32(b)
		if uint64(len(b)-4) < uint64(n) {
			return 0, errBadTable
		}
		if err := validateTable(b[4:4+int(n)], depth+1); err != nil {
			return 0, err
		}
		return 4 + int(n), nil
	case 'A':
		if len(b) < 4 {
			return 0, errBadTable
		}
		n := binary.BigEndian.Uint32(b)
		if uint64(len(b)-4) < uint64(n) {
			return 0, errBadTable
		}
		a := b[4 : 4+int(n)]
		if depth+1 > maxTableDepth {
			return 0, errBadTable
		}
		for len(a) > 0 {
			sz, err := valueSize(a[0], a[1:], depth+1)
			if err != nil {
				return 0, err
			}
			a = a[1+sz:]
		}
		return 4 + int(n), nil
	default:
		return 0, errBadTable
	}
	if len(b) < fixed {
		return 0, errBadTable
	}
	return fixed, nil
}

// field is one table entry, pointing into the table.
type field struct {
	Name  []byte
	Type  byte
	Value []byte // the encoded value, length prefixes included
}

// nextField returns the first field of a validated table and the rest.
func nextField(t []byte) (field, []byte) {
	n := int(t[0])
	f := field{Name: t[1 : 1+n], Type: t[1+n]}
	sz, _ := valueSize(f.Type, t[2+n:], 0)
	f.Value = t[2+n : 2+n+sz]
	return f, t[2+n+sz:]
}

// lookup finds a field of a validated table by name.
func lookup(t []byte, name string) (field, bool) {
	for len(t) > 0 {
		var f field
		f, t = nextField(t)
		if string(f.Name) == name {
			return f, true
		}
	}
	return field{}, false
}

// intValue reads an integer field of any width.
func (f field) intValue() (int64, bool) {
	v := f.Value
	switch f.Type {
	case 'b':
		return int64(int8(v[0])), true
	case 'B':
		return int64(v[0]), true
	case 's', 'U':
		return int64(int16(binary.BigEndian.Uint16(v))), true
	case 'u':
		return int64(binary.BigEndian.Uint16(v)), true
	case 'I':
		return int64(int32(binary.BigEndian.Uint32(v))), true
	case 'i':
		return int64(binary.BigEndian.Uint32(v)), true
	case 'l', 'L', 'T':
		u := binary.BigEndian.Uint64(v)
		if u > math.MaxInt64 {
			return 0, false
		}
		return int64(u), true
	case 'S':
		// Some clients send numbers as strings (x-message-ttl from a
		// policy-less client); RabbitMQ refuses them, and so do we.
		return 0, false
	}
	return 0, false
}

// stringValue reads a long-string field.
func (f field) stringValue() ([]byte, bool) {
	if f.Type != 'S' && f.Type != 'x' {
		return nil, false
	}
	return f.Value[4:], true
}

// sameValue reports whether two fields hold the same typed value; a void
// binding value matches any (headers exchange).
func sameValue(want, got field) bool {
	if want.Type == 'V' {
		return true
	}
	if want.Type == got.Type {
		return bytes.Equal(want.Value, got.Value)
	}
	a, ok1 := want.intValue()
	b, ok2 := got.intValue()
	return ok1 && ok2 && a == b
}

// appendTableField appends one field with a long-string value.
func appendStringField(dst []byte, name, value string) []byte {
	dst = appendShortstr(dst, name)
	dst = append(dst, 'S')
	return appendLongstr(dst, value)
}

// appendBoolField appends one boolean field.
func appendBoolField(dst []byte, name string, v bool) []byte {
	dst = appendShortstr(dst, name)
	return append(dst, 't', boolBit(v))
}

// appendTable appends a table whose content is built by fill.
func appendTable(dst []byte, fill func([]byte) []byte) []byte {
	at := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = fill(dst)
	binary.BigEndian.PutUint32(dst[at:], uint32(len(dst)-at-4))
	return dst
}

// Basic content properties (spec 1.8): the flag bits in order.
const (
	propContentType     = 1 << 15
	propContentEncoding = 1 << 14
	propHeaders         = 1 << 13
	propDeliveryMode    = 1 << 12
	propPriority        = 1 << 11
	propCorrelationID   = 1 << 10
	propReplyTo         = 1 << 9
	propExpiration      = 1 << 8
	propMessageID       = 1 << 7
	propTimestamp       = 1 << 6
	propType            = 1 << 5
	propUserID          = 1 << 4
	propAppID           = 1 << 3
	propClusterID       = 1 << 2
)

// props is what the gateway reads of a message's properties; the
// properties themselves travel as they came.
type props struct {
	Headers       []byte // table content
	DeliveryMode  byte
	CorrelationID []byte
	ReplyTo       []byte
	Expiration    []byte
	// replyAt and replyEnd locate reply-to in the raw properties (its
	// length octet included), for direct reply-to's rewrite.
	replyAt, replyEnd int
	hasReply          bool
}

// parseProps reads raw properties (flags and list) into p.
func parseProps(raw []byte, p *props) error {
	*p = props{}
	if len(raw) < 2 {
		return errBadTable
	}
	flags := binary.BigEndian.Uint16(raw)
	if flags&1 != 0 {
		// A continuation flag word: no basic property uses it.
		return errBadTable
	}
	r := reader{b: raw[2:]}
	for bit := uint16(1 << 15); bit >= propClusterID; bit >>= 1 {
		if flags&bit == 0 {
			continue
		}
		switch bit {
		case propHeaders:
			p.Headers = r.table()
		case propDeliveryMode:
			p.DeliveryMode = r.u8()
		case propPriority:
			r.u8()
		case propTimestamp:
			r.u64()
		case propCorrelationID:
			p.CorrelationID = r.shortstr()
		case propReplyTo:
			p.replyAt = len(raw) - len(r.b)
			p.ReplyTo = r.shortstr()
			p.replyEnd = len(raw) - len(r.b)
			p.hasReply = true
		case propExpiration:
			p.Expiration = r.shortstr()
		default:
			r.shortstr()
		}
	}
	if r.err != nil || len(r.b) != 0 {
		return errBadTable
	}
	return nil
}

// appendPropsWithReplyTo appends raw properties with reply-to replaced.
func appendPropsWithReplyTo(dst, raw []byte, p *props, replyTo string) []byte {
	dst = append(dst, raw[:p.replyAt]...)
	dst = appendShortstr(dst, replyTo)
	return append(dst, raw[p.replyEnd:]...)
}
