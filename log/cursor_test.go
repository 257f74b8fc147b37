package log

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

func openCursorsT(t testing.TB, dir string) *CursorStore {
	t.Helper()
	c, _, err := OpenCursors(dir)
	if err != nil {
		t.Fatalf("OpenCursors: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestCursorCommitSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	c := openCursorsT(t, dir)
	steps := []struct {
		name string
		off  int64
	}{
		{"orders-worker", 10},
		{"telemetry-uplink", 0},
		{"orders-worker", 42},
		{strings.Repeat("n", MaxCursorName), 1<<63 - 1},
	}
	for _, s := range steps {
		if err := c.Commit(s.name, s.off); err != nil {
			t.Fatalf("Commit(%q, %d): %v", s.name, s.off, err)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}

	re := openCursorsT(t, dir)
	want := map[string]int64{
		"orders-worker":                    42,
		"telemetry-uplink":                 0,
		strings.Repeat("n", MaxCursorName): 1<<63 - 1,
	}
	got := re.All()
	if len(got) != len(want) {
		t.Fatalf("reopened cursors = %v, want %v", got, want)
	}
	for k, v := range want {
		if off, ok := re.Get(k); !ok || off != v {
			t.Errorf("Get(%q) = %d, %v; want %d, true", k, off, ok, v)
		}
	}
	if min, ok := re.Min(); !ok || min != 0 {
		t.Errorf("Min() = %d, %v; want 0, true", min, ok)
	}
}

func TestCursorDelete(t *testing.T) {
	dir := t.TempDir()
	c := openCursorsT(t, dir)
	cursorMust(t, c.Commit("a", 1))
	cursorMust(t, c.Commit("b", 2))
	cursorMust(t, c.Delete("a"))
	cursorMust(t, c.Delete("never-existed"))
	c.Close()

	re := openCursorsT(t, dir)
	if _, ok := re.Get("a"); ok {
		t.Error("deleted cursor a came back after reopen")
	}
	if got := re.Names(); len(got) != 1 || got[0] != "b" {
		t.Errorf("Names() = %v, want [b]", got)
	}
	if min, ok := re.Min(); !ok || min != 2 {
		t.Errorf("Min() = %d, %v; want 2, true", min, ok)
	}
}

func TestCursorBadInput(t *testing.T) {
	c := openCursorsT(t, t.TempDir())
	cases := []struct {
		name    string
		call    func() error
		wantErr error
	}{
		{"empty name commit", func() error { return c.Commit("", 1) }, ErrCursorName},
		{"long name commit", func() error { return c.Commit(strings.Repeat("x", MaxCursorName+1), 1) }, ErrCursorName},
		{"empty name delete", func() error { return c.Delete("") }, ErrCursorName},
	}
	for _, tc := range cases {
		if err := tc.call(); !errors.Is(err, tc.wantErr) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.wantErr)
		}
	}
	if len(c.All()) != 0 {
		t.Errorf("rejected commits changed the store: %v", c.All())
	}
	c.Close()
	if err := c.Commit("late", 1); !errors.Is(err, ErrClosed) {
		t.Errorf("Commit after Close: err = %v, want ErrClosed", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestCursorTornTail damages the end of the journal the way a crash in the
// middle of a write can, and checks that recovery keeps every complete entry
// before the damage and that the store keeps working.
func TestCursorTornTail(t *testing.T) {
	cases := []struct {
		name   string
		damage func(b []byte) []byte
	}{
		{"half an entry", func(b []byte) []byte { return append(b, b[:9]...) }},
		{"header only", func(b []byte) []byte { return append(b, 1, 2, 3) }},
		{"zeroed tail", func(b []byte) []byte { return append(b, make([]byte, 64)...) }},
		{"flipped checksum", func(b []byte) []byte {
			e := appendCursorEntry(nil, cursorKindSet, "late", 99)
			e[0] ^= 0xff
			return append(b, e...)
		}},
		{"unknown kind", func(b []byte) []byte {
			return append(b, appendCursorEntry(nil, 7, "late", 99)...)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			c := openCursorsT(t, dir)
			cursorMust(t, c.Commit("a", 5))
			cursorMust(t, c.Commit("b", 6))
			c.Close()

			path := filepath.Join(dir, CursorFile)
			good, err := os.ReadFile(path)
			cursorMust(t, err)
			cursorMust(t, os.WriteFile(path, tc.damage(append([]byte(nil), good...)), 0o644))

			re, rec, err := OpenCursors(dir)
			if err != nil {
				t.Fatalf("OpenCursors after damage: %v", err)
			}
			defer re.Close()
			if rec.Entries != 2 || rec.TruncatedBytes == 0 {
				t.Errorf("recovery = %+v, want 2 entries and a truncated tail", rec)
			}
			if off, _ := re.Get("a"); off != 5 {
				t.Errorf("a = %d, want 5", off)
			}
			if _, ok := re.Get("late"); ok {
				t.Error("a damaged entry was applied")
			}
			cursorMust(t, re.Commit("c", 7))
			re.Close()

			again := openCursorsT(t, dir)
			if off, ok := again.Get("c"); !ok || off != 7 {
				t.Errorf("commit after recovery lost: c = %d, %v", off, ok)
			}
			if len(again.All()) != 3 {
				t.Errorf("cursors after recovery = %v, want a, b, c", again.All())
			}
		})
	}
}

func TestCursorCompaction(t *testing.T) {
	dir := t.TempDir()
	c := openCursorsT(t, dir)
	c.compactMin = 1 << 10
	path := filepath.Join(dir, CursorFile)
	// Enough commits of a few cursors to pass the compaction threshold many
	// times over.
	const rounds = 1000
	for i := 0; i < rounds; i++ {
		cursorMust(t, c.Commit(fmt.Sprintf("worker-%d", i%3), int64(i)))
	}
	cursorMust(t, c.Delete("worker-2"))
	st, err := os.Stat(path)
	cursorMust(t, err)
	if st.Size() > 2*c.compactMin {
		t.Errorf("journal is %d bytes after %d commits of 3 cursors; compaction should keep it near %d", st.Size(), rounds, c.compactMin)
	}
	c.Close()
	if _, err := os.Stat(path + ".compact"); !os.IsNotExist(err) {
		t.Errorf("compaction left its temporary file behind: %v", err)
	}

	re := openCursorsT(t, dir)
	want := map[string]int64{}
	for i := 0; i < rounds; i++ {
		if i%3 != 2 {
			want[fmt.Sprintf("worker-%d", i%3)] = int64(i)
		}
	}
	if got := re.All(); len(got) != 2 || got["worker-0"] != want["worker-0"] || got["worker-1"] != want["worker-1"] {
		t.Errorf("after compaction and reopen: %v, want %v", got, want)
	}
}

// TestCursorLeftoverCompaction covers a crash between writing the compacted
// journal and renaming it: the old journal is whole and wins.
func TestCursorLeftoverCompaction(t *testing.T) {
	dir := t.TempDir()
	c := openCursorsT(t, dir)
	cursorMust(t, c.Commit("a", 3))
	c.Close()
	cursorMust(t, os.WriteFile(filepath.Join(dir, CursorFile+".compact"), []byte("half written"), 0o644))

	re := openCursorsT(t, dir)
	if off, ok := re.Get("a"); !ok || off != 3 {
		t.Errorf("a = %d, %v; want 3, true", off, ok)
	}
	if _, err := os.Stat(filepath.Join(dir, CursorFile+".compact")); !os.IsNotExist(err) {
		t.Errorf("leftover compaction file not removed: %v", err)
	}
}

// TestCursorConcurrentCommits runs many committers at once (run it with
// -race): each cursor ends at its last committed value, in memory and after
// reopening.
func TestCursorConcurrentCommits(t *testing.T) {
	dir := t.TempDir()
	c := openCursorsT(t, dir)
	const workers, perWorker = 8, 300
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			name := fmt.Sprintf("w%d", w)
			for i := 1; i <= perWorker; i++ {
				if err := c.Commit(name, int64(i)); err != nil {
					t.Errorf("Commit(%s, %d): %v", name, i, err)
					return
				}
				if off, _ := c.Get(name); off != int64(i) {
					t.Errorf("Get(%s) = %d right after committing %d", name, off, i)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	c.Close()
	re := openCursorsT(t, dir)
	for w := 0; w < workers; w++ {
		name := fmt.Sprintf("w%d", w)
		if off, ok := re.Get(name); !ok || off != perWorker {
			t.Errorf("%s = %d, %v after reopen; want %d", name, off, ok, perWorker)
		}
	}
}

func FuzzCursorRecover(f *testing.F) {
	valid := appendCursorEntry(nil, cursorKindSet, "a", 1)
	valid = appendCursorEntry(valid, cursorKindSet, "consumer.orders", 1<<40)
	valid = appendCursorEntry(valid, cursorKindDelete, "a", 0)
	f.Add([]byte{})
	f.Add(valid)
	f.Add(valid[:len(valid)-1])
	f.Add(append(append([]byte(nil), valid...), 0, 0, 0, 0, 0xff, 0xff, 1))
	f.Add(appendCursorEntry(nil, cursorKindSet, "", 1))
	f.Fuzz(func(t *testing.T, journal []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, CursorFile), journal, 0o644); err != nil {
			t.Fatal(err)
		}
		c, rec, err := OpenCursors(dir)
		if err != nil {
			t.Fatalf("OpenCursors on arbitrary bytes: %v", err)
		}
		if rec.TruncatedBytes < 0 || rec.TruncatedBytes > int64(len(journal)) {
			t.Fatalf("truncated %d of %d bytes", rec.TruncatedBytes, len(journal))
		}
		before := c.All()
		if err := c.Commit("after-recovery", 9); err != nil {
			t.Fatalf("Commit after recovery: %v", err)
		}
		c.Close()
		re, rec2, err := OpenCursors(dir)
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		defer re.Close()
		if rec2.TruncatedBytes != 0 {
			t.Fatalf("second recovery truncated %d bytes; the first should have left a clean journal", rec2.TruncatedBytes)
		}
		after := re.All()
		wantLen := len(before)
		if _, existed := before["after-recovery"]; !existed {
			wantLen++
		}
		if after["after-recovery"] != 9 || len(after) != wantLen {
			t.Fatalf("state after reopen %v does not extend recovered state %v", after, before)
		}
		for k, v := range before {
			if k != "after-recovery" && after[k] != v {
				t.Fatalf("cursor %q = %d after reopen, was %d", k, after[k], v)
			}
		}
	})
}

func cursorMust(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// BenchmarkCursorCommit measures durable commits from several goroutines at
// once, which share fsyncs through group commit.
func BenchmarkCursorCommit(b *testing.B) {
	c := openCursorsT(b, b.TempDir())
	b.ReportAllocs()
	var id sync.Mutex
	next := 0
	b.RunParallel(func(pb *testing.PB) {
		id.Lock()
		name := fmt.Sprintf("worker-%d", next)
		next++
		id.Unlock()
		var i int64
		for pb.Next() {
			i++
			if err := c.Commit(name, i); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// TestLogCursorsBesideStream checks that a Log keeps its cursors in its own
// folder: committed through one Log, found by the next, and usable as the
// retention floor of a work queue.
func TestLogCursorsBesideStream(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, Options{SegmentBytes: 64 << 10})
	cursorMust(t, err)
	for i := 0; i < 2000; i++ {
		rec := Record{Subject: []byte("jobs"), Payload: make([]byte, 100)}
		_, err := l.Append(&rec, nil)
		cursorMust(t, err)
	}
	cursorMust(t, l.Sync())
	cursorMust(t, l.Cursors().Commit("worker-a", 1500))
	cursorMust(t, l.Cursors().Commit("worker-b", 1200))
	cursorMust(t, l.Close())
	if err := l.Cursors().Commit("late", 1); !errors.Is(err, ErrClosed) {
		t.Errorf("cursor commit after the log closed: %v, want ErrClosed", err)
	}

	l, err = Open(dir, Options{SegmentBytes: 64 << 10})
	cursorMust(t, err)
	defer l.Close()
	if got, ok := l.Cursors().Get("worker-b"); !ok || got != 1200 {
		t.Fatalf("worker-b = %d, %v after reopen; want 1200", got, ok)
	}
	if rec := l.Recovery(); rec.Cursors.Entries != 2 || !strings.Contains(rec.String(), "cursor journal: 2 entries") {
		t.Errorf("recovery report %q does not mention the cursor journal", rec.String())
	}
	floor, _ := l.Cursors().Min()
	l.SetFloor(floor)
	if _, err := l.Retain(time.Now()); err != nil {
		t.Fatal(err)
	}
	if first := l.FirstOffset(); first == 0 || first > floor {
		t.Errorf("after retention below the slowest cursor %d, first offset is %d", floor, first)
	}
}

// TestCursorCommitsRacingClose commits from many goroutines while the store
// closes: every commit either returns nil and is found after reopening, or
// returns ErrClosed; nothing in between.
func TestCursorCommitsRacingClose(t *testing.T) {
	dir := t.TempDir()
	c, _, err := OpenCursors(dir)
	cursorMust(t, err)
	const workers = 8
	last := make([]int64, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := int64(1); ; i++ {
				err := c.Commit(fmt.Sprintf("w%d", w), i)
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("commit racing close: %v, want nil or ErrClosed", err)
					return
				}
				last[w] = i
			}
		}(w)
	}
	for {
		if _, ok := c.Get("w0"); ok {
			break
		}
		runtime.Gosched()
	}
	cursorMust(t, c.Close())
	wg.Wait()

	re := openCursorsT(t, dir)
	for w := 0; w < workers; w++ {
		got, _ := re.Get(fmt.Sprintf("w%d", w))
		if got != last[w] {
			t.Errorf("w%d = %d after reopen, but its last successful commit was %d", w, got, last[w])
		}
	}
}

// TestCursorFailedFlushIsNotVisible breaks the journal's file under the
// store: the commit fails, and Get and Min go on reporting only what is on
// disk, since a work queue deletes segments below Min.
func TestCursorFailedFlushIsNotVisible(t *testing.T) {
	c := openCursorsT(t, t.TempDir())
	cursorMust(t, c.Commit("slow", 10))
	cursorMust(t, c.Commit("fast", 50))
	c.f.Close() // every later write fails
	if err := c.Commit("slow", 40); err == nil {
		t.Fatal("commit to a broken journal succeeded")
	}
	if got, _ := c.Get("slow"); got != 10 {
		t.Errorf("Get after a failed commit = %d, want the durable 10", got)
	}
	if min, _ := c.Min(); min != 10 {
		t.Errorf("Min after a failed commit = %d, want the durable 10", min)
	}
	if err := c.Commit("fast", 60); err == nil {
		t.Error("the store accepted a commit after a failed flush")
	}
}
