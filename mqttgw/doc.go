// Package mqttgw is ledge's MQTT gateway: MQTT 3.1.1 and 5.0 sessions for
// constrained devices, on the same subject router and durable streams as
// every other protocol. A device's publish to "site/7/temp" is the subject
// "site.7.temp" (see package router for the mapping), so NATS, AMQP and
// STOMP clients see it, and what they publish reaches MQTT subscribers.
//
// A Session is one connection's protocol state, driven by its event loop
// through Feed (bytes in) and writing packets to its Conn (bytes out); it
// never blocks the loop. The packet codec is package mqttgw/packet.
//
// Deliveries come from publishers of any protocol, on their goroutines,
// through the broker.Receiver of each subscription; the state they share
// with the session's own loop (packet identifiers, the in-flight window)
// is behind the session's outbound lock.
//
// Retained messages live in a durable stream, one message per topic, so
// they survive restarts. QoS 1 and 2 publishes to a subject that a stream
// captures are acknowledged (PUBACK, PUBREC) only once the stream has them
// durably.
package mqttgw
