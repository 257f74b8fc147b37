package router

import (
	"fmt"
	"testing"
)

// TestMatchLargeWorkingSetDoesNotAllocate matches ten times as many
// distinct subjects as the cache holds, round robin, the load of an edge
// gateway with a subject per device. Once the cache has filled, the
// admission rule must refuse every missed subject, so no match allocates.
func TestMatchLargeWorkingSetDoesNotAllocate(t *testing.T) {
	r := New[int](Options{})
	subjects := make([][]byte, 10*DefaultCacheSize)
	for i := range subjects {
		subjects[i] = fmt.Appendf(nil, "site.1.device.%d.temp", i)
		mustInsertInt(t, r, string(subjects[i]), i)
	}
	mustInsertInt(t, r, "site.*.device.*.temp", -1)
	var res Result[int]
	pass := func() {
		for _, s := range subjects {
			if err := r.MatchBytes(s, &res); err != nil || len(res.Subs) != 2 {
				t.Fatalf("MatchBytes(%s) = %v, %v", s, res.Subs, err)
			}
		}
	}
	pass() // fill the cache
	pass()
	// Measured a pass at a time, not a match at a time: AllocsPerRun
	// rounds down, and a check per match would pass a cache that still
	// admitted (and allocated) on one match in a hundred.
	for range 3 {
		if allocs := testing.AllocsPerRun(1, pass); allocs != 0 {
			t.Fatalf("a pass of %d matches allocates %.0f times", len(subjects), allocs)
		}
	}
	if n := r.CachedSubjects(); n < DefaultCacheSize*9/10 {
		t.Fatalf("cache holds %d subjects; the refused ones must not empty it", n)
	}
}

// TestCacheAdmission pins down the admission rule on a cache of one set:
// free ways admit anything, a subject matched no more often than the
// residents is refused, and one matched clearly more often evicts the
// least often matched resident.
func TestCacheAdmission(t *testing.T) {
	r := New[int](Options{CacheSize: ways})
	for i := range 2 * ways {
		mustInsertInt(t, r, fmt.Sprint("s.", i), i)
	}
	var res Result[int]
	cached := func(s string) bool { return r.cache.get(s, r.cache.hash(s)) != nil }
	match := func(s string, times int) {
		for range times {
			if err := r.Match(s, &res); err != nil || len(res.Subs) != 1 {
				t.Fatalf("Match(%s) = %v, %v", s, res.Subs, err)
			}
		}
	}
	for i := range ways {
		match(fmt.Sprint("s.", i), 1)
	}
	for i := range ways {
		if s := fmt.Sprint("s.", i); !cached(s) {
			t.Fatalf("%s not admitted into a free way", s)
		}
	}
	// Hits count every time: s.1 and s.3 become warm, s.0 and s.2 stay
	// cold.
	match("s.1", 8)
	match("s.3", 8)
	// As often as a resident: refused, every time.
	match(fmt.Sprint("s.", ways), 2)
	if cached(fmt.Sprint("s.", ways)) || r.CachedSubjects() != ways {
		t.Fatalf("a subject no more frequent than the residents was admitted")
	}
	// Clearly more often: admitted in place of a cold resident, within
	// a few dozen misses (one in missSample counts).
	hot := fmt.Sprint("s.", ways+1)
	for n := 0; !cached(hot); n++ {
		if n == 8*missSample*(admitMargin+1) {
			t.Fatalf("a hot subject was refused %d times", n)
		}
		match(hot, 1)
	}
	if !cached("s.1") || !cached("s.3") {
		t.Fatalf("the hot subject evicted a warm resident, not a cold one")
	}
	if r.CachedSubjects() != ways {
		t.Fatalf("cached %d subjects, want %d", r.CachedSubjects(), ways)
	}
}

// TestSketch checks the counting, saturation and aging of the frequency
// sketch.
func TestSketch(t *testing.T) {
	s := newSketch(DefaultCacheSize)
	if got, want := len(s.words)*8, 4<<10; got != want {
		t.Fatalf("sketch of the default cache is %d bytes, documented as %d", got, want)
	}
	if got := len(newSketch(4).words); got != 8 {
		t.Fatalf("sketch of a 4-slot cache has %d words, want the minimum 8", got)
	}
	const h = 0x0123456789abcdef
	for i := range 20 {
		s.increment(h)
		if got, want := s.estimate(h), uint64(min(i+1, 15)); got != want {
			t.Fatalf("after %d increments estimate = %d, want %d", i+1, got, want)
		}
	}
	s.age()
	if got := s.estimate(h); got != 7 {
		t.Fatalf("after aging estimate = %d, want 7", got)
	}
	// Aging comes by itself once about period increments have counted.
	s = newSketch(16)
	for range 6 {
		s.increment(h)
	}
	for i := range 2 * s.period {
		s.increment(uint64(i+1) * 0x9e3779b97f4a7c15)
		if s.estimate(h) < 6 {
			if i < s.period/2 {
				t.Fatalf("aged after %d increments, period is %d", i, s.period)
			}
			return
		}
	}
	t.Fatalf("no aging after %d increments, period is %d", 2*s.period, s.period)
}

func mustInsertInt(t *testing.T, r *Router[int], pattern string, h int) {
	t.Helper()
	if _, err := r.Insert(Subscription[int]{Pattern: pattern, Handle: h}); err != nil {
		t.Fatal(err)
	}
}
