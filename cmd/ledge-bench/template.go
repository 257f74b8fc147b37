package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// A subject template names the subject of each client: "{n}" is replaced
// by the client's index from 0, so "site.{n}.temp" gives every simulated
// device a subject of its own. A template without "{n}" is one subject
// shared by all.
const templateVar = "{n}"

// checkTemplate reports why t cannot name subjects to publish on.
func checkTemplate(t string) error {
	if t == "" {
		return errors.New("empty subject")
	}
	if strings.ContainsAny(t, " \t\r\n") {
		return fmt.Errorf("subject %q contains white space", t)
	}
	rest := strings.ReplaceAll(t, templateVar, "0")
	if strings.ContainsAny(rest, "{}") {
		return fmt.Errorf("subject %q: the only template variable is %s", t, templateVar)
	}
	for _, tok := range strings.Split(rest, ".") {
		switch tok {
		case "":
			return fmt.Errorf("subject %q has an empty token", t)
		case "*", ">":
			return fmt.Errorf("subject %q: publishers need a literal subject, not the wildcard %q", t, tok)
		}
	}
	return nil
}

// expand returns the subject of client n.
func expand(t string, n int) string {
	if !strings.Contains(t, templateVar) {
		return t
	}
	return strings.ReplaceAll(t, templateVar, strconv.Itoa(n))
}

// wildcard returns the filter that matches every client's subject: each
// token holding "{n}" becomes "*".
func wildcard(t string) string {
	if !strings.Contains(t, templateVar) {
		return t
	}
	toks := strings.Split(t, ".")
	for i, tok := range toks {
		if strings.Contains(tok, templateVar) {
			toks[i] = "*"
		}
	}
	return strings.Join(toks, ".")
}

// matches reports whether subject is matched by filter in NATS syntax:
// "*" is one token, a final ">" one or more. The tool uses it to know
// which publishers each subscriber should hear from.
func matches(filter, subject string) bool {
	f := strings.Split(filter, ".")
	s := strings.Split(subject, ".")
	for i, tok := range f {
		if tok == ">" && i == len(f)-1 {
			return len(s) > i
		}
		if i >= len(s) || (tok != "*" && tok != s[i]) {
			return false
		}
	}
	return len(f) == len(s)
}
