package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/ledgemq/ledge/bridge"
	"github.com/ledgemq/ledge/log"
)

// config is every setting of the broker. Each field is a flag; the same
// name works as an environment variable (LEDGE_ and the name in upper case
// with '-' as '_') and as a line "name = value" of the config file. A flag
// on the command line wins over the environment, which wins over the file.
type config struct {
	configFile string

	dataDir     string
	natsAddr    string
	mqttAddr    string
	amqpAddr    string
	mqttTLSAddr string
	mqttWSAddr  string
	mqttWSSAddr string
	amqpsAddr   string
	stomp       stompSettings
	tlsCert     string
	tlsKey      string
	tlsCA       string
	// tlsExtra are the config file's tls.* lines (auth.go).
	tlsExtra tlsSettings

	sync         string
	syncInterval time.Duration

	maxPayload   int
	maxConns     int
	maxOutbound  int
	pingInterval time.Duration
	maxPingsOut  int
	loops        int
	portable     bool

	// usersFile names the users and permissions; user and password are
	// one admin user from the command line (auth.go).
	usersFile string
	user      string
	password  string
	// sec is the running broker's auth and TLS, once set up.
	sec *security

	logLevel  string
	logFormat string

	cpuProfile string

	monitor monitorSettings // the HTTP port (monitor.go)

	// gateway names this box upstream; uplink is the command line's
	// uplink and namedUplinks the config file's (see uplink.go).
	gateway       string
	uplink        uplinkSettings
	namedUplinks  map[string]*flag.FlagSet
	namedSettings map[string]*uplinkSettings
}

const envPrefix = "LEDGE_"

func newFlagSet(cfg *config, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("ledge", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&cfg.configFile, "config", "", "read settings from `FILE`: lines of name = value with the flag names; # starts a comment")
	fs.StringVar(&cfg.dataDir, "data-dir", "./ledge-data", "folder for streams, cursors and sessions (created if missing)")
	fs.StringVar(&cfg.natsAddr, "nats-addr", ":4222", "address for NATS clients (host:port; empty to disable)")
	fs.StringVar(&cfg.mqttAddr, "mqtt-addr", ":1883", "address for MQTT 3.1.1 and 5.0 clients (host:port; empty to disable)")
	fs.StringVar(&cfg.mqttTLSAddr, "mqtt-tls-addr", ":8883", "address for MQTT over TLS, served when -tls-cert is set (empty to disable)")
	fs.StringVar(&cfg.mqttWSAddr, "mqtt-ws-addr", ":8083", "address for MQTT over WebSocket, for browser dashboards (empty to disable)")
	fs.StringVar(&cfg.amqpAddr, "amqp-addr", ":5672", "address for AMQP 0-9-1 clients (host:port; empty to disable)")
	addSTOMPFlags(fs, &cfg.stomp)
	fs.StringVar(&cfg.mqttWSSAddr, "mqtt-wss-addr", ":8084", "address for MQTT over secure WebSocket, served when -tls-cert is set (empty to disable)")
	fs.StringVar(&cfg.amqpsAddr, "amqps-addr", ":5671", "address for AMQP over TLS, served when -tls-cert is set (empty to disable)")
	fs.StringVar(&cfg.tlsCert, "tls-cert", "", "PEM certificate `FILE` (with its chain): turns on TLS for every listener (NATS requires it then; \"tls.nats = off\" in the config file keeps it plain)")
	fs.StringVar(&cfg.tlsKey, "tls-key", "", "PEM private key `FILE` of -tls-cert")
	fs.StringVar(&cfg.tlsCA, "tls-ca", "", "PEM `FILE` of the CAs whose client certificates log in as the user their CN or SAN names (mutual TLS)")
	fs.StringVar(&cfg.usersFile, "users", "", "users and permissions `FILE` (see docs/AUTH.md; \"ledge passwd\" writes it); without users, only clients on loopback are let in")
	fs.StringVar(&cfg.user, "user", "", "one admin user, with -password, for every protocol (the users file is the way for more)")
	fs.StringVar(&cfg.password, "password", "", "the password of -user (better set as LEDGE_PASSWORD than on the command line)")
	fs.StringVar(&cfg.sync, "sync", "always", "when a stored message is confirmed to its publisher: always (after fsync), interval (after the periodic fsync) or never (once written)")
	fs.DurationVar(&cfg.syncInterval, "sync-interval", 100*time.Millisecond, "fsync period of streams under -sync interval")
	fs.IntVar(&cfg.maxPayload, "max-payload", 1<<20, "largest message payload in bytes, headers included")
	fs.IntVar(&cfg.maxConns, "max-conns", 0, "refuse connections beyond this many per listener (0: no limit)")
	fs.IntVar(&cfg.maxOutbound, "max-outbound", 4<<20, "bytes a client may fall behind before it is cut off as a slow consumer")
	fs.DurationVar(&cfg.pingInterval, "ping-interval", 2*time.Minute, "how often quiet NATS clients are pinged")
	fs.IntVar(&cfg.maxPingsOut, "max-pings-out", 2, "unanswered pings before a NATS client is dropped as stale")
	fs.IntVar(&cfg.loops, "loops", 0, "event loops (0: one per CPU)")
	fs.BoolVar(&cfg.portable, "portable", false, "use the portable network transport instead of epoll")
	fs.StringVar(&cfg.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&cfg.logFormat, "log-format", "text", "text (one readable line per event) or json")
	fs.StringVar(&cfg.gateway, "gateway-id", "", "this gateway's name in message ids upstream; stable and unique per box (default: the host name)")
	addUplinkFlags(fs, &cfg.uplink, true)
	addMonitorFlags(fs, &cfg.monitor)
	fs.StringVar(&cfg.cpuProfile, "cpuprofile", "", "write a CPU profile to `FILE` from start to shutdown (for go tool pprof)")
	fs.Usage = func() {
		fmt.Fprintf(out, `ledge: a message broker for edge gateways.

Usage: ledge [flags]
       ledge passwd [-c] [-b] [-D] [-token] FILE USER [PASSWORD]
       ledge ctl COMMAND [-url http://host:8222] [--json] (ledge ctl -help lists them)

With no flags it serves NATS (with JetStream) on :4222, MQTT on :1883,
MQTT over WebSocket on :8083 (and MQTT over TLS on :8883 once -tls-cert is
set), AMQP 0-9-1 on :5672, STOMP on :61613, STOMP over WebSocket on :15674
(and STOMP over TLS on :61614 with -tls-cert) and HTTP on :8222 (health,
the JSON API, Prometheus /metrics and the web console at
http://localhost:8222/), and keeps its data in ./ledge-data. "ledge ctl"
asks the HTTP port: queues, connections, streams, uplinks, and the
operator's actions. Without -users or -user, only clients on this machine
(loopback) are let in; "ledge passwd -c FILE NAME" makes a users file.
Every flag can also be set as an environment variable (LEDGE_ and the name
in upper case with '-' as '_', e.g. LEDGE_DATA_DIR) or in the file named by
-config (one "name = value" a line). Flags win over the environment, which
wins over the file.

Flags:
`)
		fs.PrintDefaults()
	}
	return fs
}

// loadConfig parses args, then fills every setting not given as a flag
// from the environment and then from the config file.
func loadConfig(args []string, getenv func(string) string, out io.Writer) (*config, error) {
	cfg := &config{}
	fs := newFlagSet(cfg, out)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (settings are flags: see -help)", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	// The config file may itself come from the environment.
	if !set["config"] {
		if v := getenv(envName("config")); v != "" {
			cfg.configFile = v
			set["config"] = true
		}
	}
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil || set[f.Name] {
			return
		}
		if v, ok := lookupEnv(getenv, f.Name); ok {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("environment %s=%q: %w", envName(f.Name), v, e)
			}
			set[f.Name] = true
		}
	})
	if err != nil {
		return nil, err
	}
	if cfg.configFile != "" {
		if err := applyConfigFile(fs, cfg, cfg.configFile, set); err != nil {
			return nil, err
		}
	}
	return cfg, cfg.validate()
}

func envName(flagName string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func lookupEnv(getenv func(string) string, flagName string) (string, bool) {
	v := getenv(envName(flagName))
	return v, v != ""
}

// applyConfigFile sets, from the file, every flag not already set.
func applyConfigFile(fs *flag.FlagSet, cfg *config, path string, set map[string]bool) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		if line == "" {
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		if !ok {
			return fmt.Errorf("%s:%d: want name = value, got %q", path, n, line)
		}
		name, value = strings.TrimSpace(name), strings.Trim(strings.TrimSpace(value), `"`)
		if name == "config" {
			return fmt.Errorf("%s:%d: a config file cannot name another", path, n)
		}
		if strings.HasPrefix(name, "tls.") {
			if err := cfg.setTLSSetting(name, value); err != nil {
				return fmt.Errorf("%s:%d: %w", path, n, err)
			}
			continue
		}
		if strings.HasPrefix(name, "uplink.") {
			if err := cfg.setNamedUplink(name, value); err != nil {
				return fmt.Errorf("%s:%d: %w", path, n, err)
			}
			continue
		}
		if fs.Lookup(name) == nil {
			return fmt.Errorf("%s:%d: unknown setting %q (see ledge -help)", path, n, name)
		}
		if set[name] {
			continue
		}
		if err := fs.Set(name, value); err != nil {
			return fmt.Errorf("%s:%d: %s: %w", path, n, name, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	return nil
}

func (c *config) validate() error {
	var errs []error
	if c.dataDir == "" {
		errs = append(errs, errors.New("data-dir must not be empty"))
	}
	if c.maxPayload <= 0 || c.maxPayload > 64<<20 {
		errs = append(errs, fmt.Errorf("max-payload %d out of range (1 to 64 MiB)", c.maxPayload))
	}
	// A client's queue must hold at least one largest message with its
	// protocol line, or the first big message would cut it off.
	if c.maxOutbound < 2*c.maxPayload {
		errs = append(errs, fmt.Errorf("max-outbound %d must be at least twice max-payload %d", c.maxOutbound, c.maxPayload))
	}
	if c.maxConns < 0 || c.loops < 0 || c.maxPingsOut < 1 || c.pingInterval <= 0 {
		errs = append(errs, errors.New("max-conns and loops must be >= 0, max-pings-out >= 1, ping-interval > 0"))
	}
	if err := c.validateSecurity(); err != nil {
		errs = append(errs, err)
	}
	if _, err := parseSync(c.sync); err != nil {
		errs = append(errs, err)
	}
	if c.syncInterval <= 0 {
		errs = append(errs, errors.New("sync-interval must be > 0"))
	}
	switch c.logLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log-level %q: want debug, info, warn or error", c.logLevel))
	}
	switch c.logFormat {
	case "text", "json":
	default:
		errs = append(errs, fmt.Errorf("log-format %q: want text or json", c.logFormat))
	}
	if err := c.monitor.validate(c); err != nil {
		errs = append(errs, err)
	}
	if ups, err := c.uplinks(); err != nil {
		errs = append(errs, err)
	} else {
		bc := bridge.Config{GatewayID: c.gatewayID(), Uplinks: ups}
		if err := bc.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// parseSync reads the -sync setting.
func parseSync(s string) (log.SyncPolicy, error) {
	for _, p := range []log.SyncPolicy{log.SyncAlways, log.SyncInterval, log.SyncNever} {
		if s == p.String() {
			return p, nil
		}
	}
	return 0, fmt.Errorf("sync %q: want always, interval or never", s)
}
