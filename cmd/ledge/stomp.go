package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"log/slog"

	"github.com/ledgemq/ledge/amqpgw"
	"github.com/ledgemq/ledge/monitor"
	lnet "github.com/ledgemq/ledge/net"
	"github.com/ledgemq/ledge/stompgw"
)

// stompSettings are the STOMP gateway's flags.
type stompSettings struct {
	addr, wsAddr, tlsAddr string
}

func addSTOMPFlags(fs *flag.FlagSet, s *stompSettings) {
	fs.StringVar(&s.addr, "stomp-addr", ":61613", "address for STOMP 1.0, 1.1 and 1.2 clients (host:port; empty to disable)")
	fs.StringVar(&s.wsAddr, "stomp-ws-addr", ":15674", "address for STOMP over WebSocket, for browsers (empty to disable)")
	fs.StringVar(&s.tlsAddr, "stomp-tls-addr", ":61614", "address for STOMP over TLS, served when -tls-cert is set (empty to disable)")
}

// enabled says whether any STOMP listener may be served.
func (s *stompSettings) enabled() bool { return s.addr != "" || s.wsAddr != "" || s.tlsAddr != "" }

// listenSTOMP serves STOMP on the AMQP gateway's queues and exchanges: on
// TCP, over WebSocket and, with a certificate, over TLS; the connections
// and listeners are shown on the HTTP port (mw), and the queues with
// AMQP's.
func listenSTOMP(cfg *config, logger *slog.Logger, amqp *amqpgw.Server, netOpts lnet.Options, tlsConfig *tls.Config, addrs listening, mw *monitorWiring) ([]*lnet.Server, error) {
	st := &cfg.stomp
	gw, err := stompgw.NewServer(stompgw.Options{
		MaxBodySize: cfg.maxPayload,
		Auth:        cfg.sec.svc,
		Version:     version,
		Logger:      logger.With("proto", "stomp"),
	}, amqp)
	if err != nil {
		return nil, err
	}
	mw.add(monitor.STOMP(gw))
	var servers []*lnet.Server
	for _, l := range []struct {
		name, addr string
		h          lnet.Handler
		tls        bool
	}{
		{"stomp", st.addr, gw.Handler(), false},
		{"stomp-ws", st.wsAddr, gw.WebSocketHandler(), false},
		{"stomp-tls", st.tlsAddr, gw.Handler(), true},
	} {
		if l.addr == "" || (l.tls && tlsConfig == nil) {
			continue
		}
		opts := netOpts
		opts.MaxInput = gw.MaxInput()
		if l.tls {
			opts.TLSConfig = tlsConfig
		}
		ln, err := lnet.Listen("tcp", l.addr, l.h, opts)
		if err != nil {
			for _, s := range servers {
				s.Close()
			}
			return nil, fmt.Errorf("%s listener: %w", l.name, err)
		}
		servers = append(servers, ln)
		mw.addListener(l.name, "stomp", ln)
		addrs[l.name] = ln.Addr().String()
		logger.Info("listening", "proto", l.name, "addr", ln.Addr().String(), "transport", ln.Transport())
	}
	return servers, nil
}
