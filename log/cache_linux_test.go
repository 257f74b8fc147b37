//go:build linux

package log

import (
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// dropCache evicts the files of dir, and only those, from the page cache,
// so a benchmark can measure a cold open without touching the rest of the
// machine.
func dropCache(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			return err
		}
		err = fdatasync(f)
		if err == nil {
			err = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
		}
		f.Close()
		if err != nil {
			return err
		}
	}
	return nil
}
