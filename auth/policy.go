package auth

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Protocol names the protocol a client connects with; rules may limit a
// user to some of them.
type Protocol uint8

// The protocols ledge serves.
const (
	NATS Protocol = iota + 1
	MQTT
	AMQP
	STOMP
	HTTP
)

var protocolNames = [...]string{NATS: "nats", MQTT: "mqtt", AMQP: "amqp", STOMP: "stomp", HTTP: "http"}

func (p Protocol) String() string {
	if int(p) < len(protocolNames) && protocolNames[p] != "" {
		return protocolNames[p]
	}
	return fmt.Sprintf("protocol(%d)", uint8(p))
}

func parseProtocol(s string) (Protocol, bool) {
	for i, n := range protocolNames {
		if n != "" && n == s {
			return Protocol(i), true
		}
	}
	return 0, false
}

// Role is what a user may do beyond its message rules.
type Role string

// The roles. An admin may do everything: publish and subscribe anywhere,
// use every AMQP resource, and change things through the HTTP monitoring
// API. A monitor may read the HTTP monitoring API.
const (
	RoleAdmin   Role = "admin"
	RoleMonitor Role = "monitor"
)

// Limits bound what one user may use. A zero field is no limit.
type Limits struct {
	// MaxConnections is how many connections the user may have open at
	// once, over every protocol.
	MaxConnections int
	// MaxSubscriptions is how many subscriptions one connection may hold.
	MaxSubscriptions int
	// MaxPayload is the largest message the user may publish, in bytes.
	MaxPayload int64
	// MsgsPerSecond and BytesPerSecond are the publishing rate one
	// connection may keep up: above it the connection is slowed down, and
	// one that stays above it for Options.RateGrace is disconnected.
	MsgsPerSecond  int64
	BytesPerSecond int64
	// DiskQuota bounds the bytes that the streams the user creates may
	// keep, together.
	DiskQuota int64
}

// DefaultRateGrace is how long a connection may keep publishing above its
// rate limit, slowed down, before it is disconnected.
const DefaultRateGrace = 10 * time.Second

// tighter combines two groups' limits: the tighter of each.
func (o Limits) tighter(g Limits) Limits {
	pick := func(a, b int64) int64 {
		switch {
		case a == 0:
			return b
		case b == 0:
			return a
		}
		return min(a, b)
	}
	o.MaxConnections = int(pick(int64(o.MaxConnections), int64(g.MaxConnections)))
	o.MaxSubscriptions = int(pick(int64(o.MaxSubscriptions), int64(g.MaxSubscriptions)))
	o.MaxPayload = pick(o.MaxPayload, g.MaxPayload)
	o.MsgsPerSecond = pick(o.MsgsPerSecond, g.MsgsPerSecond)
	o.BytesPerSecond = pick(o.BytesPerSecond, g.BytesPerSecond)
	o.DiskQuota = pick(o.DiskQuota, g.DiskQuota)
	return o
}

// fill sets the limits o leaves at zero from g: a user's own limit wins
// over its groups'.
func (o Limits) fill(g Limits) Limits {
	if o.MaxConnections == 0 {
		o.MaxConnections = g.MaxConnections
	}
	if o.MaxSubscriptions == 0 {
		o.MaxSubscriptions = g.MaxSubscriptions
	}
	if o.MaxPayload == 0 {
		o.MaxPayload = g.MaxPayload
	}
	if o.MsgsPerSecond == 0 {
		o.MsgsPerSecond = g.MsgsPerSecond
	}
	if o.BytesPerSecond == 0 {
		o.BytesPerSecond = g.BytesPerSecond
	}
	if o.DiskQuota == 0 {
		o.DiskQuota = g.DiskQuota
	}
	return o
}

// ResponsePermission lets a client publish to the reply subjects of the
// requests it received without a rule for them (nats-server's
// allow_responses): each reply subject up to MaxMsgs times within Expires.
type ResponsePermission struct {
	MaxMsgs int
	Expires time.Duration
}

// Defaults of "allow-responses = true", as nats-server's.
const (
	DefaultResponseMaxMsgs = 1
	DefaultResponseExpires = 2 * time.Minute
)

// rules are the allow and deny patterns of one direction as written.
type rules struct {
	allow, deny []template
}

func (r rules) empty() bool { return len(r.allow) == 0 && len(r.deny) == 0 }

// resourceRule is one of RabbitMQ's resource permissions: a regular
// expression on exchange and queue names, with %u and %c substituted
// (quoted) per connection.
type resourceRule struct {
	src  string
	set  bool
	re   *regexp.Regexp // compiled when src has no placeholder
	vars bool
}

// Permissions are the rules and limits of a user, a group or anonymous
// clients, as the users file writes them.
type Permissions struct {
	publish, subscribe rules
	responses          *ResponsePermission
	// configure, write and read: RabbitMQ's resource permissions for AMQP
	// and STOMP.
	configure, write, read resourceRule
	limits                 Limits
	roles                  []Role
	protocols              []Protocol
}

// User is one entry of the users file.
type User struct {
	Name string
	// passwordHash is the bcrypt hash of the password; "" for a user that
	// logs in only with a token or certificate.
	passwordHash string
	// tokens are the SHA-256 digests of the user's tokens: tokens are
	// random and long, so a fast digest is enough, and it lets a token be
	// found without trying every user.
	tokens [][32]byte
	// certs are the certificate identities (subject CN or SAN) that are
	// this user.
	certs  []string
	groups []string
	perms  Permissions
	line   int
	// eff are the user's rules merged with its groups'.
	eff *effective
}

// Policy is a users file, parsed and checked: the users, the groups of
// rules they share, and the rules of anonymous clients. It is immutable
// once returned; Service.Reload replaces it as a whole.
type Policy struct {
	// Source names where it came from, for logs and errors.
	Source string
	users  map[string]*User
	order  []string
	groups map[string]*Permissions
	// anonymous is nil when anonymous clients are not let in; see the
	// package documentation for the default without users.
	anonymous *Permissions
	anonEff   *effective

	byToken map[[32]byte]*User
	byCert  map[string]*User
}

// NewPolicy returns an empty policy: no users, the safe default mode.
func NewPolicy() *Policy {
	return &Policy{users: map[string]*User{}, groups: map[string]*Permissions{},
		byToken: map[[32]byte]*User{}, byCert: map[string]*User{}}
}

// Users returns the names of the users, in file order.
func (p *Policy) Users() []string { return slices.Clone(p.order) }

// HasUsers reports whether any user is configured: without users, ledge
// serves in the loopback-only default mode.
func (p *Policy) HasUsers() bool { return len(p.users) > 0 }

// Anonymous reports whether the policy lets clients in without
// credentials from any address.
func (p *Policy) Anonymous() bool { return p.anonymous != nil }

// Mode describes the policy in a few words for the startup line.
func (p *Policy) Mode() string {
	switch {
	case !p.HasUsers() && p.anonymous == nil:
		return "loopback-only (no users: clients on loopback are let in anonymously, others refused)"
	case !p.HasUsers():
		return "anonymous (no users; anonymous clients from any address, with the anonymous rules)"
	case p.anonymous != nil:
		return fmt.Sprintf("users (%d) and anonymous clients with their own rules", len(p.users))
	}
	return fmt.Sprintf("users (%d), anonymous clients refused", len(p.users))
}

// AddUser adds a user with a password and roles, and no rules of its own:
// the single user a command line can configure. The password is hashed
// with bcrypt here, so it costs one hash.
func (p *Policy) AddUser(name, password string, roles ...Role) error {
	if err := checkUserName(name); err != nil {
		return err
	}
	if _, dup := p.users[name]; dup {
		return fmt.Errorf("user %q is already defined", name)
	}
	h, err := HashPassword(password, 0)
	if err != nil {
		return err
	}
	u := &User{Name: name, passwordHash: h}
	u.perms.roles = roles
	p.users[name] = u
	p.order = append(p.order, name)
	return p.finish()
}

func checkUserName(name string) error {
	if name == "" {
		return fmt.Errorf("empty user name")
	}
	if strings.ContainsAny(name, " \t\r\n]") || strings.ContainsRune(name, 0) {
		return fmt.Errorf("user name %q holds white space, ']' or NUL", name)
	}
	return nil
}

// TokenDigest is the digest of a token as the users file stores it
// ("token = sha256:<hex>").
func TokenDigest(token string) string {
	d := sha256.Sum256([]byte(token))
	return "sha256:" + hex.EncodeToString(d[:])
}

// entryError is a problem found once the whole file is read, with the
// line of the entry it is about.
type entryError struct {
	line int
	msg  string
}

func (e *entryError) Error() string { return e.msg }

// effective are a user's (or anonymous clients') rules merged with its
// groups', ready to be expanded per connection.
type effective struct {
	publish, subscribe rules
	// pubAll, subAll: the direction has no rules at all (nats-server's
	// meaning: everything allowed), and no rule of it uses a value.
	unrestricted           bool
	responses              *ResponsePermission
	configure, write, read resourceRule
	limits                 Limits
	roles                  []Role
	protocols              []Protocol
}

func (e *effective) hasRole(r Role) bool { return slices.Contains(e.roles, r) }

// finish checks the references between entries and merges each user's
// groups into its effective rules.
func (p *Policy) finish() error {
	p.byToken = map[[32]byte]*User{}
	p.byCert = map[string]*User{}
	for _, name := range p.order {
		u := p.users[name]
		for _, t := range u.tokens {
			if o, dup := p.byToken[t]; dup {
				return &entryError{u.line, fmt.Sprintf("user %s has the same token as user %s", u.Name, o.Name)}
			}
			p.byToken[t] = u
		}
		for _, c := range u.certs {
			if o, dup := p.byCert[c]; dup {
				return &entryError{u.line, fmt.Sprintf("user %s names certificate %q, already user %s's", u.Name, c, o.Name)}
			}
			p.byCert[c] = u
		}
		eff, err := p.merge(&u.perms, u.groups)
		if err != nil {
			return &entryError{u.line, fmt.Sprintf("user %s: %v", u.Name, err)}
		}
		u.eff = eff
	}
	if p.anonymous != nil {
		eff, err := p.merge(p.anonymous, nil)
		if err != nil {
			return &entryError{0, fmt.Sprintf("anonymous: %v", err)}
		}
		p.anonEff = eff
	}
	return nil
}

func (p *Policy) merge(own *Permissions, groups []string) (*effective, error) {
	e := &effective{
		publish: own.publish, subscribe: own.subscribe, responses: own.responses,
		configure: own.configure, write: own.write, read: own.read,
		limits: own.limits, roles: slices.Clone(own.roles), protocols: slices.Clone(own.protocols),
	}
	e.publish.allow = slices.Clone(e.publish.allow)
	e.publish.deny = slices.Clone(e.publish.deny)
	e.subscribe.allow = slices.Clone(e.subscribe.allow)
	e.subscribe.deny = slices.Clone(e.subscribe.deny)
	var groupLimits Limits
	first := true
	for _, gn := range groups {
		g, ok := p.groups[gn]
		if !ok {
			return nil, fmt.Errorf("no group %q", gn)
		}
		e.publish.allow = append(e.publish.allow, g.publish.allow...)
		e.publish.deny = append(e.publish.deny, g.publish.deny...)
		e.subscribe.allow = append(e.subscribe.allow, g.subscribe.allow...)
		e.subscribe.deny = append(e.subscribe.deny, g.subscribe.deny...)
		if e.responses == nil {
			e.responses = g.responses
		}
		for _, pair := range []struct{ dst, src *resourceRule }{{&e.configure, &g.configure}, {&e.write, &g.write}, {&e.read, &g.read}} {
			if !pair.dst.set && pair.src.set {
				*pair.dst = *pair.src
			}
		}
		if first {
			groupLimits, first = g.limits, false
		} else {
			groupLimits = groupLimits.tighter(g.limits)
		}
		for _, r := range g.roles {
			if !slices.Contains(e.roles, r) {
				e.roles = append(e.roles, r)
			}
		}
		if len(own.protocols) == 0 {
			for _, pr := range g.protocols {
				if !slices.Contains(e.protocols, pr) {
					e.protocols = append(e.protocols, pr)
				}
			}
		}
	}
	e.limits = e.limits.fill(groupLimits)
	e.unrestricted = e.publish.empty() && e.subscribe.empty()
	return e, nil
}
