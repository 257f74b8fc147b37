// Command ledge-bench is the load tool of ledge: it drives a broker with
// many clients in one of eight scenarios and reports throughput, latency
// percentiles and whether every message arrived once and in order. It
// speaks NATS (nats.go), MQTT 3.1.1 and 5.0 (a lean client of its own on
// ledge's codec, mqtt.go), AMQP 0-9-1 (a lean client of its own, amqp.go)
// and STOMP 1.0 to 1.2 (a lean client of its own on ledge's codec,
// stomp.go).
//
//	ledge-bench -scenario pubsub -count 1000000
//	ledge-bench -scenario fanin -clients 1000 -rate 0.2 -duration 1m -subject 'site.{n}.temp'
//	ledge-bench -scenario jspub -create-stream -clients 4 -duration 30s -json
//	ledge-bench -proto mqtt -scenario fanin -clients 10000 -rate 0.2 -duration 1m -subject 'site/{n}/temp' -qos 1
//	ledge-bench -proto mqtt -scenario idle -clients 10000 -duration 1m -keepalive 30s
//	ledge-bench -proto amqp -scenario queue -pubs 4 -subs 4 -exchange '' -subject jobs -durable -confirm
//	ledge-bench -proto stomp -scenario queue -pubs 4 -subs 4 -subject /queue/jobs -durable -confirm -ack client-individual
//
// # Scenarios
//
//	pub        publish only, nobody subscribed
//	pubsub     publisher n to subscriber n (-clients: pairs)
//	fanout     1 publisher to N subscribers
//	fanin      N publishers to 1 subscriber
//	queue      publishers to a queue group of N workers, each message to one
//	reqrep     requesters to a queue group of responders, one request at a time each
//	jspub      durable publish into a stream, acks awaited in a window of -max-pending
//	jsconsume  pull from a durable consumer with explicit acks
//	idle       open N connections, keep them alive, count how many stayed
//
// -clients sets the scenario's many side (listed by ledge-bench -h);
// -pubs and -subs set either side. Publisher n publishes on -subject with
// {n} replaced by n; receivers subscribe to that subject (pubsub) or to
// the wildcard over all of them ("site.*.temp").
//
// # Bounds
//
// -count is the number of messages of the run, split over the
// publishers; -duration stops publishing after a time; with both, the
// first reached ends it, and with neither the run sends 100,000. After
// the publishers stop, receivers wait for what they are owed, and give
// up when nothing has arrived for -grace: a run always ends by itself.
// -rate paces each publisher evenly (it never bursts to catch up), and
// -warmup publishes for a while before measuring. -max-ahead N keeps
// publishers at most N deliveries ahead of the receivers, so that a
// broker is measured at what it delivers rather than by how it fails when
// overrun (dropping, queueing without bound, cutting its subscriber off);
// it gives up for the rest of the run when deliveries stop for -grace.
//
// # What is measured
//
// Each message begins with a 20-byte header: the publisher's index, a
// sequence number and the send time (payload.go). Receivers check the
// sequence of every publisher they hear and count messages lost,
// duplicated and out of order; a queue group is checked as one. Latency
// goes into a log-bucketed histogram (1/128 relative precision, no
// allocation per value) and is reported as p50, p90, p99, p99.9 and max:
// publish to receive, or the request's round trip (reqrep), or publish to
// the stored ack (jspub). Messages under 20 bytes carry no header and
// are only counted. Sender and receivers share one clock, since they run
// in one process.
//
// # Output
//
// On a terminal a progress line shows the rates while the run lasts;
// in a pipe there is none. Then a summary for people, or with -json one
// JSON object (Result in report.go). -plot FILE.svg draws the latency by
// percentile and the rates over time. A bad command line exits with
// status 2; a run that failed or counted errors (the figures are still
// printed) with 1. Lost messages alone are a result, not an error.
//
// # Protocols
//
// A protocol is a Client (proto.go): connect, publish, subscribe,
// request, flush. A protocol with durable streams also implements
// StreamClient for jspub and jsconsume; NATS does so through nats.go's
// jetstream package (nats.go).
//
// MQTT (-proto mqtt, -url mqtt://host:port) runs pub, pubsub, fanout,
// fanin, queue (a shared subscription $share/<-queue>/filter) and idle,
// with topics in MQTT syntax ("site/{n}/temp", receivers on
// "site/+/temp"). -qos 0, 1 or 2 is used for publishes and subscriptions;
// at QoS 1 and 2 each publisher keeps at most -inflight publishes
// unacknowledged; -mqtt-version 3.1.1 or 5; every connection has a clean
// session unless -persistent gives the receivers a persistent one (the
// broker then stores their messages as for an absent device). Quiet
// connections send PINGREQ at half of -keepalive. The client is not paho:
// paho runs several goroutines per connection, too many for 10,000
// devices from one process on two cores; here a few epoll loops own all
// the connections (mqtt_linux.go), and paced publishers beyond 64 share
// four goroutines (sched.go). With -rate, ten thousand devices sending
// one message every five seconds cost the tool a few MB.
//
// AMQP (-proto amqp, -url amqp://user:pass@host:port/vhost) runs every
// scenario. Publishers publish to -exchange with their subject as routing
// key; a subscriber is a server-named exclusive queue bound to it with the
// filter as binding key ("site.*.temp" on amq.topic), and competing
// consumers share the queue -queue. -exchange amq.direct binds exact keys;
// the default exchange (-exchange "") routes to the queue named by the
// routing key, as RabbitMQ's work-queue tutorial does. Consumers ack each
// message with a prefetch of -prefetch, or not at all with -auto-ack;
// -durable makes the shared queue durable and messages persistent;
// -confirm has publishers use publisher confirms with at most -inflight
// unconfirmed each. reqrep is RPC: requests carry reply_to and
// correlation_id, answered on direct reply-to or (-reply-to queue) an
// exclusive queue per requester. jspub publishes persistent messages with
// confirms into the durable queue -stream bound to the exchange with the
// subjects' wildcard, and jsconsume consumes from it with acks. Each
// client is one connection with one channel, on the same epoll transport
// as MQTT's (wire.go): amqp091-go flushes every publish and every ack
// with a system call of its own and hands every delivery through
// goroutines and channels, and measured against ledge it needed about
// nine times the tool's CPU per message (BenchmarkAMQPClient).
//
// STOMP (-proto stomp, -url stomp://login:passcode@host:port/vhost) runs
// every scenario but the stream ones, with RabbitMQ's destinations as
// -subject: publishers SEND to it (/topic/bench.{n} by default,
// /queue/ledge-bench for queue and reqrep), and receivers SUBSCRIBE to it,
// or to the wildcard over all of them for /topic and /exchange
// destinations (/topic/site.*.temp through amq.topic). Competing
// consumers share a /queue/NAME; fanout needs a /topic or /exchange.
// Subscriptions acknowledge with -ack auto, client (one cumulative ACK per
// read) or client-individual (an ACK per message, the default), with a
// prefetch-count of -prefetch; the ACK names the broker's own ack id (the
// 1.2 ack header, message-id before). -durable sends persistent:true;
// -confirm asks for a receipt per SEND with at most -inflight awaited,
// the STOMP form of a publisher confirm. reqrep requests carry reply-to
// /temp-queue/ledge-bench and a correlation-id, and the reply comes on the
// subscription of that name. Idle connections keep up with heart-beats of
// -keepalive both ways. The client is not go-stomp, which writes every
// frame with a flush of its own, hands every MESSAGE through two
// goroutines and channels, and waits for each receipt before the next
// SEND; measured against ledge it needed about ten times the tool's CPU
// per message (BenchmarkSTOMPClient). Its frames are decoded in place by
// stompgw/frame, the gateway's own codec.
package main
