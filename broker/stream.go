package broker

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ledgemq/ledge/log"
)

// MsgIDHeader is the header that carries a message's id for duplicate
// detection. Gateways store their protocol's message id under it.
const MsgIDHeader = "Nats-Msg-Id"

// Message is what a gateway publishes into a stream. The broker copies what
// it keeps; the caller may reuse the Message when Publish returns.
type Message struct {
	Subject []byte
	Headers []log.Header
	Payload []byte
	// Time is the message's timestamp in Unix nanoseconds; 0 means now.
	Time int64
	// MsgID, when set, de-duplicates within the stream's window. It should
	// also be in Headers under MsgIDHeader so that the window can be
	// rebuilt after a restart.
	MsgID []byte
	// Expectations, checked before the message is stored; zero values
	// expect nothing.
	ExpectedStream         string
	ExpectedLastSeq        *uint64
	ExpectedLastSubjectSeq *uint64
	ExpectedLastMsgID      string
}

// PubAck confirms a stored message. Duplicate says it was stored earlier,
// under the same message id, at Seq.
type PubAck struct {
	Stream    string
	Seq       uint64
	Duplicate bool
}

// StreamState is a stream's contents at one moment.
type StreamState struct {
	Msgs        uint64
	Bytes       uint64
	FirstSeq    uint64
	FirstTime   time.Time
	LastSeq     uint64
	LastTime    time.Time
	NumSubjects int
	NumDeleted  int
	Consumers   int
}

// StreamInfo is a stream's configuration and state.
type StreamInfo struct {
	Config StreamConfig
	State  StreamState
}

// StoredMsg is a copy of one stored message.
type StoredMsg struct {
	Subject string
	Seq     uint64
	Headers []log.Header
	Payload []byte
	Time    time.Time
}

// PurgeRequest narrows a purge; the zero value removes every message.
type PurgeRequest struct {
	// Filter removes only messages whose subject it matches.
	Filter string
	// Seq removes only messages below it.
	Seq uint64
	// Keep leaves the newest Keep messages.
	Keep uint64
}

// subjectState is what a stream knows of one subject's messages.
type subjectState struct {
	name string
	msgs uint64
	last uint64
	// seqs holds the subject's messages, oldest first, when the stream
	// limits messages per subject: the limit removes the oldest.
	seqs []seqSize
}

type seqSize struct {
	seq  uint64
	size uint32
}

// recentMsg is the bookkeeping of a message appended but not yet durable:
// readers cannot see it, so a limit that removes it at once takes its
// size and subject from here.
type recentMsg struct {
	seq  uint64
	size uint32
	subj *subjectState
	time int64
}

type dedupEntry struct {
	seq  uint64
	time int64
}

// Stream captures subjects into a store. See the package documentation.
type Stream struct {
	b    *Broker
	dir  string
	name string

	// retention never changes, so consumers read it without the lock.
	retention RetentionPolicy

	mu     sync.Mutex
	cfg    StreamConfig
	st     store
	closed bool

	first    uint64 // lowest live sequence, or last+1 when empty
	last     uint64
	lastTime int64
	msgs     uint64
	bytes    uint64
	deleted  map[uint64]struct{}
	subjects map[string]*subjectState
	recent   []recentMsg

	dedup      map[string]dedupEntry
	dedupOrder []dedupKey
	lastMsgID  string

	// rd reads records for removals, Get and Purge; under mu.
	rd  storeReader
	rec log.Record

	consumers map[string]*Consumer

	// firstSeq and numDeleted mirror first and len(deleted) so that a
	// consumer's liveness check usually takes no lock.
	firstSeq   atomic.Uint64
	numDeleted atomic.Int64
	dirty      bool
}

type dedupKey struct {
	id   string
	time int64
}

// Name returns the stream's name.
func (s *Stream) Name() string { return s.name }

// Config returns a copy of the stream's configuration.
func (s *Stream) Config() StreamConfig {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg
}

func msgSize(subject []byte, headers []log.Header, payload []byte) int {
	n := len(subject) + len(payload)
	for _, h := range headers {
		n += len(h.Key) + len(h.Value)
	}
	return n
}

// Publish stores m and calls done with the PubAck once the message is
// durable under the stream's sync policy (at once for a duplicate), or
// with the error that lost it later. done may run on another goroutine,
// even before Publish returns, and must not block or call into the stream.
// A refusal (a limit under DiscardNew, a failed expectation, a message too
// large) is returned by Publish, and done is not called then.
func (s *Stream) Publish(m *Message, done func(PubAck, error)) error {
	ack, err := s.store(m, done)
	if err != nil {
		return err
	}
	if ack.Duplicate && done != nil {
		done(ack, nil)
	}
	return nil
}

// store appends m under the stream's lock; the append calls done.
func (s *Stream) store(m *Message, done func(PubAck, error)) (PubAck, error) {
	size := msgSize(m.Subject, m.Headers, m.Payload)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return PubAck{}, ErrClosed
	}
	cfg := &s.cfg
	if cfg.MaxMsgSize > 0 && size > int(cfg.MaxMsgSize) {
		return PubAck{}, ErrMessageTooLarge
	}
	if m.ExpectedStream != "" && m.ExpectedStream != s.name {
		return PubAck{}, ErrWrongStream
	}
	if m.ExpectedLastSeq != nil && *m.ExpectedLastSeq != s.last {
		return PubAck{}, fmt.Errorf("%w: %d", ErrWrongLastSeq, s.last)
	}
	subj := s.subjects[string(m.Subject)]
	if m.ExpectedLastSubjectSeq != nil {
		var last uint64
		if subj != nil {
			last = s.lastOfSubjectLocked(subj)
		}
		if *m.ExpectedLastSubjectSeq != last {
			return PubAck{}, fmt.Errorf("%w: %d", ErrWrongLastSeq, last)
		}
	}
	if m.ExpectedLastMsgID != "" && m.ExpectedLastMsgID != s.lastMsgID {
		return PubAck{}, fmt.Errorf("%w: %s", ErrWrongLastMsgID, s.lastMsgID)
	}
	now := time.Now().UnixNano()
	if len(m.MsgID) > 0 {
		s.expireDedupLocked(now)
		if e, ok := s.dedup[string(m.MsgID)]; ok {
			return PubAck{Stream: s.name, Seq: e.seq, Duplicate: true}, nil
		}
	}
	if cfg.Discard == DiscardNew {
		if cfg.MaxMsgs > 0 && s.msgs >= uint64(cfg.MaxMsgs) {
			return PubAck{}, ErrStreamFull
		}
		if cfg.MaxBytes > 0 && s.bytes+uint64(size) > uint64(cfg.MaxBytes) {
			return PubAck{}, ErrBytesFull
		}
		if cfg.DiscardNewPerSubject && subj != nil && subj.msgs >= uint64(cfg.MaxMsgsPerSubject) {
			return PubAck{}, ErrSubjectFull
		}
	}
	ts := m.Time
	if ts == 0 {
		ts = now
	}
	var cb func(int64, error)
	if done != nil {
		name := s.name
		cb = func(off int64, err error) {
			if err != nil {
				done(PubAck{}, fmt.Errorf("stream %q: %w", name, err))
				return
			}
			done(PubAck{Stream: name, Seq: uint64(off) + 1}, nil)
		}
	}
	rec := log.Record{Time: ts, Subject: m.Subject, Headers: m.Headers, Payload: m.Payload}
	off, err := s.st.append(&rec, cb)
	if err != nil {
		return PubAck{}, fmt.Errorf("stream %q: %w", s.name, err)
	}
	seq := uint64(off) + 1
	if subj == nil {
		subj = &subjectState{name: string(m.Subject)}
		s.subjects[subj.name] = subj
	}
	s.addLocked(seq, size, subj, ts)
	if len(m.MsgID) > 0 {
		id := string(m.MsgID)
		s.dedup[id] = dedupEntry{seq: seq, time: now}
		s.dedupOrder = append(s.dedupOrder, dedupKey{id: id, time: now})
		s.lastMsgID = id
	}
	s.pruneRecentLocked()
	s.recent = append(s.recent, recentMsg{seq: seq, size: uint32(size), subj: subj, time: ts})
	s.enforceLimitsLocked(subj)
	if cfg.Retention == InterestPolicy && len(s.consumers) == 0 {
		// Nobody is interested: the message is acknowledged but not kept.
		s.removeLocked(seq, size, subj)
	}
	return PubAck{Stream: s.name, Seq: seq}, nil
}

// addLocked accounts for a stored message.
func (s *Stream) addLocked(seq uint64, size int, subj *subjectState, ts int64) {
	if s.msgs == 0 {
		s.first = seq
		s.firstSeq.Store(seq)
	}
	s.msgs++
	s.bytes += uint64(size)
	s.last = seq
	s.lastTime = ts
	subj.msgs++
	subj.last = seq
	if s.cfg.MaxMsgsPerSubject > 0 {
		subj.seqs = append(subj.seqs, seqSize{seq: seq, size: uint32(size)})
	}
	for _, c := range s.consumers {
		c.stored(seq, subj.name)
	}
}

// enforceLimitsLocked removes the oldest messages while a limit is
// exceeded (DiscardNew refused the message before it was stored).
func (s *Stream) enforceLimitsLocked(subj *subjectState) {
	cfg := &s.cfg
	if lim := cfg.MaxMsgsPerSubject; lim > 0 {
		for subj.msgs > uint64(lim) && len(subj.seqs) > 0 {
			old := subj.seqs[0]
			s.removeLocked(old.seq, int(old.size), subj)
		}
	}
	for s.msgs > 0 && ((cfg.MaxMsgs > 0 && s.msgs > uint64(cfg.MaxMsgs)) ||
		(cfg.MaxBytes > 0 && s.bytes > uint64(cfg.MaxBytes))) {
		if !s.removeSeqLocked(s.first) {
			break
		}
	}
}

// expireLocked removes messages older than MaxAge.
func (s *Stream) expireLocked(now int64) {
	if s.cfg.MaxAge <= 0 {
		return
	}
	cut := now - int64(s.cfg.MaxAge)
	for s.msgs > 0 {
		size, subj, ts, ok := s.lookupLocked(s.first)
		if !ok || ts > cut {
			return
		}
		s.removeLocked(s.first, size, subj)
	}
}

func (s *Stream) expireDedupLocked(now int64) {
	cut := now - int64(s.cfg.Duplicates)
	i := 0
	for ; i < len(s.dedupOrder) && s.dedupOrder[i].time <= cut; i++ {
		k := s.dedupOrder[i]
		if e, ok := s.dedup[k.id]; ok && e.time == k.time {
			delete(s.dedup, k.id)
		}
	}
	if i > 0 {
		s.dedupOrder = append(s.dedupOrder[:0], s.dedupOrder[i:]...)
	}
}

// isLive reports whether seq is stored and not removed.
func (s *Stream) isLive(seq uint64) bool {
	if seq < s.firstSeq.Load() {
		return false
	}
	if s.numDeleted.Load() == 0 {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, gone := s.deleted[seq]
	return !gone && seq >= s.first
}

// lookupLocked finds a live message's size, subject and time: from the
// bookkeeping of recent appends, or by reading it.
func (s *Stream) lookupLocked(seq uint64) (size int, subj *subjectState, ts int64, ok bool) {
	if seq < s.first || seq > s.last {
		return 0, nil, 0, false
	}
	if _, gone := s.deleted[seq]; gone {
		return 0, nil, 0, false
	}
	s.pruneRecentLocked()
	if n := len(s.recent); n > 0 && seq >= s.recent[0].seq {
		i := sort.Search(n, func(i int) bool { return s.recent[i].seq >= seq })
		if i < n && s.recent[i].seq == seq {
			r := s.recent[i]
			return int(r.size), r.subj, r.time, true
		}
	}
	if err := s.readLocked(seq); err != nil {
		return 0, nil, 0, false
	}
	subj = s.subjects[string(s.rec.Subject)]
	size = msgSize(s.rec.Subject, s.rec.Headers, s.rec.Payload)
	return size, subj, s.rec.Time, subj != nil
}

// pruneRecentLocked drops the bookkeeping of appends that readers can see.
func (s *Stream) pruneRecentLocked() {
	durable := uint64(s.st.durableOffset())
	i := 0
	for i < len(s.recent) && s.recent[i].seq <= durable {
		i++
	}
	if i > 0 {
		n := copy(s.recent, s.recent[i:])
		clear(s.recent[n:])
		s.recent = s.recent[:n]
	}
}

// readLocked reads the record of seq into s.rec.
func (s *Stream) readLocked(seq uint64) error {
	if s.rd == nil {
		rd, err := s.st.newReader(int64(seq - 1))
		if err != nil {
			return err
		}
		s.rd = rd
	}
	s.rd.release()
	err := readAt(s.rd, int64(seq-1), &s.rec)
	if err == nil && s.rec.Offset != int64(seq-1) {
		err = fmt.Errorf("stream %q: read offset %d for %d", s.name, s.rec.Offset, seq-1)
	}
	return err
}

// removeSeqLocked removes seq, finding its size and subject.
func (s *Stream) removeSeqLocked(seq uint64) bool {
	size, subj, _, ok := s.lookupLocked(seq)
	if !ok {
		return false
	}
	return s.removeLocked(seq, size, subj)
}

// removeLocked removes a live message whose size and subject are known.
func (s *Stream) removeLocked(seq uint64, size int, subj *subjectState) bool {
	if seq < s.first || seq > s.last {
		return false
	}
	if _, gone := s.deleted[seq]; gone {
		return false
	}
	s.msgs--
	s.bytes -= uint64(size)
	if subj != nil {
		subj.msgs--
		if len(subj.seqs) > 0 {
			for i, e := range subj.seqs {
				if e.seq == seq {
					subj.seqs = append(subj.seqs[:i], subj.seqs[i+1:]...)
					break
				}
			}
		}
		if subj.msgs == 0 {
			delete(s.subjects, subj.name)
		}
	}
	for _, c := range s.consumers {
		c.removed(seq, subj)
	}
	if s.msgs == 0 {
		s.first = s.last + 1
		clear(s.deleted)
	} else if seq == s.first {
		s.first++
		for {
			if _, gone := s.deleted[s.first]; !gone {
				break
			}
			delete(s.deleted, s.first)
			s.first++
		}
	} else {
		s.deleted[seq] = struct{}{}
	}
	s.firstSeq.Store(s.first)
	s.numDeleted.Store(int64(len(s.deleted)))
	s.st.setFloor(int64(s.first - 1))
	s.dirty = true
	return true
}

// lastOfSubjectLocked returns the newest live sequence of subj.
func (s *Stream) lastOfSubjectLocked(subj *subjectState) uint64 {
	if _, gone := s.deleted[subj.last]; !gone && subj.last >= s.first {
		return subj.last
	}
	// The newest one was deleted on its own: find the one before it.
	var last uint64
	s.scanLocked(s.first, func(seq uint64, rec *log.Record) bool {
		if string(rec.Subject) == subj.name {
			last = seq
		}
		return seq < subj.last
	})
	return last
}

// scanLocked calls fn for every live, readable message from seq on, until
// fn returns false.
func (s *Stream) scanLocked(from uint64, fn func(seq uint64, rec *log.Record) bool) {
	if from < s.first {
		from = s.first
	}
	rd, err := s.st.newReader(int64(from - 1))
	if err != nil {
		return
	}
	defer rd.close()
	var rec log.Record
	for {
		if err := rd.next(&rec); err != nil {
			var ce *log.CorruptError
			if errors.As(err, &ce) && ce.Next > rec.Offset {
				_ = rd.seek(ce.Next)
				continue
			}
			return
		}
		seq := uint64(rec.Offset) + 1
		if seq > s.last {
			return
		}
		if _, gone := s.deleted[seq]; gone || seq < s.first {
			continue
		}
		if !fn(seq, &rec) {
			return
		}
		rd.release()
	}
}

// Info returns the stream's configuration and state.
func (s *Stream) Info() StreamInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := StreamState{
		Msgs:        s.msgs,
		Bytes:       s.bytes,
		FirstSeq:    s.first,
		LastSeq:     s.last,
		NumSubjects: len(s.subjects),
		NumDeleted:  len(s.deleted),
		Consumers:   len(s.consumers),
	}
	if s.lastTime != 0 {
		st.LastTime = time.Unix(0, s.lastTime).UTC()
	}
	if s.msgs > 0 {
		if _, _, ts, ok := s.lookupLocked(s.first); ok {
			st.FirstTime = time.Unix(0, ts).UTC()
		}
	}
	return StreamInfo{Config: s.cfg, State: st}
}

// Subjects returns the number of messages per subject for the subjects the
// filter pattern matches (every subject when filter is empty).
func (s *Stream) Subjects(filter string) map[string]uint64 {
	var f subjectFilter
	if filter != "" {
		f = newFilter([]string{filter})
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]uint64)
	for name, st := range s.subjects {
		if f.matches([]byte(name)) {
			out[name] = st.msgs
		}
	}
	return out
}

// GetMsg returns a copy of the message at seq.
func (s *Stream) GetMsg(seq uint64) (*StoredMsg, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if seq < s.first || seq > s.last {
		return nil, ErrNoMessage
	}
	if _, gone := s.deleted[seq]; gone {
		return nil, ErrNoMessage
	}
	if err := s.readLocked(seq); err != nil {
		return nil, ErrNoMessage
	}
	return s.copyRecLocked(seq), nil
}

// GetLastMsg returns a copy of the newest message on subject.
func (s *Stream) GetLastMsg(subject string) (*StoredMsg, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	subj := s.subjects[subject]
	if subj == nil {
		return nil, ErrNoMessage
	}
	seq := s.lastOfSubjectLocked(subj)
	if seq == 0 || s.readLocked(seq) != nil {
		return nil, ErrNoMessage
	}
	return s.copyRecLocked(seq), nil
}

// GetNextMsg returns a copy of the first message at or after seq whose
// subject filter matches (any subject when filter is empty).
func (s *Stream) GetNextMsg(seq uint64, filter string) (*StoredMsg, error) {
	f := subjectFilter(nil)
	if filter != "" {
		f = newFilter([]string{filter})
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var found *StoredMsg
	s.scanLocked(max(seq, 1), func(seq uint64, rec *log.Record) bool {
		if !f.matches(rec.Subject) {
			return true
		}
		s.rec = *rec
		found = s.copyRecLocked(seq)
		return false
	})
	if found == nil {
		return nil, ErrNoMessage
	}
	return found, nil
}

func (s *Stream) copyRecLocked(seq uint64) *StoredMsg {
	r := &s.rec
	m := &StoredMsg{
		Subject: string(r.Subject),
		Seq:     seq,
		Payload: bytes.Clone(r.Payload),
		Time:    time.Unix(0, r.Time).UTC(),
	}
	if len(r.Headers) > 0 {
		m.Headers = make([]log.Header, len(r.Headers))
		for i, h := range r.Headers {
			m.Headers[i] = log.Header{Key: bytes.Clone(h.Key), Value: bytes.Clone(h.Value)}
		}
	}
	return m
}

// DeleteMsg removes the message at seq. It is written to disk before
// DeleteMsg returns.
func (s *Stream) DeleteMsg(seq uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cfg.DenyDelete {
		return ErrDeleteDenied
	}
	if !s.removeSeqLocked(seq) {
		return ErrNoMessage
	}
	return s.saveStateLocked()
}

// Purge removes the messages req selects and returns how many. The new
// state is written to disk before Purge returns.
func (s *Stream) Purge(req PurgeRequest) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cfg.DenyPurge {
		return 0, ErrPurgeDenied
	}
	if req.Seq > 0 && req.Keep > 0 {
		return 0, fmt.Errorf("%w: purge takes a sequence or a number to keep, not both", ErrBadRequest)
	}
	before := s.msgs
	if req.Filter == "" && req.Seq == 0 && req.Keep == 0 {
		s.purgeAllLocked()
		return before, s.saveStateLocked()
	}
	var f subjectFilter
	if req.Filter != "" {
		f = newFilter([]string{req.Filter})
	}
	type victim struct {
		seq  uint64
		size int
		subj *subjectState
	}
	var victims []victim
	s.scanLocked(s.first, func(seq uint64, rec *log.Record) bool {
		if req.Seq > 0 && seq >= req.Seq {
			return false
		}
		if f.matches(rec.Subject) {
			victims = append(victims, victim{seq, msgSize(rec.Subject, rec.Headers, rec.Payload), s.subjects[string(rec.Subject)]})
		}
		return true
	})
	if req.Keep > 0 {
		if uint64(len(victims)) <= req.Keep {
			victims = nil
		} else {
			victims = victims[:uint64(len(victims))-req.Keep]
		}
	}
	for _, v := range victims {
		s.removeLocked(v.seq, v.size, v.subj)
	}
	return before - s.msgs, s.saveStateLocked()
}

func (s *Stream) purgeAllLocked() {
	for _, c := range s.consumers {
		c.purged(s.last + 1)
	}
	s.msgs, s.bytes = 0, 0
	s.first = s.last + 1
	clear(s.deleted)
	clear(s.subjects)
	s.recent = s.recent[:0]
	s.firstSeq.Store(s.first)
	s.numDeleted.Store(0)
	s.st.setFloor(int64(s.first - 1))
	s.dirty = true
}

// saveStateLocked writes the stream's first sequence and deleted set.
func (s *Stream) saveStateLocked() error {
	s.dirty = false
	deleted := make([]uint64, 0, len(s.deleted))
	for seq := range s.deleted {
		deleted = append(deleted, seq)
	}
	sort.Slice(deleted, func(i, j int) bool { return deleted[i] < deleted[j] })
	return writeFileAtomic(filepath.Join(s.dir, stateFile), encodeStreamState(streamState{first: s.first, last: s.last, deleted: deleted}))
}

// recover rebuilds the in-memory state from the store and the saved state.
func (s *Stream) recover() error {
	saved, err := readStreamState(filepath.Join(s.dir, stateFile))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("stream %q: %w", s.name, err)
	}
	s.last = uint64(s.st.nextOffset())
	s.first = max(uint64(s.st.firstOffset())+1, saved.first)
	for _, seq := range saved.deleted {
		if seq >= s.first && seq <= s.last {
			s.deleted[seq] = struct{}{}
		}
	}
	rd, err := s.st.newReader(int64(s.first - 1))
	if err != nil {
		if errors.Is(err, log.ErrOffsetOutOfRange) {
			s.first = s.last + 1
			return nil
		}
		return fmt.Errorf("stream %q: %w", s.name, err)
	}
	defer rd.close()
	dedupFrom := time.Now().Add(-s.cfg.Duplicates).UnixNano()
	n := 0
	liveFirst := uint64(0)
	for {
		var rec = &s.rec
		if err := rd.next(rec); err != nil {
			var ce *log.CorruptError
			if errors.As(err, &ce) && ce.Next > rd.offset() {
				// The damaged range is lost; count it as deleted.
				for seq := uint64(rd.offset()) + 1; seq <= uint64(ce.Next); seq++ {
					s.deleted[seq] = struct{}{}
				}
				if rd.seek(ce.Next) == nil {
					continue
				}
			}
			if err != io.EOF {
				return fmt.Errorf("stream %q: recover: %w", s.name, err)
			}
			break
		}
		seq := uint64(rec.Offset) + 1
		if _, gone := s.deleted[seq]; gone {
			continue
		}
		if liveFirst == 0 {
			liveFirst = seq
		}
		subj := s.subjects[string(rec.Subject)]
		if subj == nil {
			subj = &subjectState{name: string(rec.Subject)}
			s.subjects[subj.name] = subj
		}
		size := msgSize(rec.Subject, rec.Headers, rec.Payload)
		s.msgs++
		s.bytes += uint64(size)
		s.lastTime = rec.Time
		subj.msgs++
		subj.last = seq
		if s.cfg.MaxMsgsPerSubject > 0 {
			subj.seqs = append(subj.seqs, seqSize{seq: seq, size: uint32(size)})
		}
		if rec.Time >= dedupFrom {
			for _, h := range rec.Headers {
				if string(h.Key) == MsgIDHeader {
					id := string(h.Value)
					s.dedup[id] = dedupEntry{seq: seq, time: rec.Time}
					s.dedupOrder = append(s.dedupOrder, dedupKey{id: id, time: rec.Time})
					s.lastMsgID = id
				}
			}
		}
		if n++; n%1024 == 0 {
			rd.release()
		}
	}
	if s.msgs == 0 {
		s.first = s.last + 1
		clear(s.deleted)
	} else {
		s.first = liveFirst
		for seq := range s.deleted {
			if seq < s.first {
				delete(s.deleted, seq)
			}
		}
	}
	s.firstSeq.Store(s.first)
	s.numDeleted.Store(int64(len(s.deleted)))
	// Limits may have changed while the stream was closed.
	for _, subj := range s.subjects {
		s.enforceLimitsLocked(subj)
	}
	s.expireLocked(time.Now().UnixNano())
	s.st.setFloor(int64(s.first - 1))
	return nil
}
