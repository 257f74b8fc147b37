package bridge

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ledgemq/ledge/broker"
	"github.com/ledgemq/ledge/log"
)

// uplinkAckWait is the local consumers' AckWait: a message in flight is
// sent again when a session ends, never by a timer behind its back.
const uplinkAckWait = 365 * 24 * time.Hour

// uplink is one configured uplink: its sources, its sessions one after
// the other, and its counters.
type uplink struct {
	br      *Bridge
	cfg     Uplink
	logger  *slog.Logger
	sources []*source
	// queue carries deliveries from the consumers' goroutines to the
	// session's forwarding loop; the consumers' windows bound it.
	queue    chan *item
	overflow atomic.Bool

	forwarded      atomic.Uint64
	forwardedBytes atomic.Uint64
	dropped        atomic.Uint64
	downlinked     atomic.Uint64

	mu         sync.Mutex
	state      string
	server     string
	mode       string
	lastErr    string
	lastErrAt  time.Time
	upSince    time.Time
	sessions   uint64
	cur        *session
	msgRate    float64
	byteRate   float64
	loopWarned map[string]bool
}

// source is one local stream an uplink forwards, read by its consumer.
// It is the consumer's outlet while a session is up.
type source struct {
	u       *uplink
	stream  *broker.Stream
	cons    *broker.Consumer
	filters []string
	whole   bool
	own     bool
	// dropFloor: every sequence at or below it was either forwarded or
	// counted as dropped (watch goroutine only).
	dropFloor uint64
}

// item is a delivered message copied out of the log, on its way upstream.
type item struct {
	src     *source
	seq     uint64
	subject string
	hdrs    []log.Header
	payload []byte
	size    int
}

func newUplink(br *Bridge, cfg Uplink) *uplink {
	return &uplink{
		br:         br,
		cfg:        cfg,
		logger:     br.logger.With("uplink", cfg.Name),
		state:      "connecting",
		loopWarned: map[string]bool{},
	}
}

func (u *uplink) ownStreamName() string { return "UPLINK_" + u.cfg.Name }
func (u *uplink) consumerName() string  { return "uplink_" + u.cfg.Name }

// openSources finds or creates the streams and the durable consumers the
// uplink reads, and parks the consumers until a session is up.
func (u *uplink) openSources() error {
	b := u.br.b
	byName := map[string]*source{}
	add := func(st *broker.Stream, filter string) *source {
		s := byName[st.Name()]
		if s == nil {
			s = &source{u: u, stream: st}
			byName[st.Name()] = s
			u.sources = append(u.sources, s)
		}
		if filter == "" {
			s.whole = true
		} else {
			s.filters = append(s.filters, filter)
		}
		return s
	}
	for _, name := range u.cfg.Streams {
		st, err := b.Stream(name)
		if err != nil {
			return fmt.Errorf("stream %s: %w", name, err)
		}
		add(st, "")
	}
	var rest []string
	for _, p := range u.cfg.Subjects {
		if st := streamWithPattern(b, p); st != nil && st.Name() != u.ownStreamName() {
			add(st, p)
			continue
		}
		rest = append(rest, p)
	}
	if len(rest) > 0 {
		st, err := u.ownStream(rest)
		if err != nil {
			return err
		}
		add(st, "").own = true
	}
	for _, s := range u.sources {
		if s.whole {
			s.filters = nil
		}
		if err := s.openConsumer(); err != nil {
			return err
		}
		if first := s.stream.Info().State.FirstSeq; first > 0 {
			s.dropFloor = first - 1
		}
	}
	u.queue = make(chan *item, u.cfg.Window*len(u.sources)+16)
	return nil
}

// streamWithPattern returns the stream that has exactly pattern p among
// its subjects, or the stream that captures p when p is a plain subject.
func streamWithPattern(b *broker.Broker, p string) *broker.Stream {
	for _, st := range b.Streams() {
		for _, s := range st.Config().Subjects {
			if s == p {
				return st
			}
		}
	}
	if !strings.ContainsAny(p, "*>#") {
		return b.Capture([]byte(p), nil)
	}
	return nil
}

// ownStream makes UPLINK_<name> capture the patterns no stream captures:
// interest retention, so a forwarded message leaves the disk, within the
// disk budget.
func (u *uplink) ownStream(subjects []string) (*broker.Stream, error) {
	b := u.br.b
	discard := broker.DiscardOld
	if u.cfg.Budget == RefuseNew {
		discard = broker.DiscardNew
	}
	st, err := b.Stream(u.ownStreamName())
	switch {
	case errors.Is(err, broker.ErrStreamNotFound):
		st, err = b.AddStream(broker.StreamConfig{
			Name:        u.ownStreamName(),
			Description: "subjects captured for uplink " + u.cfg.Name,
			Subjects:    subjects,
			Retention:   broker.InterestPolicy,
			MaxBytes:    u.cfg.MaxBytes,
			Discard:     discard,
		})
	case err == nil:
		cfg := st.Config()
		if !equalStrings(cfg.Subjects, subjects) || cfg.MaxBytes != u.cfg.MaxBytes || cfg.Discard != discard {
			cfg.Subjects, cfg.MaxBytes, cfg.Discard = subjects, u.cfg.MaxBytes, discard
			st, err = b.UpdateStream(cfg)
		}
	}
	if errors.Is(err, broker.ErrSubjectsOverlap) {
		return nil, fmt.Errorf("capture %s into %s: %w: forward that stream instead (streams), or name one of its exact subjects",
			strings.Join(subjects, ","), u.ownStreamName(), err)
	}
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", u.ownStreamName(), err)
	}
	return st, nil
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// openConsumer finds or creates the uplink's durable consumer on the
// source's stream, its cursor: a push consumer whose window is the
// uplink's, parked (Attach(nil)) until a session is up.
func (s *source) openConsumer() error {
	u := s.u
	cfg := broker.ConsumerConfig{
		Name:           u.consumerName(),
		Durable:        true,
		Description:    "uplink " + u.cfg.Name,
		DeliverPolicy:  broker.DeliverAll,
		AckPolicy:      broker.AckExplicit,
		AckWait:        uplinkAckWait,
		MaxAckPending:  u.cfg.Window,
		DeliverSubject: "$LEDGE.uplink." + u.cfg.Name,
		FilterSubjects: s.filters,
	}
	if c, err := s.stream.Consumer(cfg.Name); err == nil {
		cur := c.Config()
		cfg.Created = cur.Created
	}
	c, err := s.stream.AddConsumer(cfg, broker.CreateOrUpdate)
	if err != nil {
		return fmt.Errorf("consumer %s on %s: %w", cfg.Name, s.stream.Name(), err)
	}
	c.Attach(nil)
	s.cons = c
	return nil
}

// fitWindow sets the consumer's window to what the stream's average
// message size fits into the uplink's WindowBytes.
func (s *source) fitWindow() {
	u := s.u
	si := s.stream.Info()
	w := u.cfg.Window
	if si.State.Msgs > 0 {
		avg := max(int64(si.State.Bytes/si.State.Msgs), 1)
		fit := 16
		for fit*2 <= u.cfg.Window && int64(fit*2)*avg <= u.cfg.WindowBytes {
			fit *= 2
		}
		w = min(fit, u.cfg.Window)
	}
	cfg := s.cons.Config()
	if cfg.MaxAckPending == w {
		return
	}
	cfg.MaxAckPending = w
	if _, err := s.stream.AddConsumer(cfg, broker.UpdateOnly); err != nil {
		u.logger.Warn("uplink: window not changed", "stream", s.stream.Name(), "window", w, "err", err)
		return
	}
	u.logger.Debug("uplink window", "stream", s.stream.Name(), "window", w)
}

// Deliver copies a message out of the log into the uplink's queue. The
// consumer's window keeps the queue from filling; if it ever does, the
// session is ended and the message sent again by the next one.
func (s *source) Deliver(_ string, d *broker.Delivery) bool {
	it := &item{src: s, seq: d.StreamSeq, subject: string(d.Subject), payload: bytes.Clone(d.Payload), size: d.Size}
	if len(d.Headers) > 0 {
		it.hdrs = make([]log.Header, len(d.Headers))
		for i, h := range d.Headers {
			it.hdrs[i] = log.Header{Key: bytes.Clone(h.Key), Value: bytes.Clone(h.Value)}
		}
	}
	select {
	case s.u.queue <- it:
		return true
	default:
		s.u.overflow.Store(true)
		return false
	}
}

func (s *source) Status(string, broker.Status) {}
func (s *source) Event(broker.Event)           {}
func (s *source) Interest(string) bool         { return true }

func (u *uplink) attachAll() {
	for _, s := range u.sources {
		s.fitWindow()
		s.cons.Attach(s)
		// What the last session left unacknowledged goes first, in order.
		s.cons.RedeliverPending()
		if u.cfg.CatchUp == NewestFirst {
			// Live traffic goes ahead of the backlog; the consumer keeps
			// what it skipped in its state and sends it when nothing
			// newer waits.
			if n := s.cons.JumpToTail(); n > 0 {
				u.logger.Info("uplink: live messages go ahead of the backlog", "stream", s.stream.Name(), "backlog", n)
			}
		}
	}
}

func (u *uplink) detachAll() {
	for _, s := range u.sources {
		if s.cons != nil {
			s.cons.Attach(nil)
		}
	}
	for {
		select {
		case <-u.queue:
		default:
			u.overflow.Store(false)
			return
		}
	}
}

func (u *uplink) forwards(st *broker.Stream) bool { return containsStream(u.sources, st) }

func (u *uplink) warnLoop(subject, stream string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.loopWarned[stream] {
		return
	}
	u.loopWarned[stream] = true
	u.logger.Warn("uplink: downlinked message not stored: its stream is forwarded upstream by this uplink and would loop", "subject", subject, "stream", stream)
}

// run makes sessions one after the other until the bridge closes, waiting
// an exponential backoff with jitter between them.
func (u *uplink) run() {
	defer u.br.wg.Done()
	defer u.detachAll()
	backoff := u.cfg.BackoffMin
	var lastLogged string
	var lastLogAt time.Time
	for {
		u.setState("connecting")
		progressed, err := u.session()
		select {
		case <-u.br.quit:
			u.setState("down")
			return
		default:
		}
		if progressed {
			backoff = u.cfg.BackoffMin
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		u.down(err)
		// A link down for a day must not write a line per attempt: the
		// same error again is logged at most once a minute.
		msg := err.Error()
		if msg != lastLogged || time.Since(lastLogAt) > time.Minute {
			u.logger.Warn("uplink down", "err", msg, "retry_in", wait.Round(time.Millisecond), "backlog", u.backlog())
			lastLogged, lastLogAt = msg, time.Now()
		} else {
			u.logger.Debug("uplink down", "err", msg, "retry_in", wait.Round(time.Millisecond))
		}
		select {
		case <-time.After(wait):
		case <-u.br.quit:
			u.setState("down")
			return
		}
		backoff = min(backoff*2, u.cfg.BackoffMax)
	}
}

func (u *uplink) setState(state string) {
	u.mu.Lock()
	u.state = state
	u.mu.Unlock()
}

func (u *uplink) down(err error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.state = "down"
	u.server = ""
	u.cur = nil
	u.upSince = time.Time{}
	if err != nil {
		u.lastErr = err.Error()
		u.lastErrAt = time.Now()
	}
}

func (u *uplink) noteError(err error) {
	u.mu.Lock()
	u.lastErr = err.Error()
	u.lastErrAt = time.Now()
	u.mu.Unlock()
}

func (u *uplink) up(s *session, server, mode string) {
	u.mu.Lock()
	u.state = "up"
	u.server = server
	u.mode = mode
	u.cur = s
	u.upSince = time.Now()
	u.sessions++
	u.mu.Unlock()
}

func (u *uplink) redactedURLs() string {
	out := make([]string, 0, len(u.cfg.URLs))
	for _, s := range u.cfg.URLs {
		if p, err := url.Parse(s); err == nil && p.User != nil {
			p.User = url.User("redacted")
			s = p.String()
		}
		out = append(out, s)
	}
	return strings.Join(out, ",")
}

// backlog is the messages not yet acknowledged upstream.
func (u *uplink) backlog() uint64 {
	var n uint64
	for _, s := range u.sources {
		ci := s.cons.Info()
		n += ci.NumPending + uint64(ci.NumAckPending)
	}
	return n
}

// status gathers the uplink's state for an operator.
func (u *uplink) status() Status {
	st := Status{
		Name:       u.cfg.Name,
		Upstream:   u.redactedURLs(),
		Forwarded:  u.forwarded.Load(),
		Dropped:    u.dropped.Load(),
		Downlinked: u.downlinked.Load(),
	}
	now := time.Now()
	for _, s := range u.sources {
		st.Streams = append(st.Streams, s.stream.Name())
		ci := s.cons.Info()
		backlog := ci.NumPending + uint64(ci.NumAckPending)
		st.BacklogMsgs += backlog
		if backlog == 0 {
			continue
		}
		si := s.stream.Info()
		switch {
		case s.own || backlog >= si.State.Msgs:
			st.BacklogBytes += si.State.Bytes
		case si.State.Msgs > 0:
			st.BacklogBytes += uint64(float64(si.State.Bytes) * float64(backlog) / float64(si.State.Msgs))
		}
		filter := ""
		if len(s.filters) == 1 {
			filter = s.filters[0]
		}
		if m, err := s.stream.GetNextMsg(ci.AckFloor.Stream+1, filter); err == nil {
			st.OldestAge = max(st.OldestAge, now.Sub(m.Time).Seconds())
		}
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	st.State, st.Server, st.Mode = u.state, u.server, u.mode
	st.LastError, st.LastErrAt, st.UpSince = u.lastErr, u.lastErrAt, u.upSince
	st.Sessions = u.sessions
	st.MsgsPerSec, st.BytesPerSec = u.msgRate, u.byteRate
	if s := u.cur; s != nil && st.State == "up" {
		n, since := s.inFlight()
		st.InFlight = n
		// Connected is not enough: a link with messages out and no
		// acknowledgement coming back is not moving data.
		switch {
		case n > 0 && since > min(u.cfg.StallTimeout/2, 2*time.Second):
			st.State = "stalled"
		case !s.progressed.Load() && st.BacklogMsgs > 0:
			// Connected, with messages to send, and none acknowledged
			// yet: an upstream that refuses every publish stays here.
			st.State = "connecting"
		}
	}
	return st
}

// watch keeps the rates, counts messages that the stream's limits removed
// before they were forwarded, and logs progress while there is a backlog.
func (u *uplink) watch() {
	defer u.br.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	lastT := time.Now()
	lastMsgs, lastBytes := u.forwarded.Load(), u.forwardedBytes.Load()
	var lastLog time.Time
	for {
		select {
		case <-u.br.quit:
			return
		case now := <-t.C:
			m, b := u.forwarded.Load(), u.forwardedBytes.Load()
			dt := now.Sub(lastT).Seconds()
			u.mu.Lock()
			u.msgRate = float64(m-lastMsgs) / dt
			u.byteRate = float64(b-lastBytes) / dt
			u.mu.Unlock()
			lastT, lastMsgs, lastBytes = now, m, b
			for _, s := range u.sources {
				u.checkDrops(s)
			}
			if now.Sub(lastLog) >= 30*time.Second {
				st := u.status()
				if st.BacklogMsgs > 0 || st.State != "up" {
					lastLog = now
					u.logger.Info("uplink", "state", st.State, "server", st.Server, "backlog_msgs", st.BacklogMsgs,
						"backlog_bytes", st.BacklogBytes, "oldest_age", time.Duration(st.OldestAge*float64(time.Second)).Round(time.Second),
						"msgs_per_sec", int64(st.MsgsPerSec), "forwarded", st.Forwarded, "dropped", st.Dropped, "last_error", st.LastError)
				}
			}
		}
	}
}

// checkDrops counts the messages that left a forwarded stream below its
// first sequence without the uplink having acknowledged them: the disk
// budget (or another limit) removed them unforwarded.
func (u *uplink) checkDrops(s *source) {
	if !s.whole {
		// A shared stream's limits also remove messages the uplink does not
		// forward; only whole streams are counted.
		return
	}
	first := s.stream.Info().State.FirstSeq
	if first == 0 {
		return
	}
	gone := first - 1
	base := max(s.cons.Info().AckFloor.Stream, s.dropFloor)
	if gone <= base {
		return
	}
	n := gone - base
	s.dropFloor = gone
	total := u.dropped.Add(n)
	u.logger.Warn("uplink: unforwarded messages dropped by the stream's limits (disk budget)", "stream", s.stream.Name(),
		"dropped", n, "dropped_total", total, "policy", u.cfg.Budget)
}
