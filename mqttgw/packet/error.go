package packet

import "errors"

// ErrIncomplete is returned by Decoder.Decode when the buffer ends inside a
// packet: the caller keeps the bytes and calls again when more arrive.
var ErrIncomplete = errors.New("mqtt: incomplete packet")

// Error is a packet that breaks the protocol. It says what was wrong, the
// clause of the specification it breaks, and what to answer with before
// closing the connection.
//
// Reason is the MQTT 5.0 reason code for the CONNACK (when the packet was a
// CONNECT) or the DISCONNECT. ReturnCode is the MQTT 3.1.1 CONNACK return
// code when 3.1.1 says to refuse a CONNECT with one; when it is Accepted
// (zero) a 3.1.1 server closes the connection without answering.
type Error struct {
	Packet     Type              // the type of the offending packet
	Reason     ReasonCode        // MQTT 5.0 reason code to send
	ReturnCode ConnectReturnCode // MQTT 3.1.1 CONNACK return code, or Accepted for none
	Clause     string            // the normative statement broken, e.g. "MQTT-3.3.2-2"
	Msg        string            // what was wrong
}

// Error describes the violation, its clause and the reason code.
func (e *Error) Error() string {
	s := "mqtt " + e.Packet.String() + ": " + e.Msg
	if e.Clause != "" {
		s += " (" + e.Clause + ")"
	}
	return s + ": " + e.Reason.String()
}

func newError(t Type, rc ReasonCode, clause, msg string) *Error {
	return &Error{Packet: t, Reason: rc, Clause: clause, Msg: msg}
}

// truncated reports a packet whose remaining length ends before a field it
// must contain.
func truncated(t Type, field string) *Error {
	return newError(t, MalformedPacket, "MQTT 5.0 §2.1.4", "remaining length ends inside the "+field)
}

// trailing reports a packet whose remaining length goes on past its last
// field.
func trailing(t Type) *Error {
	return newError(t, MalformedPacket, "MQTT 5.0 §2.1.4", "remaining length is longer than the packet's contents")
}
