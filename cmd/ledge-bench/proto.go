package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Client is one connection of the load tool to the broker, in whatever
// protocol the run speaks. The scenarios use nothing else, so a protocol
// is added by implementing it and listing it in protocols.
//
// A Client is used by one goroutine at a time, except that handlers run on
// a goroutine of the client's own.
type Client interface {
	// Publish sends data to subject without waiting for the broker. The
	// client may keep data only until Publish returns.
	Publish(subject string, data []byte) error
	// Subscribe delivers every message on filter to h, or, with a queue
	// name, one message to one member of the group. reply is the address
	// a request wants its answer on, empty for a plain message. data is
	// valid only during the call.
	Subscribe(filter, queue string, h Handler) (Subscription, error)
	// Request publishes data to subject and waits for one reply.
	Request(ctx context.Context, subject string, data []byte) ([]byte, error)
	// Flush waits until the broker has processed everything published so
	// far on this connection.
	Flush(ctx context.Context) error
	// Close ends the connection, dropping anything not yet flushed.
	Close()
}

// Handler receives one message of a subscription. subject and data are
// valid only during the call.
type Handler func(subject, reply string, data []byte)

// replier is a Client whose replies to a request are not plain publishes
// to the reply address (AMQP's carry the request's correlation id); the
// runner's responders answer through it when the client has it.
type replier interface {
	Reply(reply string, data []byte) error
}

// Subscription is a live subscription of a Client.
type Subscription interface {
	Unsubscribe() error
}

// StreamClient is a Client whose protocol also stores messages durably:
// publishes acknowledged once stored, and consumers that acknowledge what
// they processed. The durable scenarios (jspub, jsconsume) need it; a
// protocol without stored streams simply does not implement it.
type StreamClient interface {
	Client
	// EnsureStream checks that the stream exists, and creates it capturing
	// subjects when it does not and create is set.
	EnsureStream(ctx context.Context, name string, subjects []string, create bool) error
	// PublishStored publishes data to subject and returns at once; the
	// returned Ack reports when the broker has stored it. The client may
	// keep data until the Ack completes.
	PublishStored(subject string, data []byte) (Ack, error)
	// Consume delivers messages of the durable consumer of stream to h on
	// a goroutine of the client's, fetching up to batch at a time; a
	// message is acknowledged when h returns true. The consumer is created
	// if missing and survives the run, so a later run continues where this
	// one stopped.
	Consume(ctx context.Context, stream, consumer string, batch int, h func(data []byte) (ack bool)) (Subscription, error)
}

// Ack is a pending acknowledgement of a stored publish.
type Ack interface {
	// Wait blocks until the broker acknowledged the message or refused it.
	Wait(ctx context.Context) error
}

// DialOptions are the settings of a connection that do not depend on
// the protocol.
type DialOptions struct {
	Name string // shown by the broker's monitoring, e.g. "ledge-bench pub 3"
	// OnAsyncError is told about errors that happen outside any call
	// (a subscriber too slow for the broker, a connection lost).
	OnAsyncError func(error)
	// Timeout bounds each wait of a call: for an acknowledgement, for
	// room to publish, for a flush.
	Timeout time.Duration

	// The rest is read by the protocols that have it (MQTT, AMQP, STOMP).
	QoS         int           // publish and subscribe at this QoS
	MQTTVersion int           // 3 (3.1.1) or 5
	KeepAlive   time.Duration // MQTT keep alive, AMQP heartbeat, STOMP heart-beat; idle connections ping at half of it
	Window      int           // MQTT QoS 1 and 2 publishes unacknowledged at most; AMQP publishes unconfirmed; STOMP receipts awaited
	Persistent  bool          // keep a session across connections (clean session off)
	ClientID    string        // empty: a generated one

	Exchange      string // AMQP: publish to and bind queues to this exchange ("" the default exchange)
	Durable       bool   // AMQP: shared queues durable, messages persistent (delivery mode 2); STOMP: persistent:true
	Confirm       bool   // AMQP: publisher confirms, at most Window awaited; STOMP: a receipt per SEND, as many awaited
	Prefetch      int    // AMQP: basic.qos prefetch count of consumers; STOMP: prefetch-count (0: unlimited)
	AutoAck       bool   // AMQP: consumers in no-ack mode
	DirectReplyTo bool   // AMQP: requesters take replies on amq.rabbitmq.reply-to

	Ack string // STOMP: the ack mode of subscriptions, auto, client or client-individual
}

// Connected is implemented by clients that can tell whether their
// connection is still up; the idle scenario counts them.
type Connected interface {
	Connected() bool
}

// Protocol is one wire protocol the tool speaks.
type Protocol struct {
	Name string
	Dial func(ctx context.Context, url string, o DialOptions) (Client, error)
	// Schemes are the URL schemes it dials; the first is its default.
	Schemes []string
	// DefaultURL and DefaultSubject are the -url and -subject a run
	// gets when they are not given.
	DefaultURL, DefaultSubject string
	// Dialect is how it writes subjects and filters.
	Dialect dialect
}

// protocols are the protocols this build speaks, by --proto name.
var protocols = map[string]Protocol{
	"nats": {Name: "nats", Dial: dialNATS, Schemes: []string{"nats", "tls", "ws", "wss"},
		DefaultURL: "nats://127.0.0.1:4222", DefaultSubject: "bench.{n}", Dialect: natsDialect},
	"mqtt": {Name: "mqtt", Dial: dialMQTT, Schemes: []string{"mqtt", "tcp"},
		DefaultURL: "mqtt://127.0.0.1:1883", DefaultSubject: "bench/{n}", Dialect: mqttDialect},
	"amqp": {Name: "amqp", Dial: dialAMQP, Schemes: []string{"amqp"},
		DefaultURL: "amqp://guest:guest@127.0.0.1:5672/", DefaultSubject: "bench.{n}", Dialect: amqpDialect},
	"stomp": {Name: "stomp", Dial: dialSTOMP, Schemes: []string{"stomp"},
		DefaultURL: "stomp://guest:guest@127.0.0.1:61613", DefaultSubject: "/topic/bench.{n}", Dialect: stompDialect},
}

// protocolNames lists protocols for error messages and the help text.
func protocolNames() string {
	var names []string
	for n := range protocols {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// lookupProtocol returns the protocol named name or says which exist.
func lookupProtocol(name string) (Protocol, error) {
	p, ok := protocols[name]
	if !ok {
		return Protocol{}, fmt.Errorf("-proto %q: this build speaks %s", name, protocolNames())
	}
	return p, nil
}
