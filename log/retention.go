package log

import (
	"fmt"
	"time"
)

// Retention bounds what a log keeps. Retention deletes whole sealed
// segments, oldest first, and never rewrites one; the active segment is
// never deleted, so the bounds are met to within one segment. A zero field
// does not limit.
type Retention struct {
	// MaxBytes: delete the oldest segments while the stream's records take
	// more than MaxBytes.
	MaxBytes int64
	// MaxAge: delete a segment once its newest record is older than MaxAge.
	MaxAge time.Duration
	// MaxRecords: delete the oldest segments while the stream holds more
	// than MaxRecords records.
	MaxRecords int64
}

// SetFloor tells the log that no consumer needs records below off any
// more (for a work queue: the slowest consumer's ack floor). Segments whose
// records are all below the floor are deleted at the next retention pass.
// A floor of 0 keeps everything.
func (l *Log) SetFloor(off int64) { l.floor.Store(off) }

// Retain applies the retention bounds and the floor now, with now as the
// current time for MaxAge, and returns the number of segments deleted. The
// log also applies retention on every segment roll; callers with an age
// bound call Retain periodically. Readers holding records of a deleted
// segment keep them valid until they Release.
func (l *Log) Retain(now time.Time) (int, error) {
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	if l.isClosed() {
		return 0, ErrClosed
	}
	return l.retainLocked(now)
}

// retainLocked deletes the segments retention allows; writeMu must be held.
func (l *Log) retainLocked(now time.Time) (int, error) {
	segs := l.segments()
	var bytes int64
	for _, s := range segs {
		bytes += s.size.Load()
	}
	records := l.next.Load() - l.first.Load()
	floor := l.floor.Load()
	r := l.opts.Retention
	n := 0
	for ; n < len(segs)-1; n++ {
		s := segs[n]
		size, count := s.size.Load(), s.next.Load()-s.base
		switch {
		case r.MaxBytes > 0 && bytes > r.MaxBytes:
		case r.MaxRecords > 0 && records > r.MaxRecords:
		case r.MaxAge > 0 && s.idx.maxTime() < now.Add(-r.MaxAge).UnixNano():
		case floor > 0 && s.next.Load() <= floor:
		default:
			goto done
		}
		bytes -= size
		records -= count
	}
done:
	if n == 0 {
		return 0, nil
	}
	return n, l.dropHead(n)
}

// dropHead deletes the first n segments. writeMu must be held.
func (l *Log) dropHead(n int) error {
	segs := l.segments()
	kept := append([]*segment(nil), segs[n:]...)
	l.segs.Store(&kept)
	l.first.Store(kept[0].base)
	var first error
	for _, s := range segs[:n] {
		if err := s.removeFiles(); err != nil && first == nil {
			first = fmt.Errorf("stream %q: delete segment %d: %w", l.name, s.base, err)
		}
		l.mapped.Add(-s.remove())
	}
	if err := syncDir(l.dir); err != nil && first == nil {
		first = fmt.Errorf("stream %q: sync directory: %w", l.name, err)
	}
	return first
}
