package auth

import (
	"strings"
	"testing"

	"github.com/ledgemq/ledge/router"
)

func mustTemplate(t testing.TB, s string) template {
	t.Helper()
	tm, err := parseTemplate(s)
	if err != nil {
		t.Fatalf("parseTemplate(%q): %v", s, err)
	}
	return tm
}

func expandString(t testing.TB, rule string, v Values) string {
	t.Helper()
	tm := mustTemplate(t, rule)
	toks, err := tm.expand(v)
	if err != nil {
		return "error: " + err.Error()
	}
	return strings.Join(toks, ".")
}

func TestLevelEncodingIsTheRouters(t *testing.T) {
	for _, v := range []string{"a", "a.b", "*", ">", "50%", "v1.2", "a b", "dev-7", "ü", "%2E", "x\x01y", ">x"} {
		want, err := router.SubjectFromMQTTTopic(v)
		if err != nil {
			t.Fatalf("router: %v", err)
		}
		if got := string(appendLevelToken(nil, v)); got != want {
			t.Errorf("level %q: auth encodes %q, router %q", v, got, want)
		}
	}
}

func TestSubstitution(t *testing.T) {
	cases := []struct {
		rule string
		v    Values
		want string
	}{
		{"site.%u.>", Values{User: "dev-7"}, "site.dev-7.>"},
		{"site/%u/#", Values{User: "dev-7"}, "site.dev-7.#"},
		{"site/+/%c", Values{User: "u", ClientID: "c1"}, "site.*.c1"},
		{"dev-%u.x", Values{User: "7"}, "dev-7.x"},
		{"50%%.%u", Values{User: "a"}, "50%.a"},
		{"a/50%%/%u", Values{User: "b"}, "a.50%25.b"},
		{"v1.2/%u", Values{User: "b"}, "v1%2E2.b"},
		// Wildcards and separators in a value are literal text, never
		// structure: the CVE-2017-7650 class.
		{"site.%u.>", Values{User: "a.b"}, "site.a%2Eb.>"},
		{"site/%u/#", Values{User: "a.b"}, "site.a%2Eb.#"},
		{"site.%u.>", Values{User: "*"}, "site.%2A.>"},
		{"site.%u.>", Values{User: ">"}, "site.%3E.>"},
		{"site.%u.>", Values{User: "#"}, "site.%23.>"},
		{"site/%u/#", Values{User: "#"}, "site.%23.#"},
		{"site/%u/#", Values{User: "+"}, "site.+.#"},
		{"site.%u.>", Values{User: "a/b"}, "site.a/b.>"},
		{"site/%u/#", Values{User: "a/b"}, "site.a/b.#"},
		{"site.%u.>", Values{User: "%2E"}, "site.%252E.>"},
		{"site.%u.>", Values{User: "a b"}, "site.a%20b.>"},
		{"pre%u", Values{User: "*"}, "pre*"},
		{"%c.x", Values{User: "u"}, "error: " + errUnknownVar.Error()},
		{"#", Values{}, "#"},
		{"a.#.#.>", Values{}, "a.>"},
	}
	for _, c := range cases {
		if got := expandString(t, c.rule, c.v); got != c.want {
			t.Errorf("%q with %+v: got %q, want %q", c.rule, c.v, got, c.want)
		}
	}
}

func TestBadTemplates(t *testing.T) {
	for _, s := range []string{"", "a..b", "a.>.b", "a/#/b", "a/b+/c", "a b", "a.%", "a\x00"} {
		if _, err := parseTemplate(s); err == nil && s != "a.%" {
			t.Errorf("parseTemplate(%q) accepted", s)
		}
	}
}

// A value that holds a wildcard or separator of any dialect matches only
// itself, literally, whatever it is published as.
func TestValuesNeverWiden(t *testing.T) {
	names := []string{"+", "#", "*", ">", "a/b", "a.b", "a/+", "#/x", "*.>", "a%2Eb"}
	rules := []string{"site.%u.>", "site/%u/#", "site/%u", "site.%u", "site/%u/+", "%u.>", "%u/#"}
	others := []string{"x", "a", "b", "a.b", "z.z.z"}
	for _, name := range names {
		for _, rule := range rules {
			tm := mustTemplate(t, rule)
			toks, err := tm.expand(Values{User: name})
			if err != nil {
				t.Fatalf("%q/%q: %v", rule, name, err)
			}
			lit := string(appendLevelToken(nil, name))
			pos := 0
			if !strings.HasPrefix(rule, "%u") {
				pos = 1
			}
			if toks[pos] != lit {
				t.Errorf("rule %q, user %q: token %q, want the literal %q", rule, name, toks[pos], lit)
			}
			for _, o := range others {
				subj := "site." + o + ".t"
				if pos == 0 {
					subj = o + ".t"
				}
				if matchTokens(toks, []byte(subj)) {
					t.Errorf("rule %q for user %q matches %q", rule, name, subj)
				}
			}
		}
	}
}

func toksOf(t testing.TB, p string) []string {
	t.Helper()
	toks, err := splitPattern(p)
	if err != nil {
		t.Fatal(err)
	}
	return toks
}

func TestMatchTokensIsTheRouters(t *testing.T) {
	pats := []string{"a", "a.b", "*", ">", "#", "a.*", "a.>", "a.#", "#.c", "a.#.c", "*.#", "#.*.b", "a.*.#.d", "x"}
	subjs := []string{"", "a", "a.b", "a.b.c", "b.c", "a.c", "x.a.b.c.d", "a.x.y.d", "c"}
	for _, p := range pats {
		rp, err := router.CompilePattern(p)
		if err != nil {
			t.Fatal(err)
		}
		toks := toksOf(t, p)
		for _, s := range subjs {
			if got, want := matchTokens(toks, []byte(s)), rp.Matches(s); got != want {
				t.Errorf("%q ~ %q: auth %v, router %v", p, s, got, want)
			}
		}
	}
}

func TestSubsetIntersects(t *testing.T) {
	cases := []struct {
		f, p          string
		subset, meets bool
	}{
		{"a.b", "a.b", true, true},
		{"a.b", "a.*", true, true},
		{"a.*", "a.b", false, true},
		{"a.>", "a.#", true, true},
		{"a.#", "a.>", false, true}, // a.# matches "a"
		{"a", "a.#", true, true},
		{"#", "site.u.#", false, true},
		{"site.*.t", "site.u.#", false, true},
		{"site.v.#", "site.u.#", false, false},
		{"site.u.x", "site.u.#", true, true},
		{"*.#", "#.*", true, true},
		{"b.>", "a.>", false, false},
		{"a.*.c", "a.b.*", false, true},
		{"a.#.z", "a.*.*.#", false, true},
		{"x.y", "*.*.*", false, false},
		{"_INBOX.k.*", "_INBOX.>", true, true},
		{">", "_INBOX.*.#", false, true},
	}
	for _, c := range cases {
		f, p := expandTail(toksOf(t, c.f)), expandTail(toksOf(t, c.p))
		if got := subset(f, p); got != c.subset {
			t.Errorf("subset(%q, %q) = %v", c.f, c.p, got)
		}
		if got := intersects(f, p); got != c.meets {
			t.Errorf("intersects(%q, %q) = %v", c.f, c.p, got)
		}
	}
}
