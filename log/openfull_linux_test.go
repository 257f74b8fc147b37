package log

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestOpenOnFullDisk runs TestOpenOnFullDiskChild on a small tmpfs of its
// own, mounted in a user and mount namespace, as TestRollOnFullDisk does;
// it is skipped where the system does not allow those.
func TestOpenOnFullDisk(t *testing.T) { runOnTinyFS(t, "TestOpenOnFullDiskChild") }

// TestOpenOnFullDiskChild opens a stream whose last segment is shorter
// than the segment size, as a roll leaves it when it has sealed the
// segment and then finds no room for the next one, on a file system with
// no free block. Open must extend it sparsely rather than fail on the
// fallocate: a stream that cannot open cannot run retention to free space.
func TestOpenOnFullDiskChild(t *testing.T) {
	dir := os.Getenv(tinyFSEnv)
	if dir == "" {
		t.Skip("run by TestOpenOnFullDisk")
	}
	opts := Options{SegmentBytes: 64 << 10, BatchBytes: 4 << 10, MaxRecordBytes: 4 << 10, Sync: SyncAlways}
	l, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 0, 20, 1000, 5)
	used := l.Stats().Bytes
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(segmentPath(dir, 0, segmentExt), used); err != nil {
		t.Fatal(err)
	}

	filler, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	defer filler.Close()
	page := make([]byte, 4096)
	for {
		if _, err := filler.Write(page); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}

	l, err = Open(dir, opts)
	if err != nil {
		t.Fatalf("open with the disk full: %v", err)
	}
	defer l.Close()
	if l.NextOffset() != 20 {
		t.Fatalf("next offset %d, want 20", l.NextOffset())
	}
	checkRange(t, l, 0, 20, 1000)

	// Once there is room again, the sparse segment takes appends.
	if err := filler.Truncate(0); err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 20, 20, 1000, 5)
	checkRange(t, l, 0, 40, 1000)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, err = Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	checkRange(t, l, 0, 40, 1000)
}
