package log

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
)

// errSegmentGone is returned by acquire when retention or truncation has
// removed the segment; readers turn it into ErrOffsetOutOfRange.
var errSegmentGone = errors.New("segment removed")

// segment is one file of a stream. The commit goroutine is its only writer;
// readers find their way through it with size (never read past it) and the
// index. Its mapping is reference counted: retention removes the file at
// once, but the mapping, and so every slice a reader holds, lives until the
// last reader releases it.
type segment struct {
	base int64
	dir  string
	f    *os.File
	idx  *segIndex

	size     atomic.Int64 // bytes readers may look at
	next     atomic.Int64 // offset after the segment's last record
	verified atomic.Int64 // every batch before this position passed its CRC
	lastUse  atomic.Int64 // LRU clock tick of the last acquire
	sealed   atomic.Bool  // no more appends; size and next are final

	// Touched only by the goroutine that writes (commit, roll, truncate).
	capacity     int64 // preallocated length of the active file
	lastBatchPos int64 // position of the last batch, -1 if empty
	lastBatchRel uint32
	unsynced     bool // written since its last fdatasync

	mu      sync.Mutex
	data    []byte // the mapping; nil when unmapped
	pins    int    // readers holding data
	removed bool   // deleted or log closed: unmap at the last release
}

// acquire pins the segment's mapping for a reader, mapping it if needed.
// The second result reports whether a new mapping was made, so the caller
// can enforce the log's mapped-bytes cap.
func (s *segment) acquire(clock int64) ([]byte, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.removed {
		return nil, false, errSegmentGone
	}
	mapped := false
	if s.data == nil {
		n := s.size.Load()
		if !s.sealed.Load() {
			n = s.capacity
		}
		if n > 0 {
			b, err := mmapFile(s.f, int(n))
			if err != nil {
				return nil, false, fmt.Errorf("map segment %d: %w", s.base, err)
			}
			s.data = b
			mapped = true
		}
	}
	s.pins++
	s.lastUse.Store(clock)
	return s.data, mapped, nil
}

// release drops a reader's pin; the last one out of a removed segment
// unmaps it and closes its file.
func (s *segment) release() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pins--
	if s.pins == 0 && s.removed {
		return s.unmapLocked()
	}
	return 0
}

// remove marks the segment deleted. Its mapping stays valid for the readers
// that hold it. It returns the bytes unmapped now.
func (s *segment) remove() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.removed {
		return 0
	}
	s.removed = true
	if s.pins == 0 {
		return s.unmapLocked()
	}
	return 0
}

// unmapIdle unmaps a sealed segment that no reader holds, for the LRU cap.
func (s *segment) unmapIdle() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pins > 0 || s.data == nil || !s.sealed.Load() || s.removed {
		return 0
	}
	n := int64(len(s.data))
	_ = munmap(s.data)
	s.data = nil
	return n
}

// mapWriter maps the active segment at its full capacity.
func (s *segment) mapWriter() (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.data != nil {
		return 0, nil
	}
	b, err := mmapFile(s.f, int(s.capacity))
	if err != nil {
		return 0, fmt.Errorf("map segment %d: %w", s.base, err)
	}
	s.data = b
	return int64(len(b)), nil
}

// unmapLocked releases the mapping and the file; it returns the bytes
// unmapped.
func (s *segment) unmapLocked() int64 {
	n := int64(len(s.data))
	_ = munmap(s.data)
	s.data = nil
	if s.f != nil {
		_ = s.f.Close()
		s.f = nil
	}
	return n
}

// mapped returns the current mapping without pinning it. Only the writer
// uses it, and only on the segment it is writing.
func (s *segment) mapping() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.data
}

func (s *segment) removeFiles() error {
	var first error
	for _, ext := range []string{segmentExt, indexExt, timeIndexExt} {
		if err := os.Remove(segmentPath(s.dir, s.base, ext)); err != nil && !os.IsNotExist(err) && first == nil {
			first = err
		}
	}
	return first
}
