package log

import (
	"bufio"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

const (
	crashDirEnv = "LEDGE_CRASH_DIR"
	crashCursor = "crash-consumer"
)

func crashOptions() Options {
	o := testOptions()
	o.Sync = SyncAlways
	o.SegmentBytes = 32 << 10
	o.BatchBytes = 4 << 10
	o.MaxRecordBytes = 4 << 10
	return o
}

// crashPayload is what writer w puts in its seq-th record.
func crashPayload(w, seq int) string {
	return fmt.Sprintf("w%d-s%d-%s", w, seq, strings.Repeat("x", (w*31+seq)%97))
}

// TestCrashChild is the process the crash test kills. It appends from
// several goroutines under SyncAlways and prints "offset payload" for each
// acknowledged record, and commits a named cursor from another, printing
// "cursor N" after each commit of N returns.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("run by TestCrashRecovery")
	}
	l, err := Open(dir, crashOptions())
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(2)
	}
	var out sync.Mutex
	var wg sync.WaitGroup
	go func() {
		start, _ := l.Cursors().Get(crashCursor)
		for n := start + 1; ; n++ {
			if err := l.Cursors().Commit(crashCursor, n); err != nil {
				fmt.Fprintln(os.Stderr, "commit cursor:", err)
				os.Exit(2)
			}
			out.Lock()
			fmt.Fprintf(os.Stdout, "cursor %d\n", n)
			out.Unlock()
		}
	}()
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for seq := 0; ; seq++ {
				p := crashPayload(w, seq)
				rec := Record{Subject: []byte("crash"), Payload: []byte(p)}
				off, err := l.Append(&rec, func(off int64, err error) {
					if err != nil {
						return
					}
					out.Lock()
					fmt.Fprintf(os.Stdout, "%d %s\n", off, p)
					out.Unlock()
				})
				if err != nil {
					fmt.Fprintln(os.Stderr, "append:", err)
					os.Exit(2)
				}
				if seq%8 == 7 {
					_ = l.WaitDurable(off)
				}
			}
		}(w)
	}
	wg.Wait()
}

// TestCrashRecovery kills a child appender with SIGKILL at random moments
// and checks that every acknowledged record survives, intact, and that the
// log goes on at the right offset.
func TestCrashRecovery(t *testing.T) {
	rounds := 30
	if testing.Short() {
		rounds = 20
	}
	dir := t.TempDir()
	rng := rand.New(rand.NewSource(42))
	acked := make(map[int64]string)
	var cursorAcked int64 // the highest cursor commit that returned
	for round := 0; round < rounds; round++ {
		args := childArgs("-test.run=^TestCrashChild$", "-test.count=1")
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
		cmd.Stderr = os.Stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatalf("start child %v: %v (under an emulator without binfmt_misc, set LEDGE_TEST_EMULATOR, e.g. to qemu-arm-static)", args, err)
		}
		// Kill after a random number of acknowledgements: a random moment
		// in the child's life without depending on timing.
		killAfter := 1 + rng.Intn(400)
		sc := bufio.NewScanner(stdout)
		n := 0
		for sc.Scan() {
			off, payload, ok := strings.Cut(sc.Text(), " ")
			if !ok {
				continue // test framework chatter
			}
			if off == "cursor" {
				if v, err := strconv.ParseInt(payload, 10, 64); err == nil && v > cursorAcked {
					cursorAcked = v
				}
				continue
			}
			o, err := strconv.ParseInt(off, 10, 64)
			if err != nil {
				continue
			}
			acked[o] = payload
			if n++; n == killAfter {
				_ = cmd.Process.Signal(syscall.SIGKILL)
			}
		}
		err = cmd.Wait()
		if n < killAfter {
			t.Fatalf("round %d: child exited after %d acks: %v", round, n, err)
		}

		l, err := Open(dir, crashOptions())
		if err != nil {
			t.Fatalf("round %d: reopen: %v", round, err)
		}
		r, err := l.NewReader(0)
		if err != nil {
			t.Fatal(err)
		}
		var rec Record
		for off, want := range acked {
			if err := r.SeekOffset(off); err != nil {
				t.Fatalf("round %d: acknowledged offset %d lost (next %d): %v; %v", round, off, l.NextOffset(), err, l.Recovery())
			}
			if err := r.Next(&rec); err != nil || string(rec.Payload) != want {
				t.Fatalf("round %d: offset %d: %v, payload %q want %q", round, off, err, rec.Payload, want)
			}
		}
		r.Close()
		// The cursor only moves forward in the child, so what was
		// recovered is at least the last commit that returned.
		if got, _ := l.Cursors().Get(crashCursor); got < cursorAcked {
			t.Fatalf("round %d: cursor recovered at %d, but the commit of %d had returned; %v", round, got, cursorAcked, l.Recovery())
		}
		next := l.NextOffset()
		rec = Record{Subject: []byte("after"), Payload: []byte("crash")}
		off, err := l.Append(&rec, nil)
		if err != nil || off != next {
			t.Fatalf("round %d: append after recovery at %d: %v, want %d", round, off, err, next)
		}
		if err := l.WaitDurable(off); err != nil {
			t.Fatal(err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		acked[off] = "crash"
	}
	if cursorAcked == 0 {
		t.Error("no cursor commit returned in any round, so the cursor half of the test checked nothing")
	}
	t.Logf("%d rounds, %d acknowledged records and cursor commits up to %d checked", rounds, len(acked), cursorAcked)
}
