package router

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// mixPattern returns the i-th subscription of the benchmark population:
// literal telemetry subjects, with 10% using '*' (every metric of a device,
// or one device of every site) and 1% using '>' or '#' (everything below a
// device).
func mixPattern(i int) string {
	s := telemetrySubject(i)
	switch {
	case i%100 == 50:
		if i%200 == 50 {
			return s[:strings.LastIndexByte(s, '.')] + ".>"
		}
		return s[:strings.LastIndexByte(s, '.')] + ".#"
	case i%10 == 5:
		if i%20 == 5 {
			return s[:strings.LastIndexByte(s, '.')] + ".*"
		}
		parts := strings.Split(s, ".")
		parts[1] = "*"
		return strings.Join(parts, ".")
	}
	return s
}

var (
	benchRoutersMu sync.Mutex
	benchRouters   = map[string]*Router[int]{}
)

// benchRouter returns a router holding n subscriptions of the mix, built
// once per size and cache setting.
func benchRouter(b *testing.B, n, cacheSize int) *Router[int] {
	b.Helper()
	benchRoutersMu.Lock()
	defer benchRoutersMu.Unlock()
	key := fmt.Sprint(n, "/", cacheSize)
	if r := benchRouters[key]; r != nil {
		return r
	}
	r := New[int](Options{CacheSize: cacheSize})
	for i := range n {
		if _, err := r.Insert(Subscription[int]{Pattern: mixPattern(i), Handle: i}); err != nil {
			b.Fatal(err)
		}
	}
	benchRouters[key] = r
	return r
}

// benchSubjects returns count literal subjects of the population of n,
// spread over it, so that uncached matches touch memory as real traffic
// would.
func benchSubjects(n, count int) []string {
	out := make([]string, count)
	for i := range out {
		j := (i * 7919) % n
		if j%10 == 5 || j%100 == 50 {
			j -= 1 + j%2 // a literal neighbour
			if j < 0 {
				j = 0
			}
		}
		out[i] = telemetrySubject(j)
	}
	return out
}

var benchSizes = []int{10, 10_000, 1_000_000}

// BenchmarkMatch measures Match of a literal subject. "cached" cycles over
// 64 hot subjects, which stay in the cache; "uncached" has the cache off and
// cycles over 4096 subjects spread over the population.
func BenchmarkMatch(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("subs=%d/cached", n), func(b *testing.B) {
			r := benchRouter(b, n, 0)
			benchMatch(b, r, benchSubjects(n, 64))
		})
		b.Run(fmt.Sprintf("subs=%d/uncached", n), func(b *testing.B) {
			r := benchRouter(b, n, -1)
			benchMatch(b, r, benchSubjects(n, 4096))
		})
	}
}

func benchMatch(b *testing.B, r *Router[int], subjects []string) {
	var res Result[int]
	for _, s := range subjects {
		r.Match(s, &res) // warm the cache and res
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := r.Match(subjects[i%len(subjects)], &res); err != nil {
			b.Fatal(err)
		}
		if len(res.Subs) == 0 {
			b.Fatal("no match")
		}
	}
}

// BenchmarkMatchParallel runs matches on every core at once against the
// million-subscription router, as the event loops do.
func BenchmarkMatchParallel(b *testing.B) {
	for _, tc := range []struct {
		name  string
		cache int
		hot   int
	}{{"cached", 0, 64}, {"uncached", -1, 4096}} {
		b.Run(tc.name, func(b *testing.B) {
			r := benchRouter(b, 1_000_000, tc.cache)
			subjects := benchSubjects(1_000_000, tc.hot)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				var res Result[int]
				i := 0
				for pb.Next() {
					r.Match(subjects[i%len(subjects)], &res)
					i++
				}
			})
		})
	}
}

// BenchmarkMatchWhileWriting measures matches on one goroutine while
// another inserts and removes wildcard subscriptions without pause, the
// worst case for the cache (each change sweeps it) and for the read lock.
func BenchmarkMatchWhileWriting(b *testing.B) {
	r := benchRouter(b, 10_000, 0)
	subjects := benchSubjects(10_000, 64)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			s := Subscription[int]{Pattern: "site.0.device.*.temp", Handle: -1 - i%16}
			r.Insert(s)
			r.Remove(s)
		}
	}()
	var res Result[int]
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r.Match(subjects[i%len(subjects)], &res)
	}
	b.StopTimer()
	close(stop)
	<-done
}

// BenchmarkInsert and BenchmarkRemove measure subscription changes on a
// router that already holds 10,000 subscriptions and has a warm cache.
func BenchmarkInsert(b *testing.B) {
	for _, kind := range []string{"literal", "wildcard"} {
		b.Run(kind, func(b *testing.B) {
			r, subs := churnSetup(b, kind)
			b.ReportAllocs()
			b.ResetTimer()
			for _, s := range subs {
				r.Insert(s)
			}
		})
	}
}

func BenchmarkRemove(b *testing.B) {
	for _, kind := range []string{"literal", "wildcard"} {
		b.Run(kind, func(b *testing.B) {
			r, subs := churnSetup(b, kind)
			for _, s := range subs {
				r.Insert(s)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for _, s := range subs {
				r.Remove(s)
			}
		})
	}
}

func churnSetup(b *testing.B, kind string) (*Router[int], []Subscription[int]) {
	r := New[int](Options{})
	for i := range 10_000 {
		r.Insert(Subscription[int]{Pattern: mixPattern(i), Handle: i})
	}
	var res Result[int]
	for _, s := range benchSubjects(10_000, DefaultCacheSize) {
		r.Match(s, &res)
	}
	subs := make([]Subscription[int], b.N)
	for i := range subs {
		p := telemetrySubject(10_000 + i)
		if kind == "wildcard" {
			p = strings.Replace(p, "device", "*", 1)
		}
		subs[i] = Subscription[int]{Pattern: p, Handle: -i - 1}
	}
	return r, subs
}

// BenchmarkMemoryPerSubscription reports the heap the trie holds per
// literal subscription of the telemetry tree, for a million of them.
func BenchmarkMemoryPerSubscription(b *testing.B) {
	const n = 1_000_000
	patterns := make([]string, n)
	for i := range patterns {
		patterns[i] = telemetrySubject(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		before := heapInUse()
		r := New[int](Options{})
		for i, p := range patterns {
			r.Insert(Subscription[int]{Pattern: p, Handle: i})
		}
		after := heapInUse()
		b.ReportMetric(float64(after-before)/n, "bytes/sub")
		runtime.KeepAlive(r)
	}
	runtime.KeepAlive(patterns)
}

// BenchmarkMatchNATSTree matches on a tree of the shape nats-server's
// sublist benchmarks use (every sequence of one to five tokens drawn from
// eight words, 37,448 subscriptions, plus three wildcards), so that the
// figures can be set beside theirs.
func BenchmarkMatchNATSTree(b *testing.B) {
	words := []string{"synadia", "nats", "jetstream", "nkeys", "jwt", "deny", "auth", "drain"}
	r := New[int](Options{})
	n := 0
	var grow func(prefix string, depth int)
	grow = func(prefix string, depth int) {
		for _, w := range words {
			s := w
			if prefix != "" {
				s = prefix + "." + w
			}
			r.Insert(Subscription[int]{Pattern: s, Handle: n})
			n++
			if depth < 5 {
				grow(s, depth+1)
			}
		}
	}
	grow("", 1)
	for _, p := range []string{"cloud.>", "cloud.nats.component.>", "cloud.*.*.nkeys.*"} {
		r.Insert(Subscription[int]{Pattern: p, Handle: n})
		n++
	}
	for _, subject := range []string{"synadia", "synadia.nats.jetstream.nkeys", "cloud.nats.component.router", "synadia.nats.jetstream.nkeys.ZZZZ"} {
		b.Run(subject, func(b *testing.B) {
			var res Result[int]
			r.Match(subject, &res)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				r.Match(subject, &res)
			}
		})
	}
}

// workingSet returns a router holding n literal subscriptions, one for each
// device subject site.1.device.<i>.temp, and the wildcard
// "site.*.device.*.temp", with the given cache size; and the n subjects as
// a gateway holds them, in byte slices. It is the edge gateway's traffic:
// thousands of devices, each publishing on its own subject.
func workingSet(b *testing.B, n, cacheSize int) (*Router[int], [][]byte) {
	b.Helper()
	r := New[int](Options{CacheSize: cacheSize})
	subjects := make([][]byte, n)
	for i := range subjects {
		subjects[i] = fmt.Appendf(nil, "site.1.device.%d.temp", i)
		if _, err := r.Insert(Subscription[int]{Pattern: string(subjects[i]), Handle: i}); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := r.Insert(Subscription[int]{Pattern: "site.*.device.*.temp", Handle: -1}); err != nil {
		b.Fatal(err)
	}
	return r, subjects
}

// benchWorkingSet matches the subjects in seq, in order and round robin,
// and reports the cache's hit rate over one more pass of seq after the
// timed loop (so that counting hits costs the timed loop nothing).
func benchWorkingSet(b *testing.B, r *Router[int], seq [][]byte) {
	var res Result[int]
	for range 2 {
		for _, s := range seq {
			r.MatchBytes(s, &res) // warm the cache and res
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := r.MatchBytes(seq[i%len(seq)], &res); err != nil {
			b.Fatal(err)
		}
		if len(res.Subs) != 2 {
			b.Fatalf("%d subscriptions match, want 2", len(res.Subs))
		}
	}
	b.StopTimer()
	hits := 0
	for _, s := range seq {
		if r.cache != nil && r.cache.get(string(s), r.cache.hash(string(s))) != nil {
			hits++
		}
		r.MatchBytes(s, &res)
	}
	b.ReportMetric(100*float64(hits)/float64(len(seq)), "hit%")
}

// cacheSettings are the two sides of every working-set benchmark: the
// default cache, and none, measured in the same run so that the cache can
// be held to never being slower than no cache.
var cacheSettings = []struct {
	name string
	size int
}{{"cache", 0}, {"nocache", -1}}

// BenchmarkMatchWorkingSetLargerThanCache matches n distinct device
// subjects round robin: 512 fit the default cache, 10,000 are ten times
// larger than it, where every match misses and a cache that filled on
// every miss would allocate and evict on every match.
func BenchmarkMatchWorkingSetLargerThanCache(b *testing.B) {
	for _, n := range []int{512, 10_000} {
		for _, c := range cacheSettings {
			b.Run(fmt.Sprintf("n=%d/%s", n, c.name), func(b *testing.B) {
				r, subjects := workingSet(b, n, c.size)
				benchWorkingSet(b, r, subjects)
			})
		}
	}
}

// BenchmarkMatchWorkingSetSkewed matches 10,000 device subjects drawn
// from a Zipf distribution (s = 1.1, fixed seed), where the 1,024 most
// frequent subjects carry about 85% of the traffic: the cache should keep
// those and leave the long tail to the trie.
func BenchmarkMatchWorkingSetSkewed(b *testing.B) {
	const n = 10_000
	for _, c := range cacheSettings {
		b.Run(fmt.Sprintf("n=%d/%s", n, c.name), func(b *testing.B) {
			r, subjects := workingSet(b, n, c.size)
			z := rand.NewZipf(rand.New(rand.NewPCG(1, 2)), 1.1, 1, n-1)
			seq := make([][]byte, 1<<16)
			for i := range seq {
				seq[i] = subjects[z.Uint64()]
			}
			benchWorkingSet(b, r, seq)
		})
	}
}
