package router

import "sync/atomic"

// sketch estimates how often each subject has been matched recently, for
// the cache's admission rule (see cache). It is a count-min sketch in the
// manner of TinyLFU (Einziger, Friedman and Manes, "TinyLFU: A Highly
// Efficient Cache Admission Policy", 2017): 4-bit counters, sixteen to an
// atomic 64-bit word, in four rows of four counters each. A subject's hash
// picks one word and one counter in each row of it; the estimate is the
// least of the four, which over-counts only when every one of them is
// shared with other subjects, and a match adds one to those of the four
// that hold the least (conservative update), stopping at 15. Keeping all
// four in one word makes an increment one load and at most one
// compare-and-swap, and one cache line per lookup.
//
// Counting is relaxed: an increment whose compare-and-swap loses a race
// with another is dropped, not retried, and the halving below may lose
// increments made while it runs. The sketch only ranks subjects against
// each other, so a lost count now and then changes nothing that matters,
// and the hit path never spins. An increment that would change nothing
// (all four counters at 15, as for a hot subject) writes nothing, so hot
// subjects matched from every core do not fight over a cache line.
//
// Aging: once period increments have changed a counter, every counter is
// halved, and so is the count of increments, so that the sketch follows
// the traffic of the last few thousand matches rather than all time, and
// a subject that was hot an hour ago does not keep its place against one
// hot now.
//
// Memory is one word for every two cache slots, 4 bytes a slot (4 KiB for
// DefaultCacheSize), and at least 64 bytes.
type sketch struct {
	words  []atomic.Uint64 // a power of two long
	shift  uint            // 64 - log2(len(words))
	adds   atomic.Int64    // increments, sampled (see increment), less period/2 an aging
	period int64
}

// sketchPeriod is how many increments, per cache slot, pass between two
// agings: TinyLFU's sample size of ten times the cache size.
const sketchPeriod = 10

func newSketch(slots int) *sketch {
	n, bits := 8, uint(3)
	for 2*n < slots {
		n, bits = 2*n, bits+1
	}
	return &sketch{words: make([]atomic.Uint64, n), shift: 64 - bits, period: sketchPeriod * int64(max(slots, 1))}
}

// word returns the word that holds the counters of the subject with hash
// h. The index comes from a multiplicative mix of all of h, so that the
// subjects of one cache set (which share the low bits of h) spread over
// the sketch.
func (s *sketch) word(h uint64) *atomic.Uint64 {
	return &s.words[(h*0x9e3779b97f4a7c15)>>s.shift]
}

// counterShift returns the bit offset, in its word, of the counter of row
// i (0 to 3) for hash h: row i holds counters 4i to 4i+3, and two bits of
// h choose among them.
func counterShift(h uint64, i uint) uint {
	return 4 * (4*i + uint(h>>(40+2*i))&3)
}

// increment counts one match of the subject with hash h and returns its
// estimate, this match included.
func (s *sketch) increment(h uint64) uint64 {
	w := s.word(h)
	old := w.Load()
	if m := counterMask(h); old&m == m {
		return 15 // saturated: write nothing (see sketch)
	}
	f := estimateIn(old, h)
	// Conservative update: raise only the counters at the minimum. The
	// others already count more than this subject (other subjects that
	// share them), and leaving them be keeps the estimates of those
	// others from creeping up; it was measured to matter when many
	// subjects share a counter.
	v := old
	for i := range uint(4) {
		if sh := counterShift(h, i); (v>>sh)&15 == f {
			v += 1 << sh
		}
	}
	if !w.CompareAndSwap(old, v) {
		return f + 1 // lost to a concurrent change (see sketch)
	}
	// Count the increment for aging one time in sampleEvery, by sampleEvery:
	// the count is one word that every core would otherwise write on
	// every miss. Which increments count depends on the subject and on
	// the state of its word, so every subject's are sampled alike.
	if (v^h)*0x9e3779b97f4a7c15>>(64-4) == 0 {
		if n := s.adds.Add(sampleEvery); n >= s.period && n-sampleEvery < s.period {
			s.age()
		}
	}
	return f + 1
}

// sampleEvery is the sampling rate of the count of increments, 2^4.
const sampleEvery = 16

// counterMask returns the four counters of hash h in a word, all ones.
func counterMask(h uint64) uint64 {
	var m uint64
	for i := range uint(4) {
		m |= 15 << counterShift(h, i)
	}
	return m
}

// estimate returns how often the subject with hash h has been matched
// recently, from 0 to 15.
func (s *sketch) estimate(h uint64) uint64 {
	return estimateIn(s.word(h).Load(), h)
}

// estimateIn returns the least of the counters of hash h in word v.
func estimateIn(v, h uint64) uint64 {
	f := uint64(15)
	for i := range uint(4) {
		f = min(f, (v>>counterShift(h, i))&15)
	}
	return f
}

// age halves every counter. Only the increment that brings adds to period
// or past it calls it, so agings do not overlap.
func (s *sketch) age() {
	for i := range s.words {
		w := &s.words[i]
		for {
			v := w.Load()
			if w.CompareAndSwap(v, (v>>1)&0x7777777777777777) {
				break
			}
		}
	}
	s.adds.Add(-s.period / 2)
}
