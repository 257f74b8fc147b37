package router

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Functions wrap them with the offending input and the
// reason, so callers branch with errors.Is and log the message as it is.
var (
	// ErrInvalidSubject reports a subject that breaks the grammar in doc.go:
	// an empty token, a wildcard token, or a space or control byte.
	ErrInvalidSubject = errors.New("router: invalid subject")
	// ErrInvalidPattern reports a subscription pattern that breaks the
	// grammar in doc.go, such as a '>' that is not the last token.
	ErrInvalidPattern = errors.New("router: invalid pattern")
	// ErrInvalidQueue reports a queue group name with a space or control byte.
	ErrInvalidQueue = errors.New("router: invalid queue group name")
	// ErrInvalidTopic reports an MQTT topic name that MQTT itself forbids.
	ErrInvalidTopic = errors.New("router: invalid MQTT topic name")
	// ErrInvalidFilter reports an MQTT topic filter that MQTT itself forbids.
	ErrInvalidFilter = errors.New("router: invalid MQTT topic filter")
	// ErrInvalidRoutingKey reports an AMQP routing or binding key longer
	// than an AMQP short string.
	ErrInvalidRoutingKey = errors.New("router: invalid AMQP routing key")
	// ErrNotRepresentable reports a subject or pattern that has no
	// equivalent in the target protocol, such as a NATS subject whose token
	// holds a '/' translated to an MQTT topic.
	ErrNotRepresentable = errors.New("router: not representable in the target protocol")
)

// Wildcard tokens of the subject grammar.
const (
	// Separator separates the tokens of a subject.
	Separator = '.'
	// AnyToken matches exactly one token (NATS '*', AMQP '*', MQTT '+').
	AnyToken = "*"
	// Tail matches one or more trailing tokens; it must be the last token
	// of a pattern (NATS '>').
	Tail = ">"
	// AnyTokens matches zero or more tokens at any position (AMQP '#',
	// and MQTT's trailing '#').
	AnyTokens = "#"
)

// MaxTokens bounds the tokens of a subject or pattern. Matching costs the
// product of a subject's tokens and the active '#' nodes of the patterns it
// walks into, so a client subscribing to "#.*.#.*..." with thousands of
// levels and publishing as deep a subject could make one match take
// seconds and hold every loop behind it. 128 is what an AMQP routing key
// can hold (255 bytes); MQTT brokers cap topic levels lower (VerneMQ at 10
// by default), and no real subject comes close.
const MaxTokens = 128

// maxPatternStack is how many tokens a pattern may have before parsing it
// spills from the stack buffer to the heap; deeper patterns still work.
const maxPatternStack = 16

// isWildcard reports whether tok is one of the three wildcard tokens.
func isWildcard(tok string) bool {
	return len(tok) == 1 && (tok[0] == '*' || tok[0] == '>' || tok[0] == '#')
}

// badByte reports whether c may not appear in a subject token: spaces and
// control bytes end a subject in the NATS protocol, so they never reach it.
func badByte(c byte) bool {
	return c <= ' ' || c == 0x7f
}

// checkToken validates the bytes of one token.
func checkToken(tok string) (byte, bool) {
	if tok == "" {
		return 0, false
	}
	for i := 0; i < len(tok); i++ {
		if badByte(tok[i]) {
			return tok[i], false
		}
	}
	return 0, true
}

// ValidateSubject reports whether s is a subject a message may be published
// on: tokens separated by '.', each non-empty, none a wildcard, no spaces or
// control bytes. The empty string is the valid subject with zero tokens (the
// AMQP empty routing key).
func ValidateSubject(s string) error {
	if s == "" {
		return nil
	}
	for i, rest := 0, s; ; i++ {
		tok, tail, more := strings.Cut(rest, ".")
		if c, ok := checkToken(tok); !ok {
			if tok == "" {
				return fmt.Errorf("%w %q: token %d is empty", ErrInvalidSubject, s, i)
			}
			return fmt.Errorf("%w %q: byte %#x in token %d", ErrInvalidSubject, s, c, i)
		}
		if isWildcard(tok) {
			return fmt.Errorf("%w %q: wildcard %q in a published subject", ErrInvalidSubject, s, tok)
		}
		if !more {
			return nil
		}
		if i+1 >= MaxTokens {
			return fmt.Errorf("%w: more than %d tokens", ErrInvalidSubject, MaxTokens)
		}
		rest = tail
	}
}

// ValidatePattern reports whether p is a valid subscription pattern: a
// subject whose tokens may also be '*', '#', or a final '>'.
func ValidatePattern(p string) error {
	var buf [maxPatternStack]string
	_, _, err := parsePattern(p, buf[:0])
	return err
}

// parsePattern splits p into tokens appended to dst and normalises them so
// that equivalent patterns share one trie path: a run of '#' is one '#'
// (zero-or-more twice is zero-or-more) and '#' before '>' is dropped (zero or
// more then one or more is one or more). After this, no '#' node of the trie
// has a '#' or '>' child, which the matcher relies on. literal reports a
// pattern without wildcards. The tokens are substrings of p.
func parsePattern(p string, dst []string) (toks []string, literal bool, err error) {
	literal = true
	if p == "" {
		return dst, true, nil
	}
	for i, rest := 0, p; ; i++ {
		tok, tail, more := strings.Cut(rest, ".")
		if c, ok := checkToken(tok); !ok {
			if tok == "" {
				return nil, false, fmt.Errorf("%w %q: token %d is empty", ErrInvalidPattern, p, i)
			}
			return nil, false, fmt.Errorf("%w %q: byte %#x in token %d", ErrInvalidPattern, p, c, i)
		}
		switch tok {
		case AnyToken:
			literal = false
			dst = append(dst, tok)
		case AnyTokens:
			literal = false
			if n := len(dst); n == 0 || dst[n-1] != AnyTokens {
				dst = append(dst, tok)
			}
		case Tail:
			literal = false
			if more {
				return nil, false, fmt.Errorf("%w %q: '>' must be the last token", ErrInvalidPattern, p)
			}
			if n := len(dst); n > 0 && dst[n-1] == AnyTokens {
				dst = dst[:n-1]
			}
			dst = append(dst, tok)
		default:
			dst = append(dst, tok)
		}
		if !more {
			return dst, literal, nil
		}
		if i+1 >= MaxTokens {
			return nil, false, fmt.Errorf("%w: more than %d tokens", ErrInvalidPattern, MaxTokens)
		}
		rest = tail
	}
}

// validQueue reports whether q may name a queue group. The empty name means
// no group; any other name may not hold spaces or control bytes.
func validQueue(q string) error {
	for i := 0; i < len(q); i++ {
		if badByte(q[i]) {
			return fmt.Errorf("%w %q: byte %#x", ErrInvalidQueue, q, q[i])
		}
	}
	return nil
}

// Token encoding. MQTT levels and AMQP words may be empty, may hold '.',
// spaces and control bytes, and may be exactly "*", ">" or "#" as literal
// text; none of these can be a subject token as they are. The encoding
// below maps any level or word to a valid, non-wildcard token, one to one,
// and leaves every other level untouched, so that the MQTT topic a/b/c is
// the subject a.b.c:
//
//   - the empty level is the token "%";
//   - a level that is exactly "*", ">" or "#" is "%2A", "%3E" or "%23";
//   - inside a level, '%', '.', space, control bytes and DEL are written
//     as '%' and two upper-case hex digits ("50%" is "50%25", "v1.2" is
//     "v1%2E2").
//
// Decoding undoes exactly these escapes and keeps any other '%' as it is, so
// a NATS subject that was not produced by the encoding ("rate.50%") still
// decodes to something sensible ("rate/50%").

const upperHex = "0123456789ABCDEF"

// escapeByte reports whether c is escaped inside a level.
func escapeByte(c byte) bool {
	return c == '%' || c == '.' || badByte(c)
}

// plainLevel reports whether level encodes to itself.
func plainLevel(level string) bool {
	if level == "" || isWildcard(level) {
		return false
	}
	for i := 0; i < len(level); i++ {
		if escapeByte(level[i]) {
			return false
		}
	}
	return true
}

// appendToken appends the token that encodes level.
func appendToken(dst []byte, level string) []byte {
	switch {
	case level == "":
		return append(dst, '%')
	case isWildcard(level):
		return append(dst, '%', upperHex[level[0]>>4], upperHex[level[0]&15])
	}
	for i := 0; i < len(level); i++ {
		c := level[i]
		if escapeByte(c) {
			dst = append(dst, '%', upperHex[c>>4], upperHex[c&15])
		} else {
			dst = append(dst, c)
		}
	}
	return dst
}

// unhex returns the value of an upper-case hex digit, or -1.
func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// appendLevel appends the level that tok encodes.
func appendLevel(dst []byte, tok string) []byte {
	switch tok {
	case "%":
		return dst
	case "%2A", "%3E", "%23":
		return append(dst, byte(unhex(tok[1])<<4|unhex(tok[2])))
	}
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		if c == '%' && i+2 < len(tok) {
			hi, lo := unhex(tok[i+1]), unhex(tok[i+2])
			if hi >= 0 && lo >= 0 && escapeByte(byte(hi<<4|lo)) {
				dst = append(dst, byte(hi<<4|lo))
				i += 2
				continue
			}
		}
		dst = append(dst, c)
	}
	return dst
}
