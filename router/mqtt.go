package router

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// maxMQTTString is the longest MQTT UTF-8 string, topic names and filters
// included (MQTT 3.1.1 section 1.5.3, 5.0 section 1.5.4).
const maxMQTTString = 65535

// validMQTTString is checkMQTTString without the error, so that s does
// not escape.
func validMQTTString(s string) bool {
	return s != "" && len(s) <= maxMQTTString && utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}

// checkMQTTString applies the rules MQTT sets for every topic name and
// filter: at least one character (MQTT-4.7.3-1), well-formed UTF-8
// (MQTT-1.5.3-1), no U+0000 (MQTT-4.7.3-2), at most 65535 bytes.
func checkMQTTString(s string, kind error) error {
	switch {
	case s == "":
		return fmt.Errorf("%w: empty", kind)
	case len(s) > maxMQTTString:
		return fmt.Errorf("%w: %d bytes, more than %d", kind, len(s), maxMQTTString)
	case strings.Count(s, "/") >= MaxTokens:
		return fmt.Errorf("%w: more than %d levels", kind, MaxTokens)
	case !utf8.ValidString(s):
		return fmt.Errorf("%w %q: not UTF-8", kind, s)
	case strings.IndexByte(s, 0) >= 0:
		return fmt.Errorf("%w %q: holds U+0000", kind, s)
	}
	return nil
}

// SubjectFromMQTTTopic returns the subject of an MQTT topic name: each
// level is a token, encoded as doc.go describes, so "a/b/c" is "a.b.c",
// "a//b" is "a.%.b" and "v1.2/x" is "v1%2E2.x". It returns ErrInvalidTopic
// for a topic name MQTT forbids, including one with a wildcard character
// (MQTT-3.3.2-2).
func SubjectFromMQTTTopic(topic string) (string, error) {
	if err := checkMQTTString(topic, ErrInvalidTopic); err != nil {
		return "", err
	}
	if i := strings.IndexAny(topic, "+#"); i >= 0 {
		return "", fmt.Errorf("%w %q: wildcard %q in a topic name", ErrInvalidTopic, topic, topic[i])
	}
	plain := true
	for rest := topic; plain; {
		level, tail, more := strings.Cut(rest, "/")
		plain = plainLevel(level)
		if !more {
			break
		}
		rest = tail
	}
	if plain {
		return strings.ReplaceAll(topic, "/", "."), nil
	}
	return string(appendTopicSubject(make([]byte, 0, len(topic)+8), topic)), nil
}

// AppendSubjectFromMQTTTopic appends the subject of an MQTT topic name to
// dst, as SubjectFromMQTTTopic, without allocating when dst has room: the
// MQTT gateway's publish path, with MatchBytes.
func AppendSubjectFromMQTTTopic(dst []byte, topic string) ([]byte, error) {
	// Errors quote a copy of topic so that topic does not escape: a caller
	// may pass a string converted from bytes without allocating.
	if !validMQTTString(topic) || strings.ContainsAny(topic, "+#") || strings.Count(topic, "/") >= MaxTokens {
		_, err := SubjectFromMQTTTopic(strings.Clone(topic))
		return dst, err
	}
	return appendTopicSubject(dst, topic), nil
}

func appendTopicSubject(dst []byte, topic string) []byte {
	for rest := topic; ; {
		level, tail, more := strings.Cut(rest, "/")
		dst = appendToken(dst, level)
		if !more {
			return dst
		}
		dst = append(dst, '.')
		rest = tail
	}
}

// PatternFromMQTTFilter returns the pattern of an MQTT topic filter: '+' is
// '*', a trailing '#' is '#' (which matches the parent level too, as MQTT
// requires: "a/#" matches "a"), and other levels are encoded as in
// SubjectFromMQTTTopic. Subscriptions made from MQTT filters should set
// Subscription.SkipDollar. It returns ErrInvalidFilter for a filter MQTT
// forbids: empty, '#' not alone in the last level (MQTT-4.7.1-2), '+' not
// alone in its level (MQTT-4.7.1-3).
func PatternFromMQTTFilter(filter string) (string, error) {
	if err := checkMQTTString(filter, ErrInvalidFilter); err != nil {
		return "", err
	}
	buf := make([]byte, 0, len(filter)+8)
	for i, rest := 0, filter; ; i++ {
		level, tail, more := strings.Cut(rest, "/")
		switch {
		case level == "+":
			buf = append(buf, '*')
		case level == "#":
			if more {
				return "", fmt.Errorf("%w %q: '#' must be the last level", ErrInvalidFilter, filter)
			}
			buf = append(buf, '#')
		case strings.ContainsAny(level, "+#"):
			return "", fmt.Errorf("%w %q: level %d mixes a wildcard with text", ErrInvalidFilter, filter, i)
		default:
			buf = appendToken(buf, level)
		}
		if !more {
			break
		}
		buf = append(buf, '.')
		rest = tail
	}
	return string(buf), nil
}

// MQTTTopicFromSubject returns the MQTT topic name of a subject, undoing
// the encoding of SubjectFromMQTTTopic. It returns ErrNotRepresentable for
// a subject no MQTT topic maps to: the empty subject, or a token that holds
// '/', '+', '#' or U+0000 (a NATS subject "a/b.c", an AMQP key "a#b"), or
// that is not UTF-8. A gateway skips such messages for MQTT subscribers.
func MQTTTopicFromSubject(subject string) (string, error) {
	buf, err := AppendMQTTTopicFromSubject(make([]byte, 0, len(subject)), subject)
	if err != nil {
		return "", err
	}
	return string(buf), nil
}

// AppendMQTTTopicFromSubject appends the MQTT topic name of a subject to
// dst, as MQTTTopicFromSubject, without allocating when dst has room: the
// MQTT gateway's delivery path. On error dst is returned as it was.
func AppendMQTTTopicFromSubject(dst []byte, subject string) ([]byte, error) {
	if subject == "" {
		return dst, fmt.Errorf("%w: the empty subject has no MQTT topic", ErrNotRepresentable)
	}
	// Errors quote a copy of subject so that subject does not escape.
	start := len(dst)
	buf := dst
	for rest := subject; ; {
		tok, tail, more := strings.Cut(rest, ".")
		buf = appendLevel(buf, tok)
		if !more {
			break
		}
		buf = append(buf, '/')
		rest = tail
	}
	if len(buf) == start {
		return dst, fmt.Errorf("%w: subject %q is one empty level, and an MQTT topic is not empty", ErrNotRepresentable, strings.Clone(subject))
	}
	if !mqttLevelsOK(subject, buf[start:]) {
		return dst, mqttRepresentable(strings.Clone(subject), buf[start:])
	}
	return buf, nil
}

// mqttLevelsOK is mqttRepresentable without the error, so that subject
// does not escape.
func mqttLevelsOK(subject string, buf []byte) bool {
	if strings.Count(subject, ".") != countByte(buf, '/') {
		return false
	}
	for _, c := range buf {
		if c == '+' || c == '#' || c == 0 {
			return false
		}
	}
	return utf8.Valid(buf)
}

// mqttRepresentable checks that the levels decoded from subject into buf
// form a topic name whose own encoding is subject again.
func mqttRepresentable(subject string, buf []byte) error {
	if strings.Count(subject, ".") != countByte(buf, '/') {
		return fmt.Errorf("%w: subject %q has a token with '/'", ErrNotRepresentable, subject)
	}
	for _, c := range buf {
		if c == '+' || c == '#' || c == 0 {
			return fmt.Errorf("%w: subject %q holds %q, forbidden in an MQTT topic", ErrNotRepresentable, subject, c)
		}
	}
	if !utf8.Valid(buf) {
		return fmt.Errorf("%w: subject %q is not UTF-8", ErrNotRepresentable, subject)
	}
	return nil
}

func countByte(b []byte, c byte) int {
	n := 0
	for _, x := range b {
		if x == c {
			n++
		}
	}
	return n
}

// MQTTFilterFromPattern returns the MQTT topic filter of a pattern: '*' is
// '+', a final '#' is '#', '>' is "+/#" (one or more levels), and literal
// tokens are decoded as in MQTTTopicFromSubject. It returns ErrInvalidPattern
// for an invalid pattern and ErrNotRepresentable for one MQTT cannot say: a
// '#' before the last token, the empty pattern, or a token MQTT forbids.
func MQTTFilterFromPattern(pattern string) (string, error) {
	var stack [maxPatternStack]string
	toks, _, err := parsePattern(pattern, stack[:0])
	if err != nil {
		return "", err
	}
	if len(toks) == 0 {
		return "", fmt.Errorf("%w: the empty pattern has no MQTT filter", ErrNotRepresentable)
	}
	buf := make([]byte, 0, len(pattern)+2)
	for i, tok := range toks {
		if i > 0 {
			buf = append(buf, '/')
		}
		switch tok {
		case AnyToken:
			buf = append(buf, '+')
		case Tail:
			buf = append(buf, "+/#"...)
		case AnyTokens:
			if i != len(toks)-1 {
				return "", fmt.Errorf("%w: pattern %q has '#' before its last token", ErrNotRepresentable, pattern)
			}
			buf = append(buf, '#')
		default:
			start := len(buf)
			buf = appendLevel(buf, tok)
			level := buf[start:]
			for _, c := range level {
				if c == '/' || c == '+' || c == '#' || c == 0 {
					return "", fmt.Errorf("%w: pattern %q holds %q, forbidden in an MQTT filter level", ErrNotRepresentable, pattern, c)
				}
			}
		}
	}
	if !utf8.Valid(buf) {
		return "", fmt.Errorf("%w: pattern %q is not UTF-8", ErrNotRepresentable, pattern)
	}
	return string(buf), nil
}
