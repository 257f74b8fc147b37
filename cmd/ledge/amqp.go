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
		Auth:           cfg.sec.svc,
		Logger:         logger.With("proto", "amqp"),
	}, live, b)
	if err != nil {
		return nil, err
	}
	mw.addAMQP(gw)
	return gw, nil
}

// listenAMQP serves AMQP 0-9-1 for the gateway gw on cfg.amqpAddr and,
// once TLS is on, AMQPS on cfg.amqpsAddr, and shows the connections on
// the HTTP port (mw). It names each listener it started in addrs.
func listenAMQP(cfg *config, logger *slog.Logger, gw *amqpgw.Server, netOpts lnet.Options, mw *monitorWiring, addrs listening) ([]*lnet.Server, error) {
	var lns []*lnet.Server
	for _, l := range []struct {
		name, addr string
		tls        bool
	}{{"amqp", cfg.amqpAddr, false}, {"amqps", cfg.amqpsAddr, true}} {
		opts := netOpts
		opts.MaxInput = gw.MaxInput()
		if l.tls {
			opts.TLSConfig = cfg.sec.listenerTLS()
		}
		if l.addr == "" || (l.tls && opts.TLSConfig == nil) {
			continue
		}
		ln, err := lnet.Listen("tcp", l.addr, gw.Handler(), opts)
		if err != nil {
			for _, o := range lns {
				o.Close()
			}
			return nil, fmt.Errorf("%s listener: %w", l.name, err)
		}
		logger.Info("listening", "proto", l.name, "addr", ln.Addr().String(), "transport", ln.Transport())
		mw.addListener(l.name, "amqp", ln)
		addrs[l.name] = ln.Addr().String()
		lns = append(lns, ln)
	}
	return lns, nil
}
