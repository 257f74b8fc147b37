package natsgw

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	stdnet "net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ledgemq/ledge/auth"
	"github.com/ledgemq/ledge/auth/authtest"
	lnet "github.com/ledgemq/ledge/net"
)

// halfOpen is how many connections the hostile tests open. They are
// dialled from a child process, so that the broker's side alone counts
// against this process's file limit.
const halfOpen = 10000

// TestHelperHalfOpen is the child: it opens LEDGE_HALFOPEN_N connections
// to LEDGE_HALFOPEN_ADDR, sends nothing, says "ready", and says "closed N"
// once the server has closed them all.
func TestHelperHalfOpen(t *testing.T) {
	addr := os.Getenv("LEDGE_HALFOPEN_ADDR")
	if addr == "" {
		t.Skip("only run as the hostile tests' child")
	}
	n, _ := strconv.Atoi(os.Getenv("LEDGE_HALFOPEN_N"))
	conns := make([]stdnet.Conn, n)
	var wg sync.WaitGroup
	var failed atomic.Int32
	next := atomic.Int32{}
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				c, err := stdnet.DialTimeout("tcp", addr, 10*time.Second)
				if err != nil {
					failed.Add(1)
					continue
				}
				conns[i] = c
			}
		}()
	}
	wg.Wait()
	fmt.Printf("ready %d\n", n-int(failed.Load()))
	var closed atomic.Int32
	for _, c := range conns {
		if c == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.SetReadDeadline(time.Now().Add(60 * time.Second))
			// INFO (plaintext), then nothing: the server must close.
			if _, err := io.Copy(io.Discard, c); err == nil || !strings.Contains(err.Error(), "timeout") {
				closed.Add(1)
			}
			c.Close()
		}()
	}
	wg.Wait()
	fmt.Printf("closed %d\n", closed.Load())
}

// hostile opens halfOpen connections to addr from a child process and
// checks that the server closes them all, with its memory bounded while
// they are open and back near where it was after.
func hostile(t *testing.T, ln *lnet.Server) {
	t.Helper()
	if testing.Short() {
		t.Skip("10,000 connections: not in -short")
	}
	heap := func() uint64 {
		// Twice: pooled buffers survive one collection in the pools'
		// victim caches.
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapInuse + m.StackInuse
	}
	before := heap()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperHalfOpen$", "-test.v")
	cmd.Env = append(os.Environ(), "LEDGE_HALFOPEN_ADDR="+ln.Addr().String(), "LEDGE_HALFOPEN_N="+strconv.Itoa(halfOpen))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := bufio.NewScanner(out)
	var opened, closed int
	var during uint64
	var peak int64
	start := time.Now()
	for lines.Scan() {
		l := lines.Text()
		if n, ok := strings.CutPrefix(l, "ready "); ok {
			opened, _ = strconv.Atoi(n)
			peak = ln.Stats().ConnsOpen
			during = heap()
		}
		if n, ok := strings.CutPrefix(l, "closed "); ok {
			closed, _ = strconv.Atoi(n)
			break
		}
	}
	cmd.Wait()
	if opened < halfOpen*9/10 || closed != opened {
		t.Fatalf("opened %d, closed by the server %d", opened, closed)
	}
	deadline := time.Now().Add(10 * time.Second)
	for ln.Stats().ConnsOpen != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections still open", ln.Stats().ConnsOpen)
		}
		time.Sleep(10 * time.Millisecond)
	}
	after := heap()
	per := int64(during-min(before, during)) / max(peak, 1)
	t.Logf("%d half-open connections (%d open at once) closed in %v; heap and stacks %d KiB before, %d KiB with them (%d B each), %d KiB after",
		opened, peak, time.Since(start).Round(time.Millisecond), before>>10, during>>10, per, after>>10)
	if per > 64<<10 {
		t.Errorf("a half-open connection costs %d bytes", per)
	}
	// The runtime keeps the descriptors of exited goroutines (the
	// portable transport's readers and writers) for reuse, a few hundred
	// bytes each: what stays is bounded by that, not by what the
	// connections held.
	if after > before+uint64(opened)<<10 {
		t.Errorf("memory not given back: %d KiB before, %d KiB after", before>>10, after>>10)
	}
}

// Connections that never send CONNECT are closed at the auth timeout.
func TestHalfOpenConnectionsClosed(t *testing.T) {
	svc := auth.New(auth.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	t.Cleanup(svc.Close)
	g := startGateway(t, false, Options{Auth: svc, AuthTimeout: time.Second}, "")
	hostile(t, g.ln)
}

// Connections that read INFO and never start their TLS handshake are
// closed at the auth timeout too.
func TestHalfOpenTLSHandshakesClosed(t *testing.T) {
	ca := authtest.NewCA(t, "ca")
	s := ca.Server()
	st, err := auth.NewServerTLS(auth.TLSFiles{Cert: s.CertFile, Key: s.KeyFile})
	if err != nil {
		t.Fatal(err)
	}
	svc := auth.New(auth.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	t.Cleanup(svc.Close)
	srv := NewServer(Options{Auth: svc, AuthTimeout: time.Second, TLS: st.Config(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ln, err := lnet.Listen("tcp", "127.0.0.1:0", srv.Handler(), lnet.Options{Portable: true, MaxInput: srv.MaxInput(), HandshakeTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	hostile(t, ln)
}
