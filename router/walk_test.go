package router

import (
	"fmt"
	"sort"
	"testing"
)

func TestWalkVisitsEverySubscription(t *testing.T) {
	r := New[int](Options{})
	want := []string{}
	add := func(pattern, queue string, skip bool, h int) {
		t.Helper()
		if _, err := r.Insert(Subscription[int]{Pattern: pattern, Queue: queue, SkipDollar: skip, Handle: h}); err != nil {
			t.Fatal(err)
		}
		want = append(want, fmt.Sprintf("%s|%s|%d", pattern, queue, h))
	}
	add("a.b", "", false, 1)
	add("a.b", "", false, 2)
	add("a.b", "workers", false, 3)
	add("a.*.c", "", false, 4)
	add("a.>", "", false, 5)
	add("#", "", true, 6) // lives under the SkipDollar root
	add("x.#", "", false, 7)
	// More literal children than a node keeps in its slice.
	for i := range 20 {
		add(fmt.Sprintf("many.%d", i), "", false, 100+i)
	}
	var got []string
	r.Walk(func(p, q string, h int) bool {
		got = append(got, fmt.Sprintf("%s|%s|%d", p, q, h))
		return true
	})
	sort.Strings(got)
	sort.Strings(want)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("walk\n got %v\nwant %v", got, want)
	}
	n := 0
	r.Walk(func(string, string, int) bool { n++; return n < 3 })
	if n != 3 {
		t.Fatalf("walk went on after false: %d calls", n)
	}
}
