package broker

// StorageInfo is where a stream keeps its messages and whether it can keep
// more: what monitoring asks of a stream beyond StreamInfo.
type StorageInfo struct {
	// File is true for a stream on disk, false for one in memory.
	File bool
	// Segments and DiskBytes are the log's segment files and the bytes
	// of records in them (preallocated space not counted); zero in memory.
	Segments  int
	DiskBytes int64
	// Err is the error that broke the stream's log (a failed write or
	// fsync): publishing to the stream durably fails while it is set.
	Err error
}

// Storage returns the stream's storage state. It takes no lock the
// publish path holds for long and is safe from any goroutine.
func (s *Stream) Storage() StorageInfo {
	s.mu.Lock()
	st, closed := s.st, s.closed
	s.mu.Unlock()
	if closed {
		return StorageInfo{Err: ErrClosed}
	}
	fs, ok := st.(fileStore)
	if !ok {
		return StorageInfo{}
	}
	ls := fs.l.Stats()
	return StorageInfo{File: true, Segments: ls.Segments, DiskBytes: ls.Bytes, Err: fs.l.Err()}
}

// Dir returns the folder the broker keeps its streams in.
func (b *Broker) Dir() string { return b.dir }
