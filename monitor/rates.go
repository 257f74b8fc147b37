package monitor

import (
	"sync"
	"time"
)

// rates turns counters into per-second rates between two readings through
// the API, at least minInterval apart: the console polls every second or
// two, so its rates are fresh, and nothing is sampled while nobody asks.
// A key not read for forgetAfter is forgotten, so connections that come
// and go leave nothing behind.
type rates struct {
	mu      sync.Mutex
	samples map[string]*sample
	swept   time.Time
}

type sample struct {
	at    time.Time // of value
	value float64
	rate  float64
	seen  time.Time
}

const (
	minInterval = 900 * time.Millisecond
	forgetAfter = 5 * time.Minute
)

func newRates() *rates { return &rates{samples: map[string]*sample{}} }

// observe records value for key at now and returns its rate per second:
// since the previous reading when that was at least minInterval ago, else
// the rate computed then; 0 the first time. A counter that went back
// (a stream purged and refilled, a connection id reused) restarts.
func (r *rates) observe(key string, now time.Time, value float64) float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now.Sub(r.swept) > forgetAfter {
		for k, s := range r.samples {
			if now.Sub(s.seen) > forgetAfter {
				delete(r.samples, k)
			}
		}
		r.swept = now
	}
	s := r.samples[key]
	if s == nil {
		r.samples[key] = &sample{at: now, value: value, seen: now}
		return 0
	}
	s.seen = now
	if dt := now.Sub(s.at); dt >= minInterval {
		if value >= s.value {
			s.rate = (value - s.value) / dt.Seconds()
		} else {
			s.rate = 0
		}
		s.at, s.value = now, value
	}
	return s.rate
}
