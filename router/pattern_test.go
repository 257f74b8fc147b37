package router

import "testing"

func TestPatternMatches(t *testing.T) {
	tests := []struct {
		pattern, subject string
		want             bool
	}{
		{"a.b", "a.b", true},
		{"a.*", "a.b", true},
		{"a.*", "a.b.c", false},
		{"a.>", "a.b.c", true},
		{"a.>", "a", false},
		{"#", "x.y", true},
		{"a.#", "a", true},
		{"a.#.#.z", "a.b.z", true},
		{"a.#.>", "a", false},
		{"a.#.z", "a.b.c", false},
	}
	for _, tc := range tests {
		p, err := CompilePattern(tc.pattern)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Matches(tc.subject); got != tc.want {
			t.Errorf("%q matches %q = %v, want %v", tc.pattern, tc.subject, got, tc.want)
		}
	}
	if _, err := CompilePattern("a.>.b"); err == nil {
		t.Error("'>' in the middle accepted")
	}
	p, _ := CompilePattern("site.*.temp")
	if n := testing.AllocsPerRun(100, func() { p.Matches("site.7.temp") }); n != 0 {
		t.Errorf("%v allocations per match", n)
	}
}
