package monitor

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// volatile are the fields whose values change from run to run (times,
// addresses, sizes of the machine, rates, library versions): the golden
// files keep their names and types, not their values.
var volatile = map[string]bool{
	"start": true, "now": true, "last_activity": true, "uptime_seconds": true, "idle_seconds": true,
	"mem_bytes": true, "heap_bytes": true, "cpu_seconds": true, "cpu_percent": true, "goroutines": true,
	"cores": true, "go": true, "in_bytes": true, "out_bytes": true, "bytes_in": true, "bytes_out": true,
	"addr": true, "path": true, "total_bytes": true, "free_bytes": true, "used_percent": true,
	"stream_bytes": true, "disk_bytes": true, "created": true, "first_time": true, "last_time": true,
	"time": true, "version": true, "in_msgs_per_sec": true, "out_msgs_per_sec": true, "in_bytes_per_sec": true,
	"out_bytes_per_sec": true, "publish_per_sec": true, "deliver_per_sec": true, "ack_per_sec": true,
	"keep_alive_seconds": true, "id": true, "total_connections": true, "connections_total": true,
	"pending_bytes": true,
}

// normalize replaces the values of volatile fields by their type.
func normalize(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			// ledge's version is the test's; a client library's is not.
			if volatile[k] && e != "v0.0.0-test" {
				x[k] = typeOf(e)
				continue
			}
			if s, ok := e.(string); ok && strings.HasPrefix(s, "_INBOX.") {
				// nats.go's request inbox is random.
				x[k] = "_INBOX.<random>"
				continue
			}
			x[k] = normalize(e)
		}
	case []any:
		for i, e := range x {
			x[i] = normalize(e)
		}
	}
	return v
}

func typeOf(v any) string {
	switch v.(type) {
	case string:
		return "<string>"
	case float64:
		return "<number>"
	case bool:
		return "<bool>"
	case nil:
		return "<null>"
	}
	return "<value>"
}

// TestGoldenShapes pins the JSON of every endpoint of ledge's API: field
// names, their nesting and the stable values the test's traffic made.
// Run go test ./monitor -run Golden -update after an intended change, and
// say so in docs/HTTP-API.md.
func TestGoldenShapes(t *testing.T) {
	r := newRig(t, Options{})
	r.makeTraffic(t)
	cases := []struct{ name, path string }{
		{"server", "/api/server"},
		{"connections", "/api/connections?subs=true"},
		{"connection-mqtt", "/api/connections?protocol=mqtt&subs=true"},
		{"subscriptions", "/api/subscriptions"},
		{"streams", "/api/streams"},
		{"stream", "/api/streams/JOBS"},
		{"queues", "/api/queues"},
		{"queue", "/api/queues/JOBS/workers"},
		{"peek", "/api/queues/JOBS/workers/messages?limit=3"},
		{"retained", "/api/retained"},
		{"uplinks", "/api/uplinks"},
		{"readyz", "/readyz"},
		{"error-404", "/api/streams/NOPE"},
		{"error-400", "/api/connections?limit=x"},
		{"action-purge", "POST /api/streams/JOBS/purge"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			method, path := http.MethodGet, tc.path
			if tc.path[0] != '/' {
				method, path = "POST", tc.path[5:]
			}
			_, body := r.do(t, method, path)
			var v any
			if err := json.Unmarshal(body, &v); err != nil {
				t.Fatalf("%s: %v\n%s", path, err, body)
			}
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			enc.SetIndent("", "  ")
			if err := enc.Encode(normalize(v)); err != nil {
				t.Fatal(err)
			}
			got := buf.Bytes()
			golden := filepath.Join("testdata", tc.name+".golden.json")
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./monitor -run Golden -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s changed; if intended, run go test ./monitor -run Golden -update and update docs/HTTP-API.md\n%s",
					path, diffLines(string(want), string(got)))
			}
		})
	}
}

// diffLines lists the lines only in want and only in got.
func diffLines(want, got string) string {
	count := func(s string) map[string]int {
		m := map[string]int{}
		for _, l := range bytes.Split([]byte(s), []byte("\n")) {
			m[string(l)]++
		}
		return m
	}
	w, g := count(want), count(got)
	var out []string
	for l, n := range w {
		if g[l] < n {
			out = append(out, "- "+l)
		}
	}
	for l, n := range g {
		if w[l] < n {
			out = append(out, "+ "+l)
		}
	}
	sort.Strings(out)
	b, _ := json.Marshal(out)
	return string(b)
}
