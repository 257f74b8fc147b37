package log

import (
	"errors"
	"fmt"
	"math/bits"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Errors callers branch on. Other errors are wrapped with the operation and
// segment they concern.
var (
	// ErrClosed is returned by every operation on a closed Log or Reader.
	ErrClosed = errors.New("log: closed")
	// ErrRecordTooLarge is returned when an encoded record exceeds
	// Options.MaxRecordBytes.
	ErrRecordTooLarge = errors.New("log: record too large")
	// ErrEmptySubject is returned when a record has no subject.
	ErrEmptySubject = errors.New("log: empty subject")
	// ErrCorrupt marks data that fails its CRC or does not decode. Reads
	// return it wrapped in a *CorruptError.
	ErrCorrupt = errors.New("log: corrupt data")
	// ErrOffsetOutOfRange is returned for an offset below the first
	// retained record or beyond the next offset to be written.
	ErrOffsetOutOfRange = errors.New("log: offset out of range")
)

// CorruptError reports a damaged batch: which stream, which segment, the
// offset being read, and where reading may resume.
type CorruptError struct {
	Stream   string
	Segment  int64 // base offset of the segment
	Offset   int64 // offset the reader was looking for
	Position int64 // byte position of the damaged batch in the segment
	// Next is the lowest offset known to be readable after the damage: a
	// Reader can SeekOffset to it to skip the damaged range.
	Next int64
	Err  error
}

// Error names the stream, segment, offset and byte position of the damage.
func (e *CorruptError) Error() string {
	return fmt.Sprintf("log: stream %q segment %d: offset %d (byte %d): %v; readable again from offset %d",
		e.Stream, e.Segment, e.Offset, e.Position, e.Err, e.Next)
}

// Unwrap returns the underlying error, which wraps ErrCorrupt.
func (e *CorruptError) Unwrap() error { return e.Err }

// SyncPolicy says when an append is acknowledged.
type SyncPolicy uint8

const (
	// SyncAlways acknowledges a record after the fdatasync that follows
	// the write of its batch. Concurrent appends share that fsync.
	SyncAlways SyncPolicy = iota
	// SyncInterval writes at once and fsyncs every Options.SyncInterval;
	// a record is acknowledged after the fsync that covers it.
	SyncInterval
	// SyncNever acknowledges a record once it is written to the page
	// cache; the operating system flushes it later. A crash of the process
	// loses nothing; a crash of the machine may.
	SyncNever
)

// String returns the policy's configuration name.
func (p SyncPolicy) String() string {
	switch p {
	case SyncAlways:
		return "always"
	case SyncInterval:
		return "interval"
	case SyncNever:
		return "never"
	}
	return fmt.Sprintf("sync(%d)", uint8(p))
}

// Defaults, chosen for small gateways; see doc.go.
const (
	DefaultSegmentBytes       = 32 << 20
	DefaultMaxRecordBytes     = 1 << 20
	DefaultBatchBytes         = 16 << 10
	DefaultIndexIntervalBytes = 4 << 10
	DefaultSyncInterval       = 100 * time.Millisecond
	// DefaultMaxMappedBytes32 is the mapped-bytes cap on 32-bit platforms,
	// where the whole address space is 2-3 GiB. 64-bit platforms default
	// to no cap.
	DefaultMaxMappedBytes32 = 256 << 20

	minSegmentBytes = 4 << 10
	maxSegmentBytes = 1 << 30 // positions are uint32; 32-bit mmap
)

// Options configure a Log. The zero value is usable: every zero field takes
// its default.
type Options struct {
	// Name identifies the stream in errors and reports; default: the base
	// name of the directory.
	Name string
	// SegmentBytes is the preallocated size of each segment file.
	SegmentBytes int64
	// MaxRecordBytes bounds one encoded record (subject, headers, payload
	// and a few bytes of framing); default min(1 MiB, SegmentBytes/4).
	MaxRecordBytes int
	// BatchBytes is the size at which the log closes a batch and starts
	// another; default min(16 KiB, SegmentBytes/4).
	BatchBytes int
	// IndexIntervalBytes is the spacing of sparse index entries.
	IndexIntervalBytes int
	// Sync is the fsync policy; the zero value is SyncAlways.
	Sync SyncPolicy
	// SyncInterval is the fsync period under SyncInterval.
	SyncInterval time.Duration
	// Compression applies to batches written from now on.
	Compression Compression
	// Retention bounds what the log keeps; zero fields keep everything.
	Retention Retention
	// MaxMappedBytes caps the bytes of sealed segments kept mapped; the
	// least recently used idle ones are unmapped beyond it. Zero means the
	// default (DefaultMaxMappedBytes32 on 32-bit platforms, no cap on
	// 64-bit ones); negative means no cap.
	MaxMappedBytes int64
	// Metrics, when set, receives the timings of fsyncs and of appends
	// becoming durable (see Metrics); shared by a broker's streams.
	Metrics *Metrics
}

func (o Options) withDefaults(dir string) (Options, error) {
	if o.Name == "" {
		o.Name = filepath.Base(dir)
	}
	if o.SegmentBytes == 0 {
		o.SegmentBytes = DefaultSegmentBytes
	}
	if o.SegmentBytes < minSegmentBytes || o.SegmentBytes > maxSegmentBytes {
		return o, fmt.Errorf("log: segment size %d outside [%d, %d]", o.SegmentBytes, minSegmentBytes, maxSegmentBytes)
	}
	if o.MaxRecordBytes == 0 {
		o.MaxRecordBytes = int(min(DefaultMaxRecordBytes, o.SegmentBytes/4))
	}
	if o.BatchBytes == 0 {
		o.BatchBytes = int(min(DefaultBatchBytes, o.SegmentBytes/4))
	}
	if o.IndexIntervalBytes == 0 {
		o.IndexIntervalBytes = DefaultIndexIntervalBytes
	}
	if o.SyncInterval == 0 {
		o.SyncInterval = DefaultSyncInterval
	}
	if o.MaxMappedBytes == 0 && bits.UintSize == 32 {
		o.MaxMappedBytes = DefaultMaxMappedBytes32
	}
	if o.MaxRecordBytes < 0 || o.BatchBytes < 0 || o.IndexIntervalBytes < 0 || o.SyncInterval < 0 {
		return o, errors.New("log: negative option")
	}
	if int64(o.BatchBytes)+int64(o.MaxRecordBytes)+2*batchHeaderSize > o.SegmentBytes {
		return o, fmt.Errorf("log: batch (%d) plus record (%d) bytes do not fit a %d-byte segment",
			o.BatchBytes, o.MaxRecordBytes, o.SegmentBytes)
	}
	if o.Sync > SyncNever || o.Compression > CompressZstd {
		return o, errors.New("log: unknown sync policy or compression")
	}
	return o, nil
}

// Log is one stream: an ordered folder of segments. All methods are safe
// for concurrent use.
type Log struct {
	dir   string
	name  string
	opts  Options
	codec *codec

	segs    atomic.Pointer[[]*segment] // copy on write; the last is active
	mapped  atomic.Int64               // bytes of all live mappings
	clock   atomic.Int64               // LRU ticks
	first   atomic.Int64
	next    atomic.Int64 // records below are written
	durable atomic.Int64 // records below are acknowledged, and readable
	floor   atomic.Int64

	// Append side, guarded by mu. cond signals progress of durable, free
	// encoders, failure and close.
	mu      sync.Mutex
	cond    sync.Cond
	assign  int64
	pending *encoder
	full    []*encoder
	free    []*encoder
	err     error
	closed  bool

	kick    chan struct{} // wakes the commit goroutine
	closing chan struct{} // closed by Close
	done    chan struct{} // closed when the commit goroutine has exited

	// writeMu is held by whoever writes files: the commit goroutine,
	// Retain, Truncate. Lock order: writeMu before mu.
	writeMu sync.Mutex
	taken   []*encoder // commit scratch
	wbuf    []byte     // batches gathered for one write call
	staged  []staged
	acks    []ack // written, waiting for the fsync that covers them
	// unsyncedSince is when the oldest batch written since the last
	// periodic fsync was opened (SyncInterval with Metrics only).
	unsyncedSince int64

	notifyMu sync.Mutex
	notify   chan struct{}

	report  RecoveryReport
	cursors *CursorStore
}

// Open opens the stream in dir, creating dir if needed, and recovers it:
// see Recovery for what was found. The caller must Close the Log.
func Open(dir string, opts Options) (*Log, error) {
	opts, err := opts.withDefaults(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("open stream %q: %w", opts.Name, err)
	}
	c, err := newCodec(opts.Compression)
	if err != nil {
		return nil, err
	}
	l := &Log{
		dir:     dir,
		name:    opts.Name,
		opts:    opts,
		codec:   c,
		kick:    make(chan struct{}, 1),
		closing: make(chan struct{}),
		done:    make(chan struct{}),
	}
	l.cond.L = &l.mu
	segs, err := l.recover()
	if err != nil {
		c.close()
		return nil, err
	}
	// The consumers' committed offsets live beside the segments, so a
	// stream's folder is the whole of its durable state.
	cursors, crec, err := OpenCursors(dir)
	if err != nil {
		for _, s := range segs {
			l.mapped.Add(-s.remove())
		}
		c.close()
		return nil, fmt.Errorf("open stream %q: %w", opts.Name, err)
	}
	l.cursors = cursors
	l.report.Cursors = crec
	l.segs.Store(&segs)
	l.first.Store(segs[0].base)
	next := segs[len(segs)-1].next.Load()
	l.next.Store(next)
	l.durable.Store(next)
	l.assign = next
	go l.commitLoop()
	return l, nil
}

// Cursors returns the stream's named cursors: the committed offsets of its
// consumers, kept durably in the stream's folder. Deciding what they mean
// for retention is the caller's: a work queue passes the lowest of them to
// SetFloor. The store is closed with the Log.
func (l *Log) Cursors() *CursorStore { return l.cursors }

// Name returns the stream name used in errors and reports.
func (l *Log) Name() string { return l.name }

// Recovery returns what Open found and repaired.
func (l *Log) Recovery() RecoveryReport { return l.report }

// FirstOffset returns the offset of the oldest retained record (equal to
// NextOffset when the log is empty).
func (l *Log) FirstOffset() int64 { return l.first.Load() }

// NextOffset returns the offset the next record will be written at: every
// offset below it has been written. It can lag offsets already returned by
// Append until their batch is written. Readers see records only below
// DurableOffset, which lags NextOffset until the written records are
// acknowledged.
func (l *Log) NextOffset() int64 { return l.next.Load() }

// LastOffset returns the offset of the newest written record, or
// FirstOffset()-1 when the log is empty. It may not be readable yet: see
// DurableOffset.
func (l *Log) LastOffset() int64 { return l.next.Load() - 1 }

// DurableOffset returns the offset below which every record is
// acknowledged under the log's sync policy. It is also the end of what
// Readers see: a record becomes visible when its append is acknowledged,
// not when it is written, so that a consumer never processes (and commits
// its cursor past) a record that a power loss before its fsync would erase
// and whose offset would then go to another record. Under SyncNever it
// equals NextOffset once a commit is done.
func (l *Log) DurableOffset() int64 { return l.durable.Load() }

// Changed returns a channel that is closed when the durable offset
// advances after the call (records become visible to readers), when a
// Truncate moves the end of the log, or when the log closes. A write that
// is not yet acknowledged does not close it. A tailing consumer takes the
// channel, checks DurableOffset, and waits on it; no polling is needed.
func (l *Log) Changed() <-chan struct{} {
	l.notifyMu.Lock()
	defer l.notifyMu.Unlock()
	if l.notify == nil {
		l.notify = make(chan struct{})
	}
	return l.notify
}

// announce wakes the waiters on Changed. It allocates a channel only when
// somebody waited on the previous one.
func (l *Log) announce() {
	l.notifyMu.Lock()
	if l.notify != nil {
		close(l.notify)
		l.notify = nil
	}
	l.notifyMu.Unlock()
}

// Stats is a snapshot of a log's counters.
type Stats struct {
	Segments    int
	Bytes       int64 // bytes of records on disk (not counting preallocation)
	MappedBytes int64
	First       int64
	Next        int64
	Durable     int64
}

// Stats returns current counters.
func (l *Log) Stats() Stats {
	segs := *l.segs.Load()
	st := Stats{Segments: len(segs), MappedBytes: l.mapped.Load(), First: l.first.Load(),
		Next: l.next.Load(), Durable: l.durable.Load()}
	for _, s := range segs {
		st.Bytes += s.size.Load()
	}
	return st
}

// segments returns the current segment list; the slice must not be
// modified.
func (l *Log) segments() []*segment { return *l.segs.Load() }

// segmentFor returns the segment that holds off, or nil if off is below
// the first retained segment.
func (l *Log) segmentFor(off int64) *segment {
	segs := l.segments()
	i := sort.Search(len(segs), func(i int) bool { return segs[i].base > off })
	if i == 0 {
		return nil
	}
	return segs[i-1]
}

// trimMappings unmaps idle sealed segments, least recently used first,
// until the mapped total is within the cap.
func (l *Log) trimMappings() {
	limit := l.opts.MaxMappedBytes
	if limit <= 0 || l.mapped.Load() <= limit {
		return
	}
	segs := append([]*segment(nil), l.segments()...)
	sort.Slice(segs, func(i, j int) bool { return segs[i].lastUse.Load() < segs[j].lastUse.Load() })
	for _, s := range segs {
		if l.mapped.Load() <= limit {
			return
		}
		l.mapped.Add(-s.unmapIdle())
	}
}

// Close writes everything appended so far, fsyncs it, acknowledges it and
// closes the files. Mappings held by open Readers stay valid until they are
// released. Close returns ErrClosed if the log was already closed.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	l.closed = true
	l.cond.Broadcast()
	l.mu.Unlock()
	close(l.closing)
	<-l.done
	l.announce()

	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	l.mu.Lock()
	err := l.err
	l.mu.Unlock()
	for _, s := range l.segments() {
		l.mapped.Add(-s.remove())
	}
	l.codec.close()
	if errors.Is(err, ErrClosed) {
		err = nil
	}
	if cerr := l.cursors.Close(); err == nil {
		err = cerr
	}
	return err
}
