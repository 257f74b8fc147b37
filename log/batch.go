package log

import (
	"encoding/binary"
	"fmt"
)

// Header is one key/value pair attached to a record. On the read path Key
// and Value point into the log's memory with the same lifetime as the
// record's Payload.
type Header struct {
	Key   []byte
	Value []byte
}

// Record is one message. On append the log reads Subject, Headers, Payload
// and Time and keeps no reference to them after Append returns. On read the
// log fills a caller-owned Record: Offset and Time are values, while
// Subject, Payload and the header bytes point into the mapped segment (or a
// Reader-owned decompression buffer) and stay valid until the Reader's
// Release or Close. Headers is appended to the caller's slice, reusing its
// capacity.
type Record struct {
	// Offset is the record's position in the stream; set on read, ignored
	// on append.
	Offset int64
	// Time is the record's timestamp in Unix nanoseconds. Zero on append
	// means "now".
	Time    int64
	Subject []byte
	Headers []Header
	Payload []byte
}

// encodedSize is the number of bytes rec takes in a records section,
// including its length prefix.
func encodedSize(rec *Record, tsDelta int64) int {
	body := bodySize(rec, tsDelta)
	return uvarintLen(uint64(body)) + body
}

// bodySize is the size of rec's encoding without its length prefix.
func bodySize(rec *Record, tsDelta int64) int {
	body := varintLen(tsDelta) + uvarintLen(uint64(len(rec.Subject))) + len(rec.Subject) +
		uvarintLen(uint64(len(rec.Headers))) + len(rec.Payload)
	for i := range rec.Headers {
		h := &rec.Headers[i]
		body += uvarintLen(uint64(len(h.Key))) + len(h.Key) + uvarintLen(uint64(len(h.Value))) + len(h.Value)
	}
	return body
}

// appendRecord appends the encoding of rec to dst:
//
//	uvarint body length | varint time delta | uvarint subject length, subject |
//	uvarint header count, (uvarint key length, key, uvarint value length, value)* |
//	payload (the rest of the body)
func appendRecord(dst []byte, rec *Record, tsDelta int64) []byte {
	body := bodySize(rec, tsDelta)
	dst = binary.AppendUvarint(dst, uint64(body))
	dst = binary.AppendVarint(dst, tsDelta)
	dst = binary.AppendUvarint(dst, uint64(len(rec.Subject)))
	dst = append(dst, rec.Subject...)
	dst = binary.AppendUvarint(dst, uint64(len(rec.Headers)))
	for i := range rec.Headers {
		h := &rec.Headers[i]
		dst = binary.AppendUvarint(dst, uint64(len(h.Key)))
		dst = append(dst, h.Key...)
		dst = binary.AppendUvarint(dst, uint64(len(h.Value)))
		dst = append(dst, h.Value...)
	}
	return append(dst, rec.Payload...)
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

func varintLen(x int64) int {
	ux := uint64(x) << 1
	if x < 0 {
		ux = ^ux
	}
	return uvarintLen(ux)
}

// ack is a pending durability notification: fn is called once the record
// at offset last (and everything before it) is acknowledged.
type ack struct {
	last int64
	fn   func(off int64, err error)
}

// encoder builds one batch. It is reused batch after batch, so a steady
// stream of appends allocates nothing once its buffers have grown.
type encoder struct {
	buf     []byte // header space followed by the records section
	out     []byte // compressed batch, when compression is on
	base    int64
	count   int
	firstTS int64
	lastTS  int64
	maxTS   int64
	acks    []ack
	// opened is when the batch's first record came, for Metrics.Durable;
	// zero without Metrics.
	opened int64
}

func (e *encoder) reset(base int64) {
	if cap(e.buf) < batchHeaderSize {
		e.buf = make([]byte, batchHeaderSize, 64<<10)
	}
	e.buf = e.buf[:batchHeaderSize]
	e.base = base
	e.count = 0
	e.acks = e.acks[:0]
}

// size is the uncompressed size of the batch so far.
func (e *encoder) size() int { return len(e.buf) }

// add appends rec with timestamp ts and returns its offset.
func (e *encoder) add(rec *Record, ts int64) int64 {
	if e.count == 0 {
		e.firstTS, e.maxTS = ts, ts
	}
	e.lastTS = ts
	if ts > e.maxTS {
		e.maxTS = ts
	}
	e.buf = appendRecord(e.buf, rec, ts-e.firstTS)
	e.count++
	return e.base + int64(e.count) - 1
}

// finish completes the batch, compressing the records section with c when
// that makes it smaller, and returns the bytes to write. The returned slice
// is owned by the encoder and valid until the next reset.
func (e *encoder) finish(c *codec) ([]byte, error) {
	raw := e.buf[batchHeaderSize:]
	h := batchHeader{count: uint32(e.count), base: e.base, firstTS: e.firstTS, lastTS: e.lastTS, rawLen: uint32(len(raw))}
	out := e.buf
	if c != nil && c.kind != CompressNone {
		var err error
		e.out, err = c.compress(e.out[:0], raw)
		if err != nil {
			return nil, err
		}
		// Incompressible data (already compressed payloads) is stored as is,
		// so readers keep the zero-copy path for it.
		if len(e.out)-batchHeaderSize < len(raw) {
			out = e.out
			h.attrs = uint8(c.kind)
		}
	}
	h.length = uint32(len(out))
	putBatchHeader(out, &h)
	return out, nil
}

// decodeRecord decodes the record at the start of b (a records section)
// into rec and returns the rest of b. rec's slices point into b. baseTS is
// the batch's first timestamp.
func decodeRecord(b []byte, rec *Record, baseTS int64) ([]byte, error) {
	bodyLen, n := uvarint(b)
	if n <= 0 || bodyLen > uint64(len(b)-n) {
		return nil, fmt.Errorf("%w: bad record length", ErrCorrupt)
	}
	body := b[n : n+int(bodyLen)]
	rest := b[n+int(bodyLen):]
	// Fast path for the common shape: one-byte time delta and subject
	// length, no headers. It is the read loop's whole cost for small
	// records.
	if len(body) >= 3 && body[0] < 0x80 && body[1] < 0x80 {
		ux, sl := uint64(body[0]), int(body[1])
		if 2+sl < len(body) && body[2+sl] == 0 {
			rec.Time = baseTS + (int64(ux>>1) ^ -int64(ux&1))
			rec.Subject = body[2 : 2+sl]
			rec.Headers = rec.Headers[:0]
			rec.Payload = body[3+sl:]
			return rest, nil
		}
	}
	ux, n := uvarint(body)
	if n <= 0 {
		return nil, fmt.Errorf("%w: bad record timestamp", ErrCorrupt)
	}
	// Zig-zag, as binary.Varint, without a second call.
	rec.Time = baseTS + (int64(ux>>1) ^ -int64(ux&1))
	body = body[n:]
	subj, body, ok := takeBytes(body)
	if !ok {
		return nil, fmt.Errorf("%w: bad record subject", ErrCorrupt)
	}
	rec.Subject = subj
	nh, n := uvarint(body)
	if n <= 0 || nh > uint64(len(body)) {
		return nil, fmt.Errorf("%w: bad record header count", ErrCorrupt)
	}
	body = body[n:]
	rec.Headers = rec.Headers[:0]
	for i := uint64(0); i < nh; i++ {
		var k, v []byte
		if k, body, ok = takeBytes(body); !ok {
			return nil, fmt.Errorf("%w: bad record header key", ErrCorrupt)
		}
		if v, body, ok = takeBytes(body); !ok {
			return nil, fmt.Errorf("%w: bad record header value", ErrCorrupt)
		}
		rec.Headers = append(rec.Headers, Header{Key: k, Value: v})
	}
	rec.Payload = body
	return rest, nil
}

// skipRecords returns b without its first n records, for seeking inside a
// batch without decoding records that are not wanted.
func skipRecords(b []byte, n int64) ([]byte, error) {
	for ; n > 0; n-- {
		bodyLen, k := uvarint(b)
		if k <= 0 || bodyLen > uint64(len(b)-k) {
			return nil, fmt.Errorf("%w: bad record length", ErrCorrupt)
		}
		b = b[k+int(bodyLen):]
	}
	return b, nil
}

// uvarint is binary.Uvarint with the one- and two-byte cases, which are
// nearly all lengths in a batch, inlined: it is the read path's hottest
// instruction sequence.
func uvarint(b []byte) (uint64, int) {
	if len(b) > 0 && b[0] < 0x80 {
		return uint64(b[0]), 1
	}
	if len(b) > 1 && b[1] < 0x80 {
		return uint64(b[0]&0x7f) | uint64(b[1])<<7, 2
	}
	return binary.Uvarint(b)
}

func takeBytes(b []byte) (v, rest []byte, ok bool) {
	l, n := uvarint(b)
	if n <= 0 || l > uint64(len(b)-n) {
		return nil, nil, false
	}
	return b[n : n+int(l)], b[n+int(l):], true
}
