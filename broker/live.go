package broker

import "github.com/ledgemq/ledge/log"

// Msg is a message published live, on its way to the subscribers of every
// protocol: a NATS subscription, an MQTT session, later an AMQP queue or a
// STOMP subscription. Its slices belong to the publisher and are valid only
// during Receiver.Deliver.
type Msg struct {
	Subject []byte
	// Reply is where an answer goes: the NATS reply subject, the MQTT 5.0
	// response topic as a subject.
	Reply   []byte
	Headers []log.Header
	Payload []byte
	// QoS is the MQTT quality of service it was published with (0 for the
	// protocols without one); a receiver delivers at the lower of it and
	// its subscription's.
	QoS byte
	// Retain says the publisher asked for the message to be retained
	// (MQTT); a subscriber that asked for retain-as-published sees it.
	Retain bool
	// Origin identifies the publishing session, so that a receiver can
	// leave out its own messages (NATS no-echo, MQTT no-local).
	Origin any
}

// Receiver is a live subscriber of any protocol, the handle that the shared
// subject router returns. Deliver writes m to the subscriber in its
// protocol and reports whether it took it; it runs on the publisher's
// goroutine and must not block.
type Receiver interface {
	Deliver(m *Msg) bool
}
