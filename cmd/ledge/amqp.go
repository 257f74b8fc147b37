package main

import (
	"fmt"
	"log/slog"

	"github.com/ledgemq/ledge/amqpgw"
	"github.com/ledgemq/ledge/broker"
	lnet "github.com/ledgemq/ledge/net"
	"github.com/ledgemq/ledge/router"
)

// listenAMQP serves AMQP 0-9-1 on cfg.amqpAddr, on the live router the
// other protocols share so that amq.topic bridges them, and shows its
// connections and queues on the HTTP port (mw). The returned function
// stops the gateway; call it after the listener has shut down.
func listenAMQP(cfg *config, logger *slog.Logger, live *router.Router[broker.Receiver], b *broker.Broker, netOpts lnet.Options, mw *monitorWiring) (*lnet.Server, func(), error) {
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
	mw.addAMQP(gw)
	mw.addListener("amqp", "amqp", ln)
	return ln, gw.Close, nil
}
