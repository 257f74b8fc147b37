package log

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestConcurrentAppenders(t *testing.T) {
	for _, policy := range []SyncPolicy{SyncAlways, SyncInterval, SyncNever} {
		t.Run(policy.String(), func(t *testing.T) {
			opts := testOptions()
			opts.Sync = policy
			opts.SyncInterval = 2 * time.Millisecond
			l := openTest(t, t.TempDir(), opts)
			const writers, per = 8, 300
			var wg sync.WaitGroup
			var mu sync.Mutex
			acked := make(map[int64]string)
			errs := make(chan error, writers)
			for w := 0; w < writers; w++ {
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					var last int64
					for i := 0; i < per; i++ {
						payload := fmt.Sprintf("w%d-%d", w, i)
						rec := Record{Subject: []byte("load"), Payload: []byte(payload)}
						off, err := l.Append(&rec, func(off int64, err error) {
							// Acknowledged means covered by the policy's
							// write or fsync, never ahead of it.
							if err == nil && l.DurableOffset() <= off {
								err = fmt.Errorf("offset %d acknowledged before durable offset %d", off, l.DurableOffset())
							}
							if err != nil {
								select { // never block the commit goroutine
								case errs <- err:
								default:
								}
								return
							}
							mu.Lock()
							acked[off] = payload
							mu.Unlock()
						})
						if err != nil {
							errs <- err
							return
						}
						last = off
					}
					if err := l.WaitDurable(last); err != nil {
						errs <- err
					}
				}(w)
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			if err := l.Sync(); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(acked) != writers*per || l.NextOffset() != writers*per {
				t.Fatalf("%d acknowledged, next %d, want %d", len(acked), l.NextOffset(), writers*per)
			}
			r, err := l.NewReader(0)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			var rec Record
			seen := make(map[string]bool)
			for off := int64(0); off < writers*per; off++ {
				if err := r.Next(&rec); err != nil {
					t.Fatal(err)
				}
				if acked[off] != string(rec.Payload) || seen[string(rec.Payload)] {
					t.Fatalf("offset %d holds %q, acknowledged as %q", off, rec.Payload, acked[off])
				}
				seen[string(rec.Payload)] = true
			}
		})
	}
}

func TestAckCallbacksInOffsetOrder(t *testing.T) {
	opts := testOptions()
	opts.Sync = SyncAlways
	l := openTest(t, t.TempDir(), opts)
	var got []int64
	var mu sync.Mutex
	done := func(off int64, err error) {
		if err != nil {
			t.Error(err)
		}
		mu.Lock()
		got = append(got, off)
		mu.Unlock()
	}
	var last int64
	for i := 0; i < 200; i++ {
		rec := testRecord(int64(i), 10)
		if i%10 == 0 {
			off, err := l.AppendBatch([]Record{rec, testRecord(int64(i), 10)}, done)
			if err != nil {
				t.Fatal(err)
			}
			last = off + 1
			i++
			continue
		}
		off, err := l.Append(&rec, done)
		if err != nil {
			t.Fatal(err)
		}
		last = off
	}
	if err := l.WaitDurable(last); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(got); i++ {
		if got[i] <= got[i-1] {
			t.Fatalf("acks out of order: %v", got)
		}
	}
	if got[len(got)-1] != last {
		t.Fatalf("last ack %d, want %d", got[len(got)-1], last)
	}
}

func TestReaderWaitWakesOnAppend(t *testing.T) {
	l := openTest(t, t.TempDir(), testOptions())
	r, err := l.NewReader(0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	expectEOF(t, r)
	got := make(chan error, 1)
	go func() {
		var rec Record
		for off := int64(0); off < 100; off++ {
			for {
				err := r.Next(&rec)
				if err == nil {
					break
				}
				if !errors.Is(err, io.EOF) {
					got <- err
					return
				}
				if err := r.Wait(context.Background()); err != nil {
					got <- err
					return
				}
			}
			want := testRecord(off, 10)
			if err := sameRecord(&rec, &want); err != nil {
				got <- err
				return
			}
		}
		got <- nil
	}()
	for i := int64(0); i < 100; i++ {
		appendN(t, l, i, 1, 10, 1)
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("wait with a cancelled context: %v", err)
	}
	waitErr := make(chan error, 1)
	go func() { waitErr <- r.Wait(context.Background()) }()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-waitErr; !errors.Is(err, ErrClosed) {
		t.Fatalf("wait across close: %v", err)
	}
}

func TestMappedBytesCap(t *testing.T) {
	opts := testOptions()
	opts.MaxMappedBytes = 3 * opts.SegmentBytes
	l := openTest(t, t.TempDir(), opts)
	appendN(t, l, 0, 6000, 100, 20)
	if st := l.Stats(); st.Segments < 8 {
		t.Fatalf("want many segments, got %d", st.Segments)
	}
	check := func() {
		if m := l.mapped.Load(); m > opts.MaxMappedBytes {
			t.Fatalf("%d bytes mapped, cap %d", m, opts.MaxMappedBytes)
		}
	}
	check()
	for pass := 0; pass < 2; pass++ {
		r, err := l.NewReader(0)
		if err != nil {
			t.Fatal(err)
		}
		var rec Record
		for off := int64(0); off < 6000; off++ {
			if err := r.Next(&rec); err != nil {
				t.Fatalf("next %d: %v", off, err)
			}
			want := testRecord(off, 100)
			if err := sameRecord(&rec, &want); err != nil {
				t.Fatalf("offset %d: %v", off, err)
			}
			r.Release()
			check()
		}
		r.Close()
	}
	// Random access maps and unmaps segments again and again.
	r, err := l.NewReader(0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var rec Record
	for i := int64(0); i < 500; i++ {
		off := (i * 7919) % 6000
		if err := r.SeekOffset(off); err != nil {
			t.Fatal(err)
		}
		if err := r.Next(&rec); err != nil || rec.Offset != off {
			t.Fatalf("read %d: %v (got %d)", off, err, rec.Offset)
		}
		r.Release()
		check()
	}
}

// TestTailReadersWithAppendsAndRetention runs writers, tailing readers and
// floor retention together (meant for -race): readers see every offset
// once, in order, with the content the writer stored.
func TestTailReadersWithAppendsAndRetention(t *testing.T) {
	opts := testOptions()
	opts.SegmentBytes = 16 << 10
	opts.BatchBytes, opts.MaxRecordBytes = 2<<10, 2<<10
	l := openTest(t, t.TempDir(), opts)
	const writers, per, readers = 4, 500, 2
	total := int64(writers * per)
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < per; i++ {
				rec := Record{Subject: []byte("tail"), Payload: fmt.Appendf(nil, "%d/%d", w, i)}
				if _, err := l.Append(&rec, nil); err != nil {
					t.Error(err)
					return
				}
			}
		}(w)
	}
	var progress [readers]atomic.Int64
	errs := make(chan error, readers)
	for rd := 0; rd < readers; rd++ {
		go func(rd int) {
			r, err := l.NewReader(0)
			if err != nil {
				errs <- err
				return
			}
			defer r.Close()
			var rec Record
			lastSeen := make(map[string]int)
			for off := int64(0); off < total; {
				err := r.Next(&rec)
				if errors.Is(err, io.EOF) {
					ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
					err = r.Wait(ctx)
					cancel()
					if err != nil {
						errs <- fmt.Errorf("reader %d at %d: %w", rd, off, err)
						return
					}
					continue
				}
				if err != nil {
					errs <- fmt.Errorf("reader %d at %d: %w", rd, off, err)
					return
				}
				if rec.Offset != off {
					errs <- fmt.Errorf("reader %d: offset %d, want %d", rd, rec.Offset, off)
					return
				}
				var w, i int
				if _, err := fmt.Sscanf(string(rec.Payload), "%d/%d", &w, &i); err != nil {
					errs <- fmt.Errorf("reader %d: payload %q", rd, rec.Payload)
					return
				}
				key := fmt.Sprint(w)
				if prev, ok := lastSeen[key]; ok && i != prev+1 {
					errs <- fmt.Errorf("reader %d: writer %d went from %d to %d", rd, w, prev, i)
					return
				}
				lastSeen[key] = i
				off++
				if off%50 == 0 {
					r.Release()
					progress[rd].Store(off)
				}
			}
			errs <- nil
		}(rd)
	}
	// Retention follows the slowest reader, as a work queue's ack floor.
	stop := make(chan struct{})
	retained := make(chan error, 1)
	go func() {
		for done := false; !done; {
			select {
			case <-stop:
				done = true // one last pass with the final floor
			case <-l.Changed():
			}
			floor := min(progress[0].Load(), progress[1].Load())
			l.SetFloor(floor)
			if _, err := l.Retain(time.Now()); err != nil {
				retained <- err
				return
			}
		}
		retained <- nil
	}()
	wg.Wait()
	for rd := 0; rd < readers; rd++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	if err := <-retained; err != nil {
		t.Fatal(err)
	}
	if l.FirstOffset() == 0 {
		t.Fatal("retention never followed the readers' floor")
	}
}
