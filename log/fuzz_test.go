package log

import (
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"
)

// validBatch encodes n test records into one batch with compression c.
func validBatch(tb testing.TB, base int64, n int, c Compression) []byte {
	tb.Helper()
	cd, err := newCodec(c)
	if err != nil {
		tb.Fatal(err)
	}
	defer cd.close()
	var e encoder
	e.reset(base)
	for i := 0; i < n; i++ {
		rec := testRecord(base+int64(i), 20+i)
		e.add(&rec, rec.Time)
	}
	b, err := e.finish(cd)
	if err != nil {
		tb.Fatal(err)
	}
	return append([]byte(nil), b...)
}

// decodeAll decodes a batch the way a reader does and returns the records
// it found.
func decodeAll(b []byte, c *codec) (int, error) {
	h, err := parseBatchHeader(b)
	if err != nil {
		return 0, err
	}
	if err := verifyBatch(b, &h); err != nil {
		return 0, err
	}
	recs := b[batchHeaderSize:h.length]
	if kind := h.compression(); kind != CompressNone {
		if recs, err = c.decompress(nil, recs, kind, int(h.rawLen)); err != nil {
			return 0, err
		}
	}
	var rec Record
	for i := uint32(0); i < h.count; i++ {
		if recs, err = decodeRecord(recs, &rec, h.firstTS); err != nil {
			return int(i), err
		}
	}
	return int(h.count), nil
}

func FuzzDecodeBatch(f *testing.F) {
	f.Add(validBatch(f, 0, 1, CompressNone))
	f.Add(validBatch(f, 7, 5, CompressNone))
	f.Add(validBatch(f, 1<<40, 3, CompressS2))
	f.Add(validBatch(f, 100, 4, CompressZstd))
	f.Add(make([]byte, batchHeaderSize))
	f.Add([]byte{})
	short := validBatch(f, 0, 2, CompressNone)
	f.Add(short[:len(short)-1])
	c, err := newCodec(CompressNone)
	if err != nil {
		f.Fatal(err)
	}
	defer c.close()
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = decodeAll(b, c)
		// Fix up the CRC so the fuzzer also reaches the record decoder.
		if len(b) >= batchHeaderSize {
			n := binary.LittleEndian.Uint32(b[hdrLength:])
			if n >= batchHeaderSize && uint64(n) <= uint64(len(b)) {
				binary.LittleEndian.PutUint32(b[hdrCRC:], crc32.Checksum(b[hdrLength:n], castagnoli))
				_, _ = decodeAll(b, c)
			}
		}
	})
}

func FuzzRecover(f *testing.F) {
	two := append(validBatch(f, 0, 3, CompressNone), validBatch(f, 3, 2, CompressS2)...)
	f.Add(two, false)
	f.Add(two, true)
	f.Add(two[:len(two)-7], false)
	f.Add(validBatch(f, 5, 2, CompressZstd), false)
	f.Add([]byte("garbage"), true)
	f.Add(make([]byte, 4096), false)
	f.Fuzz(func(t *testing.T, data []byte, sealed bool) {
		if len(data) > 1<<20 {
			return
		}
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, segmentName(0, segmentExt)), data, 0o644); err != nil {
			t.Fatal(err)
		}
		if sealed {
			// A later (empty) segment makes the fuzzed one sealed, so the
			// index rebuild path runs on it.
			if err := os.WriteFile(filepath.Join(dir, segmentName(1000, segmentExt)), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		l, err := Open(dir, testOptions())
		if err != nil {
			return // a clear error is an acceptable outcome
		}
		defer l.Close()
		r, err := l.NewReader(l.FirstOffset())
		if err != nil {
			t.Fatalf("reader on a recovered log: %v", err)
		}
		defer r.Close()
		var rec Record
		for i := 0; i < 10000; i++ {
			if err := r.Next(&rec); err != nil {
				break
			}
		}
		if _, err := l.Append(&Record{Subject: []byte("s"), Payload: []byte("p")}, nil); err != nil {
			t.Fatalf("append after recovery: %v", err)
		}
	})
}
