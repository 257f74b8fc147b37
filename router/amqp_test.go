package router

import (
	"errors"
	"strings"
	"testing"
)

func TestAMQPKeys(t *testing.T) {
	tests := []struct{ key, subject string }{
		{"", ""},
		{"a.b.c", "a.b.c"},
		{"quick.orange.rabbit", "quick.orange.rabbit"},
		{"a..b", "a.%.b"},
		{".", "%.%"},
		{"a.*", "a.%2A"},
		{"a b.c", "a%20b.c"},
		{"50%", "50%25"},
		{"a/b", "a/b"},
	}
	for _, tc := range tests {
		got, err := SubjectFromAMQPRoutingKey(tc.key)
		if err != nil || got != tc.subject {
			t.Errorf("SubjectFromAMQPRoutingKey(%q) = %q, %v; want %q", tc.key, got, err, tc.subject)
			continue
		}
		if err := ValidateSubject(got); err != nil {
			t.Errorf("subject of %q: %v", tc.key, err)
		}
		back, err := AMQPRoutingKeyFromSubject(got)
		if err != nil || back != tc.key {
			t.Errorf("AMQPRoutingKeyFromSubject(%q) = %q, %v; want %q", got, back, err, tc.key)
		}
	}
	bindings := []struct{ key, pattern string }{
		{"*.orange.*", "*.orange.*"},
		{"lazy.#", "lazy.#"},
		{"#", "#"},
		{"", ""},
		{"a..#", "a.%.#"},
		{"a.>", "a.%3E"},
	}
	for _, tc := range bindings {
		if got, err := PatternFromAMQPBindingKey(tc.key); err != nil || got != tc.pattern {
			t.Errorf("PatternFromAMQPBindingKey(%q) = %q, %v; want %q", tc.key, got, err, tc.pattern)
		}
	}
	if _, err := SubjectFromAMQPRoutingKey(strings.Repeat("a", 256)); !errors.Is(err, ErrInvalidRoutingKey) {
		t.Errorf("256-byte key: %v", err)
	}
	if _, err := AMQPRoutingKeyFromSubject("v1%2E2"); !errors.Is(err, ErrNotRepresentable) {
		t.Errorf("token holding '.': %v", err)
	}
}

// TestAMQPEmptyWords pins the RabbitMQ behaviour for empty words: '*'
// matches one, '#' matches any number, and the empty key is zero words.
func TestAMQPEmptyWords(t *testing.T) {
	r := New[string](Options{})
	for _, b := range []string{"a.*.b", "#", "", "a.#", "*"} {
		p, err := PatternFromAMQPBindingKey(b)
		if err != nil {
			t.Fatal(err)
		}
		mustInsert(t, r, p, "", "bind:"+b)
	}
	tests := []struct {
		key  string
		want string
	}{
		{"a..b", "bind:#,bind:a.#,bind:a.*.b"},
		{"", "bind:,bind:#"},
		{"a", "bind:#,bind:*,bind:a.#"},
		{".", "bind:#"},
	}
	for _, tc := range tests {
		s, err := SubjectFromAMQPRoutingKey(tc.key)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(matchList(t, r, s), ","); got != tc.want {
			t.Errorf("key %q routes to %q, want %q", tc.key, got, tc.want)
		}
	}
}
