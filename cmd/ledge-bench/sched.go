package main

import (
	"container/heap"
	"context"
	"fmt"
	"time"
)

const (
	// schedThreshold is the number of paced publishers above which they
	// share goroutines instead of having one each.
	schedThreshold = 64
	// schedWorkers is how many goroutines share them.
	schedWorkers = 4
	// roundRobinThreshold is the number of unpaced publishers above which
	// they share a goroutine per core.
	roundRobinThreshold = 8
)

// due is a publisher and when its next message is due.
type due struct {
	at  time.Time
	p   *publisher
	seq uint64
}

type dueHeap []due

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h dueHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *dueHeap) Push(x any)        { *h = append(*h, x.(due)) }
func (h *dueHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// schedule publishes for the publishers w, w+schedWorkers, ... at -rate
// each, earliest due first, with the pacer's rules: first messages spread
// over one interval, and a publisher that fell more than pacerMaxLag
// behind starts a new schedule from now instead of bursting.
func (r *runner) schedule(ctx context.Context, w int, warmup bool) {
	cfg := r.cfg
	interval := time.Duration(float64(time.Second) / cfg.rate)
	now := time.Now()
	var h dueHeap
	for i := w; i < len(r.pubs); i += schedWorkers {
		phase := time.Duration(float64(interval) * float64(i) / float64(len(r.pubs)))
		h = append(h, due{at: now.Add(phase), p: r.pubs[i]})
	}
	heap.Init(&h)
	buf := newPayload(cfg.size)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for h.Len() > 0 {
		d := &h[0]
		quota, bounded := r.quota(d.p, warmup)
		if bounded && d.seq >= quota {
			heap.Pop(&h)
			continue
		}
		if wait := time.Until(d.at); wait >= pacerSlack {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-ctx.Done():
				return
			}
		} else if ctx.Err() != nil {
			return
		}
		sent := time.Now()
		if r.tracked {
			putHeader(buf, header{pub: uint32(d.p.idx), seq: d.seq, sent: sent.UnixNano(), warmup: warmup})
		}
		if err := d.p.client.Publish(d.p.subject, buf); err != nil {
			r.fail(fmt.Errorf("publish %s: %w", d.p.subject, err))
			heap.Pop(&h)
			continue
		}
		if !warmup {
			d.p.sent.Add(1)
			d.p.bytes.Add(uint64(len(buf)))
		}
		r.holdBack(ctx, d.p)
		d.seq++
		d.at = d.at.Add(interval)
		if late := sent.Sub(d.at); late > pacerMaxLag {
			d.at = sent.Add(interval)
		}
		heap.Fix(&h, 0)
	}
}

// roundRobin publishes as fast as it can for the publishers w,
// w+workers, ..., one message of each in turn. Unpaced publishers share a
// goroutine per core rather than having one each: a hundred goroutines
// publishing flat out would leave the tool's own subscribers, which read
// on a few loops, too little CPU, and the broker would see a slow
// consumer that is really a starved one.
func (r *runner) roundRobin(ctx context.Context, w, workers int, warmup bool) {
	cfg := r.cfg
	var mine []*publisher
	for i := w; i < len(r.pubs); i += workers {
		mine = append(mine, r.pubs[i])
	}
	seqs := make([]uint64, len(mine))
	buf := newPayload(cfg.size)
	for len(mine) > 0 {
		if ctx.Err() != nil {
			return
		}
		for i := 0; i < len(mine); i++ {
			p := mine[i]
			quota, bounded := r.quota(p, warmup)
			failed := false
			if !bounded || seqs[i] < quota {
				if r.tracked {
					putHeader(buf, header{pub: uint32(p.idx), seq: seqs[i], sent: time.Now().UnixNano(), warmup: warmup})
				}
				if err := p.client.Publish(p.subject, buf); err != nil {
					r.fail(fmt.Errorf("publish %s: %w", p.subject, err))
					failed = true
				} else {
					seqs[i]++
					if !warmup {
						p.sent.Add(1)
						p.bytes.Add(uint64(len(buf)))
					}
					r.holdBack(ctx, p)
				}
			}
			if failed || (bounded && seqs[i] >= quota) {
				last := len(mine) - 1
				mine[i], seqs[i] = mine[last], seqs[last]
				mine, seqs = mine[:last], seqs[:last]
				i--
			}
		}
	}
}
