package net

import "github.com/valyala/bytebufferpool"

// chunkSize caps how many small writes are coalesced into one pooled buffer.
// Larger chunks mean fewer iovecs per writev; smaller ones return memory to
// the pool sooner. 16 KiB is one TLS record and a few MQTT publishes.
const chunkSize = 16 << 10

// piece is one queued run of outbound bytes: either a pooled copy (buf set)
// or a caller's slice queued by reference (release set, possibly nil).
type piece struct {
	b       []byte
	buf     *bytebufferpool.ByteBuffer
	release func()
	ref     bool
}

// outQueue is a connection's outbound bytes in write order. It is guarded by
// the connection's mutex. Sent pieces are released in order; the piece slice
// is reused so that a connection in steady state allocates nothing.
type outQueue struct {
	pieces []piece
	head   int // first unsent piece
	off    int // bytes of pieces[head] already sent
	bytes  int // unsent bytes
}

func (q *outQueue) empty() bool { return q.bytes == 0 && q.head == len(q.pieces) }

// appendCopy queues a copy of p in pooled buffers of at most chunkSize
// bytes, filling the last one first. Large writes are split rather than
// copied into one large buffer: bytebufferpool drops buffers far above the
// usual size, so uniform chunks are what keeps the pool reusing memory.
func (q *outQueue) appendCopy(p []byte) {
	q.bytes += len(p)
	if n := len(q.pieces); n > q.head {
		last := &q.pieces[n-1]
		if last.buf != nil && len(last.buf.B) < chunkSize {
			k := min(chunkSize-len(last.buf.B), len(p))
			last.buf.B = append(last.buf.B, p[:k]...)
			last.b = last.buf.B
			p = p[k:]
		}
	}
	for len(p) > 0 {
		k := min(chunkSize, len(p))
		bb := bytebufferpool.Get()
		bb.B = append(bb.B[:0], p[:k]...)
		q.pieces = append(q.pieces, piece{b: bb.B, buf: bb})
		p = p[k:]
	}
}

// appendRef queues p by reference; release runs once p has been written or
// dropped.
func (q *outQueue) appendRef(p []byte, release func()) {
	q.bytes += len(p)
	q.pieces = append(q.pieces, piece{b: p, release: release, ref: true})
}

// advance marks n bytes as sent. Pooled buffers of fully sent pieces go back
// to the pool; release functions are appended to rel for the caller to run
// outside the connection's lock, since a release may call back into the
// connection.
func (q *outQueue) advance(n int, rel []func()) []func() {
	q.bytes -= n
	for n > 0 {
		p := &q.pieces[q.head]
		left := len(p.b) - q.off
		if n < left {
			q.off += n
			return rel
		}
		n -= left
		rel = q.retire(p, rel)
		q.head++
		q.off = 0
	}
	// Zero-length ref pieces at the head are done too.
	for q.head < len(q.pieces) && len(q.pieces[q.head].b) == 0 {
		rel = q.retire(&q.pieces[q.head], rel)
		q.head++
	}
	q.compact()
	return rel
}

// retire frees one piece and clears it so the pieces array holds no stale
// references.
func (q *outQueue) retire(p *piece, rel []func()) []func() {
	if p.buf != nil {
		bytebufferpool.Put(p.buf)
	}
	if p.release != nil {
		rel = append(rel, p.release)
	}
	*p = piece{}
	return rel
}

// compact resets the queue when it is drained and shifts the live pieces
// down when the sent prefix dominates, so the slice never grows without
// bound under a steady trickle.
func (q *outQueue) compact() {
	if q.head == len(q.pieces) {
		q.pieces = q.pieces[:0]
		q.head = 0
		return
	}
	if q.head > 64 && q.head*2 > len(q.pieces) {
		n := copy(q.pieces, q.pieces[q.head:])
		clear(q.pieces[n:])
		q.pieces = q.pieces[:n]
		q.head = 0
	}
}

// drop discards every unsent piece, as when a connection is cut off.
func (q *outQueue) drop(rel []func()) []func() {
	for i := q.head; i < len(q.pieces); i++ {
		rel = q.retire(&q.pieces[i], rel)
	}
	q.pieces = q.pieces[:0]
	q.head, q.off, q.bytes = 0, 0, 0
	return rel
}

// appendTo appends the unsent bytes, at most max slices, to dst; it is what
// a writev is built from.
func (q *outQueue) appendTo(dst [][]byte, max int) [][]byte {
	for i := q.head; i < len(q.pieces) && len(dst) < max; i++ {
		b := q.pieces[i].b
		if i == q.head {
			b = b[q.off:]
		}
		if len(b) > 0 {
			dst = append(dst, b)
		}
	}
	return dst
}

// runReleases calls and clears the collected release functions.
func runReleases(rel []func()) []func() {
	for i, f := range rel {
		f()
		rel[i] = nil
	}
	return rel[:0]
}
