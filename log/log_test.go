package log

import (
	"errors"
	"testing"
	"time"
)

func TestAppendReadRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name       string
		comp       Compression
		sync       SyncPolicy
		n, payload int
		batch      int
	}{
		{"none/never/small", CompressNone, SyncNever, 1000, 50, 37},
		{"none/always/one-by-one", CompressNone, SyncAlways, 50, 100, 1},
		{"none/interval", CompressNone, SyncInterval, 500, 200, 64},
		{"s2/never", CompressS2, SyncNever, 1000, 300, 50},
		{"zstd/always", CompressZstd, SyncAlways, 1000, 300, 50},
		{"zstd/large-records", CompressZstd, SyncNever, 40, 7000, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := testOptions()
			opts.Compression, opts.Sync = tc.comp, tc.sync
			opts.SyncInterval = 1e6
			l := openTest(t, t.TempDir(), opts)
			appendN(t, l, 0, tc.n, tc.payload, tc.batch)
			if got := l.NextOffset(); got != int64(tc.n) {
				t.Fatalf("next offset %d, want %d", got, tc.n)
			}
			checkRange(t, l, 0, int64(tc.n), tc.payload)
			checkRange(t, l, int64(tc.n/2), int64(tc.n), tc.payload)
		})
	}
}

func TestAppendRejectsBadInput(t *testing.T) {
	l := openTest(t, t.TempDir(), testOptions())
	appendN(t, l, 0, 10, 10, 10)
	for _, tc := range []struct {
		name string
		rec  Record
		want error
	}{
		{"empty subject", Record{Payload: []byte("x")}, ErrEmptySubject},
		{"too large", Record{Subject: []byte("a"), Payload: make([]byte, 9<<10)}, ErrRecordTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := l.Append(&tc.rec, nil); !errors.Is(err, tc.want) {
				t.Fatalf("Append: got %v, want %v", err, tc.want)
			}
			good := testRecord(99, 10)
			if _, err := l.AppendBatch([]Record{good, tc.rec}, nil); !errors.Is(err, tc.want) {
				t.Fatalf("AppendBatch: got %v, want %v", err, tc.want)
			}
			if got := l.NextOffset(); got != 10 {
				t.Fatalf("next offset moved to %d", got)
			}
		})
	}
	checkRange(t, l, 0, 10, 10)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rec := testRecord(10, 10)
	if _, err := l.Append(&rec, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
	if _, err := l.AppendBatch([]Record{rec}, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("append batch after close: %v", err)
	}
}

func TestOutOfOrderTimestampsRoundTrip(t *testing.T) {
	l := openTest(t, t.TempDir(), testOptions())
	times := []int64{5000, 1000, 1 << 50, -7, 5001, 0x7fffffffffff}
	recs := make([]Record, len(times))
	for i, ts := range times {
		recs[i] = Record{Subject: []byte("t"), Time: ts, Payload: []byte{byte(i)}}
	}
	if _, err := l.AppendBatch(recs, nil); err != nil {
		t.Fatal(err)
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	r, err := l.NewReader(0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var rec Record
	for i, ts := range times {
		if err := r.Next(&rec); err != nil || rec.Time != ts {
			t.Fatalf("record %d: time %d, want %d (%v)", i, rec.Time, ts, err)
		}
	}
}

func TestFirstLastOffsets(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, testOptions())
	if l.FirstOffset() != 0 || l.NextOffset() != 0 || l.LastOffset() != -1 {
		t.Fatalf("empty log: first %d next %d last %d", l.FirstOffset(), l.NextOffset(), l.LastOffset())
	}
	appendN(t, l, 0, 2000, 100, 20)
	l.SetFloor(1000)
	if _, err := l.Retain(time.Now()); err != nil {
		t.Fatal(err)
	}
	first := l.FirstOffset()
	if first == 0 || first > 1000 || l.LastOffset() != 1999 || l.DurableOffset() != 2000 {
		t.Fatalf("first %d last %d durable %d", first, l.LastOffset(), l.DurableOffset())
	}
}
