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

// listenAMQP serves AMQP 0-9-1 on cfg.amqpAddr (and AMQPS on
// cfg.amqpsAddr once TLS is on), on the live router the other protocols
// share so that amq.topic bridges them, and answers "ledge ctl
// list_queues" through a client connection of the broker's own NATS
// listener at natsAddr (when there is one). The returned function stops
// both; call it after the listeners have shut down.
func listenAMQP(cfg *config, logger *slog.Logger, live *router.Router[broker.Receiver], b *broker.Broker, netOpts lnet.Options, natsAddr string) ([]*lnet.Server, func(), error) {
	gw, err := amqpgw.NewServer(amqpgw.Options{
		MaxMessageSize: cfg.maxPayload,
		Auth:           cfg.sec.svc,
		Logger:         logger.With("proto", "amqp"),
	}, live, b)
	if err != nil {
		return nil, nil, err
	}
	var lns []*lnet.Server
	for _, l := range []struct {
		name, addr string
		tls        bool
	}{{"amqp", cfg.amqpAddr, false}, {"amqps", cfg.amqpsAddr, true}} {
		opts := netOpts
		opts.MaxInput = gw.MaxInput()
		if l.tls {
			if opts.TLSConfig = cfg.sec.listenerTLS(); opts.TLSConfig == nil || l.addr == "" {
				continue
			}
		}
		ln, err := lnet.Listen("tcp", l.addr, gw.Handler(), opts)
		if err != nil {
			for _, o := range lns {
				o.Close()
			}
			gw.Close()
			return nil, nil, fmt.Errorf("%s listener: %w", l.name, err)
		}
		logger.Info("listening", "proto", l.name, "addr", ln.Addr().String(), "transport", ln.Transport())
		lns = append(lns, ln)
	}
	var nc *nats.Conn
	if natsAddr != "" {
		if nc, err = serveAMQPQueues(gw, natsAddr, cfg); err != nil {
			logger.Warn("ledge ctl list_queues will show no consumers", "err", err)
		}
	}
	return lns, func() {
		if nc != nil {
			nc.Close()
		}
		gw.Close()
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
