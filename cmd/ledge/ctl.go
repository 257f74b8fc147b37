package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/ledgemq/ledge/bridge"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// runCtl is "ledge ctl <command>": operator commands that talk to a
// running broker as a NATS client, so they work on any ledge (or
// nats-server) they can reach.
func runCtl(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	usage := func() {
		fmt.Fprintf(stderr, `Usage: ledge ctl queues [-url nats://host:port]
       ledge ctl uplinks [-url nats://host:port]
       ledge ctl list_queues [-url nats://host:port] [column ...]

queues: every stream's consumers with the messages ready to deliver, delivered
but not acknowledged, redelivered, and the pull requests waiting: the view in
which a worker that forgets to acknowledge stands out.
uplinks: each uplink's state (up, stalled, connecting, down), upstream server,
backlog in messages and bytes, age of the oldest unforwarded message, rate,
messages dropped by the disk budget, and the last error.
list_queues: the AMQP queues, as "rabbitmqctl list_queues" prints them; columns
name, messages_ready, messages_unacknowledged, messages, consumers, durable
(default: name messages).
`)
	}
	if len(args) == 0 || (args[0] != "queues" && args[0] != "uplinks" && args[0] != "list_queues") {
		usage()
		if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
			return flag.ErrHelp
		}
		return errors.New("ctl: want a command: queues, uplinks or list_queues")
	}
	fs := flag.NewFlagSet("ledge ctl "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	defURL := getenv("LEDGE_URL")
	if defURL == "" {
		defURL = nats.DefaultURL
	}
	url := fs.String("url", defURL, "the broker's NATS address (also LEDGE_URL)")
	timeout := fs.Duration("timeout", 5*time.Second, "how long to wait for the broker")
	tlsCA := fs.String("tls-ca", getenv("LEDGE_TLS_CA"), "CA `FILE` to trust when the broker serves TLS (also LEDGE_TLS_CA); a user goes in the URL: nats://user:password@host:port")
	fs.Usage = usage
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	opts := []nats.Option{nats.Timeout(*timeout), nats.Name("ledge ctl")}
	if *tlsCA != "" {
		opts = append(opts, nats.RootCAs(*tlsCA))
	}
	nc, err := nats.Connect(*url, opts...)
	if err != nil {
		return fmt.Errorf("connect %s: %w", *url, err)
	}
	defer nc.Close()
	if args[0] == "uplinks" {
		return listUplinks(nc, *timeout, stdout)
	}
	if args[0] == "list_queues" {
		return listAMQPQueues(nc, *timeout, fs.Args(), stdout)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	return listQueues(ctx, js, stdout)
}

// listQueues prints one line per consumer, and one per stream without
// consumers, like "rabbitmqctl list_queues name messages_ready
// messages_unacknowledged".
func listQueues(ctx context.Context, js jetstream.JetStream, w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STREAM\tCONSUMER\tMESSAGES\tREADY\tUNACKED\tREDELIVERED\tWAITING")
	streams := js.ListStreams(ctx)
	for si := range streams.Info() {
		s, err := js.Stream(ctx, si.Config.Name)
		if err != nil {
			return fmt.Errorf("stream %s: %w", si.Config.Name, err)
		}
		n := 0
		consumers := s.ListConsumers(ctx)
		for ci := range consumers.Info() {
			n++
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\n", si.Config.Name, ci.Name, si.State.Msgs,
				ci.NumPending, ci.NumAckPending, ci.NumRedelivered, ci.NumWaiting)
		}
		if err := consumers.Err(); err != nil {
			return fmt.Errorf("stream %s: consumers: %w", si.Config.Name, err)
		}
		if n == 0 {
			fmt.Fprintf(tw, "%s\t-\t%d\t-\t-\t-\t-\n", si.Config.Name, si.State.Msgs)
		}
	}
	if err := streams.Err(); err != nil {
		return fmt.Errorf("streams: %w", err)
	}
	return tw.Flush()
}

// listUplinks prints one line per uplink from the broker's answer on
// bridge.StatusSubject.
func listUplinks(nc *nats.Conn, timeout time.Duration, w io.Writer) error {
	m, err := nc.Request(bridge.StatusSubject, nil, timeout)
	if errors.Is(err, nats.ErrNoResponders) {
		fmt.Fprintln(w, "no uplinks configured")
		return nil
	}
	if err != nil {
		return fmt.Errorf("uplinks: %w", err)
	}
	var sts []bridge.Status
	if err := json.Unmarshal(m.Data, &sts); err != nil {
		return fmt.Errorf("uplinks: %w", err)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "UPLINK\tSTATE\tSERVER\tMODE\tBACKLOG\tBYTES\tOLDEST\tMSGS/S\tFORWARDED\tDROPPED\tDOWNLINKED\tLAST ERROR")
	for _, s := range sts {
		server := s.Server
		if server == "" {
			server = s.Upstream
		}
		mode := s.Mode
		if mode == "" {
			mode = "-"
		}
		lastErr := "-"
		if s.LastError != "" {
			lastErr = fmt.Sprintf("%s (%s ago)", s.LastError, time.Since(s.LastErrAt).Round(time.Second))
		}
		oldest := "-"
		if s.BacklogMsgs > 0 {
			oldest = (time.Duration(s.OldestAge * float64(time.Second))).Round(time.Second).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\t%.0f\t%d\t%d\t%d\t%s\n", s.Name, s.State, server, mode,
			s.BacklogMsgs, s.BacklogBytes, oldest, s.MsgsPerSec, s.Forwarded, s.Dropped, s.Downlinked, lastErr)
	}
	return tw.Flush()
}
