package log

import (
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"
)

func openFDs(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot list file descriptors: %v", err)
	}
	return len(fds)
}

// TestCreateSegmentCleansUpOnDirSyncFailure makes the directory fsync of
// createSegment fail, by lowering the file descriptor limit so that the
// segment file still opens but the directory does not, and checks that
// the failed creation leaves no file descriptor, no mapping and no file.
func TestCreateSegmentCleansUpOnDirSyncFailure(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, testOptions()) // also starts the runtime's poller
	var orig syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &orig); err != nil {
		t.Skip(err)
	}
	fdsBefore, mappedBefore := openFDs(t), l.mapped.Load()

	l.writeMu.Lock()
	probe, err := os.Open(os.DevNull)
	if err != nil {
		l.writeMu.Unlock()
		t.Fatal(err)
	}
	lowest := probe.Fd() // the segment file gets this one
	_ = probe.Close()
	lim := orig
	lim.Cur = uint64(lowest) + 1
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		l.writeMu.Unlock()
		t.Skip(err)
	}
	s, err := l.createSegment(1 << 20)
	rerr := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &orig)
	l.writeMu.Unlock()
	if rerr != nil {
		t.Fatalf("restore the file limit: %v", rerr)
	}

	if err == nil || !strings.Contains(err.Error(), "sync directory") {
		t.Fatalf("createSegment with no descriptor left for the directory: %v (segment %v)", err, s)
	}
	if m := l.mapped.Load(); m != mappedBefore {
		t.Errorf("mapped bytes %d after the failure, %d before", m, mappedBefore)
	}
	if n := openFDs(t); n != fdsBefore {
		t.Errorf("%d file descriptors open after the failure, %d before", n, fdsBefore)
	}
	if _, err := os.Stat(segmentPath(dir, 1<<20, segmentExt)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("segment file left behind: %v", err)
	}
	// The log is untouched.
	appendN(t, l, 0, 10, 100, 5)
	checkRange(t, l, 0, 10, 100)
}
