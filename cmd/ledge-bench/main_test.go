package main

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestMain lets a test run the command itself: with LEDGE_BENCH_MAIN set,
// the test binary is ledge-bench.
func TestMain(m *testing.M) {
	if os.Getenv("LEDGE_BENCH_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestArguments(t *testing.T) {
	cases := []struct {
		name  string
		args  []string
		want  string // part of the error; "" for a valid command line
		check func(t *testing.T, c *config)
	}{
		{"defaults", nil, "", func(t *testing.T, c *config) {
			if c.scenario.name != "pubsub" || c.pubs != 1 || c.subs != 1 || c.count != 100000 || c.size != 128 {
				t.Errorf("defaults: %s pubs %d subs %d count %d size %d", c.scenario.name, c.pubs, c.subs, c.count, c.size)
			}
		}},
		{"clients sets fanout's subscribers", []string{"-scenario", "fanout", "-clients", "7"}, "", func(t *testing.T, c *config) {
			if c.pubs != 1 || c.subs != 7 {
				t.Errorf("pubs %d subs %d", c.pubs, c.subs)
			}
		}},
		{"clients sets fanin's publishers", []string{"--scenario=fanin", "--clients=9"}, "", func(t *testing.T, c *config) {
			if c.pubs != 9 || c.subs != 1 {
				t.Errorf("pubs %d subs %d", c.pubs, c.subs)
			}
		}},
		{"clients sets pubsub's pairs", []string{"-clients", "3"}, "", func(t *testing.T, c *config) {
			if c.pubs != 3 || c.subs != 3 {
				t.Errorf("pubs %d subs %d", c.pubs, c.subs)
			}
		}},
		{"pubs with queue workers", []string{"-scenario", "queue", "-pubs", "2", "-clients", "5"}, "", func(t *testing.T, c *config) {
			if c.pubs != 2 || c.subs != 5 {
				t.Errorf("pubs %d subs %d", c.pubs, c.subs)
			}
		}},
		{"duration alone has no count", []string{"-duration", "2s"}, "", func(t *testing.T, c *config) {
			if c.count != 0 || c.duration != 2*time.Second {
				t.Errorf("count %d duration %v", c.count, c.duration)
			}
		}},
		{"jspub with its flags", []string{"-scenario", "jspub", "-create-stream", "-stream", "TELEMETRY", "-max-pending", "64"}, "", nil},
		{"unknown scenario", []string{"-scenario", "pubsubb"}, `-scenario "pubsubb": choose one of pub, pubsub`, nil},
		{"protocol not built", []string{"-proto", "kafka"}, `-proto "kafka": this build speaks amqp`, nil},
		{"url of another protocol", []string{"-url", "mqtt://localhost:1883"}, "is not a nats URL (use -proto mqtt)", nil},
		{"unknown scheme", []string{"-url", "kafka://localhost:9092"}, "kafka is not a protocol this build speaks (amqp", nil},
		{"stomp defaults", []string{"-proto", "stomp"}, "", func(t *testing.T, c *config) {
			if c.url != "stomp://guest:guest@127.0.0.1:61613" || c.subject != "/topic/bench.{n}" || c.ack != "client-individual" || c.prefetch != 100 {
				t.Errorf("url %q subject %q ack %q prefetch %d", c.url, c.subject, c.ack, c.prefetch)
			}
			if w := c.dialect.wildcard(c.subject); w != "/topic/bench.*" || !c.dialect.matches(w, "/topic/bench.7") || c.dialect.matches(w, "/topic/other.7") {
				t.Errorf("wildcard %q", w)
			}
		}},
		{"stomp work queue", []string{"-proto", "stomp", "-scenario", "queue", "-pubs", "4", "-subs", "4", "-durable", "-confirm", "-inflight", "256", "-ack", "client", "-prefetch", "10"}, "", func(t *testing.T, c *config) {
			if c.subject != "/queue/ledge-bench" || !c.durable || !c.confirm || c.inflight != 256 || c.ack != "client" || c.prefetch != 10 {
				t.Errorf("subject %q durable %v confirm %v inflight %d ack %q prefetch %d", c.subject, c.durable, c.confirm, c.inflight, c.ack, c.prefetch)
			}
		}},
		{"stomp idle heart-beats", []string{"-proto", "stomp", "-scenario", "idle", "-clients", "10", "-keepalive", "5s"}, "", nil},
		{"stomp bad ack mode", []string{"-proto", "stomp", "-ack", "never"}, "auto, client or client-individual", nil},
		{"stomp ack with amqp", []string{"-proto", "amqp", "-ack", "auto"}, "-ack applies only to -proto stomp", nil},
		{"stomp auto-ack", []string{"-proto", "stomp", "-auto-ack"}, "STOMP's is -ack auto", nil},
		{"stomp exchange flag", []string{"-proto", "stomp", "-exchange", "x"}, "-exchange applies only to -proto amqp", nil},
		{"stomp not a destination", []string{"-proto", "stomp", "-subject", "bench.{n}"}, "a STOMP destination", nil},
		{"stomp temp queue", []string{"-proto", "stomp", "-subject", "/temp-queue/x"}, "a STOMP destination", nil},
		{"stomp empty topic", []string{"-proto", "stomp", "-subject", "/topic/"}, "names no topic", nil},
		{"stomp queue on a topic", []string{"-proto", "stomp", "-scenario", "queue", "-subject", "/topic/jobs"}, "give -subject /queue/NAME", nil},
		{"stomp fanout on a queue", []string{"-proto", "stomp", "-scenario", "fanout", "-subject", "/queue/logs"}, "fanout needs a destination that copies", nil},
		{"stomp fanin on queues", []string{"-proto", "stomp", "-scenario", "fanin", "-subject", "/queue/in.{n}"}, "a queue destination has no {n}", nil},
		{"stomp queue flag", []string{"-proto", "stomp", "-scenario", "queue", "-queue", "q"}, "named by the destination", nil},
		{"stomp has no streams", []string{"-proto", "stomp", "-scenario", "jspub"}, "STOMP has no streams", nil},
		{"confirm with nats", []string{"-scenario", "pub", "-durable"}, "-durable applies only to -proto amqp and stomp", nil},
		{"amqp defaults", []string{"-proto", "amqp"}, "", func(t *testing.T, c *config) {
			if c.url != "amqp://guest:guest@127.0.0.1:5672/" || c.subject != "bench.{n}" || c.exchange != "amq.topic" || c.prefetch != 100 || c.replyTo != "direct" {
				t.Errorf("url %q subject %q exchange %q prefetch %d reply-to %q", c.url, c.subject, c.exchange, c.prefetch, c.replyTo)
			}
		}},
		{"amqp work queue", []string{"-proto", "amqp", "-scenario", "queue", "-pubs", "4", "-subs", "4", "-exchange", "", "-subject", "jobs", "-durable", "-confirm", "-inflight", "256"}, "", func(t *testing.T, c *config) {
			if c.exchange != "" || !c.durable || !c.confirm || c.inflight != 256 || c.pubs != 4 || c.subs != 4 {
				t.Errorf("exchange %q durable %v confirm %v inflight %d pubs %d subs %d", c.exchange, c.durable, c.confirm, c.inflight, c.pubs, c.subs)
			}
		}},
		{"amqp topic wildcard", []string{"-proto", "amqp", "-scenario", "fanin", "-subject", "site.{n}.temp"}, "", func(t *testing.T, c *config) {
			if w := c.dialect.wildcard(c.subject); w != "site.*.temp" || !c.dialect.matches("site.#", "site") {
				t.Errorf("wildcard %q", w)
			}
		}},
		{"amqp flag with nats", []string{"-confirm"}, "-confirm applies only to -proto amqp and stomp", nil},
		{"mqtt flag with amqp", []string{"-proto", "amqp", "-qos", "1"}, "-qos applies only to -proto mqtt", nil},
		{"inflight with nats", []string{"-inflight", "5"}, "-inflight applies only to -proto mqtt, amqp and stomp", nil},
		{"amqp direct exchange needs literal keys", []string{"-proto", "amqp", "-scenario", "fanin", "-exchange", "amq.direct"}, "routes by exact key", nil},
		{"amqp default exchange cannot fan out", []string{"-proto", "amqp", "-scenario", "fanout", "-exchange", "", "-subject", "x"}, "fanout needs an exchange", nil},
		{"amqp default exchange names the queue", []string{"-proto", "amqp", "-scenario", "queue", "-exchange", "", "-subject", "x", "-queue", "q"}, "queue is named by -subject", nil},
		{"amqp reserved exchange", []string{"-proto", "amqp", "-exchange", "amq.fanout"}, "-exchange \"amq.fanout\"", nil},
		{"amqp bad reply-to", []string{"-proto", "amqp", "-scenario", "reqrep", "-reply-to", "pigeon"}, "direct or queue", nil},
		{"amqp confirm for jsconsume", []string{"-proto", "amqp", "-scenario", "jsconsume", "-confirm"}, "-confirm applies only to", nil},
		{"amqp url of another protocol", []string{"-proto", "amqp", "-url", "nats://localhost:4222"}, "is not a amqp URL (use -proto nats)", nil},
		{"mqtt defaults", []string{"-proto", "mqtt"}, "", func(t *testing.T, c *config) {
			if c.url != "mqtt://127.0.0.1:1883" || c.subject != "bench/{n}" || c.qos != 0 || c.mqttVersion != 3 || c.inflight != 100 {
				t.Errorf("url %q subject %q qos %d version %d inflight %d", c.url, c.subject, c.qos, c.mqttVersion, c.inflight)
			}
		}},
		{"mqtt topic template", []string{"-proto", "mqtt", "-subject", "site/{n}/temp", "-qos", "1", "-mqtt-version", "5"}, "", func(t *testing.T, c *config) {
			if c.dialect.wildcard(c.subject) != "site/+/temp" || c.mqttVersion != 5 || c.qos != 1 {
				t.Errorf("subject %q version %d qos %d", c.subject, c.mqttVersion, c.qos)
			}
		}},
		{"mqtt wildcard topic", []string{"-proto", "mqtt", "-subject", "site/+/temp"}, "not the wildcard", nil},
		{"mqtt flag with nats", []string{"-qos", "1"}, "-qos applies only to -proto mqtt", nil},
		{"bad qos", []string{"-proto", "mqtt", "-qos", "3"}, "-qos 3", nil},
		{"bad mqtt version", []string{"-proto", "mqtt", "-mqtt-version", "4.0"}, "3.1.1 or 5", nil},
		{"idle default duration", []string{"-proto", "mqtt", "-scenario", "idle", "-clients", "10"}, "", func(t *testing.T, c *config) {
			if c.subs != 10 || c.duration != 10*time.Second || c.count != 0 {
				t.Errorf("subs %d duration %v count %d", c.subs, c.duration, c.count)
			}
		}},
		{"idle with count", []string{"-scenario", "idle", "-count", "5"}, "idle sends no messages", nil},
		{"persistent needs receivers", []string{"-proto", "mqtt", "-scenario", "pub", "-persistent"}, "-persistent applies only to", nil},
		{"url without host", []string{"-url", "nats://"}, "has no host", nil},
		{"zero count", []string{"-count", "0"}, "-count 0: must be at least 1", nil},
		{"negative duration", []string{"-duration", "-1s"}, "must be positive", nil},
		{"bad duration", []string{"-duration", "ten"}, "invalid value", nil},
		{"negative size", []string{"-size", "-1"}, "-size -1", nil},
		{"huge size", []string{"-size", "100000000"}, "-size 100000000", nil},
		{"negative rate", []string{"-rate", "-5"}, "-rate -5", nil},
		{"zero clients", []string{"-clients", "0"}, "-clients 0", nil},
		{"clients and subs on one side", []string{"-scenario", "fanout", "-clients", "3", "-subs", "4"}, "-clients and -subs both set", nil},
		{"subscribers for pub", []string{"-scenario", "pub", "-subs", "2"}, "scenario pub has none", nil},
		{"no publishers for fanin", []string{"-scenario", "fanin", "-pubs", "0"}, "needs at least one", nil},
		{"uneven pairs", []string{"-pubs", "2", "-subs", "3"}, "pubsub runs pairs", nil},
		{"wildcard subject", []string{"-subject", "site.*.temp"}, "not the wildcard", nil},
		{"unknown template variable", []string{"-subject", "site.{id}.temp"}, "only template variable", nil},
		{"stream flag outside js", []string{"-create-stream"}, "-create-stream applies only to jspub, jsconsume", nil},
		{"queue flag outside queue", []string{"-scenario", "fanout", "-queue", "q"}, "-queue applies only to queue, reqrep", nil},
		{"rate for jsconsume", []string{"-scenario", "jsconsume", "-rate", "10"}, "-rate applies only to", nil},
		{"bad stream name", []string{"-scenario", "jspub", "-stream", "a.b"}, "-stream \"a.b\"", nil},
		{"plot not svg", []string{"-plot", "out.png"}, "name it .svg", nil},
		{"stray argument", []string{"pubsub"}, `unexpected argument "pubsub"`, nil},
		{"unknown flag", []string{"-msgs", "10"}, "flag provided but not defined: -msgs", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := parseArgs(c.args, &bytes.Buffer{})
			if c.want == "" {
				if err != nil {
					t.Fatalf("parseArgs(%q): %v", c.args, err)
				}
				if c.check != nil {
					c.check(t, cfg)
				}
				return
			}
			var u errUsage
			if !errors.As(err, &u) {
				t.Fatalf("parseArgs(%q) = %v, want a usage error", c.args, err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("parseArgs(%q) = %q, want it to say %q", c.args, err, c.want)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	var out bytes.Buffer
	_, err := parseArgs([]string{"-h"}, &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
	for _, s := range scenarios {
		if !strings.Contains(out.String(), s.name) {
			t.Errorf("help does not list scenario %s", s.name)
		}
	}
}

// TestBadArgumentsExit2 runs the command: a bad command line is told
// apart from a failed run by its exit status.
func TestBadArgumentsExit2(t *testing.T) {
	args := []string{os.Args[0], "-scenario", "nope"}
	// Under qemu-user without binfmt_misc the test binary cannot be
	// executed directly; .ci/run and scripts/qemu-test.sh name the
	// emulator.
	if emu := os.Getenv("LEDGE_TEST_EMULATOR"); emu != "" {
		args = append([]string{emu}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), "LEDGE_BENCH_MAIN=1")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Fatalf("exit: %v, want status 2; output:\n%s", err, out)
	}
	if !strings.Contains(string(out), `-scenario "nope"`) {
		t.Fatalf("output does not name the bad value:\n%s", out)
	}
}

func TestSplit(t *testing.T) {
	got := split(10, 3)
	if len(got) != 3 || got[0] != 4 || got[1] != 3 || got[2] != 3 {
		t.Fatalf("split(10, 3) = %v", got)
	}
}
