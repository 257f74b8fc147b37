package log

import (
	"sync/atomic"
	"time"
)

// LatencyBounds are the upper bounds of the buckets of a Histogram, chosen
// for flash storage: a good eMMC fsyncs in a few hundred microseconds, a
// worn SD card can take a second.
var LatencyBounds = [...]time.Duration{
	100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond,
	time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond,
	10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 2500 * time.Millisecond, 5 * time.Second,
}

// Histogram counts durations into the buckets of LatencyBounds, with
// atomics only: observing takes no lock and allocates nothing, so the
// commit path can afford it. The zero value is ready to use.
type Histogram struct {
	counts [len(LatencyBounds) + 1]atomic.Uint64 // the last is +Inf
	sum    atomic.Int64                          // nanoseconds
}

// Observe adds one duration.
func (h *Histogram) Observe(d time.Duration) {
	i := 0
	for i < len(LatencyBounds) && d > LatencyBounds[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sum.Add(int64(d))
}

// HistogramSnapshot is a Histogram at one moment. Buckets[i] counts the
// observations at or below LatencyBounds[i] (cumulative, as Prometheus
// wants them); Count is every observation, the +Inf bucket.
type HistogramSnapshot struct {
	Buckets [len(LatencyBounds)]uint64
	Count   uint64
	Sum     time.Duration
}

// Snapshot reads the histogram. Observations that race with it may be in
// the sum and not yet in a bucket, never the other way round in a way
// that breaks the cumulative order: Count is the sum of the buckets read.
func (h *Histogram) Snapshot() HistogramSnapshot {
	var s HistogramSnapshot
	var n uint64
	for i := range LatencyBounds {
		n += h.counts[i].Load()
		s.Buckets[i] = n
	}
	s.Count = n + h.counts[len(LatencyBounds)].Load()
	s.Sum = time.Duration(h.sum.Load())
	return s
}

// Metrics are timings of the logs that share them (every stream of a
// broker): give the same *Metrics to each log's Options. A log with nil
// Metrics reads no clock for them.
type Metrics struct {
	// Fsync is the time of each fdatasync of the commit path.
	Fsync Histogram
	// Durable is, for each group-commit batch, the time from its first
	// append until it was acknowledged under the sync policy: the wait of
	// the batch's oldest record, the longest any of its records waited.
	// Under SyncInterval it is observed once per periodic fsync, for the
	// oldest record that fsync made durable.
	Durable Histogram
}

// Err returns the error that broke the log (a failed write or fsync),
// after which it accepts no appends, or nil while it works. A closed log
// reports ErrClosed.
func (l *Log) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed && l.err == nil {
		return ErrClosed
	}
	return l.err
}

// timedSync is fdatasync of the segment, timed when the log has Metrics.
func (l *Log) timedSync(s *segment) error {
	m := l.opts.Metrics
	if m == nil {
		return fdatasync(s.f)
	}
	t0 := time.Now()
	err := fdatasync(s.f)
	m.Fsync.Observe(time.Since(t0))
	return err
}

// noteDurable observes the durable latency of batches acknowledged at
// once (SyncAlways and SyncNever).
func (l *Log) noteDurable(batches []*encoder) {
	m := l.opts.Metrics
	if m == nil {
		return
	}
	now := time.Now().UnixNano()
	for _, e := range batches {
		if e.opened != 0 {
			m.Durable.Observe(time.Duration(now - e.opened))
		}
	}
}
