package log

import (
	"testing"
)

func allocOptions() Options {
	return Options{Sync: SyncNever, SegmentBytes: 64 << 20}
}

// TestAppendDoesNotAllocatePerRecord pins the steady-state append path,
// commit goroutine included, at zero allocations.
func TestAppendDoesNotAllocatePerRecord(t *testing.T) {
	l := openTest(t, t.TempDir(), allocOptions())
	recs := make([]Record, 1000)
	for i := range recs {
		recs[i] = Record{Subject: []byte("sensors.1.temp"), Payload: make([]byte, 100),
			Headers: []Header{{Key: []byte("k"), Value: []byte("v")}}}
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
	done := func(int64, error) {}
	single := func() {
		var last int64
		for i := range 100 {
			off, err := l.Append(&recs[i], done)
			if err != nil {
				t.Fatal(err)
			}
			last = off
		}
		if err := l.WaitDurable(last); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name    string
		f       func()
		records int
	}{{"AppendBatch", batch, 1000}, {"Append", single, 100}} {
		for range 5 {
			tc.f() // grow the buffers
		}
		if raceEnabled {
			continue // the race detector allocates on its own
		}
		allocs := testing.AllocsPerRun(50, tc.f)
		t.Logf("%s: %.2f allocations per call", tc.name, allocs)
		if perRecord := allocs / float64(tc.records); perRecord >= 0.01 {
			t.Errorf("%s: %.1f allocations per call of %d records", tc.name, allocs, tc.records)
		}
	}
}

// TestReadDoesNotAllocate pins the read path at zero allocations per
// record, compressed batches included once the Reader's buffers exist.
func TestReadDoesNotAllocate(t *testing.T) {
	for _, comp := range []Compression{CompressNone, CompressS2, CompressZstd} {
		t.Run(comp.String(), func(t *testing.T) {
			opts := allocOptions()
			opts.Compression = comp
			l := openTest(t, t.TempDir(), opts)
			appendN(t, l, 0, 5000, 100, 500)
			r, err := l.NewReader(0)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			rec := Record{Headers: make([]Header, 0, 4)}
			read := func() {
				if err := r.SeekOffset(0); err != nil {
					t.Fatal(err)
				}
				for range 5000 {
					if err := r.Next(&rec); err != nil {
						t.Fatal(err)
					}
				}
				r.Release()
			}
			read()
			read()
			if raceEnabled {
				return
			}
			if allocs := testing.AllocsPerRun(20, read); allocs/5000 >= 0.01 {
				t.Errorf("%.1f allocations per pass over 5000 records", allocs)
			}
		})
	}
}
