package monitor

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestQueryParsing(t *testing.T) {
	cases := []struct {
		raw  string
		want string // "" for no error, else a part of it
		page page
	}{
		{"", "", page{limit: 100, sort: "id"}},
		{"offset=5&limit=7&sort=in_msgs&order=desc&q=dev", "", page{offset: 5, limit: 7, sort: "in_msgs", desc: true, filter: "dev"}},
		{"limit=10001", `"limit"`, page{}},
		{"limit=-1", `"limit"`, page{}},
		{"offset=1e3", `"offset"`, page{}},
		{"sort=", "", page{limit: 100, sort: "id"}},
		{"sort=nope", `"sort"`, page{}},
		{"order=up", `"order"`, page{}},
		{"q=" + strings.Repeat("x", 2000), "longer than", page{}},
		{"q=%ff", "not UTF-8", page{}},
		{"q=a&q=b", "given 2 times", page{}},
		{"%", "malformed", page{}},
		{"extra=1", "unknown parameter", page{}},
	}
	for _, tc := range cases {
		q := parseQuery(tc.raw)
		p := q.readPage(100, connSortKeys...)
		q.strict()
		err := q.done()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: %v", tc.raw, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%q: err %v, want one with %q", tc.raw, err, tc.want)
		case tc.want == "" && p != tc.page:
			t.Errorf("%q: page %+v, want %+v", tc.raw, p, tc.page)
		}
	}
	for raw, want := range map[string]bool{"subs": true, "subs=": true, "subs=1": true, "subs=TRUE": true, "subs=f": false, "": false} {
		q := parseQuery(raw)
		if got := q.boolean("subs"); got != want || q.done() != nil {
			t.Errorf("%q: %v %v, want %v", raw, got, q.done(), want)
		}
	}
	for _, tc := range []struct{ n, off, lim, lo, hi int }{{10, 0, 3, 0, 3}, {10, 8, 5, 8, 10}, {10, 20, 5, 10, 10}, {0, 0, 0, 0, 0}} {
		if lo, hi := (page{offset: tc.off, limit: tc.lim}).window(tc.n); lo != tc.lo || hi != tc.hi {
			t.Errorf("window(%d) of %+v = %d,%d", tc.n, tc, lo, hi)
		}
	}
}

// FuzzAPIQuery sends any query string to every endpoint that reads one:
// the answer is a JSON success or a 400 with a reason, never a panic
// (which the handler would answer 500).
func FuzzAPIQuery(f *testing.F) {
	r := newRig(f, Options{})
	for _, seed := range []string{"", "limit=5&offset=2", "sort=in_msgs&order=desc", "subs=detail", "subs=1&cid=1",
		"protocol=mqtt", "q=%00", "limit=99999999999999999999", "offset=-1", "filter=%23", "filter=a/%23/b",
		"accounts=1&streams=1&consumers=1&config=1", "seq=18446744073709551615", "subject=>", "test=a.b", "state=closed",
		"%zz", "a=1&a=2", "ready=true", "name=task_queue"} {
		f.Add(seed)
	}
	paths := []string{"/api/server", "/api/connections", "/api/subscriptions", "/api/streams", "/api/streams/MQTT_retained",
		"/api/streams/MQTT_retained/messages", "/api/queues", "/api/retained", "/api/uplinks", "/varz", "/connz", "/subsz",
		"/jsz", "/healthz", "/readyz", "/metrics"}
	h := r.mon.Handler()
	f.Fuzz(func(t *testing.T, raw string) {
		if strings.ContainsAny(raw, " #\r\n") {
			raw = strings.NewReplacer(" ", "%20", "#", "%23", "\r", "%0D", "\n", "%0A").Replace(raw)
		}
		for _, path := range paths {
			req, err := http.NewRequest(http.MethodGet, "http://ledge"+path+"?"+raw, nil)
			if err != nil {
				return // not a URL a client could send
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			switch w.Code {
			case 200, 400, 404:
			default:
				t.Fatalf("%s?%s: %d %s", path, raw, w.Code, w.Body.String())
			}
			if w.Code == 200 && path == "/metrics" {
				continue
			}
			var v map[string]any
			if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
				t.Fatalf("%s?%s: %d, not JSON: %v\n%s", path, raw, w.Code, err, w.Body.String())
			}
			if w.Code == 400 && v["error"] == "" {
				t.Fatalf("%s?%s: 400 without a reason", path, raw)
			}
		}
	})
}
