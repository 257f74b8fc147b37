package log

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"
	"time"
)

// RecoveryReport says what Open found and repaired; callers log it.
type RecoveryReport struct {
	Stream      string
	Segments    int
	FirstOffset int64
	NextOffset  int64
	// RebuiltIndexes lists the base offsets of segments whose index files
	// were missing or damaged and were rebuilt from the segment.
	RebuiltIndexes []int64
	// Truncated is true when the active segment ended in a torn or damaged
	// batch that was cut off. TruncatedSegment and TruncatedAt say where
	// (segment base, byte position of the new end); TruncatedBytes how many
	// non-zero bytes followed it; TruncatedReason why the scan stopped.
	Truncated        bool
	TruncatedSegment int64
	TruncatedAt      int64
	TruncatedBytes   int64
	TruncatedReason  string
	// Corrupt lists damage found in sealed segments while rebuilding their
	// index (each a *CorruptError). Those segments stay readable up to the
	// damage and the stream stays readable after them.
	Corrupt []error
	// Cursors says what replaying the cursor journal found.
	Cursors  CursorRecovery
	Duration time.Duration
}

// String summarises the report in one line.
func (r RecoveryReport) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "stream %q: %d segments, offsets [%d, %d), recovered in %v", r.Stream, r.Segments,
		r.FirstOffset, r.NextOffset, r.Duration.Round(time.Microsecond))
	if len(r.RebuiltIndexes) > 0 {
		fmt.Fprintf(&b, "; rebuilt index of segments %v", r.RebuiltIndexes)
	}
	if r.Truncated {
		fmt.Fprintf(&b, "; truncated segment %d at byte %d (%d bytes dropped: %s)", r.TruncatedSegment,
			r.TruncatedAt, r.TruncatedBytes, r.TruncatedReason)
	}
	for _, err := range r.Corrupt {
		fmt.Fprintf(&b, "; %v", err)
	}
	if r.Cursors.Entries > 0 || r.Cursors.TruncatedBytes > 0 {
		fmt.Fprintf(&b, "; cursor journal: %d entries", r.Cursors.Entries)
		if r.Cursors.TruncatedBytes > 0 {
			fmt.Fprintf(&b, ", torn tail of %d bytes cut", r.Cursors.TruncatedBytes)
		}
	}
	return b.String()
}

// scanResult is what a scan of a segment's bytes found.
type scanResult struct {
	end     int64 // position after the last valid batch
	next    int64 // offset after the last valid batch
	idx     *segIndex
	lastPos int64
	lastRel uint32
	stop    error // why the scan ended before the data did, nil if it did not
}

// scanSegment walks the batches of data, a segment with base offset base,
// checking each header, offset continuity and CRC, and builds its index.
// It stops at the first batch that fails; everything before it is intact.
func scanSegment(data []byte, base int64, interval int) scanResult {
	r := scanResult{next: base, idx: newSegIndex(), lastPos: -1}
	pos := int64(0)
	for pos < int64(len(data)) {
		b := data[pos:]
		h, err := parseBatchHeader(b)
		if err == nil && h.base != r.next {
			err = fmt.Errorf("%w: batch at byte %d has offset %d, expected %d", ErrCorrupt, pos, h.base, r.next)
		}
		if err == nil {
			err = verifyBatch(b, &h)
		}
		if err != nil {
			r.stop = err
			break
		}
		rel := uint32(h.base - base)
		r.idx.add(rel, pos, max(h.firstTS, h.lastTS), interval)
		r.lastPos, r.lastRel = pos, rel
		r.next = h.next()
		pos += int64(h.length)
	}
	r.end = pos
	return r
}

// recover opens every segment in the directory. Sealed segments get their
// index from disk (rebuilt if missing or damaged) and are not mapped; the
// last segment is scanned in full, its torn tail cut off, and it becomes the
// active segment.
func (l *Log) recover() ([]*segment, error) {
	start := time.Now()
	rep := &l.report
	*rep = RecoveryReport{Stream: l.name}
	entries, err := os.ReadDir(l.dir)
	if err != nil {
		return nil, fmt.Errorf("open stream %q: %w", l.name, err)
	}
	var bases []int64
	for _, e := range entries {
		if base, ok := parseSegmentName(e.Name()); ok && e.Type().IsRegular() {
			bases = append(bases, base)
		}
	}
	sort.Slice(bases, func(i, j int) bool { return bases[i] < bases[j] })

	var segs []*segment
	fail := func(err error) ([]*segment, error) {
		for _, s := range segs {
			l.mapped.Add(-s.remove())
		}
		return nil, err
	}
	for i, base := range bases {
		last := i == len(bases)-1
		var s *segment
		if last {
			s, err = l.openActive(base)
		} else {
			s, err = l.openSealed(base, bases[i+1])
		}
		if err != nil {
			return fail(err)
		}
		segs = append(segs, s)
	}
	if len(segs) == 0 {
		s, err := l.createSegment(0)
		if err != nil {
			return nil, err
		}
		segs = append(segs, s)
	}
	rep.Segments = len(segs)
	rep.FirstOffset = segs[0].base
	rep.NextOffset = segs[len(segs)-1].next.Load()
	rep.Duration = time.Since(start)
	return segs, nil
}

// openSealed opens a sealed segment that ends where the one at nextBase
// begins.
func (l *Log) openSealed(base, nextBase int64) (*segment, error) {
	f, err := os.OpenFile(segmentPath(l.dir, base, segmentExt), os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("open segment %d: %w", base, err)
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("open segment %d: %w", base, err)
	}
	if st.Size() > maxSegmentBytes {
		// Positions in a segment are 32-bit, and on 32-bit platforms the
		// length would wrap when mapped.
		_ = f.Close()
		return nil, fmt.Errorf("open segment %d: %d bytes is larger than %d", base, st.Size(), maxSegmentBytes)
	}
	s := &segment{base: base, dir: l.dir, f: f, capacity: st.Size(), lastBatchPos: -1}
	s.size.Store(st.Size())
	s.next.Store(nextBase)
	s.sealed.Store(true)
	if nextBase <= base {
		_ = f.Close()
		return nil, fmt.Errorf("open segment %d: %w: next segment starts at %d", base, ErrCorrupt, nextBase)
	}
	s.idx, err = readIndexFiles(l.dir, base, st.Size())
	if err == nil {
		return s, nil
	}
	// Rebuild the index from the segment itself; CRCs are checked on the
	// way, so damage shows up here rather than at a reader's first visit.
	data, err := mmapFile(f, int(st.Size()))
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("open segment %d: map: %w", base, err)
	}
	r := scanSegment(data, base, l.opts.IndexIntervalBytes)
	_ = munmap(data)
	s.idx = r.idx
	if r.lastPos >= 0 {
		s.idx.seal(r.lastRel, r.lastPos)
	}
	s.verified.Store(r.end)
	l.report.RebuiltIndexes = append(l.report.RebuiltIndexes, base)
	if r.stop != nil || r.next != nextBase {
		cause := r.stop
		if cause == nil {
			cause = fmt.Errorf("%w: segment ends at offset %d, next segment starts at %d", ErrCorrupt, r.next, nextBase)
		}
		l.report.Corrupt = append(l.report.Corrupt, &CorruptError{Stream: l.name, Segment: base, Offset: r.next,
			Position: r.end, Next: nextBase, Err: cause})
	}
	if err := s.idx.writeFiles(l.dir, base); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("open segment %d: write index: %w", base, err)
	}
	return s, nil
}

// openActive opens the last segment for appending: it is scanned in full
// (its index is rebuilt as a by-product) and anything after the last intact
// batch is zeroed.
func (l *Log) openActive(base int64) (*segment, error) {
	path := segmentPath(l.dir, base, segmentExt)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("open segment %d: %w", base, err)
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("open segment %d: %w", base, err)
	}
	capacity := max(l.opts.SegmentBytes, st.Size())
	if capacity > maxSegmentBytes {
		_ = f.Close()
		return nil, fmt.Errorf("open segment %d: %d bytes is larger than %d", base, st.Size(), maxSegmentBytes)
	}
	if st.Size() < capacity {
		if err := preallocate(f, capacity); err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("open segment %d: preallocate: %w", base, err)
		}
	}
	s := &segment{base: base, dir: l.dir, f: f, capacity: capacity, lastBatchPos: -1}
	n, err := s.mapWriter()
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	l.mapped.Add(n)
	data := s.mapping()
	r := scanSegment(data, base, l.opts.IndexIntervalBytes)
	s.idx = r.idx
	s.lastBatchPos, s.lastBatchRel = r.lastPos, r.lastRel
	s.size.Store(r.end)
	s.next.Store(r.next)
	s.verified.Store(r.end)

	// A clean end is followed by zeros. Anything else is a torn write or
	// damage: zero it, so no stale batch can ever line up behind a later
	// append. The check covers the whole rest of the segment, not a few
	// batches: unsynced writes reach as far as one commit (up to maxStaged
	// bytes) or, under SyncInterval and SyncNever, many commits, and the
	// pages of a write reach the disk in no particular order, so intact
	// batches can follow a long run of zeros. Ranges the filesystem
	// reports as holes (never written, or punched) read as zeros and are
	// skipped, so a fresh preallocated segment costs no page faults.
	if dirty := lastNonZeroData(f, data, r.end); dirty >= 0 {
		rep := &l.report
		rep.Truncated = true
		rep.TruncatedSegment = base
		rep.TruncatedAt = r.end
		rep.TruncatedBytes = dirty + 1
		rep.TruncatedReason = "end of data"
		if r.stop != nil {
			rep.TruncatedReason = r.stop.Error()
		}
		if err := zeroRange(f, r.end, capacity-r.end); err != nil {
			l.mapped.Add(-s.remove())
			return nil, fmt.Errorf("open segment %d: truncate torn tail: %w", base, err)
		}
		if err := fdatasync(f); err != nil {
			l.mapped.Add(-s.remove())
			return nil, fmt.Errorf("open segment %d: %w", base, err)
		}
	}
	// Index files of the active segment are rewritten when it is sealed;
	// stale ones (left by a truncation) must not outlive it.
	for _, ext := range []string{indexExt, timeIndexExt} {
		if err := os.Remove(segmentPath(l.dir, base, ext)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			l.mapped.Add(-s.remove())
			return nil, fmt.Errorf("open segment %d: %w", base, err)
		}
	}
	return s, nil
}

// lastNonZeroData returns the distance from from to the last non-zero byte
// of data, the mapping of f, or -1 if data[from:] is all zeros. It reads
// only the ranges of f that may hold data.
func lastNonZeroData(f *os.File, data []byte, from int64) int64 {
	last := int64(-1)
	end := int64(len(data))
	for off := from; off < end; {
		start, stop, ok := dataRange(f, off, end)
		if !ok {
			break
		}
		if i := lastNonZero(data[start:stop]); i >= 0 {
			last = start + int64(i) - from
		}
		off = stop
	}
	return last
}

// lastNonZero returns the index of the last non-zero byte of b, or -1. It
// compares page-sized chunks against zeros first: the usual answer is -1.
func lastNonZero(b []byte) int {
	var zero [4096]byte
	for end := len(b); end > 0; {
		start := max(0, end-len(zero))
		if !bytes.Equal(b[start:end], zero[:end-start]) {
			for i := end - 1; i >= start; i-- {
				if b[i] != 0 {
					return i
				}
			}
		}
		end = start
	}
	return -1
}
