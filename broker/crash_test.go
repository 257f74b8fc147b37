package broker

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
	"time"

	"github.com/ledgemq/ledge/log"
)

const crashDirEnv = "LEDGE_BROKER_CRASH_DIR"

// childArgs is the command line that runs this test binary again, under
// the emulator the tests run in, if any.
func childArgs(args ...string) []string {
	cmd := append([]string{os.Args[0]}, args...)
	if emu := os.Getenv("LEDGE_TEST_EMULATOR"); emu != "" {
		cmd = append([]string{emu}, cmd...)
	}
	return cmd
}

// TestBrokerCrashChild is the broker the crash test kills: publishers
// print "seq payload" for each PubAck, under SyncAlways, while a consumer
// pulls and acknowledges.
func TestBrokerCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("run by TestBrokerCrashKeepsConfirmedMessages")
	}
	b, err := Open(Options{Dir: dir, Sync: log.SyncAlways, SegmentBytes: 64 << 10, StateFlushInterval: 10 * time.Millisecond})
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(2)
	}
	o := newOutlet()
	b.SetOutlet(o)
	s, err := b.AddStream(StreamConfig{Name: "CRASH", Subjects: []string{"crash.>"}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "stream:", err)
		os.Exit(2)
	}
	c, err := s.AddConsumer(ConsumerConfig{Name: "reader", Durable: true}, CreateOrUpdate)
	if err != nil {
		fmt.Fprintln(os.Stderr, "consumer:", err)
		os.Exit(2)
	}
	go func() {
		for {
			_ = c.Pull(PullRequest{Reply: "r", Batch: 50, Expires: time.Second})
			for i := 0; i < 50; i++ {
				r := <-o.ch
				if r.status.Kind == 0 {
					_ = c.Ack(r.msg.StreamSeq, Ack, 0)
				} else {
					break
				}
			}
		}
	}()
	var out sync.Mutex
	for w := 0; w < 3; w++ {
		go func(w int) {
			for n := 0; ; n++ {
				p := fmt.Sprintf("w%d-%d-%s", w, n, strings.Repeat("x", (w*7+n)%50))
				m := &Message{Subject: []byte(fmt.Sprintf("crash.%d", w)), Payload: []byte(p)}
				done := make(chan struct{})
				err := s.Publish(m, func(a PubAck, err error) {
					if err == nil {
						out.Lock()
						fmt.Printf("%d %s\n", a.Seq, p)
						out.Unlock()
					}
					close(done)
				})
				if err != nil {
					fmt.Fprintln(os.Stderr, "publish:", err)
					os.Exit(2)
				}
				if n%4 == 3 {
					<-done
				}
			}
		}(w)
	}
	select {}
}

// TestBrokerCrashKeepsConfirmedMessages kills a broker with SIGKILL while
// it stores and delivers, and checks that every confirmed message is in the
// stream after the restart, and that the consumer's saved state loads.
func TestBrokerCrashKeepsConfirmedMessages(t *testing.T) {
	rounds := 8
	if testing.Short() {
		rounds = 4
	}
	dir := t.TempDir()
	rng := rand.New(rand.NewSource(7))
	confirmed := map[uint64]string{}
	for round := 0; round < rounds; round++ {
		args := childArgs("-test.run=^TestBrokerCrashChild$", "-test.count=1")
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
		cmd.Stderr = os.Stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatalf("start child %v: %v", args, err)
		}
		killAfter := 1 + rng.Intn(300)
		sc := bufio.NewScanner(stdout)
		n := 0
		for sc.Scan() {
			seq, p, ok := strings.Cut(sc.Text(), " ")
			if !ok {
				continue
			}
			v, err := strconv.ParseUint(seq, 10, 64)
			if err != nil {
				t.Fatalf("child printed %q", sc.Text())
			}
			confirmed[v] = p
			if n++; n == killAfter {
				_ = cmd.Process.Signal(syscall.SIGKILL)
				break
			}
		}
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		if n < killAfter {
			t.Fatalf("round %d: child stopped after %d confirmations", round, n)
		}
		b, err := Open(Options{Dir: dir})
		if err != nil {
			t.Fatalf("round %d: reopen: %v", round, err)
		}
		s, err := b.Stream("CRASH")
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		for seq, p := range confirmed {
			m, err := s.GetMsg(seq)
			if err != nil {
				t.Fatalf("round %d: confirmed seq %d lost: %v", round, seq, err)
			}
			if string(m.Payload) != p {
				t.Fatalf("round %d: seq %d holds %q, confirmed %q", round, seq, m.Payload, p)
			}
		}
		c, err := s.Consumer("reader")
		if err != nil {
			t.Fatalf("round %d: consumer: %v", round, err)
		}
		if info := c.Info(); info.AckFloor.Stream > s.Info().State.LastSeq {
			t.Fatalf("round %d: ack floor %d past the stream's end", round, info.AckFloor.Stream)
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d confirmed messages checked over %d kills", len(confirmed), rounds)
}
