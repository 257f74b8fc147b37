package auth

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// How a client proved who it is; a reload checks the proof again.
type method uint8

const (
	byPassword method = iota + 1
	byToken
	byCert
	byAnonymous
	byLoopback // the default mode without users
)

// Client is one authenticated connection: who it is and what it may do.
// Gateways ask it the questions of every publish, subscription and
// delivery. A nil *Client allows everything, which is how a gateway runs
// without auth (tests, embedding).
//
// MayPublish, Subscribe and Rate keep per-connection state without locks
// and are for the connection's own event loop; MayReceive, NoteReply and
// the accessors are safe from any goroutine (publishers of other
// connections deliver through them).
type Client struct {
	svc    *Service
	proto  Protocol
	name   string // "" for anonymous and loopback clients
	values Values
	remote netip.Addr
	how    method
	// counted: the client is a user's, counted against its
	// max-connections.
	counted bool
	// hash is the password hash the client's password was checked
	// against; a reload that changes it ends the connection.
	hash   string
	token  [32]byte
	certID string

	g atomic.Pointer[grant]

	// pub caches publish decisions: only the connection's loop uses it.
	pub decisionCache
	// recv caches delivery decisions, asked by publishers on any loop.
	recvMu sync.Mutex
	recv   decisionCache

	respMu sync.Mutex
	resp   map[string]*response

	rate rateState

	// claims are the inbox tokens this connection owns (inbox.go).
	claims []string

	mu       sync.Mutex
	onChange func(error)
	closed   bool
	conn     bool // registered as a connection (counted, reloaded)

	denials     atomic.Int64
	lastDenyLog atomic.Int64
}

// response is one reply subject the client may publish to.
type response struct {
	left    int
	expires time.Time
}

// Errors of authentication and of the checks that may end a connection.
// Gateways map them to their protocol's answers.
var (
	// ErrBadCredentials: unknown user, wrong password or token, or a
	// certificate no user is mapped to (MQTT 3.1.1 return code 4, 5.0
	// reason 0x86).
	ErrBadCredentials = errors.New("auth: bad user name or password")
	// ErrNotAuthorized: the client may not connect: no credentials where
	// they are needed, or a protocol the user may not use (MQTT 3.1.1
	// return code 5, 5.0 reason 0x87).
	ErrNotAuthorized = errors.New("auth: not authorized")
	// ErrTooManyConnections: the user has its max-connections open
	// (MQTT 5.0 reason 0x97, quota exceeded).
	ErrTooManyConnections = errors.New("auth: too many connections for this user")
	// ErrLoginRate: too many failed logins from the client's address
	// lately; it is refused without a check (MQTT 5.0 reason 0x9F).
	ErrLoginRate = errors.New("auth: too many failed logins from this address; wait and retry")
	// ErrBusy: more logins wait for a password check than the pool
	// queues (MQTT 5.0 reason 0x89, server busy).
	ErrBusy = errors.New("auth: too many logins waiting for a password check")
	// ErrRevoked: a reload took the client's access away.
	ErrRevoked = errors.New("auth: access revoked by a reload of the users")
	// ErrRateExceeded: the client published above its rate limit for
	// longer than Options.RateGrace.
	ErrRateExceeded = errors.New("auth: publishing rate limit exceeded for too long")
)

// User returns the user name; "" for an anonymous client.
func (cl *Client) User() string {
	if cl == nil {
		return ""
	}
	return cl.name
}

// Anonymous reports whether the client logged in without credentials.
func (cl *Client) Anonymous() bool {
	return cl == nil || cl.how == byAnonymous || cl.how == byLoopback
}

// Protocol returns the protocol the client connected with.
func (cl *Client) Protocol() Protocol {
	if cl == nil {
		return 0
	}
	return cl.proto
}

// String describes the client for logs.
func (cl *Client) String() string {
	if cl == nil {
		return "no auth"
	}
	n := cl.name
	if n == "" {
		n = "anonymous"
	}
	return fmt.Sprintf("%s (%s from %v)", n, cl.proto, cl.remote)
}

// HasRole reports whether the client has role r. Admins have every role.
func (cl *Client) HasRole(r Role) bool {
	if cl == nil {
		return true
	}
	g := cl.g.Load()
	for _, x := range g.roles {
		if x == r || x == RoleAdmin {
			return true
		}
	}
	return g.admin
}

// Unrestricted reports whether the client may publish and subscribe
// everywhere, so that a gateway can skip the checks of its hot paths.
func (cl *Client) Unrestricted() bool {
	if cl == nil {
		return true
	}
	g := cl.g.Load()
	return g.pub.all && g.sub.all && g.limits == Limits{}
}

// Limits returns the client's limits.
func (cl *Client) Limits() Limits {
	if cl == nil {
		return Limits{}
	}
	return cl.g.Load().limits
}

// MayPublish reports whether the client may publish to subject, a valid
// subject in the router's grammar. It is the hot path's check: a decision
// is cached per connection, so a repeated subject costs a hash and a
// compare and allocates nothing. For the connection's loop only; see
// Allowed for other goroutines.
func (cl *Client) MayPublish(subject []byte) bool {
	ok, _ := cl.PublishDecision(subject)
	return ok
}

// PublishDecision is MayPublish, and says whether the answer lasts until
// the client's rules change (its OnChange function is called): a gateway
// may remember a lasting answer for the subject a connection publishes to
// again and again, in memory the publish touches anyway. An answer of
// allow-responses is for one reply and does not last, nor does a refusal
// that a later request could turn into one.
func (cl *Client) PublishDecision(subject []byte) (ok, lasting bool) {
	if cl == nil {
		return true, true
	}
	g := cl.g.Load()
	if g.pub.all {
		return true, true
	}
	ok, hit := cl.pub.get(g, subject)
	if !hit {
		ok = g.pub.allows(subject)
		cl.pub.put(g, subject, ok)
	}
	if !ok && g.responses != nil && !g.pub.denied(subject) {
		return cl.takeResponse(subject), false
	}
	return ok, true
}

// HasRateLimit reports whether Rate has anything to count: a gateway skips
// it otherwise.
func (cl *Client) HasRateLimit() bool {
	if cl == nil {
		return false
	}
	lim := &cl.g.Load().limits
	return lim.MsgsPerSecond > 0 || lim.BytesPerSecond > 0
}

// Allowed is MayPublish without the cache, safe from any goroutine: for
// wills sent when a connection is gone, and for checks made rarely.
func (cl *Client) Allowed(subject []byte) bool {
	if cl == nil {
		return true
	}
	return cl.g.Load().pub.allows(subject)
}

// Subscribe relates a filter (a pattern in the router's grammar, as the
// gateways give it to the router) to the client's rules. A literal filter
// on an inbox token claims the token for this connection (inbox.go). For
// the connection's loop only.
func (cl *Client) Subscribe(pattern string) Access {
	if cl == nil {
		return Allowed
	}
	g := cl.g.Load()
	toks, err := splitPattern(pattern)
	if err != nil {
		return Denied
	}
	if g.sub.all && !g.private {
		if tok, _, meets := inboxRelation(expandTail(toks)); meets && tok != "" {
			cl.svc.inbox.claim(cl, tok)
		}
		return Allowed
	}
	if len(toks) > maxCheckDepth {
		return Denied
	}
	canon := expandTail(toks)
	a := g.sub.subscribe(canon)
	if a == Denied {
		return Denied
	}
	if tok, wide, meets := inboxRelation(canon); meets {
		switch {
		case wide:
			a = Filtered
		case !cl.svc.inbox.claim(cl, tok):
			return Denied
		default:
			// A new claim changes what deliveries may reach us.
			cl.recvMu.Lock()
			cl.recv.reset()
			cl.recvMu.Unlock()
		}
	}
	return a
}

// Covers reports whether every subject the pattern (in the router's
// grammar) matches may be received by the client: what a stream it
// creates may capture, since it can read all of it back. Unlike
// Subscribe it claims nothing, and it is safe from any goroutine.
func (cl *Client) Covers(pattern string) bool {
	if cl == nil {
		return true
	}
	g := cl.g.Load()
	if g.sub.all && !g.private {
		return true
	}
	toks, err := splitPattern(pattern)
	if err != nil || len(toks) > maxCheckDepth {
		return false
	}
	canon := expandTail(toks)
	if g.sub.subscribe(canon) != Allowed {
		return false
	}
	if _, _, meets := inboxRelation(canon); meets && g.private {
		return false
	}
	return true
}

// MayReceive reports whether a message on subject may be delivered to
// this client: the check of a Filtered subscription's deliveries. It is
// safe from any goroutine and allocates nothing for a cached subject.
func (cl *Client) MayReceive(subject []byte) bool {
	if cl == nil {
		return true
	}
	g := cl.g.Load()
	if g.sub.all && !g.private {
		return true
	}
	cl.recvMu.Lock()
	ok, hit := cl.recv.get(g, subject)
	cl.recvMu.Unlock()
	if hit {
		return ok
	}
	ok = g.sub.allows(subject)
	if ok && g.private {
		if mine, inbox := cl.svc.inbox.ownedBy(cl, subject); inbox && !mine {
			ok = false
		}
	}
	cl.recvMu.Lock()
	cl.recv.put(g, subject, ok)
	cl.recvMu.Unlock()
	return ok
}

// NoteReply records that a message with reply subject reply was delivered
// to this client, which may then answer it under allow-responses. Safe
// from any goroutine; it does nothing for clients without that rule.
func (cl *Client) NoteReply(reply []byte) {
	if cl == nil || len(reply) == 0 {
		return
	}
	g := cl.g.Load()
	if g.responses == nil || g.pub.all {
		return
	}
	cl.respMu.Lock()
	defer cl.respMu.Unlock()
	now := time.Now()
	if cl.resp == nil {
		cl.resp = make(map[string]*response)
	}
	if len(cl.resp) >= maxResponses {
		for k, r := range cl.resp {
			if now.After(r.expires) {
				delete(cl.resp, k)
			}
		}
		if len(cl.resp) >= maxResponses {
			return
		}
	}
	if r, ok := cl.resp[string(reply)]; ok {
		r.left = g.responses.MaxMsgs
		r.expires = now.Add(g.responses.Expires)
		return
	}
	cl.resp[string(reply)] = &response{left: g.responses.MaxMsgs, expires: now.Add(g.responses.Expires)}
}

// maxResponses bounds the reply subjects a client may hold permissions
// for at once.
const maxResponses = 4096

func (cl *Client) takeResponse(subject []byte) bool {
	cl.respMu.Lock()
	defer cl.respMu.Unlock()
	r, ok := cl.resp[string(subject)]
	if !ok {
		return false
	}
	if time.Now().After(r.expires) {
		delete(cl.resp, string(subject))
		return false
	}
	r.left--
	if r.left <= 0 {
		delete(cl.resp, string(subject))
	}
	return true
}

// MayAccess reports whether the client may do perm to the exchange or
// queue name (RabbitMQ's resource permissions, for AMQP and STOMP). The
// default exchange is named "amq.default", as in RabbitMQ.
func (cl *Client) MayAccess(r Resource, perm Perm, name string) bool {
	if cl == nil {
		return true
	}
	if r == Exchange && name == "" {
		name = "amq.default"
	}
	return cl.g.Load().mayAccess(perm, name)
}

// OnChange sets the function a reload calls after it changed the client's
// rules (err nil: re-check the subscriptions, removing those now Denied)
// or took its access away (err ErrRevoked: close the connection with the
// protocol's answer). It is called from the reloading goroutine and must
// not block; a gateway hands the work to its connection's loop (Conn.Do).
func (cl *Client) OnChange(fn func(err error)) {
	if cl == nil {
		return
	}
	cl.mu.Lock()
	cl.onChange = fn
	cl.mu.Unlock()
}

// Close ends the client when its connection is gone: its connection
// count, inbox tokens and notifications are released. Safe to call more
// than once, and on nil.
func (cl *Client) Close() {
	if cl == nil {
		return
	}
	cl.mu.Lock()
	if cl.closed {
		cl.mu.Unlock()
		return
	}
	cl.closed = true
	cl.onChange = nil
	registered := cl.conn
	cl.mu.Unlock()
	if registered {
		cl.svc.unregister(cl)
	}
	cl.svc.inbox.release(cl)
}

// Denied counts a refused publish, subscription or delivery, and logs it:
// the first of the connection at once, then at most one line every ten
// seconds with the count in between, so that a client stuck on a
// forbidden subject cannot flood the log.
func (cl *Client) Denied(what string, subject string) {
	if cl == nil {
		return
	}
	n := cl.denials.Add(1)
	cl.svc.denials.Add(1)
	now := time.Now().UnixNano()
	last := cl.lastDenyLog.Load()
	if last != 0 && now-last < int64(10*time.Second) {
		return
	}
	if !cl.lastDenyLog.CompareAndSwap(last, now) {
		return
	}
	cl.svc.log.Info("auth: permission denied", "client", cl.String(), "action", what, "subject", subject, "denials", n)
}

// decisionCache remembers a few recent decisions of one connection,
// direct-mapped by a hash of the subject. Entries reuse their bytes, so a
// connection that cycles through many subjects allocates only while its
// slots grow. A decision belongs to the grant it was made under.
type decisionCache struct {
	slots *[cacheSlots]cacheSlot
}

const cacheSlots = 16

type cacheSlot struct {
	g   *grant
	h   uint32
	ok  bool
	key []byte
}

func (c *decisionCache) get(g *grant, subject []byte) (ok, hit bool) {
	if c.slots == nil {
		return false, false
	}
	h := hashSubject(subject)
	s := &c.slots[h%cacheSlots]
	if s.g == g && s.h == h && bytes.Equal(s.key, subject) {
		return s.ok, true
	}
	return false, false
}

func (c *decisionCache) put(g *grant, subject []byte, ok bool) {
	if len(subject) > 256 {
		return // long subjects are rare; not worth the bytes
	}
	if c.slots == nil {
		c.slots = new([cacheSlots]cacheSlot)
	}
	h := hashSubject(subject)
	s := &c.slots[h%cacheSlots]
	s.g, s.h, s.ok = g, h, ok
	s.key = append(s.key[:0], subject...)
}

func (c *decisionCache) reset() {
	if c.slots != nil {
		for i := range c.slots {
			c.slots[i].g = nil
		}
	}
}

// hashSubject is FNV-1a: short subjects, no seed needed (a client can only
// collide its own slots).
func hashSubject(b []byte) uint32 {
	h := uint32(2166136261)
	for _, c := range b {
		h ^= uint32(c)
		h *= 16777619
	}
	return h
}

// rateState is a connection's token buckets for its rate limits.
type rateState struct {
	last      int64 // nanoseconds on the service's clock
	msgs      float64
	bytes     float64
	overSince int64
}

// Rate accounts one published message of n bytes against the client's
// rate limits. It returns how long the connection should stop reading
// (PauseReading) to keep to its rate, zero when it is within it, and
// ErrRateExceeded once it has been above it for Options.RateGrace: the gateway
// then disconnects it with that reason. For the connection's loop only.
func (cl *Client) Rate(n int) (time.Duration, error) {
	if cl == nil {
		return 0, nil
	}
	lim := &cl.g.Load().limits
	if lim.MsgsPerSecond == 0 && lim.BytesPerSecond == 0 {
		return 0, nil
	}
	r := &cl.rate
	now := cl.svc.now()
	if r.last == 0 {
		r.msgs, r.bytes = float64(lim.MsgsPerSecond), float64(lim.BytesPerSecond)
	} else {
		dt := float64(now-r.last) / 1e9
		r.msgs = min(r.msgs+dt*float64(lim.MsgsPerSecond), float64(lim.MsgsPerSecond))
		r.bytes = min(r.bytes+dt*float64(lim.BytesPerSecond), float64(lim.BytesPerSecond))
	}
	r.last = now
	var wait float64
	calm := true
	if lim.MsgsPerSecond > 0 {
		r.msgs--
		if r.msgs < 0 {
			wait = -r.msgs / float64(lim.MsgsPerSecond)
		}
		calm = r.msgs >= float64(lim.MsgsPerSecond)/2
	}
	if lim.BytesPerSecond > 0 {
		r.bytes -= float64(n)
		if r.bytes < 0 {
			wait = max(wait, -r.bytes/float64(lim.BytesPerSecond))
		}
		calm = calm && r.bytes >= float64(lim.BytesPerSecond)/2
	}
	// A connection is over its rate from its first throttle until its
	// buckets are half full again: a burst ends that way within the
	// grace, while a device that keeps pushing stays throttled, and over.
	if calm {
		r.overSince = 0
	}
	if wait == 0 {
		return 0, nil
	}
	if r.overSince == 0 {
		r.overSince = now
	} else if time.Duration(now-r.overSince) > cl.svc.rateGrace {
		return 0, ErrRateExceeded
	}
	return min(time.Duration(wait*1e9), time.Second), nil
}
