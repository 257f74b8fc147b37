package log

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"testing"
)

// testOptions are small enough that a few hundred records roll segments.
func testOptions() Options {
	return Options{SegmentBytes: 64 << 10, BatchBytes: 8 << 10, MaxRecordBytes: 8 << 10, IndexIntervalBytes: 512, Sync: SyncNever}
}

func openTest(t testing.TB, dir string, opts Options) *Log {
	t.Helper()
	l, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// testRecord is the deterministic record for offset off.
func testRecord(off int64, payloadLen int) Record {
	p := make([]byte, payloadLen)
	for i := range p {
		p[i] = byte(off*7 + int64(i))
	}
	rec := Record{Subject: fmt.Appendf(nil, "sensors.%d.temp", off%5), Payload: p, Time: 1_000_000 + off*1000}
	if off%3 == 0 {
		rec.Headers = []Header{{Key: []byte("id"), Value: fmt.Appendf(nil, "%d", off)}, {Key: []byte("k"), Value: nil}}
	}
	return rec
}

// appendN appends records [from, from+n) one batch per call of size batch
// and waits until they are acknowledged.
func appendN(t testing.TB, l *Log, from int64, n, payloadLen, batch int) {
	t.Helper()
	recs := make([]Record, 0, batch)
	var last int64 = -1
	for i := 0; i < n; i++ {
		recs = append(recs, testRecord(from+int64(i), payloadLen))
		if len(recs) == batch || i == n-1 {
			first, err := l.AppendBatch(recs, nil)
			if err != nil {
				t.Fatalf("append: %v", err)
			}
			if want := from + int64(i+1-len(recs)); first != want {
				t.Fatalf("append returned offset %d, want %d", first, want)
			}
			last = first + int64(len(recs)) - 1
			recs = recs[:0]
		}
	}
	if last >= 0 {
		if err := l.WaitDurable(last); err != nil {
			t.Fatalf("wait durable %d: %v", last, err)
		}
	}
}

func sameRecord(a, b *Record) error {
	if !bytes.Equal(a.Subject, b.Subject) || !bytes.Equal(a.Payload, b.Payload) || a.Time != b.Time {
		return fmt.Errorf("record differs: subject %q/%q time %d/%d payload len %d/%d", a.Subject, b.Subject, a.Time, b.Time, len(a.Payload), len(b.Payload))
	}
	if len(a.Headers) != len(b.Headers) {
		return fmt.Errorf("headers differ: %d vs %d", len(a.Headers), len(b.Headers))
	}
	for i := range a.Headers {
		if !bytes.Equal(a.Headers[i].Key, b.Headers[i].Key) || !bytes.Equal(a.Headers[i].Value, b.Headers[i].Value) {
			return fmt.Errorf("header %d differs", i)
		}
	}
	return nil
}

// checkRange reads [from, to) and compares every record with testRecord.
func checkRange(t testing.TB, l *Log, from, to int64, payloadLen int) {
	t.Helper()
	r, err := l.NewReader(from)
	if err != nil {
		t.Fatalf("reader at %d: %v", from, err)
	}
	defer r.Close()
	var rec Record
	for off := from; off < to; off++ {
		if err := r.Next(&rec); err != nil {
			t.Fatalf("next at %d: %v", off, err)
		}
		if rec.Offset != off {
			t.Fatalf("got offset %d, want %d", rec.Offset, off)
		}
		want := testRecord(off, payloadLen)
		if err := sameRecord(&rec, &want); err != nil {
			t.Fatalf("offset %d: %v", off, err)
		}
	}
}

func expectEOF(t testing.TB, r *Reader) {
	t.Helper()
	var rec Record
	if err := r.Next(&rec); !errors.Is(err, io.EOF) {
		t.Fatalf("want io.EOF, got %v (offset %d)", err, rec.Offset)
	}
}

// childArgs returns the command line that runs this test binary again with
// args: under qemu-user without binfmt_misc an ARM binary cannot be
// executed directly, so the emulator named by LEDGE_TEST_EMULATOR (say
// qemu-arm-static) is put in front.
func childArgs(args ...string) []string {
	cmd := append([]string{os.Args[0]}, args...)
	if emu := os.Getenv("LEDGE_TEST_EMULATOR"); emu != "" {
		cmd = append([]string{emu}, cmd...)
	}
	return cmd
}
