package log

import (
	"os"
	"path/filepath"
	"testing"
)

// TestStaleBatchesPastDamageDoNotReturn leaves the active segment as a
// crash can, when pages of one large write reach the disk and earlier ones
// do not: a run of zeros, longer than a few batches, then intact batches.
// Recovery ends the log at the zeros; every batch after them must be gone
// for good. Otherwise appends that refill the gap line up with a stale batch
// whose offset is the next one expected, and a later recovery resurrects
// records that the first one dropped.
func TestStaleBatchesPastDamageDoNotReturn(t *testing.T) {
	src := t.TempDir()
	opts := Options{SegmentBytes: 64 << 10, BatchBytes: 1 << 10, MaxRecordBytes: 1 << 10,
		IndexIntervalBytes: 512, Sync: SyncAlways}
	rec := func() Record {
		return Record{Subject: []byte("s"), Payload: make([]byte, 50), Time: 1}
	}
	const total, damaged = 300, 10
	l := openTest(t, src, opts)
	for i := 0; i < total; i++ {
		r := rec()
		off, err := l.Append(&r, nil)
		if err != nil {
			t.Fatal(err)
		}
		// One record per commit, so every batch has the same length.
		if err := l.WaitDurable(off); err != nil {
			t.Fatal(err)
		}
	}
	if len(l.segments()) != 1 {
		t.Fatalf("%d segments, want 1", len(l.segments()))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(src, segmentName(0, segmentExt))
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pos, offs := batchBounds(t, b, 0)
	if len(pos) != total {
		t.Fatalf("%d batches, want %d", len(pos), total)
	}
	size := pos[1] - pos[0]
	for i := 1; i < len(pos); i++ {
		if pos[i] != int64(i)*size || offs[i] != int64(i) {
			t.Fatalf("batch %d at byte %d offset %d; want equal batches", i, pos[i], offs[i])
		}
	}
	const lost = 100 // batches whose pages never reached the disk
	clear(b[pos[damaged]:pos[damaged+lost]])
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}

	l, err = Open(src, opts)
	if err != nil {
		t.Fatal(err)
	}
	if l.NextOffset() != damaged {
		l.Close()
		t.Fatalf("next %d, want %d; %v", l.NextOffset(), damaged, l.Recovery())
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	b, err = os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	stale := int64(-1)
	for i := int64(damaged + 1); i < total; i++ {
		if lastNonZero(b[i*size:(i+1)*size]) >= 0 {
			stale = i
			break
		}
	}
	if stale < 0 {
		return
	}
	// Refill the gap up to the stale batch, one equal batch per record.
	l = openTest(t, src, opts)
	for i := int64(damaged); i < stale; i++ {
		r := rec()
		off, err := l.Append(&r, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.WaitDurable(off); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openTest(t, src, opts)
	t.Fatalf("bytes of batch %d survived the cut at batch %d; after refilling the gap, recovery finds %d records where %d were written",
		stale, damaged, l.NextOffset(), stale)
}
