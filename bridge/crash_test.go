package bridge

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/ledgemq/ledge/broker"
	"github.com/ledgemq/ledge/log"
)

const (
	crashDirEnv = "LEDGE_BRIDGE_CRASH_DIR"
	crashURLEnv = "LEDGE_BRIDGE_CRASH_URL"
)

// childArgs is the command line that runs this test binary again, under
// the emulator the tests run in, if any.
func childArgs(args ...string) []string {
	cmd := append([]string{os.Args[0]}, args...)
	if emu := os.Getenv("LEDGE_TEST_EMULATOR"); emu != "" {
		cmd = append([]string{emu}, cmd...)
	}
	return cmd
}

// TestBridgeCrashChild is the ledge the crash test kills: a broker whose
// stream DATA is forwarded, slowly enough to be killed in the middle.
func TestBridgeCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("run by TestKillDuringForward")
	}
	b, err := broker.Open(broker.Options{Dir: dir, Sync: log.SyncAlways})
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(2)
	}
	u := quickUplink("cloud", os.Getenv(crashURLEnv))
	u.Streams = []string{"DATA"}
	u.Window = 128
	u.RateLimit = 300 << 10
	if _, err := New(b, nil, Config{GatewayID: "edge1", Uplinks: []Uplink{u}, Logger: testLogger(t)}); err != nil {
		fmt.Fprintln(os.Stderr, "bridge:", err)
		os.Exit(2)
	}
	select {}
}

// TestKillDuringForward kills ledge with SIGKILL three times while it
// forwards a 30,000-message backlog, and restarts it: the upstream ends
// with every message exactly once, in order per subject.
func TestKillDuringForward(t *testing.T) {
	if testing.Short() {
		t.Skip("forwards for seconds")
	}
	const perSubject = 10000
	subjects := []string{"data.1", "data.2", "data.3"}
	total := uint64(perSubject * len(subjects))
	dir := t.TempDir()
	e := openEdge(t, dir, false)
	st, err := e.b.AddStream(broker.StreamConfig{Name: "DATA", Subjects: []string{"data.>"}})
	if err != nil {
		t.Fatal(err)
	}
	publishLocal(t, st, subjects, 0, perSubject)
	e.close()

	up := startUpstream(t, nil)
	up.addStream("UP", "edge1.>")
	for round := 0; ; round++ {
		args := childArgs("-test.run=^TestBridgeCrashChild$", "-test.count=1")
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashURLEnv+"="+up.url())
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatalf("start child %v: %v", args, err)
		}
		if round == 3 {
			waitFor(t, 60*time.Second, "the whole backlog upstream", func() bool { return up.count("UP") >= total })
			// Give a wrongly resent message the time to arrive.
			time.Sleep(300 * time.Millisecond)
			_ = cmd.Process.Signal(syscall.SIGKILL)
			_ = cmd.Wait()
			break
		}
		target := total * uint64(round+1) / 4
		waitFor(t, 60*time.Second, fmt.Sprintf("%d upstream", target), func() bool { return up.count("UP") >= target })
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		t.Logf("round %d: killed with %d upstream", round, up.count("UP"))
	}
	want := map[string]int{}
	for _, s := range subjects {
		want[s] = perSubject
	}
	checkExactlyOnce(t, up.read("UP"), want)
}
