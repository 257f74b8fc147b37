// Package packet encodes and decodes the control packets of MQTT 3.1.1 and
// 5.0, with the 5.0 properties and reason codes and the checks the two
// specifications require of a receiver. It is the codec of the MQTT
// gateway and of the load tool's MQTT client: bytes in, typed packets out,
// and typed packets appended to a caller's buffer, with no I/O and no
// allocation per packet.
//
// Decoding is streaming and in place. A Decoder, one per connection, is
// given the unconsumed input; it answers ErrIncomplete until a whole packet
// is there (refusing an oversized one from its fixed header alone), then
// fills a caller's Packet. The []byte fields of a decoded Packet alias the
// input: they are valid until the caller overwrites or reuses those bytes,
// and whatever must outlive them has to be copied. The Packet's own slices
// are reused by the next decode into it.
//
// Every violation Decode finds is an *Error that carries the MQTT 5.0
// reason code to send (in CONNACK or DISCONNECT) and, for a 3.1.1 CONNECT,
// the CONNACK return code. What depends on the session rather than on the
// bytes (the direction a packet may travel, packet identifiers in flight,
// topic alias ranges, the authentication method in use)
// is the gateway's to check.
//
// Encoders are functions AppendX(dst, level, *X) that append one packet to
// dst and allocate only when dst must grow. They write what they are given
// without validating it, so tests can build hostile packets.
package packet
