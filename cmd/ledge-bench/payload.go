package main

import "encoding/binary"

// Every message a ledge-bench publisher sends starts with a header that
// lets receivers measure latency and check delivery:
//
//	offset  size  field
//	0       4     publisher index; the top bit marks a warm-up message
//	4       8     sequence number from 0, per publisher
//	12      8     send time, Unix nanoseconds
//
// all big-endian, then filler up to --size. Messages smaller than the
// header carry none: they are counted but neither timed nor checked.
const (
	headerSize = 20
	warmupBit  = 1 << 31
)

// header is the decoded start of a message.
type header struct {
	pub    uint32
	seq    uint64
	sent   int64
	warmup bool
}

// putHeader writes h into the first headerSize bytes of b.
func putHeader(b []byte, h header) {
	p := h.pub
	if h.warmup {
		p |= warmupBit
	}
	binary.BigEndian.PutUint32(b[0:4], p)
	binary.BigEndian.PutUint64(b[4:12], h.seq)
	binary.BigEndian.PutUint64(b[12:20], uint64(h.sent))
}

// parseHeader decodes the header at the start of b; ok is false when b is
// too short to hold one.
func parseHeader(b []byte) (h header, ok bool) {
	if len(b) < headerSize {
		return header{}, false
	}
	p := binary.BigEndian.Uint32(b[0:4])
	return header{
		pub:    p &^ warmupBit,
		warmup: p&warmupBit != 0,
		seq:    binary.BigEndian.Uint64(b[4:12]),
		sent:   int64(binary.BigEndian.Uint64(b[12:20])),
	}, true
}

// newPayload returns a payload of size bytes; the filler after the header
// is a repeating pattern rather than zeros so that a compressing link or
// store cannot make the benchmark look faster than real telemetry.
func newPayload(size int) []byte {
	b := make([]byte, size)
	for i := headerSize; i < size; i++ {
		b[i] = byte('a' + i%26)
	}
	return b
}
