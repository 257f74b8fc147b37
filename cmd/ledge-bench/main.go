package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"
)

// version is ledge-bench's release, set at build time with
// -ldflags "-X main.version=...".
var version = "dev"

// config is a validated command line.
type config struct {
	url          string
	proto        string
	scenario     *scenario
	pubs, subs   int
	size         int
	count        uint64 // total messages, split over publishers; 0: bounded by duration only
	duration     time.Duration
	rate         float64 // messages per second per publisher; 0: as fast as possible
	subject      string
	queue        string
	warmup       time.Duration
	grace        time.Duration
	timeout      time.Duration
	stream       string
	createStream bool
	consumer     string
	maxPending   int
	json         bool
	plot         string
	quiet        bool
	maxAhead     uint64
	// MQTT
	qos         int
	mqttVersion int
	keepAlive   time.Duration
	inflight    int
	persistent  bool
	dialect     dialect
	// AMQP
	exchange string
	durable  bool
	confirm  bool
	prefetch int
	autoAck  bool
	replyTo  string
	// STOMP
	ack string
}

// errUsage marks a bad command line: main prints it with a hint and
// exits 2.
type errUsage struct{ msg string }

func (e errUsage) Error() string { return e.msg }

func usagef(format string, a ...any) error { return errUsage{fmt.Sprintf(format, a...)} }

func main() {
	cfg, err := parseArgs(os.Args[1:], os.Stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return
	case err != nil:
		fmt.Fprintf(os.Stderr, "ledge-bench: %v\nRun ledge-bench -h for the flags.\n", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := run(ctx, cfg, os.Stdout, isTerminal(os.Stdout))
	if res != nil {
		if werr := writeOutputs(cfg, res, os.Stdout); werr != nil && err == nil {
			err = werr
		}
	}
	if err == nil && res != nil && res.Errors > 0 {
		// The figures are printed, but a script should not take them
		// for a clean run.
		err = fmt.Errorf("%d errors, the first: %s", res.Errors, res.FirstError)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ledge-bench:", err)
		os.Exit(1)
	}
}

// parseArgs reads the command line. Help goes to out; an invalid command
// line returns an errUsage (or the flag package's own error).
func parseArgs(args []string, out io.Writer) (*config, error) {
	fs := flag.NewFlagSet("ledge-bench", flag.ContinueOnError)
	fs.SetOutput(out)
	var (
		c       config
		scen    string
		clients int
		count   int64
		showVer bool
		mqttVer string
	)
	fs.StringVar(&c.url, "url", "nats://127.0.0.1:4222", "broker `URL` (mqtt://127.0.0.1:1883 with -proto mqtt, amqp://guest:guest@127.0.0.1:5672/ with -proto amqp, stomp://guest:guest@127.0.0.1:61613 with -proto stomp)")
	fs.StringVar(&c.proto, "proto", "nats", "protocol: "+protocolNames())
	fs.StringVar(&scen, "scenario", "pubsub", "what to run: "+scenarioNames())
	fs.IntVar(&clients, "clients", 0, "the scenario's many side: publishers, subscribers, workers, requesters or consumers (see the table above)")
	fs.IntVar(&c.pubs, "pubs", 0, "publishers (requesters in reqrep); default per scenario")
	fs.IntVar(&c.subs, "subs", 0, "subscribers (workers in queue, responders in reqrep, consumers in jsconsume); default per scenario")
	fs.IntVar(&c.size, "size", 128, "message size in `bytes`; below 20 messages carry no sequence number or timestamp")
	fs.Int64Var(&count, "count", 0, "messages in all, split over the publishers (default 100000 unless -duration is given)")
	fs.DurationVar(&c.duration, "duration", 0, "stop publishing after this long (with -count: whichever comes first)")
	fs.Float64Var(&c.rate, "rate", 0, "target messages per second of each publisher, paced evenly (0: as fast as possible)")
	fs.StringVar(&c.subject, "subject", "bench.{n}", "subject (an MQTT topic with -proto mqtt, default bench/{n}; an AMQP routing key with -proto amqp; a destination with -proto stomp, default /topic/bench.{n}, /queue/ledge-bench for queue and reqrep); {n} is replaced by the client's index from 0, e.g. site.{n}.temp or site/{n}/temp")
	fs.StringVar(&c.queue, "queue", "ledge-bench", "queue group of the queue and reqrep scenarios")
	fs.DurationVar(&c.warmup, "warmup", 0, "publish this long before measuring; those messages are not counted")
	fs.DurationVar(&c.grace, "grace", 2*time.Second, "how long receivers wait for missing messages after the last one arrived")
	fs.DurationVar(&c.timeout, "timeout", 5*time.Second, "how long a request, a publish ack or a flush may take")
	fs.StringVar(&c.stream, "stream", "LEDGEBENCH", "stream of jspub and jsconsume")
	fs.BoolVar(&c.createStream, "create-stream", false, "jspub, jsconsume: create the stream if it does not exist, capturing -subject")
	fs.StringVar(&c.consumer, "consumer", "ledge-bench", "jsconsume: the durable pull consumer (created if missing, kept afterwards)")
	fs.IntVar(&c.maxPending, "max-pending", 256, "jspub: publishes awaiting their ack per publisher; jsconsume: messages fetched at a time")
	fs.Uint64Var(&c.maxAhead, "max-ahead", 0, "publishers wait while more than this many deliveries are due and not yet received, so the broker is measured without a growing backlog (0: no limit)")
	fs.IntVar(&c.qos, "qos", 0, "mqtt: QoS of publishes and subscriptions, 0, 1 or 2")
	fs.StringVar(&mqttVer, "mqtt-version", "3.1.1", "mqtt: protocol version, 3.1.1 or 5")
	fs.DurationVar(&c.keepAlive, "keepalive", 60*time.Second, "mqtt: keep alive of every connection; amqp: the heartbeat asked for (the broker's, when lower, wins); stomp: the heart-beat offered and asked for both ways (the broker's, when higher, wins); a quiet connection pings at half of it")
	fs.IntVar(&c.inflight, "inflight", 100, "mqtt: QoS 1 and 2 publishes awaiting their acknowledgement per publisher (capped by a 5.0 broker's receive maximum); amqp with -confirm: publishes awaiting their confirm per publisher; stomp with -confirm: SENDs awaiting their receipt per publisher")
	fs.BoolVar(&c.persistent, "persistent", false, "mqtt: receivers keep a persistent session (clean session off), so the broker stores their QoS 1 and 2 messages as for an absent device; it is discarded at the end")
	fs.StringVar(&c.exchange, "exchange", "amq.topic", "amqp: the exchange publishers publish to and queues are bound to with the receivers' filters: amq.topic, amq.direct (exact keys only), \"\" (the default exchange: each receiver consumes the queue named by its subject) or another name (a durable topic exchange, declared if missing)")
	fs.BoolVar(&c.durable, "durable", false, "amqp: the shared queue (queue, reqrep) is durable and messages are persistent (delivery mode 2); stomp: SENDs carry persistent:true (a /queue is durable in any case)")
	fs.BoolVar(&c.confirm, "confirm", false, "amqp: publishers use publisher confirms; stomp: every SEND asks for a receipt; at most -inflight awaited per publisher")
	fs.IntVar(&c.prefetch, "prefetch", 100, "amqp: basic.qos prefetch count of each consumer; stomp: the prefetch-count header of subscriptions with acks (0: no limit)")
	fs.BoolVar(&c.autoAck, "auto-ack", false, "amqp: consumers in no-ack mode instead of acknowledging each message")
	fs.StringVar(&c.ack, "ack", stompAckIndividual, "stomp: the ack mode of subscriptions: auto (none sent), client (one cumulative ACK per read) or client-individual (an ACK per message)")
	fs.StringVar(&c.replyTo, "reply-to", "direct", "amqp reqrep: requesters take replies on direct (RabbitMQ's amq.rabbitmq.reply-to) or queue (an exclusive queue each)")
	fs.BoolVar(&c.json, "json", false, "print one JSON object instead of the human summary")
	fs.StringVar(&c.plot, "plot", "", "write the latency distribution and the rate over time to this SVG `file`")
	fs.BoolVar(&c.quiet, "quiet", false, "no progress line and no human summary")
	fs.BoolVar(&showVer, "version", false, "print the version and exit")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "ledge-bench %s: load generator for ledge and other brokers.\n\n", version)
		fmt.Fprintf(fs.Output(), "Usage: ledge-bench [flags]\n\nScenarios (-scenario) and what -clients sets:\n\n")
		for _, s := range scenarios {
			fmt.Fprintf(fs.Output(), "  %-10s %s\n", s.name, s.summary)
		}
		fmt.Fprintf(fs.Output(), "\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, errUsage{err.Error()}
	}
	if showVer {
		fmt.Fprintln(out, "ledge-bench", version)
		return nil, flag.ErrHelp
	}
	if fs.NArg() > 0 {
		return nil, usagef("unexpected argument %q (flags start with -)", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	s, ok := lookupScenario(scen)
	if !ok {
		return nil, usagef("-scenario %q: choose one of %s", scen, scenarioNames())
	}
	c.scenario = s
	proto, err := lookupProtocol(c.proto)
	if err != nil {
		return nil, errUsage{err.Error()}
	}
	c.dialect = proto.Dialect
	if !set["url"] {
		c.url = proto.DefaultURL
	}
	if !set["subject"] {
		c.subject = proto.DefaultSubject
		if c.dialect == stompDialect && s.queue {
			// Workers compete for the messages of one queue.
			c.subject = "/queue/ledge-bench"
		}
	}
	if err := checkURL(c.url, c.proto); err != nil {
		return nil, err
	}

	// Clients: -clients sets the scenario's many side; -pubs and -subs
	// set either side, but not the same side twice.
	if set["clients"] && clients < 1 {
		return nil, usagef("-clients %d: must be at least 1", clients)
	}
	for _, side := range []struct {
		name  string
		n     *int
		dflt  int
		viaCl bool
	}{
		{"pubs", &c.pubs, s.pubs, s.clients == sidePubs || s.clients == sideBoth},
		{"subs", &c.subs, s.subs, s.clients == sideSubs || s.clients == sideBoth},
	} {
		switch {
		case set[side.name] && set["clients"] && side.viaCl:
			return nil, usagef("-clients and -%s both set the %s of %s; give one", side.name, side.name, s.name)
		case set[side.name]:
			if *side.n < 0 {
				return nil, usagef("-%s %d: must not be negative", side.name, *side.n)
			}
			if side.dflt == 0 && *side.n != 0 {
				return nil, usagef("-%s: scenario %s has none", side.name, s.name)
			}
			if side.dflt > 0 && *side.n == 0 {
				return nil, usagef("-%s 0: scenario %s needs at least one", side.name, s.name)
			}
		case set["clients"] && side.viaCl:
			*side.n = clients
		default:
			*side.n = side.dflt
		}
	}
	if s.name == "pubsub" && c.pubs != c.subs {
		return nil, usagef("pubsub runs pairs (subscriber n hears publisher n): -pubs %d and -subs %d differ; fanout and fanin are the uneven shapes", c.pubs, c.subs)
	}

	switch {
	case set["count"] && count < 1:
		return nil, usagef("-count %d: must be at least 1", count)
	case set["count"]:
		c.count = uint64(count)
	case !set["duration"] && s.kind == kindIdle:
		c.duration = 10 * time.Second
	case !set["duration"]:
		c.count = 100000
	}
	if s.kind == kindIdle && set["count"] {
		return nil, usagef("-count: idle sends no messages; -duration says how long the connections stay")
	}
	if set["duration"] && c.duration <= 0 {
		return nil, usagef("-duration %v: must be positive", c.duration)
	}
	if c.size < 0 || c.size > 64<<20 {
		return nil, usagef("-size %d: must be between 0 and 64 MiB", c.size)
	}
	if c.rate < 0 {
		return nil, usagef("-rate %v: must not be negative", c.rate)
	}
	if c.warmup < 0 || c.grace < 0 || c.timeout <= 0 {
		return nil, usagef("-warmup and -grace must not be negative, -timeout must be positive")
	}
	if err := c.dialect.checkTemplate(c.subject); err != nil {
		return nil, usagef("-subject: %v", err)
	}
	if c.queue == "" || strings.ContainsAny(c.queue, " \t.*>") {
		return nil, usagef("-queue %q: a queue group is one token without wildcards", c.queue)
	}
	if c.maxPending < 1 {
		return nil, usagef("-max-pending %d: must be at least 1", c.maxPending)
	}
	if c.stream == "" || strings.ContainsAny(c.stream, " \t.*>/\\") {
		return nil, usagef("-stream %q: a stream name has no spaces, dots, wildcards or slashes", c.stream)
	}
	if c.consumer == "" || strings.ContainsAny(c.consumer, " \t.*>/\\") {
		return nil, usagef("-consumer %q: a consumer name has no spaces, dots, wildcards or slashes", c.consumer)
	}
	// Flags that only some scenarios read are refused elsewhere, so a
	// typo in -scenario does not run something else silently.
	only := map[string][]string{
		"stream":        {"jspub", "jsconsume"},
		"create-stream": {"jspub", "jsconsume"},
		"consumer":      {"jsconsume"},
		"max-pending":   {"jspub", "jsconsume"},
		"queue":         {"queue", "reqrep"},
		"rate":          {"pub", "pubsub", "fanout", "fanin", "queue", "reqrep", "jspub"},
		"persistent":    {"pubsub", "fanout", "fanin", "queue"},
		"max-ahead":     {"pubsub", "fanout", "fanin", "queue"},
		"durable":       {"pub", "pubsub", "fanout", "fanin", "queue", "reqrep"},
		"confirm":       {"pub", "pubsub", "fanout", "fanin", "queue"},
		"prefetch":      {"pubsub", "fanout", "fanin", "queue", "reqrep"},
		"auto-ack":      {"pubsub", "fanout", "fanin", "queue", "reqrep"},
		"reply-to":      {"reqrep"},
		"ack":           {"pubsub", "fanout", "fanin", "queue", "reqrep"},
	}
	if c.proto != "mqtt" {
		for _, name := range []string{"qos", "mqtt-version", "persistent"} {
			if set[name] {
				return nil, usagef("-%s applies only to -proto mqtt", name)
			}
		}
	}
	// AMQP's flags go by the dialect, so that the tests' amqp091-go
	// client takes them too.
	isAMQP, isSTOMP := c.dialect == amqpDialect, c.dialect == stompDialect
	if c.proto != "mqtt" && !isAMQP && !isSTOMP {
		for _, name := range []string{"keepalive", "inflight"} {
			if set[name] {
				return nil, usagef("-%s applies only to -proto mqtt, amqp and stomp", name)
			}
		}
	}
	if !isAMQP && !isSTOMP {
		for _, name := range []string{"durable", "confirm", "prefetch"} {
			if set[name] {
				return nil, usagef("-%s applies only to -proto amqp and stomp", name)
			}
		}
	}
	if !isAMQP {
		for _, name := range []string{"exchange", "auto-ack", "reply-to"} {
			if set[name] {
				if isSTOMP && name == "auto-ack" {
					return nil, usagef("-auto-ack applies only to -proto amqp; STOMP's is -ack auto")
				}
				return nil, usagef("-%s applies only to -proto amqp", name)
			}
		}
	} else if err := checkAMQP(&c, s, set); err != nil {
		return nil, err
	}
	if !isSTOMP {
		if set["ack"] {
			return nil, usagef("-ack applies only to -proto stomp")
		}
	} else if err := checkSTOMP(&c, s, set); err != nil {
		return nil, err
	}
	if c.qos < 0 || c.qos > 2 {
		return nil, usagef("-qos %d: MQTT has QoS 0, 1 and 2", c.qos)
	}
	switch mqttVer {
	case "3.1.1", "3", "4":
		c.mqttVersion = 3
	case "5", "5.0":
		c.mqttVersion = 5
	default:
		return nil, usagef("-mqtt-version %q: 3.1.1 or 5", mqttVer)
	}
	if c.keepAlive < 0 || c.keepAlive > 65535*time.Second || (c.keepAlive > 0 && c.keepAlive < time.Second) {
		return nil, usagef("-keepalive %v: 0 (none) or 1s to 18h12m15s", c.keepAlive)
	}
	if c.inflight < 1 || c.inflight > 65000 {
		return nil, usagef("-inflight %d: between 1 and 65000", c.inflight)
	}
	var names []string
	for name := range only {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if set[name] && !contains(only[name], s.name) {
			return nil, usagef("-%s applies only to %s, not %s", name, strings.Join(only[name], ", "), s.name)
		}
	}
	if c.plot != "" && !strings.HasSuffix(strings.ToLower(c.plot), ".svg") {
		return nil, usagef("-plot %q: the plot is an SVG file; name it .svg", c.plot)
	}
	return &c, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// checkURL refuses a URL the protocol cannot dial: a scheme of another
// protocol, or a malformed address.
func checkURL(raw, proto string) error {
	if raw == "" {
		return usagef("-url is empty")
	}
	if !strings.Contains(raw, "://") {
		return nil // host:port; the client adds its default scheme
	}
	u, err := url.Parse(raw)
	if err != nil {
		return usagef("-url %q: %v", raw, err)
	}
	if !contains(protocols[proto].Schemes, u.Scheme) {
		if _, other := protocols[u.Scheme]; !other {
			return usagef("-url %q: %s is not a protocol this build speaks (%s)", raw, u.Scheme, protocolNames())
		}
		return usagef("-url %q is not a %s URL (use -proto %s)", raw, proto, u.Scheme)
	}
	if u.Host == "" {
		return usagef("-url %q has no host", raw)
	}
	return nil
}

// isTerminal reports whether f is a terminal, where a live progress line
// helps; in a pipe or a file it would be noise.
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// checkAMQP refuses AMQP settings that cannot route the scenario's
// messages: an exchange that matches exact keys needs literal filters,
// and the default exchange names each receiver's queue by its subject.
func checkAMQP(c *config, s *scenario, set map[string]bool) error {
	switch {
	case len(c.exchange) > 255:
		return usagef("-exchange: a name of at most 255 bytes")
	case strings.HasPrefix(c.exchange, "amq.") && c.exchange != "amq.topic" && c.exchange != "amq.direct":
		return usagef("-exchange %q: the tool binds with routing keys: amq.topic, amq.direct, \"\" or an exchange of its own", c.exchange)
	case c.replyTo != "direct" && c.replyTo != "queue":
		return usagef("-reply-to %q: direct or queue", c.replyTo)
	case c.prefetch < 0 || c.prefetch > 65535:
		return usagef("-prefetch %d: between 0 and 65535", c.prefetch)
	case len(c.subject) > 240:
		return usagef("-subject: a routing key of at most 255 bytes")
	}
	literal := c.dialect.wildcard(c.subject) == c.subject
	direct := c.exchange == "" || c.exchange == "amq.direct"
	hasRecv := s.subs > 0 && !s.pairs
	if direct && hasRecv && !literal {
		return usagef("-exchange %q routes by exact key, so %s's receivers cannot bind to all of %q: give a -subject without {n}", c.exchange, s.name, c.subject)
	}
	if c.exchange == "" {
		switch {
		case s.name == "fanout":
			return usagef("fanout needs an exchange that copies each message to every subscriber's queue: -exchange amq.topic or amq.direct")
		case s.kind == kindStorePub || s.kind == kindStoreCons:
			return usagef("%s binds its queue to an exchange: -exchange amq.topic or amq.direct", s.name)
		case set["queue"]:
			return usagef("-queue: with the default exchange the queue is named by -subject")
		}
	}
	return nil
}

// checkSTOMP refuses STOMP settings that cannot carry the scenario:
// destinations that are not RabbitMQ's, subscribers of one /queue where
// each should hear every message, and the durable stream scenarios, which
// STOMP has no streams for.
func checkSTOMP(c *config, s *scenario, set map[string]bool) error {
	switch {
	case s.kind == kindStorePub || s.kind == kindStoreCons:
		return usagef("-scenario %s: STOMP has no streams; a durable publish is -durable -confirm (persistent:true with a receipt per SEND) on pub, pubsub, fanout, fanin or queue", s.name)
	case c.ack != stompAckAuto && c.ack != stompAckClient && c.ack != stompAckIndividual:
		return usagef("-ack %q: auto, client or client-individual", c.ack)
	case c.prefetch < 0 || c.prefetch > 65535:
		return usagef("-prefetch %d: between 0 and 65535", c.prefetch)
	case set["queue"]:
		return usagef("-queue: with -proto stomp the queue is named by the destination, -subject /queue/NAME")
	}
	queue := strings.HasPrefix(c.subject, "/queue/") || strings.HasPrefix(c.subject, "/amq/queue/")
	exchange := strings.HasPrefix(c.subject, "/exchange/") && strings.Count(c.subject, "/") >= 3
	if !queue && !exchange && !strings.HasPrefix(c.subject, "/topic/") {
		return usagef("-subject %q: a STOMP destination to send to: /topic/KEY, /queue/NAME, /amq/queue/NAME or /exchange/NAME/KEY", c.subject)
	}
	for _, p := range []string{"/topic/", "/queue/", "/amq/queue/"} {
		if c.subject == p {
			return usagef("-subject %q names no %s", c.subject, strings.Trim(p, "/"))
		}
	}
	literal := c.dialect.wildcard(c.subject) == c.subject
	hasRecv := s.subs > 0 && !s.pairs
	switch {
	case s.queue && !queue:
		return usagef("%s's workers compete for one queue's messages: give -subject /queue/NAME (not %q)", s.name, c.subject)
	case s.name == "fanout" && queue:
		return usagef("fanout needs a destination that copies each message to every subscriber: /topic/KEY or /exchange/NAME/KEY, not a queue, whose subscribers compete")
	case queue && hasRecv && !literal:
		return usagef("%s's receivers share the queue they subscribe to, so a queue destination has no {n}: %q", s.name, c.subject)
	}
	return nil
}
