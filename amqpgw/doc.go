// Package amqpgw is ledge's AMQP 0-9-1 gateway: RabbitMQ's clients (pika,
// amqplib, amqp091-go) declare exchanges and queues, publish, consume and
// acknowledge over ledge's broker, unchanged, on port 5672.
//
// # Design
//
// Exchanges and bindings are the gateway's own routing tables, not broker
// streams: direct is a map from routing key to queues, fanout a set,
// topic a router.Router of binding patterns (router.PatternFromAMQPBindingKey),
// headers a list of bindings matched with x-match all or any; bindings
// from one exchange to another (exchange.bind) are a short list per
// source, matched one by one and followed a few hops. Routing a
// publish is a lookup under a read lock, without touching the log. The
// durable exchanges, the durable queues' definitions and the bindings
// between durable ones are kept in the broker stream AMQP_meta, one record
// per subject with MaxMsgsPerSubject 1, as mqttgw keeps its sessions, so
// they come back after a restart with the log's guarantees.
//
// amq.topic is the bridge to the other protocols, as RabbitMQ's MQTT and
// STOMP plugins make it: its bindings are not in a table of the gateway
// but in the live router every protocol shares, each bound queue there as
// a broker.Receiver, so an MQTT publish to a/b/c or a NATS publish to
// a.b.c is stored in the queues bound with a.b.c, a.*.c or a.#; and an
// AMQP publish to amq.topic is matched in the same router, reaching the
// NATS and MQTT subscribers too.
//
// A queue is a broker stream, AMQP_q_<name> (file storage for durable
// queues, memory for transient ones, work-queue retention) with one
// durable pull consumer. A basic.consume keeps pull requests outstanding
// on it for as many messages as its prefetch allows, each naming the AMQP
// consumer as its reply subject; the queue is the consumer's Outlet
// (Consumer.Attach) and hands each delivery to the channel that subject
// names. So competing consumers, fair dispatch and redelivery are the
// broker's, the same for every protocol. Delivery tags are per channel and
// map to stream sequences; ack, nack and reject are Consumer.Ack (Nak to
// requeue, Term to drop, after dead-lettering); a channel or connection
// that closes Naks what it had not acknowledged, and the next delivery of
// it says redelivered (Delivery.Deliveries > 1). A publisher confirm is
// sent once every queue the message was routed to has it durably (the
// callback of Stream.Publish), as one multiple ack where they are
// contiguous. Queue arguments map onto the stream's limits: x-message-ttl
// is MaxAge, x-max-length and x-max-length-bytes are MaxMsgs and MaxBytes
// with drop-head as DiscardOld and reject-publish as DiscardNew (a
// nack to a confirming publisher). A queue with a dead-letter exchange
// keeps its TTL itself instead, so that expired messages are
// dead-lettered: a sweep of the queue's head, and a check at delivery,
// which also applies a message's own expiration. x-expires deletes a
// queue unused for that long. Transient messages (delivery mode 1) in a
// durable queue are removed when the queue is reopened after a restart.
//
// Administrative methods (declare, bind, delete, purge) create streams and
// write definitions, so they are served one at a time on a goroutine of
// their own while the connection's input waits; publishes, deliveries and
// acknowledgements stay on the event loops.
//
// Another gateway of the process (STOMP) uses the same exchanges and
// queues through a small exported API (local.go): DeclareQueue, Bind,
// a Publisher whose Publish takes a confirm callback, and Consume, whose
// Subscription is one more consumer of the queue, delivering to a Sink
// with its prefetch and acknowledging by stream sequence. Its exclusive
// queues belong to an Owner, which deletes them when released.
//
// What is not implemented is refused, never silently accepted:
// basic.recover with requeue=false,
// channel.flow active=false, prefetch_size, a global prefetch_count
// (shared by a channel's consumers), immediate publishes,
// dead-lettering of messages dropped by x-max-length, and queue arguments
// other than those above (x-max-priority, x-single-active-consumer ...)
// close the connection with 540 NOT_IMPLEMENTED.
package amqpgw
