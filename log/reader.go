package log

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
)

// Reader reads a stream in offset order. A Reader is not safe for
// concurrent use; open one per goroutine (they are cheap).
//
// Records returned by Next point into the mapped segment (uncompressed
// batches) or into Reader-owned buffers (compressed batches). They stay
// valid until Release or Close: the Reader pins every segment it has read
// from since the last Release, and retention cannot unmap a pinned segment,
// it can only unlink its file. Long-lived readers call Release once they
// are done with the records they have read, so old segments can go.
type Reader struct {
	l      *Log
	seg    *segment
	data   []byte
	pos    int64 // next batch to parse in seg
	off    int64 // next offset to return
	closed bool

	batch     []byte // undecoded records of the current batch
	batchPos  int64
	batchNext int64
	batchEnd  int64
	batchTS   int64

	pinned []*segment
	bufs   [][]byte // decompression buffers handed out since Release
	spare  [][]byte
}

// NewReader returns a Reader positioned at off (see SeekOffset). The caller must
// Close it.
func (l *Log) NewReader(off int64) (*Reader, error) {
	r := &Reader{l: l}
	if err := r.SeekOffset(off); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// Offset returns the offset of the record the next call to Next returns.
func (r *Reader) Offset() int64 { return r.off }

// SeekOffset positions the reader at off, which may be DurableOffset() or
// NextOffset() to tail the log. It returns ErrOffsetOutOfRange outside
// [FirstOffset, NextOffset]. An offset at or past DurableOffset (written but
// not yet acknowledged) is not an error: it reads like the end of the log,
// Next returning io.EOF until the record there is acknowledged.
func (r *Reader) SeekOffset(off int64) error {
	if r.closed {
		return ErrClosed
	}
	r.batch, r.batchNext, r.batchEnd = nil, 0, 0
	if off < r.l.FirstOffset() || off > r.l.NextOffset() {
		return fmt.Errorf("seek to %d in stream %q [%d, %d): %w", off, r.l.name, r.l.FirstOffset(), r.l.NextOffset(), ErrOffsetOutOfRange)
	}
	s := r.l.segmentFor(off)
	if s == nil {
		return fmt.Errorf("seek to %d in stream %q: %w", off, r.l.name, ErrOffsetOutOfRange)
	}
	if err := r.use(s); err != nil {
		return err
	}
	r.pos = s.idx.lookup(uint32(off - s.base))
	r.off = off
	return nil
}

// SeekTime positions the reader at the first record whose timestamp (Unix
// nanoseconds) is at or after ts, or at the end of what readers see
// (DurableOffset, see Next) if there is none. Timestamps are expected to
// rise with offsets; where producers supplied them out of order the result
// is a record at or after ts, not necessarily the first.
func (r *Reader) SeekTime(ts int64) error {
	if r.closed {
		return ErrClosed
	}
	var target *segment
	for _, s := range r.l.segments() {
		if s.idx.maxTime() >= ts {
			target = s
			break
		}
	}
	if target == nil {
		return r.SeekOffset(r.l.DurableOffset())
	}
	if err := r.use(target); err != nil {
		return r.SeekOffset(r.l.FirstOffset())
	}
	r.batch, r.batchNext, r.batchEnd = nil, 0, 0
	r.pos = target.idx.lookupTime(ts)
	r.off = target.next.Load()
	if size := target.size.Load(); r.pos < size {
		h, err := parseBatchHeader(r.data[r.pos:size])
		if err != nil {
			return r.corrupt(r.pos, err)
		}
		r.off = h.base
	}
	var rec Record
	for {
		err := r.Next(&rec)
		if err == io.EOF {
			// The index may have led past the durable end into records
			// readers do not see yet: stop at that end, as when nothing
			// matches.
			if d := r.l.DurableOffset(); r.off > d {
				return r.SeekOffset(d)
			}
			return nil
		}
		if err != nil {
			return err
		}
		if rec.Time >= ts {
			return r.SeekOffset(rec.Offset)
		}
	}
}

// Next reads the record at Offset into rec and advances. It returns io.EOF
// when the reader has caught up with the log (Wait then blocks until there
// is more), ErrOffsetOutOfRange if retention removed the records under the
// reader, and a *CorruptError for a damaged batch.
//
// Next returns only acknowledged records, those below DurableOffset: a
// record is visible once its append is acknowledged under the sync policy,
// not when it is written. Under SyncAlways and SyncInterval a written
// record can still be erased by a power loss before its fsync, and after
// the restart its offset goes to another record; a consumer that had read
// it and committed its cursor past it would skip that other record. Under
// SyncNever acknowledged means written, so records are visible at once.
func (r *Reader) Next(rec *Record) error {
	if r.closed {
		return ErrClosed
	}
	for {
		if r.batchNext < r.batchEnd {
			rest, err := decodeRecord(r.batch, rec, r.batchTS)
			if err != nil {
				r.batchEnd = r.batchNext
				return r.corrupt(r.batchPos, err)
			}
			r.batch = rest
			rec.Offset = r.batchNext
			r.batchNext++
			r.off = r.batchNext
			return nil
		}
		if err := r.loadBatch(); err != nil {
			return err
		}
	}
}

// loadBatch moves to the batch holding r.off, if that record is durable.
func (r *Reader) loadBatch() error {
	// The durable offset is loaded before any segment size: every batch
	// below it is published (flushStaged stores sizes before the commit
	// stores durable), and it is always at a batch boundary, so the batch
	// holding r.off lies wholly below it.
	durable := r.l.durable.Load()
	if r.off >= durable {
		if r.l.isClosed() {
			return ErrClosed
		}
		return io.EOF
	}
	for {
		if r.seg == nil {
			if err := r.SeekOffset(r.off); err != nil {
				return err
			}
		}
		s := r.seg
		size := s.size.Load()
		if r.pos >= size {
			if !s.sealed.Load() {
				if r.l.isClosed() {
					return ErrClosed
				}
				return io.EOF
			}
			next := r.l.segmentFor(s.next.Load())
			if next == nil || next == s {
				if r.off >= r.l.DurableOffset() {
					return io.EOF
				}
				return fmt.Errorf("read offset %d of stream %q: %w", r.off, r.l.name, ErrOffsetOutOfRange)
			}
			if err := r.use(next); err != nil {
				return err
			}
			r.pos = next.idx.lookup(uint32(max(r.off-next.base, 0)))
			continue
		}
		b := r.data[r.pos:size]
		h, err := parseBatchHeader(b)
		if err == nil && r.pos >= s.verified.Load() {
			if err = verifyBatch(b, &h); err == nil {
				s.verified.CompareAndSwap(r.pos, r.pos+int64(h.length))
			}
		}
		if err == nil && h.base > r.off {
			err = fmt.Errorf("%w: batch offset %d skips past %d", ErrCorrupt, h.base, r.off)
		}
		if err != nil {
			return r.corrupt(r.pos, err)
		}
		pos := r.pos
		r.pos += int64(h.length)
		if h.next() <= r.off {
			continue
		}
		recs := b[batchHeaderSize:h.length]
		if kind := h.compression(); kind != CompressNone {
			if recs, err = r.decompress(recs, kind, int(h.rawLen)); err != nil {
				r.pos = pos
				if errors.Is(err, ErrClosed) {
					return err
				}
				return r.corrupt(pos, err)
			}
		}
		if recs, err = skipRecords(recs, r.off-h.base); err != nil {
			r.pos = pos
			return r.corrupt(pos, err)
		}
		r.batch, r.batchPos, r.batchTS = recs, pos, h.firstTS
		// min only guards the boundary invariant above.
		r.batchNext, r.batchEnd = r.off, min(h.next(), durable)
		return nil
	}
}

func (r *Reader) decompress(src []byte, kind Compression, rawLen int) ([]byte, error) {
	var buf []byte
	if n := len(r.spare); n > 0 {
		buf = r.spare[n-1][:0]
		r.spare = r.spare[:n-1]
	}
	out, err := r.l.codec.decompress(buf, src, kind, rawLen)
	r.bufs = append(r.bufs, out)
	return out, err
}

// corrupt builds the error for a damaged batch at pos in the current
// segment, with the first offset past the damage that the index knows.
func (r *Reader) corrupt(pos int64, err error) error {
	s := r.seg
	resume := s.next.Load()
	s.idx.mu.RLock()
	i := sort.Search(len(s.idx.offsets), func(i int) bool { return int64(s.idx.offsets[i].pos) > pos })
	if i < len(s.idx.offsets) {
		resume = s.base + int64(s.idx.offsets[i].rel)
	}
	s.idx.mu.RUnlock()
	return &CorruptError{Stream: r.l.name, Segment: s.base, Offset: r.off, Position: pos, Next: resume, Err: err}
}

// use makes s the current segment, pinning it if this reader has not yet.
func (r *Reader) use(s *segment) error {
	for _, p := range r.pinned {
		if p == s {
			r.seg = s
			r.data = s.mapping()
			return nil
		}
	}
	data, mapped, err := s.acquire(r.l.clock.Add(1))
	if err != nil {
		if errors.Is(err, errSegmentGone) {
			return fmt.Errorf("read segment %d of stream %q: %w", s.base, r.l.name, ErrOffsetOutOfRange)
		}
		return err
	}
	if mapped {
		r.l.mapped.Add(int64(len(data)))
		r.l.trimMappings()
	}
	r.pinned = append(r.pinned, s)
	r.seg, r.data = s, data
	return nil
}

// Wait blocks until a record at the reader's offset can be read, the
// context ends, or the log closes (ErrClosed). A record can be read once it
// is acknowledged (see Next), so under SyncAlways and SyncInterval Wait
// returns after the fsync that covers the record, not after its write. It
// does not poll: it sleeps on the log's Changed channel, which the commit
// goroutine closes when the durable offset advances.
func (r *Reader) Wait(ctx context.Context) error {
	for {
		if r.closed {
			return ErrClosed
		}
		ch := r.l.Changed()
		if r.off < r.l.DurableOffset() {
			return nil
		}
		if r.l.isClosed() {
			return ErrClosed
		}
		select {
		case <-ch:
		case <-r.l.closing:
			return ErrClosed
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Release ends the validity of every record read so far: it unpins the
// segments the reader has moved past and recycles decompression buffers.
// The reader keeps its position.
func (r *Reader) Release() {
	keep := r.pinned[:0]
	for _, s := range r.pinned {
		if s == r.seg {
			keep = append(keep, s)
			continue
		}
		r.l.mapped.Add(-s.release())
	}
	clear(r.pinned[len(keep):])
	r.pinned = keep
	n := len(r.bufs)
	if r.batchNext < r.batchEnd && n > 0 && len(r.batch) > 0 {
		// The current batch still reads from the last buffer.
		n--
	}
	r.spare = append(r.spare, r.bufs[:n]...)
	r.bufs = append(r.bufs[:0], r.bufs[n:]...)
	r.l.trimMappings()
}

// Close releases everything the reader holds. Records it returned are no
// longer valid.
func (r *Reader) Close() {
	if r.closed {
		return
	}
	r.closed = true
	for _, s := range r.pinned {
		r.l.mapped.Add(-s.release())
	}
	r.pinned, r.seg, r.data, r.batch, r.bufs, r.spare = nil, nil, nil, nil, nil, nil
}

func (l *Log) isClosed() bool {
	select {
	case <-l.closing:
		return true
	default:
		return false
	}
}
