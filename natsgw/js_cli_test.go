package natsgw

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// natsCLI finds the nats CLI: the benchmarks' copy, else the one on PATH.
func natsCLI(t *testing.T) string {
	t.Helper()
	if p, err := filepath.Abs(filepath.Join("..", "benchmarks", "out", "bin", "nats")); err == nil {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("nats"); err == nil {
		return p
	}
	t.Skip("the nats CLI is not installed (benchmarks/out/bin/nats or nats on PATH); skipping the CLI script")
	return ""
}

// TestNatsCLI runs the tour of the README with the stock nats CLI:
// add a stream and a pull consumer with the CLI's defaults, publish, take
// messages, read the stream's and consumer's state.
func TestNatsCLI(t *testing.T) {
	cli := natsCLI(t)
	g := startJS(t, false, "", "")
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(cli, append([]string{"--server", g.url, "--timeout", "5s"}, args...)...)
		cmd.Env = append(os.Environ(), "NATS_CONTEXT=", "HOME="+t.TempDir())
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("nats %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	run("stream", "add", "ORDERS", "--subjects", "orders.>", "--defaults")
	run("pub", "orders.new", "order {{Count}}", "--count", "3")
	if out := run("pub", "orders.new", "order 4", "--jetstream"); !strings.Contains(out, "Sequence: 4") {
		t.Errorf("nats pub --jetstream: %s", out)
	}
	run("consumer", "add", "ORDERS", "proc", "--pull", "--defaults")
	out := run("consumer", "next", "ORDERS", "proc", "--count", "3")
	for _, want := range []string{"order 1", "order 2", "order 3", "Acknowledged message"} {
		if !strings.Contains(out, want) {
			t.Errorf("nats consumer next lacks %q:\n%s", want, out)
		}
	}

	var si struct {
		Config struct {
			Name     string   `json:"name"`
			Subjects []string `json:"subjects"`
		} `json:"config"`
		State struct {
			Msgs    uint64 `json:"messages"`
			LastSeq uint64 `json:"last_seq"`
		} `json:"state"`
	}
	if err := json.Unmarshal([]byte(run("stream", "info", "ORDERS", "--json")), &si); err != nil {
		t.Fatal(err)
	}
	if si.Config.Name != "ORDERS" || si.State.Msgs != 4 || si.State.LastSeq != 4 {
		t.Errorf("nats stream info: %+v", si)
	}
	var ci struct {
		NumPending    uint64 `json:"num_pending"`
		NumAckPending int    `json:"num_ack_pending"`
		AckFloor      struct {
			Stream uint64 `json:"stream_seq"`
		} `json:"ack_floor"`
	}
	if err := json.Unmarshal([]byte(run("consumer", "info", "ORDERS", "proc", "--json")), &ci); err != nil {
		t.Fatal(err)
	}
	if ci.NumPending != 1 || ci.NumAckPending != 0 || ci.AckFloor.Stream != 3 {
		t.Errorf("nats consumer info: %+v", ci)
	}
	if out := run("stream", "ls", "--names"); !strings.Contains(out, "ORDERS") {
		t.Errorf("nats stream ls: %s", out)
	}
	run("stream", "get", "ORDERS", "2")
	run("stream", "rmm", "ORDERS", "1", "--force")
	run("stream", "purge", "ORDERS", "--force")
	run("consumer", "rm", "ORDERS", "proc", "--force")
	run("stream", "rm", "ORDERS", "--force")
	if _, err := g.b.Stream("ORDERS"); err == nil {
		t.Error("stream survived nats stream rm")
	}
}
