package amqpgw

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// TestCrashChild is the broker that TestKill9KeepsConfirmedMessages kills:
// it runs only as that test's child process.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv("LEDGE_AMQP_CRASH_DIR")
	if dir == "" {
		t.Skip("run by TestKill9KeepsConfirmedMessages")
	}
	g := startGateway(t, Options{}, dir)
	fmt.Println("ADDR", g.addr)
	select {}
}

// Persistent messages in a durable queue survive kill -9 once confirmed.
func TestKill9KeepsConfirmedMessages(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.v")
	cmd.Env = append(os.Environ(), "LEDGE_AMQP_CRASH_DIR="+dir)
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
	conn, err := amqp.Dial("amqp://guest:guest@" + a + "/")
	must(t, err)
	ch, err := conn.Channel()
	must(t, err)
	_, err = ch.QueueDeclare("crash_q", true, false, false, false, nil)
	must(t, err)
	must(t, ch.Confirm(false))
	const n = 200
	var dcs []*amqp.DeferredConfirmation
	for i := 0; i < n; i++ {
		dc, err := ch.PublishWithDeferredConfirmWithContext(context.Background(), "", "crash_q", false, false,
			amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte(fmt.Sprint(i))})
		must(t, err)
		dcs = append(dcs, dc)
	}
	for _, dc := range dcs {
		if ok, err := dc.WaitContext(context.Background()); !ok || err != nil {
			t.Fatal("not confirmed")
		}
	}
	// Unacknowledged at the crash: it must come back too.
	msgs, err := ch.Consume("crash_q", "", false, false, false, false, nil)
	must(t, err)
	recv(t, msgs)
	must(t, cmd.Process.Kill()) // SIGKILL
	_ = cmd.Wait()
	conn.Close()

	g := startGateway(t, Options{}, dir)
	_, ch2 := dial(t, g)
	q, err := ch2.QueueDeclarePassive("crash_q", true, false, false, false, nil)
	must(t, err)
	if q.Messages != n {
		t.Fatalf("%d of %d confirmed messages after kill -9", q.Messages, n)
	}
	m, err := ch2.Consume("crash_q", "", false, false, false, false, nil)
	must(t, err)
	for i := 0; i < n; i++ {
		d := recv(t, m)
		if string(d.Body) != fmt.Sprint(i) {
			t.Fatalf("message %d is %q", i, d.Body)
		}
		must(t, d.Ack(false))
	}
}
