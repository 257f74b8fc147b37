package log

import (
	"errors"
	"testing"
	"time"
)

func TestHistogramBucketsAreCumulative(t *testing.T) {
	var h Histogram
	for _, d := range []time.Duration{0, 50 * time.Microsecond, 100 * time.Microsecond, 101 * time.Microsecond,
		3 * time.Millisecond, time.Second, time.Minute} {
		h.Observe(d)
	}
	s := h.Snapshot()
	if s.Count != 7 {
		t.Fatalf("count %d, want 7", s.Count)
	}
	// 0, 50µs and exactly 100µs fall in the first bucket (le is inclusive).
	want := map[time.Duration]uint64{100 * time.Microsecond: 3, 250 * time.Microsecond: 4, 5 * time.Millisecond: 5,
		time.Second: 6, 5 * time.Second: 6}
	for i, b := range LatencyBounds {
		if w, ok := want[b]; ok && s.Buckets[i] != w {
			t.Errorf("bucket le %v = %d, want %d", b, s.Buckets[i], w)
		}
		if i > 0 && s.Buckets[i] < s.Buckets[i-1] {
			t.Errorf("bucket %d below bucket %d", i, i-1)
		}
	}
	if wantSum := 50*time.Microsecond + 100*time.Microsecond + 101*time.Microsecond + 3*time.Millisecond + time.Second + time.Minute; s.Sum != wantSum {
		t.Errorf("sum %v, want %v", s.Sum, wantSum)
	}
}

// TestMetricsTimeCommits checks that each sync policy reports its fsyncs
// and the durable latency of what it acknowledged.
func TestMetricsTimeCommits(t *testing.T) {
	for _, policy := range []SyncPolicy{SyncAlways, SyncInterval, SyncNever} {
		t.Run(policy.String(), func(t *testing.T) {
			m := &Metrics{}
			opts := testOptions()
			opts.Sync, opts.SyncInterval, opts.Metrics = policy, 5*time.Millisecond, m
			l := openTest(t, t.TempDir(), opts)
			appendN(t, l, 0, 100, 50, 10)
			durable := m.Durable.Snapshot()
			if durable.Count == 0 {
				t.Errorf("no durable latency observed")
			}
			if durable.Sum < 0 {
				t.Errorf("negative durable latency %v", durable.Sum)
			}
			fsyncs := m.Fsync.Snapshot().Count
			if policy == SyncNever && fsyncs != 0 {
				t.Errorf("%d fsyncs observed under SyncNever", fsyncs)
			}
			if policy != SyncNever && fsyncs == 0 {
				t.Errorf("no fsync observed under %v", policy)
			}
		})
	}
}

func TestErrReportsClosed(t *testing.T) {
	l, err := Open(t.TempDir(), testOptions())
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Err(); err != nil {
		t.Fatalf("open log: Err = %v", err)
	}
	_ = l.Close()
	if err := l.Err(); !errors.Is(err, ErrClosed) {
		t.Fatalf("closed log: Err = %v, want ErrClosed", err)
	}
}

// TestMetricsDoNotAllocate pins the timed append path at zero allocations,
// as the untimed one is.
func TestMetricsDoNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own")
	}
	opts := allocOptions()
	opts.Metrics = &Metrics{}
	l := openTest(t, t.TempDir(), opts)
	recs := make([]Record, 1000)
	for i := range recs {
		recs[i] = Record{Subject: []byte("sensors.1.temp"), Payload: make([]byte, 100)}
	}
	batch := func() {
		first, err := l.AppendBatch(recs, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.WaitDurable(first + int64(len(recs)) - 1); err != nil {
			t.Fatal(err)
		}
	}
	for range 5 {
		batch()
	}
	if allocs := testing.AllocsPerRun(50, batch); allocs/1000 >= 0.01 {
		t.Errorf("%.1f allocations per batch of 1000 records with metrics", allocs)
	}
}
