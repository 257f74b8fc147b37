package bridge

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/ledgemq/ledge/broker"
	"github.com/ledgemq/ledge/log"
	"github.com/ledgemq/ledge/router"
)

// Bridge runs the uplinks of one broker. All methods are safe for
// concurrent use.
type Bridge struct {
	b       *broker.Broker
	live    *router.Router[broker.Receiver]
	gateway string
	logger  *slog.Logger
	uplinks []*uplink
	wg      sync.WaitGroup
	quit    chan struct{}
	once    sync.Once
}

// New opens the uplinks' local streams and consumers and starts them: each
// connects in the background, so an unreachable upstream never delays or
// fails the broker. live is the router of local live subscribers that
// downlinked messages are delivered to (nil: stored only).
func New(b *broker.Broker, live *router.Router[broker.Receiver], cfg Config) (*Bridge, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	br := &Bridge{b: b, live: live, gateway: cfg.GatewayID, logger: logger, quit: make(chan struct{})}
	for i := range cfg.Uplinks {
		u := newUplink(br, cfg.Uplinks[i].withDefaults())
		if err := u.openSources(); err != nil {
			for _, o := range br.uplinks {
				o.detachAll()
			}
			return nil, fmt.Errorf("uplink %s: %w", u.cfg.Name, err)
		}
		br.uplinks = append(br.uplinks, u)
	}
	for _, u := range br.uplinks {
		var names []string
		for _, s := range u.sources {
			names = append(names, s.stream.Name())
		}
		u.logger.Info("uplink configured", "upstream", u.redactedURLs(), "streams", names,
			"prefix", u.cfg.Prefix, "mode", u.cfg.Mode, "window", u.cfg.Window, "catch_up", u.cfg.CatchUp,
			"downlink", u.cfg.Downlink, "compress", u.cfg.Compress, "rate_limit", u.cfg.RateLimit)
		br.wg.Add(2)
		go u.run()
		go u.watch()
	}
	return br, nil
}

// Close stops every uplink, leaving unforwarded messages in their streams
// for the next start.
func (br *Bridge) Close() error {
	br.once.Do(func() { close(br.quit) })
	br.wg.Wait()
	return nil
}

// Status is what an operator sees of one uplink.
type Status struct {
	Name string `json:"name"`
	// State is "up" (connected and moving data, or nothing to move),
	// "stalled" (connected, messages waiting, no acknowledgement for a
	// while), "connecting" (not yet connected, or connected with messages
	// to send and none acknowledged yet) or "down".
	State    string `json:"state"`
	Server   string `json:"server,omitempty"`
	Mode     string `json:"mode,omitempty"`
	Upstream string `json:"upstream"`
	// Backlog is what is not yet acknowledged upstream; BacklogBytes is
	// exact for the uplink's own stream and estimated for shared ones.
	BacklogMsgs  uint64  `json:"backlog_msgs"`
	BacklogBytes uint64  `json:"backlog_bytes"`
	OldestAge    float64 `json:"oldest_age_seconds"`
	InFlight     int     `json:"in_flight"`
	// Rates over the last few seconds.
	MsgsPerSec  float64 `json:"msgs_per_sec"`
	BytesPerSec float64 `json:"bytes_per_sec"`
	Forwarded   uint64  `json:"forwarded"`
	// Dropped counts unforwarded messages removed by the disk budget (or
	// another limit of the stream).
	Dropped    uint64    `json:"dropped"`
	Downlinked uint64    `json:"downlinked"`
	Sessions   uint64    `json:"sessions"`
	LastError  string    `json:"last_error,omitempty"`
	LastErrAt  time.Time `json:"last_error_at,omitzero"`
	UpSince    time.Time `json:"up_since,omitzero"`
	Streams    []string  `json:"streams,omitempty"`
}

// Status returns the state of every uplink.
func (br *Bridge) Status() []Status {
	out := make([]Status, 0, len(br.uplinks))
	for _, u := range br.uplinks {
		out = append(out, u.status())
	}
	return out
}

// publishLocal hands a downlinked message to the local live subscribers
// and to the stream that captures its subject (unless that stream is one
// the uplink forwards, which would send it straight back). done runs once
// the store has it, or at once when nothing stores it.
func (br *Bridge) publishLocal(u *uplink, subject []byte, hdrs []log.Header, payload []byte, done func(error)) {
	m := broker.Msg{Subject: subject, Headers: hdrs, Payload: payload, QoS: 1, Origin: br}
	if br.live != nil {
		var res router.Result[broker.Receiver]
		if br.live.MatchBytes(subject, &res) == nil {
			for _, r := range res.Subs {
				r.Deliver(&m)
			}
			for i := range res.Groups {
				g := &res.Groups[i]
				for tries := 0; tries < 3; tries++ {
					r, ok := g.Pick(nil)
					if !ok || r.Deliver(&m) {
						break
					}
				}
			}
		}
	}
	var cres router.Result[*broker.Stream]
	st := br.b.Capture(subject, &cres)
	if st == nil || u.forwards(st) {
		if st != nil {
			u.warnLoop(string(subject), st.Name())
		}
		done(nil)
		return
	}
	msg := broker.Message{Subject: subject, Headers: hdrs, Payload: payload}
	if err := st.Publish(&msg, func(_ broker.PubAck, err error) { done(err) }); err != nil {
		done(err)
	}
}

// errNoStream says the upstream has JetStream but no stream captures the
// subject.
var errNoStream = errors.New("no upstream stream captures the subject (JetStream answered no responders)")

func containsStream(list []*source, st *broker.Stream) bool {
	return slices.ContainsFunc(list, func(s *source) bool { return s.stream == st })
}
