package broker

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ledgemq/ledge/log"
	"github.com/ledgemq/ledge/router"
)

// Options configure a Broker.
type Options struct {
	// Dir holds the streams, one folder each under Dir/streams.
	Dir string
	// Sync is the fsync policy of streams that do not set their own; the
	// zero value is log.SyncAlways: a publish is confirmed once fsynced.
	Sync log.SyncPolicy
	// SyncInterval is the fsync period under log.SyncInterval.
	SyncInterval time.Duration
	// SegmentBytes is the size of a stream's log segments (8 MiB when
	// zero: streams are many and small on an edge box).
	SegmentBytes int64
	// MaxMappedBytes caps each stream's mapped segments (see log.Options).
	MaxMappedBytes int64
	// StateFlushInterval is how often changed consumer and stream state
	// is written (1 s when zero). Acknowledgements in the last interval
	// before a crash are lost, and those messages delivered again.
	StateFlushInterval time.Duration
	// LogMetrics, when set, receives the fsync and durable-latency
	// timings of every file stream's log (see log.Metrics).
	LogMetrics *log.Metrics
	Logger     *slog.Logger
}

// DefaultSegmentBytes is a stream's segment size when Options leave it
// zero.
const DefaultSegmentBytes = 8 << 20

func (o Options) withDefaults() Options {
	if o.SegmentBytes <= 0 {
		o.SegmentBytes = DefaultSegmentBytes
	}
	if o.StateFlushInterval <= 0 {
		o.StateFlushInterval = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Broker owns the streams. See the package documentation.
type Broker struct {
	opts Options
	dir  string

	mu      sync.RWMutex
	streams map[string]*Stream
	outlet  Outlet
	closed  bool

	capture  *router.Router[*Stream]
	nstreams atomic.Int32

	quit chan struct{}
	done chan struct{}
}

// Open loads the streams in opts.Dir, recovering each, and starts the
// broker's upkeep (age limits, state flushes). Consumers deliver nothing
// until SetOutlet is called.
func Open(opts Options) (*Broker, error) {
	opts = opts.withDefaults()
	if opts.Dir == "" {
		return nil, fmt.Errorf("%w: broker needs a folder", ErrInvalidConfig)
	}
	b := &Broker{
		opts:    opts,
		dir:     filepath.Join(opts.Dir, "streams"),
		streams: make(map[string]*Stream),
		capture: router.New[*Stream](router.Options{}),
		quit:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	if err := os.MkdirAll(b.dir, 0o755); err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	ents, err := os.ReadDir(b.dir)
	if err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	for _, e := range ents {
		if !e.IsDir() || !validName(e.Name()) {
			continue
		}
		var cfg StreamConfig
		if err := readJSON(filepath.Join(b.dir, e.Name(), configFile), &cfg); err != nil {
			b.closeStreams()
			return nil, fmt.Errorf("broker: stream %q: %w", e.Name(), err)
		}
		s, err := b.openStream(cfg, false)
		if err != nil {
			b.closeStreams()
			return nil, err
		}
		b.streams[s.name] = s
		b.insertCapture(s, s.cfg.Subjects)
	}
	go b.upkeep()
	return b, nil
}

// SetOutlet connects consumers to the gateway that carries their messages
// and starts their deliveries.
func (b *Broker) SetOutlet(o Outlet) {
	b.mu.Lock()
	b.outlet = o
	streams := b.sortedLocked()
	b.mu.Unlock()
	for _, s := range streams {
		s.mu.Lock()
		cs := s.consumerList()
		s.mu.Unlock()
		for _, c := range cs {
			c.mu.Lock()
			if !c.attached {
				c.outlet = o
			}
			c.mu.Unlock()
			c.wake()
		}
	}
}

func (b *Broker) insertCapture(s *Stream, subjects []string) {
	for _, p := range subjects {
		_, _ = b.capture.Insert(router.Subscription[*Stream]{Pattern: p, Handle: s})
	}
	b.nstreams.Store(int32(len(b.streams)))
}

func (b *Broker) removeCapture(s *Stream, subjects []string) {
	for _, p := range subjects {
		b.capture.Remove(router.Subscription[*Stream]{Pattern: p, Handle: s})
	}
	b.nstreams.Store(int32(len(b.streams)))
}

// Capture returns the stream that captures subject, or nil. Streams'
// subjects do not overlap, so there is at most one. res is the caller's
// reusable match result (see router.Result); the lookup does not allocate.
func (b *Broker) Capture(subject []byte, res *router.Result[*Stream]) *Stream {
	if b.nstreams.Load() == 0 {
		return nil
	}
	if b.capture.MatchBytes(subject, res) != nil || len(res.Subs) == 0 {
		return nil
	}
	return res.Subs[0]
}

// AddStream creates a stream, or returns the existing one if its
// configuration is the same.
func (b *Broker) AddStream(cfg StreamConfig) (*Stream, error) {
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, ErrClosed
	}
	if s, ok := b.streams[cfg.Name]; ok {
		old := s.Config()
		cfg.Created = old.Created
		if sameStreamConfig(&cfg, &old) {
			return s, nil
		}
		return nil, ErrStreamNameInUse
	}
	if err := b.checkOverlapLocked(cfg.Name, cfg.Subjects); err != nil {
		return nil, err
	}
	cfg.Created = time.Now().UTC()
	s, err := b.openStream(cfg, true)
	if err != nil {
		return nil, err
	}
	b.streams[s.name] = s
	b.insertCapture(s, cfg.Subjects)
	return s, nil
}

func sameStreamConfig(a, b *StreamConfig) bool {
	ja, _ := jsonOf(a)
	jb, _ := jsonOf(b)
	return string(ja) == string(jb)
}

func (b *Broker) checkOverlapLocked(name string, subjects []string) error {
	for _, other := range b.streams {
		if other.name == name {
			continue
		}
		for _, p := range subjects {
			for _, q := range other.cfg.Subjects {
				if overlaps(compilePattern(p), compilePattern(q)) {
					return fmt.Errorf("%w: %q and %q of stream %q", ErrSubjectsOverlap, p, q, other.name)
				}
			}
		}
	}
	return nil
}

// UpdateStream changes a stream's configuration in place: subjects,
// limits, description, duplicate window, and the policies that can change.
func (b *Broker) UpdateStream(cfg StreamConfig) (*Stream, error) {
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	s, ok := b.streams[cfg.Name]
	if !ok {
		return nil, ErrStreamNotFound
	}
	if err := b.checkOverlapLocked(cfg.Name, cfg.Subjects); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.cfg
	if err := cfg.checkUpdate(&old); err != nil {
		return nil, err
	}
	cfg.Created = old.Created
	if err := writeJSON(filepath.Join(s.dir, configFile), &cfg); err != nil {
		return nil, fmt.Errorf("stream %q: %w", s.name, err)
	}
	b.removeCapture(s, old.Subjects)
	s.cfg = cfg
	b.insertCapture(s, cfg.Subjects)
	if cfg.MaxMsgsPerSubject > 0 && old.MaxMsgsPerSubject == 0 {
		// Per-subject limits need each subject's sequences.
		s.scanLocked(s.first, func(seq uint64, rec *log.Record) bool {
			if subj := s.subjects[string(rec.Subject)]; subj != nil {
				subj.seqs = append(subj.seqs, seqSize{seq, uint32(msgSize(rec.Subject, rec.Headers, rec.Payload))})
			}
			return true
		})
	} else if cfg.MaxMsgsPerSubject == 0 {
		for _, subj := range s.subjects {
			subj.seqs = nil
		}
	}
	for _, subj := range s.subjects {
		s.enforceLimitsLocked(subj)
	}
	s.expireLocked(time.Now().UnixNano())
	return s, nil
}

// Stream returns the named stream.
func (b *Broker) Stream(name string) (*Stream, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if s, ok := b.streams[name]; ok {
		return s, nil
	}
	return nil, ErrStreamNotFound
}

// Streams returns every stream, sorted by name.
func (b *Broker) Streams() []*Stream {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.sortedLocked()
}

func (b *Broker) sortedLocked() []*Stream {
	out := make([]*Stream, 0, len(b.streams))
	for _, s := range b.streams {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// DeleteStream stops a stream's consumers and removes it with its
// messages.
func (b *Broker) DeleteStream(name string) error {
	b.mu.Lock()
	s, ok := b.streams[name]
	if ok {
		delete(b.streams, name)
		b.removeCapture(s, s.Config().Subjects)
	}
	b.mu.Unlock()
	if !ok {
		return ErrStreamNotFound
	}
	s.close(true)
	return removeAll(s.dir)
}

// Close stops the consumers, writes every state and closes the streams.
func (b *Broker) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return ErrClosed
	}
	b.closed = true
	b.mu.Unlock()
	close(b.quit)
	<-b.done
	return b.closeStreams()
}

func (b *Broker) closeStreams() error {
	b.mu.Lock()
	streams := b.sortedLocked()
	b.mu.Unlock()
	var errs []error
	for _, s := range streams {
		errs = append(errs, s.close(false))
	}
	return errors.Join(errs...)
}

// openStream opens (create: makes) a stream's folder, store and consumers.
func (b *Broker) openStream(cfg StreamConfig, create bool) (*Stream, error) {
	if err := cfg.normalize(); err != nil {
		return nil, fmt.Errorf("stream %q: %w", cfg.Name, err)
	}
	s := &Stream{
		b:         b,
		dir:       filepath.Join(b.dir, cfg.Name),
		name:      cfg.Name,
		cfg:       cfg,
		retention: cfg.Retention,
		deleted:   make(map[uint64]struct{}),
		subjects:  make(map[string]*subjectState),
		dedup:     make(map[string]dedupEntry),
		consumers: make(map[string]*Consumer),
	}
	if create {
		if err := os.MkdirAll(filepath.Join(s.dir, consumersDir), 0o755); err != nil {
			return nil, fmt.Errorf("stream %q: %w", s.name, err)
		}
		if err := writeJSON(filepath.Join(s.dir, configFile), &cfg); err != nil {
			return nil, fmt.Errorf("stream %q: %w", s.name, err)
		}
	}
	if cfg.Storage == MemoryStorage {
		s.st = newMemStore()
	} else {
		sync := b.opts.Sync
		if cfg.Sync != nil {
			sync = *cfg.Sync
		}
		l, err := log.Open(filepath.Join(s.dir, logDir), log.Options{
			Name:           cfg.Name,
			SegmentBytes:   b.opts.SegmentBytes,
			Sync:           sync,
			SyncInterval:   b.opts.SyncInterval,
			Compression:    cfg.Compression,
			MaxMappedBytes: b.opts.MaxMappedBytes,
			Metrics:        b.opts.LogMetrics,
		})
		if err != nil {
			return nil, fmt.Errorf("stream %q: %w", s.name, err)
		}
		if rep := l.Recovery(); rep.TruncatedBytes > 0 {
			b.opts.Logger.Warn("broker: stream log recovered", "stream", s.name, "truncated_bytes", rep.TruncatedBytes)
		}
		s.st = fileStore{l}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.recover(); err != nil {
		_ = s.st.close()
		return nil, err
	}
	if err := s.loadConsumersLocked(); err != nil {
		_ = s.st.close()
		return nil, err
	}
	return s, nil
}

// upkeep applies age limits and duplicate windows, writes changed state,
// and removes idle ephemeral consumers, once per StateFlushInterval.
func (b *Broker) upkeep() {
	defer close(b.done)
	t := time.NewTicker(b.opts.StateFlushInterval)
	defer t.Stop()
	for {
		select {
		case <-b.quit:
			return
		case now := <-t.C:
			for _, s := range b.Streams() {
				if err := s.upkeep(now); err != nil {
					b.opts.Logger.Error("broker: stream upkeep", "stream", s.name, "err", err)
				}
			}
		}
	}
}
