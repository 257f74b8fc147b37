package log

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// The on-disk layout below is format version 1, described in docs/FORMAT.md.
// Every integer is little endian.
const (
	formatVersion = 1

	// batchMagic marks the start of a batch. A zero-filled (preallocated,
	// never written) region can therefore never parse as a batch.
	batchMagic uint16 = 0x4C47

	batchHeaderSize = 48

	hdrCRC      = 0  // uint32 CRC32C of bytes [4, length)
	hdrLength   = 4  // uint32 whole batch, header included
	hdrMagic    = 8  // uint16 batchMagic
	hdrVersion  = 10 // uint8 formatVersion
	hdrAttrs    = 11 // uint8 attributes; bits 0-2 compression
	hdrCount    = 12 // uint32 records in the batch, at least 1
	hdrBase     = 16 // int64 offset of the first record
	hdrFirstTS  = 24 // int64 timestamp of the first record, unix ns
	hdrLastTS   = 32 // int64 timestamp of the last record, unix ns
	hdrRawLen   = 40 // uint32 length of the records section uncompressed
	hdrReserved = 44 // uint32 reserved, zero in version 1

	attrCompressionMask = 0x07

	// maxRawBatch bounds the uncompressed size a decoder will accept, so a
	// damaged or hostile header cannot make a reader allocate without limit.
	maxRawBatch = 1 << 28
)

// Index files: a 16-byte header then fixed-size entries.
const (
	indexMagic      uint32 = 0x58444C49 // "ILDX"
	timeIndexMagic  uint32 = 0x49544C49 // "ILTI"
	indexHeaderSize        = 16
	offsetEntrySize        = 8  // uint32 relative offset, uint32 position
	timeEntrySize          = 12 // int64 max timestamp so far, uint32 relative offset
)

// castagnoli is the CRC32C table; the standard library uses the SSE4.2 and
// ARMv8 CRC instructions for it where the CPU has them.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// batchHeader is the decoded fixed header of one batch.
type batchHeader struct {
	crc     uint32
	length  uint32
	attrs   uint8
	count   uint32
	base    int64
	firstTS int64
	lastTS  int64
	rawLen  uint32
}

func (h *batchHeader) next() int64              { return h.base + int64(h.count) }
func (h *batchHeader) compression() Compression { return Compression(h.attrs & attrCompressionMask) }

// putBatchHeader writes h into b[:batchHeaderSize]; the CRC is filled in
// separately once the body is final.
func putBatchHeader(b []byte, h *batchHeader) {
	_ = b[batchHeaderSize-1]
	binary.LittleEndian.PutUint32(b[hdrLength:], h.length)
	binary.LittleEndian.PutUint16(b[hdrMagic:], batchMagic)
	b[hdrVersion] = formatVersion
	b[hdrAttrs] = h.attrs
	binary.LittleEndian.PutUint32(b[hdrCount:], h.count)
	binary.LittleEndian.PutUint64(b[hdrBase:], uint64(h.base))
	binary.LittleEndian.PutUint64(b[hdrFirstTS:], uint64(h.firstTS))
	binary.LittleEndian.PutUint64(b[hdrLastTS:], uint64(h.lastTS))
	binary.LittleEndian.PutUint32(b[hdrRawLen:], h.rawLen)
	binary.LittleEndian.PutUint32(b[hdrReserved:], 0)
	binary.LittleEndian.PutUint32(b[hdrCRC:], crc32.Checksum(b[hdrLength:h.length], castagnoli))
}

// parseBatchHeader decodes and sanity-checks the header at the start of b.
// It does not check the CRC (see verifyBatch) but it does check that the
// whole batch lies within b, so callers may slice b[:h.length] safely.
func parseBatchHeader(b []byte) (batchHeader, error) {
	var h batchHeader
	if len(b) < batchHeaderSize {
		return h, fmt.Errorf("%w: short batch header (%d bytes)", ErrCorrupt, len(b))
	}
	if binary.LittleEndian.Uint16(b[hdrMagic:]) != batchMagic {
		return h, fmt.Errorf("%w: bad batch magic", ErrCorrupt)
	}
	if b[hdrVersion] != formatVersion {
		return h, fmt.Errorf("%w: unknown batch format version %d", ErrCorrupt, b[hdrVersion])
	}
	h.crc = binary.LittleEndian.Uint32(b[hdrCRC:])
	h.length = binary.LittleEndian.Uint32(b[hdrLength:])
	h.attrs = b[hdrAttrs]
	h.count = binary.LittleEndian.Uint32(b[hdrCount:])
	h.base = int64(binary.LittleEndian.Uint64(b[hdrBase:]))
	h.firstTS = int64(binary.LittleEndian.Uint64(b[hdrFirstTS:]))
	h.lastTS = int64(binary.LittleEndian.Uint64(b[hdrLastTS:]))
	h.rawLen = binary.LittleEndian.Uint32(b[hdrRawLen:])
	switch {
	case h.length < batchHeaderSize || uint64(h.length) > uint64(len(b)):
		return h, fmt.Errorf("%w: batch length %d out of bounds (%d available)", ErrCorrupt, h.length, len(b))
	case h.count == 0:
		return h, fmt.Errorf("%w: empty batch", ErrCorrupt)
	case h.base < 0 || h.base > h.base+int64(h.count):
		return h, fmt.Errorf("%w: batch base offset %d invalid", ErrCorrupt, h.base)
	case h.attrs&^attrCompressionMask != 0 || h.compression() > CompressZstd:
		return h, fmt.Errorf("%w: unknown batch attributes %#x", ErrCorrupt, h.attrs)
	case h.rawLen > maxRawBatch:
		return h, fmt.Errorf("%w: batch raw length %d too large", ErrCorrupt, h.rawLen)
	case h.compression() == CompressNone && h.rawLen != h.length-batchHeaderSize:
		return h, fmt.Errorf("%w: batch raw length %d disagrees with length %d", ErrCorrupt, h.rawLen, h.length)
	case uint64(h.count) > uint64(h.rawLen):
		// Every record takes at least one byte.
		return h, fmt.Errorf("%w: batch claims %d records in %d bytes", ErrCorrupt, h.count, h.rawLen)
	}
	return h, nil
}

// verifyBatch checks the CRC of the batch b[:h.length].
func verifyBatch(b []byte, h *batchHeader) error {
	if crc32.Checksum(b[hdrLength:h.length], castagnoli) != h.crc {
		return fmt.Errorf("%w: batch at offset %d fails its CRC", ErrCorrupt, h.base)
	}
	return nil
}
