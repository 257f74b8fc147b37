package main

import (
	"fmt"
	"log/slog"

	"github.com/ledgemq/ledge/amqpgw"
	"github.com/ledgemq/ledge/broker"
	lnet "github.com/ledgemq/ledge/net"
	"github.com/ledgemq/ledge/router"
)

// newAMQPGateway makes the AMQP gateway, on the live router the other
// protocols share so that amq.topic bridges them: the exchanges and
// queues of AMQP and STOMP clients, shown on the HTTP port (mw). Close it
// after the listeners of both have shut down.
func newAMQPGateway(cfg *config, logger *slog.Logger, live *router.Router[broker.Receiver], b *broker.Broker, mw *monitorWiring) (*amqpgw.Server, error) {
	gw, err := amqpgw.NewServer(amqpgw.Options{
		MaxMessageSize: cfg.maxPayload,
		Logger:         logger.With("proto", "amqp"),
	}, live, b)
	if err != nil {
		return nil, err
	}
	mw.addAMQP(gw)
	return gw, nil
}

// listenAMQP serves AMQP 0-9-1 on cfg.amqpAddr for the gateway gw and
// shows its connections on the HTTP port (mw).
func listenAMQP(cfg *config, logger *slog.Logger, gw *amqpgw.Server, netOpts lnet.Options, mw *monitorWiring) (*lnet.Server, error) {
	opts := netOpts
	opts.MaxInput = gw.MaxInput()
	ln, err := lnet.Listen("tcp", cfg.amqpAddr, gw.Handler(), opts)
	if err != nil {
		return nil, fmt.Errorf("amqp listener: %w", err)
	}
	logger.Info("listening", "proto", "amqp", "addr", ln.Addr().String(), "transport", ln.Transport())
	mw.addListener("amqp", "amqp", ln)
	return ln, nil
}
