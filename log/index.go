package log

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"sort"
	"sync"
)

// offsetEntry maps a batch's first offset (relative to the segment base) to
// its byte position in the segment.
type offsetEntry struct {
	rel uint32
	pos uint32
}

// timeEntry records the largest timestamp of all records up to and
// including the batch that starts at offset base+rel. Keeping the running
// maximum makes the entries sorted even when producers supply timestamps
// slightly out of order.
type timeEntry struct {
	maxTS int64
	rel   uint32
	pos   uint32 // kept in memory only; the file stores ts and rel
}

// segIndex is the sparse offset index and the time index of one segment.
// The commit goroutine adds entries while readers look them up, hence the
// lock; both happen once per batch or seek, never per record.
type segIndex struct {
	mu      sync.RWMutex
	offsets []offsetEntry
	times   []timeEntry
	lastPos int64 // position of the last indexed batch, -1 if none
	maxTS   int64
}

func newSegIndex() *segIndex { return &segIndex{lastPos: -1} }

// add notes the batch at pos; it becomes an index entry when it is the
// first one or at least interval bytes past the previous entry.
func (x *segIndex) add(rel uint32, pos int64, maxTS int64, interval int) {
	x.mu.Lock()
	if maxTS > x.maxTS || len(x.offsets) == 0 {
		x.maxTS = maxTS
	}
	if x.lastPos < 0 || pos-x.lastPos >= int64(interval) {
		x.offsets = append(x.offsets, offsetEntry{rel: rel, pos: uint32(pos)})
		x.times = append(x.times, timeEntry{maxTS: x.maxTS, rel: rel, pos: uint32(pos)})
		x.lastPos = pos
	}
	x.mu.Unlock()
}

// lookup returns the position of the last indexed batch whose first offset
// is at most rel: the place to start scanning for rel.
func (x *segIndex) lookup(rel uint32) int64 {
	x.mu.RLock()
	defer x.mu.RUnlock()
	i := sort.Search(len(x.offsets), func(i int) bool { return x.offsets[i].rel > rel })
	if i == 0 {
		return 0
	}
	return int64(x.offsets[i-1].pos)
}

// lookupTime returns a position from which a scan finds the first record
// with a timestamp at or after ts: the last indexed batch before which every
// record is older than ts.
func (x *segIndex) lookupTime(ts int64) int64 {
	x.mu.RLock()
	defer x.mu.RUnlock()
	i := sort.Search(len(x.times), func(i int) bool { return x.times[i].maxTS >= ts })
	if i == 0 {
		return 0
	}
	return int64(x.times[i-1].pos)
}

// maxTime is the largest timestamp seen in the segment.
func (x *segIndex) maxTime() int64 {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.maxTS
}

// truncate drops every entry at or after byte position pos.
func (x *segIndex) truncate(pos int64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	i := sort.Search(len(x.offsets), func(i int) bool { return int64(x.offsets[i].pos) >= pos })
	x.offsets = x.offsets[:i]
	j := sort.Search(len(x.times), func(j int) bool { return int64(x.times[j].pos) >= pos })
	x.times = x.times[:j]
	x.lastPos = -1
	if i > 0 {
		x.lastPos = int64(x.offsets[i-1].pos)
	}
	x.maxTS = 0
	if j > 0 {
		x.maxTS = x.times[j-1].maxTS
	}
}

// seal indexes the segment's last batch (relative offset rel at pos) in
// both indexes, so the sealed segment's maximum timestamp, needed by age
// retention, is the last time entry.
func (x *segIndex) seal(rel uint32, pos int64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.lastPos != pos {
		x.offsets = append(x.offsets, offsetEntry{rel: rel, pos: uint32(pos)})
		x.times = append(x.times, timeEntry{maxTS: x.maxTS, rel: rel, pos: uint32(pos)})
		x.lastPos = pos
		return
	}
	if n := len(x.times); n > 0 {
		x.times[n-1].maxTS = x.maxTS
	}
}

var errBadIndex = errors.New("index file damaged")

// writeIndexFiles stores x beside the segment. They are written once, when
// the segment is sealed; a crash in the middle leaves a file that fails its
// CRC and is rebuilt on open.
func (x *segIndex) writeFiles(dir string, base int64) error {
	x.mu.RLock()
	ob := make([]byte, indexHeaderSize, indexHeaderSize+len(x.offsets)*offsetEntrySize)
	for _, e := range x.offsets {
		ob = binary.LittleEndian.AppendUint32(ob, e.rel)
		ob = binary.LittleEndian.AppendUint32(ob, e.pos)
	}
	tb := make([]byte, indexHeaderSize, indexHeaderSize+len(x.times)*timeEntrySize)
	for _, e := range x.times {
		tb = binary.LittleEndian.AppendUint64(tb, uint64(e.maxTS))
		tb = binary.LittleEndian.AppendUint32(tb, e.rel)
	}
	x.mu.RUnlock()
	putIndexHeader(ob, indexMagic)
	putIndexHeader(tb, timeIndexMagic)
	if err := os.WriteFile(segmentPath(dir, base, indexExt), ob, 0o644); err != nil {
		return err
	}
	return os.WriteFile(segmentPath(dir, base, timeIndexExt), tb, 0o644)
}

// putIndexHeader fills the 16-byte header: magic, version, three reserved
// bytes, entry bytes length, CRC32C of the entries.
func putIndexHeader(b []byte, magic uint32) {
	binary.LittleEndian.PutUint32(b[0:], magic)
	b[4] = formatVersion
	b[5], b[6], b[7] = 0, 0, 0
	binary.LittleEndian.PutUint32(b[8:], uint32(len(b)-indexHeaderSize))
	binary.LittleEndian.PutUint32(b[12:], crc32.Checksum(b[indexHeaderSize:], castagnoli))
}

func checkIndexFile(b []byte, magic uint32, entrySize int) ([]byte, error) {
	if len(b) < indexHeaderSize || binary.LittleEndian.Uint32(b) != magic || b[4] != formatVersion {
		return nil, errBadIndex
	}
	body := b[indexHeaderSize:]
	if int(binary.LittleEndian.Uint32(b[8:])) != len(body) || len(body)%entrySize != 0 ||
		crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(b[12:]) {
		return nil, errBadIndex
	}
	return body, nil
}

// readIndexFiles loads the index of a sealed segment of size bytes. Any
// inconsistency (missing file, bad CRC, entries out of order or out of the
// segment) is reported so the caller rebuilds the index from the segment.
func readIndexFiles(dir string, base, size int64) (*segIndex, error) {
	ob, err := os.ReadFile(segmentPath(dir, base, indexExt))
	if err != nil {
		return nil, err
	}
	tb, err := os.ReadFile(segmentPath(dir, base, timeIndexExt))
	if err != nil {
		return nil, err
	}
	if ob, err = checkIndexFile(ob, indexMagic, offsetEntrySize); err != nil {
		return nil, err
	}
	if tb, err = checkIndexFile(tb, timeIndexMagic, timeEntrySize); err != nil {
		return nil, err
	}
	x := newSegIndex()
	n := len(ob) / offsetEntrySize
	if n == 0 && size > 0 {
		return nil, fmt.Errorf("%w: no entries", errBadIndex)
	}
	x.offsets = make([]offsetEntry, n)
	for i := range x.offsets {
		e := offsetEntry{rel: binary.LittleEndian.Uint32(ob[i*8:]), pos: binary.LittleEndian.Uint32(ob[i*8+4:])}
		if int64(e.pos) >= size || (i > 0 && (e.rel <= x.offsets[i-1].rel || e.pos <= x.offsets[i-1].pos)) || (i == 0 && e.pos != 0) {
			return nil, fmt.Errorf("%w: entry %d out of order", errBadIndex, i)
		}
		x.offsets[i] = e
	}
	x.times = make([]timeEntry, 0, len(tb)/timeEntrySize)
	for i := 0; i < len(tb); i += timeEntrySize {
		e := timeEntry{maxTS: int64(binary.LittleEndian.Uint64(tb[i:])), rel: binary.LittleEndian.Uint32(tb[i+8:])}
		// The position is recovered from the offset index: time entries
		// are always taken at indexed batches.
		j := sort.Search(len(x.offsets), func(j int) bool { return x.offsets[j].rel >= e.rel })
		if j == len(x.offsets) || x.offsets[j].rel != e.rel {
			return nil, fmt.Errorf("%w: time entry without offset entry", errBadIndex)
		}
		if k := len(x.times); k > 0 && (e.maxTS < x.times[k-1].maxTS || e.rel < x.times[k-1].rel) {
			return nil, fmt.Errorf("%w: time entries out of order", errBadIndex)
		}
		e.pos = x.offsets[j].pos
		x.times = append(x.times, e)
	}
	if n > 0 {
		x.lastPos = int64(x.offsets[n-1].pos)
	}
	if k := len(x.times); k > 0 {
		x.maxTS = x.times[k-1].maxTS
	}
	return x, nil
}
