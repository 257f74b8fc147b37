//go:build unix && !linux

package log

// dropCache is a no-op where posix_fadvise is not wired up; cold-open
// figures are only meaningful on Linux.
func dropCache(string) error { return nil }
