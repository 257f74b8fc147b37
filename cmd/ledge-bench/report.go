package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// Result is what a run measured; with -json it is printed as one JSON
// object, so its field names are a public interface.
type Result struct {
	Version    string      `json:"version"`
	Scenario   string      `json:"scenario"`
	Proto      string      `json:"proto"`
	URL        string      `json:"url"`
	Publishers int         `json:"publishers"`
	Receivers  int         `json:"receivers"`
	Size       int         `json:"size"`
	TargetRate float64     `json:"target_rate_per_publisher,omitempty"`
	Seconds    float64     `json:"seconds"`
	Publish    *Throughput `json:"publish,omitempty"`
	Acked      *Throughput `json:"acked,omitempty"` // replies of reqrep, stored acks of jspub
	Receive    *Throughput `json:"receive,omitempty"`
	Latency    *Latency    `json:"latency,omitempty"`
	Delivery   *Delivery   `json:"delivery,omitempty"`
	Idle       *Idle       `json:"idle,omitempty"`
	Errors     uint64      `json:"errors"`
	FirstError string      `json:"first_error,omitempty"`
	Notes      []string    `json:"notes,omitempty"`

	hist     *Histogram
	timeline []sample
}

// Throughput is one side's count and rate; MB are 10^6 bytes of payload.
type Throughput struct {
	Msgs       uint64  `json:"msgs"`
	Bytes      uint64  `json:"bytes"`
	Seconds    float64 `json:"seconds"`
	MsgsPerSec float64 `json:"msgs_per_sec"`
	MBPerSec   float64 `json:"mb_per_sec"`
}

// Latency summarises the histogram, in nanoseconds.
type Latency struct {
	What  string  `json:"what"`
	Count uint64  `json:"count"`
	Min   int64   `json:"min_ns"`
	Mean  float64 `json:"mean_ns"`
	P50   int64   `json:"p50_ns"`
	P90   int64   `json:"p90_ns"`
	P99   int64   `json:"p99_ns"`
	P999  int64   `json:"p99_9_ns"`
	Max   int64   `json:"max_ns"`
}

// Delivery is the sequence check of every receiver (a queue group counts
// as one) against what the publishers it hears sent.
type Delivery struct {
	Expected   uint64 `json:"expected"`
	Received   uint64 `json:"received"`
	Lost       uint64 `json:"lost"`
	Duplicates uint64 `json:"duplicates"`
	OutOfOrder uint64 `json:"out_of_order"`
	Untracked  uint64 `json:"untracked,omitempty"` // messages without a header of this run
}

func throughput(msgs, bytes uint64, d time.Duration) *Throughput {
	t := &Throughput{Msgs: msgs, Bytes: bytes, Seconds: d.Seconds()}
	if d > 0 {
		t.MsgsPerSec = float64(msgs) / d.Seconds()
		t.MBPerSec = float64(bytes) / 1e6 / d.Seconds()
	}
	return t
}

// result gathers the counters after the run; every client has stopped.
func (r *runner) result() *Result {
	cfg, s := r.cfg, r.s
	res := &Result{
		Version: version, Scenario: s.name, Proto: r.proto.Name, URL: cfg.url,
		Publishers: len(r.pubs), Receivers: len(r.recvs), Size: cfg.size,
		TargetRate: cfg.rate, Seconds: r.end.Sub(r.start).Seconds(),
		Errors: r.errs.Load(), timeline: r.samples, hist: NewHistogram(),
	}
	r.errMu.Lock()
	if r.firstErr != nil {
		res.FirstError = r.firstErr.Error()
	}
	r.errMu.Unlock()

	since := func(unixNano int64) time.Duration {
		if unixNano == 0 {
			return 0
		}
		return time.Unix(0, unixNano).Sub(r.start)
	}
	if len(r.pubs) > 0 {
		var msgs, bytes, acked uint64
		var lastAck int64
		for _, p := range r.pubs {
			msgs += p.sent.Load()
			bytes += p.bytes.Load()
			acked += p.acked.Load()
			lastAck = max(lastAck, p.lastAck.Load())
			res.hist.Merge(p.hist)
		}
		res.Publish = throughput(msgs, bytes, r.pubEnd.Sub(r.start))
		if s.kind == kindRequest || s.kind == kindStorePub {
			res.Acked = throughput(acked, acked*uint64(cfg.size), since(lastAck))
		}
	}
	if len(r.recvs) > 0 {
		var msgs, bytes uint64
		var last int64
		for _, rc := range r.recvs {
			msgs += rc.received.Load()
			bytes += rc.bytes.Load()
			last = max(last, rc.last.Load())
		}
		res.Receive = throughput(msgs, bytes, since(last))
	}
	if s.kind == kindCore || s.kind == kindStoreCons {
		for _, rc := range r.recvs {
			rc.mu.Lock()
			res.hist.Merge(rc.hist)
			rc.mu.Unlock()
		}
	}
	if s.latency != "" && res.hist.Count() > 0 {
		h := res.hist
		res.Latency = &Latency{What: s.latency, Count: h.Count(), Min: h.Min(), Mean: h.Mean(),
			P50: h.Percentile(50), P90: h.Percentile(90), P99: h.Percentile(99),
			P999: h.Percentile(99.9), Max: h.Max()}
	}
	if len(r.recvs) > 0 && r.tracked {
		res.Delivery = r.delivery()
	}

	if !r.tracked {
		res.Notes = append(res.Notes, fmt.Sprintf("messages of %d bytes are too small for the %d-byte header: no sequence check and no one-way latency", cfg.size, headerSize))
	}
	if s.kind == kindStoreCons && cfg.count > 0 && min(r.consumed.Load(), cfg.count) < cfg.count {
		res.Notes = append(res.Notes, fmt.Sprintf("the stream ran dry: %s of %s messages consumed before %v passed without one (-grace)",
			group3(r.consumed.Load()), group3(cfg.count), cfg.grace))
	}
	if s.kind == kindStoreCons {
		res.Notes = append(res.Notes, "jsconsume counts as lost the gaps below each publisher's highest sequence seen; messages never stored are not known to it")
	}
	if r.aheadOff.Load() {
		res.Notes = append(res.Notes, fmt.Sprintf("-max-ahead was given up after %v without deliveries (-grace); publishers ran unthrottled from then on", cfg.grace))
	}
	if res.Delivery != nil && res.Delivery.Lost > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("receivers gave up on missing messages after %v without any arriving (-grace)", cfg.grace))
	}
	return res
}

func (r *runner) delivery() *Delivery {
	d := &Delivery{}
	for _, g := range r.groups {
		var pubs []int
		if r.s.kind == kindStoreCons {
			n := 0
			for _, m := range g.members {
				n = max(n, len(m.checks))
			}
			for i := 0; i < n; i++ {
				pubs = append(pubs, i)
			}
		} else {
			pubs = g.from
		}
		for _, pi := range pubs {
			var merged seqCheck
			for _, m := range g.members {
				m.mu.Lock()
				if pi < len(m.checks) {
					merged.merge(&m.checks[pi])
				}
				m.mu.Unlock()
			}
			var sent uint64
			if r.s.kind == kindStoreCons {
				if merged.received > 0 {
					sent = merged.highest + 1
				}
			} else {
				sent = r.pubs[pi].sent.Load()
			}
			d.Expected += sent
			d.Received += merged.received
			d.Lost += merged.lost(sent)
			d.Duplicates += merged.dups
			d.OutOfOrder += merged.outOfOrder
		}
		for _, m := range g.members {
			m.mu.Lock()
			d.Untracked += m.untracked
			m.mu.Unlock()
		}
	}
	return d
}

// writeOutputs writes the plot if asked, then the JSON object or the
// human summary to out.
func writeOutputs(cfg *config, res *Result, out io.Writer) error {
	if cfg.plot != "" {
		f, err := os.Create(cfg.plot)
		if err != nil {
			return fmt.Errorf("plot: %w", err)
		}
		err = writePlot(f, res)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("plot %s: %w", cfg.plot, err)
		}
	}
	switch {
	case cfg.json:
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	case !cfg.quiet:
		writeSummary(out, res)
	}
	return nil
}

// writeSummary prints the result for a person.
func writeSummary(w io.Writer, res *Result) {
	if res.Idle != nil {
		fmt.Fprintf(w, "ledge-bench %s, %s to %s\n", res.Scenario, res.Proto, res.URL)
	} else {
		writeHeading(w, res)
	}
	row := func(name string, t *Throughput) {
		if t != nil {
			fmt.Fprintf(w, "  %-9s %12s msgs in %6.2fs  %12s msgs/s  %9.2f MB/s\n",
				name, group3(t.Msgs), t.Seconds, group3(uint64(t.MsgsPerSec+0.5)), t.MBPerSec)
		}
	}
	row("published", res.Publish)
	if res.Acked != nil {
		name := "acked"
		if res.Scenario == "reqrep" {
			name = "replies"
		}
		row(name, res.Acked)
	}
	row("received", res.Receive)
	if i := res.Idle; i != nil {
		fmt.Fprintf(w, "  idle      %s of %s connections opened in %.2fs, %s still connected after %.2fs\n",
			group3(uint64(i.Opened)), group3(uint64(i.Connections)), i.OpenSeconds, group3(uint64(i.Connected)), i.HeldSeconds)
	}
	if l := res.Latency; l != nil {
		fmt.Fprintf(w, "  latency   %s, %s samples:\n", l.What, group3(l.Count))
		fmt.Fprintf(w, "            min %s  p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  mean %s\n",
			fmtNanos(l.Min), fmtNanos(l.P50), fmtNanos(l.P90), fmtNanos(l.P99), fmtNanos(l.P999), fmtNanos(l.Max), fmtNanos(int64(l.Mean)))
	}
	if d := res.Delivery; d != nil {
		fmt.Fprintf(w, "  delivery  %s expected, %s received: lost %s, duplicated %s, out of order %s",
			group3(d.Expected), group3(d.Received), group3(d.Lost), group3(d.Duplicates), group3(d.OutOfOrder))
		if d.Untracked > 0 {
			fmt.Fprintf(w, ", %s not from this run", group3(d.Untracked))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "  errors    %s", group3(res.Errors))
	if res.FirstError != "" {
		fmt.Fprintf(w, " (first: %s)", res.FirstError)
	}
	fmt.Fprintln(w)
	for _, n := range res.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
}

// writeHeading says what ran: the scenario, the clients, the messages.
func writeHeading(w io.Writer, res *Result) {
	fmt.Fprintf(w, "ledge-bench %s, %s to %s: %s, %s, %d-byte messages",
		res.Scenario, res.Proto, res.URL,
		plural(res.Publishers, "publisher", "publishers"), plural(res.Receivers, "receiver", "receivers"), res.Size)
	if res.TargetRate > 0 {
		if res.TargetRate < 1000 {
			fmt.Fprintf(w, ", %g msgs/s each", res.TargetRate)
		} else {
			fmt.Fprintf(w, ", %s msgs/s each", group3(uint64(res.TargetRate)))
		}
	}
	fmt.Fprintf(w, "\n")
}

// plural writes n and the noun in the number it takes.
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

// progressLine is the live line: time, counts and the rates of the last
// sample interval.
func (r *runner) progressLine() string {
	n := len(r.samples)
	last := r.samples[n-1]
	var prev sample
	if n >= 3 {
		prev = r.samples[n-3]
	}
	dt := (last.at - prev.at).Seconds()
	rate := func(a, b uint64) string {
		if dt <= 0 || a < b {
			return "0"
		}
		return group3(uint64(float64(a-b) / dt))
	}
	return fmt.Sprintf("%6.1fs  sent %s (%s/s)  received %s (%s/s)  errors %s",
		last.at.Seconds(), group3(last.sent), rate(last.sent, prev.sent),
		group3(last.received), rate(last.received, prev.received), group3(r.errs.Load()))
}

// group3 writes n with thousands separated by commas.
func group3(n uint64) string {
	s := strconv.FormatUint(n, 10)
	if len(s) <= 3 {
		return s
	}
	var b strings.Builder
	pre := len(s) % 3
	if pre > 0 {
		b.WriteString(s[:pre])
	}
	for i := pre; i < len(s); i += 3 {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(s[i : i+3])
	}
	return b.String()
}

// fmtNanos writes a duration with three significant digits: 812µs,
// 1.23ms, 2.50s.
func fmtNanos(ns int64) string {
	d := float64(ns)
	switch {
	case ns < 1e3:
		return fmt.Sprintf("%dns", ns)
	case ns < 1e6:
		return sig3(d/1e3) + "µs"
	case ns < 1e9:
		return sig3(d/1e6) + "ms"
	default:
		return sig3(d/1e9) + "s"
	}
}

func sig3(v float64) string {
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}
