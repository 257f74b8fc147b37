package natsgw

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ledgemq/ledge/broker"
	"github.com/ledgemq/ledge/log"
)

// TestRestartKeepsStreamsAndConsumers: what was confirmed to the
// publisher and acknowledged by the consumer survives a broker restart.
func TestRestartKeepsStreamsAndConsumers(t *testing.T) {
	dir := t.TempDir()
	g := startJS(t, false, dir, "")
	_, js := newJS(t, g.url)
	ctx := ctxT(t)
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "KEEP", Subjects: []string{"keep.*"}, MaxMsgs: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 10; i++ {
		if _, err := js.Publish(ctx, "keep."+strconv.Itoa(i%3), []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	c, _ := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "reader", AckPolicy: jetstream.AckExplicitPolicy})
	b, _ := c.Fetch(4, jetstream.FetchMaxWait(2*time.Second))
	for m := range b.Messages() {
		if err := m.DoubleAck(ctx); err != nil {
			t.Fatal(err)
		}
	}
	g.stop()

	g = startJS(t, true, dir, "")
	_, js = newJS(t, g.url)
	s, err = js.Stream(ctx, "KEEP")
	if err != nil {
		t.Fatalf("stream after restart: %v", err)
	}
	info, _ := s.Info(ctx)
	if info.State.Msgs != 10 || info.State.LastSeq != 10 || info.Config.MaxMsgs != 1000 || info.Config.Subjects[0] != "keep.*" {
		t.Fatalf("stream after restart: %+v %+v", info.Config, info.State)
	}
	c, err = s.Consumer(ctx, "reader")
	if err != nil {
		t.Fatalf("consumer after restart: %v", err)
	}
	ci, _ := c.Info(ctx)
	if ci.AckFloor.Stream != 4 || ci.NumPending != 6 {
		t.Fatalf("consumer after restart: ack floor %d pending %d", ci.AckFloor.Stream, ci.NumPending)
	}
	b, _ = c.Fetch(1, jetstream.FetchMaxWait(2*time.Second))
	for m := range b.Messages() {
		if md, _ := m.Metadata(); md.Sequence.Stream != 5 || string(m.Data()) != "5" {
			t.Fatalf("after restart the consumer continues at %d %q", md.Sequence.Stream, m.Data())
		}
	}
	if ack, err := js.Publish(ctx, "keep.x", nil); err != nil || ack.Sequence != 11 {
		t.Fatalf("publish after restart: %+v %v", ack, err)
	}
}

const crashDirEnv = "LEDGE_NATSGW_CRASH_DIR"

// TestJSCrashChild is the broker the crash test kills; it runs only as
// that test's child process.
func TestJSCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("run by TestKill9KeepsAcknowledgedMessages")
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := broker.Open(broker.Options{Dir: dir, Sync: log.SyncAlways, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, false, Options{Broker: b, Logger: logger}, "")
	fmt.Printf("listening %s\n", g.url)
	select {} // until killed
}

// TestKill9KeepsAcknowledgedMessages runs the broker as a child process,
// publishes to it with PubAcks under sync policy always, kills it with
// SIGKILL in the middle, and checks that every acknowledged message is in
// the stream when the broker is opened again.
func TestKill9KeepsAcknowledgedMessages(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test")
	}
	dir := t.TempDir()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 2; round++ {
		cmd := exec.Command(exe, "-test.run=^TestJSCrashChild$", "-test.count=1")
		if emu := os.Getenv("LEDGE_TEST_EMULATOR"); emu != "" {
			cmd = exec.Command(emu, append([]string{exe}, cmd.Args[1:]...)...)
		}
		cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
		cmd.Stderr = os.Stderr
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stdout)
		url := ""
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "listening "); ok {
				url = u
				break
			}
		}
		go io.Copy(io.Discard, stdout)
		if url == "" {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatal("child broker did not start")
		}
		nc := connect(t, url)
		js, _ := jetstream.New(nc)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "CRASH", Subjects: []string{"crash.>"}}); err != nil {
			t.Fatal(err)
		}
		acked := map[uint64]string{}
		killAt := 200 + round*137
		var futures []jetstream.PubAckFuture
		for i := 0; len(acked) < killAt; i++ {
			payload := fmt.Sprintf("round %d message %d", round, i)
			f, err := js.PublishAsync("crash.m", []byte(payload))
			if err != nil {
				break
			}
			futures = append(futures, f)
			// Collect what has been acknowledged so far.
			kept := futures[:0]
			for _, f := range futures {
				select {
				case ack := <-f.Ok():
					acked[ack.Sequence] = string(f.Msg().Data)
				case <-f.Err():
				default:
					kept = append(kept, f)
				}
			}
			futures = kept
		}
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		// Acks that were on the wire when the process died count too.
		for _, f := range futures {
			select {
			case ack := <-f.Ok():
				acked[ack.Sequence] = string(f.Msg().Data)
			case <-f.Err():
			case <-time.After(100 * time.Millisecond):
			}
		}
		cancel()
		nc.Close()

		b, err := broker.Open(broker.Options{Dir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatalf("reopen after kill -9: %v", err)
		}
		s, err := b.Stream("CRASH")
		if err != nil {
			b.Close()
			t.Fatal(err)
		}
		for seq, payload := range acked {
			m, err := s.GetMsg(seq)
			if err != nil || string(m.Payload) != payload {
				t.Errorf("round %d: acknowledged message %d (%q) after kill -9: %v", round, seq, payload, err)
			}
		}
		t.Logf("round %d: %d acknowledged messages all there; stream has %d", round, len(acked), s.Info().State.Msgs)
		b.Close()
	}
}
