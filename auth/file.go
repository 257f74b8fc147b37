package auth

import (
	"bufio"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"
)

// The users file. docs/AUTH.md is its reference; in short:
//
//	# a comment: a line whose first non-blank character is '#'
//	[group devices]
//	publish = site/%u/#                # MQTT filter: it holds a '/'
//	subscribe = site.%u.> cmd.%u.>     # subject patterns
//	max-msgs-per-second = 50
//
//	[user dev-7]
//	password = $2a$10$...              # bcrypt, written by ledge passwd
//	groups = devices
//
//	[user ops]
//	token = sha256:3f0c...             # the digest of a token
//	cert = ops.plant.example           # a client certificate's CN or SAN
//	roles = admin
//
//	[anonymous]                        # lets clients in without credentials
//	subscribe = public.>
//
// A section starts with a header in brackets; its settings are lines of
// "name = value", where a list is words separated by spaces (a pattern
// never holds one). Settings that make lists (publish, subscribe, token,
// cert, groups, roles, protocols) may be repeated and add up; any other
// given twice is an error.

// ErrSyntax is wrapped by every error the parser returns; the error's text
// names the file, the line and the reason.
var ErrSyntax = errors.New("users file")

// maxLine bounds one line of the file.
const maxLine = 64 << 10

// LoadFile reads and checks the users file at path.
func LoadFile(path string) (*Policy, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w %s: %v", ErrSyntax, path, err)
	}
	defer f.Close()
	return Parse(path, f)
}

// Parse reads a users file; name is what errors call it. The whole file is
// checked: an error names the first wrong line, and nothing of a file with
// an error is used.
func Parse(name string, r io.Reader) (*Policy, error) {
	p := NewPolicy()
	p.Source = name
	ps := &parser{name: name, p: p}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxLine)
	for sc.Scan() {
		ps.line++
		if err := ps.parseLine(sc.Bytes()); err != nil {
			return nil, err
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			ps.line++
			return nil, ps.errorf("line longer than %d bytes", maxLine)
		}
		return nil, fmt.Errorf("%w %s: %v", ErrSyntax, name, err)
	}
	if err := ps.endSection(); err != nil {
		return nil, err
	}
	if err := p.finish(); err != nil {
		var ee *entryError
		if errors.As(err, &ee) && ee.line > 0 {
			return nil, fmt.Errorf("%w %s:%d: %s", ErrSyntax, name, ee.line, ee.msg)
		}
		return nil, fmt.Errorf("%w %s: %v", ErrSyntax, name, err)
	}
	return p, nil
}

type parser struct {
	name string
	line int
	p    *Policy

	// The section being read: kind "user", "group" or "anonymous".
	kind  string
	sname string
	user  *User
	perms *Permissions
	seen  map[string]int // settings given, for "given twice"
}

func (ps *parser) errorf(format string, args ...any) error {
	where := ""
	if ps.kind != "" {
		where = ps.kind
		if ps.sname != "" {
			where += " " + ps.sname
		}
		where += ": "
	}
	return fmt.Errorf("%w %s:%d: %s%s", ErrSyntax, ps.name, ps.line, where, fmt.Sprintf(format, args...))
}

func (ps *parser) parseLine(raw []byte) error {
	if !utf8.Valid(raw) {
		return ps.errorf("not UTF-8")
	}
	line := strings.TrimSpace(string(raw))
	if line == "" || line[0] == '#' {
		return nil
	}
	if line[0] == '[' {
		return ps.header(line)
	}
	if ps.kind == "" {
		return ps.errorf("setting %q outside a section: start one with [user NAME], [group NAME] or [anonymous]", line)
	}
	key, value, ok := strings.Cut(line, "=")
	if !ok {
		return ps.errorf("want name = value, got %q", line)
	}
	key, value = strings.TrimSpace(key), strings.TrimSpace(value)
	return ps.setting(key, value)
}

func (ps *parser) header(line string) error {
	if err := ps.endSection(); err != nil {
		return err
	}
	if !strings.HasSuffix(line, "]") {
		return ps.errorf("section header %q does not end with ']'", line)
	}
	inner := strings.Fields(line[1 : len(line)-1])
	ps.kind, ps.sname, ps.user, ps.perms = "", "", nil, nil
	ps.seen = map[string]int{}
	if len(inner) == 0 {
		return ps.errorf("empty section header")
	}
	kind := inner[0]
	switch kind {
	case "anonymous":
		if len(inner) != 1 {
			return ps.errorf("[anonymous] takes no name")
		}
		if ps.p.anonymous != nil {
			return ps.errorf("[anonymous] given twice")
		}
		ps.kind = kind
		ps.perms = &Permissions{}
		ps.p.anonymous = ps.perms
		return nil
	case "user", "group":
	default:
		return ps.errorf("unknown section [%s]: want [user NAME], [group NAME] or [anonymous]", kind)
	}
	if len(inner) != 2 {
		return ps.errorf("want [%s NAME] with one name, got %q", kind, line)
	}
	name := inner[1]
	ps.kind, ps.sname = kind, name
	if kind == "group" {
		if _, dup := ps.p.groups[name]; dup {
			return ps.errorf("group %q given twice", name)
		}
		ps.perms = &Permissions{}
		ps.p.groups[name] = ps.perms
		return nil
	}
	if err := checkUserName(name); err != nil {
		return ps.errorf("%v", err)
	}
	if _, dup := ps.p.users[name]; dup {
		return ps.errorf("user %q given twice", name)
	}
	ps.user = &User{Name: name, line: ps.line}
	ps.perms = &ps.user.perms
	ps.p.users[name] = ps.user
	ps.p.order = append(ps.p.order, name)
	return nil
}

// endSection checks what a section needs once it is complete.
func (ps *parser) endSection() error {
	if u := ps.user; u != nil && u.passwordHash == "" && len(u.tokens) == 0 && len(u.certs) == 0 {
		return fmt.Errorf("%w %s:%d: user %s has no password, token or cert, so nobody could log in as it", ErrSyntax, ps.name, u.line, u.Name)
	}
	return nil
}

// repeatable are the settings whose lines add up.
var repeatable = map[string]bool{
	"publish": true, "subscribe": true, "publish-deny": true, "subscribe-deny": true,
	"token": true, "cert": true, "groups": true, "roles": true, "protocols": true,
}

func (ps *parser) setting(key, value string) error {
	if !repeatable[key] {
		if n, dup := ps.seen[key]; dup {
			return ps.errorf("%s given twice (first on line %d)", key, n)
		}
	}
	ps.seen[key] = ps.line
	userOnly := func() error {
		if ps.user == nil {
			return ps.errorf("%s belongs in a [user NAME] section", key)
		}
		return nil
	}
	perms := ps.perms
	switch key {
	case "password":
		if err := userOnly(); err != nil {
			return err
		}
		if _, err := bcrypt.Cost([]byte(value)); err != nil {
			return ps.errorf("password must be a bcrypt hash ($2a$, $2b$ or $2y$), not the password itself: write it with ledge passwd (%v)", err)
		}
		ps.user.passwordHash = value
	case "token":
		if err := userOnly(); err != nil {
			return err
		}
		for _, w := range strings.Fields(value) {
			hexd, ok := strings.CutPrefix(w, "sha256:")
			d, err := hex.DecodeString(hexd)
			if !ok || err != nil || len(d) != 32 {
				return ps.errorf("token %q: want sha256:<64 hex digits>, the digest of the token (ledge passwd -token writes it)", short(w))
			}
			ps.user.tokens = append(ps.user.tokens, [32]byte(d))
		}
	case "cert":
		if err := userOnly(); err != nil {
			return err
		}
		ps.user.certs = append(ps.user.certs, strings.Fields(value)...)
	case "groups":
		if ps.kind == "group" {
			return ps.errorf("a group cannot name groups")
		}
		words := strings.Fields(value)
		if ps.user != nil {
			ps.user.groups = append(ps.user.groups, words...)
		} else {
			// [anonymous] may use groups too: merged like a user's.
			for _, g := range words {
				gp, ok := ps.p.groups[g]
				if !ok {
					return ps.errorf("no group %q (groups must come before the sections that use them)", g)
				}
				mergeInto(perms, gp)
			}
		}
	case "publish", "subscribe", "publish-deny", "subscribe-deny":
		var r *rules
		if strings.HasPrefix(key, "publish") {
			r = &perms.publish
		} else {
			r = &perms.subscribe
		}
		words := strings.Fields(value)
		if len(words) == 0 {
			return ps.errorf("%s needs at least one pattern", key)
		}
		for _, w := range words {
			t, err := parseTemplate(w)
			if err != nil {
				return ps.errorf("%s: %v", key, err)
			}
			if strings.HasSuffix(key, "-deny") {
				r.deny = append(r.deny, t)
			} else {
				r.allow = append(r.allow, t)
			}
		}
	case "allow-responses":
		rp, err := parseResponses(value)
		if err != nil {
			return ps.errorf("allow-responses: %v", err)
		}
		perms.responses = rp
	case "amqp-configure", "amqp-write", "amqp-read":
		rr, err := parseResourceRule(value)
		if err != nil {
			return ps.errorf("%s: %v", key, err)
		}
		switch key {
		case "amqp-configure":
			perms.configure = rr
		case "amqp-write":
			perms.write = rr
		default:
			perms.read = rr
		}
	case "roles":
		for _, w := range strings.Fields(value) {
			switch Role(w) {
			case RoleAdmin, RoleMonitor:
				perms.roles = append(perms.roles, Role(w))
			default:
				return ps.errorf("unknown role %q: want admin or monitor", w)
			}
		}
	case "protocols":
		for _, w := range strings.Fields(value) {
			pr, ok := parseProtocol(w)
			if !ok || pr == HTTP {
				return ps.errorf("unknown protocol %q: want nats, mqtt, amqp or stomp", w)
			}
			perms.protocols = append(perms.protocols, pr)
		}
	case "max-connections", "max-subscriptions", "max-msgs-per-second":
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil || n <= 0 || n > 1<<31 {
			return ps.errorf("%s: want a whole number above 0, got %q", key, value)
		}
		switch key {
		case "max-connections":
			perms.limits.MaxConnections = int(n)
		case "max-subscriptions":
			perms.limits.MaxSubscriptions = int(n)
		default:
			perms.limits.MsgsPerSecond = n
		}
	case "max-payload", "max-bytes-per-second", "disk-quota":
		n, err := ParseSize(value)
		if err != nil || n <= 0 {
			return ps.errorf("%s: want a size above 0 such as 65536, 64KiB or 10MB, got %q", key, value)
		}
		switch key {
		case "max-payload":
			perms.limits.MaxPayload = n
		case "max-bytes-per-second":
			perms.limits.BytesPerSecond = n
		default:
			perms.limits.DiskQuota = n
		}
	default:
		return ps.errorf("unknown setting %q", key)
	}
	return nil
}

// mergeInto adds a group's rules to an anonymous section.
func mergeInto(dst, g *Permissions) {
	dst.publish.allow = append(dst.publish.allow, g.publish.allow...)
	dst.publish.deny = append(dst.publish.deny, g.publish.deny...)
	dst.subscribe.allow = append(dst.subscribe.allow, g.subscribe.allow...)
	dst.subscribe.deny = append(dst.subscribe.deny, g.subscribe.deny...)
	if dst.responses == nil {
		dst.responses = g.responses
	}
	for _, pair := range []struct{ d, s *resourceRule }{{&dst.configure, &g.configure}, {&dst.write, &g.write}, {&dst.read, &g.read}} {
		if !pair.d.set {
			*pair.d = *pair.s
		}
	}
	dst.limits = dst.limits.fill(g.limits)
	dst.roles = append(dst.roles, g.roles...)
	if len(dst.protocols) == 0 {
		dst.protocols = append(dst.protocols, g.protocols...)
	}
}

func short(s string) string {
	if len(s) > 24 {
		return s[:24] + "..."
	}
	return s
}

func parseResponses(v string) (*ResponsePermission, error) {
	words := strings.Fields(v)
	if len(words) == 0 || len(words) > 2 {
		return nil, fmt.Errorf("want true, false, or MAX-MSGS [EXPIRES], got %q", v)
	}
	rp := &ResponsePermission{MaxMsgs: DefaultResponseMaxMsgs, Expires: DefaultResponseExpires}
	switch words[0] {
	case "true":
		if len(words) > 1 {
			return nil, fmt.Errorf("true takes nothing after it")
		}
		return rp, nil
	case "false":
		if len(words) > 1 {
			return nil, fmt.Errorf("false takes nothing after it")
		}
		return nil, nil
	}
	n, err := strconv.Atoi(words[0])
	if err != nil || n <= 0 {
		return nil, fmt.Errorf("max messages %q: want a whole number above 0", words[0])
	}
	rp.MaxMsgs = n
	if len(words) == 2 {
		d, err := time.ParseDuration(words[1])
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("expiry %q: want a duration such as 2m", words[1])
		}
		rp.Expires = d
	}
	return rp, nil
}

// parseResourceRule reads a RabbitMQ resource permission: a regular
// expression searched in the name (anchor it with ^ and $), "" for none.
func parseResourceRule(v string) (resourceRule, error) {
	v = strings.TrimSpace(v)
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	rr := resourceRule{src: v, set: true}
	rr.vars = strings.Contains(v, "%u") || strings.Contains(v, "%c")
	probe := v
	if rr.vars {
		probe = strings.NewReplacer("%u", "u", "%c", "c").Replace(v)
	}
	re, err := regexp.Compile(probe)
	if err != nil {
		return rr, fmt.Errorf("regular expression %q: %v", v, err)
	}
	if !rr.vars {
		rr.re = re
	}
	return rr, nil
}

// ParseSize reads a byte size: a whole number with an optional unit, B,
// KB, MB, GB (powers of 1000) or KiB, MiB, GiB (powers of 1024).
func ParseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	units := []struct {
		suffix string
		mult   int64
	}{
		{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
		{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1},
	}
	mult := int64(1)
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = strings.TrimSpace(num), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("size %q: want a whole number with an optional unit (KiB, MiB, GiB, KB, MB, GB)", s)
	}
	if n > (1<<62)/mult {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return n * mult, nil
}
