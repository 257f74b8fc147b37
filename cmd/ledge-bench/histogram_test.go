package main

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestBucketsCoverEveryValueOnce(t *testing.T) {
	// Walk the bucket boundaries: each bucket starts one past the end of
	// the one before, and every value maps into the bucket whose range
	// holds it.
	var next int64
	for i := 0; i < histBuckets; i++ {
		lo, hi := bucketRange(i)
		if lo != next {
			t.Fatalf("bucket %d starts at %d, want %d", i, lo, next)
		}
		if hi < lo {
			t.Fatalf("bucket %d: [%d, %d]", i, lo, hi)
		}
		for _, v := range []int64{lo, hi, lo + (hi-lo)/2} {
			if got := bucketOf(v); got != i {
				t.Fatalf("bucketOf(%d) = %d, want %d", v, got, i)
			}
		}
		if i >= 2*histSub && float64(hi-lo+1)/float64(lo) > 1.0/histSub {
			t.Fatalf("bucket %d [%d, %d] wider than 1/%d of its values", i, lo, hi, histSub)
		}
		next = hi + 1
	}
	if next != math.MinInt64 { // the last bucket ends at MaxInt64, so next wrapped
		t.Fatalf("buckets end at %d, want MaxInt64", next-1)
	}
}

func TestPercentiles(t *testing.T) {
	uniform := make([]int64, 100000)
	for i := range uniform {
		uniform[i] = int64(i + 1)
	}
	r := rand.New(rand.NewPCG(1, 2))
	lognormal := make([]int64, 50000)
	for i := range lognormal {
		lognormal[i] = int64(math.Exp(r.NormFloat64()*1.5 + 12)) // around 160 µs, long tail
	}
	cases := []struct {
		name   string
		values []int64
	}{
		{"one value", []int64{42}},
		{"small exact values", []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
		{"uniform 1..100000", uniform},
		{"lognormal", lognormal},
		{"seconds", []int64{1e9, 2e9, 3e9, 60e9}},
		{"zero and negative", []int64{0, -5, 0, 7}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := NewHistogram()
			for _, v := range c.values {
				h.Record(v)
			}
			sorted := slices.Clone(c.values)
			for i, v := range sorted {
				sorted[i] = max(v, 0)
			}
			slices.Sort(sorted)
			for _, q := range []float64{0, 50, 90, 99, 99.9, 100} {
				rank := int(math.Ceil(q / 100 * float64(len(sorted))))
				rank = max(rank, 1)
				want := sorted[rank-1]
				got := h.Percentile(q)
				// At least the true value, at most one bucket width above.
				if got < want || float64(got-want) > float64(want)/histSub {
					t.Errorf("p%v = %d, want %d within 1/%d", q, got, want, histSub)
				}
			}
			if h.Max() != sorted[len(sorted)-1] || h.Min() != sorted[0] {
				t.Errorf("min, max = %d, %d; want %d, %d", h.Min(), h.Max(), sorted[0], sorted[len(sorted)-1])
			}
			if h.Count() != uint64(len(sorted)) {
				t.Errorf("count %d, want %d", h.Count(), len(sorted))
			}
		})
	}
}

func TestMergeEqualsRecordingIntoOne(t *testing.T) {
	a, b, all := NewHistogram(), NewHistogram(), NewHistogram()
	for i := int64(0); i < 10000; i++ {
		v := i * i
		all.Record(v)
		if i%3 == 0 {
			a.Record(v)
		} else {
			b.Record(v)
		}
	}
	a.Merge(b)
	a.Merge(NewHistogram())
	if a.counts != all.counts || a.Count() != all.Count() || a.Min() != all.Min() || a.Max() != all.Max() {
		t.Fatal("merged histogram differs from one recorded directly")
	}
}

func TestEmptyHistogram(t *testing.T) {
	h := NewHistogram()
	if h.Percentile(99) != 0 || h.Min() != 0 || h.Max() != 0 || h.Mean() != 0 {
		t.Fatal("empty histogram reports non-zero values")
	}
}

func TestRecordDoesNotAllocate(t *testing.T) {
	h := NewHistogram()
	v := int64(12345)
	if n := testing.AllocsPerRun(1000, func() { h.Record(v); v += 997 }); n != 0 {
		t.Fatalf("Record allocates %v times", n)
	}
}

func BenchmarkHistogramRecord(b *testing.B) {
	h := NewHistogram()
	b.ReportAllocs()
	v := int64(1)
	for b.Loop() {
		h.Record(v)
		v = v*31 + 7
		if v > 1e10 {
			v = 1
		}
	}
}
