package monitor

import (
	"net/http"
	"time"

	"github.com/ledgemq/ledge/bridge"
	"github.com/ledgemq/ledge/broker"
	"github.com/ledgemq/ledge/log"
	lnet "github.com/ledgemq/ledge/net"
)

// What the monitor reads, given to it by the program that runs the broker.
// Each gateway is a Protocol of functions rather than an interface the
// gateway implements, so that gateways know nothing of monitoring and a
// new protocol is a few lines where the broker is put together.

// Role is what a request may do.
type Role uint8

const (
	// RoleNone may do nothing: the request is answered 401.
	RoleNone Role = iota
	// RoleUser is a known user without a monitoring role: answered 403,
	// since other credentials would not help it.
	RoleUser
	// RoleMonitor may read everything and change nothing.
	RoleMonitor
	// RoleAdmin may also act: close connections, purge, delete.
	RoleAdmin
)

// String names the role as the API reports it.
func (r Role) String() string {
	switch r {
	case RoleMonitor:
		return "monitor"
	case RoleAdmin:
		return "admin"
	case RoleUser:
		return "user"
	}
	return "none"
}

// Authorizer says which role a request has, from its credentials (basic
// auth, a client certificate, a token). A nil Authorizer makes every
// request admin: no users are configured.
type Authorizer func(r *http.Request) Role

// Protocol is one gateway as the monitor reads it. Its functions are
// called on HTTP goroutines, concurrently with the gateway's work, and
// must be safe for that; the optional ones may be nil.
type Protocol struct {
	// Name is the protocol's name in the API and in metrics labels:
	// "nats", "mqtt", "amqp", "stomp".
	Name string
	// Totals returns the gateway's counters.
	Totals func() Totals
	// Conns returns a snapshot of the open connections.
	Conns func() []Conn
	// Close closes connection id (Conn.ID) and reports whether it existed.
	Close func(id uint64) bool
	// Subscriptions returns the live subscriptions (optional).
	Subscriptions func() []Subscription
	// Queues returns the queues the protocol names itself, with the
	// broker stream and consumer behind each (optional: AMQP).
	Queues func() []QueueRef
	// Retained returns the retained messages matching an MQTT filter
	// (optional: MQTT); a bad filter is an error.
	Retained func(filter string) ([]Retained, error)
}

// Totals are a protocol's counters since the broker started, except
// Connections, which is the number open now.
type Totals struct {
	Connections                        int
	InMsgs, OutMsgs, InBytes, OutBytes int64
	// SlowConsumers counts connections cut off for falling behind; the
	// monitor counts them at the protocol's listeners (Sources.Listeners)
	// when it has them, and a gateway's own figure otherwise.
	SlowConsumers int64
	// Dropped counts messages a gateway dropped because a client's queue
	// was full (MQTT's QoS 1 and 2 window, for one).
	Dropped                      int64
	AuthFailures, ProtocolErrors int64
}

// Conn is one client connection of any protocol.
type Conn struct {
	Protocol string `json:"protocol"`
	// ID is the connection's number within its protocol.
	ID uint64 `json:"id"`
	// Name is what the client calls itself (the NATS connection name,
	// the AMQP connection_name); ClientID is an MQTT client identifier
	// or a STOMP CONNECT's client-id.
	Name     string `json:"name,omitempty"`
	ClientID string `json:"client_id,omitempty"`
	Addr     string `json:"addr"`
	User     string `json:"user,omitempty"`
	// Lang and Version describe the client library (NATS lang and
	// version, AMQP product and version); ProtocolVersion the protocol
	// level (MQTT "3.1.1" or "5.0", STOMP "1.0" to "1.2").
	Lang            string `json:"lang,omitempty"`
	Version         string `json:"version,omitempty"`
	ProtocolVersion string `json:"protocol_version,omitempty"`
	Subscriptions   int    `json:"subscriptions"`
	// PendingBytes are queued for the client and not yet written.
	PendingBytes int `json:"pending_bytes"`
	// InMsgs are messages from the client, OutMsgs messages to it;
	// InBytes and OutBytes are the bytes on the socket.
	InMsgs   int64 `json:"in_msgs"`
	OutMsgs  int64 `json:"out_msgs"`
	InBytes  int64 `json:"in_bytes"`
	OutBytes int64 `json:"out_bytes"`
	// InMsgsRate and OutMsgsRate are messages per second since this
	// connection was last read through the API (0 the first time).
	InMsgsRate   float64   `json:"in_msgs_per_sec"`
	OutMsgsRate  float64   `json:"out_msgs_per_sec"`
	Start        time.Time `json:"start"`
	LastActivity time.Time `json:"last_activity"`
	Uptime       float64   `json:"uptime_seconds"`
	Idle         float64   `json:"idle_seconds"`
	// Protocol specifics.
	KeepAlive  float64  `json:"keep_alive_seconds,omitempty"`
	Clean      bool     `json:"clean_session,omitempty"`
	Persistent bool     `json:"persistent_session,omitempty"`
	WebSocket  bool     `json:"websocket,omitempty"`
	Channels   int      `json:"channels,omitempty"`
	Inflight   int      `json:"inflight,omitempty"`
	Queued     int      `json:"queued,omitempty"`
	Subjects   []string `json:"subscriptions_list,omitempty"`
}

// fromNet fills Addr, InBytes, OutBytes, PendingBytes, Start and
// LastActivity from the network layer's view of the connection.
func (c *Conn) fromNet(remote string, st lnet.ConnStats, pending int) {
	c.Addr, c.InBytes, c.OutBytes, c.PendingBytes = remote, int64(st.BytesIn), int64(st.BytesOut), pending
	c.Start, c.LastActivity = st.Opened, st.LastRead
}

// Subscription is one live subscription of any protocol.
type Subscription struct {
	Protocol string `json:"protocol"`
	ConnID   uint64 `json:"conn_id,omitempty"`
	// Client is the MQTT client id of the subscriber.
	Client string `json:"client,omitempty"`
	// Subject is the subscribed subject or filter in the protocol's
	// own syntax; Queue the queue group or shared subscription group.
	Subject   string `json:"subject"`
	Queue     string `json:"queue,omitempty"`
	SID       string `json:"sid,omitempty"`
	QoS       int    `json:"qos,omitempty"`
	Delivered int64  `json:"delivered,omitempty"`
	Max       int64  `json:"max,omitempty"`
}

// QueueRef names a protocol's queue and the broker stream and consumer
// that hold it.
type QueueRef struct {
	Name             string
	Stream, Consumer string
	// Consumers counts the protocol's subscribers on the queue.
	Consumers                      int
	Durable, Exclusive, AutoDelete bool
}

// Retained is one retained message.
type Retained struct {
	Topic   string
	QoS     byte
	Payload []byte
}

// Listener is one listening socket of the broker.
type Listener struct {
	// Name is the listener's name ("nats", "mqtt-ws"), Protocol the
	// protocol it serves, Addr where it listens.
	Name, Protocol, Addr string
	Stats                func() lnet.Stats
}

// NATSSettings are the NATS gateway's options, for /varz.
type NATSSettings struct {
	ServerID       string
	Host           string
	Port           int
	MaxPayload     int
	MaxControlLine int
	PingInterval   time.Duration
	MaxPingsOut    int
	AuthTimeout    time.Duration
	AuthRequired   bool
	TLSRequired    bool
	MaxConns       int
	MaxPending     int
	// Version is the NATS protocol version the gateway reports in INFO.
	Version string
}

// Sources are the running broker's parts, given to the monitor once they
// are up (Server.Attach).
type Sources struct {
	Broker    *broker.Broker
	Protocols []Protocol
	Listeners []Listener
	// Uplinks returns the bridge's uplinks; nil when none are configured.
	Uplinks func() []bridge.Status
	// Router returns the shared live router's subscriptions and cached
	// subjects, for /varz and /subsz.
	Router func() (subscriptions, cachedSubjects int)
	// NATS, when the NATS port is served, describes it for /varz.
	NATS *NATSSettings
	// LogMetrics are the streams' fsync and durable-latency timings.
	LogMetrics *log.Metrics
	// Sync is the broker's fsync policy ("always", "interval", "never").
	Sync string
}

// Certificate is a certificate the broker serves, watched for expiry.
type Certificate struct {
	Name     string
	NotAfter time.Time
}
