package log

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestRetention(t *testing.T) {
	const n = 3000
	for _, tc := range []struct {
		name  string
		ret   Retention
		floor int64
		now   time.Time
		check func(t *testing.T, l *Log)
	}{
		{"bytes", Retention{MaxBytes: 150 << 10}, 0, time.Unix(0, 0), func(t *testing.T, l *Log) {
			if st := l.Stats(); st.Bytes > 150<<10 || st.Bytes+64<<10 < 150<<10 {
				t.Errorf("kept %d bytes, want about 150 KiB", st.Bytes)
			}
		}},
		{"records", Retention{MaxRecords: 1000}, 0, time.Unix(0, 0), func(t *testing.T, l *Log) {
			if kept := l.NextOffset() - l.FirstOffset(); kept > 1000 || kept < 300 {
				t.Errorf("kept %d records, want at most 1000 and more than a segment less", kept)
			}
		}},
		{"age", Retention{MaxAge: time.Second}, 0, time.Unix(0, 1_000_000+2000*1000).Add(time.Second), func(t *testing.T, l *Log) {
			// Records are stamped 1ms + off µs; everything at or after
			// offset 2000 is younger than the bound.
			first := l.FirstOffset()
			if first > 2000 || first < 1000 {
				t.Errorf("first offset %d, want the segment holding 2000", first)
			}
			s := l.segments()[0]
			if s.next.Load() <= 2000 {
				t.Errorf("kept segment ends at %d", s.next.Load())
			}
		}},
		{"floor", Retention{}, 1700, time.Unix(0, 0), func(t *testing.T, l *Log) {
			first := l.FirstOffset()
			if first > 1700 || l.segments()[0].next.Load() <= 1700 {
				t.Errorf("first offset %d, want the segment holding the floor 1700", first)
			}
		}},
		{"none", Retention{}, 0, time.Unix(1<<40, 0), func(t *testing.T, l *Log) {
			if l.FirstOffset() != 0 {
				t.Errorf("deleted without a bound: first %d", l.FirstOffset())
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := testOptions()
			l := openTest(t, dir, opts)
			appendN(t, l, 0, n, 100, 20)
			before := l.Stats().Segments
			l.opts.Retention = tc.ret
			l.SetFloor(tc.floor)
			deleted, err := l.Retain(tc.now)
			if err != nil {
				t.Fatal(err)
			}
			if st := l.Stats(); st.Segments != before-deleted {
				t.Fatalf("%d segments after deleting %d of %d", st.Segments, deleted, before)
			}
			tc.check(t, l)
			first := l.FirstOffset()
			checkRange(t, l, first, n, 100)
			if first > 0 {
				if _, err := l.NewReader(first - 1); !errors.Is(err, ErrOffsetOutOfRange) {
					t.Fatalf("read below first: %v", err)
				}
			}
			// Whole segments only: the files left are exactly the live ones.
			files, _ := filepath.Glob(filepath.Join(dir, "*"+segmentExt))
			if len(files) != l.Stats().Segments {
				t.Fatalf("%d segment files for %d segments", len(files), l.Stats().Segments)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			l = openTest(t, dir, opts)
			if l.FirstOffset() != first || l.NextOffset() != n {
				t.Fatalf("reopen: [%d, %d)", l.FirstOffset(), l.NextOffset())
			}
		})
	}
}

func TestRetentionRunsOnRoll(t *testing.T) {
	opts := testOptions()
	opts.Retention.MaxBytes = 100 << 10
	l := openTest(t, t.TempDir(), opts)
	appendN(t, l, 0, 5000, 100, 20)
	if st := l.Stats(); st.Bytes > 100<<10+opts.SegmentBytes {
		t.Fatalf("retention did not run on roll: %d bytes kept", st.Bytes)
	}
}

func TestReaderHoldsDeletedSegment(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, testOptions())
	appendN(t, l, 0, 3000, 100, 20)
	r, err := l.NewReader(0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	held := make([]Record, 50)
	for i := range held {
		if err := r.Next(&held[i]); err != nil {
			t.Fatal(err)
		}
	}
	first := l.segments()[0]
	l.SetFloor(2000)
	if n, err := l.Retain(time.Now()); err != nil || n == 0 {
		t.Fatalf("retain: %d, %v", n, err)
	}
	if _, err := os.Stat(filepath.Join(dir, segmentName(first.base, segmentExt))); !os.IsNotExist(err) {
		t.Fatalf("segment file still there: %v", err)
	}
	// The file is gone but the mapping the reader pinned is not.
	for i := range held {
		want := testRecord(int64(i), 100)
		if err := sameRecord(&held[i], &want); err != nil {
			t.Fatalf("held record %d: %v", i, err)
		}
	}
	// The reader can finish the segment it is in.
	var rec Record
	for off := int64(50); off < first.next.Load(); off++ {
		if err := r.Next(&rec); err != nil {
			t.Fatalf("next %d: %v", off, err)
		}
	}
	first.mu.Lock()
	mapped := first.data != nil
	first.mu.Unlock()
	if !mapped {
		t.Fatal("deleted segment unmapped while a reader holds it")
	}
	r.Close()
	first.mu.Lock()
	mapped = first.data != nil
	first.mu.Unlock()
	if mapped {
		t.Fatal("deleted segment still mapped after the last reader let go")
	}
}
