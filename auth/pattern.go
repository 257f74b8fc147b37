package auth

import (
	"errors"
	"fmt"
	"strings"

	"github.com/ledgemq/ledge/router"
)

// Tokens of the router's grammar that rules use.
const (
	anyToken  = router.AnyToken  // one token
	tail      = router.Tail      // one or more trailing tokens
	anyTokens = router.AnyTokens // zero or more tokens, anywhere
)

// maxCheckDepth is the deepest filter whose relation to a restricted
// user's rules is worked out. The checks cost the filter's depth times the
// rule's, and a SUBSCRIBE may carry thousands of levels (the class of bugs
// mosquitto and NanoMQ shipped): a restricted user's deeper filters are
// refused, which narrows what it may do, never widens it.
const maxCheckDepth = 128

// errUnknownVar marks a rule whose substitution has no value for this
// connection (%c on a protocol without client ids).
var errUnknownVar = errors.New("no value for the substitution")

// template is a rule's pattern as written, before %u and %c are replaced:
// tokens in the router's grammar, each a wildcard or literal text in
// which placeholders stand for the connection's values.
type template struct {
	src  string
	toks []tmplToken
	// vars says whether any token holds a placeholder; a template without
	// any compiles once for every connection.
	vars bool
}

type tmplToken struct {
	wild  string     // "*", ">" or "#"; "" for a literal token
	parts []tmplPart // literal token: text and placeholders in order
	// mqtt says the token is an MQTT level: once the values are in, the
	// whole level is encoded as SubjectFromMQTTTopic encodes it. A
	// subject token keeps its text and encodes only the values.
	mqtt bool
}

type tmplPart struct {
	text string
	v    byte // 0 for text, 'u' (user name) or 'c' (client id)
}

// parseTemplate reads a rule's pattern. A pattern holding a '/' is an MQTT
// topic filter ("site/%u/#"); any other is a subject pattern in the
// router's grammar ("site.%u.>", which is also an AMQP binding key). In
// both, %u is the user name, %c the MQTT client id and %% a '%'.
func parseTemplate(s string) (template, error) {
	t := template{src: s}
	if s == "" {
		return t, errors.New("empty pattern")
	}
	if strings.ContainsAny(s, " \t\r\n") {
		return t, fmt.Errorf("pattern %q holds white space", s)
	}
	mqtt := strings.Contains(s, "/")
	sep := "."
	if mqtt {
		sep = "/"
	}
	levels := strings.Split(s, sep)
	for i, lv := range levels {
		last := i == len(levels)-1
		var tok tmplToken
		switch {
		case mqtt && lv == "+":
			tok.wild = anyToken
		case mqtt && lv == "#":
			if !last {
				return t, fmt.Errorf("MQTT filter %q: '#' must be the last level", s)
			}
			tok.wild = anyTokens
		case mqtt && strings.ContainsAny(lv, "+#"):
			return t, fmt.Errorf("MQTT filter %q: level %d mixes a wildcard with text", s, i)
		case !mqtt && (lv == anyToken || lv == anyTokens):
			tok.wild = lv
		case !mqtt && lv == tail:
			if !last {
				return t, fmt.Errorf("pattern %q: '>' must be the last token", s)
			}
			tok.wild = tail
		case !mqtt && lv == "":
			return t, fmt.Errorf("pattern %q: token %d is empty", s, i)
		default:
			parts, err := parseParts(lv)
			if err != nil {
				return t, fmt.Errorf("pattern %q: %w", s, err)
			}
			tok.parts, tok.mqtt = parts, mqtt
			for _, p := range parts {
				if p.v != 0 {
					t.vars = true
				}
			}
		}
		t.toks = append(t.toks, tok)
	}
	if !t.vars {
		// Validate now what every connection would compile the same way.
		if _, err := t.expand(Values{}); err != nil {
			return t, fmt.Errorf("pattern %q: %w", s, err)
		}
	}
	return t, nil
}

// parseParts splits a literal level into text and placeholders.
func parseParts(lv string) ([]tmplPart, error) {
	var parts []tmplPart
	var text strings.Builder
	for i := 0; i < len(lv); i++ {
		c := lv[i]
		if c != '%' || i+1 == len(lv) {
			text.WriteByte(c)
			continue
		}
		switch lv[i+1] {
		case 'u', 'c':
			if text.Len() > 0 {
				parts = append(parts, tmplPart{text: text.String()})
				text.Reset()
			}
			parts = append(parts, tmplPart{v: lv[i+1]})
			i++
		case '%':
			text.WriteByte('%')
			i++
		default:
			// The router's own escapes (%2E ...) are literal text.
			text.WriteByte(c)
		}
	}
	if text.Len() > 0 || len(parts) == 0 {
		parts = append(parts, tmplPart{text: text.String()})
	}
	return parts, nil
}

// Values are what a connection substitutes into its rules.
type Values struct {
	User     string
	ClientID string
}

// expand substitutes v and returns the pattern's tokens, normalised as the
// router normalises them. A value never widens a rule: it is encoded as
// one literal level, so a user named "a.b", "+" or "#" is the token
// "a%2Eb", "+" or "%23" and matches only itself (the class of mosquitto's
// CVE-2017-7650). A placeholder without a value (an empty client id, or
// none on this protocol) gives errUnknownVar.
func (t *template) expand(v Values) ([]string, error) {
	toks := make([]string, 0, len(t.toks))
	var b []byte
	for _, tok := range t.toks {
		if tok.wild != "" {
			toks = appendNormalized(toks, tok.wild)
			continue
		}
		b = b[:0]
		for _, p := range tok.parts {
			switch p.v {
			case 0:
				b = append(b, p.text...)
			default:
				val := v.User
				if p.v == 'c' {
					val = v.ClientID
				}
				if val == "" {
					return nil, errUnknownVar
				}
				if tok.mqtt {
					b = append(b, val...)
				} else {
					b = appendEscaped(b, val)
				}
			}
		}
		var s string
		if tok.mqtt {
			s = string(appendLevelToken(nil, string(b)))
		} else {
			s = string(b)
			if s == anyToken || s == tail || s == anyTokens {
				// Only a value can make a literal token a wildcard
				// character ("%u" for a user named "*"); it is literal.
				s = string(appendLevelToken(nil, s))
			}
		}
		if err := router.ValidateSubject(s); err != nil {
			return nil, err
		}
		toks = append(toks, s)
	}
	return toks, nil
}

// appendNormalized appends a wildcard as the router normalises runs of
// them: "#.#" is "#", "#.>" is ">".
func appendNormalized(toks []string, w string) []string {
	n := len(toks)
	switch w {
	case anyTokens:
		if n > 0 && toks[n-1] == anyTokens {
			return toks
		}
	case tail:
		if n > 0 && toks[n-1] == anyTokens {
			toks = toks[:n-1]
		}
	}
	return append(toks, w)
}

// escapeByte and appendLevelToken encode an MQTT level as a subject token
// exactly as package router does (SubjectFromMQTTTopic; a test holds them
// equal): '%', '.', spaces and control bytes as %XX, an empty level as
// "%", a level that is exactly a wildcard character as its %XX.
func escapeByte(c byte) bool { return c == '%' || c == '.' || c <= ' ' || c == 0x7f }

const upperHex = "0123456789ABCDEF"

func appendLevelToken(dst []byte, level string) []byte {
	switch level {
	case "":
		return append(dst, '%')
	case anyToken, tail, anyTokens:
		return append(dst, '%', upperHex[level[0]>>4], upperHex[level[0]&15])
	}
	return appendEscaped(dst, level)
}

// appendEscaped appends s with the bytes a token cannot hold as they are
// written as %XX.
func appendEscaped(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if escapeByte(c) {
			dst = append(dst, '%', upperHex[c>>4], upperHex[c&15])
		} else {
			dst = append(dst, c)
		}
	}
	return dst
}

// splitPattern parses a client's filter or pattern in the router's
// grammar into normalised tokens.
func splitPattern(p string) ([]string, error) {
	if err := router.ValidatePattern(p); err != nil {
		return nil, err
	}
	if p == "" {
		return nil, nil
	}
	var toks []string
	for _, t := range strings.Split(p, ".") {
		if t == anyToken || t == tail || t == anyTokens {
			toks = appendNormalized(toks, t)
		} else {
			toks = append(toks, t)
		}
	}
	return toks, nil
}

// matchTokens reports whether the subject, which must be valid (no empty
// token), matches the normalised pattern tokens. It is the router's glob
// match (one backtracking point at the last '#' is enough) on bytes,
// without allocating.
func matchTokens(pat []string, subject []byte) bool {
	p, s := 0, subject
	backP := -1
	var backS []byte
	for len(s) > 0 {
		tok, rest := cutToken(s)
		if p < len(pat) {
			switch pat[p] {
			case anyTokens:
				backP, backS = p+1, s
				p++
				continue
			case tail:
				return true
			case anyToken:
				p, s = p+1, rest
				continue
			default:
				if pat[p] == string(tok) {
					p, s = p+1, rest
					continue
				}
			}
		}
		if backP < 0 {
			return false
		}
		// Let the last '#' absorb one more token and retry from there.
		_, backS = cutToken(backS)
		p, s = backP, backS
	}
	for p < len(pat) && pat[p] == anyTokens {
		p++
	}
	return p == len(pat)
}

// cutToken splits the first token off a subject.
func cutToken(s []byte) (tok, rest []byte) {
	for i, c := range s {
		if c == '.' {
			return s[:i], s[i+1:]
		}
	}
	return s, nil
}

// expandTail rewrites '>' as '*' '#' (one token, then zero or more) and
// orders every run of wildcards as its '*'s then one '#': the canonical
// form that subset and intersects work on.
func expandTail(toks []string) []string {
	out := make([]string, 0, len(toks)+1)
	for i := 0; i < len(toks); {
		if toks[i] != anyToken && toks[i] != anyTokens && toks[i] != tail {
			out = append(out, toks[i])
			i++
			continue
		}
		stars, hash := 0, false
		for ; i < len(toks); i++ {
			switch toks[i] {
			case anyToken:
				stars++
			case anyTokens:
				hash = true
			case tail:
				stars++
				hash = true
			default:
				goto run
			}
		}
	run:
		for ; stars > 0; stars-- {
			out = append(out, anyToken)
		}
		if hash {
			out = append(out, anyTokens)
		}
	}
	return out
}

// intersects reports whether some subject matches both canonical patterns
// a and b: a walk of the product of their automata, exact.
func intersects(a, b []string) bool {
	n, m := len(a), len(b)
	seen := make([]bool, (n+1)*(m+1))
	stack := []int{0}
	seen[0] = true
	push := func(i, j int) {
		k := i*(m+1) + j
		if !seen[k] {
			seen[k] = true
			stack = append(stack, k)
		}
	}
	for len(stack) > 0 {
		k := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		i, j := k/(m+1), k%(m+1)
		if i == n && j == m {
			return true
		}
		ha := i < n && a[i] == anyTokens
		hb := j < m && b[j] == anyTokens
		if ha {
			push(i+1, j)
			if j < m {
				push(i, j+1)
			}
		}
		if hb {
			push(i, j+1)
			if i < n {
				push(i+1, j)
			}
		}
		if !ha && !hb && i < n && j < m && (a[i] == anyToken || b[j] == anyToken || a[i] == b[j]) {
			push(i+1, j+1)
		}
	}
	return false
}

// subset reports whether every subject that the canonical pattern f
// matches is matched by the canonical pattern p, by finding one alignment
// of f into p. It never says yes wrongly; a few true cases it misses
// ("#.x" within "*.#") only cost a check per delivery, see Access.
func subset(f, p []string) bool {
	n, m := len(f), len(p)
	seen := make([]bool, (n+1)*(m+1))
	stack := []int{0}
	seen[0] = true
	push := func(i, j int) {
		k := i*(m+1) + j
		if !seen[k] {
			seen[k] = true
			stack = append(stack, k)
		}
	}
	for len(stack) > 0 {
		k := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		i, j := k/(m+1), k%(m+1)
		if i == n && j == m {
			return true
		}
		if j < m && p[j] == anyTokens {
			push(i, j+1)
			if i < n {
				push(i+1, j)
			}
			continue
		}
		if i < n && j < m && f[i] != anyTokens {
			if p[j] == anyToken || (f[i] != anyToken && f[i] == p[j]) {
				push(i+1, j+1)
			}
		}
	}
	return false
}
