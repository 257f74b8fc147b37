package auth

import (
	"regexp"
	"slices"
	"strings"
)

// dirRules are one direction's rules of one connection, expanded.
type dirRules struct {
	// all: the direction has no rules, so everything is allowed
	// (nats-server's meaning of a user without permissions).
	all bool
	// allowAll: no allow rule was written, only denies.
	allowAll bool
	// Tokens for matching subjects, and their canonical forms for
	// relating filters to rules (expandTail).
	allow, deny   [][]string
	allowC, denyC [][]string
}

func (d *dirRules) allows(subject []byte) bool {
	if d.all {
		return true
	}
	for _, p := range d.deny {
		if matchTokens(p, subject) {
			return false
		}
	}
	if d.allowAll {
		return true
	}
	for _, p := range d.allow {
		if matchTokens(p, subject) {
			return true
		}
	}
	return false
}

func (d *dirRules) denied(subject []byte) bool {
	for _, p := range d.deny {
		if matchTokens(p, subject) {
			return true
		}
	}
	return false
}

// Access is the answer to a subscription: refused, allowed as it is, or
// allowed with each delivery checked because the filter is wider than the
// rules (a wildcard over a denied subject, or over other clients' inboxes).
type Access uint8

const (
	// Denied: the filter matches nothing the rules allow, or only what
	// they deny; the subscription is refused.
	Denied Access = iota
	// Allowed: everything the filter matches is allowed; deliveries need
	// no check.
	Allowed
	// Filtered: the filter matches allowed and forbidden subjects; the
	// subscription is made and each delivery asks MayReceive.
	Filtered
)

func (a Access) String() string {
	switch a {
	case Allowed:
		return "allowed"
	case Filtered:
		return "filtered"
	}
	return "denied"
}

// subscribe relates a filter's canonical tokens to the rules.
func (d *dirRules) subscribe(f []string) Access {
	if d.all {
		return Allowed
	}
	if len(f) > maxCheckDepth {
		return Denied
	}
	for _, p := range d.denyC {
		if subset(f, p) {
			return Denied
		}
	}
	covered, touches := d.allowAll, d.allowAll
	if !d.allowAll {
		for _, p := range d.allowC {
			if subset(f, p) {
				covered, touches = true, true
				break
			}
			if !touches && intersects(f, p) {
				touches = true
			}
		}
	}
	if !touches {
		return Denied
	}
	if covered {
		for _, p := range d.denyC {
			if intersects(f, p) {
				return Filtered
			}
		}
		return Allowed
	}
	return Filtered
}

// grant is what one connection may do, compiled from its user's rules with
// its values substituted. It is immutable; a reload gives the connection a
// new one.
type grant struct {
	admin     bool
	pub, sub  dirRules
	responses *ResponsePermission
	// Resource permissions: nil matches nothing; resAll allows every one.
	resAll                 bool
	configure, write, read *regexp.Regexp
	limits                 Limits
	roles                  []Role
	// private: reply subjects of other clients are hidden from this
	// connection's wildcard subscriptions (see inbox.go).
	private bool
}

// everything is the grant of admins, of clients on loopback in the default
// mode, and of the broker's own connections.
var everything = &grant{admin: true, pub: dirRules{all: true}, sub: dirRules{all: true}, resAll: true,
	roles: []Role{RoleAdmin, RoleMonitor}}

// The resource permissions of a user with message rules but no amqp-*
// lines: its own server-named queues, amq.topic (where the message rules
// apply) and direct reply-to.
const (
	defaultConfigure = `^amq\.gen-`
	defaultWrite     = `^(amq\.gen-.*|amq\.topic|amq\.default)$`
	defaultRead      = `^(amq\.gen-.*|amq\.topic|amq\.rabbitmq\.reply-to)$`
)

var (
	defaultConfigureRe = regexp.MustCompile(defaultConfigure)
	defaultWriteRe     = regexp.MustCompile(defaultWrite)
	defaultReadRe      = regexp.MustCompile(defaultRead)
)

// compile expands e for one connection.
func compile(e *effective, v Values) *grant {
	if e.hasRole(RoleAdmin) {
		g := *everything
		g.limits = e.limits
		g.roles = slices.Clone(e.roles)
		return &g
	}
	g := &grant{responses: e.responses, limits: e.limits, roles: slices.Clone(e.roles)}
	g.pub = expandRules(e.publish, v)
	g.sub = expandRules(e.subscribe, v)
	g.private = !g.sub.all
	if e.unrestricted && !e.configure.set && !e.write.set && !e.read.set {
		g.resAll = true
		return g
	}
	g.configure = resourceRegexp(e.configure, defaultConfigureRe, e.unrestricted, v)
	g.write = resourceRegexp(e.write, defaultWriteRe, e.unrestricted, v)
	g.read = resourceRegexp(e.read, defaultReadRe, e.unrestricted, v)
	return g
}

// matchAll stands for a resource permission that allows everything.
var matchAll = regexp.MustCompile(``)

func resourceRegexp(r resourceRule, def *regexp.Regexp, unrestricted bool, v Values) *regexp.Regexp {
	switch {
	case !r.set && unrestricted:
		return matchAll
	case !r.set:
		return def
	case r.src == "":
		return nil // RabbitMQ: the empty pattern grants nothing
	case !r.vars:
		return r.re
	}
	var b strings.Builder
	for i := 0; i < len(r.src); i++ {
		if r.src[i] == '%' && i+1 < len(r.src) && (r.src[i+1] == 'u' || r.src[i+1] == 'c') {
			val := v.User
			if r.src[i+1] == 'c' {
				val = v.ClientID
			}
			if val == "" {
				// A permission that names a value the connection does
				// not have grants nothing.
				return nil
			}
			b.WriteString(regexp.QuoteMeta(val))
			i++
			continue
		}
		b.WriteByte(r.src[i])
	}
	re, err := regexp.Compile(b.String())
	if err != nil {
		return nil
	}
	return re
}

// expandRules substitutes a direction's rules. An allow rule without a
// value for this connection is left out (it grants nothing); a deny rule
// without one denies with a wildcard in the value's place, so a missing
// value narrows what the connection may do and never widens it.
func expandRules(r rules, v Values) dirRules {
	if r.empty() {
		return dirRules{all: true}
	}
	d := dirRules{allowAll: len(r.allow) == 0}
	for i := range r.allow {
		toks, err := r.allow[i].expand(v)
		if err != nil {
			continue
		}
		d.allow = append(d.allow, toks)
		d.allowC = append(d.allowC, expandTail(toks))
	}
	for i := range r.deny {
		toks, err := r.deny[i].expand(v)
		if err != nil {
			toks = r.deny[i].expandWide(v)
		}
		d.deny = append(d.deny, toks)
		d.denyC = append(d.denyC, expandTail(toks))
	}
	return d
}

// expandWide expands a template, with '*' for each token whose value is
// missing.
func (t *template) expandWide(v Values) []string {
	var toks []string
	for _, tok := range t.toks {
		one := template{toks: []tmplToken{tok}}
		x, err := one.expand(v)
		if err != nil {
			toks = appendNormalized(toks, anyToken)
			continue
		}
		for _, s := range x {
			if s == anyToken || s == tail || s == anyTokens {
				toks = appendNormalized(toks, s)
			} else {
				toks = append(toks, s)
			}
		}
	}
	return toks
}

// Resource kinds and permissions of RabbitMQ's model, for AMQP and STOMP.
type (
	// Resource is the kind of a named resource.
	Resource uint8
	// Perm is what is done to it.
	Perm uint8
)

const (
	Exchange Resource = iota + 1
	Queue
)

const (
	// Configure: declare or delete it.
	Configure Perm = iota + 1
	// Write: publish to an exchange, bind a queue (the queue's side).
	Write
	// Read: consume from or purge a queue, bind from an exchange.
	Read
)

func (p Perm) String() string {
	switch p {
	case Configure:
		return "configure"
	case Write:
		return "write"
	case Read:
		return "read"
	}
	return "perm?"
}

func (r Resource) String() string {
	if r == Exchange {
		return "exchange"
	}
	return "queue"
}

func (g *grant) mayAccess(perm Perm, name string) bool {
	if g.resAll {
		return true
	}
	var re *regexp.Regexp
	switch perm {
	case Configure:
		re = g.configure
	case Write:
		re = g.write
	case Read:
		re = g.read
	}
	return re != nil && re.MatchString(name)
}
