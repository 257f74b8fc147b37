package log

import (
	"fmt"
	"os"
	"time"
)

// maxQueuedBatches bounds the batches waiting for the commit goroutine; an
// appender that finds them all full waits, which is the log's backpressure.
const maxQueuedBatches = 64

// Append adds rec to the log and returns its offset. It does not wait for
// the write: done, if not nil, is called once, with the offset, when the
// record is acknowledged under the sync policy (or with the error that
// prevented it). done runs on the log's commit goroutine, in offset order;
// it must return quickly and must not call WaitDurable, Sync, Retain,
// Truncate or Close (Append is fine). Use WaitDurable to block instead.
//
// Append copies rec; the caller may reuse it when Append returns. It fails
// with ErrEmptySubject, ErrRecordTooLarge or ErrClosed without storing
// anything.
func (l *Log) Append(rec *Record, done func(off int64, err error)) (int64, error) {
	size, err := l.check(rec)
	if err != nil {
		return -1, err
	}
	ts := rec.Time
	if ts == 0 {
		ts = time.Now().UnixNano()
	}
	l.mu.Lock()
	if err := l.waitRoomLocked(); err != nil {
		l.mu.Unlock()
		return -1, err
	}
	e := l.encoderLocked(size)
	off := e.add(rec, ts)
	l.assign++
	if done != nil {
		e.acks = append(e.acks, ack{last: off, fn: done})
	}
	l.mu.Unlock()
	l.wake()
	return off, nil
}

// AppendBatch adds recs, in order and at consecutive offsets, and returns
// the offset of the first. It is the efficient path for one goroutine with
// many records: one lock and one wake-up for the lot, and records without a
// Time share one clock reading. done, if not nil, is called once with the
// offset of the last record when all of them are acknowledged, under the
// same rules as Append. If any record is invalid nothing is stored.
func (l *Log) AppendBatch(recs []Record, done func(last int64, err error)) (int64, error) {
	if len(recs) == 0 {
		return l.NextOffset(), nil
	}
	for i := range recs {
		if _, err := l.check(&recs[i]); err != nil {
			return -1, fmt.Errorf("record %d: %w", i, err)
		}
	}
	now := time.Now().UnixNano()
	l.mu.Lock()
	if err := l.waitRoomLocked(); err != nil {
		l.mu.Unlock()
		return -1, err
	}
	first := l.assign
	var e *encoder
	var off int64
	for i := range recs {
		rec := &recs[i]
		ts := rec.Time
		if ts == 0 {
			ts = now
		}
		// The room check above admitted the batch as a whole, so records of
		// one call are never interleaved with another appender's.
		e = l.encoderLocked(encodedSize(rec, 0) + 10)
		off = e.add(rec, ts)
		l.assign++
	}
	if done != nil {
		e.acks = append(e.acks, ack{last: off, fn: done})
	}
	l.mu.Unlock()
	l.wake()
	return first, nil
}

// WaitDurable blocks until the record at off is acknowledged under the sync
// policy, or returns the error that keeps it from ever being so.
func (l *Log) WaitDurable(off int64) error {
	if off < l.durable.Load() {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if off >= l.assign {
		return fmt.Errorf("wait for offset %d: %w", off, ErrOffsetOutOfRange)
	}
	for off >= l.durable.Load() {
		if l.err != nil {
			return l.err
		}
		l.cond.Wait()
	}
	return nil
}

// Sync writes and fsyncs everything appended so far, whatever the policy,
// and acknowledges it.
func (l *Log) Sync() error {
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	l.commitLocked()
	if err := l.syncLocked(); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	return l.err
}

// check validates rec and returns a bound on its encoded size.
func (l *Log) check(rec *Record) (int, error) {
	if len(rec.Subject) == 0 {
		return 0, ErrEmptySubject
	}
	// 10 bytes cover the widest timestamp delta.
	n := encodedSize(rec, 0) + 10
	if n > l.opts.MaxRecordBytes {
		return 0, fmt.Errorf("%w: %d bytes, limit %d", ErrRecordTooLarge, n, l.opts.MaxRecordBytes)
	}
	return n, nil
}

// waitRoomLocked waits until the commit goroutine has room for another
// batch, and fails if the log is closed or broken.
func (l *Log) waitRoomLocked() error {
	for {
		switch {
		case l.closed:
			return ErrClosed
		case l.err != nil:
			return l.err
		case len(l.full) < maxQueuedBatches:
			return nil
		}
		l.cond.Wait()
	}
}

// encoderLocked returns the batch to add a record of size bytes to,
// closing the pending batch when the record would take it past BatchBytes.
func (l *Log) encoderLocked(size int) *encoder {
	e := l.pending
	if e != nil && e.count > 0 && e.size()+size > l.opts.BatchBytes {
		l.full = append(l.full, e)
		e = nil
	}
	if e == nil {
		if n := len(l.free); n > 0 {
			e = l.free[n-1]
			l.free = l.free[:n-1]
		} else {
			e = &encoder{}
		}
		e.reset(l.assign)
		e.opened = 0
		if l.opts.Metrics != nil {
			e.opened = time.Now().UnixNano()
		}
		l.pending = e
	}
	return e
}

func (l *Log) wake() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// commitLoop is the log's one background goroutine: it writes batches as
// they fill, fsyncs per policy, and acknowledges.
func (l *Log) commitLoop() {
	defer close(l.done)
	var tick <-chan time.Time
	if l.opts.Sync == SyncInterval {
		t := time.NewTicker(l.opts.SyncInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-l.kick:
			l.writeMu.Lock()
			l.commitLocked()
			l.writeMu.Unlock()
		case <-tick:
			l.writeMu.Lock()
			_ = l.syncLocked()
			l.writeMu.Unlock()
		case <-l.closing:
			l.writeMu.Lock()
			l.commitLocked()
			_ = l.syncLocked()
			l.mu.Lock()
			l.fail(ErrClosed)
			l.mu.Unlock()
			l.finishAcks(ErrClosed)
			l.writeMu.Unlock()
			return
		}
	}
}

// commitLocked writes every queued batch. Under SyncAlways it fsyncs them
// with one fdatasync; then it acknowledges what the policy allows.
// writeMu must be held.
func (l *Log) commitLocked() {
	l.mu.Lock()
	batches := append(l.taken[:0], l.full...)
	l.full = l.full[:0]
	if l.pending != nil && l.pending.count > 0 {
		batches = append(batches, l.pending)
		l.pending = nil
	}
	err := l.err
	l.mu.Unlock()
	if len(batches) == 0 {
		return
	}
	for _, e := range batches {
		if err == nil {
			err = l.stageBatch(e)
		}
		l.acks = append(l.acks, e.acks...)
	}
	if err == nil {
		err = l.flushStaged()
	}
	l.wbuf, l.staged = l.wbuf[:0], l.staged[:0]
	if err == nil && l.opts.Sync == SyncAlways {
		if err = l.timedSync(l.active()); err != nil {
			err = fmt.Errorf("stream %q: fsync segment %d: %w", l.name, l.active().base, err)
		} else {
			l.active().unsynced = false
		}
	}
	if err == nil && l.opts.Sync != SyncInterval {
		// Readers see records once they are durable, so they are woken
		// here, after the store, and not on the write: a waiter woken
		// before it would find nothing new and sleep through this commit.
		l.durable.Store(l.next.Load())
		l.announce()
		l.noteDurable(batches)
	} else if err == nil && l.unsyncedSince == 0 && l.opts.Metrics != nil {
		l.unsyncedSince = batches[0].opened
	}
	l.mu.Lock()
	if err != nil {
		l.fail(err)
	}
	for _, e := range batches {
		l.free = append(l.free, e)
	}
	l.cond.Broadcast()
	l.mu.Unlock()
	l.taken = batches[:0]
	l.finishAcks(err)
}

// syncLocked fsyncs written records that are not yet durable and
// acknowledges them. It also fsyncs records that are acknowledged but not
// yet fsynced, as under SyncNever, so that Sync and Close make everything
// durable whatever the policy. writeMu must be held.
func (l *Log) syncLocked() error {
	next := l.next.Load()
	prev := l.durable.Load()
	s := l.active()
	if next <= prev && !s.unsynced {
		return nil
	}
	err := l.timedSync(s)
	l.mu.Lock()
	if err != nil {
		err = fmt.Errorf("stream %q: fsync segment %d: %w", l.name, s.base, err)
		l.fail(err)
	} else {
		s.unsynced = false
		l.durable.Store(next)
		if l.unsyncedSince != 0 {
			l.opts.Metrics.Durable.Observe(time.Duration(time.Now().UnixNano() - l.unsyncedSince))
			l.unsyncedSince = 0
		}
	}
	l.cond.Broadcast()
	l.mu.Unlock()
	if err == nil && next > prev {
		l.announce() // the records become visible to readers
	}
	l.finishAcks(err)
	return err
}

// fail records the first error that breaks the log; mu must be held.
func (l *Log) fail(err error) {
	if l.err == nil {
		l.err = err
	}
}

// finishAcks calls, in order, the callbacks of acknowledged records, or of
// every waiting record with err.
func (l *Log) finishAcks(err error) {
	durable := l.durable.Load()
	n := 0
	for i := range l.acks {
		a := &l.acks[i]
		switch {
		case a.last < durable:
			a.fn(a.last, nil)
		case err != nil:
			a.fn(a.last, err)
		default:
			l.acks[n] = *a
			n++
			continue
		}
		a.fn = nil
	}
	clear(l.acks[n:])
	l.acks = l.acks[:n]
}

func (l *Log) active() *segment {
	segs := l.segments()
	return segs[len(segs)-1]
}

// writeBatch writes one finished batch at the end of the active segment.
func (l *Log) writeBatch(e *encoder) error {
	if err := l.stageBatch(e); err != nil {
		return err
	}
	return l.flushStaged()
}

// maxStaged bounds the bytes gathered for one write call.
const maxStaged = 1 << 20

// staged describes a batch in the write buffer.
type staged struct {
	base  int64
	count int
	maxTS int64
	pos   int64
	size  int
}

// stageBatch finishes e and appends it to the write buffer, so that the
// batches of one commit go to disk in as few write calls as possible. It
// rolls to a new segment first when the batch does not fit the active one.
func (l *Log) stageBatch(e *encoder) error {
	b, err := e.finish(l.codec)
	if err != nil {
		return fmt.Errorf("stream %q: encode batch at %d: %w", l.name, e.base, err)
	}
	s := l.active()
	end := s.size.Load() + int64(len(l.wbuf))
	if end+int64(len(b)) > s.capacity || len(l.wbuf)+len(b) > maxStaged {
		if err := l.flushStaged(); err != nil {
			return err
		}
		if s.size.Load()+int64(len(b)) > s.capacity {
			if s, err = l.roll(e.base); err != nil {
				return err
			}
		}
		end = s.size.Load()
	}
	l.staged = append(l.staged, staged{base: e.base, count: e.count, maxTS: e.maxTS, pos: end, size: len(b)})
	l.wbuf = append(l.wbuf, b...)
	return nil
}

// flushStaged writes the write buffer at the end of the active segment and
// publishes its batches to readers.
func (l *Log) flushStaged() error {
	if len(l.staged) == 0 {
		return nil
	}
	s := l.active()
	pos := s.size.Load()
	buf := l.wbuf
	l.wbuf = l.wbuf[:0]
	batches := l.staged
	l.staged = l.staged[:0]
	if _, err := s.f.WriteAt(buf, pos); err != nil {
		return fmt.Errorf("stream %q: write segment %d at byte %d: %w", l.name, s.base, pos, err)
	}
	for _, b := range batches {
		rel := uint32(b.base - s.base)
		s.idx.add(rel, b.pos, b.maxTS, l.opts.IndexIntervalBytes)
		s.lastBatchPos, s.lastBatchRel = b.pos, rel
	}
	last := batches[len(batches)-1]
	end := last.pos + int64(last.size)
	next := last.base + int64(last.count)
	s.unsynced = true
	s.verified.Store(end)
	s.next.Store(next)
	s.size.Store(end)
	l.next.Store(next)
	return nil
}

// roll seals the active segment and starts a new one at base. The sealed
// file is cut to its used length and fsynced whatever the policy, so a
// sealed segment is always complete: only the active one can have a torn
// tail. Retention runs before the new segment is allocated, so that on a
// full disk the space it frees is there for the allocation, and again
// after, when the segment just sealed may go too. writeMu must be held.
func (l *Log) roll(base int64) (*segment, error) {
	old := l.active()
	if err := l.seal(old); err != nil {
		return nil, err
	}
	_, _ = l.retainLocked(time.Now())
	s, err := l.createSegment(base)
	if err != nil {
		return nil, err
	}
	segs := append(append([]*segment(nil), l.segments()...), s)
	l.segs.Store(&segs)
	old.sealed.Store(true)
	_, _ = l.retainLocked(time.Now())
	l.trimMappings()
	return s, nil
}

// seal finishes a segment: final index entries, files cut to size and
// fsynced, index files written.
func (l *Log) seal(s *segment) error {
	size := s.size.Load()
	if s.lastBatchPos >= 0 {
		s.idx.seal(s.lastBatchRel, s.lastBatchPos)
	}
	if err := s.f.Truncate(size); err != nil {
		return fmt.Errorf("stream %q: seal segment %d: %w", l.name, s.base, err)
	}
	if err := fdatasync(s.f); err != nil {
		return fmt.Errorf("stream %q: seal segment %d: %w", l.name, s.base, err)
	}
	s.unsynced = false
	if err := s.idx.writeFiles(l.dir, s.base); err != nil {
		return fmt.Errorf("stream %q: write index of segment %d: %w", l.name, s.base, err)
	}
	return nil
}

// createSegment makes and maps a new, empty, preallocated segment file.
// On failure nothing of it is left: not the file descriptor, not the
// mapping, and not the file, whose blocks a full disk wants back and which
// would otherwise become an empty last segment at the next Open.
func (l *Log) createSegment(base int64) (*segment, error) {
	path := segmentPath(l.dir, base, segmentExt)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("stream %q: create segment %d: %w", l.name, base, err)
	}
	s := &segment{base: base, dir: l.dir, f: f, idx: newSegIndex(), capacity: l.opts.SegmentBytes, lastBatchPos: -1}
	s.next.Store(base)
	fail := func(err error) (*segment, error) {
		l.mapped.Add(-s.remove()) // unmaps if mapped, closes f
		_ = os.Remove(path)
		return nil, err
	}
	if err := allocate(f, s.capacity); err != nil {
		return fail(fmt.Errorf("stream %q: preallocate segment %d: %w", l.name, base, err))
	}
	n, err := s.mapWriter()
	if err != nil {
		return fail(err)
	}
	l.mapped.Add(n)
	if err := syncDir(l.dir); err != nil {
		return fail(fmt.Errorf("stream %q: sync directory: %w", l.name, err))
	}
	return s, nil
}
