package monitor

import (
	"cmp"
	"encoding/base64"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ledgemq/ledge/bridge"
	"github.com/ledgemq/ledge/broker"
	"github.com/ledgemq/ledge/router"
)

// ledge's own JSON API. Field names are documented in docs/HTTP-API.md
// and pinned by the golden files in testdata/; renaming one breaks the
// scripts that read it.

// ProtocolInfo is one protocol's totals in /api/server.
type ProtocolInfo struct {
	Name           string  `json:"name"`
	Connections    int     `json:"connections"`
	InMsgs         int64   `json:"in_msgs"`
	OutMsgs        int64   `json:"out_msgs"`
	InBytes        int64   `json:"in_bytes"`
	OutBytes       int64   `json:"out_bytes"`
	InMsgsRate     float64 `json:"in_msgs_per_sec"`
	OutMsgsRate    float64 `json:"out_msgs_per_sec"`
	InBytesRate    float64 `json:"in_bytes_per_sec"`
	OutBytesRate   float64 `json:"out_bytes_per_sec"`
	SlowConsumers  int64   `json:"slow_consumers"`
	Dropped        int64   `json:"dropped_messages"`
	AuthFailures   int64   `json:"auth_failures"`
	ProtocolErrors int64   `json:"protocol_errors"`
}

// ListenerInfo is one listening socket in /api/server.
type ListenerInfo struct {
	Name             string `json:"name"`
	Protocol         string `json:"protocol"`
	Addr             string `json:"addr"`
	Connections      int64  `json:"connections"`
	TotalConnections uint64 `json:"total_connections"`
	Refused          uint64 `json:"refused_connections"`
	SlowConsumers    uint64 `json:"slow_consumers"`
	BytesIn          uint64 `json:"bytes_in"`
	BytesOut         uint64 `json:"bytes_out"`
}

// DiskInfo is the data disk in /api/server.
type DiskInfo struct {
	Path string `json:"path"`
	// StreamBytes are the bytes of the streams' logs; TotalBytes and
	// FreeBytes the file system's.
	StreamBytes int64   `json:"stream_bytes"`
	TotalBytes  uint64  `json:"total_bytes"`
	FreeBytes   uint64  `json:"free_bytes"`
	UsedPercent float64 `json:"used_percent"`
}

// ServerInfo is /api/server.
type ServerInfo struct {
	Name        string         `json:"name"`
	Version     string         `json:"version"`
	Go          string         `json:"go"`
	Start       time.Time      `json:"start"`
	Now         time.Time      `json:"now"`
	Uptime      float64        `json:"uptime_seconds"`
	MemBytes    uint64         `json:"mem_bytes"`
	HeapBytes   uint64         `json:"heap_bytes"`
	CPUSeconds  float64        `json:"cpu_seconds"`
	CPUPercent  float64        `json:"cpu_percent"`
	Cores       int            `json:"cores"`
	Goroutines  int            `json:"goroutines"`
	Connections int            `json:"connections"`
	InMsgs      int64          `json:"in_msgs"`
	OutMsgs     int64          `json:"out_msgs"`
	InBytes     int64          `json:"in_bytes"`
	OutBytes    int64          `json:"out_bytes"`
	InMsgsRate  float64        `json:"in_msgs_per_sec"`
	OutMsgsRate float64        `json:"out_msgs_per_sec"`
	Protocols   []ProtocolInfo `json:"protocols"`
	Listeners   []ListenerInfo `json:"listeners"`
	Streams     int            `json:"streams"`
	Consumers   int            `json:"consumers"`
	Messages    uint64         `json:"messages"`
	Bytes       uint64         `json:"bytes"`
	Sync        string         `json:"sync,omitempty"`
	Disk        *DiskInfo      `json:"disk,omitempty"`
	Health      string         `json:"health"`
	Uplinks     int            `json:"uplinks"`
	// Role is the requester's, so that the console offers only what it
	// may do.
	Role string `json:"role"`
}

// totals reads a protocol's counters, with the slow consumers its
// listeners cut off.
func totals(src *Sources, pr *Protocol) Totals {
	t := pr.Totals()
	var cut uint64
	found := false
	for _, l := range src.Listeners {
		if l.Protocol == pr.Name {
			cut += l.Stats().SlowConsumers
			found = true
		}
	}
	if found {
		t.SlowConsumers = int64(cut)
	}
	return t
}

func (s *Server) role(r *http.Request) Role {
	if s.opts.Access == nil {
		return RoleAdmin
	}
	return s.opts.Access(r)
}

func (s *Server) handleServer(w http.ResponseWriter, r *http.Request) error {
	q := parseQuery(r.URL.RawQuery)
	q.strict()
	if err := q.done(); err != nil {
		return err
	}
	src := s.sources(w)
	if src == nil {
		return nil
	}
	writeJSON(w, http.StatusOK, s.serverInfo(src, r, time.Now()))
	return nil
}

func (s *Server) serverInfo(src *Sources, r *http.Request, now time.Time) ServerInfo {
	p := readProcess()
	info := ServerInfo{
		Name: s.opts.ServerName, Version: s.opts.Version, Go: p.GoVersion,
		Start: s.start.UTC(), Now: now.UTC(), Uptime: now.Sub(s.start).Seconds(),
		MemBytes: p.RSS, HeapBytes: p.Heap, CPUSeconds: p.CPU.Seconds(), Cores: p.Cores, Goroutines: p.Goroutines,
		Sync: src.Sync, Role: s.role(r).String(),
	}
	info.CPUPercent = 100 * s.rates.observe("cpu", now, info.CPUSeconds)
	for i := range src.Protocols {
		pr := &src.Protocols[i]
		t := totals(src, pr)
		pi := ProtocolInfo{Name: pr.Name, Connections: t.Connections, InMsgs: t.InMsgs, OutMsgs: t.OutMsgs,
			InBytes: t.InBytes, OutBytes: t.OutBytes, SlowConsumers: t.SlowConsumers, Dropped: t.Dropped,
			AuthFailures: t.AuthFailures, ProtocolErrors: t.ProtocolErrors}
		key := "proto/" + pr.Name + "/"
		pi.InMsgsRate = s.rates.observe(key+"in", now, float64(t.InMsgs))
		pi.OutMsgsRate = s.rates.observe(key+"out", now, float64(t.OutMsgs))
		pi.InBytesRate = s.rates.observe(key+"inb", now, float64(t.InBytes))
		pi.OutBytesRate = s.rates.observe(key+"outb", now, float64(t.OutBytes))
		info.Protocols = append(info.Protocols, pi)
		info.Connections += t.Connections
		info.InMsgs += t.InMsgs
		info.OutMsgs += t.OutMsgs
		info.InBytes += t.InBytes
		info.OutBytes += t.OutBytes
		info.InMsgsRate += pi.InMsgsRate
		info.OutMsgsRate += pi.OutMsgsRate
	}
	for _, l := range src.Listeners {
		st := l.Stats()
		info.Listeners = append(info.Listeners, ListenerInfo{Name: l.Name, Protocol: l.Protocol, Addr: l.Addr,
			Connections: st.ConnsOpen, TotalConnections: st.ConnsTotal, Refused: st.ConnsRefused,
			SlowConsumers: st.SlowConsumers, BytesIn: st.BytesIn, BytesOut: st.BytesOut})
	}
	var diskBytes int64
	if src.Broker != nil {
		for _, st := range src.Broker.Streams() {
			si := st.Info()
			info.Streams++
			info.Consumers += si.State.Consumers
			info.Messages += si.State.Msgs
			info.Bytes += si.State.Bytes
			diskBytes += st.Storage().DiskBytes
		}
	}
	if s.opts.DataDir != "" {
		d := &DiskInfo{Path: s.opts.DataDir, StreamBytes: diskBytes}
		if total, free, err := diskStats(s.opts.DataDir); err == nil {
			d.TotalBytes, d.FreeBytes = total, free
			if total > 0 {
				d.UsedPercent = 100 * float64(total-free) / float64(total)
			}
		}
		info.Disk = d
	}
	if src.Uplinks != nil {
		info.Uplinks = len(src.Uplinks())
	}
	h, _ := s.health(now)
	info.Health = h.Status
	return info
}

// connSortKeys are the sort orders of /api/connections.
var connSortKeys = []string{"id", "protocol", "name", "addr", "user", "subscriptions", "pending_bytes",
	"in_msgs", "out_msgs", "in_bytes", "out_bytes", "in_msgs_per_sec", "out_msgs_per_sec", "start", "idle"}

// connections gathers every protocol's connections, with their rates and
// times filled in.
func (s *Server) connections(src *Sources, protocol string, now time.Time) []Conn {
	var all []Conn
	for _, pr := range src.Protocols {
		if protocol != "" && pr.Name != protocol {
			continue
		}
		for _, c := range pr.Conns() {
			c.Protocol = pr.Name
			key := "conn/" + pr.Name + "/" + strconv.FormatUint(c.ID, 10) + "/"
			c.InMsgsRate = s.rates.observe(key+"in", now, float64(c.InMsgs))
			c.OutMsgsRate = s.rates.observe(key+"out", now, float64(c.OutMsgs))
			if !c.Start.IsZero() {
				c.Uptime = now.Sub(c.Start).Seconds()
				c.Start = c.Start.UTC()
			}
			if !c.LastActivity.IsZero() {
				c.Idle = max(0, now.Sub(c.LastActivity).Seconds())
				c.LastActivity = c.LastActivity.UTC()
			}
			all = append(all, c)
		}
	}
	return all
}

func (s *Server) protocolNames(src *Sources) []string {
	names := make([]string, 0, len(src.Protocols))
	for _, p := range src.Protocols {
		names = append(names, p.Name)
	}
	return names
}

// ConnList is /api/connections.
type ConnList struct {
	Total       int    `json:"total"`
	Offset      int    `json:"offset"`
	Limit       int    `json:"limit"`
	Connections []Conn `json:"connections"`
}

func (s *Server) handleConnections(w http.ResponseWriter, r *http.Request) error {
	src := s.sources(w)
	if src == nil {
		return nil
	}
	q := parseQuery(r.URL.RawQuery)
	p := q.readPage(100, connSortKeys...)
	protocol := q.enum("protocol", "", s.protocolNames(src)...)
	subs := q.boolean("subs")
	q.strict()
	if err := q.done(); err != nil {
		return err
	}
	all := s.connections(src, protocol, time.Now())
	if p.filter != "" {
		all = slices.DeleteFunc(all, func(c Conn) bool {
			return !containsFold(p.filter, c.Name, c.ClientID, c.Addr, c.User, c.Lang, strconv.FormatUint(c.ID, 10))
		})
	}
	slices.SortStableFunc(all, func(a, b Conn) int {
		d := compareConns(p.sort, &a, &b)
		if d == 0 {
			d = cmp.Or(cmp.Compare(a.Protocol, b.Protocol), cmp.Compare(a.ID, b.ID))
		}
		if p.desc {
			return -d
		}
		return d
	})
	lo, hi := p.window(len(all))
	out := ConnList{Total: len(all), Offset: p.offset, Limit: p.limit, Connections: all[lo:hi]}
	if !subs {
		for i := range out.Connections {
			out.Connections[i].Subjects = nil
		}
	}
	if out.Connections == nil {
		out.Connections = []Conn{}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func compareConns(key string, a, b *Conn) int {
	switch key {
	case "protocol":
		return cmp.Compare(a.Protocol, b.Protocol)
	case "name":
		return cmp.Compare(a.Name+a.ClientID, b.Name+b.ClientID)
	case "addr":
		return cmp.Compare(a.Addr, b.Addr)
	case "user":
		return cmp.Compare(a.User, b.User)
	case "subscriptions":
		return cmp.Compare(a.Subscriptions, b.Subscriptions)
	case "pending_bytes":
		return cmp.Compare(a.PendingBytes, b.PendingBytes)
	case "in_msgs":
		return cmp.Compare(a.InMsgs, b.InMsgs)
	case "out_msgs":
		return cmp.Compare(a.OutMsgs, b.OutMsgs)
	case "in_bytes":
		return cmp.Compare(a.InBytes, b.InBytes)
	case "out_bytes":
		return cmp.Compare(a.OutBytes, b.OutBytes)
	case "in_msgs_per_sec":
		return cmp.Compare(a.InMsgsRate, b.InMsgsRate)
	case "out_msgs_per_sec":
		return cmp.Compare(a.OutMsgsRate, b.OutMsgsRate)
	case "start":
		return a.Start.Compare(b.Start)
	case "idle":
		return cmp.Compare(a.Idle, b.Idle)
	}
	return cmp.Compare(a.ID, b.ID)
}

// containsFold reports whether any of fields contains sub, ignoring case.
func containsFold(sub string, fields ...string) bool {
	sub = strings.ToLower(sub)
	for _, f := range fields {
		if strings.Contains(strings.ToLower(f), sub) {
			return true
		}
	}
	return false
}

// findConn returns the connection named by the path's protocol and id.
func (s *Server) findProtocol(src *Sources, name string) (*Protocol, error) {
	for i := range src.Protocols {
		if src.Protocols[i].Name == name {
			return &src.Protocols[i], nil
		}
	}
	return nil, errorf(http.StatusNotFound, "no protocol %q (served: %s)", name, strings.Join(s.protocolNames(src), ", "))
}

func pathID(r *http.Request) (uint64, error) {
	v := r.PathValue("id")
	id, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, errorf(http.StatusBadRequest, "connection id %q is not a number", v)
	}
	return id, nil
}

func (s *Server) handleConnection(w http.ResponseWriter, r *http.Request) error {
	src := s.sources(w)
	if src == nil {
		return nil
	}
	q := parseQuery(r.URL.RawQuery)
	q.strict()
	if err := q.done(); err != nil {
		return err
	}
	pr, err := s.findProtocol(src, r.PathValue("protocol"))
	if err != nil {
		return err
	}
	id, err := pathID(r)
	if err != nil {
		return err
	}
	for _, c := range s.connections(src, pr.Name, time.Now()) {
		if c.ID == id {
			writeJSON(w, http.StatusOK, c)
			return nil
		}
	}
	return errorf(http.StatusNotFound, "no %s connection %d", pr.Name, id)
}

// errClosedByOperator is the close reason of a connection closed from the
// monitoring API, as the gateway's logs show it.
var errClosedByOperator = errors.New("closed by an operator through the monitoring API")

func (s *Server) handleCloseConnection(w http.ResponseWriter, r *http.Request) error {
	src := s.sources(w)
	if src == nil {
		return nil
	}
	pr, err := s.findProtocol(src, r.PathValue("protocol"))
	if err != nil {
		return err
	}
	id, err := pathID(r)
	if err != nil {
		return err
	}
	if !pr.Close(id) {
		return errorf(http.StatusNotFound, "no %s connection %d", pr.Name, id)
	}
	s.opts.Logger.Info("monitor: connection closed by an operator", "protocol", pr.Name, "id", id, "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, ActionResult{Action: "close", Protocol: pr.Name, ID: id})
	return nil
}

// ActionResult answers an operator action.
type ActionResult struct {
	Action   string `json:"action"`
	Protocol string `json:"protocol,omitempty"`
	ID       uint64 `json:"id,omitempty"`
	Stream   string `json:"stream,omitempty"`
	Consumer string `json:"consumer,omitempty"`
	Purged   uint64 `json:"purged,omitempty"`
}

// SubList is /api/subscriptions.
type SubList struct {
	Total         int            `json:"total"`
	Offset        int            `json:"offset"`
	Limit         int            `json:"limit"`
	Subscriptions []Subscription `json:"subscriptions"`
}

func (s *Server) subscriptions(src *Sources, protocol string) []Subscription {
	var all []Subscription
	for _, pr := range src.Protocols {
		if pr.Subscriptions == nil || (protocol != "" && pr.Name != protocol) {
			continue
		}
		for _, sub := range pr.Subscriptions() {
			sub.Protocol = pr.Name
			all = append(all, sub)
		}
	}
	return all
}

func (s *Server) handleSubscriptions(w http.ResponseWriter, r *http.Request) error {
	src := s.sources(w)
	if src == nil {
		return nil
	}
	q := parseQuery(r.URL.RawQuery)
	p := q.readPage(1000, "subject", "protocol", "delivered")
	protocol := q.enum("protocol", "", s.protocolNames(src)...)
	q.strict()
	if err := q.done(); err != nil {
		return err
	}
	all := s.subscriptions(src, protocol)
	if p.filter != "" {
		all = slices.DeleteFunc(all, func(x Subscription) bool { return !containsFold(p.filter, x.Subject, x.Queue, x.Client) })
	}
	slices.SortStableFunc(all, func(a, b Subscription) int {
		var d int
		switch p.sort {
		case "protocol":
			d = cmp.Compare(a.Protocol, b.Protocol)
		case "delivered":
			d = cmp.Compare(a.Delivered, b.Delivered)
		}
		d = cmp.Or(d, cmp.Compare(a.Subject, b.Subject), cmp.Compare(a.Protocol, b.Protocol), cmp.Compare(a.ConnID, b.ConnID), cmp.Compare(a.Client, b.Client))
		if p.desc {
			return -d
		}
		return d
	})
	lo, hi := p.window(len(all))
	out := SubList{Total: len(all), Offset: p.offset, Limit: p.limit, Subscriptions: all[lo:hi]}
	if out.Subscriptions == nil {
		out.Subscriptions = []Subscription{}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// Owners of streams and consumers: the protocol whose state they are.
const (
	ownerJetStream = "jetstream"
	ownerAMQP      = "amqp"
	ownerMQTT      = "mqtt"
	ownerUplink    = "uplink"
)

// streamOwner says whose a stream is, by the prefixes the gateways and
// the bridge give their streams.
func streamOwner(name string) string {
	switch {
	case strings.HasPrefix(name, "AMQP_"):
		return ownerAMQP
	case strings.HasPrefix(name, "MQTT_"):
		return ownerMQTT
	case strings.HasPrefix(name, "UPLINK_"):
		return ownerUplink
	}
	return ownerJetStream
}

// StreamRow is a stream in /api/streams.
type StreamRow struct {
	Name        string   `json:"name"`
	Owner       string   `json:"owner"`
	Subjects    []string `json:"subjects"`
	Retention   string   `json:"retention"`
	Storage     string   `json:"storage"`
	Messages    uint64   `json:"messages"`
	Bytes       uint64   `json:"bytes"`
	DiskBytes   int64    `json:"disk_bytes"`
	Segments    int      `json:"segments"`
	FirstSeq    uint64   `json:"first_seq"`
	LastSeq     uint64   `json:"last_seq"`
	FirstTime   string   `json:"first_time,omitempty"`
	LastTime    string   `json:"last_time,omitempty"`
	NumSubjects int      `json:"num_subjects"`
	NumDeleted  int      `json:"num_deleted"`
	Consumers   int      `json:"consumers"`
	// InMsgsRate is messages stored per second since the last reading.
	InMsgsRate float64   `json:"in_msgs_per_sec"`
	Created    time.Time `json:"created"`
	MaxMsgs    int64     `json:"max_msgs,omitempty"`
	MaxBytes   int64     `json:"max_bytes,omitempty"`
	MaxAge     float64   `json:"max_age_seconds,omitempty"`
	Error      string    `json:"error,omitempty"`
	// ConsumerList is set for one stream (/api/streams/{name}).
	ConsumerList []QueueRow `json:"consumer_list,omitempty"`
}

func timeText(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func (s *Server) streamRow(st *broker.Stream, now time.Time) StreamRow {
	info := st.Info()
	c, state := info.Config, info.State
	sto := st.Storage()
	row := StreamRow{
		Name: c.Name, Owner: streamOwner(c.Name), Subjects: c.Subjects, Retention: c.Retention.String(),
		Storage: c.Storage.String(), Messages: state.Msgs, Bytes: state.Bytes, DiskBytes: sto.DiskBytes,
		Segments: sto.Segments, FirstSeq: state.FirstSeq, LastSeq: state.LastSeq,
		FirstTime: timeText(state.FirstTime), LastTime: timeText(state.LastTime),
		NumSubjects: state.NumSubjects, NumDeleted: state.NumDeleted, Consumers: state.Consumers,
		Created: c.Created.UTC(), MaxMsgs: c.MaxMsgs, MaxBytes: c.MaxBytes, MaxAge: c.MaxAge.Seconds(),
	}
	if row.Subjects == nil {
		row.Subjects = []string{}
	}
	if sto.Err != nil {
		row.Error = sto.Err.Error()
	}
	row.InMsgsRate = s.rates.observe("stream/"+c.Name, now, float64(state.LastSeq))
	return row
}

// StreamList is /api/streams.
type StreamList struct {
	Total   int         `json:"total"`
	Offset  int         `json:"offset"`
	Limit   int         `json:"limit"`
	Streams []StreamRow `json:"streams"`
}

func (s *Server) handleStreams(w http.ResponseWriter, r *http.Request) error {
	src := s.sources(w)
	if src == nil {
		return nil
	}
	q := parseQuery(r.URL.RawQuery)
	p := q.readPage(1000, "name", "messages", "bytes", "disk_bytes", "consumers", "in_msgs_per_sec")
	owner := q.enum("owner", "", ownerJetStream, ownerAMQP, ownerMQTT, ownerUplink)
	q.strict()
	if err := q.done(); err != nil {
		return err
	}
	now := time.Now()
	var rows []StreamRow
	for _, st := range src.Broker.Streams() {
		if owner != "" && streamOwner(st.Name()) != owner {
			continue
		}
		if p.filter != "" && !containsFold(p.filter, st.Name()) {
			continue
		}
		rows = append(rows, s.streamRow(st, now))
	}
	slices.SortStableFunc(rows, func(a, b StreamRow) int {
		var d int
		switch p.sort {
		case "messages":
			d = cmp.Compare(a.Messages, b.Messages)
		case "bytes":
			d = cmp.Compare(a.Bytes, b.Bytes)
		case "disk_bytes":
			d = cmp.Compare(a.DiskBytes, b.DiskBytes)
		case "consumers":
			d = cmp.Compare(a.Consumers, b.Consumers)
		case "in_msgs_per_sec":
			d = cmp.Compare(a.InMsgsRate, b.InMsgsRate)
		}
		d = cmp.Or(d, cmp.Compare(a.Name, b.Name))
		if p.desc {
			return -d
		}
		return d
	})
	lo, hi := p.window(len(rows))
	out := StreamList{Total: len(rows), Offset: p.offset, Limit: p.limit, Streams: rows[lo:hi]}
	if out.Streams == nil {
		out.Streams = []StreamRow{}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) stream(src *Sources, name string) (*broker.Stream, error) {
	st, err := src.Broker.Stream(name)
	if errors.Is(err, broker.ErrStreamNotFound) {
		return nil, errorf(http.StatusNotFound, "no stream %q", name)
	}
	if err != nil {
		return nil, errorf(http.StatusNotFound, "stream %q: %v", name, err)
	}
	return st, nil
}

func (s *Server) handleStream(w http.ResponseWriter, r *http.Request) error {
	src := s.sources(w)
	if src == nil {
		return nil
	}
	q := parseQuery(r.URL.RawQuery)
	q.strict()
	if err := q.done(); err != nil {
		return err
	}
	st, err := s.stream(src, r.PathValue("stream"))
	if err != nil {
		return err
	}
	now := time.Now()
	row := s.streamRow(st, now)
	refs := s.queueRefs(src)
	for _, c := range st.Consumers() {
		row.ConsumerList = append(row.ConsumerList, s.queueRow(st, c, refs, now))
	}
	writeJSON(w, http.StatusOK, row)
	return nil
}

func (s *Server) handleDeleteStream(w http.ResponseWriter, r *http.Request) error {
	src := s.sources(w)
	if src == nil {
		return nil
	}
	st, err := s.stream(src, r.PathValue("stream"))
	if err != nil {
		return err
	}
	if owner := streamOwner(st.Name()); owner != ownerJetStream {
		return errorf(http.StatusConflict, "stream %s holds the %s gateway's state; delete what it holds through %s instead", st.Name(), owner, owner)
	}
	if err := src.Broker.DeleteStream(st.Name()); err != nil {
		if errors.Is(err, broker.ErrStreamNotFound) {
			return errorf(http.StatusNotFound, "no stream %q", st.Name())
		}
		return err
	}
	s.opts.Logger.Info("monitor: stream deleted by an operator", "stream", st.Name(), "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, ActionResult{Action: "delete", Stream: st.Name()})
	return nil
}

// purgeable refuses a purge of the gateways' own state (MQTT sessions and
// retained messages, AMQP definitions); an AMQP queue's stream and an
// uplink's backlog may be purged.
func purgeable(name string) error {
	if strings.HasPrefix(name, "MQTT_") || name == "AMQP_meta" {
		return errorf(http.StatusConflict, "stream %s holds the %s gateway's own state and is not purged", name, streamOwner(name))
	}
	return nil
}

func (s *Server) purge(w http.ResponseWriter, r *http.Request, st *broker.Stream, consumer string) error {
	if err := purgeable(st.Name()); err != nil {
		return err
	}
	n, err := st.Purge(broker.PurgeRequest{})
	if errors.Is(err, broker.ErrPurgeDenied) {
		return errorf(http.StatusConflict, "stream %s does not allow purging (deny_purge)", st.Name())
	}
	if err != nil {
		return err
	}
	s.opts.Logger.Info("monitor: stream purged by an operator", "stream", st.Name(), "messages", n, "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, ActionResult{Action: "purge", Stream: st.Name(), Consumer: consumer, Purged: n})
	return nil
}

func (s *Server) handlePurgeStream(w http.ResponseWriter, r *http.Request) error {
	src := s.sources(w)
	if src == nil {
		return nil
	}
	st, err := s.stream(src, r.PathValue("stream"))
	if err != nil {
		return err
	}
	return s.purge(w, r, st, "")
}

// Message is one stored message in a peek.
type Message struct {
	Seq     uint64            `json:"seq"`
	Subject string            `json:"subject"`
	Time    time.Time         `json:"time"`
	Size    int               `json:"size"`
	Headers map[string]string `json:"headers,omitempty"`
	// Payload is the payload when it is UTF-8 text, PayloadBase64 when
	// it is not; Truncated says only the first maxPeekBytes are shown.
	Payload       *string `json:"payload,omitempty"`
	PayloadBase64 string  `json:"payload_base64,omitempty"`
	Truncated     bool    `json:"truncated,omitempty"`
	// State is "ready" or "delivered" (not yet below the consumer's ack
	// floor) for a queue's messages.
	State string `json:"state,omitempty"`
}

// maxPeekBytes bounds each payload shown by a peek.
const maxPeekBytes = 64 << 10

func peekMessage(m *broker.StoredMsg) Message {
	msg := Message{Seq: m.Seq, Subject: m.Subject, Time: m.Time.UTC(), Size: len(m.Payload)}
	for _, h := range m.Headers {
		if msg.Headers == nil {
			msg.Headers = map[string]string{}
		}
		msg.Headers[string(h.Key)] = string(h.Value)
	}
	p := m.Payload
	if len(p) > maxPeekBytes {
		p, msg.Truncated = p[:maxPeekBytes], true
	}
	if utf8.Valid(p) {
		text := string(p)
		msg.Payload = &text
	} else {
		msg.PayloadBase64 = base64.StdEncoding.EncodeToString(p)
	}
	return msg
}

// MessageList is a peek's answer.
type MessageList struct {
	Stream   string    `json:"stream"`
	Consumer string    `json:"consumer,omitempty"`
	Messages []Message `json:"messages"`
}

// peek reads up to limit messages from seq on whose subject matches
// filter (nil: all), without changing anything.
func peek(st *broker.Stream, seq uint64, limit int, filter func(string) bool) ([]Message, error) {
	out := []Message{}
	for len(out) < limit {
		m, err := st.GetNextMsg(seq, "")
		if errors.Is(err, broker.ErrNoMessage) {
			break
		}
		if err != nil {
			return nil, err
		}
		seq = m.Seq + 1
		if filter != nil && !filter(m.Subject) {
			continue
		}
		out = append(out, peekMessage(m))
	}
	return out, nil
}

func (s *Server) handlePeekStream(w http.ResponseWriter, r *http.Request) error {
	src := s.sources(w)
	if src == nil {
		return nil
	}
	q := parseQuery(r.URL.RawQuery)
	seq := q.integer("seq", 0, 0, 1<<62)
	limit := q.integer("limit", 10, 1, 100)
	subject := q.str("subject")
	q.strict()
	if err := q.done(); err != nil {
		return err
	}
	var match func(string) bool
	if subject != "" {
		p, err := router.CompilePattern(subject)
		if err != nil {
			return errorf(http.StatusBadRequest, "parameter \"subject\": %v", err)
		}
		match = p.Matches
	}
	st, err := s.stream(src, r.PathValue("stream"))
	if err != nil {
		return err
	}
	if seq == 0 {
		seq = int64(st.Info().State.FirstSeq)
	}
	msgs, err := peek(st, uint64(seq), int(limit), match)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, MessageList{Stream: st.Name(), Messages: msgs})
	return nil
}

// QueueRow is a queue in /api/queues: a consumer of a stream, named as
// the protocol that owns it names it.
type QueueRow struct {
	// Name is the AMQP queue's name, or the consumer's.
	Name string `json:"name"`
	// Protocol is the protocol whose queue it is: amqp, mqtt (a
	// persistent session), uplink, or jetstream.
	Protocol string `json:"protocol"`
	Stream   string `json:"stream"`
	Consumer string `json:"consumer"`
	// Messages are Ready plus Unacked, as RabbitMQ counts them.
	Messages    uint64 `json:"messages"`
	Ready       uint64 `json:"messages_ready"`
	Unacked     int    `json:"messages_unacknowledged"`
	Redelivered int    `json:"messages_redelivered"`
	Waiting     int    `json:"waiting_pulls"`
	// Consumers counts the subscribers on the queue (AMQP basic.consume);
	// for others it is 1 while a push consumer is bound.
	Consumers     int      `json:"consumers"`
	Durable       bool     `json:"durable"`
	AckPolicy     string   `json:"ack_policy"`
	MaxAckPending int      `json:"max_ack_pending"`
	Filter        []string `json:"filter_subjects,omitempty"`
	DeliveredSeq  uint64   `json:"delivered_seq"`
	AckFloorSeq   uint64   `json:"ack_floor_seq"`
	// Rates in messages per second since the last reading: stored in the
	// stream, delivered (redeliveries included) and acknowledged.
	PublishRate float64 `json:"publish_per_sec"`
	DeliverRate float64 `json:"deliver_per_sec"`
	AckRate     float64 `json:"ack_per_sec"`

	delivered, acked uint64 // consumer sequences, for /metrics
}

type queueKey struct{ stream, consumer string }

type queueOwner struct {
	protocol string
	ref      QueueRef
}

func (s *Server) queueRefs(src *Sources) map[queueKey]queueOwner {
	refs := map[queueKey]queueOwner{}
	for _, pr := range src.Protocols {
		if pr.Queues == nil {
			continue
		}
		for _, ref := range pr.Queues() {
			refs[queueKey{ref.Stream, ref.Consumer}] = queueOwner{protocol: pr.Name, ref: ref}
		}
	}
	return refs
}

func (s *Server) queueRow(st *broker.Stream, c *broker.Consumer, refs map[queueKey]queueOwner, now time.Time) QueueRow {
	ci := c.Info()
	row := QueueRow{
		Name: ci.Name, Stream: ci.Stream, Consumer: ci.Name, Ready: ci.NumPending, Unacked: ci.NumAckPending,
		Redelivered: ci.NumRedelivered, Waiting: ci.NumWaiting, Durable: ci.Config.Durable,
		AckPolicy: ci.Config.AckPolicy.String(), MaxAckPending: ci.Config.MaxAckPending,
		Filter: ci.Config.FilterSubjects, DeliveredSeq: ci.Delivered.Stream, AckFloorSeq: ci.AckFloor.Stream,
	}
	row.Messages = row.Ready + uint64(row.Unacked)
	row.delivered, row.acked = ci.Delivered.Consumer, ci.AckFloor.Consumer
	if o, ok := refs[queueKey{ci.Stream, ci.Name}]; ok {
		row.Name, row.Protocol, row.Consumers, row.Durable = o.ref.Name, o.protocol, o.ref.Consumers, o.ref.Durable
	} else {
		row.Protocol = streamOwner(ci.Stream)
		if strings.HasPrefix(ci.Name, "uplink_") {
			row.Protocol = ownerUplink
		}
		if ci.PushBound {
			row.Consumers = 1
		}
	}
	key := "queue/" + ci.Stream + "/" + ci.Name + "/"
	row.PublishRate = s.rates.observe(key+"pub", now, float64(st.Info().State.LastSeq))
	row.DeliverRate = s.rates.observe(key+"del", now, float64(ci.Delivered.Consumer))
	row.AckRate = s.rates.observe(key+"ack", now, float64(ci.AckFloor.Consumer))
	return row
}

// QueueList is /api/queues.
type QueueList struct {
	Total  int        `json:"total"`
	Offset int        `json:"offset"`
	Limit  int        `json:"limit"`
	Queues []QueueRow `json:"queues"`
}

var queueSortKeys = []string{"name", "protocol", "stream", "messages", "messages_ready", "messages_unacknowledged",
	"messages_redelivered", "consumers", "publish_per_sec", "deliver_per_sec", "ack_per_sec"}

// queues returns every queue row.
func (s *Server) queues(src *Sources, now time.Time) []QueueRow {
	refs := s.queueRefs(src)
	var rows []QueueRow
	for _, st := range src.Broker.Streams() {
		for _, c := range st.Consumers() {
			rows = append(rows, s.queueRow(st, c, refs, now))
		}
	}
	return rows
}

func (s *Server) handleQueues(w http.ResponseWriter, r *http.Request) error {
	src := s.sources(w)
	if src == nil {
		return nil
	}
	q := parseQuery(r.URL.RawQuery)
	p := q.readPage(1000, queueSortKeys...)
	protocol := q.enum("protocol", "", ownerJetStream, ownerAMQP, ownerMQTT, ownerUplink)
	name := q.str("name")
	q.strict()
	if err := q.done(); err != nil {
		return err
	}
	rows := s.queues(src, time.Now())
	rows = slices.DeleteFunc(rows, func(x QueueRow) bool {
		return (protocol != "" && x.Protocol != protocol) || (name != "" && x.Name != name) ||
			(p.filter != "" && !containsFold(p.filter, x.Name, x.Stream, x.Consumer))
	})
	slices.SortStableFunc(rows, func(a, b QueueRow) int {
		var d int
		switch p.sort {
		case "protocol":
			d = cmp.Compare(a.Protocol, b.Protocol)
		case "stream":
			d = cmp.Compare(a.Stream, b.Stream)
		case "messages":
			d = cmp.Compare(a.Messages, b.Messages)
		case "messages_ready":
			d = cmp.Compare(a.Ready, b.Ready)
		case "messages_unacknowledged":
			d = cmp.Compare(a.Unacked, b.Unacked)
		case "messages_redelivered":
			d = cmp.Compare(a.Redelivered, b.Redelivered)
		case "consumers":
			d = cmp.Compare(a.Consumers, b.Consumers)
		case "publish_per_sec":
			d = cmp.Compare(a.PublishRate, b.PublishRate)
		case "deliver_per_sec":
			d = cmp.Compare(a.DeliverRate, b.DeliverRate)
		case "ack_per_sec":
			d = cmp.Compare(a.AckRate, b.AckRate)
		}
		d = cmp.Or(d, cmp.Compare(a.Name, b.Name), cmp.Compare(a.Stream, b.Stream), cmp.Compare(a.Consumer, b.Consumer))
		if p.desc {
			return -d
		}
		return d
	})
	lo, hi := p.window(len(rows))
	out := QueueList{Total: len(rows), Offset: p.offset, Limit: p.limit, Queues: rows[lo:hi]}
	if out.Queues == nil {
		out.Queues = []QueueRow{}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) consumer(src *Sources, r *http.Request) (*broker.Stream, *broker.Consumer, error) {
	st, err := s.stream(src, r.PathValue("stream"))
	if err != nil {
		return nil, nil, err
	}
	name := r.PathValue("consumer")
	c, err := st.Consumer(name)
	if err != nil {
		return nil, nil, errorf(http.StatusNotFound, "no consumer %q on stream %s", name, st.Name())
	}
	return st, c, nil
}

func (s *Server) handleQueue(w http.ResponseWriter, r *http.Request) error {
	src := s.sources(w)
	if src == nil {
		return nil
	}
	q := parseQuery(r.URL.RawQuery)
	q.strict()
	if err := q.done(); err != nil {
		return err
	}
	st, c, err := s.consumer(src, r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.queueRow(st, c, s.queueRefs(src), time.Now()))
	return nil
}

func (s *Server) handleDeleteQueue(w http.ResponseWriter, r *http.Request) error {
	src := s.sources(w)
	if src == nil {
		return nil
	}
	st, c, err := s.consumer(src, r)
	if err != nil {
		return err
	}
	row := s.queueRow(st, c, s.queueRefs(src), time.Now())
	if row.Protocol != ownerJetStream {
		return errorf(http.StatusConflict, "consumer %s of %s is the %s gateway's; it is removed through %s", c.Name(), st.Name(), row.Protocol, row.Protocol)
	}
	if err := st.DeleteConsumer(c.Name()); err != nil {
		if errors.Is(err, broker.ErrConsumerNotFound) {
			return errorf(http.StatusNotFound, "no consumer %q on stream %s", c.Name(), st.Name())
		}
		return err
	}
	s.opts.Logger.Info("monitor: consumer deleted by an operator", "stream", st.Name(), "consumer", c.Name(), "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, ActionResult{Action: "delete", Stream: st.Name(), Consumer: c.Name()})
	return nil
}

func (s *Server) handlePurgeQueue(w http.ResponseWriter, r *http.Request) error {
	src := s.sources(w)
	if src == nil {
		return nil
	}
	st, c, err := s.consumer(src, r)
	if err != nil {
		return err
	}
	// A queue's messages are its stream's: a purge empties the stream,
	// as AMQP's queue.purge does.
	return s.purge(w, r, st, c.Name())
}

func (s *Server) handlePeekQueue(w http.ResponseWriter, r *http.Request) error {
	src := s.sources(w)
	if src == nil {
		return nil
	}
	q := parseQuery(r.URL.RawQuery)
	limit := q.integer("limit", 10, 1, 100)
	q.strict()
	if err := q.done(); err != nil {
		return err
	}
	st, c, err := s.consumer(src, r)
	if err != nil {
		return err
	}
	ci := c.Info()
	var match func(string) bool
	if fs := ci.Config.FilterSubjects; len(fs) > 0 {
		var pats []router.Pattern
		for _, f := range fs {
			if p, err := router.CompilePattern(f); err == nil {
				pats = append(pats, p)
			}
		}
		match = func(subject string) bool {
			return slices.ContainsFunc(pats, func(p router.Pattern) bool { return p.Matches(subject) })
		}
	}
	msgs, err := peek(st, ci.AckFloor.Stream+1, int(limit), match)
	if err != nil {
		return err
	}
	for i := range msgs {
		msgs[i].State = "ready"
		if msgs[i].Seq <= ci.Delivered.Stream {
			msgs[i].State = "delivered"
		}
	}
	writeJSON(w, http.StatusOK, MessageList{Stream: st.Name(), Consumer: c.Name(), Messages: msgs})
	return nil
}

// RetainedRow is a retained message in /api/retained.
type RetainedRow struct {
	Protocol      string  `json:"protocol"`
	Topic         string  `json:"topic"`
	QoS           int     `json:"qos"`
	Size          int     `json:"size"`
	Payload       *string `json:"payload,omitempty"`
	PayloadBase64 string  `json:"payload_base64,omitempty"`
	Truncated     bool    `json:"truncated,omitempty"`
}

// RetainedList is /api/retained.
type RetainedList struct {
	Total    int           `json:"total"`
	Offset   int           `json:"offset"`
	Limit    int           `json:"limit"`
	Retained []RetainedRow `json:"retained"`
}

func (s *Server) handleRetained(w http.ResponseWriter, r *http.Request) error {
	src := s.sources(w)
	if src == nil {
		return nil
	}
	q := parseQuery(r.URL.RawQuery)
	p := q.readPage(100, "topic", "size")
	filter := q.str("filter")
	q.strict()
	if err := q.done(); err != nil {
		return err
	}
	if filter == "" {
		filter = "#"
	}
	// Payloads are data, shown to operators only.
	payloads := s.role(r) >= RoleAdmin
	rows := []RetainedRow{}
	for _, pr := range src.Protocols {
		if pr.Retained == nil {
			continue
		}
		list, err := pr.Retained(filter)
		if err != nil {
			return errorf(http.StatusBadRequest, "parameter \"filter\": %v", err)
		}
		for _, m := range list {
			if p.filter != "" && !containsFold(p.filter, m.Topic) {
				continue
			}
			row := RetainedRow{Protocol: pr.Name, Topic: m.Topic, QoS: int(m.QoS), Size: len(m.Payload)}
			if payloads {
				pm := peekMessage(&broker.StoredMsg{Payload: m.Payload})
				row.Payload, row.PayloadBase64, row.Truncated = pm.Payload, pm.PayloadBase64, pm.Truncated
			}
			rows = append(rows, row)
		}
	}
	slices.SortStableFunc(rows, func(a, b RetainedRow) int {
		d := 0
		if p.sort == "size" {
			d = cmp.Compare(a.Size, b.Size)
		}
		d = cmp.Or(d, cmp.Compare(a.Topic, b.Topic))
		if p.desc {
			return -d
		}
		return d
	})
	lo, hi := p.window(len(rows))
	writeJSON(w, http.StatusOK, RetainedList{Total: len(rows), Offset: p.offset, Limit: p.limit, Retained: rows[lo:hi]})
	return nil
}

// UplinkList is /api/uplinks: the bridge's own status, whose field names
// `ledge ctl uplinks` has always printed.
type UplinkList struct {
	Uplinks []bridge.Status `json:"uplinks"`
}

func (s *Server) handleUplinks(w http.ResponseWriter, r *http.Request) error {
	src := s.sources(w)
	if src == nil {
		return nil
	}
	q := parseQuery(r.URL.RawQuery)
	q.strict()
	if err := q.done(); err != nil {
		return err
	}
	out := UplinkList{Uplinks: []bridge.Status{}}
	if src.Uplinks != nil {
		out.Uplinks = append(out.Uplinks, src.Uplinks()...)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
