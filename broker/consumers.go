package broker

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"github.com/ledgemq/ledge/log"
)

// ConsumerAction says whether AddConsumer may create, update, or both.
type ConsumerAction uint8

const (
	// CreateOrUpdate creates the consumer or updates its configuration.
	CreateOrUpdate ConsumerAction = iota
	// CreateOnly fails with ErrConsumerNameInUse if a consumer of that
	// name exists with a different configuration.
	CreateOnly
	// UpdateOnly fails with ErrConsumerNotFound if it does not exist.
	UpdateOnly
)

func jsonOf(v any) ([]byte, error) { return json.Marshal(v) }

// AddConsumer creates a consumer on the stream, or returns or updates the
// existing one of that name, as action allows.
func (s *Stream) AddConsumer(cfg ConsumerConfig, action ConsumerAction) (*Consumer, error) {
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrStreamNotFound
	}
	if cfg.Name != "" {
		if c, ok := s.consumers[cfg.Name]; ok {
			if s.retention == WorkQueuePolicy {
				filter := newFilter(cfg.FilterSubjects)
				for _, other := range s.consumers {
					if other != c && other.filter().overlaps(filter) {
						return nil, fmt.Errorf("%w: filter overlaps consumer %q", ErrWorkQueueOverlap, other.name)
					}
				}
			}
			// The consumer's lock is taken without the stream's: its
			// delivery goroutine takes them in the other order.
			s.mu.Unlock()
			c, err := c.update(cfg, action)
			s.mu.Lock()
			return c, err
		}
	}
	if action == UpdateOnly {
		return nil, ErrConsumerNotFound
	}
	if s.cfg.MaxConsumers > 0 && len(s.consumers) >= s.cfg.MaxConsumers {
		return nil, ErrMaxConsumers
	}
	filter := newFilter(cfg.FilterSubjects)
	if s.retention == WorkQueuePolicy {
		if cfg.AckPolicy != AckExplicit {
			return nil, fmt.Errorf("%w: work queue consumers need explicit acks", ErrInvalidConfig)
		}
		for _, other := range s.consumers {
			if other.filter().overlaps(filter) {
				return nil, fmt.Errorf("%w: filter overlaps consumer %q", ErrWorkQueueOverlap, other.name)
			}
		}
	}
	if cfg.Name == "" {
		var id [8]byte
		_, _ = rand.Read(id[:])
		cfg.Name = hex.EncodeToString(id[:])
	}
	cfg.Created = time.Now().UTC()
	c := s.newConsumer(cfg, filter)
	if err := s.positionLocked(c); err != nil {
		return nil, err
	}
	if cfg.Durable {
		c.dir = filepath.Join(s.dir, consumersDir, cfg.Name)
		if err := os.MkdirAll(c.dir, 0o755); err != nil {
			return nil, fmt.Errorf("consumer %q: %w", cfg.Name, err)
		}
		if err := writeJSON(filepath.Join(c.dir, configFile), &cfg); err != nil {
			return nil, fmt.Errorf("consumer %q: %w", cfg.Name, err)
		}
		if err := c.saveLocked(true); err != nil {
			return nil, fmt.Errorf("consumer %q: %w", cfg.Name, err)
		}
	}
	s.consumers[cfg.Name] = c
	go c.run()
	return c, nil
}

// update changes the consumer's configuration where that is allowed.
func (c *Consumer) update(cfg ConsumerConfig, action ConsumerAction) (*Consumer, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.cfg
	cfg.Created = old.Created
	ja, _ := jsonOf(&cfg)
	jb, _ := jsonOf(&old)
	if string(ja) == string(jb) {
		return c, nil
	}
	if action == CreateOnly {
		return nil, ErrConsumerNameInUse
	}
	if err := cfg.checkUpdate(&old); err != nil {
		return nil, err
	}
	if c.dir != "" {
		if err := writeJSON(filepath.Join(c.dir, configFile), &cfg); err != nil {
			return nil, fmt.Errorf("consumer %q: %w", cfg.Name, err)
		}
	}
	if !slices.Equal(cfg.FilterSubjects, old.FilterSubjects) {
		// A new filter changes what is pending; the stream's lock makes
		// the swap and the count one step for publishers.
		f := newFilter(cfg.FilterSubjects)
		s := c.s
		s.mu.Lock()
		c.filterp.Store(&f)
		c.numPending.Store(int64(s.countFromLocked(c, c.next.Load())))
		s.recountOwedLocked(c)
		s.mu.Unlock()
	}
	c.cfg = cfg
	c.wake()
	return c, nil
}

func (s *Stream) newConsumer(cfg ConsumerConfig, filter subjectFilter) *Consumer {
	c := &Consumer{
		s:          s,
		name:       cfg.Name,
		cfg:        cfg,
		outlet:     s.b.outletOrNil(),
		pending:    make(map[uint64]*pendingMsg),
		kick:       make(chan struct{}, 1),
		quit:       make(chan struct{}),
		done:       make(chan struct{}),
		lastActive: time.Now().UnixNano(),
	}
	c.filterp.Store(&filter)
	return c
}

func (b *Broker) outletOrNil() Outlet {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.outlet
}

// positionLocked sets a new consumer's starting sequence by its deliver
// policy, and counts what it has to deliver.
func (s *Stream) positionLocked(c *Consumer) error {
	cfg := &c.cfg
	next := s.first
	switch cfg.DeliverPolicy {
	case DeliverAll:
	case DeliverNew:
		next = s.last + 1
	case DeliverByStartSequence:
		next = max(cfg.OptStartSeq, s.first)
	case DeliverByStartTime:
		next = s.last + 1
		ts := cfg.OptStartTime.UnixNano()
		s.scanLocked(s.first, func(seq uint64, rec *log.Record) bool {
			if rec.Time >= ts {
				next = seq
				return false
			}
			return true
		})
	case DeliverLast, DeliverLastPerSubject:
		lastPer := make(map[uint64]bool)
		var newest uint64
		for name, subj := range s.subjects {
			if !c.filter().matches([]byte(name)) {
				continue
			}
			seq := s.lastOfSubjectLocked(subj)
			if seq == 0 {
				continue
			}
			lastPer[seq] = true
			newest = max(newest, seq)
		}
		switch {
		case newest == 0:
			next = s.last + 1
		case cfg.DeliverPolicy == DeliverLast:
			next = newest
		default:
			next = newest
			for seq := range lastPer {
				next = min(next, seq)
			}
			c.lastPer = lastPer
			c.lastPerUntil = newest + 1
		}
	}
	c.next.Store(max(next, 1))
	c.numPending.Store(int64(s.countFromLocked(c, next)))
	return nil
}

// countFromLocked counts the live messages at or after seq that c wants.
func (s *Stream) countFromLocked(c *Consumer, seq uint64) uint64 {
	if seq > s.last || s.msgs == 0 {
		return 0
	}
	if c.lastPer != nil {
		return uint64(len(c.lastPer))
	}
	if len(c.filter()) == 0 {
		if seq <= s.first {
			return s.msgs
		}
		n := s.last - seq + 1
		for d := range s.deleted {
			if d >= seq {
				n--
			}
		}
		return n
	}
	var n uint64
	if seq <= s.first {
		for name, subj := range s.subjects {
			if c.filter().matches([]byte(name)) {
				n += subj.msgs
			}
		}
		return n
	}
	s.scanLocked(seq, func(_ uint64, rec *log.Record) bool {
		if c.filter().matches(rec.Subject) {
			n++
		}
		return true
	})
	return n
}

// Consumer returns the named consumer.
func (s *Stream) Consumer(name string) (*Consumer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.consumers[name]; ok {
		return c, nil
	}
	return nil, ErrConsumerNotFound
}

// Consumers returns the stream's consumers, sorted by name.
func (s *Stream) Consumers() []*Consumer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.consumerList()
}

func (s *Stream) consumerList() []*Consumer {
	out := make([]*Consumer, 0, len(s.consumers))
	for _, c := range s.consumers {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// DeleteConsumer stops and removes a consumer and its state.
func (s *Stream) DeleteConsumer(name string) error {
	s.mu.Lock()
	c, ok := s.consumers[name]
	if ok {
		delete(s.consumers, name)
	}
	s.mu.Unlock()
	if !ok {
		return ErrConsumerNotFound
	}
	c.stop(true)
	if c.dir != "" {
		return removeAll(c.dir)
	}
	return nil
}

// advance moves c past the message at seq, which it read, and reports
// whether that message is live. match says c wants it.
func (s *Stream) advance(c *Consumer, seq uint64, match bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if seq+1 <= c.next.Load() {
		return false // a purge moved c past it
	}
	c.next.Store(seq + 1)
	if seq < s.first || seq > s.last {
		return false
	}
	if _, gone := s.deleted[seq]; gone {
		return false
	}
	if match {
		c.numPending.Add(-1)
	}
	return true
}

// skipTo moves c to next without delivering what lies before it.
func (s *Stream) skipTo(c *Consumer, next uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if next > c.next.Load() {
		c.next.Store(next)
	}
}

// unadvance puts c back at seq, a live message it wants but could not
// deliver.
func (s *Stream) unadvance(c *Consumer, seq uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.next.Load() == seq+1 {
		c.next.Store(seq)
		if _, gone := s.deleted[seq]; !gone && seq >= s.first {
			c.numPending.Add(1)
		}
	}
}

// subjectOf returns the bookkeeping of a stored subject.
func (s *Stream) subjectOf(subject []byte) *subjectState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.subjects[string(subject)]
}

// acked applies retention to messages c is done with. No consumer lock
// may be held: interest retention asks every consumer.
func (s *Stream) acked(c *Consumer, done []doneMsg) {
	switch s.retention {
	case WorkQueuePolicy:
		s.mu.Lock()
		for _, d := range done {
			if d.p.subj != nil && d.p.size > 0 {
				s.removeLocked(d.seq, int(d.p.size), d.p.subj)
			} else {
				s.removeSeqLocked(d.seq)
			}
		}
		s.mu.Unlock()
	case InterestPolicy:
		s.mu.Lock()
		others := s.consumerList()
		s.mu.Unlock()
		for _, d := range done {
			// The delivery recorded the message's subject and size: while
			// the message is live its subject's bookkeeping is too, so
			// they are still right, and the message need not be read back
			// from the log: that read was most of Stream.acked in the
			// profile of an uplink's catch-up.
			subj, size := d.p.subj, int(d.p.size)
			if subj == nil || size == 0 {
				s.mu.Lock()
				var ok bool
				size, subj, _, ok = s.lookupLocked(d.seq)
				s.mu.Unlock()
				if !ok || subj == nil {
					continue
				}
			}
			all := true
			for _, o := range others {
				if o != c && !o.hasAcked(d.seq, subj.name) {
					all = false
					break
				}
			}
			if all {
				s.mu.Lock()
				s.removeLocked(d.seq, size, subj)
				s.mu.Unlock()
			}
		}
	}
}

// loadConsumersLocked opens the durable consumers saved in the stream's
// folder.
func (s *Stream) loadConsumersLocked() error {
	dir := filepath.Join(s.dir, consumersDir)
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return os.MkdirAll(dir, 0o755)
	}
	if err != nil {
		return fmt.Errorf("stream %q: %w", s.name, err)
	}
	for _, e := range ents {
		if !e.IsDir() || !validName(e.Name()) {
			continue
		}
		var cfg ConsumerConfig
		cdir := filepath.Join(dir, e.Name())
		if err := readJSON(filepath.Join(cdir, configFile), &cfg); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				// Made by a create that did not finish.
				_ = removeAll(cdir)
				continue
			}
			return fmt.Errorf("stream %q: consumer %q: %w", s.name, e.Name(), err)
		}
		if err := cfg.normalize(); err != nil {
			return fmt.Errorf("stream %q: consumer %q: %w", s.name, e.Name(), err)
		}
		c := s.newConsumer(cfg, newFilter(cfg.FilterSubjects))
		c.dir = cdir
		st, err := os.ReadFile(filepath.Join(cdir, stateFile))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("stream %q: consumer %q: %w", s.name, cfg.Name, err)
		}
		if err == nil {
			cs, err := decodeConsumerState(st)
			if err != nil {
				return fmt.Errorf("stream %q: consumer %q: %w", s.name, cfg.Name, err)
			}
			c.restoreLocked(cs)
		} else if err := s.positionLocked(c); err != nil {
			return err
		}
		c.numPending.Store(int64(s.countFromLocked(c, c.next.Load())))
		s.recountOwedLocked(c)
		s.consumers[cfg.Name] = c
		if s.retention == WorkQueuePolicy {
			s.settleWorkQueueLocked(c)
		}
	}
	for _, c := range s.consumers {
		go c.run()
	}
	return nil
}

// settleWorkQueueLocked removes messages c acknowledged whose removal the
// stream's saved state had not caught up with before a crash.
func (s *Stream) settleWorkQueueLocked(c *Consumer) {
	end := min(c.next.Load(), s.last+1)
	var gone []uint64
	s.scanLocked(s.first, func(seq uint64, rec *log.Record) bool {
		if seq >= end {
			return false
		}
		if c.filter().matches(rec.Subject) && c.pending[seq] == nil && !c.owesLocked(seq) {
			gone = append(gone, seq)
		}
		return true
	})
	for _, seq := range gone {
		s.removeSeqLocked(seq)
	}
}

// upkeep runs the periodic work of the stream: age limits, the duplicate
// window, interest retention, state writes, idle ephemeral consumers.
func (s *Stream) upkeep(now time.Time) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.expireLocked(now.UnixNano())
	s.expireDedupLocked(now.UnixNano())
	var err error
	if s.dirty && s.cfg.Storage == FileStorage {
		err = s.saveStateLocked()
	}
	cs := s.consumerList()
	s.mu.Unlock()
	var idle []string
	for _, c := range cs {
		c.mu.Lock()
		if c.dir != "" {
			if e := c.saveLocked(false); e != nil && err == nil {
				err = e
			}
		}
		if !c.cfg.Durable && len(c.waiting) == 0 && now.UnixNano()-c.lastActive > int64(c.cfg.InactiveThreshold) {
			idle = append(idle, c.name)
		}
		c.mu.Unlock()
	}
	for _, name := range idle {
		_ = s.DeleteConsumer(name)
	}
	if s.retention == InterestPolicy {
		s.sweepInterest(cs)
	}
	s.st.retain(now)
	return err
}

// sweepInterest removes the messages at the head of an interest stream
// that every consumer has acknowledged.
func (s *Stream) sweepInterest(cs []*Consumer) {
	floor := uint64(1<<63 - 1)
	for _, c := range cs {
		c.mu.Lock()
		f, _ := c.ackFloorLocked()
		c.mu.Unlock()
		floor = min(floor, f)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(cs) == 0 {
		floor = s.last
	}
	for s.msgs > 0 && s.first <= floor {
		if !s.removeSeqLocked(s.first) {
			break
		}
	}
}

// close stops the consumers and closes the store, writing state first
// unless the stream is being deleted.
func (s *Stream) close(deleted bool) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	cs := s.consumerList()
	s.mu.Unlock()
	var errs []error
	for _, c := range cs {
		c.stop(deleted)
		if !deleted && c.dir != "" {
			c.mu.Lock()
			errs = append(errs, c.saveLocked(true))
			c.mu.Unlock()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if !deleted && s.cfg.Storage == FileStorage {
		errs = append(errs, s.saveStateLocked())
	}
	if s.rd != nil {
		s.rd.close()
		s.rd = nil
	}
	errs = append(errs, s.st.close())
	return errors.Join(errs...)
}
