package log

import (
	"context"
	"errors"
	"testing"
	"time"
)

// waitWritten waits until the commit goroutine has written records below
// next, which it does on its own shortly after the append.
func waitWritten(t *testing.T, l *Log, next int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for l.NextOffset() < next {
		if time.Now().After(deadline) {
			t.Fatalf("records not written: next %d, want %d", l.NextOffset(), next)
		}
		time.Sleep(time.Millisecond)
	}
}

func closedChan(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// TestReaderSeesOnlyDurableRecords: under SyncInterval with an interval
// that never fires during the test, written records stay invisible to
// readers (Next returns io.EOF, Wait sleeps, Changed stays open) until Sync
// makes them durable; then a reader blocked in Wait wakes and reads them.
// A reader that saw them at once could commit its cursor past records a
// power loss would erase, and skip the records that reuse their offsets.
func TestReaderSeesOnlyDurableRecords(t *testing.T) {
	opts := testOptions()
	opts.Sync = SyncInterval
	opts.SyncInterval = time.Hour
	l := openTest(t, t.TempDir(), opts)
	first := make([]Record, 10)
	for i := range first {
		first[i] = testRecord(int64(i), 100)
	}
	if _, err := l.AppendBatch(first, nil); err != nil {
		t.Fatal(err)
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	r, err := l.NewReader(10)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	expectEOF(t, r)
	changed := l.Changed()

	recs := make([]Record, 0, 300)
	for i := int64(10); i < 310; i++ {
		recs = append(recs, testRecord(i, 100))
	}
	if _, err := l.AppendBatch(recs, nil); err != nil {
		t.Fatal(err)
	}
	waitWritten(t, l, 310)
	if d := l.DurableOffset(); d != 10 {
		t.Fatalf("durable offset %d before any fsync, want 10", d)
	}
	if closedChan(changed) {
		t.Fatal("Changed closed by a write that is not durable")
	}
	expectEOF(t, r)
	// Seeking into the written, not yet durable range is reading at the
	// end, not an error.
	mid, err := l.NewReader(200)
	if err != nil {
		t.Fatalf("reader at a written, not yet durable offset: %v", err)
	}
	defer mid.Close()
	expectEOF(t, mid)
	if err := r.SeekOffset(310); err != nil {
		t.Fatalf("seek to NextOffset: %v", err)
	}
	expectEOF(t, r)
	if err := r.SeekOffset(10); err != nil {
		t.Fatal(err)
	}
	// A timestamp among the invisible records positions at the durable
	// end, as for a timestamp past every record.
	if err := r.SeekTime(testRecord(150, 0).Time); err != nil || r.Offset() != 10 {
		t.Fatalf("seek to the time of a non-durable record: offset %d, %v", r.Offset(), err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	err = r.Wait(ctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait for a non-durable record: %v", err)
	}

	woke := make(chan error, 1)
	go func() { woke <- r.Wait(context.Background()) }()
	select {
	case err := <-woke:
		t.Fatalf("wait returned before the records were durable: %v", err)
	case <-time.After(20 * time.Millisecond):
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-woke:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("wait did not wake when the records became durable")
	}
	if !closedChan(changed) {
		t.Fatal("Changed not closed when the durable offset advanced")
	}
	checkRange(t, l, 0, 310, 100)
	var rec Record
	if err := mid.Next(&rec); err != nil || rec.Offset != 200 {
		t.Fatalf("reader at 200 after the fsync: offset %d, %v", rec.Offset, err)
	}
}

// TestTailUnderSyncInterval: a tailing reader blocked in Wait wakes when
// the interval's fsync makes records durable, with no Sync call.
func TestTailUnderSyncInterval(t *testing.T) {
	opts := testOptions()
	opts.Sync = SyncInterval
	opts.SyncInterval = 5 * time.Millisecond
	l := openTest(t, t.TempDir(), opts)
	r, err := l.NewReader(0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i := int64(0); i < 20; i++ {
		rec := testRecord(i, 50)
		if _, err := l.Append(&rec, nil); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var got Record
		for {
			err := r.Next(&got)
			if err == nil {
				break
			}
			if err = r.Wait(ctx); err != nil {
				cancel()
				t.Fatalf("offset %d: %v", i, err)
			}
		}
		cancel()
		if got.Offset != i || l.DurableOffset() <= i {
			t.Fatalf("read offset %d (want %d) with durable offset %d", got.Offset, i, l.DurableOffset())
		}
		if err := sameRecord(&got, &rec); err != nil {
			t.Fatal(err)
		}
	}
}

// TestVisibleWhenAcknowledgedSyncAlways: under SyncAlways a record can be
// read by the time its done callback runs.
func TestVisibleWhenAcknowledgedSyncAlways(t *testing.T) {
	opts := testOptions()
	opts.Sync = SyncAlways
	l := openTest(t, t.TempDir(), opts)
	r, err := l.NewReader(0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i := int64(0); i < 50; i++ {
		rec := testRecord(i, 100)
		acked := make(chan error, 1)
		if _, err := l.Append(&rec, func(off int64, err error) {
			if err == nil && l.DurableOffset() <= off {
				err = errors.New("acknowledged above the durable offset")
			}
			acked <- err
		}); err != nil {
			t.Fatal(err)
		}
		if err := <-acked; err != nil {
			t.Fatal(err)
		}
		var got Record
		if err := r.Next(&got); err != nil {
			t.Fatalf("offset %d after its acknowledgement: %v", i, err)
		}
		if err := sameRecord(&got, &rec); err != nil || got.Offset != i {
			t.Fatalf("offset %d (got %d): %v", i, got.Offset, err)
		}
	}
	expectEOF(t, r)
}
