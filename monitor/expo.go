package monitor

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/ledgemq/ledge/log"
)

// The Prometheus text exposition format (version 0.0.4), written by hand:
// the client library would add more to the binary than the whole monitor,
// and the format is a few lines of rules. The tests read the output back
// with Prometheus's own parser.

// expoContentType is what /metrics answers with.
const expoContentType = "text/plain; version=0.0.4; charset=utf-8"

// expo appends metric families to a buffer.
type expo struct {
	b []byte
}

// family starts a metric family: its HELP and TYPE lines. Every sample of
// the family must follow before the next family starts.
func (e *expo) family(name, typ, help string) {
	e.b = append(e.b, "# HELP "...)
	e.b = append(e.b, name...)
	e.b = append(e.b, ' ')
	e.b = appendHelp(e.b, help)
	e.b = append(e.b, "\n# TYPE "...)
	e.b = append(e.b, name...)
	e.b = append(e.b, ' ')
	e.b = append(e.b, typ...)
	e.b = append(e.b, '\n')
}

// sample writes one sample; labels are name, value pairs.
func (e *expo) sample(name string, v float64, labels ...string) {
	e.b = append(e.b, name...)
	if len(labels) > 0 {
		e.b = append(e.b, '{')
		for i := 0; i+1 < len(labels); i += 2 {
			if i > 0 {
				e.b = append(e.b, ',')
			}
			e.b = append(e.b, labels[i]...)
			e.b = append(e.b, `="`...)
			e.b = appendLabelValue(e.b, labels[i+1])
			e.b = append(e.b, '"')
		}
		e.b = append(e.b, '}')
	}
	e.b = append(e.b, ' ')
	e.b = appendValue(e.b, v)
	e.b = append(e.b, '\n')
}

// one writes a family of a single unlabelled sample.
func (e *expo) one(name, typ, help string, v float64) {
	e.family(name, typ, help)
	e.sample(name, v)
}

// histogram writes a histogram family from a log.Histogram, in seconds.
func (e *expo) histogram(name, help string, h log.HistogramSnapshot) {
	e.family(name, "histogram", help)
	for i, le := range log.LatencyBounds {
		e.sample(name+"_bucket", float64(h.Buckets[i]), "le", strconv.FormatFloat(le.Seconds(), 'g', -1, 64))
	}
	e.sample(name+"_bucket", float64(h.Count), "le", "+Inf")
	e.sample(name+"_sum", h.Sum.Seconds())
	e.sample(name+"_count", float64(h.Count))
}

func appendValue(b []byte, v float64) []byte {
	switch {
	case math.IsNaN(v):
		return append(b, "NaN"...)
	case math.IsInf(v, 1):
		return append(b, "+Inf"...)
	case math.IsInf(v, -1):
		return append(b, "-Inf"...)
	case v == math.Trunc(v) && math.Abs(v) < 1e15:
		return strconv.AppendInt(b, int64(v), 10)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

// appendLabelValue escapes a label value: backslash, double quote and
// line feed, as the format says. Names come from clients and may hold
// anything; bytes that are not UTF-8 are replaced, since the format is
// UTF-8.
func appendLabelValue(b []byte, s string) []byte {
	s = strings.ToValidUTF8(s, "\uFFFD")
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			b = append(b, `\\`...)
		case '"':
			b = append(b, `\"`...)
		case '\n':
			b = append(b, `\n`...)
		default:
			b = append(b, c)
		}
	}
	return b
}

// appendHelp escapes a HELP text: backslash and line feed.
func appendHelp(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			b = append(b, `\\`...)
		case '\n':
			b = append(b, `\n`...)
		default:
			b = append(b, c)
		}
	}
	return b
}

func unixSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }
