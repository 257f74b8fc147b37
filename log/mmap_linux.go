//go:build linux

package log

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// mmapFile maps the first size bytes of f read-only and shared, so readers
// see what the writer puts in the page cache with pwrite.
func mmapFile(f *os.File, size int) ([]byte, error) {
	if size == 0 {
		return nil, nil
	}
	b, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, err
	}
	// Consumers read a stream front to back; ask for aggressive readahead.
	_ = unix.Madvise(b, unix.MADV_SEQUENTIAL)
	return b, nil
}

func munmap(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	return unix.Munmap(b)
}

// allocate reserves size bytes for f so that appends do not allocate
// blocks (and, on flash, do not fragment) one write at a time. Filesystems
// without fallocate get a sparse file of the same size instead. It fails
// with ENOSPC on a full disk: createSegment uses it, and a new segment is
// better not made than made without its space.
func allocate(f *os.File, size int64) error {
	err := unix.Fallocate(int(f.Fd()), 0, 0, size)
	if err == nil {
		return nil
	}
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EINVAL) {
		return f.Truncate(size)
	}
	return err
}

// preallocate is allocate for Open, which uses it to extend the last
// segment to the segment size: on ENOSPC it falls back to the sparse
// extension used where fallocate is unsupported. Failing there would keep
// a stream on a full disk from opening, and so keep retention from ever
// running to free the space; sparse, the stream opens and its appends
// allocate blocks as they write, failing cleanly with ENOSPC if there are
// still none.
func preallocate(f *os.File, size int64) error {
	err := allocate(f, size)
	if errors.Is(err, unix.ENOSPC) {
		return f.Truncate(size)
	}
	return err
}

// zeroRange makes bytes [off, off+n) of f read as zeros without changing
// its size: a punched hole where the filesystem supports it (one metadata
// operation, no flash wear), written zeros otherwise.
func zeroRange(f *os.File, off, n int64) error {
	if n <= 0 {
		return nil
	}
	err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n)
	if err == nil {
		// Re-reserve the blocks so later appends still find them allocated.
		_ = unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_KEEP_SIZE, off, n)
		return nil
	}
	return writeZeros(f, off, n)
}

// fdatasync flushes f's data (and the metadata needed to read it back).
func fdatasync(f *os.File) error {
	for {
		err := unix.Fdatasync(int(f.Fd()))
		if err != unix.EINTR {
			return err
		}
	}
}

// dataRange returns the first range [start, stop) of f at or after off and
// before end that may hold data, skipping holes (SEEK_DATA, SEEK_HOLE), or
// ok false if the rest up to end reads as zeros. Where the filesystem
// cannot tell, the whole rest is data.
func dataRange(f *os.File, off, end int64) (start, stop int64, ok bool) {
	fd := int(f.Fd())
	start, err := unix.Seek(fd, off, unix.SEEK_DATA)
	if errors.Is(err, unix.ENXIO) {
		return 0, 0, false
	}
	if err != nil || start < off {
		return off, end, true
	}
	if start >= end {
		return 0, 0, false
	}
	stop, err = unix.Seek(fd, start, unix.SEEK_HOLE)
	if err != nil || stop <= start || stop > end {
		stop = end
	}
	return start, stop, true
}
