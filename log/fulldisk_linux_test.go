package log

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestRollOnFullDisk runs TestRollOnFullDiskChild on a small tmpfs of its
// own, mounted in a user and mount namespace; it is skipped where the
// system does not allow those.
func TestRollOnFullDisk(t *testing.T) { runOnTinyFS(t, "TestRollOnFullDiskChild") }

// TestRollOnFullDiskChild fills a 192 KiB file system until only the
// sealing of the active segment fits, with the oldest segment below the
// retention floor. The next roll must delete that segment before it
// allocates the new one: allocating first fails on the full disk and
// breaks the log for good, though retention was about to free the room.
func TestRollOnFullDiskChild(t *testing.T) {
	dir := os.Getenv(tinyFSEnv)
	if dir == "" {
		t.Skip("run by TestRollOnFullDisk")
	}
	opts := Options{SegmentBytes: 64 << 10, BatchBytes: 4 << 10, MaxRecordBytes: 4 << 10, Sync: SyncNever}
	l, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var n int64
	// appendUntil appends until the log has rolled rolls times more.
	appendUntil := func(rolls int) error {
		base := l.active().base
		for rolls > 0 {
			rec := testRecord(n, 1000)
			if _, err := l.Append(&rec, nil); err != nil {
				return err
			}
			if err := l.Sync(); err != nil {
				return err
			}
			n++
			if b := l.active().base; b != base {
				base = b
				rolls--
			}
		}
		return nil
	}
	if err := appendUntil(1); err != nil {
		t.Fatal(err)
	}
	l.SetFloor(l.active().base)

	filler, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	defer filler.Close()
	page := make([]byte, 4096)
	var filled int64
	for {
		if _, err := filler.Write(page); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
		filled += int64(len(page))
	}
	// Leave room for the sealing (its two index files) but not for a new
	// segment.
	if err := filler.Truncate(filled - 12<<10); err != nil {
		t.Fatal(err)
	}
	if err := appendUntil(1); err != nil {
		var st syscall.Statfs_t
		_ = syscall.Statfs(dir, &st)
		t.Fatalf("roll with %d bytes free and %d segments, the oldest below the floor: %v",
			int64(st.Bavail)*int64(st.Bsize), len(l.segments()), err)
	}
	if segs := l.segments(); len(segs) != 2 || segs[0].base == 0 {
		t.Fatalf("segments after the roll: %d, first at %d", len(segs), segs[0].base)
	}
	checkRange(t, l, l.FirstOffset(), n, 1000)
	fmt.Println("rolled on a full disk")
}
