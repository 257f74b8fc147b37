package router

// Pattern is one compiled pattern, for testing subjects against it outside
// a Router: the retained messages an MQTT subscription should see, the
// messages a consumer's filter lets through. A Router is the tool for many
// patterns against one subject; Pattern is for one pattern against many
// subjects. The zero value matches only the empty subject.
type Pattern struct {
	toks []string
	src  string
}

// CompilePattern validates and normalises p.
func CompilePattern(p string) (Pattern, error) {
	toks, _, err := parsePattern(p, nil)
	if err != nil {
		return Pattern{}, err
	}
	return Pattern{toks: toks, src: p}, nil
}

// String returns the pattern as it was given.
func (p Pattern) String() string { return p.src }

// Matches reports whether subject, which must be valid, matches the
// pattern. SkipDollar is the caller's to apply. It does not allocate.
func (p Pattern) Matches(subject string) bool {
	return matchPattern(p.toks, subject)
}
