package packet

import "bytes"

// Topic names and topic filters (MQTT 5.0 §4.7, 3.1.1 §4.7): levels
// separated by '/', with '+' for one level and '#' for the remaining levels
// allowed only in filters.

// sharePrefix starts a shared subscription's filter: $share/{ShareName}/{filter}
// (MQTT 5.0 §4.8.2). Brokers accept it from 3.1.1 clients too.
const sharePrefix = "$share/"

// ValidTopicName reports whether t may name the topic of a PUBLISH: at
// least one character (MQTT-4.7.3-1) and no wildcard characters
// (MQTT-3.3.2-2). It does not check UTF-8; the decoder has already done so.
func ValidTopicName(t []byte) bool {
	return len(t) > 0 && bytes.IndexByte(t, '+') < 0 && bytes.IndexByte(t, '#') < 0
}

// ValidTopicFilter reports whether f is a well-formed topic filter: at least
// one character (MQTT-4.7.3-1), '#' only as the whole last level
// (MQTT-4.7.1-1), '+' only as a whole level (MQTT-4.7.1-2), and for a
// shared subscription a non-empty share name without wildcards or '/'
// followed by a valid filter (MQTT-4.8.2-1, MQTT-4.8.2-2).
func ValidTopicFilter(f []byte) bool {
	if len(f) >= len(sharePrefix) && string(f[:len(sharePrefix)]) == sharePrefix {
		rest := f[len(sharePrefix):]
		i := bytes.IndexByte(rest, '/')
		if i <= 0 {
			return false
		}
		name := rest[:i]
		if bytes.IndexByte(name, '+') >= 0 || bytes.IndexByte(name, '#') >= 0 {
			return false
		}
		f = rest[i+1:]
	}
	if len(f) == 0 {
		return false
	}
	for i, c := range f {
		switch c {
		case '#':
			// The whole last level: at the end, and the first byte or after '/'.
			if i != len(f)-1 || (i > 0 && f[i-1] != '/') {
				return false
			}
		case '+':
			if (i > 0 && f[i-1] != '/') || (i < len(f)-1 && f[i+1] != '/') {
				return false
			}
		}
	}
	return true
}

// isShared reports whether a (valid) filter is a shared subscription.
func isShared(f []byte) bool {
	return len(f) >= len(sharePrefix) && string(f[:len(sharePrefix)]) == sharePrefix
}
