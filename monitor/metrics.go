package monitor

import (
	"cmp"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// /metrics: every number of the broker, read when Prometheus scrapes and
// at no other time. Per-stream, per-queue and per-connection series are
// bounded, so 10,000 devices do not make 10,000 series: the MetricsTop
// busiest streams and queues (all with MetricsAllQueues), and the busiest
// connections only with MetricsConnections. Totals over all of them are
// always there.

func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request) error {
	q := parseQuery(r.URL.RawQuery)
	q.strict()
	if err := q.done(); err != nil {
		return err
	}
	src := s.sources(w)
	if src == nil {
		return nil
	}
	e := &expo{b: make([]byte, 0, 32<<10)}
	s.writeMetrics(e, src, time.Now())
	w.Header().Set("Content-Type", expoContentType)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(e.b)
	return nil
}

func (s *Server) writeMetrics(e *expo, src *Sources, now time.Time) {
	p := readProcess()
	e.family("ledge_info", "gauge", "The running ledge: its version and gateway name.")
	e.sample("ledge_info", 1, "version", s.opts.Version, "gateway", s.opts.ServerName)
	e.one("process_start_time_seconds", "gauge", "Start time of the process since the Unix epoch.", unixSeconds(s.start))
	e.one("process_cpu_seconds_total", "counter", "User and system CPU time spent.", p.CPU.Seconds())
	e.one("process_resident_memory_bytes", "gauge", "Resident memory size.", float64(p.RSS))
	e.one("go_goroutines", "gauge", "Goroutines that currently exist.", float64(p.Goroutines))
	e.one("go_memstats_heap_alloc_bytes", "gauge", "Bytes of heap objects, live and not yet swept.", float64(p.Heap))

	h, _ := s.health(now)
	ready, degraded := 0.0, 0.0
	if h.Ready {
		ready = 1
	}
	if h.Status == statusDegraded {
		degraded = 1
	}
	e.one("ledge_ready", "gauge", "1 when the broker serves and can store what it is sent (/readyz).", ready)
	e.one("ledge_degraded", "gauge", "1 when a health check warns: disk nearly full, an uplink down or stalled, a certificate close to expiry.", degraded)

	s.protocolMetrics(e, src)
	s.listenerMetrics(e, src)
	if src.Router != nil {
		subs, cached := src.Router()
		e.one("ledge_subscriptions", "gauge", "Live subscriptions of every protocol.", float64(subs))
		e.one("ledge_router_cached_subjects", "gauge", "Subjects whose routing result is cached.", float64(cached))
	}
	if src.Broker != nil {
		s.streamMetrics(e, src)
	}
	s.uplinkMetrics(e, src)
	s.diskMetrics(e, src)
	for _, pr := range src.Protocols {
		if pr.Retained != nil {
			if list, err := pr.Retained("#"); err == nil {
				e.family("ledge_retained_messages", "gauge", "Retained messages.")
				e.sample("ledge_retained_messages", float64(len(list)), "protocol", pr.Name)
			}
		}
	}
	if m := src.LogMetrics; m != nil {
		e.histogram("ledge_publish_durable_seconds",
			"Time from the first append of a group-commit batch until it is acknowledged as durable under the sync policy (the batch's oldest record).",
			m.Durable.Snapshot())
		e.histogram("ledge_fsync_seconds", "Time of each fsync of a stream's log.", m.Fsync.Snapshot())
	}
	if len(s.opts.Certificates) > 0 {
		e.family("ledge_certificate_expiry_timestamp_seconds", "gauge", "When each served certificate expires, since the Unix epoch.")
		for _, c := range s.opts.Certificates {
			e.sample("ledge_certificate_expiry_timestamp_seconds", unixSeconds(c.NotAfter), "certificate", c.Name)
		}
	}
	if s.opts.MetricsConnections {
		s.connMetrics(e, src, now)
	}
}

func (s *Server) protocolMetrics(e *expo, src *Sources) {
	all := make([]Totals, len(src.Protocols))
	for i := range src.Protocols {
		all[i] = totals(src, &src.Protocols[i])
	}
	fam := func(name, typ, help string, v func(t *Totals) int64) {
		e.family(name, typ, help)
		for i, pr := range src.Protocols {
			e.sample(name, float64(v(&all[i])), "protocol", pr.Name)
		}
	}
	fam("ledge_connections", "gauge", "Open client connections.", func(t *Totals) int64 { return int64(t.Connections) })
	fam("ledge_messages_received_total", "counter", "Messages received from clients.", func(t *Totals) int64 { return t.InMsgs })
	fam("ledge_messages_sent_total", "counter", "Messages delivered to clients.", func(t *Totals) int64 { return t.OutMsgs })
	fam("ledge_received_bytes_total", "counter", "Payload bytes of the messages received from clients.", func(t *Totals) int64 { return t.InBytes })
	fam("ledge_sent_bytes_total", "counter", "Payload bytes of the messages delivered to clients.", func(t *Totals) int64 { return t.OutBytes })
	fam("ledge_slow_consumers_total", "counter", "Connections cut off for falling behind their outbound limit.", func(t *Totals) int64 { return t.SlowConsumers })
	fam("ledge_dropped_messages_total", "counter", "Messages dropped because a client's queue was full.", func(t *Totals) int64 { return t.Dropped })
	fam("ledge_auth_failures_total", "counter", "Connections refused for bad credentials.", func(t *Totals) int64 { return t.AuthFailures })
	fam("ledge_protocol_errors_total", "counter", "Connections closed for violating their protocol.", func(t *Totals) int64 { return t.ProtocolErrors })
}

func (s *Server) listenerMetrics(e *expo, src *Sources) {
	if len(src.Listeners) == 0 {
		return
	}
	type row struct {
		l  Listener
		st struct{ open, total, refused, slow, in, out float64 }
	}
	rows := make([]row, len(src.Listeners))
	for i, l := range src.Listeners {
		st := l.Stats()
		rows[i].l = l
		rows[i].st.open, rows[i].st.total, rows[i].st.refused = float64(st.ConnsOpen), float64(st.ConnsTotal), float64(st.ConnsRefused)
		rows[i].st.slow, rows[i].st.in, rows[i].st.out = float64(st.SlowConsumers), float64(st.BytesIn), float64(st.BytesOut)
	}
	fam := func(name, typ, help string, v func(r *row) float64) {
		e.family(name, typ, help)
		for i := range rows {
			e.sample(name, v(&rows[i]), "listener", rows[i].l.Name, "protocol", rows[i].l.Protocol)
		}
	}
	fam("ledge_listener_connections", "gauge", "Connections open on the listener.", func(r *row) float64 { return r.st.open })
	fam("ledge_listener_accepted_connections_total", "counter", "Connections accepted by the listener.", func(r *row) float64 { return r.st.total })
	fam("ledge_listener_refused_connections_total", "counter", "Connections refused by the connection limit.", func(r *row) float64 { return r.st.refused })
	fam("ledge_listener_slow_consumer_disconnects_total", "counter", "Connections cut off for falling behind their outbound limit.", func(r *row) float64 { return r.st.slow })
	fam("ledge_listener_received_bytes_total", "counter", "Bytes read from the listener's connections.", func(r *row) float64 { return r.st.in })
	fam("ledge_listener_sent_bytes_total", "counter", "Bytes written to the listener's connections.", func(r *row) float64 { return r.st.out })
}

func (s *Server) streamMetrics(e *expo, src *Sources) {
	now := time.Now()
	var streams []StreamRow
	for _, st := range src.Broker.Streams() {
		streams = append(streams, s.streamRow(st, now))
	}
	var msgs, bytes, ready, unacked float64
	for _, r := range streams {
		msgs += float64(r.Messages)
		bytes += float64(r.Bytes)
	}
	e.one("ledge_streams", "gauge", "Streams.", float64(len(streams)))
	e.one("ledge_stored_messages", "gauge", "Messages stored in all streams.", msgs)
	e.one("ledge_stored_bytes", "gauge", "Bytes of the messages stored in all streams.", bytes)

	slices.SortStableFunc(streams, func(a, b StreamRow) int {
		return cmp.Or(cmp.Compare(b.Messages, a.Messages), cmp.Compare(a.Name, b.Name))
	})
	if !s.opts.MetricsAllQueues && len(streams) > s.opts.MetricsTop {
		streams = streams[:s.opts.MetricsTop]
	}
	sfam := func(name, typ, help string, v func(r *StreamRow) float64) {
		e.family(name, typ, help)
		for i := range streams {
			e.sample(name, v(&streams[i]), "stream", streams[i].Name)
		}
	}
	sfam("ledge_stream_messages", "gauge", "Messages in the stream (the busiest streams only unless all are asked for).", func(r *StreamRow) float64 { return float64(r.Messages) })
	sfam("ledge_stream_bytes", "gauge", "Bytes of the stream's messages.", func(r *StreamRow) float64 { return float64(r.Bytes) })
	sfam("ledge_stream_disk_bytes", "gauge", "Bytes of the stream's log on disk.", func(r *StreamRow) float64 { return float64(r.DiskBytes) })
	sfam("ledge_stream_consumers", "gauge", "Consumers of the stream.", func(r *StreamRow) float64 { return float64(r.Consumers) })
	sfam("ledge_stream_stored_messages_total", "counter", "Messages ever stored in the stream (its last sequence).", func(r *StreamRow) float64 { return float64(r.LastSeq) })

	refs := s.queueRefs(src)
	var queues []QueueRow
	for _, st := range src.Broker.Streams() {
		for _, c := range st.Consumers() {
			queues = append(queues, s.queueRow(st, c, refs, now))
		}
	}
	for _, q := range queues {
		ready += float64(q.Ready)
		unacked += float64(q.Unacked)
	}
	e.one("ledge_queues", "gauge", "Queues (consumers of streams).", float64(len(queues)))
	e.one("ledge_queues_messages_ready", "gauge", "Messages ready for delivery, over all queues.", ready)
	e.one("ledge_queues_messages_unacknowledged", "gauge", "Messages delivered and not yet acknowledged, over all queues.", unacked)
	slices.SortStableFunc(queues, func(a, b QueueRow) int {
		return cmp.Or(cmp.Compare(b.Messages, a.Messages), cmp.Compare(a.Stream, b.Stream), cmp.Compare(a.Consumer, b.Consumer))
	})
	if !s.opts.MetricsAllQueues && len(queues) > s.opts.MetricsTop {
		queues = queues[:s.opts.MetricsTop]
	}
	qfam := func(name, typ, help string, v func(r *QueueRow) float64) {
		e.family(name, typ, help)
		for i := range queues {
			q := &queues[i]
			e.sample(name, v(q), "queue", q.Name, "protocol", q.Protocol, "stream", q.Stream, "consumer", q.Consumer)
		}
	}
	qfam("ledge_queue_messages_ready", "gauge", "Messages ready for delivery (the busiest queues only unless all are asked for).", func(r *QueueRow) float64 { return float64(r.Ready) })
	qfam("ledge_queue_messages_unacknowledged", "gauge", "Messages delivered and not yet acknowledged.", func(r *QueueRow) float64 { return float64(r.Unacked) })
	qfam("ledge_queue_messages_redelivered", "gauge", "Unacknowledged messages delivered more than once.", func(r *QueueRow) float64 { return float64(r.Redelivered) })
	qfam("ledge_queue_consumers", "gauge", "Subscribers on the queue.", func(r *QueueRow) float64 { return float64(r.Consumers) })
	qfam("ledge_queue_delivered_messages_total", "counter", "Deliveries, redeliveries included.", func(r *QueueRow) float64 { return float64(r.delivered) })
	qfam("ledge_queue_acknowledged_messages_total", "counter", "Deliveries below the ack floor: acknowledged.", func(r *QueueRow) float64 { return float64(r.acked) })
}

func (s *Server) uplinkMetrics(e *expo, src *Sources) {
	if src.Uplinks == nil {
		return
	}
	ups := src.Uplinks()
	if len(ups) == 0 {
		return
	}
	e.family("ledge_uplink_up", "gauge", "1 while the uplink is connected and forwarding.")
	for _, u := range ups {
		v := 0.0
		if u.State == "up" {
			v = 1
		}
		e.sample("ledge_uplink_up", v, "uplink", u.Name)
	}
	fam := func(name, typ, help string, v func(i int) float64) {
		e.family(name, typ, help)
		for i, u := range ups {
			e.sample(name, v(i), "uplink", u.Name)
		}
	}
	fam("ledge_uplink_backlog_messages", "gauge", "Messages waiting to be forwarded.", func(i int) float64 { return float64(ups[i].BacklogMsgs) })
	fam("ledge_uplink_backlog_bytes", "gauge", "Bytes waiting to be forwarded.", func(i int) float64 { return float64(ups[i].BacklogBytes) })
	fam("ledge_uplink_lag_seconds", "gauge", "Age of the oldest message not yet forwarded (0 when none waits).", func(i int) float64 { return ups[i].OldestAge })
	fam("ledge_uplink_in_flight_messages", "gauge", "Messages sent upstream and not yet acknowledged.", func(i int) float64 { return float64(ups[i].InFlight) })
	fam("ledge_uplink_forwarded_messages_total", "counter", "Messages forwarded and acknowledged upstream.", func(i int) float64 { return float64(ups[i].Forwarded) })
	fam("ledge_uplink_dropped_messages_total", "counter", "Messages dropped by the uplink's disk budget.", func(i int) float64 { return float64(ups[i].Dropped) })
	fam("ledge_uplink_downlinked_messages_total", "counter", "Messages received from upstream and published locally.", func(i int) float64 { return float64(ups[i].Downlinked) })
	fam("ledge_uplink_sessions_total", "counter", "Connections made upstream.", func(i int) float64 { return float64(ups[i].Sessions) })
}

func (s *Server) diskMetrics(e *expo, src *Sources) {
	if s.opts.DataDir == "" {
		return
	}
	total, free, err := diskStats(s.opts.DataDir)
	if err != nil {
		return
	}
	e.one("ledge_disk_total_bytes", "gauge", "Size of the file system holding the data folder.", float64(total))
	e.one("ledge_disk_free_bytes", "gauge", "Bytes free for ledge on the file system holding the data folder.", float64(free))
	if src.Broker != nil {
		var n int64
		for _, st := range src.Broker.Streams() {
			n += st.Storage().DiskBytes
		}
		e.one("ledge_disk_stream_bytes", "gauge", "Bytes of the streams' logs on disk.", float64(n))
	}
}

// connMetrics writes the MetricsTop busiest connections' series.
func (s *Server) connMetrics(e *expo, src *Sources, now time.Time) {
	var conns []Conn
	for _, pr := range src.Protocols {
		for _, c := range pr.Conns() {
			c.Protocol = pr.Name
			conns = append(conns, c)
		}
	}
	slices.SortStableFunc(conns, func(a, b Conn) int {
		return cmp.Or(cmp.Compare(b.InMsgs+b.OutMsgs, a.InMsgs+a.OutMsgs), cmp.Compare(a.Protocol, b.Protocol), cmp.Compare(a.ID, b.ID))
	})
	if len(conns) > s.opts.MetricsTop {
		conns = conns[:s.opts.MetricsTop]
	}
	fam := func(name, typ, help string, v func(c *Conn) float64) {
		e.family(name, typ, help)
		for i := range conns {
			c := &conns[i]
			e.sample(name, v(c), "protocol", c.Protocol, "id", strconv.FormatUint(c.ID, 10), "client", c.Name+c.ClientID)
		}
	}
	fam("ledge_connection_messages_received_total", "counter", "Messages received from the connection (the busiest connections only).", func(c *Conn) float64 { return float64(c.InMsgs) })
	fam("ledge_connection_messages_sent_total", "counter", "Messages delivered to the connection.", func(c *Conn) float64 { return float64(c.OutMsgs) })
	fam("ledge_connection_pending_bytes", "gauge", "Bytes queued for the connection.", func(c *Conn) float64 { return float64(c.PendingBytes) })
}
