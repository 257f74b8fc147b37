package amqpgw

import (
	"github.com/ledgemq/ledge/broker"
	"github.com/ledgemq/ledge/router"
)

// Exchange types.
const (
	kindDirect  = "direct"
	kindFanout  = "fanout"
	kindTopic   = "topic"
	kindHeaders = "headers"
)

// exchange is a routing table of the gateway's own. Its fields are guarded
// by Server.mu: written by administrative operations under the write lock,
// read by publishes under the read lock.
type exchange struct {
	name       string
	kind       string
	durable    bool
	autoDelete bool
	internal   bool
	args       []byte
	alternate  string

	// bindings are every binding, by identity.
	bindings map[bindingKey]*binding
	// direct: routing key to queues, each with its binding count.
	direct map[string]map[*queue]int
	// fanout: every bound queue with its binding count.
	fanout map[*queue]int
	// topic: binding patterns, the gateway's own router, except for
	// amq.topic whose bindings are in the live router shared with the
	// other protocols.
	topic *router.Router[*queue]
	// live says the bindings are in the live router (amq.topic).
	live bool
	// exBindings are the bindings to other exchanges (exchange.bind),
	// matched one by one: they are few.
	exBindings []*binding
}

type bindingKey struct {
	queue string
	key   string
	args  string
}

type binding struct {
	ex *exchange
	q  *queue
	// dst is the destination of an exchange-to-exchange binding (q nil).
	dst     *exchange
	topic   router.Pattern
	key     string
	args    []byte
	pattern string
}

func newExchange(name, kind string, durable, autoDelete, internal bool, args []byte) *exchange {
	x := &exchange{name: name, kind: kind, durable: durable, autoDelete: autoDelete, internal: internal, args: args,
		bindings: make(map[bindingKey]*binding)}
	if f, ok := lookup(args, "alternate-exchange"); ok {
		if s, ok := f.stringValue(); ok {
			x.alternate = string(s)
		}
	}
	switch kind {
	case kindDirect:
		x.direct = make(map[string]map[*queue]int)
	case kindFanout:
		x.fanout = make(map[*queue]int)
	case kindTopic:
		x.topic = router.New[*queue](router.Options{})
	}
	return x
}

// validKind reports an exchange type the gateway implements.
func validKind(k string) bool {
	switch k {
	case kindDirect, kindFanout, kindTopic, kindHeaders:
		return true
	}
	return false
}

// addBinding inserts b; the caller holds Server.mu.
func (s *Server) addBinding(b *binding) error {
	x := b.ex
	k := bindingKey{b.q.name, b.key, string(b.args)}
	if _, ok := x.bindings[k]; ok {
		return nil
	}
	switch x.kind {
	case kindDirect:
		m := x.direct[b.key]
		if m == nil {
			m = make(map[*queue]int)
			x.direct[b.key] = m
		}
		m[b.q]++
	case kindFanout:
		x.fanout[b.q]++
	case kindTopic:
		p, err := router.PatternFromAMQPBindingKey(b.key)
		if err != nil {
			return err
		}
		b.pattern = p
		if x.live {
			_, err = s.live.Insert(router.Subscription[broker.Receiver]{Pattern: p, Handle: b.q.receiver})
		} else {
			_, err = x.topic.Insert(router.Subscription[*queue]{Pattern: p, Handle: b.q})
		}
		if err != nil {
			return err
		}
	}
	x.bindings[k] = b
	b.q.bindings = append(b.q.bindings, b)
	return nil
}

// removeBinding takes b out; the caller holds Server.mu.
func (s *Server) removeBinding(b *binding) {
	x := b.ex
	k := bindingKey{b.q.name, b.key, string(b.args)}
	if x.bindings[k] != b {
		return
	}
	delete(x.bindings, k)
	switch x.kind {
	case kindDirect:
		if m := x.direct[b.key]; m != nil {
			if m[b.q]--; m[b.q] <= 0 {
				delete(m, b.q)
			}
			if len(m) == 0 {
				delete(x.direct, b.key)
			}
		}
	case kindFanout:
		if x.fanout[b.q]--; x.fanout[b.q] <= 0 {
			delete(x.fanout, b.q)
		}
	case kindTopic:
		// The same queue may be bound under another key with the same
		// pattern; the router holds one entry for both.
		for _, o := range x.bindings {
			if o.q == b.q && o.pattern == b.pattern {
				goto kept
			}
		}
		if x.live {
			s.live.Remove(router.Subscription[broker.Receiver]{Pattern: b.pattern, Handle: b.q.receiver})
		} else {
			x.topic.Remove(router.Subscription[*queue]{Pattern: b.pattern, Handle: b.q})
		}
	kept:
	}
	qb := b.q.bindings
	for i, o := range qb {
		if o == b {
			b.q.bindings = append(qb[:i], qb[i+1:]...)
			break
		}
	}
}

// route appends to dst the queues of x that a message with key and
// headers goes to, each once. The caller holds Server.mu for reading.
// For amq.topic, whose bindings are in the live router, the caller matches
// the live router itself.
func (x *exchange) route(dst []*queue, key []byte, headers []byte, res *router.Result[*queue]) []*queue {
	start := len(dst)
	switch x.kind {
	case kindDirect:
		for q := range x.direct[string(key)] {
			dst = append(dst, q)
		}
	case kindFanout:
		for q := range x.fanout {
			dst = append(dst, q)
		}
	case kindTopic:
		subj, err := router.SubjectFromAMQPRoutingKey(string(key))
		if err != nil {
			return dst
		}
		if x.topic.Match(subj, res) == nil {
			dst = append(dst, res.Subs...)
		}
	case kindHeaders:
		for _, b := range x.bindings {
			if headersMatch(b.args, headers) {
				dst = appendUnique(dst, start, b.q)
			}
		}
	}
	return dst
}

func appendUnique(dst []*queue, start int, q *queue) []*queue {
	for _, o := range dst[start:] {
		if o == q {
			return dst
		}
	}
	return append(dst, q)
}

// headersMatch applies a headers binding (its arguments, with x-match
// all or any) to a message's headers table. Arguments starting with "x-"
// are not compared.
func headersMatch(args, headers []byte) bool {
	matchAny := false
	if f, ok := lookup(args, "x-match"); ok {
		if s, ok := f.stringValue(); ok && (string(s) == "any" || string(s) == "any-with-x") {
			matchAny = true
		}
	}
	compared := 0
	for t := args; len(t) > 0; {
		var f field
		f, t = nextField(t)
		if len(f.Name) >= 2 && f.Name[0] == 'x' && f.Name[1] == '-' {
			continue
		}
		compared++
		got, ok := lookup(headers, string(f.Name))
		match := ok && sameValue(f, got)
		if matchAny && match {
			return true
		}
		if !matchAny && !match {
			return false
		}
	}
	return !matchAny || compared == 0
}

// addExchangeBinding binds dst to x; the caller holds Server.mu.
func (s *Server) addExchangeBinding(b *binding) error {
	for _, o := range b.ex.exBindings {
		if o.dst == b.dst && o.key == b.key && string(o.args) == string(b.args) {
			return nil
		}
	}
	if b.ex.kind == kindTopic {
		p, err := router.PatternFromAMQPBindingKey(b.key)
		if err != nil {
			return err
		}
		if b.topic, err = router.CompilePattern(p); err != nil {
			return err
		}
	}
	b.ex.exBindings = append(b.ex.exBindings, b)
	return nil
}

// removeExchangeBinding unbinds dst from x by key and arguments; the
// caller holds Server.mu.
func (s *Server) removeExchangeBinding(x, dst *exchange, key string, args []byte) bool {
	for i, o := range x.exBindings {
		if o.dst == dst && o.key == key && string(o.args) == string(args) {
			x.exBindings = append(x.exBindings[:i:i], x.exBindings[i+1:]...)
			return true
		}
	}
	return false
}

// routeOnward appends the queues that x's exchange-to-exchange bindings
// lead to, following them up to a few hops (a cycle stops there). The
// caller holds Server.mu for reading.
func (s *Server) routeOnward(dst []*queue, x *exchange, key, headers []byte, depth int) []*queue {
	if depth > 8 || len(x.exBindings) == 0 {
		return dst
	}
	var subj string
	if x.kind == kindTopic {
		subj, _ = router.SubjectFromAMQPRoutingKey(string(key))
	}
	for _, b := range x.exBindings {
		var match bool
		switch x.kind {
		case kindDirect:
			match = string(key) == b.key
		case kindFanout:
			match = true
		case kindTopic:
			match = b.topic.Matches(subj)
		case kindHeaders:
			match = headersMatch(b.args, headers)
		}
		if !match {
			continue
		}
		d := b.dst
		if d.live {
			var res router.Result[broker.Receiver]
			if sj, err := router.SubjectFromAMQPRoutingKey(string(key)); err == nil && s.live.Match(sj, &res) == nil {
				for _, r := range res.Subs {
					if qr, ok := r.(*queueReceiver); ok {
						dst = append(dst, qr.q)
					}
				}
			}
		} else {
			var res router.Result[*queue]
			dst = d.route(dst, key, headers, &res)
		}
		dst = s.routeOnward(dst, d, key, headers, depth+1)
	}
	return dst
}

// dedupe removes repeated queues: a queue reached twice gets a message
// once.
func dedupe(qs []*queue) []*queue {
	if len(qs) < 2 {
		return qs
	}
	out := qs[:1]
	for _, q := range qs[1:] {
		out = appendUnique(out, 0, q)
	}
	return out
}
