package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ledgemq/ledge/amqpgw"
	"github.com/ledgemq/ledge/broker"
	lnet "github.com/ledgemq/ledge/net"
	"github.com/ledgemq/ledge/router"
)

// amqpQueuesSubject is where "ledge ctl list_queues" asks the running
// broker for its AMQP queues.
const amqpQueuesSubject = "$LEDGE.AMQP.QUEUES"

// newAMQPGateway makes the AMQP gateway, on the live router the other
// protocols share so that amq.topic bridges them: the exchanges and
// queues of AMQP and STOMP clients. Close it after the listeners of both
// have shut down.
func newAMQPGateway(cfg *config, logger *slog.Logger, live *router.Router[broker.Receiver], b *broker.Broker) (*amqpgw.Server, error) {
	return amqpgw.NewServer(amqpgw.Options{
		MaxMessageSize: cfg.maxPayload,
		Logger:         logger.With("proto", "amqp"),
	}, live, b)
}

// listenAMQP serves AMQP 0-9-1 on cfg.amqpAddr and answers "ledge ctl
// list_queues" through a client connection of the broker's own NATS
// listener at natsAddr (when there is one). The returned function stops
// the latter; call it after the listener has shut down.
func listenAMQP(cfg *config, logger *slog.Logger, gw *amqpgw.Server, netOpts lnet.Options, natsAddr string) (*lnet.Server, func(), error) {
	opts := netOpts
	opts.MaxInput = gw.MaxInput()
	ln, err := lnet.Listen("tcp", cfg.amqpAddr, gw.Handler(), opts)
	if err != nil {
		return nil, nil, fmt.Errorf("amqp listener: %w", err)
	}
	logger.Info("listening", "proto", "amqp", "addr", ln.Addr().String(), "transport", ln.Transport())
	var nc *nats.Conn
	if natsAddr != "" {
		if nc, err = serveAMQPQueues(gw, natsAddr, cfg); err != nil {
			logger.Warn("ledge ctl list_queues will show no consumers", "err", err)
		}
	}
	return ln, func() {
		if nc != nil {
			nc.Close()
		}
	}, nil
}

// serveAMQPQueues answers amqpQueuesSubject with the gateway's queues.
func serveAMQPQueues(gw *amqpgw.Server, addr string, cfg *config) (*nats.Conn, error) {
	nc, err := selfConnect(addr, cfg, "ledge amqp queues")
	if err != nil {
		return nil, err
	}
	_, err = nc.Subscribe(amqpQueuesSubject, func(m *nats.Msg) {
		data, _ := json.Marshal(gw.Queues())
		_ = m.Respond(data)
	})
	if err != nil {
		nc.Close()
		return nil, err
	}
	return nc, nc.Flush()
}

// listAMQPQueues prints the AMQP queues with the columns asked for, as
// "rabbitmqctl list_queues" does: a header line, then one tab-separated
// line per queue.
func listAMQPQueues(nc *nats.Conn, timeout time.Duration, cols []string, w io.Writer) error {
	if len(cols) == 0 {
		cols = []string{"name", "messages"}
	}
	for _, c := range cols {
		switch c {
		case "name", "messages_ready", "messages_unacknowledged", "messages", "consumers", "durable":
		default:
			return fmt.Errorf("ctl: list_queues: column %q is not available (name, messages_ready, messages_unacknowledged, messages, consumers, durable)", c)
		}
	}
	m, err := nc.Request(amqpQueuesSubject, nil, timeout)
	if err != nil {
		return fmt.Errorf("ctl: list_queues: %w (is AMQP served?)", err)
	}
	var qs []amqpgw.QueueInfo
	if err := json.Unmarshal(m.Data, &qs); err != nil {
		return fmt.Errorf("ctl: list_queues: %w", err)
	}
	fmt.Fprintln(w, "Listing queues for vhost / ...")
	fmt.Fprintln(w, strings.Join(cols, "\t"))
	for _, q := range qs {
		vals := make([]string, len(cols))
		for i, c := range cols {
			switch c {
			case "name":
				vals[i] = q.Name
			case "messages_ready":
				vals[i] = strconv.FormatUint(q.Ready, 10)
			case "messages_unacknowledged":
				vals[i] = strconv.FormatUint(q.Unacked, 10)
			case "messages":
				vals[i] = strconv.FormatUint(q.Ready+q.Unacked, 10)
			case "consumers":
				vals[i] = strconv.Itoa(q.Consumers)
			case "durable":
				vals[i] = strconv.FormatBool(q.Durable)
			}
		}
		fmt.Fprintln(w, strings.Join(vals, "\t"))
	}
	return nil
}
