package log

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

const (
	segmentExt   = ".log"
	indexExt     = ".index"
	timeIndexExt = ".timeindex"
)

// segmentName is the file name of the segment with base offset base; the
// zero padding makes lexical order offset order.
func segmentName(base int64, ext string) string {
	return fmt.Sprintf("%020d%s", base, ext)
}

// parseSegmentName returns the base offset of a segment file name.
func parseSegmentName(name string) (int64, bool) {
	s, ok := strings.CutSuffix(name, segmentExt)
	if !ok || len(s) != 20 {
		return 0, false
	}
	base, err := strconv.ParseInt(s, 10, 64)
	if err != nil || base < 0 {
		return 0, false
	}
	return base, true
}

// writeZeros overwrites [off, off+n) of f with zeros.
func writeZeros(f *os.File, off, n int64) error {
	zeros := make([]byte, min(n, 1<<20))
	for n > 0 {
		w := min(n, int64(len(zeros)))
		if _, err := f.WriteAt(zeros[:w], off); err != nil {
			return err
		}
		off += w
		n -= w
	}
	return nil
}

// syncDir makes a file creation or removal in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

func segmentPath(dir string, base int64, ext string) string {
	return filepath.Join(dir, segmentName(base, ext))
}
