package log

import (
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// batchBounds lists the byte position and first offset of every batch in
// a segment file.
func batchBounds(t *testing.T, data []byte, base int64) (pos, offs []int64) {
	t.Helper()
	r := scanSegment(data, base, 1)
	if lastNonZero(data[r.end:]) >= 0 {
		t.Fatalf("scan before damage: %v", r.stop)
	}
	p := int64(0)
	for p < r.end {
		h, err := parseBatchHeader(data[p:])
		if err != nil {
			t.Fatal(err)
		}
		pos, offs = append(pos, p), append(offs, h.base)
		p += int64(h.length)
	}
	return pos, offs
}

func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func TestScanSegmentStopsAtDamage(t *testing.T) {
	var e encoder
	var seg []byte
	for b := 0; b < 3; b++ {
		e.reset(int64(b * 2))
		for i := 0; i < 2; i++ {
			rec := testRecord(int64(b*2+i), 30)
			e.add(&rec, rec.Time)
		}
		out, err := e.finish(nil)
		if err != nil {
			t.Fatal(err)
		}
		seg = append(seg, out...)
	}
	clean := scanSegment(append(append([]byte(nil), seg...), make([]byte, 100)...), 0, 1)
	for _, tc := range []struct {
		name     string
		data     []byte
		wantNext int64
	}{
		{"clean", seg, 6},
		{"zero tail", append(append([]byte(nil), seg...), make([]byte, 100)...), 6},
		{"torn last batch", seg[:len(seg)-5], 4},
		{"flip in second batch", flip(seg, int(clean.idx.offsets[1].pos)+60), 2},
		{"flip in first header", flip(seg, hdrCount), 0},
		{"empty", nil, 0},
		{"garbage", []byte("not a segment at all, not even close to one......"), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := scanSegment(tc.data, 0, 1)
			if r.next != tc.wantNext {
				t.Fatalf("next %d, want %d (stop: %v)", r.next, tc.wantNext, r.stop)
			}
		})
	}
}

func flip(b []byte, at int) []byte {
	c := append([]byte(nil), b...)
	c[at] ^= 0x10
	return c
}

// TestCorruptTailIsTruncated damages the active segment's tail at random
// (byte flips and cut files) and checks that recovery keeps every batch
// before the damage, reports the cut, and that appends continue.
func TestCorruptTailIsTruncated(t *testing.T) {
	src := t.TempDir()
	opts := testOptions()
	opts.Sync = SyncAlways
	l := openTest(t, src, opts)
	appendN(t, l, 0, 1500, 100, 10)
	active := l.active()
	base := active.base
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	segFile := segmentName(base, segmentExt)
	orig, err := os.ReadFile(filepath.Join(src, segFile))
	if err != nil {
		t.Fatal(err)
	}
	pos, offs := batchBounds(t, orig, base)
	end := scanSegment(orig, base, 1).end
	rng := rand.New(rand.NewSource(1))
	for trial := 0; trial < 40; trial++ {
		dir := copyDir(t, src)
		path := filepath.Join(dir, segFile)
		// Damage lands in the last third of the written data.
		at := end - 1 - rng.Int63n(end/3)
		cut := trial%2 == 1
		if cut {
			if err := os.Truncate(path, at); err != nil {
				t.Fatal(err)
			}
		} else {
			b := append([]byte(nil), orig...)
			b[at] ^= byte(1 + rng.Intn(255))
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		// The batch holding the damaged byte and everything after it go.
		i := len(pos) - 1
		for pos[i] > at {
			i--
		}
		want := offs[i]
		l, err := Open(dir, opts)
		if err != nil {
			t.Fatalf("trial %d: open: %v", trial, err)
		}
		rep := l.Recovery()
		if l.NextOffset() != want {
			l.Close()
			t.Fatalf("trial %d (cut=%v at %d): next %d, want %d; %v", trial, cut, at, l.NextOffset(), want, rep)
		}
		if !cut && (!rep.Truncated || rep.TruncatedSegment != base || !strings.Contains(rep.String(), "truncated segment")) {
			t.Fatalf("trial %d: flip not reported: %v", trial, rep)
		}
		checkRange(t, l, 0, want, 100)
		appendN(t, l, want, 20, 100, 4)
		checkRange(t, l, want-3, want+20, 100)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		l = openTest(t, dir, opts)
		if rep := l.Recovery(); rep.Truncated || l.NextOffset() != want+20 {
			t.Fatalf("trial %d: second reopen: next %d; %v", trial, l.NextOffset(), rep)
		}
		checkRange(t, l, 0, want+20, 100)
		l.Close()
	}
}

// TestCorruptSealedSegmentIsReported flips a byte in the middle of a sealed
// segment: reads report it with stream, segment and offset, and the stream
// stays readable after the damage.
func TestCorruptSealedSegmentIsReported(t *testing.T) {
	for _, dropIndex := range []bool{false, true} {
		name := "index intact"
		if dropIndex {
			name = "index rebuilt"
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			opts := testOptions()
			opts.Name = "telemetry"
			l := openTest(t, dir, opts)
			appendN(t, l, 0, 3000, 100, 10)
			victim := l.segments()[1]
			base, size := victim.base, victim.size.Load()
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, segmentName(base, segmentExt))
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			pos, offs := batchBounds(t, b, base)
			at := size / 2
			b[at] ^= 0xFF
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			if dropIndex {
				if err := os.Remove(filepath.Join(dir, segmentName(base, indexExt))); err != nil {
					t.Fatal(err)
				}
			}
			bad := 0
			for bad+1 < len(pos) && pos[bad+1] <= at {
				bad++
			}
			l = openTest(t, dir, opts)
			if dropIndex {
				rep := l.Recovery()
				var ce *CorruptError
				if len(rep.Corrupt) != 1 || !errors.As(rep.Corrupt[0], &ce) || ce.Segment != base || ce.Offset != offs[bad] {
					t.Fatalf("recovery report: %v", rep)
				}
			}
			checkRange(t, l, 0, offs[bad], 100)
			r, err := l.NewReader(0)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			var rec Record
			var ce *CorruptError
			for {
				err = r.Next(&rec)
				if err != nil {
					break
				}
			}
			if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) {
				t.Fatalf("want a CorruptError, got %v", err)
			}
			if ce.Stream != "telemetry" || ce.Segment != base || ce.Offset != offs[bad] || ce.Position != pos[bad] {
				t.Fatalf("error names %q segment %d offset %d byte %d; want segment %d offset %d byte %d",
					ce.Stream, ce.Segment, ce.Offset, ce.Position, base, offs[bad], pos[bad])
			}
			if msg := err.Error(); !strings.Contains(msg, `"telemetry"`) || !strings.Contains(msg, fmt.Sprintf("segment %d", base)) {
				t.Fatalf("error text %q does not name the stream and segment", msg)
			}
			if ce.Next <= offs[bad] || ce.Next > victim.next.Load() {
				t.Fatalf("resume offset %d out of the damaged segment", ce.Next)
			}
			if err := r.SeekOffset(ce.Next); err != nil {
				t.Fatal(err)
			}
			for off := ce.Next; off < 3000; off++ {
				if err := r.Next(&rec); err != nil || rec.Offset != off {
					t.Fatalf("after the damage, offset %d: %v", off, err)
				}
			}
			if err := r.Next(&rec); err != io.EOF {
				t.Fatalf("end: %v", err)
			}
		})
	}
}
