package router

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestSubjectFromMQTTTopic(t *testing.T) {
	tests := []struct{ topic, subject string }{
		{"a/b/c", "a.b.c"},
		{"sport/tennis/player1", "sport.tennis.player1"},
		{"$SYS/broker/load", "$SYS.broker.load"},
		{"a//b", "a.%.b"},
		{"/a", "%.a"},
		{"a/", "a.%"},
		{"/", "%.%"},
		{"v1.2/x", "v1%2E2.x"},
		{"Accounts payable", "Accounts%20payable"},
		{"50%", "50%25"},
		{"%", "%25"},
		{"%2E", "%252E"},
		{"a/*/>", "a.%2A.%3E"},
		{"a*b/c>", "a*b.c>"},
		{"ünïcødé/✓", "ünïcødé.✓"},
	}
	for _, tc := range tests {
		got, err := SubjectFromMQTTTopic(tc.topic)
		if err != nil || got != tc.subject {
			t.Errorf("SubjectFromMQTTTopic(%q) = %q, %v; want %q", tc.topic, got, err, tc.subject)
			continue
		}
		if err := ValidateSubject(got); err != nil {
			t.Errorf("subject of %q: %v", tc.topic, err)
		}
		back, err := MQTTTopicFromSubject(got)
		if err != nil || back != tc.topic {
			t.Errorf("MQTTTopicFromSubject(%q) = %q, %v; want %q", got, back, err, tc.topic)
		}
	}
}

func TestMQTTInvalid(t *testing.T) {
	for _, topic := range []string{"", "a/+", "a/#", "#", "a+", "a\x00b", "\xff"} {
		if _, err := SubjectFromMQTTTopic(topic); !errors.Is(err, ErrInvalidTopic) {
			t.Errorf("SubjectFromMQTTTopic(%q) error = %v, want ErrInvalidTopic", topic, err)
		}
	}
	for _, filter := range []string{"", "a/#/b", "a+", "sport/tennis#", "sport+", "sport/tennis/#/ranking", "#/", "++", "a/b#", "a\x00"} {
		if _, err := PatternFromMQTTFilter(filter); !errors.Is(err, ErrInvalidFilter) {
			t.Errorf("PatternFromMQTTFilter(%q) error = %v, want ErrInvalidFilter", filter, err)
		}
	}
	for _, subject := range []string{"", "a/b.c", "a+", "x.#b", "%00", "a.b/c"} {
		if topic, err := MQTTTopicFromSubject(subject); !errors.Is(err, ErrNotRepresentable) {
			t.Errorf("MQTTTopicFromSubject(%q) = %q, %v; want ErrNotRepresentable", subject, topic, err)
		}
	}
	for _, pattern := range []string{"", "#.a", "a.#.b", "a/b.*"} {
		if filter, err := MQTTFilterFromPattern(pattern); !errors.Is(err, ErrNotRepresentable) {
			t.Errorf("MQTTFilterFromPattern(%q) = %q, %v; want ErrNotRepresentable", pattern, filter, err)
		}
	}
	deep := strings.Repeat("a/", MaxTokens) + "b"
	if _, err := SubjectFromMQTTTopic(deep); !errors.Is(err, ErrInvalidTopic) {
		t.Errorf("a topic of %d levels: %v, want ErrInvalidTopic", MaxTokens+1, err)
	}
	if _, err := AppendSubjectFromMQTTTopic(nil, deep); !errors.Is(err, ErrInvalidTopic) {
		t.Errorf("a topic of %d levels appended: %v, want ErrInvalidTopic", MaxTokens+1, err)
	}
	if _, err := PatternFromMQTTFilter(strings.Repeat("+/", MaxTokens) + "#"); !errors.Is(err, ErrInvalidFilter) {
		t.Errorf("a filter of %d levels: %v, want ErrInvalidFilter", MaxTokens+1, err)
	}
	if _, err := PatternFromMQTTFilter(strings.Repeat("+/", MaxTokens-1) + "#"); err != nil {
		t.Errorf("a filter of %d levels: %v", MaxTokens, err)
	}
	if _, err := MQTTFilterFromPattern("a..b"); !errors.Is(err, ErrInvalidPattern) {
		t.Errorf("MQTTFilterFromPattern(a..b) error = %v", err)
	}
}

func TestPatternFromMQTTFilter(t *testing.T) {
	tests := []struct{ filter, pattern string }{
		{"sport/tennis/player1/#", "sport.tennis.player1.#"},
		{"sport/tennis/+", "sport.tennis.*"},
		{"+", "*"},
		{"#", "#"},
		{"+/+", "*.*"},
		{"/+", "%.*"},
		{"+/tennis/#", "*.tennis.#"},
		{"$SYS/#", "$SYS.#"},
		{"a//+", "a.%.*"},
		{"a/*", "a.%2A"},
		{"v1.2/#", "v1%2E2.#"},
	}
	for _, tc := range tests {
		got, err := PatternFromMQTTFilter(tc.filter)
		if err != nil || got != tc.pattern {
			t.Errorf("PatternFromMQTTFilter(%q) = %q, %v; want %q", tc.filter, got, err, tc.pattern)
			continue
		}
		back, err := MQTTFilterFromPattern(got)
		if err != nil || back != tc.filter {
			t.Errorf("MQTTFilterFromPattern(%q) = %q, %v; want %q", got, back, err, tc.filter)
		}
	}
	if f, err := MQTTFilterFromPattern("a.>"); err != nil || f != "a/+/#" {
		t.Errorf("MQTTFilterFromPattern(a.>) = %q, %v; want a/+/#", f, err)
	}
}

// TestMQTTSpecFilters runs the examples of the topic filter sections of
// MQTT 3.1.1 (4.7) and 5.0 (4.7) through the router, as the MQTT gateway
// would: filters become SkipDollar subscriptions, topics become subjects.
func TestMQTTSpecFilters(t *testing.T) {
	filters := []string{
		"sport/tennis/player1/#", "sport/#", "#", "sport/tennis/+", "sport/+",
		"+/+", "/+", "+", "+/tennis/#", "sport/+/player1", "$SYS/#",
		"+/monitor/Clients", "$SYS/monitor/+", "ACCOUNTS", "Accounts payable",
		"/finance",
	}
	r := New[string](Options{})
	for _, f := range filters {
		p, err := PatternFromMQTTFilter(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Insert(Subscription[string]{Pattern: p, SkipDollar: true, Handle: f}); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		topic string
		want  []string
	}{
		{"sport/tennis/player1", []string{"#", "sport/#", "sport/+/player1", "sport/tennis/+", "sport/tennis/player1/#", "+/tennis/#"}},
		{"sport/tennis/player1/ranking", []string{"#", "sport/#", "sport/tennis/player1/#", "+/tennis/#"}},
		{"sport/tennis/player1/score/wimbledon", []string{"#", "sport/#", "sport/tennis/player1/#", "+/tennis/#"}},
		{"sport/tennis/player2", []string{"#", "sport/#", "sport/tennis/+", "+/tennis/#"}},
		{"sport", []string{"#", "sport/#", "+"}},
		{"sport/", []string{"#", "sport/#", "sport/+", "+/+"}},
		{"/finance", []string{"#", "/+", "+/+", "/finance"}},
		{"$SYS/monitor/Clients", []string{"$SYS/#", "$SYS/monitor/+"}},
		{"$SYS", []string{"$SYS/#"}},
		{"monitor/Clients", []string{"#", "+/+"}},
		{"x/monitor/Clients", []string{"#", "+/monitor/Clients"}},
		{"ACCOUNTS", []string{"#", "+", "ACCOUNTS"}},
		{"Accounts", []string{"#", "+"}},
		{"Accounts payable", []string{"#", "+", "Accounts payable"}},
		{"/", []string{"#", "/+", "+/+"}},
	}
	var res Result[string]
	for pass := 0; pass < 2; pass++ {
		for _, tc := range tests {
			subject, err := SubjectFromMQTTTopic(tc.topic)
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Match(subject, &res); err != nil {
				t.Fatal(err)
			}
			got := matched(&res)
			want := slices.Sorted(slices.Values(tc.want))
			if !slices.Equal(got, want) {
				t.Errorf("pass %d: topic %q (subject %q) matches %q, want %q", pass, tc.topic, subject, got, want)
			}
		}
	}
}

// TestMQTTPublishPathDoesNotAllocate is the MQTT gateway's hot path: topic
// to subject into a reused buffer, match, and subject back to topic for
// delivery.
func TestMQTTPublishPathDoesNotAllocate(t *testing.T) {
	r := New[int](Options{CacheSize: -1})
	p, err := PatternFromMQTTFilter("site/+/device/#")
	if err != nil {
		t.Fatal(err)
	}
	r.Insert(Subscription[int]{Pattern: p, SkipDollar: true, Handle: 1})
	var res Result[int]
	subject := make([]byte, 0, 64)
	topic := make([]byte, 0, 64)
	allocs := testing.AllocsPerRun(1000, func() {
		var err error
		subject, err = AppendSubjectFromMQTTTopic(subject[:0], "site/42/device/7319/temp")
		if err != nil {
			t.Fatal(err)
		}
		if err := r.MatchBytes(subject, &res); err != nil || len(res.Subs) != 1 {
			t.Fatalf("MatchBytes: %v, %v", res.Subs, err)
		}
		if topic, err = AppendMQTTTopicFromSubject(topic[:0], string(subject)); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("publish path allocates %.1f times", allocs)
	}
	if string(topic) != "site/42/device/7319/temp" || string(subject) != "site.42.device.7319.temp" {
		t.Fatalf("got subject %q, topic %q", subject, topic)
	}
}
