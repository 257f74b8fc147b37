package stompgw

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3"
)

// TestCrashChild is the broker that TestKill9KeepsReceiptedMessages
// kills: it runs only as that test's child process.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv("LEDGE_STOMP_CRASH_DIR")
	if dir == "" {
		t.Skip("run by TestKill9KeepsReceiptedMessages")
	}
	g := startGateway(t, false, Options{}, dir)
	fmt.Println("ADDR", g.addr)
	select {}
}

// Persistent messages in a durable queue survive kill -9 once their
// RECEIPT came: a receipt is sent only when the message is durable.
func TestKill9KeepsReceiptedMessages(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.v")
	cmd.Env = append(os.Environ(), "LEDGE_STOMP_CRASH_DIR="+dir)
	out, err := cmd.StdoutPipe()
	must(t, err)
	must(t, cmd.Start())
	defer cmd.Process.Kill()
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "ADDR "); ok {
				addr <- a
			}
		}
	}()
	var a string
	select {
	case a = <-addr:
	case <-time.After(20 * time.Second):
		t.Fatal("child broker did not start")
	}
	c, err := stomp.Dial("tcp", a, stomp.ConnOpt.Host("/"), stomp.ConnOpt.Logger(quietStomp{}))
	must(t, err)
	for i := 0; i < 50; i++ {
		must(t, c.Send("/queue/crash", "text/plain", []byte(fmt.Sprintf("m%d", i)), stomp.SendOpt.Receipt, stomp.SendOpt.Header("persistent", "true")))
	}
	must(t, cmd.Process.Kill())
	_ = cmd.Wait()

	g := startGateway(t, false, Options{}, dir)
	r := dialRaw(t, g.addr)
	r.connect("1.2")
	r.send("SUBSCRIBE\nid:0\ndestination:/queue/crash\nack:client-individual\n\n\x00")
	for i := 0; i < 50; i++ {
		f := r.read()
		if f.Command != "MESSAGE" || string(f.Body) != fmt.Sprintf("m%d", i) {
			t.Fatalf("message %d after kill -9: %s %q", i, f.Command, f.Body)
		}
	}
}
