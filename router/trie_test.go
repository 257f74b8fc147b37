package router

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
)

// refMatch is the reference matcher the trie is tested against: the
// grammar of doc.go written as plainly as possible.
func refMatch(pattern, subject string, skipDollar bool) bool {
	p, s := refSplit(pattern), refSplit(subject)
	if skipDollar && len(p) > 0 && isWildcard(p[0]) && len(s) > 0 && strings.HasPrefix(s[0], "$") {
		return false
	}
	return refRec(p, s)
}

func refSplit(x string) []string {
	if x == "" {
		return nil
	}
	return strings.Split(x, ".")
}

func refRec(p, s []string) bool {
	if len(p) == 0 {
		return len(s) == 0
	}
	switch p[0] {
	case "#":
		for k := 0; k <= len(s); k++ {
			if refRec(p[1:], s[k:]) {
				return true
			}
		}
		return false
	case ">":
		return len(s) > 0
	case "*":
		return len(s) > 0 && refRec(p[1:], s[1:])
	}
	return len(s) > 0 && s[0] == p[0] && refRec(p[1:], s[1:])
}

// matched returns the handles of res as a sorted list, queue members as
// "group:handle".
func matched(res *Result[string]) []string {
	var out []string
	out = append(out, res.Subs...)
	for _, g := range res.Groups {
		for _, m := range g.Members {
			out = append(out, g.Name+":"+m)
		}
	}
	slices.Sort(out)
	return out
}

func mustInsert(t testing.TB, r *Router[string], pattern, queue, h string) {
	t.Helper()
	if _, err := r.Insert(Subscription[string]{Pattern: pattern, Queue: queue, Handle: h}); err != nil {
		t.Fatal(err)
	}
}

func matchList(t testing.TB, r *Router[string], subject string) []string {
	t.Helper()
	var res Result[string]
	if err := r.Match(subject, &res); err != nil {
		t.Fatalf("Match(%q): %v", subject, err)
	}
	return matched(&res)
}

func TestMatchNATS(t *testing.T) {
	subs := map[string]string{
		"foo":         "foo",
		"foo.bar":     "foo.bar",
		"foo.*":       "foo.*",
		"foo.>":       "foo.>",
		"*.bar":       "*.bar",
		"*.*":         "*.*",
		">":           "all",
		"foo.*.baz":   "foo.*.baz",
		"foo.bar.>":   "foo.bar.>",
		"*.bar.*":     "*.bar.*",
		"$SYS.>":      "$SYS.>",
		"foo*.bar":    "foo*.bar", // '*' inside a token is a literal
		"a.b.c.d.e.f": "deep",
	}
	tests := []struct {
		subject string
		want    []string
	}{
		{"foo", []string{"all", "foo"}},
		{"foo.bar", []string{"*.*", "*.bar", "all", "foo.*", "foo.>", "foo.bar"}},
		{"foo.baz", []string{"*.*", "all", "foo.*", "foo.>"}},
		{"foo.bar.baz", []string{"*.bar.*", "all", "foo.*.baz", "foo.>", "foo.bar.>"}},
		{"foo.bar.baz.qux", []string{"all", "foo.>", "foo.bar.>"}},
		{"bar", []string{"all"}},
		{"foo*.bar", []string{"*.*", "*.bar", "all", "foo*.bar"}},
		{"fooo.bar", []string{"*.*", "*.bar", "all"}},
		{"$SYS.conn", []string{"$SYS.>", "*.*", "all"}}, // no '$' rule for NATS patterns
		{"a.b.c.d.e.f", []string{"all", "deep"}},
		{"a.b.c.d.e", []string{"all"}},
		{"", nil}, // '>' needs at least one token
	}
	for _, cache := range []int{-1, 0} {
		r := New[string](Options{CacheSize: cache})
		for p, h := range subs {
			mustInsert(t, r, p, "", h)
		}
		for pass := 0; pass < 2; pass++ { // the second pass hits the cache
			for _, tc := range tests {
				got := matchList(t, r, tc.subject)
				if !slices.Equal(got, tc.want) {
					t.Errorf("cache %d pass %d: Match(%q) = %q, want %q", cache, pass, tc.subject, got, tc.want)
				}
			}
		}
	}
}

// TestMatchAMQPTopicExchange is the RabbitMQ topic exchange tutorial: Q1 is
// bound with "*.orange.*", Q2 with "*.*.rabbit" and "lazy.#".
func TestMatchAMQPTopicExchange(t *testing.T) {
	r := New[string](Options{})
	mustInsert(t, r, "*.orange.*", "", "Q1")
	mustInsert(t, r, "*.*.rabbit", "", "Q2")
	mustInsert(t, r, "lazy.#", "", "Q2")
	tests := []struct {
		key  string
		want []string
	}{
		{"quick.orange.rabbit", []string{"Q1", "Q2"}},
		{"lazy.orange.elephant", []string{"Q1", "Q2"}},
		{"quick.orange.fox", []string{"Q1"}},
		{"lazy.brown.fox", []string{"Q2"}},
		{"lazy.pink.rabbit", []string{"Q2"}}, // two bindings of Q2, delivered once
		{"quick.brown.fox", nil},
		{"orange", nil},
		{"quick.orange.new.rabbit", nil},
		{"lazy.orange.new.rabbit", []string{"Q2"}},
		{"lazy", []string{"Q2"}}, // '#' matches zero words
	}
	for pass := 0; pass < 2; pass++ {
		for _, tc := range tests {
			subject, err := SubjectFromAMQPRoutingKey(tc.key)
			if err != nil {
				t.Fatal(err)
			}
			if got := matchList(t, r, subject); !slices.Equal(got, tc.want) {
				t.Errorf("pass %d: %q routes to %q, want %q", pass, tc.key, got, tc.want)
			}
		}
	}
}

func TestMatchHashAnywhere(t *testing.T) {
	r := New[string](Options{CacheSize: -1})
	for _, p := range []string{"#", "#.error", "kern.#.critical", "a.#.b.#", "#.#.x", "a.#.>", ""} {
		mustInsert(t, r, p, "", p)
	}
	tests := []struct {
		subject string
		want    []string
	}{
		{"", []string{"", "#"}},
		{"error", []string{"#", "#.error"}},
		{"app.db.error", []string{"#", "#.error"}},
		{"kern.critical", []string{"#", "kern.#.critical"}},
		{"kern.disk.sda.critical", []string{"#", "kern.#.critical"}},
		{"kern.critical.x", []string{"#", "#.#.x"}},
		{"a.b", []string{"#", "a.#.>", "a.#.b.#"}},
		{"a.x.b.y.b", []string{"#", "a.#.>", "a.#.b.#"}},
		{"a", []string{"#"}},
		{"x", []string{"#", "#.#.x"}},
	}
	for _, tc := range tests {
		if got := matchList(t, r, tc.subject); !slices.Equal(got, tc.want) {
			t.Errorf("Match(%q) = %q, want %q", tc.subject, got, tc.want)
		}
	}
}

func TestMatchDedupOneHandle(t *testing.T) {
	r := New[string](Options{CacheSize: -1})
	// One handle on overlapping patterns, and more than dedupScan other
	// handles so that the map path is taken too.
	for _, p := range []string{"a.b", "a.*", "a.>", "#", "#.b", "a.#.b"} {
		mustInsert(t, r, p, "", "h")
		mustInsert(t, r, p, "q", "m")
	}
	for i := range 2 * dedupScan {
		mustInsert(t, r, "a.*", "", fmt.Sprint("w", i))
		mustInsert(t, r, "a.b", "", fmt.Sprint("w", i))
	}
	var res Result[string]
	if err := r.Match("a.b", &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Subs) != 1+2*dedupScan || len(res.Groups) != 1 || len(res.Groups[0].Members) != 1 {
		t.Fatalf("got %d subs, groups %+v; want %d subs and one group of one", len(res.Subs), res.Groups, 1+2*dedupScan)
	}
}

func TestInsertRemove(t *testing.T) {
	r := New[string](Options{})
	sub := Subscription[string]{Pattern: "a.*.c", Handle: "x"}
	if ok, err := r.Insert(sub); !ok || err != nil {
		t.Fatalf("Insert = %v, %v", ok, err)
	}
	if ok, err := r.Insert(sub); ok || err != nil {
		t.Fatalf("second Insert = %v, %v; want false, nil", ok, err)
	}
	if ok, _ := r.Insert(Subscription[string]{Pattern: "a.*.c", Queue: "g", Handle: "x"}); !ok {
		t.Fatal("the same handle in a queue group is another subscription")
	}
	if n := r.Count(); n != 2 {
		t.Fatalf("Count = %d, want 2", n)
	}
	if got := matchList(t, r, "a.b.c"); !slices.Equal(got, []string{"g:x", "x"}) {
		t.Fatalf("Match = %q", got)
	}
	if !r.Remove(sub) || r.Remove(sub) {
		t.Fatal("Remove must report true once, then false")
	}
	if r.Remove(Subscription[string]{Pattern: "a..c", Handle: "x"}) {
		t.Fatal("Remove of an invalid pattern must be a no-op")
	}
	if got := matchList(t, r, "a.b.c"); !slices.Equal(got, []string{"g:x"}) {
		t.Fatalf("after Remove, Match = %q", got)
	}
	r.Remove(Subscription[string]{Pattern: "a.*.c", Queue: "g", Handle: "x"})
	if n := r.Count(); n != 0 || !r.root.empty() {
		t.Fatalf("Count = %d, root empty %v; want 0, true", n, r.root.empty())
	}
	// Equivalent patterns are one subscription.
	mustInsert(t, r, "a.#.#.>", "", "y")
	if !r.Remove(Subscription[string]{Pattern: "a.>", Handle: "y"}) {
		t.Fatal("a.#.#.> and a.> must be the same pattern")
	}
}

func TestInsertInvalid(t *testing.T) {
	r := New[string](Options{})
	for _, p := range []string{".", "a.", ".a", "a..b", "a.>.b", "> ", "a b", "a\tb", "\x7f"} {
		if _, err := r.Insert(Subscription[string]{Pattern: p}); !errors.Is(err, ErrInvalidPattern) {
			t.Errorf("Insert(%q) error = %v, want ErrInvalidPattern", p, err)
		}
	}
	if _, err := r.Insert(Subscription[string]{Pattern: "a", Queue: "bad queue"}); !errors.Is(err, ErrInvalidQueue) {
		t.Errorf("Insert with queue %q error = %v", "bad queue", err)
	}
	var res Result[string]
	for _, s := range []string{".", "a.", ".a", "a..b", "a.*", "a.>", "#", "a.#.b"} {
		if err := r.Match(s, &res); err != ErrInvalidSubject {
			t.Errorf("Match(%q) error = %v, want ErrInvalidSubject", s, err)
		}
		if err := ValidateSubject(s); !errors.Is(err, ErrInvalidSubject) {
			t.Errorf("ValidateSubject(%q) = %v", s, err)
		}
	}
	if r.Count() != 0 {
		t.Fatal("failed inserts must not count")
	}
}

// TestMaxTokens: subjects and patterns of MaxTokens tokens work, one more
// is refused everywhere, so that no subscription and no publish can make a
// match cost the product of thousands of tokens.
func TestMaxTokens(t *testing.T) {
	deep := func(tok string, n int) string { return strings.TrimSuffix(strings.Repeat(tok+".", n), ".") }
	r := New[string](Options{})
	for _, p := range []string{deep("a", MaxTokens), deep("#.*", MaxTokens/2), deep("*", MaxTokens-1) + ".>"} {
		if _, err := r.Insert(Subscription[string]{Pattern: p, Handle: p}); err != nil {
			t.Fatalf("Insert of %d tokens: %v", strings.Count(p, ".")+1, err)
		}
	}
	for _, p := range []string{deep("a", MaxTokens+1), deep("#.*", MaxTokens/2) + ".#", deep("#.a", 5000)} {
		if _, err := r.Insert(Subscription[string]{Pattern: p}); !errors.Is(err, ErrInvalidPattern) {
			t.Errorf("Insert of %d tokens: %v, want ErrInvalidPattern", strings.Count(p, ".")+1, err)
		}
	}
	var res Result[string]
	if err := r.Match(deep("a", MaxTokens), &res); err != nil || len(res.Subs) != 3 {
		t.Fatalf("Match of %d tokens: %v, %d subscriptions", MaxTokens, err, len(res.Subs))
	}
	long := deep("a", MaxTokens+1)
	if err := r.Match(long, &res); err != ErrInvalidSubject {
		t.Errorf("Match of %d tokens: %v, want ErrInvalidSubject", MaxTokens+1, err)
	}
	if err := ValidateSubject(long); !errors.Is(err, ErrInvalidSubject) {
		t.Errorf("ValidateSubject of %d tokens: %v", MaxTokens+1, err)
	}
	if err := ValidateSubject(deep("a", MaxTokens)); err != nil {
		t.Errorf("ValidateSubject of %d tokens: %v", MaxTokens, err)
	}
}

func TestSkipDollar(t *testing.T) {
	r := New[string](Options{})
	for _, p := range []string{"#", "*.monitor.Clients", "$SYS.#", "*", ">"} {
		if _, err := r.Insert(Subscription[string]{Pattern: p, SkipDollar: true, Handle: p}); err != nil {
			t.Fatal(err)
		}
	}
	mustInsert(t, r, ">", "", "nats")
	tests := []struct {
		subject string
		want    []string
	}{
		{"$SYS.monitor.Clients", []string{"$SYS.#", "nats"}},
		{"$SYS", []string{"$SYS.#", "nats"}},
		{"x.monitor.Clients", []string{"#", "*.monitor.Clients", ">", "nats"}},
		{"x", []string{"#", "*", ">", "nats"}},
		{"a$", []string{"#", "*", ">", "nats"}},
	}
	for pass := 0; pass < 2; pass++ {
		for _, tc := range tests {
			if got := matchList(t, r, tc.subject); !slices.Equal(got, tc.want) {
				t.Errorf("Match(%q) = %q, want %q", tc.subject, got, tc.want)
			}
		}
	}
	if !r.Remove(Subscription[string]{Pattern: "#", SkipDollar: true, Handle: "#"}) {
		t.Fatal("Remove with SkipDollar")
	}
}

func TestCacheInvalidation(t *testing.T) {
	r := New[string](Options{CacheSize: 64})
	mustInsert(t, r, "a.b", "", "lit")
	for _, s := range []string{"a.b", "a.c", "x.y", "a.b.c"} {
		matchList(t, r, s)
	}
	if n := r.CachedSubjects(); n != 4 {
		t.Fatalf("cached %d subjects, want 4", n)
	}
	// A literal pattern drops only its own subject.
	mustInsert(t, r, "a.c", "", "lit2")
	if n := r.CachedSubjects(); n != 3 {
		t.Fatalf("after literal insert cached %d subjects, want 3", n)
	}
	if got := matchList(t, r, "a.c"); !slices.Equal(got, []string{"lit2"}) {
		t.Fatalf("Match(a.c) = %q", got)
	}
	// A wildcard pattern drops the subjects it matches and no others.
	mustInsert(t, r, "a.*", "", "star")
	if n := r.CachedSubjects(); n != 2 {
		t.Fatalf("after wildcard insert cached %d subjects, want 2 (x.y, a.b.c)", n)
	}
	if got := matchList(t, r, "a.b"); !slices.Equal(got, []string{"lit", "star"}) {
		t.Fatalf("Match(a.b) = %q", got)
	}
	r.Remove(Subscription[string]{Pattern: "a.*", Handle: "star"})
	if got := matchList(t, r, "a.b"); !slices.Equal(got, []string{"lit"}) {
		t.Fatalf("after Remove, Match(a.b) = %q", got)
	}
	// The cache is bounded.
	for i := range 1000 {
		matchList(t, r, fmt.Sprint("s.", i))
	}
	if n := r.CachedSubjects(); n > 64 {
		t.Fatalf("cache holds %d subjects, bound is 64", n)
	}
}

func TestQueuePick(t *testing.T) {
	r := New[string](Options{})
	for _, m := range []string{"w1", "w2", "w3"} {
		mustInsert(t, r, "jobs.*", "workers", m)
	}
	var res Result[string]
	counts := map[string]int{}
	for range 300 {
		if err := r.Match("jobs.new", &res); err != nil {
			t.Fatal(err)
		}
		m, ok := res.Groups[0].Pick(nil)
		if !ok {
			t.Fatal("Pick found no member")
		}
		counts[m]++
	}
	for _, m := range []string{"w1", "w2", "w3"} {
		if counts[m] != 100 {
			t.Fatalf("round robin uneven: %v", counts)
		}
	}
	full := func(m string) bool { return m != "w2" }
	for range 10 {
		if m, ok := res.Groups[0].Pick(full); !ok || m != "w2" {
			t.Fatalf("Pick skipping full members = %q, %v", m, ok)
		}
	}
	// With one member full, the others still take strict turns.
	seq := ""
	for range 6 {
		m, _ := res.Groups[0].Pick(func(m string) bool { return m == "w1" })
		seq += m
	}
	if seq != "w2w3w2w3w2w3" && seq != "w3w2w3w2w3w2" {
		t.Fatalf("turns with w1 full: %s", seq)
	}
	if _, ok := res.Groups[0].Pick(func(string) bool { return true }); ok {
		t.Fatal("Pick must fail when every member is full")
	}
	var empty Group[string]
	if _, ok := empty.Pick(nil); ok {
		t.Fatal("Pick on an empty group")
	}
}

func TestConcurrentMatchInsertRemove(t *testing.T) {
	r := New[int](Options{CacheSize: 256})
	const writers, readers, rounds = 2, 4, 2000
	patterns := []string{"a.b.c", "a.*.c", "a.>", "#.c", "a.b.*", "x.y"}
	subjects := []string{"a.b.c", "a.x.c", "a.b.d", "x.y", "q"}
	// Handle 1000 stays subscribed to "a.b.c" the whole time, so every
	// match of it must report it.
	if _, err := r.Insert(Subscription[int]{Pattern: "a.b.c", Handle: 1000}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				s := Subscription[int]{Pattern: patterns[i%len(patterns)], Handle: w*10 + i%7}
				if i%3 == 0 {
					s.Queue = "g"
				}
				r.Insert(s)
				if i%2 == 0 {
					r.Remove(s)
				}
			}
		}()
	}
	errs := make(chan error, readers)
	for g := range readers {
		go func() {
			var res Result[int]
			for i := 0; ; i++ {
				select {
				case <-stop:
					errs <- nil
					return
				default:
				}
				s := subjects[(g+i)%len(subjects)]
				if err := r.Match(s, &res); err != nil {
					errs <- err
					return
				}
				if s == "a.b.c" && !slices.Contains(res.Subs, 1000) {
					errs <- fmt.Errorf("match of a.b.c lost the permanent subscription: %v", res.Subs)
					return
				}
				for _, grp := range res.Groups {
					grp.Pick(nil)
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	for range readers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	// Once quiet, the cache must agree with the trie.
	var cached, fresh Result[int]
	for _, s := range subjects {
		r.Match(s, &cached)
		fresh.reset()
		r.mu.RLock()
		r.match(s, &fresh)
		r.mu.RUnlock()
		a, b := slices.Sorted(slices.Values(cached.Subs)), slices.Sorted(slices.Values(fresh.Subs))
		if !slices.Equal(a, b) || len(cached.Groups) != len(fresh.Groups) {
			t.Fatalf("stale cache for %q: cached %v, trie %v", s, a, b)
		}
	}
}

func TestMatchDoesNotAllocate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cache int
	}{{"uncached", -1}, {"cached", 0}} {
		t.Run(tc.name, func(t *testing.T) {
			r := New[int](Options{CacheSize: tc.cache})
			for i := range 1000 {
				r.Insert(Subscription[int]{Pattern: telemetrySubject(i), Handle: i})
			}
			for _, p := range []string{"site.*.device.*.temp", "site.0.#", "site.0.device.>", "#.temp"} {
				r.Insert(Subscription[int]{Pattern: p, Handle: -1})
				r.Insert(Subscription[int]{Pattern: p, Queue: "q", Handle: -2})
			}
			var res Result[int]
			subject := telemetrySubject(0)
			r.Match(subject, &res) // warm up res and the cache
			allocs := testing.AllocsPerRun(1000, func() {
				if err := r.Match(subject, &res); err != nil {
					t.Fatal(err)
				}
				res.Groups[0].Pick(nil)
			})
			if allocs != 0 {
				t.Fatalf("Match allocates %.1f times per call", allocs)
			}
			// -1 and -2 match through all four patterns, once each.
			if len(res.Subs) != 2 || len(res.Groups) != 1 || len(res.Groups[0].Members) != 1 {
				t.Fatalf("unexpected result %+v", res)
			}
		})
	}
}

// telemetrySubject returns the i-th subject of a realistic telemetry tree:
// site.<s>.device.<d>.<metric>, ten metrics a device, a thousand devices a
// site.
func telemetrySubject(i int) string {
	return fmt.Sprintf("site.%d.device.%d.%s", i/10000, (i/10)%1000, metrics[i%10])
}

var metrics = [10]string{"temp", "hum", "volt", "amp", "rssi", "batt", "press", "co2", "lux", "state"}

func heapInUse() uint64 {
	var ms runtime.MemStats
	for range 3 {
		runtime.GC()
	}
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestChurnFreesMemory subscribes and unsubscribes a million subscriptions
// and checks that the trie gives the memory back.
func TestChurnFreesMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("a million subscriptions")
	}
	r := New[int](Options{})
	// A resident population, so that the churn happens under live nodes
	// whose child maps must shrink again.
	for i := range 10000 {
		r.Insert(Subscription[int]{Pattern: telemetrySubject(i * 100), Handle: i})
	}
	var res Result[int]
	r.Match(telemetrySubject(0), &res)
	subjects := make([]string, 1_000_000)
	for i := range subjects {
		subjects[i] = telemetrySubject(i)
	}
	before := heapInUse()
	// Pairs in bulk: all subscribed, then all unsubscribed.
	for i, s := range subjects {
		r.Insert(Subscription[int]{Pattern: s, Queue: queueFor(i), Handle: -i - 1})
	}
	peak := heapInUse()
	for i, s := range subjects {
		r.Remove(Subscription[int]{Pattern: s, Queue: queueFor(i), Handle: -i - 1})
	}
	// And pairs one at a time, with wildcards.
	for i := range 100_000 {
		s := Subscription[int]{Pattern: strings.Replace(subjects[i], "device", "*", 1), Handle: i}
		r.Insert(s)
		r.Remove(s)
	}
	after := heapInUse()
	runtime.KeepAlive(subjects)
	if r.Count() != 10000 {
		t.Fatalf("Count = %d, want 10000", r.Count())
	}
	t.Logf("heap before %d KiB, at peak %d KiB, after %d KiB", before>>10, peak>>10, after>>10)
	// Tolerance: 256 KiB of noise, against a peak over 100 MiB.
	if after > before+256<<10 {
		t.Fatalf("churn leaked %d KiB", (after-before)>>10)
	}
}

func queueFor(i int) string {
	if i%10 == 0 {
		return "g"
	}
	return ""
}
