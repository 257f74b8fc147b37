package log

import (
	"errors"
	"testing"
)

// TestReaderAfterLogClose reads a zstd stream with a Reader opened before
// the Log was closed. The Reader still holds the segment's mapping, so it
// may go on reading or report ErrClosed, but it must not crash on the
// log's released decoder.
func TestReaderAfterLogClose(t *testing.T) {
	for _, readFirst := range []bool{false, true} {
		opts := testOptions()
		opts.Compression = CompressZstd
		l := openTest(t, t.TempDir(), opts)
		appendN(t, l, 0, 200, 100, 50)
		r, err := l.NewReader(0)
		if err != nil {
			t.Fatal(err)
		}
		var rec Record
		if readFirst {
			// The decoder exists before Close, and Close closes it.
			if err := r.Next(&rec); err != nil {
				t.Fatal(err)
			}
			r.Release()
			if err := r.SeekOffset(100); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		for {
			err = r.Next(&rec)
			if err != nil {
				break
			}
		}
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("read after the log closed (decoder used before: %v): %v", readFirst, err)
		}
		r.Close()
	}
}
