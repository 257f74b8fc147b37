package bridge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/ledgemq/ledge/broker"
	"github.com/ledgemq/ledge/log"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

var errClosing = errors.New("bridge closing")

// session is one connection upstream, from connect to its first failure.
type session struct {
	u     *uplink
	nc    *nats.Conn
	js    bool
	inbox string

	failed chan struct{}
	once   sync.Once
	err    error

	progressed atomic.Bool
	// msg is reused for every publish (forward loop only).
	msg *nats.Msg

	mu           sync.Mutex
	inflight     map[uint64]*item
	nextID       uint64
	lastProgress time.Time
}

func (s *session) fail(err error) {
	s.once.Do(func() {
		s.err = err
		close(s.failed)
	})
}

// inFlight reports the messages awaiting an acknowledgement and how long
// since the last one came.
func (s *session) inFlight() (int, time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.inflight), time.Since(s.lastProgress)
}

// session connects, forwards until something fails, and reports whether
// any message got through.
func (u *uplink) session() (bool, error) {
	s := &session{u: u, failed: make(chan struct{}), inflight: map[uint64]*item{}, lastProgress: time.Now()}
	nc, err := u.connect(s)
	if err != nil {
		return false, fmt.Errorf("connect %s: %w", u.redactedURLs(), err)
	}
	s.nc = nc
	defer nc.Close()
	js, err := u.probe(nc)
	if err != nil {
		return false, err
	}
	s.js = js
	mode := "core"
	if js {
		mode = "jetstream"
	}
	if js && u.cfg.UpstreamStream != "" {
		if err := u.checkStream(nc); err != nil {
			return false, err
		}
	}
	if len(u.sources) > 0 && js {
		s.inbox = nc.NewInbox() + "."
		sub, err := nc.Subscribe(s.inbox+"*", s.onAck)
		if err != nil {
			return false, fmt.Errorf("subscribe to acknowledgements: %w", err)
		}
		_ = sub.SetPendingLimits(-1, -1)
	}
	stopDown, err := u.startDownlink(s)
	if err != nil {
		return false, err
	}
	defer stopDown()
	server := nc.ConnectedUrlRedacted()
	u.up(s, server, mode)
	u.logger.Info("uplink connected", "server", server, "mode", mode, "backlog", u.backlog())
	u.attachAll()
	defer u.detachAll()
	err = s.forward()
	return s.progressed.Load(), err
}

func (u *uplink) connect(s *session) (*nats.Conn, error) {
	opts := []nats.Option{
		nats.Name("ledge uplink " + u.cfg.Name + " " + u.br.gateway),
		// Sessions are the bridge's: a reconnect inside nats.go would
		// replay buffered publishes behind the cursor's back.
		nats.NoReconnect(),
		nats.Timeout(u.cfg.DialTimeout),
		nats.PingInterval(max(u.cfg.StallTimeout, time.Second)),
		nats.MaxPingsOutstanding(2),
		nats.ClosedHandler(func(nc *nats.Conn) {
			err := nc.LastError()
			if err == nil {
				err = errors.New("connection closed")
			}
			s.fail(err)
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err == nil {
				err = errors.New("disconnected")
			}
			s.fail(fmt.Errorf("disconnected: %w", err))
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			// A permission violation leaves publishes unacknowledged; the
			// stall detector ends the session, and this is the reason.
			u.noteError(err)
			u.logger.Warn("uplink: upstream error", "err", err)
		}),
	}
	switch {
	case u.cfg.User != "":
		opts = append(opts, nats.UserInfo(u.cfg.User, u.cfg.Password))
	case u.cfg.Token != "":
		opts = append(opts, nats.Token(u.cfg.Token))
	case u.cfg.CredsFile != "":
		opts = append(opts, nats.UserCredentials(u.cfg.CredsFile))
	case u.cfg.NKeyFile != "":
		o, err := nats.NkeyOptionFromSeed(u.cfg.NKeyFile)
		if err != nil {
			return nil, fmt.Errorf("nkey seed %s: %w", u.cfg.NKeyFile, err)
		}
		opts = append(opts, o)
	}
	if t := u.cfg.TLS; t.CA != "" {
		opts = append(opts, nats.RootCAs(t.CA))
	}
	if t := u.cfg.TLS; t.Cert != "" {
		opts = append(opts, nats.ClientCert(t.Cert, t.Key))
	}
	nc, err := nats.Connect(strings.Join(u.cfg.URLs, ","), opts...)
	if errors.Is(err, nats.ErrNoServers) {
		// nats.go does not say why; a dial of each server does.
		var why []string
		for _, s := range u.cfg.URLs {
			if p, perr := url.Parse(s); perr == nil && p.Host != "" {
				c, derr := net.DialTimeout("tcp", p.Host, u.cfg.DialTimeout)
				if derr != nil {
					why = append(why, derr.Error())
					continue
				}
				c.Close()
			}
		}
		if len(why) > 0 {
			err = fmt.Errorf("%w: %s", err, strings.Join(why, "; "))
		}
	}
	return nc, err
}

// apiError is the error part of a JetStream API answer.
type apiError struct {
	Error *struct {
		Code        int    `json:"code"`
		ErrCode     int    `json:"err_code"`
		Description string `json:"description"`
	} `json:"error"`
}

// probe asks the upstream whether the account has JetStream.
func (u *uplink) probe(nc *nats.Conn) (bool, error) {
	if u.cfg.Mode == ModeCore {
		return false, nil
	}
	m, err := nc.Request("$JS.API.INFO", nil, u.cfg.DialTimeout)
	var reason string
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		reason = "no JetStream upstream"
	case err != nil:
		return false, fmt.Errorf("JetStream probe: %w", err)
	default:
		var ae apiError
		if json.Unmarshal(m.Data, &ae) == nil && ae.Error != nil {
			reason = fmt.Sprintf("JetStream not available upstream: %s (%d)", ae.Error.Description, ae.Error.ErrCode)
		}
	}
	if reason == "" {
		return true, nil
	}
	if u.cfg.Mode == ModeJetStream || u.cfg.DownlinkDurable != "" {
		return false, errors.New(reason)
	}
	return false, nil
}

func (u *uplink) checkStream(nc *nats.Conn) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), u.cfg.DialTimeout)
	defer cancel()
	if _, err := js.Stream(ctx, u.cfg.UpstreamStream); err != nil {
		return fmt.Errorf("upstream stream %s: %w", u.cfg.UpstreamStream, err)
	}
	return nil
}

// forward sends what the consumers deliver until the session fails.
func (s *session) forward() error {
	u := s.u
	tick := time.NewTicker(min(max(u.cfg.StallTimeout/4, 20*time.Millisecond), time.Second))
	defer tick.Stop()
	var lim *limiter
	if u.cfg.RateLimit > 0 {
		lim = newLimiter(u.cfg.RateLimit)
	}
	var unflushed []*item
	for {
		select {
		case <-s.failed:
			return s.err
		case <-u.br.quit:
			return errClosing
		case <-tick.C:
			if err := s.check(); err != nil {
				return err
			}
		case it := <-u.queue:
			if lim != nil {
				if d := lim.take(it.size + len(it.subject)); d > 0 {
					t := time.NewTimer(d)
					select {
					case <-t.C:
					case <-s.failed:
						t.Stop()
						return s.err
					case <-u.br.quit:
						t.Stop()
						return errClosing
					}
				}
			}
			m := s.message(it)
			if s.js {
				s.mu.Lock()
				id := s.nextID
				s.nextID++
				if len(s.inflight) == 0 {
					s.lastProgress = time.Now()
				}
				s.inflight[id] = it
				s.mu.Unlock()
				m.Reply = s.inbox + strconv.FormatUint(id, 10)
				if err := s.nc.PublishMsg(m); err != nil {
					return fmt.Errorf("publish %s: %w", m.Subject, err)
				}
				continue
			}
			if err := s.nc.PublishMsg(m); err != nil {
				return fmt.Errorf("publish %s: %w", m.Subject, err)
			}
			unflushed = append(unflushed, it)
			// Core NATS has no acknowledgement: a flush round trip says
			// the server has read everything before it. At-least-once.
			if len(unflushed) >= max(u.cfg.Window/2, 1) || len(u.queue) == 0 {
				if err := s.nc.FlushTimeout(u.cfg.StallTimeout); err != nil {
					return fmt.Errorf("flush: %w", err)
				}
				for _, it := range unflushed {
					s.acked(it)
				}
				clear(unflushed)
				unflushed = unflushed[:0]
			}
		}
	}
}

// check ends a session that is stalled, or whose queue overflowed.
func (s *session) check() error {
	if s.u.overflow.Load() {
		return errors.New("forwarding queue overflowed; sending again from the cursor")
	}
	n, since := s.inFlight()
	if n > 0 && since > s.u.cfg.StallTimeout {
		return fmt.Errorf("stalled: %d messages unacknowledged for %s", n, since.Round(time.Millisecond))
	}
	return nil
}

// message builds the upstream message for it: the prefixed subject, its
// headers with the message id, the payload compressed if asked and
// smaller.
func (s *session) message(it *item) *nats.Msg {
	u := s.u
	// nats.go encodes a message before PublishMsg returns and keeps
	// nothing of it, so one message and header map serve every publish.
	if s.msg == nil {
		s.msg = &nats.Msg{Header: nats.Header{}}
	}
	h := s.msg.Header
	clear(h)
	for _, lh := range it.hdrs {
		k := string(lh.Key)
		if k == broker.MsgIDHeader || k == CompressionHeader {
			continue
		}
		h[k] = append(h[k], string(lh.Value))
	}
	h[broker.MsgIDHeader] = []string{msgID(u.br.gateway, it.src.stream.Name(), it.seq)}
	data := it.payload
	if u.cfg.Compress && len(data) > 32 {
		if enc := s2.Encode(nil, data); len(enc) < len(data) {
			data = enc
			h[CompressionHeader] = []string{"s2"}
		}
	}
	m := s.msg
	m.Subject, m.Reply, m.Data = u.cfg.Prefix+it.subject, "", data
	return m
}

// msgID is the Nats-Msg-Id of a forwarded message: the same for every
// attempt, unique across gateways and streams.
func msgID(gateway, stream string, seq uint64) string {
	return gateway + ":" + stream + ":" + strconv.FormatUint(seq, 10)
}

// onAck handles the upstream's answer to one publish.
func (s *session) onAck(m *nats.Msg) {
	id, err := strconv.ParseUint(m.Subject[len(s.inbox):], 10, 64)
	if err != nil {
		return
	}
	s.mu.Lock()
	it := s.inflight[id]
	delete(s.inflight, id)
	s.lastProgress = time.Now()
	s.mu.Unlock()
	if it == nil {
		return
	}
	subject := s.u.cfg.Prefix + it.subject
	if len(m.Data) == 0 && m.Header.Get("Status") == "503" {
		s.fail(fmt.Errorf("publish to %s: %w", subject, errNoStream))
		return
	}
	if bytes.Contains(m.Data, []byte(`"error"`)) {
		var ae apiError
		if json.Unmarshal(m.Data, &ae) == nil && ae.Error != nil {
			s.fail(fmt.Errorf("upstream refused %s: %s (%d)", subject, ae.Error.Description, ae.Error.ErrCode))
			return
		}
	}
	s.acked(it)
}

// acked moves the cursor over a message the upstream has.
func (s *session) acked(it *item) {
	if err := it.src.cons.Ack(it.seq, broker.Ack, 0); err != nil && !errors.Is(err, broker.ErrUnknownDelivery) {
		s.u.logger.Warn("uplink: local ack", "stream", it.src.stream.Name(), "seq", it.seq, "err", err)
	}
	s.u.forwarded.Add(1)
	s.u.forwardedBytes.Add(uint64(it.size + len(it.subject)))
	s.progressed.Store(true)
}

// startDownlink subscribes upstream to the downlink subjects, through the
// durable consumer when one is configured.
func (u *uplink) startDownlink(s *session) (func(), error) {
	if len(u.cfg.Downlink) == 0 {
		return func() {}, nil
	}
	subjects := make([]string, len(u.cfg.Downlink))
	for i, p := range u.cfg.Downlink {
		subjects[i] = u.cfg.Prefix + p
	}
	if u.cfg.DownlinkDurable == "" {
		var subs []*nats.Subscription
		for _, subj := range subjects {
			sub, err := s.nc.Subscribe(subj, func(m *nats.Msg) {
				u.downlink(m.Subject, m.Header, m.Data, func(error) {})
			})
			if err != nil {
				return nil, fmt.Errorf("downlink subscribe %s: %w", subj, err)
			}
			_ = sub.SetPendingLimits(-1, 64<<20)
			subs = append(subs, sub)
		}
		if err := s.nc.FlushTimeout(u.cfg.DialTimeout); err != nil {
			return nil, fmt.Errorf("downlink subscribe: %w", err)
		}
		return func() {
			for _, sub := range subs {
				_ = sub.Unsubscribe()
			}
		}, nil
	}
	js, err := jetstream.New(s.nc)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), u.cfg.DialTimeout)
	defer cancel()
	cons, err := js.CreateOrUpdateConsumer(ctx, u.cfg.DownlinkStream, jetstream.ConsumerConfig{
		Durable:        u.cfg.DownlinkDurable,
		Description:    "ledge downlink " + u.br.gateway,
		FilterSubjects: subjects,
		AckPolicy:      jetstream.AckExplicitPolicy,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("downlink consumer %s on upstream stream %s: %w", u.cfg.DownlinkDurable, u.cfg.DownlinkStream, err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		u.downlink(m.Subject(), m.Headers(), m.Data(), func(err error) {
			if err != nil {
				_ = m.Nak()
				return
			}
			_ = m.Ack()
		})
	}, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		u.logger.Debug("uplink: downlink consumer", "err", err)
	}))
	if err != nil {
		return nil, fmt.Errorf("downlink consume: %w", err)
	}
	return cc.Stop, nil
}

// downlink republishes an upstream message locally, without the prefix.
func (u *uplink) downlink(subject string, h nats.Header, data []byte, done func(error)) {
	local := strings.TrimPrefix(subject, u.cfg.Prefix)
	var hdrs []log.Header
	for k, vs := range h {
		if k == CompressionHeader {
			continue
		}
		for _, v := range vs {
			hdrs = append(hdrs, log.Header{Key: []byte(k), Value: []byte(v)})
		}
	}
	if len(h[CompressionHeader]) > 0 && h[CompressionHeader][0] == "s2" {
		dec, err := s2.Decode(nil, data)
		if err != nil {
			u.logger.Warn("uplink: downlinked payload does not decode", "subject", subject, "err", err)
			done(nil)
			return
		}
		data = dec
	}
	u.downlinked.Add(1)
	u.br.publishLocal(u, []byte(local), hdrs, data, done)
}

// limiter is a token bucket of bytes per second with a second's burst.
type limiter struct {
	rate   float64
	tokens float64
	last   time.Time
}

func newLimiter(rate int64) *limiter {
	return &limiter{rate: float64(rate), tokens: float64(rate), last: time.Now()}
}

// take spends n bytes and returns how long to wait before sending them.
func (l *limiter) take(n int) time.Duration {
	now := time.Now()
	l.tokens = min(l.tokens+now.Sub(l.last).Seconds()*l.rate, l.rate)
	l.last = now
	l.tokens -= float64(n)
	if l.tokens >= 0 {
		return 0
	}
	return time.Duration(-l.tokens / l.rate * float64(time.Second))
}
