package log

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
)

// Named cursors are the committed offsets of consumers, kept beside the
// stream they read. They live in a small journal of their own rather than in
// a file per cursor rewritten with write-and-rename: a work queue commits its
// ack floor thousands of times a second, and a rename per commit costs two
// fsyncs and a metadata write each time, which is slow on SD cards and wears
// flash. The journal is appended sequentially, concurrent commits share one
// write and one fsync, and when it has grown well past the live state it is
// compacted by writing a fresh journal beside it and renaming it over the old
// one. The journal's format is in docs/FORMAT.md.

// CursorFile is the name of the cursor journal inside a stream's folder.
const CursorFile = "cursors.journal"

const (
	cursorEntryHeader = 4 + 2 + 1 // crc32c, body length, kind
	cursorKindSet     = 1
	cursorKindDelete  = 2
	// MaxCursorName is the longest cursor name in bytes.
	MaxCursorName = 255
	// cursorCompactMin keeps small journals from being compacted over and
	// over: below this size the dead entries cost less than a rewrite.
	cursorCompactMin = 64 << 10
)

var (
	// ErrCursorName reports a cursor name that is empty or longer than
	// MaxCursorName bytes.
	ErrCursorName = errors.New("log: cursor name must be 1 to 255 bytes")
)

// CursorStore keeps the committed offsets of named cursors durably. Commit
// returns only after the offset is on stable storage, so a consumer that
// commits before acknowledging upstream never loses its place in a crash.
// All methods are safe for concurrent use; concurrent commits are written
// together and share one fsync.
type CursorStore struct {
	dir  string
	path string

	mu      sync.Mutex
	synced  *sync.Cond
	f       *os.File
	offsets map[string]int64
	closing bool // Close has begun: no new commits, queued ones are flushed
	closed  bool

	// Group commit: entries wait in pending until a committer that finds no
	// flush under way takes them, writes and syncs them with the lock
	// released, and wakes the others.
	pending []byte
	spare   []byte
	// pendingOps are the changes encoded in pending. They reach offsets
	// only once their entries are on stable storage, so Get and Min never
	// report an offset that a crash or a failed write could take back.
	pendingOps []cursorOp
	spareOps   []cursorOp
	pendingGen uint64 // the generation the entries in pending will be flushed as
	flushedGen uint64 // the newest generation on stable storage (or failed)
	flushing   bool
	flushErr   error // the error of the newest failed flush, sticky

	size       int64 // bytes in the journal file
	liveSize   int64 // bytes a compacted journal would need
	compactMin int64 // no compaction below this size; cursorCompactMin but for tests
}

// cursorOp is one change waiting for its journal entry to be flushed.
type cursorOp struct {
	kind   byte
	name   string
	offset int64
}

// CursorRecovery says what OpenCursors found in the journal.
type CursorRecovery struct {
	// Entries is the number of valid entries replayed.
	Entries int
	// TruncatedBytes is the size of a torn or corrupt tail that was cut off.
	// Only an entry whose commit never returned can be in it.
	TruncatedBytes int64
}

// OpenCursors opens (creating if needed) the cursor journal in dir, replays
// it and truncates a torn tail left by a crash.
func OpenCursors(dir string) (*CursorStore, CursorRecovery, error) {
	var rec CursorRecovery
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, rec, fmt.Errorf("open cursors in %s: %w", dir, err)
	}
	path := filepath.Join(dir, CursorFile)
	// A crash during compaction can leave the new journal unrenamed; the old
	// one is still complete, so the leftover is only garbage.
	_ = os.Remove(path + ".compact")

	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, rec, fmt.Errorf("open cursors: %w", err)
	}
	// The journal's own name must be durable before any commit in it is
	// promised to be.
	if err := syncDir(dir); err != nil {
		f.Close()
		return nil, rec, fmt.Errorf("open cursors in %s: %w", dir, err)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		f.Close()
		return nil, rec, fmt.Errorf("read cursor journal %s: %w", path, err)
	}
	c := &CursorStore{
		dir:        dir,
		path:       path,
		f:          f,
		offsets:    make(map[string]int64),
		compactMin: cursorCompactMin,
	}
	c.synced = sync.NewCond(&c.mu)
	valid, n := c.replay(data)
	rec.Entries = n
	if valid < len(data) {
		rec.TruncatedBytes = int64(len(data) - valid)
		if err := f.Truncate(int64(valid)); err != nil {
			f.Close()
			return nil, rec, fmt.Errorf("truncate torn cursor journal %s at %d: %w", path, valid, err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, rec, fmt.Errorf("sync cursor journal %s: %w", path, err)
		}
	}
	if _, err := f.Seek(int64(valid), io.SeekStart); err != nil {
		f.Close()
		return nil, rec, fmt.Errorf("seek cursor journal %s: %w", path, err)
	}
	c.size = int64(valid)
	c.liveSize = c.computeLiveSize()
	return c, rec, nil
}

// replay applies the valid prefix of a journal and returns its length and the
// number of entries in it. It stops at the first entry that is short, has a
// bad checksum or an unknown kind: everything after a torn write is suspect.
func (c *CursorStore) replay(data []byte) (valid, entries int) {
	for off := 0; ; {
		name, value, kind, n, ok := decodeCursorEntry(data[off:])
		if !ok {
			return off, entries
		}
		switch kind {
		case cursorKindSet:
			c.offsets[string(name)] = value
		case cursorKindDelete:
			delete(c.offsets, string(name))
		}
		off += n
		entries++
	}
}

// decodeCursorEntry decodes one journal entry at the start of b. It reports
// ok=false for anything that is not a whole, intact entry.
func decodeCursorEntry(b []byte) (name []byte, value int64, kind byte, n int, ok bool) {
	if len(b) < cursorEntryHeader {
		return nil, 0, 0, 0, false
	}
	bodyLen := int(binary.LittleEndian.Uint16(b[4:6]))
	n = cursorEntryHeader + bodyLen
	if len(b) < n {
		return nil, 0, 0, 0, false
	}
	if crc32.Checksum(b[4:n], castagnoli) != binary.LittleEndian.Uint32(b[0:4]) {
		return nil, 0, 0, 0, false
	}
	kind = b[6]
	body := b[cursorEntryHeader:n]
	if len(body) < 1 {
		return nil, 0, 0, 0, false
	}
	nameLen := int(body[0])
	if nameLen == 0 || len(body) < 1+nameLen {
		return nil, 0, 0, 0, false
	}
	name = body[1 : 1+nameLen]
	rest := body[1+nameLen:]
	switch kind {
	case cursorKindSet:
		if len(rest) != 8 {
			return nil, 0, 0, 0, false
		}
		value = int64(binary.LittleEndian.Uint64(rest))
	case cursorKindDelete:
		if len(rest) != 0 {
			return nil, 0, 0, 0, false
		}
	default:
		return nil, 0, 0, 0, false
	}
	return name, value, kind, n, true
}

// appendCursorEntry appends one encoded journal entry to dst.
func appendCursorEntry(dst []byte, kind byte, name string, value int64) []byte {
	start := len(dst)
	bodyLen := 1 + len(name)
	if kind == cursorKindSet {
		bodyLen += 8
	}
	dst = binary.LittleEndian.AppendUint32(dst, 0) // checksum, filled below
	dst = binary.LittleEndian.AppendUint16(dst, uint16(bodyLen))
	dst = append(dst, kind, byte(len(name)))
	dst = append(dst, name...)
	if kind == cursorKindSet {
		dst = binary.LittleEndian.AppendUint64(dst, uint64(value))
	}
	binary.LittleEndian.PutUint32(dst[start:], crc32.Checksum(dst[start+4:], castagnoli))
	return dst
}

func cursorEntrySize(name string, kind byte) int64 {
	n := int64(cursorEntryHeader + 1 + len(name))
	if kind == cursorKindSet {
		n += 8
	}
	return n
}

func (c *CursorStore) computeLiveSize() int64 {
	var n int64
	for name := range c.offsets {
		n += cursorEntrySize(name, cursorKindSet)
	}
	return n
}

// Get returns the committed offset of the named cursor and whether it exists.
func (c *CursorStore) Get(name string) (offset int64, ok bool) {
	c.mu.Lock()
	offset, ok = c.offsets[name]
	c.mu.Unlock()
	return offset, ok
}

// All returns a copy of every cursor and its committed offset.
func (c *CursorStore) All() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := make(map[string]int64, len(c.offsets))
	for k, v := range c.offsets {
		m[k] = v
	}
	return m
}

// Names returns the names of all cursors, sorted.
func (c *CursorStore) Names() []string {
	c.mu.Lock()
	names := make([]string, 0, len(c.offsets))
	for k := range c.offsets {
		names = append(names, k)
	}
	c.mu.Unlock()
	sort.Strings(names)
	return names
}

// Min returns the lowest committed offset of all cursors, and false when
// there are none. It is the floor below which every cursor has moved on, the
// retention floor of a work queue.
func (c *CursorStore) Min() (offset int64, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, v := range c.offsets {
		if !ok || v < offset {
			offset, ok = v, true
		}
	}
	return offset, ok
}

// Commit durably records offset as the named cursor's position, creating the
// cursor if needed. It returns once the journal entry is on stable storage;
// commits from many goroutines at once share one write and one fsync.
func (c *CursorStore) Commit(name string, offset int64) error {
	if len(name) == 0 || len(name) > MaxCursorName {
		return fmt.Errorf("commit cursor %q: %w", name, ErrCursorName)
	}
	return c.write(cursorKindSet, name, offset)
}

// Delete durably removes the named cursor. Deleting a cursor that does not
// exist is not an error.
func (c *CursorStore) Delete(name string) error {
	if len(name) == 0 || len(name) > MaxCursorName {
		return fmt.Errorf("delete cursor %q: %w", name, ErrCursorName)
	}
	c.mu.Lock()
	_, ok := c.offsets[name]
	c.mu.Unlock()
	if !ok {
		return nil
	}
	return c.write(cursorKindDelete, name, 0)
}

func (c *CursorStore) write(kind byte, name string, offset int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return ErrClosed
	}
	if c.flushErr != nil {
		return fmt.Errorf("cursor journal %s: %w", c.path, c.flushErr)
	}
	c.pending = appendCursorEntry(c.pending, kind, name, offset)
	c.pendingOps = append(c.pendingOps, cursorOp{kind: kind, name: name, offset: offset})
	gen := c.pendingGen
	for c.flushedGen < gen+1 {
		if c.flushing {
			c.synced.Wait()
			continue
		}
		if c.closed {
			// Close flushes what is queued before it closes, so this is
			// only reached if that flush failed.
			return ErrClosed
		}
		c.flushLocked()
	}
	return c.flushErrFor()
}

// apply makes a flushed change visible; c.mu held.
func (c *CursorStore) apply(op cursorOp) {
	switch op.kind {
	case cursorKindSet:
		if _, had := c.offsets[op.name]; !had {
			c.liveSize += cursorEntrySize(op.name, cursorKindSet)
		}
		c.offsets[op.name] = op.offset
	case cursorKindDelete:
		if _, had := c.offsets[op.name]; had {
			c.liveSize -= cursorEntrySize(op.name, cursorKindSet)
		}
		delete(c.offsets, op.name)
	}
}

// flushErrFor returns the sticky flush error, wrapped, if there is one.
func (c *CursorStore) flushErrFor() error {
	if c.flushErr != nil {
		return fmt.Errorf("cursor journal %s: %w", c.path, c.flushErr)
	}
	return nil
}

// flushLocked writes and syncs everything pending. It is called with c.mu
// held and releases it during the I/O so that more commits can gather for
// the next flush.
func (c *CursorStore) flushLocked() {
	buf, ops := c.pending, c.pendingOps
	c.pending, c.pendingOps = c.spare[:0], c.spareOps[:0]
	gen := c.pendingGen
	c.pendingGen++
	c.flushing = true
	grown := c.size + int64(len(buf))
	compact := grown > c.compactMin && grown > 4*c.liveSize
	var snapshot []byte
	if compact {
		// The snapshot is taken under the lock, so it holds exactly the
		// state that the flushed entries produce.
		snapshot = c.snapshotLocked(ops)
	}
	c.mu.Unlock()

	var err error
	var newFile *os.File
	var newSize int64
	if compact {
		newFile, err = c.compact(snapshot)
		newSize = int64(len(snapshot))
	} else {
		if _, err = c.f.Write(buf); err == nil {
			err = c.f.Sync()
		}
	}

	c.mu.Lock()
	c.flushing = false
	c.flushedGen = gen + 1
	if err != nil {
		// After a failed write the file's tail is unknown; refuse further
		// commits rather than promise durability that may not hold. Reopening
		// the store recovers the valid prefix.
		c.flushErr = err
	} else {
		if compact {
			c.f.Close()
			c.f = newFile
			c.size = newSize
		} else {
			c.size += int64(len(buf))
		}
		for _, op := range ops {
			c.apply(op)
		}
	}
	clear(ops) // drop the names
	c.spare, c.spareOps = buf[:0], ops[:0]
	c.synced.Broadcast()
}

// snapshotLocked encodes, as a fresh journal, the state that ops produce
// from the current one, sorted by name so that the same state always makes
// the same bytes.
func (c *CursorStore) snapshotLocked(ops []cursorOp) []byte {
	state := maps.Clone(c.offsets)
	for _, op := range ops {
		if op.kind == cursorKindSet {
			state[op.name] = op.offset
		} else {
			delete(state, op.name)
		}
	}
	names := slices.Sorted(maps.Keys(state))
	b := make([]byte, 0, c.liveSize+int64(len(ops))*cursorEntryHeader)
	for _, name := range names {
		b = appendCursorEntry(b, cursorKindSet, name, state[name])
	}
	return b
}

// compact writes snapshot as a new journal and renames it over the old one.
// The rename is atomic, and the folder is synced after it, so a crash leaves
// either the old complete journal or the new one.
func (c *CursorStore) compact(snapshot []byte) (*os.File, error) {
	tmp := c.path + ".compact"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("compact: %w", err)
	}
	if _, err := f.Write(snapshot); err != nil {
		f.Close()
		return nil, fmt.Errorf("compact: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("compact: %w", err)
	}
	if err := os.Rename(tmp, c.path); err != nil {
		f.Close()
		return nil, fmt.Errorf("compact: %w", err)
	}
	if err := syncDir(c.dir); err != nil {
		f.Close()
		return nil, fmt.Errorf("compact: %w", err)
	}
	return f, nil
}

// Close waits for a flush under way and closes the journal. Commits after
// Close return ErrClosed.
func (c *CursorStore) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		for !c.closed {
			c.synced.Wait()
		}
		return nil
	}
	// Refuse new commits first: under a steady stream of them, waiting for
	// a moment with no flush under way could take forever.
	c.closing = true
	for c.flushing {
		c.synced.Wait()
	}
	// Commits still waiting for a flush are written now, so that a commit
	// racing with Close either completes or fails with ErrClosed.
	if len(c.pending) > 0 && c.flushErr == nil {
		c.flushLocked()
	}
	c.closed = true
	c.synced.Broadcast()
	if err := c.f.Close(); err != nil {
		return fmt.Errorf("close cursor journal %s: %w", c.path, err)
	}
	return nil
}
