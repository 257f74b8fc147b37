package log

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestSegmentRollAndLookupAcrossSegments(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, testOptions())
	const n = 3000
	appendN(t, l, 0, n, 100, 20)
	st := l.Stats()
	if st.Segments < 4 {
		t.Fatalf("want several segments, got %d", st.Segments)
	}
	segs := l.segments()
	for i, s := range segs {
		if _, err := os.Stat(filepath.Join(dir, segmentName(s.base, segmentExt))); err != nil {
			t.Fatalf("segment file %d: %v", s.base, err)
		}
		if i < len(segs)-1 {
			if s.next.Load() != segs[i+1].base {
				t.Fatalf("segment %d ends at %d, next starts at %d", s.base, s.next.Load(), segs[i+1].base)
			}
			for _, ext := range []string{indexExt, timeIndexExt} {
				if _, err := os.Stat(filepath.Join(dir, segmentName(s.base, ext))); err != nil {
					t.Fatalf("sealed segment %d lacks %s: %v", s.base, ext, err)
				}
			}
		}
	}
	// Every offset, including segment boundaries, is found by a fresh seek.
	offs := []int64{0, 1, n / 2, n - 1}
	for _, s := range segs[1:] {
		offs = append(offs, s.base-1, s.base, s.base+1)
	}
	r, err := l.NewReader(0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var rec Record
	for _, off := range offs {
		if err := r.SeekOffset(off); err != nil {
			t.Fatalf("seek %d: %v", off, err)
		}
		if err := r.Next(&rec); err != nil {
			t.Fatalf("next at %d: %v", off, err)
		}
		want := testRecord(off, 100)
		if rec.Offset != off || sameRecord(&rec, &want) != nil {
			t.Fatalf("seek %d read offset %d", off, rec.Offset)
		}
	}
	checkRange(t, l, 0, n, 100)
}

func TestSeekOutOfRange(t *testing.T) {
	l := openTest(t, t.TempDir(), testOptions())
	appendN(t, l, 0, 10, 10, 10)
	for _, off := range []int64{-1, 11, 1 << 40} {
		if _, err := l.NewReader(off); !errors.Is(err, ErrOffsetOutOfRange) {
			t.Errorf("reader at %d: got %v", off, err)
		}
	}
	r, err := l.NewReader(10)
	if err != nil {
		t.Fatalf("reader at the tail: %v", err)
	}
	defer r.Close()
	expectEOF(t, r)
}

func TestReopenKeepsRecordsAndIndex(t *testing.T) {
	for _, comp := range []Compression{CompressNone, CompressS2, CompressZstd} {
		t.Run(comp.String(), func(t *testing.T) {
			dir := t.TempDir()
			opts := testOptions()
			opts.Compression = comp
			l := openTest(t, dir, opts)
			appendN(t, l, 0, 2000, 120, 25)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			l = openTest(t, dir, opts)
			rep := l.Recovery()
			if rep.Truncated || len(rep.RebuiltIndexes) != 0 || len(rep.Corrupt) != 0 {
				t.Fatalf("clean reopen reported repairs: %v", rep)
			}
			if l.NextOffset() != 2000 || rep.NextOffset != 2000 {
				t.Fatalf("next offset %d after reopen", l.NextOffset())
			}
			checkRange(t, l, 0, 2000, 120)
			checkRange(t, l, 1234, 2000, 120)
			appendN(t, l, 2000, 100, 120, 7)
			checkRange(t, l, 1990, 2100, 120)
		})
	}
}

func TestMissingOrDamagedIndexIsRebuilt(t *testing.T) {
	for _, damage := range []string{"missing", "truncated", "flipped"} {
		t.Run(damage, func(t *testing.T) {
			dir := t.TempDir()
			l := openTest(t, dir, testOptions())
			appendN(t, l, 0, 2000, 100, 20)
			base := l.segments()[1].base
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, segmentName(base, indexExt))
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			switch damage {
			case "missing":
				err = os.Remove(path)
			case "truncated":
				err = os.WriteFile(path, b[:len(b)-3], 0o644)
			case "flipped":
				b[len(b)-2] ^= 0x40
				err = os.WriteFile(path, b, 0o644)
			}
			if err != nil {
				t.Fatal(err)
			}
			l = openTest(t, dir, testOptions())
			rep := l.Recovery()
			if len(rep.RebuiltIndexes) != 1 || rep.RebuiltIndexes[0] != base {
				t.Fatalf("rebuilt %v, want [%d]", rep.RebuiltIndexes, base)
			}
			checkRange(t, l, base-5, 2000, 100)
			if _, err := os.Stat(path); err != nil {
				t.Fatalf("index not rewritten: %v", err)
			}
		})
	}
}

func TestSeekTime(t *testing.T) {
	l := openTest(t, t.TempDir(), testOptions())
	const n = 3000
	appendN(t, l, 0, n, 100, 20)
	r, err := l.NewReader(0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, tc := range []struct {
		ts   int64
		want int64
	}{
		{0, 0},
		{1_000_000, 0},
		{1_000_001, 1},
		{1_000_000 + 1500*1000, 1500},
		{1_000_000 + 1500*1000 - 1, 1500},
		{1_000_000 + (n-1)*1000, n - 1},
		{1_000_000 + n*1000, n},
	} {
		if err := r.SeekTime(tc.ts); err != nil {
			t.Fatalf("seek time %d: %v", tc.ts, err)
		}
		if r.Offset() != tc.want {
			t.Errorf("seek time %d: offset %d, want %d", tc.ts, r.Offset(), tc.want)
		}
	}
}

func TestTruncateTail(t *testing.T) {
	for _, comp := range []Compression{CompressNone, CompressZstd} {
		for _, cut := range []int64{2999, 2500, 1500, 999, 1, 0} {
			t.Run(comp.String(), func(t *testing.T) {
				dir := t.TempDir()
				opts := testOptions()
				opts.Compression = comp
				l := openTest(t, dir, opts)
				appendN(t, l, 0, 3000, 100, 30)
				if err := l.Truncate(cut); err != nil {
					t.Fatalf("truncate to %d: %v", cut, err)
				}
				if l.NextOffset() != cut {
					t.Fatalf("next %d after truncate to %d", l.NextOffset(), cut)
				}
				checkRange(t, l, 0, cut, 100)
				appendN(t, l, cut, 200, 100, 30)
				checkRange(t, l, 0, cut+200, 100)
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
				l = openTest(t, dir, opts)
				if l.NextOffset() != cut+200 {
					t.Fatalf("reopened at %d, want %d (%v)", l.NextOffset(), cut+200, l.Recovery())
				}
				checkRange(t, l, 0, cut+200, 100)
			})
		}
	}
}
