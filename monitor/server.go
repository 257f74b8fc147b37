package monitor

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"sync/atomic"
	"time"
)

// Options configure a Server. The zero value serves with the defaults.
type Options struct {
	// Version is ledge's release; ServerName the gateway's name.
	Version, ServerName string
	// DataDir is the broker's data folder, whose disk is watched.
	DataDir string
	// Access says which role a request has; nil allows everything (no
	// users configured).
	Access Authorizer
	// Certificates are watched for expiry.
	Certificates []Certificate
	// CertWarning is how long before expiry a certificate is named in
	// the health checks (14 days when zero).
	CertWarning time.Duration
	// DiskWarnUsed is the fraction of the data disk in use beyond which
	// health is degraded (0.9 when zero); DiskMinFree the free bytes
	// below which the broker is not ready, since durable publishing is
	// about to fail (64 MiB when zero).
	DiskWarnUsed float64
	DiskMinFree  uint64
	// MetricsTop bounds the per-stream and per-queue series of /metrics
	// to the busiest (20 when zero); MetricsAllQueues lifts the bound.
	// MetricsConnections adds per-connection series for the MetricsTop
	// busiest connections.
	MetricsTop         int
	MetricsAllQueues   bool
	MetricsConnections bool
	// HTTPHost and HTTPPort are where the monitor listens, for /varz.
	HTTPHost string
	HTTPPort int
	Logger   *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.CertWarning <= 0 {
		o.CertWarning = 14 * 24 * time.Hour
	}
	if o.DiskWarnUsed <= 0 || o.DiskWarnUsed > 1 {
		o.DiskWarnUsed = 0.9
	}
	if o.DiskMinFree == 0 {
		o.DiskMinFree = 64 << 20
	}
	if o.MetricsTop <= 0 {
		o.MetricsTop = 20
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.ServerName == "" {
		o.ServerName = "ledge"
	}
	return o
}

// Server serves the monitoring port. It owns no state of the broker: every
// answer is read from the Sources when it is asked for, so that nothing is
// collected while nobody looks. Its only memory is the last reading of
// each counter it turns into a rate.
type Server struct {
	opts  Options
	start time.Time
	src   atomic.Pointer[Sources]
	rates *rates
	mux   *http.ServeMux
	h     http.Handler
}

// New returns a monitor that answers liveness at once and everything else
// once Attach gives it the running broker.
func New(opts Options) *Server {
	s := &Server{opts: opts.withDefaults(), start: time.Now(), rates: newRates()}
	s.mux = http.NewServeMux()
	s.routes()
	csrf := http.NewCrossOriginProtection()
	csrf.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusForbidden, "cross-origin request refused: actions are taken from the console's own page or from a client that sends no Origin")
	}))
	s.h = s.recoverer(csrf.Handler(s.mux))
	return s
}

// Attach gives the monitor the running broker's parts; the broker is ready
// from then on. It may be called again (tests).
func (s *Server) Attach(src Sources) { s.src.Store(&src) }

// Handler returns the monitor's HTTP handler.
func (s *Server) Handler() http.Handler { return s.h }

// sources returns the attached sources, or answers 503 and returns nil.
func (s *Server) sources(w http.ResponseWriter) *Sources {
	src := s.src.Load()
	if src == nil {
		writeError(w, http.StatusServiceUnavailable, "starting: the broker is recovering its streams")
	}
	return src
}

// recoverer turns a panic of a handler into a 500 with a JSON body, logged
// with its stack, instead of a dropped connection.
func (s *Server) recoverer(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.opts.Logger.Error("monitor: handler panic", "path", r.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				writeError(w, http.StatusInternalServerError, "internal error")
			}
		}()
		h.ServeHTTP(w, r)
	})
}

// endpoint wraps an API handler: the role check, the headers every answer
// carries, and errors as JSON.
func (s *Server) endpoint(need Role, fn func(w http.ResponseWriter, r *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
		h.Set("X-Frame-Options", "DENY")
		if need > RoleNone && !s.allow(w, r, need) {
			return
		}
		if err := fn(w, r); err != nil {
			var he *httpError
			if errors.As(err, &he) {
				writeError(w, he.status, he.msg)
				return
			}
			s.opts.Logger.Warn("monitor: request failed", "path", r.URL.Path, "err", err)
			writeError(w, http.StatusInternalServerError, err.Error())
		}
	})
}

// allow checks the request's role and answers 401 or 403 when it does not
// suffice.
func (s *Server) allow(w http.ResponseWriter, r *http.Request, need Role) bool {
	role := RoleAdmin
	if s.opts.Access != nil {
		role = s.opts.Access(r)
	}
	switch {
	case role == RoleNone:
		w.Header().Set("WWW-Authenticate", `Basic realm="ledge", charset="UTF-8"`)
		writeError(w, http.StatusUnauthorized, "authentication required")
		return false
	case role < need:
		writeError(w, http.StatusForbidden, "the "+role.String()+" role may not do this; it takes the "+need.String()+" role")
		return false
	}
	return true
}

// httpError is an error with the status it is answered with.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func errorf(status int, format string, args ...any) error {
	return &httpError{status: status, msg: fmt.Sprintf(format, args...)}
}

// errorBody is every error's JSON.
type errorBody struct {
	Error  string `json:"error"`
	Status int    `json:"status"`
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, errorBody{Error: msg, Status: status})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(errorBody{Error: "encode answer: " + err.Error(), Status: status})
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// notFound answers a path no endpoint serves: 405 when another method
// would have been served, 404 otherwise.
func (s *Server) notFound(w http.ResponseWriter, r *http.Request) error {
	var allowed []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodDelete} {
		if m == r.Method {
			continue
		}
		r2 := r.Clone(r.Context())
		r2.Method = m
		if _, pattern := s.mux.Handler(r2); pattern != "/" && pattern != "" {
			allowed = append(allowed, m)
		}
	}
	if len(allowed) > 0 {
		for _, m := range allowed {
			w.Header().Add("Allow", m)
		}
		return errorf(http.StatusMethodNotAllowed, "%s is not allowed on %s", r.Method, r.URL.Path)
	}
	return errorf(http.StatusNotFound, "no such endpoint: %s", r.URL.Path)
}
