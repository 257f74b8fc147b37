package log

import (
	"fmt"
)

// Truncate removes every record at or after off, so that NextOffset()
// becomes off; the next append gets offset off. It exists for tests and
// for replicas that must drop a tail their leader never committed. Records
// of the batch that holds off but come before it are kept (they are
// rewritten as a new batch). Pending appends are written and fsynced before
// the cut, so every acknowledgement and WaitDurable of a record the cut
// removes is settled by then: none can fire later for the record that takes
// its offset.
//
// Readers must not be reading the removed range: a Reader positioned past
// the new end returns ErrOffsetOutOfRange or io.EOF, but records it already
// returned from that range may change beneath it.
func (l *Log) Truncate(off int64) error {
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	for {
		l.commitLocked()
		// A failed fsync breaks the log, which the check below reports.
		_ = l.syncLocked()
		l.mu.Lock()
		if len(l.full) == 0 && (l.pending == nil || l.pending.count == 0) {
			break
		}
		l.mu.Unlock()
	}
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	if l.err != nil {
		return l.err
	}
	next := l.next.Load()
	if off < l.first.Load() || off > next {
		return fmt.Errorf("truncate stream %q to %d: %w", l.name, off, ErrOffsetOutOfRange)
	}
	if off == next {
		return nil
	}
	if err := l.truncateLocked(off); err != nil {
		l.fail(err)
		return err
	}
	l.assign = l.next.Load()
	if l.durable.Load() > l.assign {
		l.durable.Store(l.assign)
	}
	if err := fdatasync(l.active().f); err != nil {
		err = fmt.Errorf("stream %q: fsync after truncate: %w", l.name, err)
		l.fail(err)
		return err
	}
	l.active().unsynced = false
	l.durable.Store(l.assign)
	l.announce()
	return nil
}

func (l *Log) truncateLocked(off int64) error {
	s := l.segmentFor(off)
	data, mapped, err := s.acquire(l.clock.Add(1))
	if err != nil {
		return fmt.Errorf("stream %q: truncate segment %d: %w", l.name, s.base, err)
	}
	if mapped {
		l.mapped.Add(int64(len(data)))
	}
	defer func() { l.mapped.Add(-s.release()) }()

	// Walk the batch headers from the start: truncation is rare and this
	// also finds the batch before the cut, which sealing needs.
	size := s.size.Load()
	var pos, prevPos int64 = 0, -1
	var h batchHeader
	for {
		if pos >= size {
			return fmt.Errorf("stream %q: truncate: offset %d not found in segment %d: %w", l.name, off, s.base, ErrCorrupt)
		}
		if h, err = parseBatchHeader(data[pos:size]); err != nil {
			return fmt.Errorf("stream %q: truncate segment %d at byte %d: %w", l.name, s.base, pos, err)
		}
		if h.next() > off {
			break
		}
		prevPos = pos
		pos += int64(h.length)
	}
	keep, err := l.copyRecords(data[pos:pos+int64(h.length)], &h, off)
	if err != nil {
		return fmt.Errorf("stream %q: truncate segment %d at byte %d: %w", l.name, s.base, pos, err)
	}

	segs := l.segments()
	i := 0
	for segs[i] != s {
		i++
	}
	// The later segments go first, newest first, each deletion made
	// durable by a directory fsync before the next one and before the cut
	// below: a crash at any point leaves a prefix of the segments, whose
	// offsets run on without a gap. Deleted in one go with a single fsync,
	// or after the cut, a crash could keep a later segment behind a
	// deleted or shortened one, a hole that recovery reports as damage.
	for j := len(segs) - 1; j > i; j-- {
		later := segs[j]
		if err := later.removeFiles(); err != nil {
			return fmt.Errorf("stream %q: delete segment %d: %w", l.name, later.base, err)
		}
		l.mapped.Add(-later.remove())
		if err := syncDir(l.dir); err != nil {
			return fmt.Errorf("stream %q: sync directory after deleting segment %d: %w", l.name, later.base, err)
		}
	}
	kept := append([]*segment(nil), segs[:i+1]...)

	s.idx.truncate(pos)
	s.size.Store(pos)
	s.next.Store(h.base)
	if s.verified.Load() > pos {
		s.verified.Store(pos)
	}
	s.lastBatchPos = prevPos
	if prevPos >= 0 {
		ph, _ := parseBatchHeader(data[prevPos:size])
		s.lastBatchRel = uint32(ph.base - s.base)
	}
	if !s.sealed.Load() {
		// Zeros, not a shorter file: the active segment stays preallocated
		// and recovery stops at the first zero header.
		if err := zeroRange(s.f, pos, s.capacity-pos); err != nil {
			return fmt.Errorf("stream %q: truncate segment %d: %w", l.name, s.base, err)
		}
		l.segs.Store(&kept)
	} else {
		if pos == 0 {
			if err := s.removeFiles(); err != nil {
				return fmt.Errorf("stream %q: delete segment %d: %w", l.name, s.base, err)
			}
			l.mapped.Add(-s.remove())
			kept = kept[:i]
		} else if err := l.seal(s); err != nil {
			return err
		}
		ns, err := l.createSegment(h.base)
		if err != nil {
			return err
		}
		kept = append(kept, ns)
		l.segs.Store(&kept)
		l.first.Store(kept[0].base)
	}
	l.next.Store(h.base)
	if len(keep.recs) == 0 {
		return nil
	}
	e := &encoder{}
	e.reset(h.base)
	for i := range keep.recs {
		e.add(&keep.recs[i], keep.recs[i].Time)
	}
	return l.writeBatch(e)
}

// keptRecords are copies of records that survive a truncation inside
// their batch.
type keptRecords struct {
	buf  []byte
	recs []Record
}

// copyRecords decodes the records of batch b before off into copies.
func (l *Log) copyRecords(b []byte, h *batchHeader, off int64) (keptRecords, error) {
	var k keptRecords
	if err := verifyBatch(b, h); err != nil {
		return k, err
	}
	raw := b[batchHeaderSize:h.length]
	if kind := h.compression(); kind != CompressNone {
		var err error
		if raw, err = l.codec.decompress(nil, raw, kind, int(h.rawLen)); err != nil {
			return k, err
		}
	}
	k.buf = append([]byte(nil), raw...)
	raw = k.buf
	for o := h.base; o < off; o++ {
		var rec Record
		var err error
		if raw, err = decodeRecord(raw, &rec, h.firstTS); err != nil {
			return k, err
		}
		rec.Headers = append([]Header(nil), rec.Headers...)
		k.recs = append(k.recs, rec)
	}
	return k, nil
}
