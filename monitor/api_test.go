package monitor

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// TestAPIShowsTheTrafficClientsMade drives the broker with nats.go, paho
// and amqp091-go and finds in the API the numbers they made.
func TestAPIShowsTheTrafficClientsMade(t *testing.T) {
	r := newRig(t, Options{})
	tr := r.makeTraffic(t)

	var ql QueueList
	r.getJSON(t, "/api/queues", &ql)
	jobs := findQueue(t, ql, "JOBS", "workers")
	if jobs.Ready != 5 || jobs.Unacked != 2 || jobs.Messages != 7 || jobs.Protocol != "jetstream" || jobs.Name != "workers" {
		t.Errorf("JOBS workers: %+v, want 5 ready and 2 unacked of 7", jobs)
	}
	var amqpQ QueueRow
	for _, q := range ql.Queues {
		if q.Name == "task_queue" {
			amqpQ = q
		}
	}
	if amqpQ.Protocol != "amqp" || amqpQ.Ready != 2 || amqpQ.Unacked != 1 || amqpQ.Consumers != 1 || !amqpQ.Durable {
		t.Errorf("AMQP task_queue: %+v, want 2 ready, 1 unacked, 1 consumer, durable", amqpQ)
	}
	r.getJSON(t, "/api/queues?protocol=amqp&name=task_queue", &ql)
	if len(ql.Queues) != 1 || ql.Queues[0].Name != "task_queue" {
		t.Errorf("filtered queues: %+v", ql.Queues)
	}

	// Connections of every protocol, with what each client sent.
	var cl ConnList
	waitFor(t, "four connections with their counts", func() bool {
		r.getJSON(t, "/api/connections?subs=true", &cl)
		return cl.Total == 4 && connOf(cl, "nats").InMsgs >= 10 && connOf(cl, "mqtt").InMsgs == 1 && connOf(cl, "amqp").InMsgs == 3 &&
			connOf(cl, "stomp").OutMsgs == 1
	})
	nc := connOf(cl, "nats")
	if nc.Name != "golden-client" || nc.Lang != "go" || nc.Subscriptions < 2 || nc.InBytes == 0 || nc.OutBytes == 0 || nc.Start.IsZero() {
		t.Errorf("nats connection %+v", nc)
	}
	mc := connOf(cl, "mqtt")
	if mc.ClientID != "sensor-7" || mc.ProtocolVersion != "3.1.1" || mc.Subscriptions != 1 || len(mc.Subjects) != 1 || mc.Subjects[0] != "site/+/temp" {
		t.Errorf("mqtt connection %+v", mc)
	}
	ac := connOf(cl, "amqp")
	if ac.Name != "billing-worker" || ac.Channels != 1 || ac.OutMsgs != 1 || ac.User != "guest" {
		t.Errorf("amqp connection %+v", ac)
	}
	sc := connOf(cl, "stomp")
	if sc.ClientID != "stomp-worker" || sc.User != "guest" || sc.ProtocolVersion != "1.2" || sc.InMsgs != 2 || sc.Inflight != 1 ||
		sc.Subscriptions != 1 || len(sc.Subjects) != 1 || sc.Subjects[0] != "/queue/stomp_jobs" || sc.InBytes == 0 || sc.Start.IsZero() {
		t.Errorf("stomp connection %+v", sc)
	}
	r.getJSON(t, "/api/connections?protocol=mqtt", &cl)
	if cl.Total != 1 || cl.Connections[0].Subjects != nil {
		t.Errorf("mqtt only, without subjects: %+v", cl)
	}
	var one Conn
	r.getJSON(t, "/api/connections/nats/"+strconv.FormatUint(nc.ID, 10), &one)
	if one.Name != "golden-client" {
		t.Errorf("one connection: %+v", one)
	}

	// Server totals per protocol.
	var si ServerInfo
	r.getJSON(t, "/api/server", &si)
	if si.Connections != 4 || si.Name != "test-gw" || si.Version != "v0.0.0-test" || si.Health != "ok" || si.Role != "admin" {
		t.Errorf("server: %+v", si)
	}
	for _, p := range si.Protocols {
		if p.Connections != 1 {
			t.Errorf("protocol %s: %d connections", p.Name, p.Connections)
		}
	}
	if si.Streams < 5 || si.Disk == nil || si.Disk.StreamBytes == 0 || si.MemBytes == 0 {
		t.Errorf("server streams and disk: %+v %+v", si, si.Disk)
	}

	// Subscriptions of NATS and MQTT.
	var sl SubList
	r.getJSON(t, "/api/subscriptions?q=orders", &sl)
	if sl.Total != 2 {
		t.Errorf("orders subscriptions: %+v", sl)
	}
	r.getJSON(t, "/api/subscriptions?protocol=mqtt", &sl)
	if sl.Total != 1 || sl.Subscriptions[0].Client != "sensor-7" || sl.Subscriptions[0].Subject != "site/+/temp" || sl.Subscriptions[0].QoS != 1 {
		t.Errorf("mqtt subscriptions: %+v", sl)
	}

	// Streams and retained messages.
	var st StreamRow
	r.getJSON(t, "/api/streams/JOBS", &st)
	if st.Messages != 7 || st.Owner != "jetstream" || st.Retention != "workqueue" || len(st.ConsumerList) != 1 || st.DiskBytes == 0 {
		t.Errorf("stream JOBS: %+v", st)
	}
	var rl RetainedList
	r.getJSON(t, "/api/retained", &rl)
	if rl.Total != 1 || rl.Retained[0].Topic != "site/7/state" || rl.Retained[0].Payload == nil || *rl.Retained[0].Payload != "on" {
		t.Errorf("retained: %+v", rl)
	}

	// Peeking shows the ready jobs without taking them.
	var ml MessageList
	r.getJSON(t, "/api/queues/JOBS/workers/messages?limit=10", &ml)
	if len(ml.Messages) != 7 || ml.Messages[0].State != "delivered" || ml.Messages[6].State != "ready" || *ml.Messages[0].Payload != "image" {
		t.Errorf("peek: %+v", ml.Messages)
	}
	r.getJSON(t, "/api/queues", &ql)
	if q := findQueue(t, ql, "JOBS", "workers"); q.Ready != 5 || q.Unacked != 2 {
		t.Errorf("after peek: %+v", q)
	}
	_ = tr
}

func connOf(l ConnList, protocol string) Conn {
	for _, c := range l.Connections {
		if c.Protocol == protocol {
			return c
		}
	}
	return Conn{}
}

// TestActions closes a connection, purges a queue, deletes a consumer and
// a stream, and refuses to touch what a gateway owns.
func TestActions(t *testing.T) {
	r := newRig(t, Options{})
	tr := r.makeTraffic(t)

	// Close the NATS client: it sees the connection go.
	closed := make(chan struct{})
	tr.nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
	tr.nc.SetDisconnectErrHandler(func(*nats.Conn, error) {})
	var cl ConnList
	r.getJSON(t, "/api/connections?protocol=nats", &cl)
	id := strconv.FormatUint(cl.Connections[0].ID, 10)
	if status, body := r.do(t, http.MethodDelete, "/api/connections/nats/"+id); status != http.StatusOK {
		t.Fatalf("close: %d %s", status, body)
	}
	select {
	case <-closed:
	case <-time.After(testTimeout):
		t.Fatal("the client did not see its connection closed")
	}
	waitFor(t, "the NATS connection gone", func() bool {
		r.getJSON(t, "/api/connections?protocol=nats", &cl)
		return cl.Total == 0
	})
	if status, _ := r.do(t, http.MethodDelete, "/api/connections/nats/"+id); status != http.StatusNotFound {
		t.Errorf("closing it again: %d, want 404", status)
	}

	// Purge the AMQP queue through its stream.
	var ql QueueList
	r.getJSON(t, "/api/queues?name=task_queue", &ql)
	q := ql.Queues[0]
	status, body := r.do(t, http.MethodPost, "/api/queues/"+url.PathEscape(q.Stream)+"/"+url.PathEscape(q.Consumer)+"/purge")
	var res ActionResult
	if err := json.Unmarshal(body, &res); status != http.StatusOK || err != nil || res.Purged != 3 {
		t.Fatalf("purge: %d %s", status, body)
	}
	r.getJSON(t, "/api/queues?name=task_queue", &ql)
	if ql.Queues[0].Ready != 0 {
		t.Errorf("after purge: %+v", ql.Queues[0])
	}

	// Delete the JetStream consumer, then the stream.
	if status, body := r.do(t, http.MethodDelete, "/api/queues/JOBS/workers"); status != http.StatusOK {
		t.Fatalf("delete consumer: %d %s", status, body)
	}
	if status, body := r.do(t, http.MethodDelete, "/api/streams/JOBS"); status != http.StatusOK {
		t.Fatalf("delete stream: %d %s", status, body)
	}
	if status, _ := r.do(t, http.MethodGet, "/api/streams/JOBS"); status != http.StatusNotFound {
		t.Errorf("deleted stream: %d, want 404", status)
	}

	// What the gateways own is refused with a reason.
	for _, tc := range []struct{ method, path string }{
		{http.MethodDelete, "/api/streams/MQTT_retained"},
		{http.MethodPost, "/api/streams/MQTT_sessions/purge"},
		{http.MethodDelete, "/api/streams/" + q.Stream},
		{http.MethodDelete, "/api/queues/" + q.Stream + "/" + q.Consumer},
	} {
		status, body := r.do(t, tc.method, tc.path)
		if status != http.StatusConflict || !strings.Contains(string(body), "gateway") {
			t.Errorf("%s %s: %d %s, want 409", tc.method, tc.path, status, body)
		}
	}
}

// TestBadInput: unknown paths and names are 404 JSON, bad parameters 400
// with the reason, wrong methods 405.
func TestBadInput(t *testing.T) {
	r := newRig(t, Options{})
	r.makeTraffic(t)
	cases := []struct {
		method, path string
		status       int
		reason       string
	}{
		{"GET", "/nope", 404, "no such endpoint"},
		{"GET", "/api/nope", 404, "no such endpoint"},
		{"GET", "/api/streams/NOPE", 404, `no stream "NOPE"`},
		{"GET", "/api/streams/NOPE/messages", 404, `no stream "NOPE"`},
		{"DELETE", "/api/streams/NOPE", 404, `no stream "NOPE"`},
		{"POST", "/api/streams/NOPE/purge", 404, `no stream "NOPE"`},
		{"GET", "/api/queues/JOBS/nobody", 404, `no consumer "nobody"`},
		{"POST", "/api/queues/NOPE/x/purge", 404, `no stream "NOPE"`},
		{"DELETE", "/api/connections/nats/999999", 404, "no nats connection 999999"},
		{"DELETE", "/api/connections/smtp/1", 404, `no protocol "smtp"`},
		{"GET", "/api/connections/nats/abc", 400, "not a number"},
		{"GET", "/api/connections?limit=-1", 400, `"limit"`},
		{"GET", "/api/connections?limit=1000000", 400, `"limit"`},
		{"GET", "/api/connections?sort=colour", 400, `"sort"`},
		{"GET", "/api/connections?order=sideways", 400, `"order"`},
		{"GET", "/api/connections?protocol=smtp", 400, `"protocol"`},
		{"GET", "/api/connections?colour=blue", 400, `unknown parameter "colour"`},
		{"GET", "/api/connections?limit=1&limit=2", 400, "given 2 times"},
		{"GET", "/api/connections?subs=maybe", 400, `"subs"`},
		{"GET", "/api/queues?offset=x", 400, `"offset"`},
		{"GET", "/api/streams?owner=me", 400, `"owner"`},
		{"GET", "/api/streams/JOBS/messages?limit=0", 400, `"limit"`},
		{"GET", "/api/streams/JOBS/messages?subject=a..b", 400, `"subject"`},
		{"GET", "/api/retained?filter=a/%23/b", 400, `"filter"`},
		{"GET", "/api/server?x=1", 400, "unknown parameter"},
		{"GET", "/connz?sort=colour", 400, `"sort"`},
		{"GET", "/connz?limit=x", 400, `"limit"`},
		{"GET", "/subsz?test=a.*", 400, "literal subject"},
		{"GET", "/jsz?accounts=perhaps", 400, `"accounts"`},
		{"GET", "/api/connections?q=%zz", 400, "malformed query"},
		{"POST", "/api/streams", 405, "not allowed"},
		{"PUT", "/api/streams/JOBS", 405, "not allowed"},
		{"GET", "/console/nope.js", 404, "no such file"},
	}
	for _, tc := range cases {
		status, body := r.do(t, tc.method, tc.path)
		var e errorBody
		if status != tc.status || json.Unmarshal(body, &e) != nil || e.Status != tc.status || !strings.Contains(e.Error, tc.reason) {
			t.Errorf("%s %s: %d %s, want %d mentioning %q", tc.method, tc.path, status, body, tc.status, tc.reason)
		}
	}
}

// TestAccessRoles: a monitor may read and not act; nobody may do neither;
// probes need no credentials.
func TestAccessRoles(t *testing.T) {
	roles := map[string]Role{"admin": RoleAdmin, "watcher": RoleMonitor, "device": RoleUser}
	r := newRig(t, Options{Access: func(req *http.Request) Role {
		user, _, _ := req.BasicAuth()
		return roles[user]
	}})
	as := func(user string) []string {
		if user == "" {
			return nil
		}
		return []string{"Authorization", "Basic " + basic(user)}
	}
	cases := []struct {
		user, method, path string
		status             int
	}{
		{"", "GET", "/healthz", 200},
		{"", "GET", "/readyz", 200},
		{"", "GET", "/api/server", 401},
		{"", "GET", "/metrics", 401},
		{"", "GET", "/", 401},
		{"device", "GET", "/api/server", 403},
		{"device", "GET", "/", 403},
		{"watcher", "GET", "/api/server", 200},
		{"watcher", "GET", "/metrics", 200},
		{"watcher", "GET", "/varz", 200},
		{"watcher", "GET", "/", 200},
		{"watcher", "GET", "/api/streams/MQTT_retained/messages", 403},
		{"watcher", "POST", "/api/streams/MQTT_retained/purge", 403},
		{"watcher", "DELETE", "/api/connections/nats/1", 403},
		{"admin", "POST", "/api/streams/NOPE/purge", 404},
	}
	for _, tc := range cases {
		status, body := r.do(t, tc.method, tc.path, as(tc.user)...)
		if status != tc.status {
			t.Errorf("%q %s %s: %d %s, want %d", tc.user, tc.method, tc.path, status, body, tc.status)
		}
	}
	var si ServerInfo
	req, _ := http.NewRequest("GET", r.http.URL+"/api/server", nil)
	req.SetBasicAuth("watcher", "")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&si); err != nil || si.Role != "monitor" {
		t.Errorf("the console learns the role: %q %v", si.Role, err)
	}
	if status, _ := r.do(t, "GET", "/api/server"); status == http.StatusUnauthorized {
		resp, _ := http.Get(r.http.URL + "/api/server")
		if resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("401 without WWW-Authenticate")
		}
		resp.Body.Close()
	}
}

func basic(user string) string { return base64.StdEncoding.EncodeToString([]byte(user + ":")) }

// TestActionsRefuseCrossSiteRequests: a page elsewhere cannot make a
// browser purge a queue.
func TestActionsRefuseCrossSiteRequests(t *testing.T) {
	r := newRig(t, Options{})
	r.makeTraffic(t)
	for _, hdr := range [][]string{
		{"Sec-Fetch-Site", "cross-site"},
		{"Origin", "http://evil.example"},
	} {
		status, body := r.do(t, http.MethodPost, "/api/streams/JOBS/purge", hdr...)
		if status != http.StatusForbidden || !strings.Contains(string(body), "cross-origin") {
			t.Errorf("%v: %d %s, want 403", hdr, status, body)
		}
	}
	var st StreamRow
	r.getJSON(t, "/api/streams/JOBS", &st)
	if st.Messages != 7 {
		t.Fatalf("a refused purge removed messages: %d left", st.Messages)
	}
	// The console's own page sends same-origin.
	if status, body := r.do(t, http.MethodPost, "/api/streams/JOBS/purge", "Sec-Fetch-Site", "same-origin"); status != http.StatusOK {
		t.Errorf("same-origin purge: %d %s", status, body)
	}
}

// TestConsoleHeaders: the page comes with a policy that allows its own
// files only and forbids framing.
func TestConsoleHeaders(t *testing.T) {
	r := newRig(t, Options{})
	for _, path := range []string{"/", "/console/app.js", "/console/app.css"} {
		resp, err := http.Get(r.http.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		csp := resp.Header.Get("Content-Security-Policy")
		if resp.StatusCode != 200 || !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "script-src 'self'") ||
			strings.Contains(csp, "unsafe") || resp.Header.Get("X-Frame-Options") != "DENY" {
			t.Errorf("%s: %d, CSP %q, X-Frame-Options %q", path, resp.StatusCode, csp, resp.Header.Get("X-Frame-Options"))
		}
	}
}
