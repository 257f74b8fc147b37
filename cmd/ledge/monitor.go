package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/ledgemq/ledge/amqpgw"
	"github.com/ledgemq/ledge/bridge"
	"github.com/ledgemq/ledge/broker"
	"github.com/ledgemq/ledge/log"
	"github.com/ledgemq/ledge/monitor"
	"github.com/ledgemq/ledge/mqttgw"
	"github.com/ledgemq/ledge/natsgw"
	lnet "github.com/ledgemq/ledge/net"
	"github.com/ledgemq/ledge/router"
)

// monitorSettings are the HTTP port's settings.
type monitorSettings struct {
	addr        string
	tls         bool
	top         int
	allQueues   bool
	connections bool
}

func addMonitorFlags(fs *flag.FlagSet, m *monitorSettings) {
	fs.StringVar(&m.addr, "http-addr", ":8222", "address of the HTTP port: health, the JSON API, /metrics and the web console (empty to disable)")
	fs.BoolVar(&m.tls, "http-tls", false, "serve the HTTP port over TLS with -tls-cert")
	fs.IntVar(&m.top, "metrics-top", 20, "per-stream and per-queue series of /metrics for this many of the busiest")
	fs.BoolVar(&m.allQueues, "metrics-all-queues", false, "per-stream and per-queue series of /metrics for every stream and queue")
	fs.BoolVar(&m.connections, "metrics-connections", false, "per-connection series of /metrics for the -metrics-top busiest connections")
}

func (m *monitorSettings) validate(c *config) error {
	if m.tls && c.tlsCert == "" {
		return errors.New("-http-tls needs -tls-cert and -tls-key")
	}
	if m.top < 1 {
		return fmt.Errorf("metrics-top %d must be at least 1", m.top)
	}
	return nil
}

// monitorWiring is the HTTP port and what it reads, gathered as run starts
// the broker's parts. A nil *monitorWiring (the port disabled) accepts
// every call and does nothing.
type monitorWiring struct {
	mon     *monitor.Server
	srv     *http.Server
	addr    string
	metrics *log.Metrics
	done    chan error

	mu  sync.Mutex
	src monitor.Sources
}

// startMonitor serves the HTTP port before the broker opens its streams,
// so that liveness is answered while a large log recovers; everything else
// answers 503 until attach.
func startMonitor(cfg *config, logger *slog.Logger) (*monitorWiring, error) {
	m := &cfg.monitor
	if m.addr == "" {
		return nil, nil
	}
	opts := monitor.Options{
		Version: version, ServerName: cfg.gatewayID(), DataDir: cfg.dataDir,
		MetricsTop: m.top, MetricsAllQueues: m.allQueues, MetricsConnections: m.connections,
		Logger: logger.With("part", "monitor"),
		// The same users and roles as every protocol (auth.go).
		Access: cfg.sec.httpAccess,
	}
	var tlsConfig *tls.Config
	if cfg.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.tlsCert, cfg.tlsKey)
		if err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		if leaf, err := x509.ParseCertificate(cert.Certificate[0]); err == nil {
			opts.Certificates = append(opts.Certificates, monitor.Certificate{Name: cfg.tlsCert, NotAfter: leaf.NotAfter})
		}
		if m.tls {
			// The listeners' TLS: reloaded on SIGHUP, client
			// certificates mapped to users.
			tlsConfig = cfg.sec.listenerTLS()
		}
	}
	ln, err := net.Listen("tcp", m.addr)
	if err != nil {
		return nil, fmt.Errorf("http listener: %w", err)
	}
	if tlsConfig != nil {
		ln = tls.NewListener(ln, tlsConfig)
	}
	if host, port, err := net.SplitHostPort(ln.Addr().String()); err == nil {
		opts.HTTPHost = host
		opts.HTTPPort, _ = strconv.Atoi(port)
	}
	mw := &monitorWiring{
		mon:     monitor.New(opts),
		addr:    ln.Addr().String(),
		metrics: &log.Metrics{},
		done:    make(chan error, 1),
	}
	mw.srv = &http.Server{
		Handler:           mw.mon.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	go func() { mw.done <- mw.srv.Serve(ln) }()
	logger.Info("listening", "proto", "http", "addr", mw.addr, "tls", tlsConfig != nil)
	return mw, nil
}

// logMetrics are the latency histograms every stream's log fills; nil
// (no timing at all) without the HTTP port.
func (mw *monitorWiring) logMetrics() *log.Metrics {
	if mw == nil {
		return nil
	}
	return mw.metrics
}

func (mw *monitorWiring) add(p monitor.Protocol) {
	if mw == nil {
		return
	}
	mw.mu.Lock()
	mw.src.Protocols = append(mw.src.Protocols, p)
	mw.mu.Unlock()
}

func (mw *monitorWiring) addListener(name, protocol string, ln *lnet.Server) {
	if mw == nil {
		return
	}
	mw.mu.Lock()
	mw.src.Listeners = append(mw.src.Listeners, monitor.Listener{Name: name, Protocol: protocol, Addr: ln.Addr().String(), Stats: ln.Stats})
	mw.mu.Unlock()
}

// addNATS adds the NATS gateway; cfg gives what /varz reports of it.
func (mw *monitorWiring) addNATS(gw *natsgw.Server, ln *lnet.Server, cfg *config) {
	if mw == nil {
		return
	}
	st := gw.Settings()
	settings := &monitor.NATSSettings{
		ServerID: st.ServerID, MaxPayload: st.MaxPayload, MaxControlLine: st.MaxControlLine,
		PingInterval: st.PingInterval, MaxPingsOut: st.MaxPingsOut, AuthTimeout: st.AuthTimeout,
		AuthRequired: st.AuthRequired, MaxConns: cfg.maxConns, MaxPending: cfg.maxOutbound, Version: st.ProtocolVersion,
	}
	if host, port, err := net.SplitHostPort(ln.Addr().String()); err == nil {
		settings.Host = host
		settings.Port, _ = strconv.Atoi(port)
	}
	mw.mu.Lock()
	mw.src.NATS = settings
	mw.mu.Unlock()
	mw.add(monitor.NATS(gw))
}

func (mw *monitorWiring) addMQTT(gw *mqttgw.Server) { mw.add(monitor.MQTT(gw)) }

func (mw *monitorWiring) addAMQP(gw *amqpgw.Server) { mw.add(monitor.AMQP(gw)) }

// attach hands the monitor the running broker: from now on it is ready.
func (mw *monitorWiring) attach(b *broker.Broker, live *router.Router[broker.Receiver], br *bridge.Bridge, sync string) {
	if mw == nil {
		return
	}
	mw.mu.Lock()
	src := mw.src
	mw.mu.Unlock()
	src.Broker, src.LogMetrics, src.Sync = b, mw.metrics, sync
	src.Router = func() (int, int) { return live.Count(), live.CachedSubjects() }
	if br != nil {
		src.Uplinks = br.Status
	}
	mw.mon.Attach(src)
}

// address is where the HTTP port listens, for the ready report.
func (mw *monitorWiring) address() (string, bool) {
	if mw == nil {
		return "", false
	}
	return mw.addr, true
}

// close stops the HTTP port, letting requests in progress finish for a
// few seconds; it is called before the broker closes and again, harmlessly,
// on the way out.
func (mw *monitorWiring) close() {
	if mw == nil || mw.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := mw.srv.Shutdown(ctx); err != nil {
		_ = mw.srv.Close()
	}
	mw.srv = nil
}
