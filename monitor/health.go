package monitor

import (
	"fmt"
	"net/http"
	"sort"
	"time"
)

// Health states, best first.
const (
	statusOK          = "ok"
	statusDegraded    = "degraded"
	statusUnavailable = "unavailable"
	statusStarting    = "starting"
)

// Check results.
const (
	checkOK   = "ok"
	checkWarn = "warn"
	checkFail = "fail"
)

// Check is one thing the health answer looked at.
type Check struct {
	Name    string `json:"name"`
	Status  string `json:"status"`
	Message string `json:"message,omitempty"`
}

// Health is the body of /healthz and /readyz.
type Health struct {
	// Status is ok, degraded (serving, with problems named in Checks),
	// unavailable or starting.
	Status string    `json:"status"`
	Ready  bool      `json:"ready"`
	Checks []Check   `json:"checks,omitempty"`
	Now    time.Time `json:"now"`
	// Error repeats the first failing check, in the field nats-server's
	// /healthz uses.
	Error string `json:"error,omitempty"`
}

// health looks at everything that makes the broker unfit to serve or
// worth an operator's attention. live says the process can go on as it
// is: false only when a stream's log is broken, which only a restart (and
// recovery) repairs. ready adds that the broker has started and the disk
// has room for what it must store.
func (s *Server) health(now time.Time) (h Health, live bool) {
	h.Now = now.UTC()
	src := s.src.Load()
	if src == nil {
		h.Status = statusStarting
		h.Checks = []Check{{Name: "startup", Status: checkFail, Message: "the broker is recovering its streams"}}
		h.Error = h.Checks[0].Message
		return h, true
	}
	live = true
	add := func(name, status, format string, args ...any) {
		h.Checks = append(h.Checks, Check{Name: name, Status: status, Message: fmt.Sprintf(format, args...)})
	}

	// Durable publishing: every file stream's log must be working.
	broken := 0
	if b := src.Broker; b != nil {
		for _, st := range b.Streams() {
			if err := st.Storage().Err; err != nil {
				broken++
				add("stream "+st.Name(), checkFail, "durable publishing to stream %s fails: %v", st.Name(), err)
			}
		}
		if broken == 0 {
			add("streams", checkOK, "")
		} else {
			live = false
		}
	}

	// The data disk.
	if s.opts.DataDir != "" {
		total, free, err := diskStats(s.opts.DataDir)
		switch {
		case err != nil:
			add("disk", checkWarn, "free space of %s unknown: %v", s.opts.DataDir, err)
		case free < s.opts.DiskMinFree:
			add("disk", checkFail, "disk nearly full: %s free of %s on %s; durable publishing is about to fail",
				bytesText(free), bytesText(total), s.opts.DataDir)
		case total > 0 && float64(total-free)/float64(total) > s.opts.DiskWarnUsed:
			add("disk", checkWarn, "disk nearly full: %.0f%% used, %s free on %s", 100*float64(total-free)/float64(total),
				bytesText(free), s.opts.DataDir)
		default:
			add("disk", checkOK, "")
		}
	}

	// Uplinks.
	if src.Uplinks != nil {
		for _, u := range src.Uplinks() {
			switch {
			case u.State == "down" || u.State == "stalled":
				msg := fmt.Sprintf("uplink %s is %s with %d messages waiting", u.Name, u.State, u.BacklogMsgs)
				if u.LastError != "" {
					msg += ": " + u.LastError
				}
				add("uplink "+u.Name, checkWarn, "%s", msg)
			case u.State == "connecting" && u.LastError != "":
				add("uplink "+u.Name, checkWarn, "uplink %s is not connected: %s", u.Name, u.LastError)
			default:
				add("uplink "+u.Name, checkOK, "")
			}
		}
	}

	// Certificates.
	for _, c := range s.opts.Certificates {
		left := c.NotAfter.Sub(now)
		switch {
		case left <= 0:
			add("certificate "+c.Name, checkWarn, "certificate %s expired on %s", c.Name, c.NotAfter.UTC().Format(time.DateOnly))
		case left < s.opts.CertWarning:
			add("certificate "+c.Name, checkWarn, "certificate %s expires in %d days (%s)", c.Name, int(left.Hours()/24)+1,
				c.NotAfter.UTC().Format(time.DateOnly))
		default:
			add("certificate "+c.Name, checkOK, "")
		}
	}

	sort.SliceStable(h.Checks, func(i, j int) bool { return rank(h.Checks[i].Status) > rank(h.Checks[j].Status) })
	h.Status, h.Ready = statusOK, true
	for _, c := range h.Checks {
		switch c.Status {
		case checkFail:
			h.Status, h.Ready = statusUnavailable, false
		case checkWarn:
			if h.Status == statusOK {
				h.Status = statusDegraded
			}
		}
		if c.Status != checkOK && h.Error == "" {
			h.Error = c.Message
		}
	}
	return h, live
}

func rank(status string) int {
	switch status {
	case checkFail:
		return 2
	case checkWarn:
		return 1
	}
	return 0
}

// handleHealthz is liveness: 200 while the process serves, 503 only when a
// stream's log is broken (a restart recovers it). The body names every
// problem, degraded states included.
func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) error {
	q := parseQuery(r.URL.RawQuery)
	ready := q.boolean("ready")
	// nats-server's options (js-enabled-only and the like) are accepted
	// and change nothing: ledge has one JetStream, always on.
	if err := q.done(); err != nil {
		return err
	}
	if ready {
		return s.handleReadyz(w, r)
	}
	h, live := s.health(time.Now())
	status := http.StatusOK
	if !live {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, h)
	return nil
}

// handleReadyz is readiness: 200 once the broker has started and can store
// what it is sent, 503 otherwise.
func (s *Server) handleReadyz(w http.ResponseWriter, _ *http.Request) error {
	h, _ := s.health(time.Now())
	status := http.StatusOK
	if !h.Ready {
		status = http.StatusServiceUnavailable
		if h.Status == statusOK || h.Status == statusDegraded {
			h.Status = statusUnavailable
		}
	}
	writeJSON(w, status, h)
	return nil
}

// bytesText writes a byte count for people.
func bytesText(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
