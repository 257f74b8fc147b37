package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Options configure a Service. The zero value serves the default mode.
type Options struct {
	// Policy is the users file; nil is no users (the default mode).
	Policy *Policy
	// Logger receives refusals and reloads; slog.Default() when nil.
	Logger *slog.Logger
	// Workers is how many password checks (bcrypt) run at once, each
	// taking a core for its duration: max(1, GOMAXPROCS/2) when zero, so
	// that a flood of logins leaves the event loops cores of their own.
	Workers int
	// Queue is how many logins may wait for a worker; more are refused
	// as busy (256 when zero).
	Queue int
	// FailureBurst failed logins from one address are checked; beyond
	// them, one more every FailureInterval (10 and 1 s when zero). The
	// others are refused at once, without a password check.
	FailureBurst    int
	FailureInterval time.Duration
	// RateGrace is how long a connection may stay above its rate limit,
	// slowed down, before it is disconnected (DefaultRateGrace when zero).
	RateGrace time.Duration
}

// Request is what a client presents when it connects.
type Request struct {
	Protocol Protocol
	// Remote is the client's address: loopback clients are let in
	// anonymously in the default mode, and failed logins are counted per
	// address.
	Remote   net.Addr
	Username string
	Password []byte
	Token    string
	// ClientID is the MQTT client id, substituted for %c.
	ClientID string
	// TLS is the connection's TLS state; a verified client certificate
	// whose CN or a SAN names a user logs in as that user.
	TLS *tls.ConnectionState
}

// Service is ledge's one model of users and permissions: every gateway
// authenticates its clients here and asks the Client it gets back. It is
// safe for concurrent use.
type Service struct {
	log    *slog.Logger
	policy atomic.Pointer[Policy]
	epoch  time.Time
	// clock replaces the monotonic clock in tests.
	clock     func() int64
	rateGrace time.Duration

	jobs     chan func()
	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup

	limiter *failLimiter
	cache   *passwordCache
	inbox   inboxes

	mu      sync.Mutex
	clients map[*Client]struct{}
	perUser map[string]int

	denials  atomic.Int64
	failures atomic.Int64
	refused  refusalLog
	refusals lineBudget
}

// Stats are the service's counters.
type Stats struct {
	// Failures counts refused logins, Denials refused actions.
	Failures, Denials int64
	// Clients is the number of connections authenticated now.
	Clients int
}

// New returns a service with its pool of password checkers running;
// Close stops it.
func New(opts Options) *Service {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Workers <= 0 {
		opts.Workers = max(1, runtime.GOMAXPROCS(0)/2)
	}
	if opts.Queue <= 0 {
		opts.Queue = 256
	}
	if opts.FailureBurst <= 0 {
		opts.FailureBurst = 10
	}
	if opts.FailureInterval <= 0 {
		opts.FailureInterval = time.Second
	}
	if opts.RateGrace <= 0 {
		opts.RateGrace = DefaultRateGrace
	}
	s := &Service{
		log:       opts.Logger,
		epoch:     time.Now(),
		rateGrace: opts.RateGrace,
		jobs:      make(chan func(), opts.Queue),
		stop:      make(chan struct{}),
		limiter:   newFailLimiter(opts.FailureBurst, opts.FailureInterval),
		cache:     newPasswordCache(),
		clients:   make(map[*Client]struct{}),
		perUser:   make(map[string]int),
	}
	p := opts.Policy
	if p == nil {
		p = NewPolicy()
	}
	s.policy.Store(p)
	for range opts.Workers {
		s.wg.Add(1)
		go s.worker()
	}
	return s
}

// Close stops the password checkers; logins still waiting are refused as
// busy.
func (s *Service) Close() {
	s.stopOnce.Do(func() { close(s.stop) })
	s.wg.Wait()
}

func (s *Service) worker() {
	defer s.wg.Done()
	for {
		select {
		case <-s.stop:
			return
		case j := <-s.jobs:
			j()
		}
	}
}

// Policy returns the policy in force.
func (s *Service) Policy() *Policy { return s.policy.Load() }

// Stats returns the service's counters.
func (s *Service) Stats() Stats {
	s.mu.Lock()
	n := len(s.clients)
	s.mu.Unlock()
	return Stats{Failures: s.failures.Load(), Denials: s.denials.Load(), Clients: n}
}

func (s *Service) now() int64 {
	if s.clock != nil {
		return s.clock()
	}
	return int64(time.Since(s.epoch)) + 1
}

// Authenticate decides whether a client may connect. When it can decide at
// once (no credentials needed, a token, a certificate, a password it
// checked recently) it returns the Client or the error with pending false
// and never calls done. Otherwise it returns pending true and calls done
// exactly once, later, from a goroutine of its pool: a password check
// (bcrypt) is slow, on ARM most of a second, and must not hold an event
// loop. The gateway's connection waits meanwhile (PauseReading) and done
// hands the result to the connection's loop (Conn.Do; see Pending).
//
// Every Client returned must be closed (Client.Close) when its
// connection ends.
func (s *Service) Authenticate(r *Request, done func(*Client, error)) (cl *Client, pending bool, err error) {
	return s.authenticate(r, true, done)
}

func (s *Service) authenticate(r *Request, register bool, done func(*Client, error)) (*Client, bool, error) {
	p := s.policy.Load()
	remote := addrOf(r.Remote)
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(p.byCert) > 0 {
		if u, id := p.certUser(r.TLS.VerifiedChains[0][0]); u != nil {
			if r.Username != "" && r.Username != u.Name {
				return s.refuse(r, remote, ErrNotAuthorized, "the client certificate is user "+u.Name)
			}
			cl, err := s.admit(p, r, u, byCert, register)
			if cl != nil {
				cl.certID = id
			}
			return cl, false, err
		}
	}
	token := r.Token
	if token == "" && r.Username == "" && len(r.Password) > 0 {
		// A client that can send only a password (an MQTT 5.0 device,
		// a NATS client's auth token) may send a token in it.
		token = string(r.Password)
	}
	if token != "" {
		d := sha256.Sum256([]byte(token))
		if u, ok := p.byToken[d]; ok {
			cl, err := s.admit(p, r, u, byToken, register)
			if cl != nil {
				cl.token = d
			}
			return cl, false, err
		}
		if !p.HasUsers() && isLoopback(remote) {
			return s.admitAnonymous(p, r, remote, register)
		}
		if !s.limiter.take(remote) {
			return s.refuse(r, remote, ErrLoginRate, "")
		}
		return s.refuse(r, remote, ErrBadCredentials, "unknown token")
	}
	if r.Username == "" || !p.HasUsers() {
		return s.admitAnonymous(p, r, remote, register)
	}
	u := p.users[r.Username]
	hash := dummyHash
	if u != nil && u.passwordHash != "" {
		hash = u.passwordHash
	}
	key := s.cache.key(r.Username, r.Password)
	if u != nil && s.cache.verified(key, hash) {
		cl, err := s.admit(p, r, u, byPassword, register)
		if cl != nil {
			cl.hash = hash
		}
		return cl, false, err
	}
	if !s.limiter.take(remote) {
		return s.refuse(r, remote, ErrLoginRate, "")
	}
	req := *r
	req.Password = slices.Clone(r.Password)
	job := func() {
		ok := bcrypt.CompareHashAndPassword([]byte(hash), req.Password) == nil && u != nil && hash != dummyHash
		clear(req.Password)
		if !ok {
			_, _, err := s.refuse(&req, remote, ErrBadCredentials, "")
			done(nil, err)
			return
		}
		s.limiter.refund(remote)
		s.cache.remember(key, hash)
		// The policy may have been reloaded while the check ran: admit
		// under the one in force now, if the user is still the same.
		cur := s.policy.Load()
		cu := cur.users[req.Username]
		if cu == nil || cu.passwordHash != hash {
			_, _, err := s.refuse(&req, remote, ErrBadCredentials, "the user changed during the check")
			done(nil, err)
			return
		}
		cl, err := s.admit(cur, &req, cu, byPassword, register)
		if cl != nil {
			cl.hash = hash
		}
		done(cl, err)
	}
	select {
	case s.jobs <- job:
		return nil, true, nil
	default:
		return s.refuse(r, remote, ErrBusy, "")
	}
}

// dummyHash is checked for unknown users, so that their refusal takes as
// long as a wrong password's and does not tell which users exist.
const dummyHash = "$2a$10$Vi9fkWgwKqxPbBZ3qcIk6uZKblV9JLatIXa17fB5T0WPx/ukayQ6G"

func (s *Service) admitAnonymous(p *Policy, r *Request, remote netip.Addr, register bool) (*Client, bool, error) {
	switch {
	case p.anonymous != nil:
		cl, err := s.admit(p, r, nil, byAnonymous, register)
		return cl, false, err
	case !p.HasUsers() && isLoopback(remote):
		cl := s.newClient(r, nil, byLoopback, everything)
		if register {
			s.register(cl)
		}
		return cl, false, nil
	case !p.HasUsers():
		s.refused.note(s.log, r, remote)
		return s.refuse(r, remote, ErrNotAuthorized, "")
	}
	return s.refuse(r, remote, ErrNotAuthorized, "no credentials, and anonymous clients are not let in")
}

// admit lets in a user (or, with u nil, an anonymous client) whose
// credentials are good, if its protocol and connection count allow.
func (s *Service) admit(p *Policy, r *Request, u *User, how method, register bool) (*Client, error) {
	eff := p.anonEff
	if u != nil {
		eff = u.eff
	}
	if len(eff.protocols) > 0 && r.Protocol != HTTP && !slices.Contains(eff.protocols, r.Protocol) {
		_, _, err := s.refuse(r, addrOf(r.Remote), ErrNotAuthorized, "protocol "+r.Protocol.String()+" is not among the user's")
		return nil, err
	}
	cl := s.newClient(r, u, how, nil)
	cl.g.Store(compile(eff, cl.values))
	if !register {
		return cl, nil
	}
	if max := eff.limits.MaxConnections; max > 0 && u != nil {
		s.mu.Lock()
		n := s.perUser[u.Name]
		s.mu.Unlock()
		if n >= max {
			_, _, err := s.refuse(r, addrOf(r.Remote), ErrTooManyConnections, "")
			return nil, err
		}
	}
	s.register(cl)
	return cl, nil
}

func (s *Service) newClient(r *Request, u *User, how method, g *grant) *Client {
	cl := &Client{svc: s, proto: r.Protocol, how: how, remote: addrOf(r.Remote)}
	if u != nil {
		cl.name = u.Name
		cl.counted = true
	}
	cl.values = Values{User: cl.name, ClientID: r.ClientID}
	if g != nil {
		cl.g.Store(g)
	}
	return cl
}

func (s *Service) register(cl *Client) {
	s.mu.Lock()
	s.clients[cl] = struct{}{}
	if cl.counted {
		s.perUser[cl.name]++
	}
	s.mu.Unlock()
	cl.mu.Lock()
	cl.conn = true
	cl.mu.Unlock()
}

func (s *Service) unregister(cl *Client) {
	s.mu.Lock()
	if _, ok := s.clients[cl]; ok {
		delete(s.clients, cl)
		if cl.counted {
			if s.perUser[cl.name]--; s.perUser[cl.name] <= 0 {
				delete(s.perUser, cl.name)
			}
		}
	}
	s.mu.Unlock()
}

// refuse counts and logs a refused login and returns its error. A flood
// of refusals is not a flood of lines: ten a window of ten seconds are
// logged, and the next window starts with the count of the others.
func (s *Service) refuse(r *Request, remote netip.Addr, err error, why string) (*Client, bool, error) {
	s.failures.Add(1)
	if !s.refusals.allow(s.log) {
		return nil, false, err
	}
	attrs := []any{"proto", r.Protocol.String(), "remote", remote.String(), "err", err.Error()}
	if r.Username != "" {
		attrs = append(attrs, "user", r.Username)
	}
	if why != "" {
		attrs = append(attrs, "why", why)
	}
	s.log.Info("auth: login refused", attrs...)
	return nil, false, err
}

// certUser finds the user a verified client certificate names: its
// subject's common name, or one of its DNS, e-mail or URI names.
func (p *Policy) certUser(c *x509.Certificate) (*User, string) {
	try := func(id string) *User {
		if id == "" {
			return nil
		}
		return p.byCert[id]
	}
	if u := try(c.Subject.CommonName); u != nil {
		return u, c.Subject.CommonName
	}
	for _, n := range c.DNSNames {
		if u := try(n); u != nil {
			return u, n
		}
	}
	for _, n := range c.EmailAddresses {
		if u := try(n); u != nil {
			return u, n
		}
	}
	for _, n := range c.URIs {
		if u := try(n.String()); u != nil {
			return u, n.String()
		}
	}
	return nil, ""
}

func addrOf(a net.Addr) netip.Addr {
	switch a := a.(type) {
	case *net.TCPAddr:
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap()
	case nil:
		return netip.Addr{}
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

func isLoopback(a netip.Addr) bool { return a.IsValid() && a.IsLoopback() }

// HashPassword returns the bcrypt hash of password at cost (bcrypt's
// default, 10, when zero), as the users file stores it.
func HashPassword(password string, cost int) (string, error) {
	if cost == 0 {
		cost = bcrypt.DefaultCost
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	return string(h), err
}

// passwordCache remembers the passwords checked lately, keyed by an HMAC
// under a key made at start (never the password itself), so that a device
// reconnecting with the right password costs no bcrypt, even while others
// flood the pool with wrong ones. An entry is good only while the user's
// hash is the one it was checked against.
type passwordCache struct {
	secret [32]byte
	mu     sync.Mutex
	m      map[[32]byte]cacheEntry
}

type cacheEntry struct {
	hash string
	at   time.Time
}

const (
	passwordCacheSize = 4096
	passwordCacheTTL  = 15 * time.Minute
)

func newPasswordCache() *passwordCache {
	c := &passwordCache{m: make(map[[32]byte]cacheEntry)}
	_, _ = rand.Read(c.secret[:])
	return c
}

func (c *passwordCache) key(user string, password []byte) [32]byte {
	m := hmac.New(sha256.New, c.secret[:])
	m.Write([]byte(user))
	m.Write([]byte{0})
	m.Write(password)
	var k [32]byte
	m.Sum(k[:0])
	return k
}

func (c *passwordCache) verified(k [32]byte, hash string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	if !ok || e.hash != hash {
		return false
	}
	if time.Since(e.at) > passwordCacheTTL {
		delete(c.m, k)
		return false
	}
	return true
}

func (c *passwordCache) remember(k [32]byte, hash string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= passwordCacheSize {
		// Drop an arbitrary eighth: the cache is a speed-up, not state.
		n := passwordCacheSize / 8
		for k := range c.m {
			delete(c.m, k)
			if n--; n == 0 {
				break
			}
		}
	}
	c.m[k] = cacheEntry{hash: hash, at: time.Now()}
}

// failLimiter bounds the password checks per address with a token bucket:
// every check takes a token when it starts, and gives it back when the
// password was right. So a burst of checks may run, even all at once (a
// hundred connections trying together), then one per interval; the rest
// are refused without a check, and a password-guessing flood costs bcrypt
// time only at that rate.
type failLimiter struct {
	burst    float64
	interval time.Duration
	mu       sync.Mutex
	m        map[netip.Addr]*failBucket
}

type failBucket struct {
	tokens float64
	last   time.Time
}

// maxFailAddrs bounds the addresses remembered; beyond it those whose
// buckets are full again are forgotten.
const maxFailAddrs = 16384

func newFailLimiter(burst int, interval time.Duration) *failLimiter {
	return &failLimiter{burst: float64(burst), interval: interval, m: make(map[netip.Addr]*failBucket)}
}

func (l *failLimiter) refill(b *failBucket, now time.Time) {
	b.tokens = min(l.burst, b.tokens+float64(now.Sub(b.last))/float64(l.interval))
	b.last = now
}

// take reports whether a password check from a may run, and takes its
// token.
func (l *failLimiter) take(a netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	b, ok := l.m[a]
	if !ok {
		if len(l.m) >= maxFailAddrs {
			for k, o := range l.m {
				l.refill(o, now)
				if o.tokens >= l.burst {
					delete(l.m, k)
				}
			}
		}
		b = &failBucket{tokens: l.burst, last: now}
		if len(l.m) < maxFailAddrs {
			l.m[a] = b
		}
	}
	l.refill(b, now)
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// refund gives the token of a check whose password was right back.
func (l *failLimiter) refund(a netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if b, ok := l.m[a]; ok {
		b.tokens = min(l.burst, b.tokens+1)
	}
}

// lineBudget lets a few log lines through per window and counts the rest.
type lineBudget struct {
	mu         sync.Mutex
	start      time.Time
	lines      int
	suppressed int
}

const (
	lineWindow     = 10 * time.Second
	linesPerWindow = 10
)

func (b *lineBudget) allow(log *slog.Logger) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	if now.Sub(b.start) >= lineWindow {
		if b.suppressed > 0 {
			log.Warn("auth: more logins refused than logged", "not_logged", b.suppressed, "since", b.start.Format(time.RFC3339))
		}
		b.start, b.lines, b.suppressed = now, 0, 0
	}
	if b.lines >= linesPerWindow {
		b.suppressed++
		return false
	}
	b.lines++
	return true
}

// refusalLog says, at most once a minute, why clients from other
// addresses are refused in the default mode, and how to change that.
type refusalLog struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

func (r *refusalLog) note(log *slog.Logger, req *Request, remote netip.Addr) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.last.IsZero() && time.Since(r.last) < time.Minute {
		r.suppressed++
		return
	}
	log.Warn("auth: refused a client that is not on loopback: no users are configured, so only clients on this machine are let in. "+
		"Add users with \"ledge passwd -c FILE NAME\" and start ledge with -users FILE, "+
		"or let anonymous clients in with an [anonymous] section in that file",
		"proto", req.Protocol.String(), "remote", remote.String(), "refused_since_last_line", r.suppressed)
	r.last, r.suppressed = time.Now(), 0
}
