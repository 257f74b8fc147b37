package monitor

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkWatched measures what each request of a watcher costs the
// broker: a Prometheus scrape, and the console's poll of its queue tab.
// Their sum per second, over a second, is the CPU share being watched
// takes (benchmarks/RESULTS.md).
func BenchmarkWatched(b *testing.B) {
	r := newRig(b, Options{})
	r.makeTraffic(b)
	h := r.mon.Handler()
	for _, path := range []string{"/metrics", "/api/server", "/readyz", "/api/queues?limit=1000", "/api/connections?limit=500&sort=in_msgs_per_sec&order=desc"} {
		b.Run(path, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, path, nil)
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != 200 {
					b.Fatalf("%s: %d", path, w.Code)
				}
			}
		})
	}
}
