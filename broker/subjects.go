package broker

import "strings"

// pattern is a subject pattern split into tokens, with ">" rewritten as
// "*" followed by "#" (one token, then zero or more), so that matching and
// overlap deal with three kinds of token only: literals, "*" and "#".
type pattern []string

func compilePattern(p string) pattern {
	if p == "" {
		return pattern{}
	}
	toks := strings.Split(p, ".")
	if toks[len(toks)-1] == ">" {
		toks = append(toks[:len(toks)-1], "*", "#")
	}
	return pattern(toks)
}

// matches reports whether subject (literal tokens) matches p. It does not
// allocate.
func (p pattern) matches(subject []byte) bool {
	return matchTokens(p, subject, len(subject) == 0)
}

// matchTokens matches p against the rest of a subject; empty says that
// no token is left (the subject "" has none, while "a." cannot occur).
func matchTokens(p pattern, subj []byte, empty bool) bool {
	for len(p) > 0 {
		t := p[0]
		if t == "#" {
			if len(p) == 1 {
				return true
			}
			// Try '#' matching zero tokens, then one more each time.
			for {
				if matchTokens(p[1:], subj, empty) {
					return true
				}
				if empty {
					return false
				}
				_, rest, more := cutToken(subj)
				subj, empty = rest, !more
			}
		}
		if empty {
			return false
		}
		tok, rest, more := cutToken(subj)
		if t != "*" && t != string(tok) {
			return false
		}
		p, subj, empty = p[1:], rest, !more
	}
	return empty
}

// cutToken splits the first token off s; more reports whether a token
// follows.
func cutToken(s []byte) (tok, rest []byte, more bool) {
	for i, c := range s {
		if c == '.' {
			return s[:i], s[i+1:], true
		}
	}
	return s, nil, false
}

// overlaps reports whether some subject matches both patterns.
func overlaps(a, b pattern) bool {
	switch {
	case len(a) > 0 && a[0] == "#":
		return overlaps(a[1:], b) || (len(b) > 0 && overlaps(a, b[1:]))
	case len(b) > 0 && b[0] == "#":
		return overlaps(a, b[1:]) || (len(a) > 0 && overlaps(a[1:], b))
	case len(a) == 0 || len(b) == 0:
		return len(a) == len(b)
	case a[0] == "*" || b[0] == "*" || a[0] == b[0]:
		return overlaps(a[1:], b[1:])
	}
	return false
}

// subjectFilter is a consumer's filter: no patterns matches everything.
type subjectFilter []pattern

func newFilter(pats []string) subjectFilter {
	f := make(subjectFilter, 0, len(pats))
	for _, p := range pats {
		f = append(f, compilePattern(p))
	}
	return f
}

func (f subjectFilter) matches(subject []byte) bool {
	if len(f) == 0 {
		return true
	}
	for _, p := range f {
		if p.matches(subject) {
			return true
		}
	}
	return false
}

// overlaps reports whether some subject passes both filters.
func (f subjectFilter) overlaps(g subjectFilter) bool {
	if len(f) == 0 || len(g) == 0 {
		return true
	}
	for _, a := range f {
		for _, b := range g {
			if overlaps(a, b) {
				return true
			}
		}
	}
	return false
}
