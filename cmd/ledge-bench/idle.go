package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Idle is what the idle scenario measured: connections opened, and how
// many of them were still up after -duration of keeping quiet (with keep
// alive pings where the protocol has them).
type Idle struct {
	Connections int     `json:"connections"` // asked for
	Opened      int     `json:"opened"`
	Connected   int     `json:"connected"` // still up at the end
	OpenSeconds float64 `json:"open_seconds"`
	HeldSeconds float64 `json:"held_seconds"`
}

// idle opens -clients connections, a few dials at a time, holds them for
// -duration and counts the survivors. When all are open it says so on
// standard error ("ledge-bench: idle: N connections open"), so that a
// script can measure the broker while they are held.
func (r *runner) idle(ctx context.Context, out io.Writer) (*Result, error) {
	cfg := r.cfg
	n := cfg.subs
	clients := make([]Client, n)
	var (
		next   atomic.Int64
		opened atomic.Int64
		wg     sync.WaitGroup
	)
	start := time.Now()
	for range min(n, 64) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				dctx, cancel := context.WithTimeout(ctx, cfg.timeout)
				c, err := r.proto.Dial(dctx, cfg.url, DialOptions{
					Name:        fmt.Sprintf("ledge-bench idle %d", i),
					Timeout:     cfg.timeout,
					QoS:         cfg.qos,
					MQTTVersion: cfg.mqttVersion,
					KeepAlive:   cfg.keepAlive,
					Window:      cfg.inflight,
				})
				cancel()
				if err != nil {
					r.fail(fmt.Errorf("connection %d: %w", i, err))
					continue
				}
				clients[i] = c
				opened.Add(1)
			}
		}()
	}
	wg.Wait()
	r.start = time.Now()
	res := &Result{Version: version, Scenario: r.s.name, Proto: r.proto.Name, URL: cfg.url,
		Idle: &Idle{Connections: n, Opened: int(opened.Load()), OpenSeconds: r.start.Sub(start).Seconds()}}
	fmt.Fprintf(os.Stderr, "ledge-bench: idle: %d connections open, holding them %v\n", opened.Load(), cfg.duration)

	hold := time.NewTimer(cfg.duration)
	select {
	case <-hold.C:
	case <-ctx.Done():
		hold.Stop()
	}
	for _, c := range clients {
		if c == nil {
			continue
		}
		if cc, ok := c.(Connected); !ok || cc.Connected() {
			res.Idle.Connected++
		}
	}
	res.Idle.HeldSeconds = time.Since(r.start).Seconds()
	res.Seconds = res.Idle.HeldSeconds
	// Close a few at a time, as they were opened.
	next.Store(0)
	for range min(n, 64) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				if clients[i] != nil {
					clients[i].Close()
				}
			}
		}()
	}
	wg.Wait()
	res.Errors = r.errs.Load()
	r.errMu.Lock()
	if r.firstErr != nil {
		res.FirstError = r.firstErr.Error()
	}
	r.errMu.Unlock()
	if res.Idle.Connected < n {
		res.Notes = append(res.Notes, fmt.Sprintf("%d of %d connections did not stay connected", n-res.Idle.Connected, n))
	}
	return res, ctx.Err()
}
