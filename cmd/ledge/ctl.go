package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ledgemq/ledge/bridge"
	"github.com/ledgemq/ledge/monitor"
)

// ctlCommand is one "ledge ctl" subcommand: its arguments, what it says in
// the usage, and what it does with the API client.
type ctlCommand struct {
	name, args, help string
	// minArgs and maxArgs bound the positional arguments (-1: any).
	minArgs, maxArgs int
	run              func(c *ctlClient, args []string) error
}

var ctlCommands = []ctlCommand{
	{"server", "", "the broker: version, uptime, memory, connections and messages per protocol, disk", 0, 0, ctlServer},
	{"health", "", "readiness and every check (exit status 1 when not ready)", 0, 0, ctlHealth},
	{"connections", "[-protocol P] [-sort KEY] [-limit N]", "client connections of every protocol", 0, 0, ctlConnections},
	{"subscriptions", "[-protocol P]", "live subscriptions of every protocol", 0, 0, ctlSubscriptions},
	{"streams", "", "streams with their messages, bytes on disk and consumers", 0, 0, ctlStreams},
	{"queues", "", "every stream's consumers with the messages ready, unacknowledged, redelivered and the pull requests waiting", 0, 0, ctlQueues},
	{"list_queues", "[column ...]", "the AMQP queues as \"rabbitmqctl list_queues\" prints them; columns name, messages_ready,\n      messages_unacknowledged, messages, consumers, durable (default: name messages)", 0, -1, ctlListQueues},
	{"retained", "[-filter F]", "MQTT retained messages (F an MQTT filter, # by default)", 0, 0, ctlRetained},
	{"uplinks", "", "each uplink's state, upstream, backlog, age of the oldest unforwarded message, rate, drops, last error", 0, 0, ctlUplinks},
	{"peek", "STREAM [CONSUMER] [-limit N]", "messages of a stream, or those a queue will deliver next, without consuming them", 1, 2, ctlPeek},
	{"close_connection", "PROTOCOL ID", "close a client connection (its unacknowledged messages are delivered again)", 2, 2, ctlCloseConnection},
	{"purge_queue", "NAME | STREAM CONSUMER", "remove every message of a queue (an AMQP queue by name)", 1, 2, ctlPurgeQueue},
	{"purge_stream", "STREAM", "remove every message of a stream", 1, 1, ctlPurgeStream},
	{"delete_stream", "STREAM", "delete a stream with its messages and consumers", 1, 1, ctlDeleteStream},
	{"delete_consumer", "STREAM CONSUMER", "delete a consumer", 2, 2, ctlDeleteConsumer},
}

func ctlUsage(w io.Writer) {
	fmt.Fprintf(w, "Usage: ledge ctl COMMAND [flags] [arguments]\n\n")
	fmt.Fprintf(w, "Commands ask the broker's HTTP port (-url, also LEDGE_HTTP_URL; http://127.0.0.1:8222 by default)\n")
	fmt.Fprintf(w, "and print tables for people, or the API's JSON with --json.\n\n")
	for _, c := range ctlCommands {
		fmt.Fprintf(w, "  %s %s\n      %s\n", c.name, c.args, c.help)
	}
	fmt.Fprintf(w, `
Flags of every command:
  -url URL          the broker's HTTP port (https:// when it is served with -http-tls)
  -json             print the API's JSON instead of a table
  -timeout D        how long to wait for the broker (5s)
  -user U, -password P
                    credentials when users are configured (also LEDGE_CTL_USER, LEDGE_CTL_PASSWORD)
  -cacert FILE      trust this CA for https
`)
}

// runCtl is "ledge ctl <command>": operator commands that talk to a
// running broker through its HTTP API, the same API the console uses.
func runCtl(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		ctlUsage(stderr)
		if len(args) == 0 {
			return errors.New("ctl: want a command")
		}
		return flag.ErrHelp
	}
	var cmd *ctlCommand
	for i := range ctlCommands {
		if ctlCommands[i].name == args[0] {
			cmd = &ctlCommands[i]
		}
	}
	if cmd == nil {
		ctlUsage(stderr)
		return fmt.Errorf("ctl: unknown command %q", args[0])
	}
	fs := flag.NewFlagSet("ledge ctl "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintf(stderr, "Usage: ledge ctl %s %s\n      %s\n", cmd.name, cmd.args, cmd.help) }
	defURL := getenv("LEDGE_HTTP_URL")
	if defURL == "" {
		defURL = "http://127.0.0.1:8222"
	}
	c := &ctlClient{out: stdout}
	fs.StringVar(&c.base, "url", defURL, "the broker's HTTP port")
	fs.BoolVar(&c.json, "json", false, "print the API's JSON")
	timeout := fs.Duration("timeout", 5*time.Second, "how long to wait for the broker")
	fs.StringVar(&c.user, "user", getenv("LEDGE_CTL_USER"), "user name")
	fs.StringVar(&c.password, "password", getenv("LEDGE_CTL_PASSWORD"), "password")
	cacert := fs.String("cacert", "", "CA file to trust for https")
	fs.StringVar(&c.protocol, "protocol", "", "only this protocol's (connections, subscriptions)")
	fs.StringVar(&c.sort, "sort", "", "sort key (connections)")
	fs.IntVar(&c.limit, "limit", 0, "at most this many rows or messages")
	fs.StringVar(&c.filter, "filter", "", "MQTT filter (retained)")
	// Flags may come before, between or after the arguments.
	var pos []string
	rest := args[1:]
	for {
		if err := fs.Parse(rest); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(pos) < cmd.minArgs || (cmd.maxArgs >= 0 && len(pos) > cmd.maxArgs) {
		fs.Usage()
		return fmt.Errorf("ctl %s: want %s", cmd.name, strings.TrimSpace(cmd.args))
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if *cacert != "" {
		pem, err := os.ReadFile(*cacert)
		if err != nil {
			return fmt.Errorf("ctl: -cacert: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("ctl: -cacert %s holds no PEM certificate", *cacert)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	c.base = strings.TrimRight(c.base, "/")
	if u, err := url.Parse(c.base); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("ctl: -url %q: want http://host:port or https://host:port", c.base)
	}
	c.http = &http.Client{Transport: tr, Timeout: *timeout}
	c.ctx = ctx
	return cmd.run(c, pos)
}

// ctlClient calls the API.
type ctlClient struct {
	ctx                    context.Context
	http                   *http.Client
	base, user, password   string
	json                   bool
	out                    io.Writer
	protocol, sort, filter string
	limit                  int
}

// call makes one request; a non-2xx answer is an error with the API's
// reason. The body of a successful answer is returned.
func (c *ctlClient) call(method, path string, query url.Values) ([]byte, error) {
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(c.ctx, method, u, nil)
	if err != nil {
		return nil, err
	}
	if c.user != "" {
		req.SetBasicAuth(c.user, c.password)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("ctl: %w (is the broker's HTTP port at %s?)", err, c.base)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("ctl: read answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct{ Error string }
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return body, fmt.Errorf("ctl: %s (HTTP %d)", e.Error, resp.StatusCode)
		}
		return body, fmt.Errorf("ctl: %s %s: HTTP %d", method, path, resp.StatusCode)
	}
	return body, nil
}

// get fetches path into v and, with --json, prints the answer as it came.
func (c *ctlClient) get(path string, query url.Values, v any) (printed bool, err error) {
	body, err := c.call(http.MethodGet, path, query)
	if err != nil {
		return false, err
	}
	if c.json {
		_, err := c.out.Write(body)
		return true, err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return false, fmt.Errorf("ctl: %s: %w", path, err)
	}
	return false, nil
}

// act makes an operator action and prints what it did.
func (c *ctlClient) act(method, path, done string) error {
	body, err := c.call(method, path, nil)
	if err != nil {
		return err
	}
	if c.json {
		_, err := c.out.Write(body)
		return err
	}
	var r monitor.ActionResult
	_ = json.Unmarshal(body, &r)
	if r.Action == "purge" {
		done += fmt.Sprintf(": %d messages removed", r.Purged)
	}
	fmt.Fprintln(c.out, done)
	return nil
}

func (c *ctlClient) table() *tabwriter.Writer { return tabwriter.NewWriter(c.out, 0, 0, 2, ' ', 0) }

func pathEsc(s string) string { return url.PathEscape(s) }

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func seconds(v float64) string {
	return (time.Duration(v * float64(time.Second))).Round(time.Second).String()
}

func ctlServer(c *ctlClient, _ []string) error {
	var s monitor.ServerInfo
	if printed, err := c.get("/api/server", nil, &s); printed || err != nil {
		return err
	}
	tw := c.table()
	fmt.Fprintf(tw, "name\t%s\nversion\t%s (%s)\nhealth\t%s\nuptime\t%s\nmemory\t%s resident, %s heap\ncpu\t%.1f%% of one core, %d cores\n",
		s.Name, s.Version, s.Go, s.Health, seconds(s.Uptime), bytesText(s.MemBytes), bytesText(s.HeapBytes), s.CPUPercent, s.Cores)
	fmt.Fprintf(tw, "streams\t%d with %d messages (%s), %d consumers\n", s.Streams, s.Messages, bytesText(s.Bytes), s.Consumers)
	if d := s.Disk; d != nil {
		fmt.Fprintf(tw, "disk\t%s: %s in streams, %s free of %s (%.0f%% used)\n", d.Path, bytesText(uint64(d.StreamBytes)),
			bytesText(d.FreeBytes), bytesText(d.TotalBytes), d.UsedPercent)
	}
	fmt.Fprintf(tw, "uplinks\t%d\n", s.Uplinks)
	tw.Flush()
	fmt.Fprintln(c.out)
	tw = c.table()
	fmt.Fprintln(tw, "PROTOCOL\tCONNECTIONS\tMSGS IN\tMSGS OUT\tBYTES IN\tBYTES OUT\tIN/S\tOUT/S\tSLOW\tAUTH FAILED")
	for _, p := range s.Protocols {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%.0f\t%.0f\t%d\t%d\n", p.Name, p.Connections, p.InMsgs, p.OutMsgs,
			p.InBytes, p.OutBytes, p.InMsgsRate, p.OutMsgsRate, p.SlowConsumers, p.AuthFailures)
	}
	return tw.Flush()
}

func ctlHealth(c *ctlClient, _ []string) error {
	body, err := c.call(http.MethodGet, "/readyz", nil)
	var h monitor.Health
	if jerr := json.Unmarshal(body, &h); jerr != nil || h.Status == "" {
		if err != nil {
			return err
		}
		return fmt.Errorf("ctl: /readyz: %v", jerr)
	}
	if c.json {
		_, _ = c.out.Write(body)
	} else {
		fmt.Fprintf(c.out, "%s\n", h.Status)
		tw := c.table()
		for _, ch := range h.Checks {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", ch.Status, ch.Name, ch.Message)
		}
		tw.Flush()
	}
	if !h.Ready {
		return fmt.Errorf("ctl: not ready: %s", h.Error)
	}
	return nil
}

func (c *ctlClient) listQuery() url.Values {
	q := url.Values{}
	if c.protocol != "" {
		q.Set("protocol", c.protocol)
	}
	if c.sort != "" {
		q.Set("sort", c.sort)
		q.Set("order", "desc")
	}
	if c.limit > 0 {
		q.Set("limit", strconv.Itoa(c.limit))
	} else {
		q.Set("limit", "10000")
	}
	return q
}

func ctlConnections(c *ctlClient, _ []string) error {
	var l monitor.ConnList
	if printed, err := c.get("/api/connections", c.listQuery(), &l); printed || err != nil {
		return err
	}
	tw := c.table()
	fmt.Fprintln(tw, "PROTOCOL\tID\tCLIENT\tADDR\tUSER\tSUBS\tPENDING\tMSGS IN\tMSGS OUT\tIN/S\tOUT/S\tUPTIME\tIDLE")
	for _, x := range l.Connections {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%.0f\t%.0f\t%s\t%s\n", x.Protocol, x.ID, dash(x.Name+x.ClientID), x.Addr,
			dash(x.User), x.Subscriptions, x.PendingBytes, x.InMsgs, x.OutMsgs, x.InMsgsRate, x.OutMsgsRate, seconds(x.Uptime), seconds(x.Idle))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if l.Total > len(l.Connections) {
		fmt.Fprintf(c.out, "(%d of %d connections)\n", len(l.Connections), l.Total)
	}
	return nil
}

func ctlSubscriptions(c *ctlClient, _ []string) error {
	var l monitor.SubList
	if printed, err := c.get("/api/subscriptions", c.listQuery(), &l); printed || err != nil {
		return err
	}
	tw := c.table()
	fmt.Fprintln(tw, "PROTOCOL\tCONNECTION\tSUBJECT\tQUEUE\tQOS\tDELIVERED")
	for _, s := range l.Subscriptions {
		conn := s.Client
		if s.ConnID != 0 {
			conn = strconv.FormatUint(s.ConnID, 10)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\n", s.Protocol, dash(conn), s.Subject, dash(s.Queue), s.QoS, s.Delivered)
	}
	return tw.Flush()
}

func ctlStreams(c *ctlClient, _ []string) error {
	var l monitor.StreamList
	if printed, err := c.get("/api/streams", url.Values{"limit": {"10000"}}, &l); printed || err != nil {
		return err
	}
	tw := c.table()
	fmt.Fprintln(tw, "STREAM\tOWNER\tSUBJECTS\tRETENTION\tMESSAGES\tBYTES\tDISK\tFIRST\tLAST\tCONSUMERS\tERROR")
	for _, s := range l.Streams {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", s.Name, s.Owner, dash(strings.Join(s.Subjects, ",")), s.Retention,
			s.Messages, s.Bytes, s.DiskBytes, s.FirstSeq, s.LastSeq, s.Consumers, dash(s.Error))
	}
	return tw.Flush()
}

// ctlQueues prints one line per consumer, and one per stream without
// consumers: the view in which a worker that forgets to acknowledge
// stands out.
func ctlQueues(c *ctlClient, _ []string) error {
	var ql monitor.QueueList
	if printed, err := c.get("/api/queues", url.Values{"limit": {"10000"}, "sort": {"stream"}}, &ql); printed || err != nil {
		return err
	}
	var sl monitor.StreamList
	if _, err := c.get("/api/streams", url.Values{"limit": {"10000"}}, &sl); err != nil {
		return err
	}
	byStream := map[string][]monitor.QueueRow{}
	for _, q := range ql.Queues {
		byStream[q.Stream] = append(byStream[q.Stream], q)
	}
	tw := c.table()
	fmt.Fprintln(tw, "STREAM\tCONSUMER\tMESSAGES\tREADY\tUNACKED\tREDELIVERED\tWAITING")
	for _, s := range sl.Streams {
		qs := byStream[s.Name]
		sort.Slice(qs, func(i, j int) bool { return qs[i].Consumer < qs[j].Consumer })
		for _, q := range qs {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\n", s.Name, q.Consumer, s.Messages, q.Ready, q.Unacked, q.Redelivered, q.Waiting)
		}
		if len(qs) == 0 {
			fmt.Fprintf(tw, "%s\t-\t%d\t-\t-\t-\t-\n", s.Name, s.Messages)
		}
	}
	return tw.Flush()
}

var listQueuesColumns = []string{"name", "messages_ready", "messages_unacknowledged", "messages", "consumers", "durable"}

// ctlListQueues prints the AMQP queues with the columns asked for, as
// "rabbitmqctl list_queues" does: a header line, then one tab-separated
// line per queue.
func ctlListQueues(c *ctlClient, cols []string) error {
	if len(cols) == 0 {
		cols = []string{"name", "messages"}
	}
	for _, col := range cols {
		found := false
		for _, k := range listQueuesColumns {
			found = found || k == col
		}
		if !found {
			return fmt.Errorf("ctl: list_queues: column %q is not available (%s)", col, strings.Join(listQueuesColumns, ", "))
		}
	}
	var ql monitor.QueueList
	if printed, err := c.get("/api/queues", url.Values{"protocol": {"amqp"}, "limit": {"10000"}}, &ql); printed || err != nil {
		return err
	}
	fmt.Fprintln(c.out, "Listing queues for vhost / ...")
	fmt.Fprintln(c.out, strings.Join(cols, "\t"))
	for _, q := range ql.Queues {
		vals := make([]string, len(cols))
		for i, col := range cols {
			switch col {
			case "name":
				vals[i] = q.Name
			case "messages_ready":
				vals[i] = strconv.FormatUint(q.Ready, 10)
			case "messages_unacknowledged":
				vals[i] = strconv.Itoa(q.Unacked)
			case "messages":
				vals[i] = strconv.FormatUint(q.Messages, 10)
			case "consumers":
				vals[i] = strconv.Itoa(q.Consumers)
			case "durable":
				vals[i] = strconv.FormatBool(q.Durable)
			}
		}
		fmt.Fprintln(c.out, strings.Join(vals, "\t"))
	}
	return nil
}

func ctlRetained(c *ctlClient, _ []string) error {
	q := url.Values{"limit": {"10000"}}
	if c.filter != "" {
		q.Set("filter", c.filter)
	}
	if c.limit > 0 {
		q.Set("limit", strconv.Itoa(c.limit))
	}
	var l monitor.RetainedList
	if printed, err := c.get("/api/retained", q, &l); printed || err != nil {
		return err
	}
	tw := c.table()
	fmt.Fprintln(tw, "TOPIC\tQOS\tSIZE\tPAYLOAD")
	for _, r := range l.Retained {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", r.Topic, r.QoS, r.Size, payloadText(r.Payload, r.PayloadBase64))
	}
	return tw.Flush()
}

// payloadText shows a payload on one line: text quoted, binary as base64.
func payloadText(text *string, b64 string) string {
	const max = 60
	if text == nil {
		if b64 == "" {
			return "-"
		}
		if len(b64) > max {
			b64 = b64[:max] + "..."
		}
		return "base64:" + b64
	}
	s := *text
	if len(s) > max {
		s = s[:max] + "..."
	}
	return strconv.Quote(s)
}

func ctlUplinks(c *ctlClient, _ []string) error {
	var l monitor.UplinkList
	if printed, err := c.get("/api/uplinks", nil, &l); printed || err != nil {
		return err
	}
	if len(l.Uplinks) == 0 {
		fmt.Fprintln(c.out, "no uplinks configured")
		return nil
	}
	return printUplinks(c.out, l.Uplinks)
}

func printUplinks(w io.Writer, sts []bridge.Status) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "UPLINK\tSTATE\tSERVER\tMODE\tBACKLOG\tBYTES\tOLDEST\tMSGS/S\tFORWARDED\tDROPPED\tDOWNLINKED\tLAST ERROR")
	for _, s := range sts {
		server := s.Server
		if server == "" {
			server = s.Upstream
		}
		lastErr := "-"
		if s.LastError != "" {
			lastErr = fmt.Sprintf("%s (%s ago)", s.LastError, time.Since(s.LastErrAt).Round(time.Second))
		}
		oldest := "-"
		if s.BacklogMsgs > 0 {
			oldest = seconds(s.OldestAge)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\t%.0f\t%d\t%d\t%d\t%s\n", s.Name, s.State, server, dash(s.Mode),
			s.BacklogMsgs, s.BacklogBytes, oldest, s.MsgsPerSec, s.Forwarded, s.Dropped, s.Downlinked, lastErr)
	}
	return tw.Flush()
}

func ctlPeek(c *ctlClient, args []string) error {
	path := "/api/streams/" + pathEsc(args[0]) + "/messages"
	if len(args) == 2 {
		path = "/api/queues/" + pathEsc(args[0]) + "/" + pathEsc(args[1]) + "/messages"
	}
	q := url.Values{}
	if c.limit > 0 {
		q.Set("limit", strconv.Itoa(c.limit))
	}
	var l monitor.MessageList
	if printed, err := c.get(path, q, &l); printed || err != nil {
		return err
	}
	tw := c.table()
	fmt.Fprintln(tw, "SEQ\tSUBJECT\tTIME\tSIZE\tSTATE\tPAYLOAD")
	for _, m := range l.Messages {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\n", m.Seq, m.Subject, m.Time.Local().Format(time.DateTime), m.Size, dash(m.State),
			payloadText(m.Payload, m.PayloadBase64))
	}
	return tw.Flush()
}

func ctlCloseConnection(c *ctlClient, args []string) error {
	if _, err := strconv.ParseUint(args[1], 10, 64); err != nil {
		return fmt.Errorf("ctl close_connection: id %q is not a number", args[1])
	}
	return c.act(http.MethodDelete, "/api/connections/"+pathEsc(args[0])+"/"+args[1],
		fmt.Sprintf("closed %s connection %s", args[0], args[1]))
}

// ctlPurgeQueue purges an AMQP queue by name, or a stream's consumer.
func ctlPurgeQueue(c *ctlClient, args []string) error {
	stream, consumer := "", ""
	if len(args) == 2 {
		stream, consumer = args[0], args[1]
	} else {
		body, err := c.call(http.MethodGet, "/api/queues", url.Values{"name": {args[0]}, "limit": {"2"}})
		if err != nil {
			return err
		}
		var ql monitor.QueueList
		if err := json.Unmarshal(body, &ql); err != nil {
			return fmt.Errorf("ctl: /api/queues: %w", err)
		}
		switch len(ql.Queues) {
		case 0:
			return fmt.Errorf("ctl: no queue named %q (name a stream's consumer as STREAM CONSUMER)", args[0])
		case 1:
			stream, consumer = ql.Queues[0].Stream, ql.Queues[0].Consumer
		default:
			return fmt.Errorf("ctl: %q names more than one queue; give STREAM CONSUMER", args[0])
		}
	}
	return c.act(http.MethodPost, "/api/queues/"+pathEsc(stream)+"/"+pathEsc(consumer)+"/purge", "purged queue "+args[len(args)-1])
}

func ctlPurgeStream(c *ctlClient, args []string) error {
	return c.act(http.MethodPost, "/api/streams/"+pathEsc(args[0])+"/purge", "purged stream "+args[0])
}

func ctlDeleteStream(c *ctlClient, args []string) error {
	return c.act(http.MethodDelete, "/api/streams/"+pathEsc(args[0]), "deleted stream "+args[0])
}

func ctlDeleteConsumer(c *ctlClient, args []string) error {
	return c.act(http.MethodDelete, "/api/queues/"+pathEsc(args[0])+"/"+pathEsc(args[1]), "deleted consumer "+args[1]+" of "+args[0])
}

// bytesText writes a byte count for people.
func bytesText(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
