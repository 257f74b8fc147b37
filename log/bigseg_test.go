package log

import (
	"os"
	"path/filepath"
	"testing"
)

// TestOversizedSealedSegmentIsRefused gives a stream a sealed segment file
// larger than any segment can be (a damaged directory, or a file that is
// not ours). Open must refuse it as it refuses an oversized active segment:
// positions in a segment are 32-bit, and on 32-bit platforms the length
// does not even fit an int, so mapping it maps a wrapped-around length that
// readers then slice past.
func TestOversizedSealedSegmentIsRefused(t *testing.T) {
	for _, size := range []int64{1<<32 + 4096, maxSegmentBytes + 1} {
		dir := t.TempDir()
		f, err := os.Create(filepath.Join(dir, segmentName(0, segmentExt)))
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Truncate(size); err != nil {
			f.Close()
			t.Skipf("sparse file of %d bytes: %v", size, err)
		}
		f.Close()
		if err := os.WriteFile(filepath.Join(dir, segmentName(1000, segmentExt)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		l, err := Open(dir, testOptions())
		if err == nil {
			r, rerr := l.NewReader(0)
			if rerr == nil {
				var rec Record
				rerr = r.Next(&rec)
				r.Close()
			}
			l.Close()
			t.Fatalf("opened a stream with a %d-byte sealed segment (first read: %v)", size, rerr)
		}
	}
}
