package log

import (
	"os"
	"path/filepath"
	"testing"
)

// TestSyncFsyncsUnderSyncNever checks that Sync reaches the disk whatever
// the policy: under SyncNever records are acknowledged when written, and
// Sync (or Close) is how a caller makes them durable. The active segment is
// given a closed file, so an fsync attempt fails where a skipped one
// returns nil.
func TestSyncFsyncsUnderSyncNever(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, testOptions())
	appendN(t, l, 0, 10, 100, 5)
	closed, err := os.Open(filepath.Join(dir, segmentName(l.active().base, segmentExt)))
	if err != nil {
		t.Fatal(err)
	}
	if err := closed.Close(); err != nil {
		t.Fatal(err)
	}
	l.writeMu.Lock()
	s := l.active()
	f := s.f
	s.f = closed
	l.writeMu.Unlock()
	err = l.Sync()
	l.writeMu.Lock()
	s.f = f
	l.writeMu.Unlock()
	if err == nil {
		t.Fatal("Sync under SyncNever returned nil without fsyncing the segment")
	}
}
