// Package broker is ledge's one queue model: durable streams that capture
// subjects into a log, and consumers that read them with stored positions,
// acknowledgements, redelivery and prefetch. A JetStream consumer, an AMQP
// queue, an MQTT persistent session and a STOMP subscription are each a
// Consumer configured differently; messages are stored once, in the stream's
// log, and consumers refer to them by sequence number.
//
// # Streams
//
// A Stream captures one or more subject patterns (in the router's grammar)
// into a log.Log on disk or into memory. Sequence numbers start at 1: the
// message at log offset n has sequence n+1. Limits (messages, bytes, age,
// messages per subject) discard the oldest messages or refuse new ones;
// work-queue retention removes a message once a consumer acknowledges it,
// interest retention once every consumer has. Removal is logical first (the
// stream's first sequence moves up, or the sequence joins the set of deleted
// ones) and physical when a whole log segment has nothing live left.
//
// Publish appends and reports the sequence through a callback once the
// append is durable under the stream's sync policy: that callback is the
// publisher confirm. A message id (Nats-Msg-Id in NATS) seen within the
// duplicate window is not stored again.
//
// # Consumers
//
// A Consumer keeps its delivered sequence, its ack floor (every message at
// or below it is acknowledged), and the delivered-but-unacknowledged set
// with each message's delivery count and deadline. MaxAckPending caps that
// set: it is the prefetch of RabbitMQ, and at 1 it gives fair dispatch.
// A message not acknowledged within AckWait, or negatively acknowledged, is
// delivered again, up to MaxDeliver times.
//
// Messages leave a consumer through an Outlet, the small interface a
// protocol gateway implements: pull requests and push consumers name a
// subject, and the outlet carries the message and its metadata there.
//
// # Durability
//
// Stream and consumer configurations are JSON files written by rename.
// A stream's deleted set and a consumer's acknowledgement state are written
// as checksummed snapshots, at once for administrative changes (a deleted
// message, a purge, a new consumer) and within StateFlushInterval for acks,
// so a crash can redeliver messages acknowledged in the last interval but
// never loses a message that was confirmed. The layout is in
// docs/FORMAT.md.
//
// All exported methods are safe for concurrent use.
package broker
