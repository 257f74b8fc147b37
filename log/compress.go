package log

import (
	"fmt"
	"sync"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// Compression selects how a stream's batches are compressed. It is chosen
// per stream and recorded per batch, so a stream may be reopened with a
// different setting and still read its older batches.
type Compression uint8

const (
	// CompressNone stores records as written; reads are zero-copy.
	CompressNone Compression = 0
	// CompressS2 uses S2 (a faster Snappy): cheap on small ARM cores.
	CompressS2 Compression = 1
	// CompressZstd uses zstd at its fastest level: smaller output, which
	// saves flash writes and uplink bytes, for more CPU.
	CompressZstd Compression = 2
)

// String returns the setting's name as used in configuration.
func (c Compression) String() string {
	switch c {
	case CompressNone:
		return "none"
	case CompressS2:
		return "s2"
	case CompressZstd:
		return "zstd"
	}
	return fmt.Sprintf("compression(%d)", uint8(c))
}

// codec holds the (expensive to build) encoder and decoder state of one
// log. compress is called only by the commit goroutine; decompress is safe
// for concurrent use.
type codec struct {
	kind Compression
	zenc *zstd.Encoder
	// The zstd decoder is built on first use: most streams never need it,
	// and it costs memory an edge box would rather keep.
	zdecOnce sync.Once
	zdec     *zstd.Decoder
	zdecErr  error
	// zmu is held shared while the decoder runs and exclusively by close,
	// so a Reader that outlives its Log gets ErrClosed, never a closed or
	// missing decoder.
	zmu    sync.RWMutex
	closed bool
}

func newCodec(kind Compression) (*codec, error) {
	c := &codec{kind: kind}
	var err error
	if kind == CompressZstd {
		c.zenc, err = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest),
			zstd.WithEncoderConcurrency(1), zstd.WithLowerEncoderMem(true))
		if err != nil {
			return nil, fmt.Errorf("zstd encoder: %w", err)
		}
	}
	return c, nil
}

func (c *codec) close() {
	if c.zenc != nil {
		c.zenc.Close()
	}
	c.zmu.Lock()
	defer c.zmu.Unlock()
	c.closed = true
	c.zdecOnce.Do(func() {})
	if c.zdec != nil {
		c.zdec.Close()
	}
}

// compress returns dst[:batchHeaderSize] followed by the compressed src.
func (c *codec) compress(dst, src []byte) ([]byte, error) {
	if cap(dst) < batchHeaderSize {
		dst = make([]byte, 0, batchHeaderSize+len(src))
	}
	dst = dst[:batchHeaderSize]
	switch c.kind {
	case CompressS2:
		need := batchHeaderSize + s2.MaxEncodedLen(len(src))
		if need < 0 {
			return nil, fmt.Errorf("s2: batch of %d bytes too large", len(src))
		}
		if cap(dst) < need {
			dst = make([]byte, batchHeaderSize, need)
		}
		enc := s2.Encode(dst[batchHeaderSize:need], src)
		return dst[:batchHeaderSize+len(enc)], nil
	case CompressZstd:
		return c.zenc.EncodeAll(src, dst), nil
	}
	return append(dst, src...), nil
}

// decompress appends the records section of a compressed batch to dst.
func (c *codec) decompress(dst, src []byte, kind Compression, rawLen int) ([]byte, error) {
	start := len(dst)
	switch kind {
	case CompressS2:
		n, err := s2.DecodedLen(src)
		if err != nil || n != rawLen {
			return dst, fmt.Errorf("%w: s2 batch length mismatch", ErrCorrupt)
		}
		if cap(dst)-start < n {
			grown := make([]byte, start, start+n)
			copy(grown, dst)
			dst = grown
		}
		out, err := s2.Decode(dst[start:start+n], src)
		if err != nil {
			return dst, fmt.Errorf("%w: s2: %v", ErrCorrupt, err)
		}
		return dst[:start+len(out)], nil
	case CompressZstd:
		c.zmu.RLock()
		defer c.zmu.RUnlock()
		if c.closed {
			return dst, ErrClosed
		}
		// Batches written under another setting must stay readable, so the
		// decoder does not depend on c.kind.
		c.zdecOnce.Do(func() {
			c.zdec, c.zdecErr = zstd.NewReader(nil, zstd.WithDecoderConcurrency(2),
				zstd.WithDecoderMaxMemory(maxRawBatch), zstd.WithDecoderLowmem(true))
		})
		if c.zdecErr != nil {
			return dst, fmt.Errorf("zstd decoder: %w", c.zdecErr)
		}
		out, err := c.zdec.DecodeAll(src, dst)
		if err != nil {
			return dst, fmt.Errorf("%w: zstd: %v", ErrCorrupt, err)
		}
		if len(out)-start != rawLen {
			return dst, fmt.Errorf("%w: zstd batch length mismatch", ErrCorrupt)
		}
		return out, nil
	}
	return dst, fmt.Errorf("%w: unknown compression %d", ErrCorrupt, kind)
}
