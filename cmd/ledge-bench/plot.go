package main

import (
	"bufio"
	"fmt"
	"html"
	"io"
	"math"
	"strings"
)

// The plot is an SVG written by hand: two panels, the latency by
// percentile in the HdrHistogram style (the x axis stretches the tail:
// 90%, 99%, 99.9% are equally far apart) and the rates of sending and
// receiving over time. It needs no library and opens in any browser.

const (
	plotW      = 900
	plotH      = 720
	plotLeft   = 90
	plotRight  = 30
	panelH     = 250
	panel1Top  = 70
	panel2Top  = 420
	colorSent  = "#1f77b4"
	colorRecv  = "#ff7f0e"
	colorLat   = "#2ca02c"
	colorGrid  = "#dddddd"
	colorLabel = "#333333"
)

// panel maps data to the pixels of one chart.
type panel struct {
	x0, y0, w, h float64 // the plotting area
	xmax, ymax   float64 // data at the right and top edges; both start at 0
}

func (p panel) px(x float64) float64 { return p.x0 + x/p.xmax*p.w }
func (p panel) py(y float64) float64 { return p.y0 + p.h - y/p.ymax*p.h }

// writePlot draws res as an SVG document to w.
func writePlot(w io.Writer, res *Result) error {
	b := bufio.NewWriter(w)
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", plotW, plotH, plotW, plotH)
	fmt.Fprintf(b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	title := fmt.Sprintf("ledge-bench %s, %s: %s, %s, %d-byte messages", res.Scenario, res.URL,
		plural(res.Publishers, "publisher", "publishers"), plural(res.Receivers, "receiver", "receivers"), res.Size)
	text(b, plotW/2, 28, "middle", 16, title)

	latencyPanel(b, res)
	ratePanel(b, res)
	fmt.Fprintln(b, "</svg>")
	return b.Flush()
}

func latencyPanel(b *bufio.Writer, res *Result) {
	h := res.hist
	what := "latency"
	if res.Latency != nil {
		what = "latency: " + res.Latency.What
	}
	text(b, plotLeft, panel1Top-12, "start", 14, what+" (by percentile)")
	if h == nil || h.Count() == 0 {
		text(b, plotW/2, panel1Top+panelH/2, "middle", 14, "no latency was measured in this run")
		return
	}
	// x is log10(1/(1-q)): 0 at p0, 1 at p90, 2 at p99 ... up to the
	// percentile that still has a sample behind it.
	nines := math.Min(5, math.Max(2, math.Ceil(math.Log10(float64(h.Count())))))
	maxMs := float64(h.Max()) / 1e6
	ymax, ystep := niceScale(maxMs)
	p := panel{x0: plotLeft, y0: panel1Top, w: plotW - plotLeft - plotRight, h: panelH, xmax: nines, ymax: ymax}
	for y := 0.0; y <= ymax+ystep/2; y += ystep {
		line(b, p.x0, p.py(y), p.x0+p.w, p.py(y), colorGrid)
		text(b, p.x0-8, p.py(y)+4, "end", 12, trimFloat(y)+" ms")
	}
	for i := 0.0; i <= nines; i++ {
		line(b, p.px(i), p.y0, p.px(i), p.y0+p.h, colorGrid)
		text(b, p.px(i), p.y0+p.h+18, "middle", 12, percentLabel(i))
	}
	var pts []string
	const steps = 400
	for i := 0; i <= steps; i++ {
		x := nines * float64(i) / steps
		q := 100 * (1 - math.Pow(10, -x))
		v := float64(h.Percentile(q)) / 1e6
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", p.px(x), p.py(v)))
	}
	fmt.Fprintf(b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", colorLat, strings.Join(pts, " "))
	if l := res.Latency; l != nil {
		summary := fmt.Sprintf("p50 %s   p90 %s   p99 %s   p99.9 %s   max %s   (%s samples)",
			fmtNanos(l.P50), fmtNanos(l.P90), fmtNanos(l.P99), fmtNanos(l.P999), fmtNanos(l.Max), group3(l.Count))
		text(b, p.x0+p.w, panel1Top-12, "end", 12, summary)
	}
	text(b, p.x0+p.w/2, p.y0+p.h+38, "middle", 12, "percentile")
}

func ratePanel(b *bufio.Writer, res *Result) {
	text(b, plotLeft, panel2Top-12, "start", 14, "rate over time (messages per second)")
	tl := res.timeline
	if len(tl) < 2 {
		text(b, plotW/2, panel2Top+panelH/2, "middle", 14, "the run was too short for a timeline")
		return
	}
	type point struct{ t, sent, recv float64 }
	var pts []point
	var peak float64
	for i := 1; i < len(tl); i++ {
		dt := (tl[i].at - tl[i-1].at).Seconds()
		// The last interval, cut short by the end of the run, holds too
		// few messages for a rate: it would draw a cliff that is not there.
		if dt <= 0 || dt < sampleEvery.Seconds()/2 {
			continue
		}
		pt := point{t: tl[i].at.Seconds(), sent: float64(tl[i].sent-tl[i-1].sent) / dt, recv: float64(tl[i].received-tl[i-1].received) / dt}
		pts = append(pts, pt)
		peak = math.Max(peak, math.Max(pt.sent, pt.recv))
	}
	xmax, xstep := niceScale(tl[len(tl)-1].at.Seconds())
	ymax, ystep := niceScale(peak)
	p := panel{x0: plotLeft, y0: panel2Top, w: plotW - plotLeft - plotRight, h: panelH, xmax: xmax, ymax: ymax}
	for y := 0.0; y <= ymax+ystep/2; y += ystep {
		line(b, p.x0, p.py(y), p.x0+p.w, p.py(y), colorGrid)
		text(b, p.x0-8, p.py(y)+4, "end", 12, group3(uint64(y)))
	}
	for x := 0.0; x <= xmax+xstep/2; x += xstep {
		line(b, p.px(x), p.y0, p.px(x), p.y0+p.h, colorGrid)
		text(b, p.px(x), p.y0+p.h+18, "middle", 12, trimFloat(x)+" s")
	}
	series := func(color string, get func(point) float64) {
		var s []string
		for _, pt := range pts {
			s = append(s, fmt.Sprintf("%.1f,%.1f", p.px(pt.t), p.py(get(pt))))
		}
		fmt.Fprintf(b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", color, strings.Join(s, " "))
	}
	sentName, recvName := "sent", "received"
	if res.Acked != nil && res.Receivers == 0 || res.Scenario == "reqrep" {
		recvName = "acked"
		if res.Scenario == "reqrep" {
			recvName = "replies"
		}
	}
	series(colorSent, func(pt point) float64 { return pt.sent })
	series(colorRecv, func(pt point) float64 { return pt.recv })
	lx := p.x0 + p.w - 160
	fmt.Fprintf(b, `<rect x="%.0f" y="%.0f" width="14" height="4" fill="%s"/>`+"\n", lx, p.y0+10, colorSent)
	text(b, lx+20, p.y0+16, "start", 12, sentName)
	fmt.Fprintf(b, `<rect x="%.0f" y="%.0f" width="14" height="4" fill="%s"/>`+"\n", lx+80, p.y0+10, colorRecv)
	text(b, lx+100, p.y0+16, "start", 12, recvName)
}

// niceScale returns an axis end at or above max and a step of 1, 2 or 5
// times a power of ten that divides it into about five parts.
func niceScale(max float64) (end, step float64) {
	if max <= 0 || math.IsNaN(max) || math.IsInf(max, 0) {
		return 1, 0.2
	}
	raw := max / 5
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	switch r := raw / mag; {
	case r <= 1:
		step = mag
	case r <= 2:
		step = 2 * mag
	case r <= 5:
		step = 5 * mag
	default:
		step = 10 * mag
	}
	return math.Ceil(max/step) * step, step
}

func percentLabel(nines float64) string {
	switch nines {
	case 0:
		return "0%"
	case 1:
		return "90%"
	}
	if nines == 2 {
		return "99%"
	}
	return "99." + strings.Repeat("9", int(nines)-2) + "%"
}

func trimFloat(v float64) string {
	s := fmt.Sprintf("%.3f", v)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}

func text(b *bufio.Writer, x, y float64, anchor string, size int, s string) {
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="%s" font-size="%d" fill="%s">%s</text>`+"\n", x, y, anchor, size, colorLabel, html.EscapeString(s))
}

func line(b *bufio.Writer, x1, y1, x2, y2 float64, color string) {
	fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s"/>`+"\n", x1, y1, x2, y2, color)
}
