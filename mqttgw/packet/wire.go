package packet

import (
	"bytes"
	"encoding/binary"
	"unicode/utf8"
)

// The data representations of MQTT 5.0 §1.5 (3.1.1 §1.5): big-endian two-
// and four-byte integers, variable byte integers, binary data and UTF-8
// strings prefixed with a two-byte length, and string pairs.

// reader consumes the fields of one packet's body. Its methods return an
// *Error naming the field when the body ends before it; they never read
// past b.
type reader struct {
	b []byte
	t Type
}

func (r *reader) byte1(field string) (byte, error) {
	if len(r.b) < 1 {
		return 0, truncated(r.t, field)
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c, nil
}

func (r *reader) uint16(field string) (uint16, error) {
	if len(r.b) < 2 {
		return 0, truncated(r.t, field)
	}
	v := binary.BigEndian.Uint16(r.b)
	r.b = r.b[2:]
	return v, nil
}

func (r *reader) uint32(field string) (uint32, error) {
	if len(r.b) < 4 {
		return 0, truncated(r.t, field)
	}
	v := binary.BigEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v, nil
}

func (r *reader) varint(field string) (uint32, error) {
	v, n, state := readVarint(r.b)
	switch state {
	case varintShort:
		return 0, truncated(r.t, field)
	case varintTooLong:
		return 0, newError(r.t, MalformedPacket, "MQTT 5.0 §1.5.5", field+" is a variable byte integer longer than four bytes")
	case varintNotMinimal:
		return 0, newError(r.t, MalformedPacket, "MQTT-1.5.5-1", field+" is a variable byte integer not in its shortest form")
	}
	r.b = r.b[n:]
	return v, nil
}

// binary reads two-byte-length-prefixed binary data; the result aliases
// the packet.
func (r *reader) binary(field string) ([]byte, error) {
	if len(r.b) < 2 {
		return nil, truncated(r.t, field)
	}
	n := int(binary.BigEndian.Uint16(r.b))
	if len(r.b)-2 < n {
		return nil, truncated(r.t, field)
	}
	v := r.b[2 : 2+n : 2+n]
	r.b = r.b[2+n:]
	return v, nil
}

// string reads a UTF-8 encoded string and checks that it is well-formed
// and holds no U+0000 (MQTT-1.5.4-1, MQTT-1.5.4-2); either is a Malformed
// Packet. The result aliases the packet.
func (r *reader) string(field string) ([]byte, error) {
	v, err := r.binary(field)
	if err != nil {
		return nil, err
	}
	if !validString(v) {
		return nil, badString(r.t, field, v)
	}
	return v, nil
}

// validString reports whether b is well-formed UTF-8 without U+0000. The
// ASCII loop comes first because topics and client identifiers almost
// always are ASCII; utf8.Valid also refuses the surrogates U+D800 to U+DFFF
// that MQTT-1.5.4-1 forbids.
func validString(b []byte) bool {
	for i, c := range b {
		if c == 0 {
			return false
		}
		if c >= utf8.RuneSelf {
			rest := b[i:]
			for _, c := range rest {
				if c == 0 {
					return false
				}
			}
			return utf8.Valid(rest)
		}
	}
	return true
}

// badString reports a string that validString refused, citing the clause
// it breaks.
func badString(t Type, field string, v []byte) *Error {
	if bytes.IndexByte(v, 0) >= 0 {
		return newError(t, MalformedPacket, "MQTT-1.5.4-2", field+" contains U+0000")
	}
	return newError(t, MalformedPacket, "MQTT-1.5.4-1", field+" is not well-formed UTF-8")
}

func appendBinary(dst, v []byte) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(v)))
	return append(dst, v...)
}
