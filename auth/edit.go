package auth

import (
	"bytes"
	"fmt"
	"strings"
)

// Editing a users file in place, for "ledge passwd": the lines of other
// sections, comments and the order are kept; only the user's credential
// lines change. The result is checked with Parse before it is returned,
// so an edit never produces a file the broker would refuse.

// SetPassword returns the file text with user's password set to hash: the
// user's password line is replaced, or added to its section, or a new
// section [user NAME] is appended.
func SetPassword(name string, text []byte, user, hash string) ([]byte, error) {
	return setCredential(name, text, user, "password", hash, true)
}

// AddToken returns the file text with a token digest (TokenDigest) added
// to user's section, which is made if missing. A user may have several
// tokens; each is one line.
func AddToken(name string, text []byte, user, digest string) ([]byte, error) {
	return setCredential(name, text, user, "token", digest, false)
}

// DeleteUser returns the file text without user's section, and whether
// there was one.
func DeleteUser(name string, text []byte, user string) ([]byte, bool, error) {
	lines := splitLines(text)
	start, end := findUser(lines, user)
	if start < 0 {
		return text, false, nil
	}
	out := joinLines(append(append([]string(nil), lines[:start]...), lines[end:]...))
	if _, err := Parse(name, bytes.NewReader(out)); err != nil {
		return nil, false, err
	}
	return out, true, nil
}

func setCredential(name string, text []byte, user, key, value string, replace bool) ([]byte, error) {
	if err := checkUserName(user); err != nil {
		return nil, err
	}
	lines := splitLines(text)
	setting := key + " = " + value
	start, end := findUser(lines, user)
	switch {
	case start < 0:
		if n := len(lines); n > 0 && strings.TrimSpace(lines[n-1]) != "" {
			lines = append(lines, "")
		}
		lines = append(lines, "[user "+user+"]", setting)
	default:
		done := false
		if replace {
			for i := start + 1; i < end; i++ {
				if k, _, ok := strings.Cut(lines[i], "="); ok && strings.TrimSpace(k) == key {
					lines[i] = setting
					done = true
					break
				}
			}
		}
		if !done {
			lines = append(lines[:start+1], append([]string{setting}, lines[start+1:]...)...)
		}
	}
	out := joinLines(lines)
	if _, err := Parse(name, bytes.NewReader(out)); err != nil {
		return nil, fmt.Errorf("the file would not be valid after the change: %w", err)
	}
	return out, nil
}

// findUser returns the lines of user's section: its header's index and
// the index of the next section's header (or the end); -1 when missing.
func findUser(lines []string, user string) (start, end int) {
	start = -1
	for i, l := range lines {
		t := strings.TrimSpace(l)
		if !strings.HasPrefix(t, "[") {
			continue
		}
		if start >= 0 {
			return start, i
		}
		f := strings.Fields(strings.TrimSuffix(strings.TrimPrefix(t, "["), "]"))
		if len(f) == 2 && f[0] == "user" && f[1] == user {
			start = i
		}
	}
	return start, len(lines)
}

func splitLines(text []byte) []string {
	s := strings.TrimSuffix(string(text), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func joinLines(lines []string) []byte {
	if len(lines) == 0 {
		return nil
	}
	return []byte(strings.Join(lines, "\n") + "\n")
}
