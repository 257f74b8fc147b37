package bridge

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/ledgemq/ledge/broker"
)

// TestCatchUpFigures measures the catch-up of a backlog built while the
// upstream was down: time to the first message upstream and to the last.
// Set LEDGE_BRIDGE_PERF=N to run it with an N-message backlog.
func TestCatchUpFigures(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("LEDGE_BRIDGE_PERF"))
	if n == 0 {
		t.Skip("set LEDGE_BRIDGE_PERF to the backlog size")
	}
	up := startUpstream(t, nil)
	up.addStream("UP", "edge1.>")
	e := openEdge(t, t.TempDir(), false)
	u := quickUplink("cloud", up.url())
	u.Subjects = []string{"bench.>"}
	if w, _ := strconv.Atoi(os.Getenv("LEDGE_BRIDGE_WINDOW")); w > 0 {
		u.Window = w
	}
	e.startBridge(u)
	st, _ := e.b.Stream("UPLINK_cloud")
	payload := make([]byte, 100)
	pub := func(count int) {
		for i := 0; i < count; i++ {
			if err := st.Publish(&broker.Message{Subject: []byte(fmt.Sprintf("bench.%d", i%10)), Payload: payload}, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	start := time.Now()
	pub(n)
	waitFor(t, 5*time.Minute, "forwarded", func() bool { return up.count("UP") >= uint64(n) })
	t.Logf("live forward of %d: %s (%.0f msgs/s)", n, time.Since(start), float64(n)/time.Since(start).Seconds())
	up.stop()
	waitFor(t, 10*time.Second, "down", func() bool { return e.status("cloud").State == "down" })
	pub(n)
	up.start()
	t0 := time.Now()
	var first time.Duration
	waitFor(t, 5*time.Minute, "caught up", func() bool {
		c := up.count("UP")
		if first == 0 && c > uint64(n) {
			first = time.Since(t0)
		}
		return c >= uint64(2*n)
	})
	all := time.Since(t0)
	t.Logf("catch-up of %d: first after %s, all after %s (%.0f msgs/s)", n, first, all, float64(n)/all.Seconds())
}
