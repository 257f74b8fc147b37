package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ledgemq/ledge/amqpgw"
	"github.com/ledgemq/ledge/broker"
	lnet "github.com/ledgemq/ledge/net"
	"github.com/ledgemq/ledge/router"
)

// listenAMQP serves AMQP 0-9-1 on cfg.amqpAddr, on the live router the
// other protocols share so that amq.topic bridges them. The returned
// function forgets the gateway's live bindings; call it after the
// listener has shut down.
func listenAMQP(cfg *config, logger *slog.Logger, live *router.Router[broker.Receiver], b *broker.Broker, netOpts lnet.Options) (*lnet.Server, func(), error) {
	gw, err := amqpgw.NewServer(amqpgw.Options{
		MaxMessageSize: cfg.maxPayload,
		Logger:         logger.With("proto", "amqp"),
	}, live, b)
	if err != nil {
		return nil, nil, err
	}
	opts := netOpts
	opts.MaxInput = gw.MaxInput()
	ln, err := lnet.Listen("tcp", cfg.amqpAddr, gw.Handler(), opts)
	if err != nil {
		gw.Close()
		return nil, nil, fmt.Errorf("amqp listener: %w", err)
	}
	logger.Info("listening", "proto", "amqp", "addr", ln.Addr().String(), "transport", ln.Transport())
	return ln, gw.Close, nil
}

// listAMQPQueues prints the AMQP queues with the columns asked for, as
// "rabbitmqctl list_queues" does: a header line, then one tab-separated
// line per queue. An AMQP queue is a stream AMQP_q_... whose description
// is the queue's name, read by its one consumer.
func listAMQPQueues(ctx context.Context, js jetstream.JetStream, cols []string, w io.Writer) error {
	if len(cols) == 0 {
		cols = []string{"name", "messages"}
	}
	for _, c := range cols {
		switch c {
		case "name", "messages_ready", "messages_unacknowledged", "messages":
		default:
			return fmt.Errorf("ctl: list_queues: column %q is not available (name, messages_ready, messages_unacknowledged, messages)", c)
		}
	}
	fmt.Fprintln(w, "Listing queues for vhost / ...")
	fmt.Fprintln(w, strings.Join(cols, "\t"))
	streams := js.ListStreams(ctx)
	for si := range streams.Info() {
		if !strings.HasPrefix(si.Config.Name, "AMQP_q_") {
			continue
		}
		var ready, unacked uint64
		s, err := js.Stream(ctx, si.Config.Name)
		if err != nil {
			return fmt.Errorf("stream %s: %w", si.Config.Name, err)
		}
		if c, err := s.Consumer(ctx, "amqp"); err == nil {
			info := c.CachedInfo()
			ready, unacked = info.NumPending, uint64(info.NumAckPending)
		}
		vals := make([]string, len(cols))
		for i, c := range cols {
			switch c {
			case "name":
				vals[i] = si.Config.Description
			case "messages_ready":
				vals[i] = strconv.FormatUint(ready, 10)
			case "messages_unacknowledged":
				vals[i] = strconv.FormatUint(unacked, 10)
			case "messages":
				vals[i] = strconv.FormatUint(ready+unacked, 10)
			}
		}
		fmt.Fprintln(w, strings.Join(vals, "\t"))
	}
	return streams.Err()
}
