package bridge

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/ledgemq/ledge/auth"
	"github.com/ledgemq/ledge/router"
)

// Defaults for zero fields of Uplink.
const (
	DefaultWindow       = 16384
	DefaultWindowBytes  = 16 << 20
	DefaultStallTimeout = 15 * time.Second
	DefaultBackoffMin   = 100 * time.Millisecond
	DefaultBackoffMax   = 500 * time.Millisecond
	DefaultDialTimeout  = 5 * time.Second
)

// CompressionHeader marks a payload compressed by the uplink; its value
// names the codec ("s2").
const CompressionHeader = "Ledge-Compression"

// Mode says how an uplink publishes upstream.
type Mode uint8

const (
	// ModeAuto uses JetStream when the upstream account has it, and core
	// publishes otherwise.
	ModeAuto Mode = iota
	// ModeJetStream requires JetStream upstream.
	ModeJetStream
	// ModeCore publishes with core NATS and a flush round trip:
	// at-least-once, and only to subscribers present upstream.
	ModeCore
)

func (m Mode) String() string {
	switch m {
	case ModeJetStream:
		return "jetstream"
	case ModeCore:
		return "core"
	}
	return "auto"
}

// ParseMode reads "auto", "jetstream" or "core".
func ParseMode(s string) (Mode, error) {
	for _, m := range []Mode{ModeAuto, ModeJetStream, ModeCore} {
		if s == m.String() {
			return m, nil
		}
	}
	return 0, fmt.Errorf("uplink mode %q: want auto, jetstream or core", s)
}

// BudgetPolicy says what the uplink's own stream does when its backlog
// reaches the disk budget.
type BudgetPolicy uint8

const (
	// DropOldest removes the oldest unforwarded messages to make room;
	// each is counted and logged.
	DropOldest BudgetPolicy = iota
	// RefuseNew refuses new publishes with the protocol's error (an MQTT
	// 5.0 reason code, a JetStream error); the publisher keeps them.
	RefuseNew
)

func (p BudgetPolicy) String() string {
	if p == RefuseNew {
		return "refuse-new"
	}
	return "drop-oldest"
}

// ParseBudgetPolicy reads "drop-oldest" or "refuse-new".
func ParseBudgetPolicy(s string) (BudgetPolicy, error) {
	switch s {
	case "drop-oldest", "old":
		return DropOldest, nil
	case "refuse-new", "new":
		return RefuseNew, nil
	}
	return 0, fmt.Errorf("uplink budget policy %q: want drop-oldest or refuse-new", s)
}

// CatchUp says in which order an uplink sends a backlog when its link
// returns.
type CatchUp uint8

const (
	// InOrder sends the backlog first and live messages after it: the
	// upstream stream gets everything in local order.
	InOrder CatchUp = iota
	// NewestFirst sends what arrives once the link is back as it arrives,
	// ahead of the backlog, which takes the link's remaining capacity,
	// oldest first. Order is kept within the live messages and within the
	// backlog, not between them.
	NewestFirst
)

func (c CatchUp) String() string {
	if c == NewestFirst {
		return "newest-first"
	}
	return "in-order"
}

// ParseCatchUp reads "in-order" or "newest-first".
func ParseCatchUp(s string) (CatchUp, error) {
	switch s {
	case "in-order":
		return InOrder, nil
	case "newest-first":
		return NewestFirst, nil
	}
	return 0, fmt.Errorf("uplink catch-up %q: want in-order or newest-first", s)
}

// Config configures a Bridge.
type Config struct {
	// GatewayID names this box in message ids upstream; it must be stable
	// across restarts and unique among the gateways sharing a stream.
	GatewayID string
	Uplinks   []Uplink
	Logger    *slog.Logger
}

// Uplink is one upstream cluster and what goes to it and comes from it.
type Uplink struct {
	// Name identifies the uplink: letters, digits, '-' and '_'. It names
	// its consumers (uplink_<name>) and its own stream (UPLINK_<name>).
	Name string
	// URLs are the upstream servers, tried in random order.
	URLs []string

	// Credentials: at most one of user and password, token, NKey seed
	// file or .creds file.
	User, Password string
	Token          string
	NKeyFile       string
	CredsFile      string
	// TLS names a CA file to trust, and a client certificate and key: the
	// settings shape every TLS endpoint of ledge has (package auth).
	TLS auth.TLSFiles

	// Streams are local streams forwarded whole.
	Streams []string
	// Subjects are patterns forwarded: from the stream that has exactly
	// this pattern among its subjects, or else captured into UPLINK_<name>.
	Subjects []string
	// Prefix is put before every subject upstream ("site.42."), and taken
	// off downlinked subjects.
	Prefix string
	// UpstreamStream, when set, is the upstream stream expected to take
	// the messages; its absence is reported at connect time rather than at
	// the first publish.
	UpstreamStream string
	Mode           Mode

	// Window is how many messages may be in flight unacknowledged; it
	// bounds the uplink's memory to Window copies of a message. 16,384
	// keeps a nats-server hub's stream ingest busy: a 200,000-message
	// catch-up of 100-byte messages took 1.74-1.78 s against 1.90-2.12 s
	// with 4,096 (benchmarks/bridge.sh); WindowBytes shrinks it for large
	// messages.
	Window int
	// WindowBytes bounds the same window in bytes: each session starts
	// with the window that the stream's average message size fits into
	// WindowBytes (a power of two, at least 16, at most Window), so an
	// uplink of large messages holds megabytes, not gigabytes.
	WindowBytes int64
	// StallTimeout: no acknowledgement for this long while messages are
	// in flight counts as a dead link.
	StallTimeout time.Duration
	// BackoffMin and BackoffMax bound the wait between sessions. The
	// default ceiling, 500 ms, is what puts the first backlog message
	// upstream within half a second of the link returning; a refused
	// connection costs two packets, and the log says it once a minute.
	BackoffMin, BackoffMax time.Duration
	DialTimeout            time.Duration
	// RateLimit caps the bytes per second sent upstream (0: none).
	RateLimit int64
	// CatchUp is the order of a backlog and live messages when the link
	// returns.
	CatchUp CatchUp
	// Compress sends payloads compressed with s2 when that makes them
	// smaller, marked with CompressionHeader.
	Compress bool

	// MaxBytes is the disk budget of UPLINK_<name> (0: none), and Budget
	// what happens when it is reached.
	MaxBytes int64
	Budget   BudgetPolicy

	// Downlink are upstream subject patterns (without the prefix) whose
	// messages are republished locally. With DownlinkStream and
	// DownlinkDurable they are read through that durable consumer of that
	// upstream stream, created if missing; otherwise by a core
	// subscription, which misses what is sent while the link is down.
	Downlink        []string
	DownlinkStream  string
	DownlinkDurable string
}

func (u *Uplink) withDefaults() Uplink {
	c := *u
	if c.Window <= 0 {
		c.Window = DefaultWindow
	}
	if c.WindowBytes <= 0 {
		c.WindowBytes = DefaultWindowBytes
	}
	if c.StallTimeout <= 0 {
		c.StallTimeout = DefaultStallTimeout
	}
	if c.BackoffMin <= 0 {
		c.BackoffMin = DefaultBackoffMin
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = DefaultBackoffMax
	}
	if c.BackoffMax < c.BackoffMin {
		c.BackoffMax = c.BackoffMin
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	return c
}

// Validate reports every problem of the configuration at once.
func (c *Config) Validate() error {
	var errs []error
	if len(c.Uplinks) > 0 && c.GatewayID == "" {
		errs = append(errs, errors.New("uplink: a gateway id is needed for message ids upstream"))
	}
	if strings.ContainsAny(c.GatewayID, " \t\r\n:") {
		errs = append(errs, fmt.Errorf("gateway id %q: no spaces or ':'", c.GatewayID))
	}
	names := map[string]bool{}
	for i := range c.Uplinks {
		u := &c.Uplinks[i]
		if !validName(u.Name) {
			errs = append(errs, fmt.Errorf("uplink name %q: want 1 to 64 letters, digits, '-' or '_'", u.Name))
		}
		if names[u.Name] {
			errs = append(errs, fmt.Errorf("uplink %q named twice", u.Name))
		}
		names[u.Name] = true
		if len(u.URLs) == 0 {
			errs = append(errs, fmt.Errorf("uplink %s: no upstream URL", u.Name))
		}
		if len(u.Streams) == 0 && len(u.Subjects) == 0 && len(u.Downlink) == 0 {
			errs = append(errs, fmt.Errorf("uplink %s: nothing to forward (streams or subjects) and no downlink", u.Name))
		}
		for _, p := range u.Subjects {
			if err := router.ValidatePattern(p); err != nil {
				errs = append(errs, fmt.Errorf("uplink %s: subject %q: %w", u.Name, p, err))
			}
		}
		for _, p := range u.Downlink {
			if err := router.ValidatePattern(u.Prefix + p); err != nil {
				errs = append(errs, fmt.Errorf("uplink %s: downlink subject %q: %w", u.Name, p, err))
			}
		}
		if u.Prefix != "" && !strings.HasSuffix(u.Prefix, ".") {
			errs = append(errs, fmt.Errorf("uplink %s: prefix %q must end with '.'", u.Name, u.Prefix))
		}
		creds := 0
		for _, s := range []string{u.User + u.Password, u.Token, u.NKeyFile, u.CredsFile} {
			if s != "" {
				creds++
			}
		}
		if creds > 1 {
			errs = append(errs, fmt.Errorf("uplink %s: more than one kind of credentials", u.Name))
		}
		if err := u.TLS.Check(); err != nil {
			errs = append(errs, fmt.Errorf("uplink %s: %w", u.Name, err))
		}
		if (u.DownlinkStream == "") != (u.DownlinkDurable == "") {
			errs = append(errs, fmt.Errorf("uplink %s: downlink stream and durable go together", u.Name))
		}
		if u.DownlinkDurable != "" && len(u.Downlink) == 0 {
			errs = append(errs, fmt.Errorf("uplink %s: a downlink durable needs downlink subjects", u.Name))
		}
		if u.DownlinkDurable != "" && u.Mode == ModeCore {
			errs = append(errs, fmt.Errorf("uplink %s: a downlink durable needs JetStream, not core mode", u.Name))
		}
		if u.RateLimit < 0 || u.MaxBytes < 0 || u.Window < 0 || u.WindowBytes < 0 {
			errs = append(errs, fmt.Errorf("uplink %s: rate limit, disk budget and window must be >= 0", u.Name))
		}
	}
	return errors.Join(errs...)
}

func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range []byte(s) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}
