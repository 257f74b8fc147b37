package auth

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/ledgemq/ledge/router"
)

// FuzzParse: any bytes are a users file or an error naming the file and
// the line; never a panic.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"[user a]\npassword = $2a$04$0123456789012345678901uH4P9wrqN3jVHwsQZ3JBmAkZGQ2rK6W\n",
		"[group g]\npublish = site/%u/#\nsubscribe = a.> b.*\n[user u]\ntoken = sha256:" + strings.Repeat("ab", 32) + "\ngroups = g\n",
		"[anonymous]\nsubscribe = public.>\nmax-payload = 1KiB\n",
		"[user x]\ncert = x.example\nallow-responses = 5 1m\namqp-read = ^x\\.\nroles = monitor\n",
		"password = x\n", "[user]\n", "[nope a]\n", "[user a]\nmax-connections = -1\n",
		"[user a]\ncert = a\n[user b]\ncert = a\n",
		"[user a\n", "\xff\xfe", "[user a]\npublish = a..b\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse("fuzz", bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), "fuzz") {
				t.Fatalf("error without the file name or ErrSyntax: %v", err)
			}
			return
		}
		// What parses compiles for any connection.
		for _, name := range p.Users() {
			u := p.users[name]
			compile(u.eff, Values{User: name, ClientID: "c/+#"})
		}
		if p.anonEff != nil {
			compile(p.anonEff, Values{})
		}
	})
}

// FuzzSubstitution: a value never adds structure to a rule. Every literal
// token of the template is one literal token of the expansion, whatever
// the user name and client id hold.
func FuzzSubstitution(f *testing.F) {
	for _, s := range [][3]string{
		{"site.%u.>", "dev-7", ""}, {"site/%u/#", "a.b", "c"}, {"site/%u/%c", "#", "+"},
		{"x.%u%c.*", ">", "*"}, {"a/%u", "a/b/c", ""}, {"%%u.%u", "%u", "%c"}, {"%u", "", "x"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, rule, user, cid string) {
		tm, err := parseTemplate(rule)
		if err != nil {
			return
		}
		toks, err := tm.expand(Values{User: user, ClientID: cid})
		if err != nil {
			return
		}
		literals := 0
		for _, tt := range tm.toks {
			if tt.wild == "" {
				literals++
			}
		}
		got := 0
		for _, s := range toks {
			if s == anyToken || s == tail || s == anyTokens {
				continue
			}
			got++
			if err := router.ValidateSubject(s); err != nil || strings.Contains(s, ".") {
				t.Fatalf("%q with %q/%q: token %q is not one literal token", rule, user, cid, s)
			}
		}
		if got != literals {
			t.Fatalf("%q with %q/%q: %d literal tokens became %d: %q", rule, user, cid, literals, got, toks)
		}
		if err := router.ValidatePattern(strings.Join(toks, ".")); err != nil {
			t.Fatalf("%q with %q/%q: expansion %q: %v", rule, user, cid, toks, err)
		}
	})
}

// FuzzMatch: matching is the router's, and the relations between patterns
// are sound: a subject both match means they meet, and a subset's subject
// is the superset's.
func FuzzMatch(f *testing.F) {
	for _, s := range [][3]string{
		{"a.*", "a.#", "a.b"}, {"#.c", "a.>", "a.b.c"}, {">", "*.*", "x.y"}, {"a.#.b", "#.b", "a.b"},
		{"site.u.#", "#", "site.u"}, {"*.#", "#.*", "q"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, pa, pb, subj string) {
		a, err1 := splitPattern(pa)
		b, err2 := splitPattern(pb)
		if err1 != nil || err2 != nil || router.ValidateSubject(subj) != nil || len(a) > 64 || len(b) > 64 {
			return
		}
		rp, _ := router.CompilePattern(pa)
		ma := matchTokens(a, []byte(subj))
		if ma != rp.Matches(subj) {
			t.Fatalf("%q ~ %q: auth %v, router %v", pa, subj, ma, !ma)
		}
		mb := matchTokens(b, []byte(subj))
		ca, cb := expandTail(a), expandTail(b)
		if ma && mb && !intersects(ca, cb) {
			t.Fatalf("%q and %q both match %q but do not intersect", pa, pb, subj)
		}
		if ma && !mb && subset(ca, cb) {
			t.Fatalf("%q is said within %q, but %q matches only the first", pa, pb, subj)
		}
	})
}

// FuzzSubscribe: a subscription said Allowed takes deliveries unchecked,
// so every subject its filter matches must be one the rules allow.
func FuzzSubscribe(f *testing.F) {
	for _, s := range [][4]string{
		{"site.u.>", "site.u.secret", "site.u.*", "site.u.secret"},
		{"a.#", "", "a.>", "a.b"}, {"#", "x.#", ">", "x.y"}, {"*.b", "a.*", "*.b", "a.b"},
	} {
		f.Add(s[0], s[1], s[2], s[3])
	}
	f.Fuzz(func(t *testing.T, allow, deny, filter, subj string) {
		var r rules
		for _, w := range strings.Fields(allow) {
			tm, err := parseTemplate(w)
			if err != nil {
				return
			}
			r.allow = append(r.allow, tm)
		}
		for _, w := range strings.Fields(deny) {
			tm, err := parseTemplate(w)
			if err != nil {
				return
			}
			r.deny = append(r.deny, tm)
		}
		ft, err := splitPattern(filter)
		if err != nil || router.ValidateSubject(subj) != nil {
			return
		}
		d := expandRules(r, Values{User: "u"})
		a := d.subscribe(expandTail(ft))
		if a == Allowed && matchTokens(ft, []byte(subj)) && !d.allows([]byte(subj)) {
			t.Fatalf("allow %q deny %q: filter %q is Allowed but delivers the forbidden %q", allow, deny, filter, subj)
		}
		if a == Denied && matchTokens(ft, []byte(subj)) && d.allows([]byte(subj)) {
			// Denied filters may still match allowed subjects only when
			// the filter is too deep to check.
			if len(ft) <= maxCheckDepth && !coveredByDeny(d, ft) {
				t.Fatalf("allow %q deny %q: filter %q is Denied yet %q is allowed", allow, deny, filter, subj)
			}
		}
	})
}

func coveredByDeny(d dirRules, f []string) bool {
	for _, p := range d.denyC {
		if subset(expandTail(f), p) {
			return true
		}
	}
	return false
}
