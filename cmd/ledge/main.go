// Command ledge is the broker. With no arguments it starts with embedded
// defaults: NATS clients on :4222 and data in ./ledge-data. Run
// "ledge -help" for every setting.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/ledgemq/ledge/bridge"
	"github.com/ledgemq/ledge/broker"
	"github.com/ledgemq/ledge/mqttgw"
	"github.com/ledgemq/ledge/natsgw"
	lnet "github.com/ledgemq/ledge/net"
	"github.com/ledgemq/ledge/router"
)

// version is ledge's release, set at build time with
// -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	if len(os.Args) > 1 && os.Args[1] == "ctl" {
		err = runCtl(ctx, os.Args[2:], os.Getenv, os.Stdout, os.Stderr)
	} else if len(os.Args) > 1 && os.Args[1] == "passwd" {
		err = runPasswd(os.Args[2:], os.Stdin, os.Stdout, os.Stderr)
	} else {
		err = run(ctx, os.Args[1:], os.Getenv, os.Stderr, nil)
	}
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
	default:
		fmt.Fprintln(os.Stderr, "ledge:", err)
		os.Exit(1)
	}
}

// listening reports where the broker listens once it is ready: protocol
// name to address.
type listening map[string]string

// run is the broker: it starts every listener, reports them on ready (when
// not nil) and serves until ctx is done, then shuts down gracefully.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer, ready func(listening)) error {
	cfg, err := loadConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	logger := newLogger(cfg, stderr)
	if cfg.cpuProfile != "" {
		f, err := os.Create(cfg.cpuProfile)
		if err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}

	if err := os.MkdirAll(cfg.dataDir, 0o755); err != nil {
		return fmt.Errorf("data folder: %w", err)
	}
	unlock, err := lockDataDir(cfg.dataDir)
	if err != nil {
		return err
	}
	defer unlock()
	// Users, permissions and TLS for every listener (auth.go).
	sec, err := setupSecurity(cfg, logger)
	if err != nil {
		return err
	}
	defer sec.close()
	mw, err := startMonitor(cfg, logger)
	if err != nil {
		return err
	}
	defer mw.close()

	syncPolicy, _ := parseSync(cfg.sync)
	b, err := broker.Open(broker.Options{
		Dir:          cfg.dataDir,
		Sync:         syncPolicy,
		SyncInterval: cfg.syncInterval,
		LogMetrics:   mw.logMetrics(),
		Logger:       logger.With("part", "broker"),
	})
	if err != nil {
		return fmt.Errorf("broker: %w", err)
	}
	// Closed after the listeners: no client can publish into a closing
	// stream. The deferred close covers a failed start.
	closeBroker := func() {
		if b == nil {
			return
		}
		if err := b.Close(); err != nil {
			logger.Warn("broker close", "err", err)
		}
		b = nil
	}
	defer closeBroker()

	tlsConfig := sec.listenerTLS()

	// The router every protocol's live subscribers share, so that a
	// message published on one reaches subscribers of all.
	live := router.New[broker.Receiver](router.Options{})

	netOpts := lnet.Options{
		Loops:       cfg.loops,
		MaxConns:    cfg.maxConns,
		MaxOutbound: cfg.maxOutbound,
		Portable:    cfg.portable,
	}
	addrs := listening{}
	var servers []*lnet.Server
	defer func() {
		for _, s := range servers {
			s.Close()
		}
	}()

	if cfg.natsAddr != "" {
		nopts := natsgw.Options{
			MaxPayload:   cfg.maxPayload,
			PingInterval: cfg.pingInterval,
			MaxPingsOut:  cfg.maxPingsOut,
			Logger:       logger.With("proto", "nats"),
			Broker:       b,
			Live:         live,
		}
		opts := netOpts
		sec.nats(&nopts, &opts)
		gw := natsgw.NewServer(nopts)
		opts.MaxInput = gw.MaxInput()
		opts.RefuseMessage = natsgw.AppendErr(nil, "maximum connections exceeded")
		ln, err := lnet.Listen("tcp", cfg.natsAddr, gw.Handler(), opts)
		if err != nil {
			return fmt.Errorf("nats listener: %w", err)
		}
		servers = append(servers, ln)
		mw.addNATS(gw, ln, cfg)
		mw.addListener("nats", "nats", ln)
		addrs["nats"] = ln.Addr().String()
		logger.Info("listening", "proto", "nats", "addr", ln.Addr().String(), "transport", ln.Transport())
	}
	if cfg.mqttAddr != "" {
		gw, err := mqttgw.NewServer(mqttgw.Options{
			MaxPacketSize: cfg.maxPayload + 64<<10,
			Auth:          sec.svc,
			Logger:        logger.With("proto", "mqtt"),
		}, live, b)
		if err != nil {
			return err
		}
		defer gw.Close()
		mw.addMQTT(gw)
		listeners := []struct {
			name, addr string
			h          lnet.Handler
			tls        bool
		}{
			{"mqtt", cfg.mqttAddr, gw.Handler(), false},
			{"mqtt-ws", cfg.mqttWSAddr, gw.WebSocketHandler(), false},
			{"mqtt-tls", cfg.mqttTLSAddr, gw.Handler(), true},
			{"mqtt-wss", cfg.mqttWSSAddr, gw.WebSocketHandler(), true},
		}
		for _, l := range listeners {
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
				return fmt.Errorf("%s listener: %w", l.name, err)
			}
			servers = append(servers, ln)
			mw.addListener(l.name, "mqtt", ln)
			addrs[l.name] = ln.Addr().String()
			logger.Info("listening", "proto", l.name, "addr", ln.Addr().String(), "transport", ln.Transport())
		}
	}
	if cfg.amqpAddr != "" || cfg.stomp.enabled() {
		// One AMQP gateway holds the exchanges and queues of AMQP and
		// STOMP clients.
		amqpGW, err := newAMQPGateway(cfg, logger, live, b, mw)
		if err != nil {
			return err
		}
		defer amqpGW.Close()
		if cfg.amqpAddr != "" {
			lns, err := listenAMQP(cfg, logger, amqpGW, netOpts, mw, addrs)
			if err != nil {
				return err
			}
			servers = append(servers, lns...)
		}
		if cfg.stomp.enabled() {
			lns, err := listenSTOMP(cfg, logger, amqpGW, netOpts, tlsConfig, addrs, mw)
			if err != nil {
				return err
			}
			servers = append(servers, lns...)
		}
	}
	if len(servers) == 0 {
		return errors.New("no listener configured")
	}

	// The bridge starts once the broker and the gateways are up; its
	// uplinks connect in the background and never hold the broker back.
	ups, _ := cfg.uplinks()
	var br *bridge.Bridge
	closeBridge := func() {
		if br != nil {
			br.Close()
			br = nil
		}
	}
	defer closeBridge()
	if len(ups) > 0 {
		br, err = bridge.New(b, live, bridge.Config{GatewayID: cfg.gatewayID(), Uplinks: ups, Logger: logger.With("part", "bridge")})
		if err != nil {
			return fmt.Errorf("bridge: %w", err)
		}
	}
	mw.attach(b, live, br, cfg.sync)
	if a, ok := mw.address(); ok {
		addrs["http"] = a
	}

	var parts []string
	for _, p := range []string{"nats", "mqtt", "mqtt-ws", "mqtt-tls", "mqtt-wss", "amqp", "amqps", "stomp", "stomp-ws", "stomp-tls", "http"} {
		if a, ok := addrs[p]; ok {
			parts = append(parts, p+"="+a)
		}
	}
	sec.watch(ctx)
	authMode, tlsMode := sec.mode()
	logger.Info("ledge ready", "version", version, "listen", strings.Join(parts, " "), "data", cfg.dataDir, "streams", len(b.Streams()), "sync", cfg.sync, "uplinks", len(ups), "auth", authMode, "tls", tlsMode)
	if ready != nil {
		ready(addrs)
	}

	<-ctx.Done()
	logger.Info("shutting down")
	mw.close()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, s := range servers {
		if err := s.Shutdown(shutdownCtx); err != nil {
			logger.Warn("shutdown", "err", err)
		}
	}
	servers = nil
	closeBridge()
	closeBroker()
	logger.Info("stopped")
	return nil
}

func newLogger(cfg *config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.logLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
