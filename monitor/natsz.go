package monitor

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/ledgemq/ledge/broker"
	"github.com/ledgemq/ledge/router"
)

// nats-server's monitoring endpoints, in its JSON field names, for the
// fields ledge has, so that nats-top, prometheus-nats-exporter and the
// nats CLI's server commands read ledge as they read nats-server. The
// tests decode these answers into nats-server's own types with unknown
// fields refused. /connz and /subsz list the NATS port's clients, as
// nats-server lists its clients; /varz counts every protocol, as
// nats-server counts its MQTT and WebSocket clients in its totals.

// natsDuration formats d as nats-server does: "3d4h5m6s".
func natsDuration(d time.Duration) string {
	secs := int64(d / time.Second)
	mins, hrs := secs/60, secs/3600
	days := hrs / 24
	yrs := days / 365
	switch {
	case yrs > 0:
		return fmt.Sprintf("%dy%dd%dh%dm%ds", yrs, days%365, hrs%24, mins%60, secs%60)
	case days > 0:
		return fmt.Sprintf("%dd%dh%dm%ds", days, hrs%24, mins%60, secs%60)
	case hrs > 0:
		return fmt.Sprintf("%dh%dm%ds", hrs, mins%60, secs%60)
	case mins > 0:
		return fmt.Sprintf("%dm%ds", mins, secs%60)
	}
	return fmt.Sprintf("%ds", secs)
}

type varzJetStream struct {
	Config *jszConfig `json:"config,omitempty"`
	Stats  *jszStats  `json:"stats,omitempty"`
}

type jszConfig struct {
	MaxMemory    int64         `json:"max_memory"`
	MaxStore     int64         `json:"max_storage"`
	StoreDir     string        `json:"store_dir,omitempty"`
	SyncInterval time.Duration `json:"sync_interval,omitempty"`
	SyncAlways   bool          `json:"sync_always,omitempty"`
}

type jszStats struct {
	Memory   uint64 `json:"memory"`
	Store    uint64 `json:"storage"`
	Accounts int    `json:"accounts"`
}

type varz struct {
	ID               string         `json:"server_id"`
	Name             string         `json:"server_name"`
	Version          string         `json:"version"`
	Proto            int            `json:"proto"`
	GoVersion        string         `json:"go"`
	Host             string         `json:"host"`
	Port             int            `json:"port"`
	AuthRequired     bool           `json:"auth_required,omitempty"`
	TLSRequired      bool           `json:"tls_required,omitempty"`
	MaxConn          int            `json:"max_connections"`
	PingInterval     time.Duration  `json:"ping_interval"`
	MaxPingsOut      int            `json:"ping_max"`
	HTTPHost         string         `json:"http_host"`
	HTTPPort         int            `json:"http_port"`
	AuthTimeout      float64        `json:"auth_timeout"`
	MaxControlLine   int32          `json:"max_control_line"`
	MaxPayload       int            `json:"max_payload"`
	MaxPending       int64          `json:"max_pending"`
	JetStream        varzJetStream  `json:"jetstream"`
	Start            time.Time      `json:"start"`
	Now              time.Time      `json:"now"`
	Uptime           string         `json:"uptime"`
	Mem              int64          `json:"mem"`
	Cores            int            `json:"cores"`
	MaxProcs         int            `json:"gomaxprocs"`
	CPU              float64        `json:"cpu"`
	Connections      int            `json:"connections"`
	TotalConnections uint64         `json:"total_connections"`
	Routes           int            `json:"routes"`
	Remotes          int            `json:"remotes"`
	Leafs            int            `json:"leafnodes"`
	InMsgs           int64          `json:"in_msgs"`
	InBytes          int64          `json:"in_bytes"`
	OutMsgs          int64          `json:"out_msgs"`
	OutBytes         int64          `json:"out_bytes"`
	SlowConsumers    int64          `json:"slow_consumers"`
	Subscriptions    uint32         `json:"subscriptions"`
	ConfigLoadTime   time.Time      `json:"config_load_time"`
	SlowConsumerStat *slowConsumers `json:"slow_consumer_stats"`
}

type slowConsumers struct {
	Clients uint64 `json:"clients"`
}

// jetStreamConfig describes the broker's JetStream as nats-server's
// config object does: no limits beyond the disk.
func jetStreamConfig(src *Sources, dir string) *jszConfig {
	c := &jszConfig{MaxMemory: -1, MaxStore: -1, StoreDir: dir}
	c.SyncAlways = src.Sync == "always"
	return c
}

// jetStreamUse sums the bytes of memory and file streams.
func jetStreamUse(b *broker.Broker) (mem, file uint64, streams, consumers int, msgs uint64) {
	if b == nil {
		return
	}
	for _, st := range b.Streams() {
		info := st.Info()
		if info.Config.Storage == broker.MemoryStorage {
			mem += info.State.Bytes
		} else {
			file += info.State.Bytes
		}
		streams++
		consumers += info.State.Consumers
		msgs += info.State.Msgs
	}
	return
}

func (s *Server) handleVarz(w http.ResponseWriter, _ *http.Request) error {
	src := s.sources(w)
	if src == nil {
		return nil
	}
	now := time.Now()
	p := readProcess()
	v := varz{
		ID: s.opts.ServerName, Name: s.opts.ServerName, Version: s.opts.Version, Proto: 1, GoVersion: p.GoVersion,
		HTTPHost: s.opts.HTTPHost, HTTPPort: s.opts.HTTPPort,
		Start: s.start.UTC(), Now: now.UTC(), Uptime: natsDuration(now.Sub(s.start)),
		Mem: int64(p.RSS), Cores: p.Cores, MaxProcs: p.MaxProcs, ConfigLoadTime: s.start.UTC(),
	}
	v.CPU = 100 * s.rates.observe("varz/cpu", now, p.CPU.Seconds())
	if n := src.NATS; n != nil {
		v.ID, v.Version, v.Host, v.Port = n.ServerID, n.Version, n.Host, n.Port
		v.AuthRequired, v.TLSRequired, v.MaxConn = n.AuthRequired, n.TLSRequired, n.MaxConns
		v.PingInterval, v.MaxPingsOut = n.PingInterval, n.MaxPingsOut
		v.AuthTimeout = n.AuthTimeout.Seconds()
		v.MaxControlLine, v.MaxPayload, v.MaxPending = int32(n.MaxControlLine), n.MaxPayload, int64(n.MaxPending)
	}
	for i := range src.Protocols {
		t := totals(src, &src.Protocols[i])
		v.Connections += t.Connections
		v.InMsgs += t.InMsgs
		v.InBytes += t.InBytes
		v.OutMsgs += t.OutMsgs
		v.OutBytes += t.OutBytes
		v.SlowConsumers += t.SlowConsumers
	}
	for _, l := range src.Listeners {
		v.TotalConnections += l.Stats().ConnsTotal
	}
	v.SlowConsumerStat = &slowConsumers{Clients: uint64(v.SlowConsumers)}
	if src.Router != nil {
		subs, _ := src.Router()
		v.Subscriptions = uint32(subs)
	}
	if src.Broker != nil {
		mem, file, _, _, _ := jetStreamUse(src.Broker)
		v.JetStream = varzJetStream{Config: jetStreamConfig(src, s.opts.DataDir), Stats: &jszStats{Memory: mem, Store: file, Accounts: 1}}
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

type connzSub struct {
	Subject string `json:"subject"`
	Queue   string `json:"qgroup,omitempty"`
	Sid     string `json:"sid"`
	Msgs    int64  `json:"msgs"`
	Max     int64  `json:"max,omitempty"`
	Cid     uint64 `json:"cid"`
}

type connzConn struct {
	Cid            uint64     `json:"cid"`
	Kind           string     `json:"kind,omitempty"`
	Type           string     `json:"type,omitempty"`
	IP             string     `json:"ip"`
	Port           int        `json:"port"`
	Start          time.Time  `json:"start"`
	LastActivity   time.Time  `json:"last_activity"`
	Uptime         string     `json:"uptime"`
	Idle           string     `json:"idle"`
	Pending        int        `json:"pending_bytes"`
	InMsgs         int64      `json:"in_msgs"`
	OutMsgs        int64      `json:"out_msgs"`
	InBytes        int64      `json:"in_bytes"`
	OutBytes       int64      `json:"out_bytes"`
	NumSubs        uint32     `json:"subscriptions"`
	Name           string     `json:"name,omitempty"`
	Lang           string     `json:"lang,omitempty"`
	Version        string     `json:"version,omitempty"`
	AuthorizedUser string     `json:"authorized_user,omitempty"`
	Subs           []string   `json:"subscriptions_list,omitempty"`
	SubsDetail     []connzSub `json:"subscriptions_list_detail,omitempty"`
}

type connz struct {
	ID       string      `json:"server_id"`
	Now      time.Time   `json:"now"`
	NumConns int         `json:"num_connections"`
	Total    int         `json:"total"`
	Offset   int         `json:"offset"`
	Limit    int         `json:"limit"`
	Conns    []connzConn `json:"connections"`
}

// connzSorts are nats-server's sort options that apply to open
// connections; all but cid, start and uptime sort the largest first.
var connzSorts = []string{"cid", "start", "subs", "pending", "msgs_to", "msgs_from", "bytes_to", "bytes_from", "last", "idle", "uptime"}

func (s *Server) handleConnz(w http.ResponseWriter, r *http.Request) error {
	src := s.sources(w)
	if src == nil {
		return nil
	}
	q := parseQuery(r.URL.RawQuery)
	sortBy := q.enum("sort", "cid", connzSorts...)
	auth := q.boolean("auth")
	subsDetail := q.get("subs") == "detail"
	subs := subsDetail
	if !subsDetail {
		subs = q.boolean("subs")
	}
	offset := int(q.integer("offset", 0, 0, 1<<31-1))
	limit := int(q.integer("limit", 1024, 0, maxLimit))
	cid := uint64(q.integer("cid", 0, 0, 1<<62))
	state := q.enum("state", "open", "open", "closed", "any", "all")
	user := q.str("user")
	if err := q.done(); err != nil {
		return err
	}
	now := time.Now()
	out := connz{ID: s.natsID(src), Now: now.UTC(), Offset: offset, Limit: limit, Conns: []connzConn{}}
	if state == "closed" {
		// ledge keeps no record of closed connections.
		writeJSON(w, http.StatusOK, out)
		return nil
	}
	var pr *Protocol
	for i := range src.Protocols {
		if src.Protocols[i].Name == "nats" {
			pr = &src.Protocols[i]
		}
	}
	if pr == nil {
		writeJSON(w, http.StatusOK, out)
		return nil
	}
	var details map[uint64][]connzSub
	if subs && pr.Subscriptions != nil {
		details = map[uint64][]connzSub{}
		for _, sub := range pr.Subscriptions() {
			details[sub.ConnID] = append(details[sub.ConnID], connzSub{Subject: sub.Subject, Queue: sub.Queue,
				Sid: sub.SID, Msgs: sub.Delivered, Max: sub.Max, Cid: sub.ConnID})
		}
	}
	var conns []connzConn
	for _, c := range s.connections(src, "nats", now) {
		if (cid != 0 && c.ID != cid) || (user != "" && c.User != user) {
			continue
		}
		ip, port := splitAddr(c.Addr)
		cc := connzConn{Cid: c.ID, Kind: "Client", Type: "nats", IP: ip, Port: port, Start: c.Start, LastActivity: c.LastActivity,
			Uptime: natsDuration(time.Duration(c.Uptime * float64(time.Second))), Idle: natsDuration(time.Duration(c.Idle * float64(time.Second))),
			Pending: c.PendingBytes, InMsgs: c.InMsgs, OutMsgs: c.OutMsgs, InBytes: c.InBytes, OutBytes: c.OutBytes,
			NumSubs: uint32(c.Subscriptions), Name: c.Name, Lang: c.Lang, Version: c.Version}
		if auth {
			cc.AuthorizedUser = c.User
		}
		if subs {
			for _, d := range details[c.ID] {
				if subsDetail {
					cc.SubsDetail = append(cc.SubsDetail, d)
				} else {
					cc.Subs = append(cc.Subs, d.Subject)
				}
			}
		}
		conns = append(conns, cc)
	}
	slices.SortStableFunc(conns, func(a, b connzConn) int {
		var d int
		switch sortBy {
		case "subs":
			d = -cmp.Compare(a.NumSubs, b.NumSubs)
		case "pending":
			d = -cmp.Compare(a.Pending, b.Pending)
		case "msgs_to":
			d = -cmp.Compare(a.OutMsgs, b.OutMsgs)
		case "msgs_from":
			d = -cmp.Compare(a.InMsgs, b.InMsgs)
		case "bytes_to":
			d = -cmp.Compare(a.OutBytes, b.OutBytes)
		case "bytes_from":
			d = -cmp.Compare(a.InBytes, b.InBytes)
		case "last":
			d = -a.LastActivity.Compare(b.LastActivity)
		case "idle":
			d = a.LastActivity.Compare(b.LastActivity) // the longest idle first
		case "uptime":
			d = -a.Start.Compare(b.Start)
		}
		return cmp.Or(d, cmp.Compare(a.Cid, b.Cid))
	})
	out.Total = len(conns)
	lo, hi := page{offset: offset, limit: limit}.window(len(conns))
	out.Conns = conns[lo:hi]
	out.NumConns = len(out.Conns)
	writeJSON(w, http.StatusOK, out)
	return nil
}

// natsID is the server id NATS clients see in INFO.
func (s *Server) natsID(src *Sources) string {
	if src.NATS != nil && src.NATS.ServerID != "" {
		return src.NATS.ServerID
	}
	return s.opts.ServerName
}

func splitAddr(addr string) (string, int) {
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == ':' {
			port, _ := strconv.Atoi(addr[i+1:])
			host := addr[:i]
			if len(host) > 1 && host[0] == '[' && host[len(host)-1] == ']' {
				host = host[1 : len(host)-1]
			}
			return host, port
		}
	}
	return addr, 0
}

type subsz struct {
	ID        string     `json:"server_id"`
	Now       time.Time  `json:"now"`
	NumSubs   uint32     `json:"num_subscriptions"`
	NumCache  uint32     `json:"num_cache"`
	MaxFanout uint32     `json:"max_fanout,omitempty"`
	Total     int        `json:"total"`
	Offset    int        `json:"offset"`
	Limit     int        `json:"limit"`
	Subs      []connzSub `json:"subscriptions_list,omitempty"`
}

func (s *Server) handleSubsz(w http.ResponseWriter, r *http.Request) error {
	src := s.sources(w)
	if src == nil {
		return nil
	}
	q := parseQuery(r.URL.RawQuery)
	list := q.boolean("subs")
	offset := int(q.integer("offset", 0, 0, 1<<31-1))
	limit := int(q.integer("limit", 1024, 0, maxLimit))
	test := q.str("test")
	if err := q.done(); err != nil {
		return err
	}
	if test != "" {
		if err := router.ValidateSubject(test); err != nil {
			return errorf(http.StatusBadRequest, "parameter \"test\": %q is not a literal subject", test)
		}
	}
	out := subsz{ID: s.natsID(src), Now: time.Now().UTC(), Offset: offset, Limit: limit}
	if src.Router != nil {
		subs, cached := src.Router()
		out.NumSubs, out.NumCache = uint32(subs), uint32(cached)
	}
	var all []connzSub
	for _, sub := range s.subscriptions(src, "nats") {
		if test != "" {
			p, err := router.CompilePattern(sub.Subject)
			if err != nil || !p.Matches(test) {
				continue
			}
		}
		all = append(all, connzSub{Subject: sub.Subject, Queue: sub.Queue, Sid: sub.SID, Msgs: sub.Delivered, Max: sub.Max, Cid: sub.ConnID})
	}
	out.Total = len(all)
	if list {
		lo, hi := page{offset: offset, limit: limit}.window(len(all))
		out.Subs = all[lo:hi]
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

type jszSeq struct {
	Consumer uint64 `json:"consumer_seq"`
	Stream   uint64 `json:"stream_seq"`
}

type jszConsumerConfig struct {
	Durable       string   `json:"durable_name,omitempty"`
	Name          string   `json:"name,omitempty"`
	DeliverPolicy string   `json:"deliver_policy"`
	AckPolicy     string   `json:"ack_policy"`
	AckWait       int64    `json:"ack_wait,omitempty"`
	MaxDeliver    int      `json:"max_deliver,omitempty"`
	FilterSubject string   `json:"filter_subject,omitempty"`
	FilterSubjs   []string `json:"filter_subjects,omitempty"`
	MaxAckPending int      `json:"max_ack_pending,omitempty"`
	DeliverSubj   string   `json:"deliver_subject,omitempty"`
	DeliverGroup  string   `json:"deliver_group,omitempty"`
}

type jszConsumer struct {
	Stream         string             `json:"stream_name"`
	Name           string             `json:"name"`
	Created        time.Time          `json:"created"`
	Config         *jszConsumerConfig `json:"config,omitempty"`
	Delivered      jszSeq             `json:"delivered"`
	AckFloor       jszSeq             `json:"ack_floor"`
	NumAckPending  int                `json:"num_ack_pending"`
	NumRedelivered int                `json:"num_redelivered"`
	NumWaiting     int                `json:"num_waiting"`
	NumPending     uint64             `json:"num_pending"`
	PushBound      bool               `json:"push_bound,omitempty"`
	TimeStamp      time.Time          `json:"ts"`
}

type jszStreamConfig struct {
	Name         string   `json:"name"`
	Description  string   `json:"description,omitempty"`
	Subjects     []string `json:"subjects,omitempty"`
	Retention    string   `json:"retention"`
	MaxConsumers int      `json:"max_consumers"`
	MaxMsgs      int64    `json:"max_msgs"`
	MaxBytes     int64    `json:"max_bytes"`
	MaxAge       int64    `json:"max_age"`
	MaxMsgsPer   int64    `json:"max_msgs_per_subject"`
	MaxMsgSize   int32    `json:"max_msg_size,omitempty"`
	Discard      string   `json:"discard"`
	Storage      string   `json:"storage"`
	Replicas     int      `json:"num_replicas"`
	Duplicates   int64    `json:"duplicate_window,omitempty"`
}

type jszStreamState struct {
	Msgs        uint64    `json:"messages"`
	Bytes       uint64    `json:"bytes"`
	FirstSeq    uint64    `json:"first_seq"`
	FirstTime   time.Time `json:"first_ts"`
	LastSeq     uint64    `json:"last_seq"`
	LastTime    time.Time `json:"last_ts"`
	NumSubjects int       `json:"num_subjects,omitempty"`
	NumDeleted  int       `json:"num_deleted,omitempty"`
	Consumers   int       `json:"consumer_count"`
}

type jszStream struct {
	Name      string           `json:"name"`
	Created   time.Time        `json:"created"`
	Config    *jszStreamConfig `json:"config,omitempty"`
	State     jszStreamState   `json:"state"`
	Consumers []jszConsumer    `json:"consumer_detail,omitempty"`
}

type jszAccount struct {
	Name    string      `json:"name"`
	ID      string      `json:"id"`
	Memory  uint64      `json:"memory"`
	Store   uint64      `json:"storage"`
	Streams []jszStream `json:"stream_detail,omitempty"`
}

type jsz struct {
	Memory    uint64       `json:"memory"`
	Store     uint64       `json:"storage"`
	Accounts  int          `json:"accounts"`
	ID        string       `json:"server_id"`
	Now       time.Time    `json:"now"`
	Config    *jszConfig   `json:"config,omitempty"`
	Streams   int          `json:"streams"`
	Consumers int          `json:"consumers"`
	Messages  uint64       `json:"messages"`
	Bytes     uint64       `json:"bytes"`
	Details   []jszAccount `json:"account_details,omitempty"`
	Total     int          `json:"total"`
}

// ledge has one account, the one nats-server calls "$G".
const globalAccount = "$G"

func (s *Server) handleJsz(w http.ResponseWriter, r *http.Request) error {
	src := s.sources(w)
	if src == nil {
		return nil
	}
	q := parseQuery(r.URL.RawQuery)
	accounts := q.boolean("accounts")
	streams := q.boolean("streams")
	consumers := q.boolean("consumers")
	config := q.boolean("config")
	offset := int(q.integer("offset", 0, 0, 1<<31-1))
	limit := int(q.integer("limit", 1024, 0, maxLimit))
	acc := q.str("acc")
	if err := q.done(); err != nil {
		return err
	}
	now := time.Now().UTC()
	mem, file, nstreams, ncons, msgs := jetStreamUse(src.Broker)
	out := jsz{Memory: mem, Store: file, Accounts: 1, ID: s.natsID(src), Now: now, Config: jetStreamConfig(src, s.opts.DataDir),
		Streams: nstreams, Consumers: ncons, Messages: msgs, Bytes: mem + file}
	if (accounts || acc != "") && (acc == "" || acc == globalAccount) {
		a := jszAccount{Name: globalAccount, ID: globalAccount, Memory: mem, Store: file}
		if streams || consumers {
			all := src.Broker.Streams()
			out.Total = len(all)
			lo, hi := page{offset: offset, limit: limit}.window(len(all))
			for _, st := range all[lo:hi] {
				a.Streams = append(a.Streams, jszStreamOf(st, config, consumers, now))
			}
		}
		out.Details = []jszAccount{a}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func jszStreamOf(st *broker.Stream, config, consumers bool, now time.Time) jszStream {
	info := st.Info()
	c, state := info.Config, info.State
	js := jszStream{Name: c.Name, Created: c.Created.UTC(), State: jszStreamState{
		Msgs: state.Msgs, Bytes: state.Bytes, FirstSeq: state.FirstSeq, FirstTime: state.FirstTime.UTC(),
		LastSeq: state.LastSeq, LastTime: state.LastTime.UTC(), NumSubjects: state.NumSubjects,
		NumDeleted: state.NumDeleted, Consumers: state.Consumers}}
	if config {
		js.Config = &jszStreamConfig{Name: c.Name, Description: c.Description, Subjects: c.Subjects, Retention: c.Retention.String(),
			MaxConsumers: cmp.Or(c.MaxConsumers, -1), MaxMsgs: cmp.Or(c.MaxMsgs, -1), MaxBytes: cmp.Or(c.MaxBytes, -1),
			MaxAge: int64(c.MaxAge), MaxMsgsPer: cmp.Or(c.MaxMsgsPerSubject, -1), MaxMsgSize: c.MaxMsgSize,
			Discard: c.Discard.String(), Storage: c.Storage.String(), Replicas: 1, Duplicates: int64(c.Duplicates)}
	}
	if consumers {
		for _, cons := range st.Consumers() {
			ci := cons.Info()
			jc := jszConsumer{Stream: ci.Stream, Name: ci.Name, Created: ci.Config.Created.UTC(),
				Delivered:     jszSeq{Consumer: ci.Delivered.Consumer, Stream: ci.Delivered.Stream},
				AckFloor:      jszSeq{Consumer: ci.AckFloor.Consumer, Stream: ci.AckFloor.Stream},
				NumAckPending: ci.NumAckPending, NumRedelivered: ci.NumRedelivered, NumWaiting: ci.NumWaiting,
				NumPending: ci.NumPending, PushBound: ci.PushBound, TimeStamp: now}
			if config {
				cc := ci.Config
				jc.Config = &jszConsumerConfig{Name: cc.Name, DeliverPolicy: cc.DeliverPolicy.String(), AckPolicy: cc.AckPolicy.String(),
					AckWait: int64(cc.AckWait), MaxDeliver: cc.MaxDeliver, MaxAckPending: cc.MaxAckPending,
					DeliverSubj: cc.DeliverSubject, DeliverGroup: cc.DeliverGroup}
				if cc.Durable {
					jc.Config.Durable = cc.Name
				}
				if len(cc.FilterSubjects) == 1 {
					jc.Config.FilterSubject = cc.FilterSubjects[0]
				} else {
					jc.Config.FilterSubjs = cc.FilterSubjects
				}
			}
			js.Consumers = append(js.Consumers, jc)
		}
	}
	return js
}
