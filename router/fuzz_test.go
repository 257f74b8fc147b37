package router

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// fuzzInput hands out small numbers from the fuzzer's bytes, then zeros.
type fuzzInput struct{ data []byte }

func (in *fuzzInput) next(n int) int {
	if len(in.data) == 0 {
		return 0
	}
	b := in.data[0]
	in.data = in.data[1:]
	return int(b) % n
}

var (
	fuzzPatternTokens = []string{"a", "b", "$c", "*", "#", ">"}
	fuzzSubjectTokens = []string{"a", "b", "$c"}
)

func (in *fuzzInput) pattern() string {
	n := in.next(5)
	toks := make([]string, n)
	for i := range toks {
		toks[i] = fuzzPatternTokens[in.next(len(fuzzPatternTokens))]
		if toks[i] == ">" && i != n-1 {
			toks[i] = "*"
		}
	}
	return strings.Join(toks, ".")
}

func (in *fuzzInput) subject() string {
	toks := make([]string, in.next(6))
	for i := range toks {
		toks[i] = fuzzSubjectTokens[in.next(len(fuzzSubjectTokens))]
	}
	return strings.Join(toks, ".")
}

// normalised returns the pattern as the router stores it.
func normalised(p string) string {
	toks, _, err := parsePattern(p, nil)
	if err != nil {
		panic(err)
	}
	return strings.Join(toks, ".")
}

// FuzzMatchDifferential builds a random set of subscriptions, removes some,
// and checks every match, with a small cache and without one, against
// refMatch; it also checks the cache's invalidation matcher.
func FuzzMatchDifferential(f *testing.F) {
	f.Add([]byte{0, 3, 0, 1, 2, 3, 3, 2, 1, 0, 7, 3, 1, 2})
	f.Add([]byte("\x00\x04\x04\x00\x02\x01\x00\x03\x05\x05\x03\x04\x03\x00\x01\x02"))
	f.Add([]byte("lazy.orange.rabbit, quick.brown.fox, kern.#.critical"))
	f.Add([]byte{1, 4, 3, 0, 3, 4, 0, 0, 1, 1, 9, 2, 5, 3, 3, 3, 0, 1, 2, 4, 1, 0, 2, 3, 5, 6, 7, 8})
	f.Fuzz(func(t *testing.T, data []byte) {
		in := &fuzzInput{data: data}
		routers := []*Router[int]{New[int](Options{CacheSize: 4}), New[int](Options{CacheSize: -1})}
		var live []Subscription[int]
		var res Result[int]
		check := func(subject string) {
			wantSubs := map[int]bool{}
			wantGroups := map[string]map[int]bool{}
			for _, s := range live {
				if !refMatch(s.Pattern, subject, s.SkipDollar) {
					continue
				}
				if s.Queue == "" {
					wantSubs[s.Handle] = true
				} else {
					if wantGroups[s.Queue] == nil {
						wantGroups[s.Queue] = map[int]bool{}
					}
					wantGroups[s.Queue][s.Handle] = true
				}
				toks, _, _ := parsePattern(s.Pattern, nil)
				if !matchPattern(toks, subject) {
					t.Fatalf("matchPattern(%q, %q) = false", s.Pattern, subject)
				}
			}
			want := fmt.Sprint(sortedKeys(wantSubs), groupsString(wantGroups))
			for i, r := range routers {
				if err := r.Match(subject, &res); err != nil {
					t.Fatalf("Match(%q): %v", subject, err)
				}
				gotGroups := map[string]map[int]bool{}
				for _, g := range res.Groups {
					gotGroups[g.Name] = map[int]bool{}
					for _, m := range g.Members {
						if gotGroups[g.Name][m] {
							t.Fatalf("router %d: %q: member %d twice in %q", i, subject, m, g.Name)
						}
						gotGroups[g.Name][m] = true
					}
				}
				subs := slices.Sorted(slices.Values(res.Subs))
				if len(slices.Compact(slices.Clone(subs))) != len(subs) {
					t.Fatalf("router %d: %q: duplicate handles %v", i, subject, subs)
				}
				if got := fmt.Sprint(subs, groupsString(gotGroups)); got != want {
					t.Fatalf("router %d: Match(%q) = %s, want %s\nlive: %+v", i, subject, got, want, live)
				}
			}
		}
		for len(in.data) > 0 {
			switch in.next(4) {
			case 0, 1:
				s := Subscription[int]{Pattern: normalised(in.pattern()), Handle: in.next(4), SkipDollar: in.next(3) == 0}
				// SkipDollar only tells subscriptions apart when the
				// pattern starts with a wildcard.
				if s.Pattern == "" || !isWildcard(strings.Split(s.Pattern, ".")[0]) {
					s.SkipDollar = false
				}
				if q := in.next(4); q > 1 {
					s.Queue = fmt.Sprint("q", q)
				}
				added := !slices.Contains(live, s)
				if added {
					live = append(live, s)
				}
				for _, r := range routers {
					if ok, err := r.Insert(s); err != nil || ok != added {
						t.Fatalf("Insert(%+v) = %v, %v; want %v", s, ok, err, added)
					}
				}
			case 2:
				if len(live) == 0 {
					continue
				}
				i := in.next(len(live))
				s := live[i]
				live = slices.Delete(live, i, i+1)
				for _, r := range routers {
					if !r.Remove(s) || r.Remove(s) {
						t.Fatalf("Remove(%+v) not exactly once", s)
					}
				}
			case 3:
				check(in.subject())
			}
			for _, r := range routers {
				if r.Count() != len(live) {
					t.Fatalf("Count = %d, want %d", r.Count(), len(live))
				}
			}
		}
		for _, s := range []string{"", "a", "$c", "a.b", "$c.a", "a.b.a", "b.$c.a.b"} {
			check(s)
		}
		// Remove everything: the trie must be empty again.
		for _, s := range live {
			for _, r := range routers {
				r.Remove(s)
			}
		}
		for _, r := range routers {
			if !r.root.empty() || !r.wild.empty() {
				t.Fatal("trie not empty after removing every subscription")
			}
		}
	})
}

func sortedKeys(m map[int]bool) []int {
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func groupsString(g map[string]map[int]bool) string {
	names := make([]string, 0, len(g))
	for n := range g {
		names = append(names, n)
	}
	slices.Sort(names)
	var b strings.Builder
	for _, n := range names {
		fmt.Fprint(&b, n, sortedKeys(g[n]))
	}
	return b.String()
}

// refMQTTMatch is MQTT's own matching rule on levels, the reference for the
// translated patterns.
func refMQTTMatch(filter, topic string) bool {
	if strings.HasPrefix(topic, "$") && (strings.HasPrefix(filter, "+") || strings.HasPrefix(filter, "#")) {
		return false
	}
	f, tp := strings.Split(filter, "/"), strings.Split(topic, "/")
	for i, l := range f {
		if l == "#" {
			return true // the parent level too: "a/#" matches "a"
		}
		if i >= len(tp) || l != "+" && l != tp[i] {
			return false
		}
	}
	return len(f) == len(tp)
}

func FuzzMQTTTopic(f *testing.F) {
	for _, s := range []string{"a/b/c", "a//b", "/", "v1.2/x", "50%", "%2E", "a/*/>", "$SYS/x", "Accounts payable", "a\tb", "ü/✓", "%", "%%25"} {
		f.Add(s, "a/b")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		sa, errA := SubjectFromMQTTTopic(a)
		sb, errB := SubjectFromMQTTTopic(b)
		if errA != nil {
			return
		}
		if err := ValidateSubject(sa); err != nil {
			t.Fatalf("topic %q gives invalid subject %q: %v", a, sa, err)
		}
		plain := true
		for _, level := range strings.Split(a, "/") {
			plain = plain && plainLevel(level)
		}
		if plain && sa != strings.ReplaceAll(a, "/", ".") {
			t.Fatalf("plain topic %q escaped to %q", a, sa)
		}
		if buf, err := AppendSubjectFromMQTTTopic([]byte("x"), a); err != nil || string(buf) != "x"+sa {
			t.Fatalf("AppendSubjectFromMQTTTopic(%q) = %q, %v; want x%q", a, buf, err, sa)
		}
		back, err := MQTTTopicFromSubject(sa)
		if err != nil || back != a {
			t.Fatalf("round trip %q -> %q -> %q, %v", a, sa, back, err)
		}
		if errB == nil && a != b && sa == sb {
			t.Fatalf("topics %q and %q collide on %q", a, b, sa)
		}
		// Any valid subject that maps to a topic maps back to itself once
		// canonical.
		if ValidateSubject(a) == nil {
			if topic, err := MQTTTopicFromSubject(a); err == nil {
				if _, err := SubjectFromMQTTTopic(topic); err != nil {
					t.Fatalf("subject %q gives topic %q that is invalid: %v", a, topic, err)
				}
			}
		}
	})
}

func FuzzMQTTFilter(f *testing.F) {
	for _, s := range [][2]string{
		{"sport/tennis/player1/#", "sport/tennis/player1"},
		{"sport/tennis/+", "sport/tennis/player1/ranking"},
		{"+/+", "/finance"}, {"/+", "/finance"}, {"+", "/finance"},
		{"#", "$SYS/x"}, {"$SYS/#", "$SYS/monitor/Clients"},
		{"+/monitor/Clients", "$SYS/monitor/Clients"}, {"sport/+", "sport/"},
		{"a/#/b", "a/x/b"}, {"a+", "a+"}, {"", ""}, {"a//+", "a//b"}, {"a/*", "a/*"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, filter, topic string) {
		p, err := PatternFromMQTTFilter(filter)
		if err != nil {
			return
		}
		if err := ValidatePattern(p); err != nil {
			t.Fatalf("filter %q gives invalid pattern %q: %v", filter, p, err)
		}
		back, err := MQTTFilterFromPattern(p)
		if err != nil || back != filter {
			t.Fatalf("round trip %q -> %q -> %q, %v", filter, p, back, err)
		}
		s, err := SubjectFromMQTTTopic(topic)
		if err != nil {
			return
		}
		if got, want := refMatch(p, s, true), refMQTTMatch(filter, topic); got != want {
			t.Fatalf("filter %q (%q) on topic %q (%q): pattern says %v, MQTT says %v", filter, p, topic, s, got, want)
		}
		r := New[int](Options{})
		if _, err := r.Insert(Subscription[int]{Pattern: p, SkipDollar: true, Handle: 1}); err != nil {
			t.Fatal(err)
		}
		var res Result[int]
		if err := r.Match(s, &res); err != nil {
			t.Fatal(err)
		}
		if got := len(res.Subs) == 1; got != refMQTTMatch(filter, topic) {
			t.Fatalf("router: filter %q on topic %q: %v", filter, topic, got)
		}
	})
}

func FuzzValidate(f *testing.F) {
	for _, s := range []string{"", "a", "a.b", "a..b", ".a", "a.", "*", ">", "#", "a.>.b", "a.#.#.>", "a b", "$SYS.>", "a*.b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		subjectErr := ValidateSubject(s)
		patternErr := ValidatePattern(s)
		if subjectErr == nil && patternErr != nil {
			t.Fatalf("%q is a subject but not a pattern: %v", s, patternErr)
		}
		r := New[int](Options{})
		var res Result[int]
		if err := r.Match(s, &res); subjectErr == nil && err != nil {
			t.Fatalf("Match(%q) = %v on a valid subject", s, err)
		}
		if patternErr == nil {
			if _, err := r.Insert(Subscription[int]{Pattern: s, Handle: 1}); err != nil {
				t.Fatal(err)
			}
			if subjectErr == nil {
				r.Match(s, &res)
				if len(res.Subs) != 1 {
					t.Fatalf("literal pattern %q does not match itself", s)
				}
			}
		}
		if key, err := SubjectFromAMQPRoutingKey(s); err == nil {
			if err := ValidateSubject(key); err != nil {
				t.Fatalf("routing key %q gives invalid subject %q", s, key)
			}
			if back, err := AMQPRoutingKeyFromSubject(key); err != nil || back != s {
				t.Fatalf("routing key round trip %q -> %q -> %q, %v", s, key, back, err)
			}
		}
		if p, err := PatternFromAMQPBindingKey(s); err == nil {
			if err := ValidatePattern(p); err != nil && utf8.ValidString(s) {
				t.Fatalf("binding key %q gives invalid pattern %q: %v", s, p, err)
			}
		}
	})
}
