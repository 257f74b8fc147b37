package main

import (
	"math"
	"math/bits"
)

// Histogram counts latencies in nanoseconds in log-linear buckets, the
// layout of HdrHistogram: values below 256 have a bucket each, and every
// power of two above is split into 128 equal buckets, so a bucket is never
// wider than 1/128 (0.8%) of the values it holds. It covers every int64
// with 7,296 counters (57 KiB) and never allocates after NewHistogram.
//
// A Histogram is not safe for concurrent use: each receiver records into
// its own and the report merges them.
type Histogram struct {
	counts [histBuckets]uint64
	n      uint64
	sum    float64
	min    int64
	max    int64
}

const (
	histSubBits = 7
	histSub     = 1 << histSubBits // buckets per power of two
	// histBuckets is the index of the largest int64 plus one: shift 55,
	// mantissa 255.
	histBuckets = (63-histSubBits-1)*histSub + 2*histSub
)

// NewHistogram returns an empty histogram.
func NewHistogram() *Histogram {
	return &Histogram{min: math.MaxInt64}
}

// bucketOf returns v's bucket: v itself below 256, else the top eight
// bits of v (128..255) offset by 128 for every bit shifted out.
func bucketOf(v int64) int {
	u := uint64(v)
	shift := bits.Len64(u) - (histSubBits + 1)
	if shift < 0 {
		shift = 0
	}
	return shift*histSub + int(u>>uint(shift))
}

// bucketRange returns the smallest and largest value that bucket i holds.
func bucketRange(i int) (lo, hi int64) {
	if i < 2*histSub {
		return int64(i), int64(i)
	}
	shift := i/histSub - 1
	m := int64(i - shift*histSub)
	lo = m << uint(shift)
	return lo, lo + 1<<uint(shift) - 1
}

// Record adds one value; negative values (a clock stepped back between
// sender and receiver) count as 0.
func (h *Histogram) Record(v int64) {
	if v < 0 {
		v = 0
	}
	h.counts[bucketOf(v)]++
	h.n++
	h.sum += float64(v)
	if v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
}

// Merge adds every value recorded in o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
	h.min = min(h.min, o.min)
	h.max = max(h.max, o.max)
}

// Count returns how many values were recorded.
func (h *Histogram) Count() uint64 { return h.n }

// Min returns the smallest value recorded, 0 when empty.
func (h *Histogram) Min() int64 {
	if h.n == 0 {
		return 0
	}
	return h.min
}

// Max returns the largest value recorded, exactly.
func (h *Histogram) Max() int64 { return h.max }

// Mean returns the mean of the values recorded, 0 when empty.
func (h *Histogram) Mean() float64 {
	if h.n == 0 {
		return 0
	}
	return h.sum / float64(h.n)
}

// Percentile returns the value below or at which q percent of the
// recorded values lie, as the upper end of its bucket (HdrHistogram's
// "highest equivalent value") but never above the exact maximum: it is at
// least the true percentile and at most 1/128 above it. It returns 0 when
// empty.
func (h *Histogram) Percentile(q float64) int64 {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q / 100 * float64(h.n)))
	rank = max(rank, 1)
	rank = min(rank, h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			_, hi := bucketRange(i)
			return min(hi, h.max)
		}
	}
	return h.max
}

// Buckets calls f for each non-empty bucket in increasing order with its
// value range and count; the plot draws the distribution from it.
func (h *Histogram) Buckets(f func(lo, hi int64, count uint64)) {
	for i, c := range h.counts {
		if c != 0 {
			lo, hi := bucketRange(i)
			f(lo, hi, c)
		}
	}
}
