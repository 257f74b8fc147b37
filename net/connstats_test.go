package net

import (
	"bufio"
	"testing"
	"time"
)

// TestConnStatsCountTraffic checks a connection's own counters on both
// transports: the bytes each way and when input last arrived.
func TestConnStatsCountTraffic(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tc transportCase) {
		ev := newEvents()
		before := time.Now()
		s := start(t, tc, &funcHandler{open: ev.open, data: lineEcho}, nil)
		nc := dial(t, s)
		c := ev.waitOpen(t)
		st := c.Stats()
		if st.BytesIn != 0 || st.BytesOut != 0 || st.Opened.Before(before.Add(-time.Second)) || !st.LastRead.Equal(st.Opened) {
			t.Fatalf("new connection stats %+v", st)
		}
		r := bufio.NewReader(nc)
		for _, line := range []string{"hello\n", "world!\n"} {
			if _, err := nc.Write([]byte(line)); err != nil {
				t.Fatal(err)
			}
			if got := readLine(t, r); got != line {
				t.Fatalf("echo %q, want %q", got, line)
			}
		}
		// The echo is read before the writer goroutine counts it, on
		// the portable transport.
		waitFor(t, "13 bytes counted each way", func() bool {
			st = c.Stats()
			return st.BytesIn == 13 && st.BytesOut == 13
		})
		if st.LastRead.Before(st.Opened) {
			t.Errorf("last read %v before open %v", st.LastRead, st.Opened)
		}
	})
}
