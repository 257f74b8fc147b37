package log

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

const truncateOrderEnv = "LEDGE_TRUNCATE_ORDER_DIR"

// TestTruncateDeletesDurablyNewestFirst checks, by tracing the system
// calls of a truncation into a sealed segment, that the later segments are
// deleted newest first, each deletion followed by a directory fsync before
// the next deletion and before the cut segment is shortened. A crash at any
// point then leaves a prefix of the segments, never a hole in the offsets.
// It needs strace and ptrace, and is skipped without them.
func TestTruncateDeletesDurablyNewestFirst(t *testing.T) {
	if os.Getenv(truncateOrderEnv) != "" {
		t.Skip("this is the child")
	}
	if _, err := exec.LookPath("strace"); err != nil {
		t.Skip("no strace")
	}
	dir := t.TempDir()
	trace := filepath.Join(t.TempDir(), "trace")
	cmd := exec.Command("strace", append([]string{"-f", "-o", trace, "-e", "trace=openat,unlinkat,fsync,ftruncate"},
		childArgs("-test.run=^TestTruncateOrderChild$", "-test.count=1", "-test.v")...)...)
	cmd.Env = append(os.Environ(), truncateOrderEnv+"="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil && (strings.Contains(string(out), "PTRACE") || strings.Contains(string(out), "ptrace")) {
		t.Skipf("cannot trace: %s", out)
	}
	if err != nil || !strings.Contains(string(out), "--- PASS: TestTruncateOrderChild") {
		t.Fatalf("child: %v\n%s", err, out)
	}

	f, err := os.Open(trace)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	call := regexp.MustCompile(`^(?:\d+\s+)?(openat|unlinkat|fsync|ftruncate)\((.*)$`)
	logFile := regexp.MustCompile(`"[^"]*/(\d{20})\.log"`)
	var events []string
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := call.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		switch {
		case m[1] == "openat" && strings.Contains(m[2], "ledge-truncate-begin"):
			in = true
		case m[1] == "openat" && strings.Contains(m[2], "ledge-truncate-end"):
			in = false
		case !in || m[1] == "openat":
		case m[1] == "unlinkat":
			if lf := logFile.FindStringSubmatch(m[2]); lf != nil {
				base, _ := strconv.ParseInt(lf[1], 10, 64)
				events = append(events, fmt.Sprintf("unlink %d", base))
			}
		default:
			// fsync is only the directory's: segments use fdatasync.
			events = append(events, m[1])
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	unlinks, lastBase := 0, int64(-1)
	for i, e := range events {
		base, ok := strings.CutPrefix(e, "unlink ")
		if !ok {
			continue
		}
		unlinks++
		b, _ := strconv.ParseInt(base, 10, 64)
		if lastBase >= 0 && b >= lastBase {
			t.Fatalf("segment %d deleted after segment %d, not newest first: %v", b, lastBase, events)
		}
		lastBase = b
		if i+1 >= len(events) || events[i+1] != "fsync" {
			t.Fatalf("deletion of segment %s not followed by a directory fsync: %v", base, events)
		}
	}
	if unlinks < 2 {
		t.Fatalf("want at least two later segments deleted, trace: %v", events)
	}
	cut := -1
	for i, e := range events {
		if e == "ftruncate" {
			cut = i
			break
		}
	}
	if cut < 0 {
		t.Fatalf("cut segment never shortened: %v", events)
	}
	for _, e := range events[cut:] {
		if strings.HasPrefix(e, "unlink ") {
			t.Fatalf("a segment deleted after the cut: %v", events)
		}
	}
	t.Logf("truncation: %v", events)
}

// TestTruncateOrderChild truncates into the middle of the second of
// several segments, between two markers the parent finds in the trace.
func TestTruncateOrderChild(t *testing.T) {
	dir := os.Getenv(truncateOrderEnv)
	if dir == "" {
		t.Skip("run by TestTruncateDeletesDurablyNewestFirst")
	}
	l := openTest(t, dir, testOptions())
	appendN(t, l, 0, 3000, 100, 30)
	segs := l.segments()
	if len(segs) < 4 {
		t.Fatalf("only %d segments", len(segs))
	}
	cut := segs[1].base + (segs[2].base-segs[1].base)/2
	_, _ = os.Open(filepath.Join(dir, "ledge-truncate-begin"))
	if err := l.Truncate(cut); err != nil {
		t.Fatal(err)
	}
	_, _ = os.Open(filepath.Join(dir, "ledge-truncate-end"))
	checkRange(t, l, 0, cut, 100)
}
