package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// A subject template names the subject of each client: "{n}" is replaced
// by the client's index from 0, so "site.{n}.temp" gives every simulated
// device a subject of its own (an MQTT topic: "site/{n}/temp"). A template
// without "{n}" is one subject shared by all.
const templateVar = "{n}"

// dialect is how a protocol writes subjects and filters: the separator of
// their tokens and the two wildcards, one token and the rest.
type dialect struct {
	name           string
	sep, one, rest string
}

var (
	natsDialect = dialect{name: "nats", sep: ".", one: "*", rest: ">"}
	mqttDialect = dialect{name: "mqtt", sep: "/", one: "+", rest: "#"}
	// amqpDialect is AMQP's topic exchange: routing keys of dot-separated
	// words, binding keys with * for one word and # for zero or more.
	amqpDialect = dialect{name: "amqp", sep: ".", one: "*", rest: "#"}
	// stompDialect is AMQP's, with the destination's prefix in the first
	// token: /topic/site.{n}.temp is matched by /topic/site.*.temp
	// through amq.topic.
	stompDialect = dialect{name: "stomp", sep: ".", one: "*", rest: "#"}
)

// checkTemplate reports why t cannot name NATS subjects to publish on.
func checkTemplate(t string) error { return natsDialect.checkTemplate(t) }

// checkTemplate reports why t cannot name subjects to publish on.
func (d dialect) checkTemplate(t string) error {
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
	for _, tok := range strings.Split(rest, d.sep) {
		switch {
		case tok == "" && d == natsDialect:
			return fmt.Errorf("subject %q has an empty token", t)
		case tok == d.one, tok == d.rest:
			return fmt.Errorf("subject %q: publishers need a literal subject, not the wildcard %q", t, tok)
		case d == mqttDialect && strings.ContainsAny(tok, "+#"):
			return fmt.Errorf("topic %q: a topic name has no wildcards", t)
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

// wildcard returns the NATS filter that matches every client's subject.
func wildcard(t string) string { return natsDialect.wildcard(t) }

// wildcard returns the filter that matches every client's subject: each
// token holding "{n}" becomes the one-token wildcard.
func (d dialect) wildcard(t string) string {
	if !strings.Contains(t, templateVar) {
		return t
	}
	toks := strings.Split(t, d.sep)
	for i, tok := range toks {
		if strings.Contains(tok, templateVar) {
			toks[i] = d.one
		}
	}
	return strings.Join(toks, d.sep)
}

// matches reports whether subject is matched by filter in NATS syntax.
func matches(filter, subject string) bool { return natsDialect.matches(filter, subject) }

// matches reports whether subject is matched by filter: the one-token
// wildcard is one token; a final rest wildcard is one or more in NATS,
// zero or more in MQTT and AMQP ("a/#" matches "a"). The tool uses it to know
// which publishers each subscriber should hear from.
func (d dialect) matches(filter, subject string) bool {
	f := strings.Split(filter, d.sep)
	s := strings.Split(subject, d.sep)
	for i, tok := range f {
		if tok == d.rest && i == len(f)-1 {
			if d.rest == "#" {
				return len(s) >= i
			}
			return len(s) > i
		}
		if i >= len(s) || (tok != d.one && tok != s[i]) {
			return false
		}
	}
	return len(f) == len(s)
}
