package main

import (
	"context"
	"time"
)

// pacer spaces a publisher's messages evenly at a target rate. Message i
// is due at start + i/rate; a publisher ahead of its schedule sleeps, one
// that fell behind (the broker pushed back, the machine was busy) drops
// the backlog instead of bursting to catch up, so the load offered is
// never more than the rate asked for. Sleeps shorter than pacerSlack are
// skipped: timers are not that precise, so at high rates messages leave
// in runs of at most pacerSlack's worth.
type pacer struct {
	interval time.Duration // 0: no pacing
	start    time.Time
	n        int64 // messages sent since start
	timer    *time.Timer
}

const (
	pacerSlack  = 200 * time.Microsecond
	pacerMaxLag = 10 * time.Millisecond
)

// newPacer returns a pacer for rate messages a second whose first message
// is due phase (0 to 1) of an interval from now. Publishers get phases
// spread over the interval, so that a thousand devices sending every five
// seconds offer an even load rather than a thousand messages at once.
func newPacer(rate, phase float64) *pacer {
	p := &pacer{}
	if rate > 0 {
		p.interval = time.Duration(float64(time.Second) / rate)
		p.start = time.Now().Add(time.Duration(phase * float64(p.interval)))
	}
	return p
}

// wait blocks until the next message is due or ctx is done.
func (p *pacer) wait(ctx context.Context) error {
	if p.interval == 0 {
		return ctx.Err()
	}
	due := p.start.Add(time.Duration(p.n) * p.interval)
	p.n++
	ahead := time.Until(due)
	if ahead < -pacerMaxLag {
		// Behind schedule: start a new schedule from now.
		p.start = time.Now()
		p.n = 1
		return ctx.Err()
	}
	if ahead < pacerSlack {
		return ctx.Err()
	}
	if p.timer == nil {
		p.timer = time.NewTimer(ahead)
	} else {
		p.timer.Reset(ahead)
	}
	select {
	case <-p.timer.C:
		return nil
	case <-ctx.Done():
		p.timer.Stop()
		return ctx.Err()
	}
}
