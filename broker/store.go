package broker

import (
	"errors"
	"io"
	"os"
	"sync"
	"time"

	"github.com/ledgemq/ledge/log"
)

// store is where a stream keeps its messages: a log.Log on disk, or
// memory. Offsets are the log's (sequence minus one).
type store interface {
	append(rec *log.Record, done func(off int64, err error)) (int64, error)
	firstOffset() int64
	nextOffset() int64
	durableOffset() int64
	// changed is closed when the durable offset advances or the store
	// closes.
	changed() <-chan struct{}
	newReader(off int64) (storeReader, error)
	// setFloor says no offset below off is needed any more.
	setFloor(off int64)
	retain(now time.Time)
	close() error
}

// storeReader reads a store in offset order; one goroutine uses it.
type storeReader interface {
	// next reads the record at the reader's offset; io.EOF at the end of
	// what is durable, log.ErrOffsetOutOfRange below the first offset.
	next(rec *log.Record) error
	seek(off int64) error
	offset() int64
	// release ends the validity of records read so far.
	release()
	close()
}

// fileStore is a stream's log on disk.
type fileStore struct{ l *log.Log }

func (f fileStore) append(rec *log.Record, done func(int64, error)) (int64, error) {
	return f.l.Append(rec, done)
}
func (f fileStore) firstOffset() int64       { return f.l.FirstOffset() }
func (f fileStore) nextOffset() int64        { return f.l.NextOffset() }
func (f fileStore) durableOffset() int64     { return f.l.DurableOffset() }
func (f fileStore) changed() <-chan struct{} { return f.l.Changed() }
func (f fileStore) setFloor(off int64)       { f.l.SetFloor(off) }
func (f fileStore) retain(now time.Time)     { _, _ = f.l.Retain(now) }
func (f fileStore) close() error             { return f.l.Close() }

func (f fileStore) newReader(off int64) (storeReader, error) {
	r, err := f.l.NewReader(max(off, f.l.FirstOffset()))
	if err != nil {
		return nil, err
	}
	return fileReader{r}, nil
}

type fileReader struct{ r *log.Reader }

func (r fileReader) next(rec *log.Record) error { return r.r.Next(rec) }
func (r fileReader) seek(off int64) error       { return r.r.SeekOffset(off) }
func (r fileReader) offset() int64              { return r.r.Offset() }
func (r fileReader) release()                   { r.r.Release() }
func (r fileReader) close()                     { r.r.Close() }

// memStore keeps a stream's messages in memory. A record is copied once,
// into one allocation, on append; readers get slices of it.
type memStore struct {
	mu     sync.RWMutex
	first  int64 // offset of recs[0]
	recs   []memRecord
	notify chan struct{}
	closed bool
}

type memRecord struct {
	time    int64
	subject []byte
	headers []log.Header
	payload []byte
}

func newMemStore() *memStore { return &memStore{notify: make(chan struct{})} }

func (m *memStore) append(rec *log.Record, done func(int64, error)) (int64, error) {
	size := len(rec.Subject) + len(rec.Payload)
	for _, h := range rec.Headers {
		size += len(h.Key) + len(h.Value)
	}
	buf := make([]byte, 0, size)
	r := memRecord{time: rec.Time}
	if r.time == 0 {
		r.time = time.Now().UnixNano()
	}
	buf = append(buf, rec.Subject...)
	r.subject = buf[:len(rec.Subject):len(rec.Subject)]
	if len(rec.Headers) > 0 {
		r.headers = make([]log.Header, len(rec.Headers))
		for i, h := range rec.Headers {
			k := len(buf)
			buf = append(buf, h.Key...)
			v := len(buf)
			buf = append(buf, h.Value...)
			r.headers[i] = log.Header{Key: buf[k:v:v], Value: buf[v:len(buf):len(buf)]}
		}
	}
	p := len(buf)
	buf = append(buf, rec.Payload...)
	r.payload = buf[p:len(buf):len(buf)]

	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return 0, log.ErrClosed
	}
	off := m.first + int64(len(m.recs))
	m.recs = append(m.recs, r)
	ch := m.notify
	m.notify = make(chan struct{})
	m.mu.Unlock()
	close(ch)
	if done != nil {
		done(off, nil)
	}
	return off, nil
}

func (m *memStore) firstOffset() int64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.first
}

func (m *memStore) nextOffset() int64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.first + int64(len(m.recs))
}

func (m *memStore) durableOffset() int64 { return m.nextOffset() }

func (m *memStore) changed() <-chan struct{} {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.notify
}

// setFloor drops the records below off. Readers may still hold slices of
// them: the records themselves are left to the garbage collector.
func (m *memStore) setFloor(off int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := off - m.first
	if n <= 0 {
		return
	}
	if n > int64(len(m.recs)) {
		n = int64(len(m.recs))
	}
	clear(m.recs[:n])
	m.recs = m.recs[n:]
	m.first += n
	if cap(m.recs) > 64 && len(m.recs) < cap(m.recs)/4 {
		m.recs = append([]memRecord(nil), m.recs...)
	}
}

func (m *memStore) retain(time.Time) {}

func (m *memStore) close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return log.ErrClosed
	}
	m.closed = true
	close(m.notify)
	m.recs = nil
	return nil
}

func (m *memStore) newReader(off int64) (storeReader, error) {
	return &memReader{m: m, off: off}, nil
}

type memReader struct {
	m   *memStore
	off int64
}

func (r *memReader) next(rec *log.Record) error {
	m := r.m
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return log.ErrClosed
	}
	i := r.off - m.first
	if i < 0 {
		return log.ErrOffsetOutOfRange
	}
	if i >= int64(len(m.recs)) {
		return io.EOF
	}
	mr := &m.recs[i]
	rec.Offset = r.off
	rec.Time = mr.time
	rec.Subject = mr.subject
	rec.Headers = append(rec.Headers[:0], mr.headers...)
	rec.Payload = mr.payload
	r.off++
	return nil
}

func (r *memReader) seek(off int64) error {
	first, next := r.m.firstOffset(), r.m.nextOffset()
	if off < first || off > next {
		return log.ErrOffsetOutOfRange
	}
	r.off = off
	return nil
}

func (r *memReader) offset() int64 { return r.off }
func (r *memReader) release()      {}
func (r *memReader) close()        {}

// readAt reads the record at off with r, seeking only when r is elsewhere.
func readAt(r storeReader, off int64, rec *log.Record) error {
	if r.offset() != off {
		if err := r.seek(off); err != nil {
			return err
		}
	}
	return r.next(rec)
}

// removeAll deletes a folder, treating one already gone as removed.
func removeAll(dir string) error {
	if err := os.RemoveAll(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
