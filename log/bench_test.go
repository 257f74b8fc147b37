package log

import (
	"flag"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Benchmarks of the log next to the physical limits of the same machine,
// so ratios come from one run:
//
//	flock /tmp/ledge-bench.lock go test -run '^$' -bench . -benchtime 2s ./log/
//
// BenchmarkRecover builds a 1 GiB stream only when LEDGE_BENCH_BIG=1 or
// when -bench names it; otherwise it uses 64 MiB.

func benchRecords(n, payload int) []Record {
	recs := make([]Record, n)
	for i := range recs {
		p := make([]byte, payload)
		for j := range p {
			p[j] = byte(i + j)
		}
		recs[i] = Record{Subject: []byte("sensors.gw1.temp"), Payload: p}
	}
	return recs
}

func BenchmarkAppend(b *testing.B) {
	for _, tc := range []struct {
		policy SyncPolicy
		// window is how many batches a producer keeps unconfirmed; 0 means
		// it never waits until the end.
		window int
	}{{SyncNever, 0}, {SyncInterval, 0}, {SyncAlways, 1}, {SyncAlways, 8}} {
		name := tc.policy.String()
		if tc.window > 1 {
			name = fmt.Sprintf("%s-window%d", name, tc.window)
		}
		for _, size := range []int{100, 1024} {
			b.Run(fmt.Sprintf("%s/%dB", name, size), func(b *testing.B) {
				l, err := Open(b.TempDir(), Options{Sync: tc.policy})
				if err != nil {
					b.Fatal(err)
				}
				defer l.Close()
				per := 256 << 10 / (size + 24)
				recs := benchRecords(per, size)
				inflight := make([]int64, 0, 16)
				b.ReportAllocs()
				b.SetBytes(int64(size))
				b.ResetTimer()
				start := time.Now()
				var last int64
				for n := 0; n < b.N; n += per {
					k := min(per, b.N-n)
					first, err := l.AppendBatch(recs[:k], nil)
					if err != nil {
						b.Fatal(err)
					}
					last = first + int64(k) - 1
					if tc.window == 0 {
						continue
					}
					// A producer that waits for confirms, keeping at most
					// window batches unconfirmed.
					inflight = append(inflight, last)
					if len(inflight) == tc.window {
						if err := l.WaitDurable(inflight[0]); err != nil {
							b.Fatal(err)
						}
						inflight = append(inflight[:0], inflight[1:]...)
					}
				}
				if err := l.WaitDurable(last); err != nil {
					b.Fatal(err)
				}
				el := time.Since(start).Seconds()
				b.StopTimer()
				b.ReportMetric(float64(b.N)/el, "records/s")
				b.ReportMetric(float64(l.Stats().Bytes)/el/1e6, "disk-MB/s")
			})
		}
	}
}

// BenchmarkAppendConcurrent measures group commit: many producers each
// waiting for their own confirm.
func BenchmarkAppendConcurrent(b *testing.B) {
	for _, policy := range []SyncPolicy{SyncNever, SyncAlways} {
		b.Run(policy.String(), func(b *testing.B) {
			l, err := Open(b.TempDir(), Options{Sync: policy})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			b.ReportAllocs()
			b.SetBytes(100)
			b.SetParallelism(16)
			b.RunParallel(func(pb *testing.PB) {
				rec := benchRecords(1, 100)[0]
				for pb.Next() {
					off, err := l.Append(&rec, nil)
					if err != nil {
						b.Error(err)
						return
					}
					if err := l.WaitDurable(off); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// fillLog writes about bytes of records of the given payload size.
func fillLog(b *testing.B, dir string, opts Options, bytes int64, payload int) *Log {
	b.Helper()
	l, err := Open(dir, opts)
	if err != nil {
		b.Fatal(err)
	}
	per := 256 << 10 / (payload + 24)
	recs := benchRecords(per, payload)
	var last int64
	for l.Stats().Bytes+int64(per*(payload+24)) < bytes {
		first, err := l.AppendBatch(recs, nil)
		if err != nil {
			b.Fatal(err)
		}
		last = first + int64(per) - 1
		if err := l.WaitDurable(last); err != nil {
			b.Fatal(err)
		}
	}
	return l
}

func BenchmarkRead(b *testing.B) {
	for _, comp := range []Compression{CompressNone, CompressS2, CompressZstd} {
		for _, size := range []int{100, 1024} {
			b.Run(fmt.Sprintf("sequential/%s/%dB", comp, size), func(b *testing.B) {
				l := fillLog(b, b.TempDir(), Options{Sync: SyncNever, Compression: comp}, 64<<20, size)
				defer l.Close()
				r, err := l.NewReader(0)
				if err != nil {
					b.Fatal(err)
				}
				defer r.Close()
				next := l.NextOffset()
				var rec Record
				var sum int
				b.ReportAllocs()
				b.SetBytes(int64(size))
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if r.Offset() == next {
						r.Release()
						if err := r.SeekOffset(0); err != nil {
							b.Fatal(err)
						}
					}
					if err := r.Next(&rec); err != nil {
						b.Fatal(err)
					}
					if i&1023 == 1023 {
						r.Release() // as a consumer does once it has sent a window
					}
					sum += len(rec.Payload)
				}
				if sum != b.N*size {
					b.Fatal("short payloads")
				}
			})
		}
	}
	b.Run("random/none/100B", func(b *testing.B) {
		l := fillLog(b, b.TempDir(), Options{Sync: SyncNever}, 64<<20, 100)
		defer l.Close()
		r, err := l.NewReader(0)
		if err != nil {
			b.Fatal(err)
		}
		defer r.Close()
		next := l.NextOffset()
		rng := rand.New(rand.NewSource(1))
		offs := make([]int64, 1<<16)
		for i := range offs {
			offs[i] = rng.Int63n(next)
		}
		var rec Record
		b.ReportAllocs()
		b.SetBytes(100)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if err := r.SeekOffset(offs[i&(len(offs)-1)]); err != nil {
				b.Fatal(err)
			}
			if err := r.Next(&rec); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkRecover measures Open of a stream that was closed cleanly: the
// sealed segments' indexes are loaded, the active segment is scanned.
// "warm" reopens with the files in the page cache; "cold" evicts the
// stream's files first (posix_fadvise DONTNEED), as after a reboot.
func BenchmarkRecover(b *testing.B) {
	size := int64(64 << 20)
	if os.Getenv("LEDGE_BENCH_BIG") == "1" || strings.Contains(flag.Lookup("test.bench").Value.String(), "Recover") {
		size = 1 << 30
	}
	dir := b.TempDir()
	l := fillLog(b, dir, Options{Sync: SyncNever}, size, 1024)
	next := l.NextOffset()
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
	for _, cold := range []bool{false, true} {
		name := fmt.Sprintf("%dMiB/warm", size>>20)
		if cold {
			name = fmt.Sprintf("%dMiB/cold", size>>20)
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if cold {
					b.StopTimer()
					if err := dropCache(dir); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
				l, err := Open(dir, Options{Sync: SyncNever})
				if err != nil {
					b.Fatal(err)
				}
				rep := l.Recovery()
				if l.NextOffset() != next || len(rep.RebuiltIndexes) > 0 || rep.Truncated {
					b.Fatalf("reopen: %v", rep)
				}
				// The index is intact: a seek into the oldest segment
				// reads without a scan.
				r, err := l.NewReader(next / 3)
				if err != nil {
					b.Fatal(err)
				}
				var rec Record
				if err := r.Next(&rec); err != nil || rec.Offset != next/3 {
					b.Fatalf("read after reopen: %v", err)
				}
				r.Close()
				if i == 0 {
					b.Logf("%v", rep)
				}
				if err := l.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDiskWrite is the physical limit for appends: plain files in
// the same directory as the log benchmarks (b.TempDir), written with 1 MiB
// writes, a new file every 32 MiB like segments, 1 GiB per op so that the
// volume written, and so the kernel's dirty-page throttling, is of the
// same order as in BenchmarkAppend. "cached" stops at the page cache, like
// the log under SyncNever; "synced" fdatasyncs each file, the disk's own
// bandwidth.
func BenchmarkDiskWrite(b *testing.B) {
	for _, sync := range []bool{false, true} {
		name := "cached"
		if sync {
			name = "synced"
		}
		b.Run(name, func(b *testing.B) {
			buf := make([]byte, 1<<20)
			for i := range buf {
				buf[i] = byte(i)
			}
			b.SetBytes(1 << 30)
			for i := 0; i < b.N; i++ {
				dir := b.TempDir()
				for file := 0; file < 32; file++ {
					f, err := os.Create(filepath.Join(dir, fmt.Sprintf("plain-%d", file)))
					if err != nil {
						b.Fatal(err)
					}
					for w := 0; w < 32; w++ {
						if _, err := f.Write(buf); err != nil {
							b.Fatal(err)
						}
					}
					if sync {
						if err := fdatasync(f); err != nil {
							b.Fatal(err)
						}
					}
					f.Close()
				}
			}
		})
	}
}

// BenchmarkMemCopy is the physical limit for reads: copying a buffer far
// larger than the CPU caches.
func BenchmarkMemCopy(b *testing.B) {
	src := make([]byte, 64<<20)
	dst := make([]byte, len(src))
	for i := range src {
		src[i] = byte(i)
	}
	b.SetBytes(int64(len(src)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		copy(dst, src)
	}
}
