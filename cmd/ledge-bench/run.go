package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// runner is one run of a scenario: its clients, their counters and the
// timeline the report and the plot are drawn from.
type runner struct {
	cfg     *config
	proto   Protocol
	s       *scenario
	tracked bool // messages are big enough to carry a header

	pubs   []*publisher
	recvs  []*receiver
	groups []*group

	begun     chan struct{} // closed when the first publisher or consumer may start
	measuring atomic.Bool   // false during warm-up
	consumed  atomic.Uint64 // jsconsume: messages taken towards -count
	owed      atomic.Uint64 // -max-ahead: deliveries due for what was published
	got       atomic.Uint64 // -max-ahead: deliveries received
	aheadOff  atomic.Bool   // -max-ahead gave up: deliveries stopped coming
	errs      atomic.Uint64
	errMu     sync.Mutex
	firstErr  error

	start   time.Time
	pubEnd  time.Time
	end     time.Time
	samples []sample
}

// publisher is one publishing (or requesting) client.
type publisher struct {
	idx     int
	subject string
	quota   uint64 // messages to send in the measured phase; 0: until the deadline
	client  Client
	sent    atomic.Uint64
	bytes   atomic.Uint64
	acked   atomic.Uint64 // replies (reqrep) or stored acks (jspub)
	lastAck atomic.Int64  // Unix nanoseconds
	hist    *Histogram    // round trips or ack latencies, recorded by one goroutine
	fans    uint64        // receivers (queue groups as one) that hear it
}

// receiver is one subscribing (or consuming) client.
type receiver struct {
	idx      int
	filter   string
	client   Client
	sub      Subscription
	received atomic.Uint64
	bytes    atomic.Uint64
	last     atomic.Int64 // Unix nanoseconds of the last message

	mu        sync.Mutex // the handler's goroutine against the report
	hist      *Histogram
	checks    []seqCheck // by publisher index
	untracked uint64     // messages without a header of this run
}

// group is what one stream of messages is checked against: a subscriber
// alone, or all the members of a queue group together.
type group struct {
	members []*receiver
	from    []int // the publishers whose subjects the group hears
}

// sample is a point of the timeline, taken every sampleEvery.
type sample struct {
	at             time.Duration // since the measured phase began
	sent, received uint64
}

const (
	sampleEvery  = 250 * time.Millisecond
	maxPublisher = 1 << 20 // higher indexes in a header are not ours
)

// run runs the scenario of cfg against the broker and returns what it
// measured. A run cut short by ctx still returns the figures so far. The
// live progress line goes to out when tty is set.
func run(ctx context.Context, cfg *config, out io.Writer, tty bool) (*Result, error) {
	proto, err := lookupProtocol(cfg.proto)
	if err != nil {
		return nil, err
	}
	r := &runner{cfg: cfg, proto: proto, s: cfg.scenario, tracked: cfg.size >= headerSize, begun: make(chan struct{})}
	if r.s.kind == kindIdle {
		return r.idle(ctx, out)
	}
	defer r.closeAll()
	if err := r.connect(ctx); err != nil {
		return nil, err
	}
	if cfg.warmup == 0 {
		r.measuring.Store(true)
	}
	close(r.begun)
	if cfg.warmup > 0 {
		wctx, cancel := context.WithTimeout(ctx, cfg.warmup)
		if len(r.pubs) > 0 {
			r.publishAll(wctx, true)
			r.flushPublishers(ctx)
		} else {
			<-wctx.Done() // jsconsume: consumers take and ack, uncounted
		}
		cancel()
	}

	// The measured phase.
	r.measuring.Store(true)
	r.start = time.Now()
	mctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if cfg.duration > 0 {
		var c2 context.CancelFunc
		mctx, c2 = context.WithTimeout(mctx, cfg.duration)
		defer c2()
	}
	stopSampler := r.sample(out, tty && !cfg.quiet)
	r.publishAll(mctx, false)
	r.flushPublishers(ctx)
	r.pubEnd = time.Now()
	r.awaitReceivers(ctx, mctx)
	r.stopReceivers()
	r.end = time.Now()
	stopSampler()
	return r.result(), ctx.Err()
}

// fail counts an error and keeps the first for the report.
func (r *runner) fail(err error) {
	if r.errs.Add(1) == 1 {
		r.errMu.Lock()
		r.firstErr = err
		r.errMu.Unlock()
	}
}

func (r *runner) dial(ctx context.Context, role string, n int) (Client, error) {
	dctx, cancel := context.WithTimeout(ctx, r.cfg.timeout)
	defer cancel()
	cfg := r.cfg
	return r.proto.Dial(dctx, cfg.url, DialOptions{
		Name:         fmt.Sprintf("ledge-bench %s %s %d", r.s.name, role, n),
		OnAsyncError: r.fail,
		Timeout:      cfg.timeout,
		QoS:          cfg.qos,
		MQTTVersion:  cfg.mqttVersion,
		KeepAlive:    cfg.keepAlive,
		Window:       cfg.inflight,
		Persistent:   cfg.persistent && role == "receiver",

		Exchange:      cfg.exchange,
		Durable:       cfg.durable,
		Confirm:       cfg.confirm && role == "publisher",
		Prefetch:      cfg.prefetch,
		AutoAck:       cfg.autoAck,
		DirectReplyTo: cfg.replyTo == "direct",
		Ack:           cfg.ack,
	})
}

// dialAll opens n clients, a few at a time: ten thousand simulated
// devices dialled one after the other would spend seconds on round trips.
// On an error the clients opened are closed.
func (r *runner) dialAll(ctx context.Context, role string, n int) ([]Client, error) {
	out := make([]Client, n)
	var (
		next  atomic.Int64
		wg    sync.WaitGroup
		errMu sync.Mutex
		first error
	)
	for range min(n, 32) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				c, err := r.dial(ctx, role, i)
				if err != nil {
					errMu.Lock()
					if first == nil {
						first = err
					}
					errMu.Unlock()
					return
				}
				out[i] = c
			}
		}()
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	if first != nil {
		for _, c := range out {
			if c != nil {
				c.Close()
			}
		}
		return nil, first
	}
	return out, nil
}

// connect opens every client and subscribes the receivers, each
// subscription confirmed by the broker before any publisher starts.
func (r *runner) connect(ctx context.Context) error {
	cfg, s := r.cfg, r.s
	var counts []uint64
	if cfg.count > 0 && s.kind != kindStoreCons {
		counts = split(cfg.count, cfg.pubs)
	}
	pcs, err := r.dialAll(ctx, "publisher", cfg.pubs)
	if err != nil {
		return err
	}
	for i, c := range pcs {
		p := &publisher{idx: i, subject: expand(cfg.subject, i), client: c, hist: NewHistogram()}
		if counts != nil {
			p.quota = counts[i]
		}
		r.pubs = append(r.pubs, p)
	}
	rcs, err := r.dialAll(ctx, "receiver", cfg.subs)
	if err != nil {
		return err
	}
	for i, c := range rcs {
		rc := &receiver{idx: i, client: c, hist: NewHistogram(), checks: make([]seqCheck, cfg.pubs)}
		rc.filter = cfg.dialect.wildcard(cfg.subject)
		if s.pairs {
			rc.filter = expand(cfg.subject, i)
		}
		r.recvs = append(r.recvs, rc)
	}
	if s.kind == kindStorePub || s.kind == kindStoreCons {
		var c Client
		if len(r.pubs) > 0 {
			c = r.pubs[0].client
		} else {
			c = r.recvs[0].client
		}
		sc, ok := c.(StreamClient)
		if !ok {
			return fmt.Errorf("scenario %s needs stored streams, which the %s protocol of this build does not offer", s.name, r.proto.Name)
		}
		sctx, cancel := context.WithTimeout(ctx, cfg.timeout)
		err := sc.EnsureStream(sctx, cfg.stream, []string{cfg.dialect.wildcard(cfg.subject)}, cfg.createStream)
		cancel()
		if err != nil {
			return err
		}
	}
	for _, rc := range r.recvs {
		if err := r.subscribe(ctx, rc); err != nil {
			return err
		}
	}
	// Groups: a queue group is checked as one; every other receiver alone.
	if s.queue && len(r.recvs) > 0 {
		r.groups = append(r.groups, &group{members: r.recvs})
	} else {
		for _, rc := range r.recvs {
			r.groups = append(r.groups, &group{members: []*receiver{rc}})
		}
	}
	for _, g := range r.groups {
		for _, p := range r.pubs {
			if cfg.dialect.matches(g.members[0].filter, p.subject) {
				g.from = append(g.from, p.idx)
				p.fans++
			}
		}
	}
	return nil
}

func (r *runner) subscribe(ctx context.Context, rc *receiver) error {
	cfg := r.cfg
	var err error
	switch r.s.kind {
	case kindStoreCons:
		sc, ok := rc.client.(StreamClient)
		if !ok {
			return fmt.Errorf("%s: no stored streams", r.proto.Name)
		}
		sctx, cancel := context.WithTimeout(ctx, cfg.timeout)
		defer cancel()
		rc.sub, err = sc.Consume(sctx, cfg.stream, cfg.consumer, cfg.maxPending, func(data []byte) bool {
			return r.consumed1(rc, data)
		})
	default:
		queue := ""
		if r.s.queue {
			queue = cfg.queue
		}
		rc.sub, err = rc.client.Subscribe(rc.filter, queue, func(_, reply string, data []byte) {
			r.received(rc, data, time.Now().UnixNano())
			if reply != "" {
				var err error
				if rp, ok := rc.client.(replier); ok {
					err = rp.Reply(reply, data)
				} else {
					err = rc.client.Publish(reply, data)
				}
				if err != nil {
					r.fail(fmt.Errorf("reply: %w", err))
				}
			}
		})
		if err != nil {
			return fmt.Errorf("subscribe %s: %w", rc.filter, err)
		}
		fctx, cancel := context.WithTimeout(ctx, cfg.timeout)
		defer cancel()
		err = rc.client.Flush(fctx)
	}
	return err
}

// holdBack is -max-ahead: after p published, it waits while more than
// that many deliveries are due and not yet received, so that the run
// measures what the broker delivers without a backlog growing in it (a
// broker overrun by a hundred publishers drops, queues without bound or
// cuts its subscriber off, each in its own way). A wait that lasts -grace
// ends the holding back for the rest of the run: what a broker lost never
// arrives.
func (r *runner) holdBack(ctx context.Context, p *publisher) {
	if r.cfg.maxAhead == 0 || p.fans == 0 || r.aheadOff.Load() {
		return
	}
	owed := r.owed.Add(p.fans)
	if owed <= r.got.Load()+r.cfg.maxAhead {
		return
	}
	deadline := time.Now().Add(r.cfg.grace)
	for r.owed.Load() > r.got.Load()+r.cfg.maxAhead && ctx.Err() == nil {
		if time.Now().After(deadline) {
			// The broker is losing messages: waiting for them would only
			// stall the run, one -grace per message.
			r.aheadOff.Store(true)
			return
		}
		time.Sleep(50 * time.Microsecond)
	}
}

// received is the receivers' handler: it times and checks one message.
func (r *runner) received(rc *receiver, data []byte, now int64) {
	r.got.Add(1)
	var h header
	ok := false
	if r.tracked {
		h, ok = parseHeader(data)
		if ok && h.warmup {
			return
		}
	}
	rc.mu.Lock()
	if ok && h.pub < maxPublisher {
		for int(h.pub) >= len(rc.checks) { // jsconsume learns its publishers as it goes
			rc.checks = append(rc.checks, seqCheck{})
		}
		rc.checks[h.pub].record(h.seq)
		rc.hist.Record(now - h.sent)
	} else {
		rc.untracked++
	}
	rc.mu.Unlock()
	rc.received.Add(1)
	rc.bytes.Add(uint64(len(data)))
	rc.last.Store(now)
}

// consumed1 is a jsconsume consumer's handler; it reports whether to
// acknowledge the message. Past -count messages are left unacknowledged
// for the next run.
func (r *runner) consumed1(rc *receiver, data []byte) bool {
	// A consumer subscribed early must not take messages before the
	// others are ready, nor count them before the clock starts.
	<-r.begun
	now := time.Now().UnixNano()
	if !r.measuring.Load() {
		return true // warm-up: consumed and acknowledged, not counted
	}
	if r.tracked {
		if h, ok := parseHeader(data); ok && h.warmup {
			return true
		}
	}
	if r.cfg.count > 0 && r.consumed.Add(1) > r.cfg.count {
		return false
	}
	r.received(rc, data, now)
	return true
}

// split divides n messages over k publishers as evenly as possible.
func split(n uint64, k int) []uint64 {
	out := make([]uint64, k)
	for i := range out {
		out[i] = n / uint64(k)
		if uint64(i) < n%uint64(k) {
			out[i]++
		}
	}
	return out
}

// quota is how many messages p sends in this phase, when bounded: its
// share of -count in the measured phase (which may be none, when -count
// is smaller than the publishers), no limit in the warm-up or without
// -count.
func (r *runner) quota(p *publisher, warmup bool) (n uint64, bounded bool) {
	if warmup || r.cfg.count == 0 || r.s.kind == kindStoreCons {
		return 0, false
	}
	return p.quota, true
}

// publishAll runs every publisher until its quota is sent or ctx is done.
// Paced plain publishers beyond schedThreshold share schedWorkers
// goroutines (sched.go): ten thousand simulated devices sending once every
// five seconds need no goroutine and timer each. Unpaced ones beyond
// roundRobinThreshold share one goroutine per core.
func (r *runner) publishAll(ctx context.Context, warmup bool) {
	var wg sync.WaitGroup
	if r.cfg.rate > 0 && r.s.kind == kindCore && len(r.pubs) > schedThreshold {
		for w := range schedWorkers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r.schedule(ctx, w, warmup)
			}()
		}
		wg.Wait()
		return
	}
	if r.cfg.rate == 0 && r.s.kind == kindCore && len(r.pubs) > roundRobinThreshold {
		workers := max(1, min(4, runtime.GOMAXPROCS(0)))
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r.roundRobin(ctx, w, workers, warmup)
			}()
		}
		wg.Wait()
		return
	}
	for _, p := range r.pubs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.publish(ctx, p, warmup)
		}()
	}
	wg.Wait()
}

// pendingAck is a stored publish waiting for its ack.
type pendingAck struct {
	ack    Ack
	sent   int64
	warmup bool
}

func (r *runner) publish(ctx context.Context, p *publisher, warmup bool) {
	cfg := r.cfg
	quota, bounded := r.quota(p, warmup)
	pace := newPacer(cfg.rate, float64(p.idx)/float64(len(r.pubs)))
	buf := newPayload(cfg.size)

	var acks chan pendingAck
	var ackDone chan struct{}
	if r.s.kind == kindStorePub {
		// The channel is the window: the publisher blocks once
		// -max-pending publishes await their ack.
		acks = make(chan pendingAck, cfg.maxPending)
		ackDone = make(chan struct{})
		go r.awaitAcks(p, acks, ackDone)
		defer func() { close(acks); <-ackDone }()
	}

	for seq := uint64(0); !bounded || seq < quota; seq++ {
		if pace.wait(ctx) != nil {
			return
		}
		sent := time.Now().UnixNano()
		if r.tracked {
			putHeader(buf, header{pub: uint32(p.idx), seq: seq, sent: sent, warmup: warmup})
		}
		switch r.s.kind {
		case kindCore:
			if err := p.client.Publish(p.subject, buf); err != nil {
				r.fail(fmt.Errorf("publish %s: %w", p.subject, err))
				return
			}
			r.holdBack(ctx, p)
		case kindRequest:
			rctx, cancel := context.WithTimeout(ctx, cfg.timeout)
			_, err := p.client.Request(rctx, p.subject, buf)
			cancel()
			if err != nil {
				if ctx.Err() != nil {
					// The deadline, not the broker: the request went out
					// and responders will count it.
					if !warmup {
						p.sent.Add(1)
						p.bytes.Add(uint64(len(buf)))
					}
					return
				}
				r.fail(fmt.Errorf("request %s: %w", p.subject, err))
			} else if !warmup {
				now := time.Now().UnixNano()
				p.hist.Record(now - sent)
				p.acked.Add(1)
				p.lastAck.Store(now)
			}
		case kindStorePub:
			// nats.go may send a stored publish again on a retry, so each
			// one gets a buffer of its own.
			b := append([]byte(nil), buf...)
			ack, err := p.client.(StreamClient).PublishStored(p.subject, b)
			if err != nil {
				r.fail(fmt.Errorf("stored publish %s: %w", p.subject, err))
				return
			}
			select {
			case acks <- pendingAck{ack: ack, sent: sent, warmup: warmup}:
			case <-ctx.Done():
				acks <- pendingAck{ack: ack, sent: sent, warmup: warmup} // still counted when acked
				if !warmup {
					p.sent.Add(1)
					p.bytes.Add(uint64(len(buf)))
				}
				return
			}
		}
		if !warmup {
			p.sent.Add(1)
			p.bytes.Add(uint64(len(buf)))
		}
	}
}

// awaitAcks waits for a publisher's stored acks in publishing order.
func (r *runner) awaitAcks(p *publisher, acks <-chan pendingAck, done chan<- struct{}) {
	defer close(done)
	for a := range acks {
		// Each ack is due -timeout after its publish, not after the wait
		// for the one before: a broker gone silent costs one timeout for
		// the whole window, not one per pending message.
		ctx, cancel := context.WithDeadline(context.Background(), time.Unix(0, a.sent).Add(r.cfg.timeout))
		err := a.ack.Wait(ctx)
		cancel()
		if err != nil {
			r.fail(fmt.Errorf("stored publish ack: %w", err))
			continue
		}
		if a.warmup {
			continue
		}
		now := time.Now().UnixNano()
		p.hist.Record(now - a.sent)
		p.acked.Add(1)
		p.lastAck.Store(now)
	}
}

// flushPublishers waits until the broker has taken every publisher's
// messages, so that what receivers miss after it is really lost.
func (r *runner) flushPublishers(ctx context.Context) {
	// All at once: a thousand simulated devices flushed one after the
	// other would add their round trips to the publishing time.
	var wg sync.WaitGroup
	for _, p := range r.pubs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fctx, cancel := context.WithTimeout(ctx, r.cfg.timeout)
			defer cancel()
			if err := p.client.Flush(fctx); err != nil && ctx.Err() == nil {
				r.fail(fmt.Errorf("flush publisher %d: %w", p.idx, err))
			}
		}()
	}
	wg.Wait()
}

// awaitReceivers returns when every receiver has what it should, when no
// message arrived for -grace (the rest is lost), or when ctx is done. A
// jsconsume run ends at -count messages or at the end of the measured
// phase (mctx), whichever comes first, or when the stream runs dry for
// -grace.
func (r *runner) awaitReceivers(ctx, mctx context.Context) {
	if len(r.recvs) == 0 {
		return
	}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	var last uint64
	lastProgress := time.Now()
	for {
		got := r.totalReceived()
		if got != last {
			last, lastProgress = got, time.Now()
		}
		if r.receiversDone() || time.Since(lastProgress) >= r.cfg.grace {
			return
		}
		if r.s.kind == kindStoreCons && mctx.Err() != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (r *runner) receiversDone() bool {
	if r.s.kind == kindStoreCons {
		return r.cfg.count > 0 && r.consumed.Load() >= r.cfg.count
	}
	for _, g := range r.groups {
		var want, got uint64
		for _, i := range g.from {
			want += r.pubs[i].sent.Load()
		}
		for _, m := range g.members {
			got += m.received.Load()
		}
		if got < want {
			return false
		}
	}
	return true
}

func (r *runner) totalReceived() uint64 {
	var n uint64
	for _, rc := range r.recvs {
		n += rc.received.Load()
	}
	return n
}

func (r *runner) totalSent() uint64 {
	var n uint64
	for _, p := range r.pubs {
		n += p.sent.Load()
	}
	return n
}

// totalDone is what the progress line and the plot show as received:
// messages received, or for scenarios without receivers the replies and
// acks that came back.
func (r *runner) totalDone() uint64 {
	if len(r.recvs) > 0 && r.s.kind != kindRequest {
		return r.totalReceived()
	}
	var n uint64
	for _, p := range r.pubs {
		n += p.acked.Load()
	}
	return n
}

func (r *runner) stopReceivers() {
	for _, rc := range r.recvs {
		if rc.sub != nil {
			if err := rc.sub.Unsubscribe(); err != nil && !errors.Is(err, context.Canceled) {
				r.fail(fmt.Errorf("unsubscribe: %w", err))
			}
		}
		if r.s.kind == kindStoreCons {
			// Let the acks of the last messages reach the broker.
			ctx, cancel := context.WithTimeout(context.Background(), r.cfg.timeout)
			rc.client.Flush(ctx)
			cancel()
		}
	}
}

func (r *runner) closeAll() {
	for _, p := range r.pubs {
		p.client.Close()
	}
	for _, rc := range r.recvs {
		rc.client.Close()
	}
}

// sample records the timeline every sampleEvery and, when live is set,
// rewrites the progress line on out twice a second. The returned function
// stops it, adds the last point and clears the line.
func (r *runner) sample(out io.Writer, live bool) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(sampleEvery)
		defer t.Stop()
		for i := 1; ; i++ {
			select {
			case <-done:
				return
			case <-t.C:
			}
			r.samples = append(r.samples, sample{time.Since(r.start), r.totalSent(), r.totalDone()})
			if live && i%2 == 0 {
				fmt.Fprintf(out, "\r\033[K%s", r.progressLine())
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
		r.samples = append(r.samples, sample{r.end.Sub(r.start), r.totalSent(), r.totalDone()})
		if live {
			fmt.Fprint(out, "\r\033[K")
		}
	}
}
