package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestCtlUplinks runs ledge with the two uplink flags and a second uplink
// from the config file whose upstream is unreachable, forwards a message,
// and reads "ledge ctl uplinks".
func TestCtlUplinks(t *testing.T) {
	up, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go up.Start()
	defer up.Shutdown()
	if !up.ReadyForConnections(10 * time.Second) {
		t.Fatal("upstream not ready")
	}
	unc, err := nats.Connect(up.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer unc.Close()
	ujs, _ := jetstream.New(unc)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ust, err := ujs.CreateStream(ctx, jetstream.StreamConfig{Name: "UP", Subjects: []string{"box1.>"}})
	if err != nil {
		t.Fatal(err)
	}

	l, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := l.Addr().String()
	l.Close()
	conf := filepath.Join(t.TempDir(), "ledge.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("uplink.spare.url = nats://%s\nuplink.spare.subjects = spare.>\nuplink.spare.backoff-max = 100ms\n", dead)), 0o644)

	var logs syncBuffer
	runCtx, stop := context.WithCancel(context.Background())
	addrs := make(chan listening, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(runCtx, []string{"-nats-addr", "127.0.0.1:0", "-mqtt-addr", "127.0.0.1:0", "-mqtt-ws-addr", "127.0.0.1:0", "-amqp-addr", "127.0.0.1:0", "-stomp-addr", "127.0.0.1:0", "-stomp-ws-addr", "127.0.0.1:0", "-http-addr", "127.0.0.1:0",
			"-data-dir", filepath.Join(t.TempDir(), "data"), "-config", conf, "-gateway-id", "box1",
			"-uplink", up.ClientURL(), "-uplink-subjects", "tele.>", "-uplink-prefix", "box1."}, env(nil), &logs,
			func(l listening) { addrs <- l })
	}()
	var addr, httpAddr string
	select {
	case l := <-addrs:
		addr, httpAddr = l["nats"], l["http"]
	case err := <-done:
		t.Fatalf("broker did not start: %v\n%s", err, logs.String())
	}
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()

	nc, err := nats.Connect("nats://" + addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if _, err := js.Publish(ctx, "tele.temp", []byte("21.5")); err != nil {
		t.Fatal(err)
	}
	m, err := ust.GetLastMsgForSubject(ctx, "box1.tele.temp")
	for err != nil && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
		m, err = ust.GetLastMsgForSubject(ctx, "box1.tele.temp")
	}
	if err != nil || string(m.Data) != "21.5" {
		t.Fatalf("not forwarded: %v", err)
	}

	var out string
	for ctx.Err() == nil {
		var buf, errOut bytes.Buffer
		if err := runCtl(ctx, []string{"uplinks", "-url", "http://" + httpAddr}, env(nil), &buf, &errOut); err != nil {
			t.Fatalf("ctl uplinks: %v\n%s", err, errOut.String())
		}
		out = buf.String()
		if strings.Contains(out, "connection refused") {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("ledge ctl uplinks:\n%s", out)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "UPLINK") {
		t.Fatalf("ctl uplinks:\n%s", out)
	}
	cloud, spare := strings.Fields(lines[1]), strings.Fields(lines[2])
	if cloud[0] != "cloud" || cloud[1] != "up" || cloud[3] != "jetstream" {
		t.Errorf("cloud line %q", lines[1])
	}
	if spare[0] != "spare" || spare[1] != "down" || !strings.Contains(lines[2], "connection refused") {
		t.Errorf("spare line %q", lines[2])
	}
	for _, want := range []string{"uplink configured", "uplink connected", "uplink down"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs lack %q", want)
		}
	}
}
