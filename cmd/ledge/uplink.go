package main

import (
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/ledgemq/ledge/auth"
	"github.com/ledgemq/ledge/bridge"
)

// uplinkSettings are the settings of one uplink. The command line and the
// environment describe one (the flags -uplink...); the config file may add
// more under their own names with lines "uplink.NAME.SETTING = value",
// where SETTING is the flag's name without "uplink-" ("url" for -uplink).
type uplinkSettings struct {
	name            string
	urls            string
	subjects        string
	streams         string
	prefix          string
	mode            string
	upstreamStream  string
	user            string
	password        string
	token           string
	creds           string
	nkey            string
	tlsCA           string
	tlsCert         string
	tlsKey          string
	window          int
	windowBytes     int64
	stall           time.Duration
	backoffMax      time.Duration
	rate            int64
	catchUp         string
	compress        bool
	maxBytes        int64
	budget          string
	downlink        string
	downlinkStream  string
	downlinkDurable string
}

// addUplinkFlags defines the uplink settings on fs; name (the uplink's
// name) is defined only for the command line's uplink.
func addUplinkFlags(fs *flag.FlagSet, u *uplinkSettings, withName bool) {
	if withName {
		fs.StringVar(&u.name, "uplink-name", "cloud", "name of the -uplink (its stream is UPLINK_<name>, its consumers uplink_<name>)")
	}
	fs.StringVar(&u.urls, "uplink", "", "forward to this NATS/JetStream `URL`[,URL...] (cluster failover); more uplinks in the config file as uplink.NAME.url")
	fs.StringVar(&u.subjects, "uplink-subjects", "", "subject `PATTERN`s[,...] to forward (MQTT telemetry/# is telemetry.>); captured into UPLINK_<name> unless a stream has exactly that pattern")
	fs.StringVar(&u.streams, "uplink-streams", "", "local `STREAM`s[,...] to forward whole")
	fs.StringVar(&u.prefix, "uplink-prefix", "", "put this before every subject upstream and take it off downlinked ones (e.g. site.42.)")
	fs.StringVar(&u.mode, "uplink-mode", "auto", "jetstream (publish acknowledged and de-duplicated by the upstream stream), core (at-least-once, flush round trips) or auto (jetstream when the account has it)")
	fs.StringVar(&u.upstreamStream, "uplink-upstream-stream", "", "check at connect time that this upstream stream exists")
	fs.StringVar(&u.user, "uplink-user", "", "upstream user name")
	fs.StringVar(&u.password, "uplink-password", "", "upstream password")
	fs.StringVar(&u.token, "uplink-token", "", "upstream token")
	fs.StringVar(&u.creds, "uplink-creds", "", "upstream .creds `FILE` (JWT and NKey seed)")
	fs.StringVar(&u.nkey, "uplink-nkey", "", "upstream NKey seed `FILE`")
	fs.StringVar(&u.tlsCA, "uplink-tls-ca", "", "CA `FILE` to trust for the upstream's TLS")
	fs.StringVar(&u.tlsCert, "uplink-tls-cert", "", "client certificate `FILE` for the upstream")
	fs.StringVar(&u.tlsKey, "uplink-tls-key", "", "key `FILE` of -uplink-tls-cert")
	fs.IntVar(&u.window, "uplink-window", bridge.DefaultWindow, "messages in flight upstream, unacknowledged")
	fs.Int64Var(&u.windowBytes, "uplink-window-bytes", bridge.DefaultWindowBytes, "bytes in flight upstream: the window shrinks (to 16 at least) for streams of large messages")
	fs.DurationVar(&u.stall, "uplink-stall", bridge.DefaultStallTimeout, "a link with messages in flight and no acknowledgement for this long is reconnected")
	fs.DurationVar(&u.backoffMax, "uplink-backoff-max", bridge.DefaultBackoffMax, "longest wait between connection attempts (exponential from 100ms, with jitter; the first message after an outage goes within about this long)")
	fs.Int64Var(&u.rate, "uplink-rate", 0, "cap on bytes per second sent upstream (0: none)")
	fs.StringVar(&u.catchUp, "uplink-catch-up", "in-order", "after an outage: in-order (the backlog, then live messages) or newest-first (live messages as they come, the backlog behind them)")
	fs.BoolVar(&u.compress, "uplink-compress", false, "compress payloads with s2 on the uplink when it makes them smaller (header Ledge-Compression)")
	fs.Int64Var(&u.maxBytes, "uplink-max-bytes", 0, "disk budget of UPLINK_<name> in bytes (0: none)")
	fs.StringVar(&u.budget, "uplink-budget", "drop-oldest", "when the disk budget is reached: drop-oldest (counted and logged) or refuse-new (publishers get an error)")
	fs.StringVar(&u.downlink, "uplink-downlink", "", "upstream subject `PATTERN`s[,...] (after the prefix) republished locally, for commands to devices")
	fs.StringVar(&u.downlinkStream, "uplink-downlink-stream", "", "read the downlink through a durable consumer of this upstream stream, so commands sent while offline arrive")
	fs.StringVar(&u.downlinkDurable, "uplink-downlink-durable", "", "name of that durable upstream consumer (one per gateway)")
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func (u *uplinkSettings) uplink() (bridge.Uplink, error) {
	mode, err := bridge.ParseMode(u.mode)
	if err != nil {
		return bridge.Uplink{}, err
	}
	budget, err := bridge.ParseBudgetPolicy(u.budget)
	if err != nil {
		return bridge.Uplink{}, err
	}
	catchUp, err := bridge.ParseCatchUp(u.catchUp)
	if err != nil {
		return bridge.Uplink{}, err
	}
	return bridge.Uplink{
		Name: u.name, URLs: splitList(u.urls),
		User: u.user, Password: u.password, Token: u.token, NKeyFile: u.nkey, CredsFile: u.creds,
		TLS:     auth.TLSFiles{CA: u.tlsCA, Cert: u.tlsCert, Key: u.tlsKey},
		Streams: splitList(u.streams), Subjects: splitList(u.subjects), Prefix: u.prefix,
		UpstreamStream: u.upstreamStream, Mode: mode,
		Window: u.window, WindowBytes: u.windowBytes, StallTimeout: u.stall, BackoffMax: u.backoffMax,
		RateLimit: u.rate, CatchUp: catchUp, Compress: u.compress, MaxBytes: u.maxBytes, Budget: budget,
		Downlink: splitList(u.downlink), DownlinkStream: u.downlinkStream, DownlinkDurable: u.downlinkDurable,
	}, nil
}

// setNamedUplink applies a config file line "uplink.NAME.SETTING = value".
func (c *config) setNamedUplink(key, value string) error {
	name, setting, ok := strings.Cut(strings.TrimPrefix(key, "uplink."), ".")
	if !ok || name == "" {
		return fmt.Errorf("want uplink.NAME.SETTING, got %q", key)
	}
	if c.namedUplinks == nil {
		c.namedUplinks = map[string]*flag.FlagSet{}
		c.namedSettings = map[string]*uplinkSettings{}
	}
	fs := c.namedUplinks[name]
	if fs == nil {
		u := &uplinkSettings{name: name}
		fs = flag.NewFlagSet(name, flag.ContinueOnError)
		addUplinkFlags(fs, u, false)
		c.namedUplinks[name] = fs
		c.namedSettings[name] = u
	}
	flagName := "uplink-" + setting
	if setting == "url" {
		flagName = "uplink"
	}
	if fs.Lookup(flagName) == nil {
		return fmt.Errorf("unknown uplink setting %q (the -uplink-... flags without uplink-, and url)", setting)
	}
	return fs.Set(flagName, value)
}

// uplinks returns every configured uplink: the command line's, then the
// config file's by name.
func (c *config) uplinks() ([]bridge.Uplink, error) {
	var out []bridge.Uplink
	if c.uplink.urls != "" {
		u, err := c.uplink.uplink()
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	} else if c.uplink.subjects != "" || c.uplink.streams != "" {
		return nil, fmt.Errorf("-uplink-subjects and -uplink-streams need -uplink URL")
	}
	names := make([]string, 0, len(c.namedSettings))
	for n := range c.namedSettings {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		u, err := c.namedSettings[n].uplink()
		if err != nil {
			return nil, fmt.Errorf("uplink %s: %w", n, err)
		}
		out = append(out, u)
	}
	return out, nil
}

// gatewayID is -gateway-id, or the host name.
func (c *config) gatewayID() string {
	if c.gateway != "" {
		return c.gateway
	}
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "ledge"
	}
	return strings.NewReplacer(":", "_", " ", "_").Replace(h)
}
