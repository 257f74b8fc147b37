//go:build unix && !linux

package log

import (
	"os"

	"golang.org/x/sys/unix"
)

// Non-Linux Unix systems are not a target; this file keeps the package
// building there with plain, slower equivalents.

func mmapFile(f *os.File, size int) ([]byte, error) {
	if size == 0 {
		return nil, nil
	}
	return unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ, unix.MAP_SHARED)
}

func munmap(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	return unix.Munmap(b)
}

func allocate(f *os.File, size int64) error { return f.Truncate(size) }

func preallocate(f *os.File, size int64) error { return f.Truncate(size) }

func zeroRange(f *os.File, off, n int64) error { return writeZeros(f, off, n) }

func fdatasync(f *os.File) error { return f.Sync() }

// dataRange treats the whole rest of f as data.
func dataRange(f *os.File, off, end int64) (start, stop int64, ok bool) {
	return off, end, off < end
}
