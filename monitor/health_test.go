package monitor

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ledgemq/ledge/bridge"
	"github.com/ledgemq/ledge/broker"
)

func health(t *testing.T, r *rig, path string) (int, Health) {
	t.Helper()
	status, body := r.do(t, http.MethodGet, path)
	var h Health
	if err := json.Unmarshal(body, &h); err != nil {
		t.Fatalf("%s: %v\n%s", path, err, body)
	}
	return status, h
}

func checkNamed(h Health, name string) (Check, bool) {
	for _, c := range h.Checks {
		if c.Name == name {
			return c, true
		}
	}
	return Check{}, false
}

// TestHealthWhileStarting: liveness is answered before the broker is
// attached, readiness is not, and the API says why.
func TestHealthWhileStarting(t *testing.T) {
	mon := New(Options{Logger: quietLogger()})
	srv := httptest.NewServer(mon.Handler())
	defer srv.Close()
	for _, tc := range []struct {
		path   string
		status int
		want   string
	}{
		{"/healthz", 200, `"status": "starting"`},
		{"/readyz", 503, `"ready": false`},
		{"/healthz?ready=1", 503, "recovering"},
		{"/api/server", 503, "recovering"},
		{"/metrics", 503, "recovering"},
		{"/varz", 503, "recovering"},
	} {
		resp, err := http.Get(srv.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || !strings.Contains(b.String(), tc.want) {
			t.Errorf("%s: %d %s, want %d with %q", tc.path, resp.StatusCode, b.String(), tc.status, tc.want)
		}
	}
}

// TestHealthNamesDegradedStates: a disk nearly full, a certificate close
// to expiry and an uplink that cannot connect each make the answer
// degraded, named, and still ready; a disk too full to store is not ready.
func TestHealthNamesDegradedStates(t *testing.T) {
	r := newRig(t, Options{DiskWarnUsed: 1e-9, DiskMinFree: 1,
		Certificates: []Certificate{{Name: "server.pem", NotAfter: time.Now().Add(50 * time.Hour)},
			{Name: "old.pem", NotAfter: time.Now().Add(-time.Hour)},
			{Name: "fresh.pem", NotAfter: time.Now().Add(365 * 24 * time.Hour)}}})
	br, err := bridge.New(r.b, r.live, bridge.Config{GatewayID: "gw-test", Logger: quietLogger(), Uplinks: []bridge.Uplink{{
		Name: "cloud", URLs: []string{"nats://127.0.0.1:1"}, Subjects: []string{"telemetry.>"},
		BackoffMin: 10 * time.Millisecond, BackoffMax: 20 * time.Millisecond, DialTimeout: 200 * time.Millisecond,
	}}})
	if err != nil {
		t.Fatal(err)
	}
	defer br.Close()
	r.src.Uplinks = br.Status
	r.mon.Attach(r.src)

	var h Health
	var status int
	waitFor(t, "the uplink named as not connected", func() bool {
		status, h = health(t, r, "/readyz")
		c, ok := checkNamed(h, "uplink cloud")
		return ok && c.Status == checkWarn
	})
	if status != 200 || h.Status != statusDegraded || !h.Ready {
		t.Errorf("readyz %d %+v, want 200 degraded and ready", status, h)
	}
	for name, want := range map[string]string{
		"disk":                   "disk nearly full",
		"certificate server.pem": "expires in 3 days",
		"certificate old.pem":    "expired on",
		"uplink cloud":           "uplink cloud",
	} {
		if c, ok := checkNamed(h, name); !ok || c.Status != checkWarn || !strings.Contains(c.Message, want) {
			t.Errorf("check %s: %+v, want a warning with %q", name, c, want)
		}
	}
	if c, _ := checkNamed(h, "certificate fresh.pem"); c.Status != checkOK {
		t.Errorf("a fresh certificate: %+v", c)
	}
	if h.Checks[0].Status != checkWarn || h.Error == "" {
		t.Errorf("problems first, and the first in error: %+v", h)
	}
	if status, hz := health(t, r, "/healthz"); status != 200 || hz.Status != statusDegraded {
		t.Errorf("healthz %d %s, want 200 degraded", status, hz.Status)
	}
	var si ServerInfo
	r.getJSON(t, "/api/server", &si)
	if si.Health != statusDegraded || si.Uplinks != 1 {
		t.Errorf("server health %q uplinks %d", si.Health, si.Uplinks)
	}
	fams := r.scrape(t)
	if value(t, fams, "ledge_degraded") != 1 || value(t, fams, "ledge_uplink_up", "uplink", "cloud") != 0 ||
		value(t, fams, "ledge_certificate_expiry_timestamp_seconds", "certificate", "old.pem") <= 0 {
		t.Errorf("metrics do not show the degraded state")
	}

	// The disk too full to store: not ready, though alive.
	r2 := newRig(t, Options{DiskMinFree: 1 << 62})
	if status, h := health(t, r2, "/readyz"); status != 503 || h.Ready || h.Status != statusUnavailable ||
		!strings.Contains(h.Error, "durable publishing is about to fail") {
		t.Errorf("full disk readyz: %d %+v", status, h)
	}
	if status, _ := health(t, r2, "/healthz"); status != 200 {
		t.Errorf("full disk healthz: %d, want 200 (restarting does not free the disk)", status)
	}
}

// tinyFSEnv names, in a child test, the folder mounted as a tiny tmpfs.
const tinyFSEnv = "LEDGE_MONITOR_TINYFS"

// TestHealthRedWhenDurablePublishingBreaks fills a small file system of
// its own until a stream's log fails, and finds both probes red: never a
// green answer while durable publishing is broken.
func TestHealthRedWhenDurablePublishingBreaks(t *testing.T) {
	if os.Getenv(tinyFSEnv) != "" {
		t.Skip("the child test runs on its own")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("no unshare to mount a small file system")
	}
	dir := t.TempDir()
	probe := exec.Command("unshare", "-rm", "sh", "-c", `mount -t tmpfs -o size=4k tmpfs "$0"`, dir)
	if out, err := probe.CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs in a namespace: %v %s", err, out)
	}
	const child = "TestBrokenLogChild"
	args := []string{"-rm", "sh", "-c", `mount -t tmpfs -o size=512k tmpfs "$0" && exec "$@"`, dir}
	// Under qemu-user without binfmt_misc the test binary runs only
	// through its emulator (see .ci/run).
	if emu := os.Getenv("LEDGE_TEST_EMULATOR"); emu != "" {
		args = append(args, emu)
	}
	args = append(args, os.Args[0], "-test.run=^"+child+"$", "-test.count=1", "-test.v")
	cmd := exec.Command("unshare", args...)
	cmd.Env = append(os.Environ(), tinyFSEnv+"="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("--- PASS: "+child)) {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

func TestBrokenLogChild(t *testing.T) {
	dir := os.Getenv(tinyFSEnv)
	if dir == "" {
		t.Skip("runs inside TestHealthRedWhenDurablePublishingBreaks")
	}
	b, err := broker.Open(broker.Options{Dir: dir, SegmentBytes: 64 << 10, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	st, err := b.AddStream(broker.StreamConfig{Name: "FILL", Subjects: []string{"fill.>"}})
	if err != nil {
		t.Fatal(err)
	}
	mon := New(Options{DataDir: dir, DiskMinFree: 1, DiskWarnUsed: 1, Logger: quietLogger()})
	mon.Attach(Sources{Broker: b})
	srv := httptest.NewServer(mon.Handler())
	defer srv.Close()
	payload := bytes.Repeat([]byte("x"), 8<<10)
	var failed error
	for i := 0; i < 1000 && failed == nil; i++ {
		done := make(chan error, 1)
		if err := st.Publish(&broker.Message{Subject: []byte("fill.x"), Payload: payload}, func(_ broker.PubAck, err error) { done <- err }); err != nil {
			failed = err
			break
		}
		failed = <-done
	}
	if failed == nil {
		t.Fatal("512 KiB took 8 MB without an error")
	}
	if st.Storage().Err == nil {
		t.Fatalf("publishing failed (%v) and the log does not say it is broken", failed)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		var h Health
		err = json.NewDecoder(resp.Body).Decode(&h)
		resp.Body.Close()
		c, _ := checkNamed(h, "stream FILL")
		if err != nil || resp.StatusCode != 503 || h.Status != statusUnavailable || c.Status != checkFail ||
			!strings.Contains(c.Message, "durable publishing to stream FILL fails") {
			t.Errorf("%s with a broken log: %d %+v (%v)", path, resp.StatusCode, h, err)
		}
	}
}
