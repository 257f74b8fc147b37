package router

import (
	"fmt"
	"strings"
)

// maxRoutingKey is the longest AMQP 0-9-1 routing key, a short string.
const maxRoutingKey = 255

// SubjectFromAMQPRoutingKey returns the subject of an AMQP routing key.
// Words are tokens, encoded as doc.go describes, so "a.b.c" is "a.b.c",
// the empty key is the empty subject (zero tokens, matched only by "#" and
// the empty binding key), and an empty word is the token "%" ("a..b" is
// "a.%.b"), which '*' matches as RabbitMQ's topic exchange does. It
// returns ErrInvalidRoutingKey for a key longer than 255 bytes.
func SubjectFromAMQPRoutingKey(key string) (string, error) {
	return amqpKey(key, false)
}

// PatternFromAMQPBindingKey returns the pattern of a topic exchange binding
// key: the words "*" and "#" are wildcards, other words are encoded as in
// SubjectFromAMQPRoutingKey.
func PatternFromAMQPBindingKey(key string) (string, error) {
	return amqpKey(key, true)
}

func amqpKey(key string, binding bool) (string, error) {
	if len(key) > maxRoutingKey {
		return "", fmt.Errorf("%w: %d bytes, more than %d", ErrInvalidRoutingKey, len(key), maxRoutingKey)
	}
	if key == "" {
		return "", nil
	}
	plain := true
	for rest := key; plain; {
		word, tail, more := strings.Cut(rest, ".")
		plain = plainLevel(word) || binding && (word == AnyToken || word == AnyTokens)
		if !more {
			break
		}
		rest = tail
	}
	if plain {
		return key, nil
	}
	buf := make([]byte, 0, len(key)+8)
	for rest := key; ; {
		word, tail, more := strings.Cut(rest, ".")
		if binding && (word == AnyToken || word == AnyTokens) {
			buf = append(buf, word...)
		} else {
			buf = appendToken(buf, word)
		}
		if !more {
			break
		}
		buf = append(buf, '.')
		rest = tail
	}
	return string(buf), nil
}

// AMQPRoutingKeyFromSubject returns the AMQP routing key of a subject,
// undoing the encoding of SubjectFromAMQPRoutingKey. It returns
// ErrNotRepresentable when a token decodes to a word holding '.', or the
// key would be longer than 255 bytes.
func AMQPRoutingKeyFromSubject(subject string) (string, error) {
	if subject == "" {
		return "", nil
	}
	buf := make([]byte, 0, len(subject))
	for rest := subject; ; {
		tok, tail, more := strings.Cut(rest, ".")
		start := len(buf)
		buf = appendLevel(buf, tok)
		for _, c := range buf[start:] {
			if c == '.' {
				return "", fmt.Errorf("%w: subject %q has a token holding '.', which would split an AMQP word", ErrNotRepresentable, subject)
			}
		}
		if !more {
			break
		}
		buf = append(buf, '.')
		rest = tail
	}
	if len(buf) > maxRoutingKey {
		return "", fmt.Errorf("%w: subject %q is longer than an AMQP routing key", ErrNotRepresentable, subject)
	}
	return string(buf), nil
}
