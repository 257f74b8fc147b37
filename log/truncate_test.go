package log

import (
	"sync"
	"testing"
	"time"
)

// TestTruncateSettlesPendingAcks truncates under SyncInterval while the
// cut records are written but not yet fsynced. Their acknowledgements must
// not stay pending: the next fsync would otherwise report as durable the
// records that now hold their offsets, which the callbacks never saw.
func TestTruncateSettlesPendingAcks(t *testing.T) {
	opts := testOptions()
	opts.Sync = SyncInterval
	opts.SyncInterval = time.Hour
	l := openTest(t, t.TempDir(), opts)
	var mu sync.Mutex
	var acked []int64
	recs := make([]Record, 10)
	for i := range recs {
		recs[i] = testRecord(int64(i), 100)
	}
	if _, err := l.AppendBatch(recs, func(last int64, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err == nil {
			acked = append(acked, last)
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := l.Truncate(5); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	settled := len(acked)
	mu.Unlock()
	if _, err := l.AppendBatch(recs[5:], nil); err != nil {
		t.Fatal(err)
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	checkRange(t, l, 0, 10, 100)
	if settled == 0 {
		t.Fatalf("the acknowledgement of records cut by Truncate was still pending; it fired later for offsets %v, which hold other records now", acked)
	}
}
