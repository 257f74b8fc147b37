package broker

import "testing"

func TestPatternMatches(t *testing.T) {
	tests := []struct {
		pattern, subject string
		want             bool
	}{
		{"a.b", "a.b", true},
		{"a.b", "a.c", false},
		{"a.*", "a.b", true},
		{"a.*", "a", false},
		{"a.*", "a.b.c", false},
		{"a.>", "a.b.c", true},
		{"a.>", "a", false},
		{"#", "", true},
		{"#", "a.b", true},
		{"a.#", "a", true},
		{"a.#.z", "a.z", true},
		{"a.#.z", "a.b.c.z", true},
		{"a.#.z", "a.b.c", false},
		{"*.b", "a.b", true},
		{"", "", true},
		{"a", "", false},
	}
	for _, tc := range tests {
		if got := compilePattern(tc.pattern).matches([]byte(tc.subject)); got != tc.want {
			t.Errorf("%q matches %q = %v, want %v", tc.pattern, tc.subject, got, tc.want)
		}
	}
}

func TestPatternsOverlap(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"a.b", "a.b", true},
		{"a.b", "a.c", false},
		{"a.*", "a.b", true},
		{"a.*", "*.b", true},
		{"a.>", "a", false},
		{"a.>", "a.b.c", true},
		{"a.>", "b.>", false},
		{"#", "x.y", true},
		{"a.#", "a", true},
		{"a.#.z", "a.*", true},
		{"a.#.z", "b.#", false},
		{"*.*", "a.>", true},
		{"*", "a.b", false},
	}
	for _, tc := range tests {
		a, b := compilePattern(tc.a), compilePattern(tc.b)
		if got := overlaps(a, b); got != tc.want {
			t.Errorf("overlaps(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
		if got := overlaps(b, a); got != tc.want {
			t.Errorf("overlaps(%q, %q) = %v, want %v", tc.b, tc.a, got, tc.want)
		}
	}
}

func TestFilterMatchDoesNotAllocate(t *testing.T) {
	f := newFilter([]string{"site.*.temp", "site.#.alarm"})
	subj := []byte("site.7.temp")
	if n := testing.AllocsPerRun(100, func() { f.matches(subj) }); n != 0 {
		t.Fatalf("%v allocations per match", n)
	}
}
