package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestDefaults(t *testing.T) {
	cfg, err := loadConfig(nil, env(nil), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.dataDir != "./ledge-data" || cfg.natsAddr != ":4222" || cfg.maxPayload != 1<<20 || cfg.pingInterval != 2*time.Minute {
		t.Errorf("defaults: %+v", cfg)
	}
}

func TestSettingsPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "ledge.conf")
	os.WriteFile(file, []byte(`
# settings for the test
data-dir = /from/file
nats-addr = :1111     # the file's
max-payload = 2048
log-format = "json"
`), 0o644)
	cfg, err := loadConfig(
		[]string{"-config", file, "-nats-addr", ":3333"},
		env(map[string]string{"LEDGE_MAX_PAYLOAD": "4096", "LEDGE_NATS_ADDR": ":2222"}),
		&bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct{ name, got, want string }{
		{"flag beats env and file", cfg.natsAddr, ":3333"},
		{"env beats file", strconv.Itoa(cfg.maxPayload), "4096"},
		{"file beats default", cfg.dataDir, "/from/file"},
		{"quoted value", cfg.logFormat, "json"},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, c.got, c.want)
		}
	}
	// The config file named by the environment.
	cfg, err = loadConfig(nil, env(map[string]string{"LEDGE_CONFIG": file}), &bytes.Buffer{})
	if err != nil || cfg.dataDir != "/from/file" {
		t.Errorf("LEDGE_CONFIG: %v, data-dir %q", err, cfg.dataDir)
	}
}

func TestBadSettings(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), 0o644)
		return p
	}
	cases := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"unknown flag", []string{"-nope"}, nil, "flag provided but not defined"},
		{"stray argument", []string{"serve"}, nil, `unexpected argument "serve"`},
		{"bad env value", nil, map[string]string{"LEDGE_MAX_PAYLOAD": "lots"}, "LEDGE_MAX_PAYLOAD"},
		{"unknown file setting", []string{"-config", write("a.conf", "colour = blue\n")}, nil, `unknown setting "colour"`},
		{"line without value", []string{"-config", write("b.conf", "data-dir\n")}, nil, "want name = value"},
		{"missing file", []string{"-config", filepath.Join(dir, "none.conf")}, nil, "config file"},
		{"payload out of range", []string{"-max-payload", "0"}, nil, "max-payload"},
		{"user without password", []string{"-user", "u"}, nil, "go together"},
		{"bad log level", []string{"-log-level", "loud"}, nil, "log-level"},
		{"bad sync policy", []string{"-sync", "sometimes"}, nil, "want always, interval or never"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadConfig(tc.args, env(tc.env), &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

// TestHelpGolden pins the -help text, which is the broker's documentation
// of its settings. Run with -update after changing a flag.
func TestHelpGolden(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"-help"}, env(nil), &out, nil)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("run -help: %v", err)
	}
	golden := filepath.Join("testdata", "help.golden")
	if *update {
		os.MkdirAll("testdata", 0o755)
		os.WriteFile(golden, out.Bytes(), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Errorf("-help changed; run go test ./cmd/ledge -update if intended.\ngot:\n%s", out.String())
	}
}

// syncBuffer is a log destination that the broker and the test share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startBroker runs the broker in the test process on a free port and
// returns its NATS address and a function that stops it and returns run's
// error.
func startBroker(t *testing.T, dataDir string, logs *syncBuffer) (string, func() error) {
	t.Helper()
	l, stop := startBrokerAll(t, dataDir, logs)
	return l["nats"], stop
}

// startBrokerAll is startBroker returning every listener's address, the
// HTTP port's ("http") among them, with extra arguments to run.
func startBrokerAll(t *testing.T, dataDir string, logs *syncBuffer, extra ...string) (listening, func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan listening, 1)
	done := make(chan error, 1)
	args := append([]string{"-nats-addr", "127.0.0.1:0", "-mqtt-addr", "127.0.0.1:0", "-mqtt-ws-addr", "127.0.0.1:0", "-amqp-addr", "127.0.0.1:0", "-stomp-addr", "127.0.0.1:0", "-stomp-ws-addr", "127.0.0.1:0",
		"-http-addr", "127.0.0.1:0", "-data-dir", dataDir}, extra...)
	go func() {
		done <- run(ctx, args, env(nil), logs, func(l listening) { addrs <- l })
	}()
	select {
	case l := <-addrs:
		return l, func() error { cancel(); return <-done }
	case err := <-done:
		cancel()
		t.Fatalf("broker did not start: %v\n%s", err, logs.String())
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("broker did not start in time")
	}
	return nil, nil
}

func TestBrokerServesNATS(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	var logs syncBuffer
	addr, stop := startBroker(t, dataDir, &logs)
	if _, err := os.Stat(dataDir); err != nil {
		t.Errorf("data folder not created: %v", err)
	}
	nc, err := nats.Connect("nats://" + addr)
	if err != nil {
		t.Fatal(err)
	}
	sub, _ := nc.SubscribeSync("hello")
	nc.Publish("hello", []byte("world"))
	if m, err := sub.NextMsg(5 * time.Second); err != nil || string(m.Data) != "world" {
		t.Fatalf("pub/sub through the broker: %v", err)
	}
	nc.Close()

	// A second broker on the same data folder refuses to start.
	err = run(context.Background(), []string{"-nats-addr", "127.0.0.1:0", "-mqtt-addr", "127.0.0.1:0", "-mqtt-ws-addr", "127.0.0.1:0", "-amqp-addr", "127.0.0.1:0", "-stomp-addr", "127.0.0.1:0", "-stomp-ws-addr", "127.0.0.1:0", "-http-addr", "127.0.0.1:0", "-data-dir", dataDir}, env(nil), &bytes.Buffer{}, nil)
	if err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("second broker on the same folder: err = %v", err)
	}

	if err := stop(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	out := logs.String()
	for _, want := range []string{"ledge ready", "nats=" + addr, "stopped"} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %q:\n%s", want, out)
		}
	}
	if strings.Count(out, "\n") < 3 {
		t.Errorf("expected one line per event:\n%s", out)
	}
}
