// Package stompgw is ledge's STOMP gateway: STOMP 1.0, 1.1 and 1.2 clients
// (go-stomp, stomp.js in a browser over WebSocket, a shell with nc) send,
// subscribe and acknowledge on port 61613, on the same queues and
// exchanges as AMQP clients, with the destinations RabbitMQ's STOMP plugin
// made common.
//
// # Design
//
// The gateway keeps no queues of its own. Its queues, exchanges and
// bindings are the AMQP gateway's, reached through amqpgw's in-process
// API (amqpgw/local.go): a SEND is a basic.publish, a SUBSCRIBE a
// basic.consume with its prefetch, an ACK a basic.ack. So a queue a STOMP
// client declares is the queue an AMQP client sees, `ledge ctl
// list_queues` lists both, and competing consumers, fair dispatch,
// redelivery and durability are the broker's, the same for every
// protocol. Destinations map as in RabbitMQ:
//
//	/queue/NAME          queue NAME (declared durable if missing) through the default exchange
//	/amq/queue/NAME      queue NAME, which must exist (declared by anyone)
//	/topic/KEY           amq.topic with routing or binding key KEY: the live
//	                     router every protocol shares, so MQTT and NATS
//	                     subscribers see what is sent and publish what is received
//	/exchange/NAME/KEY   any exchange NAME with key KEY
//	/temp-queue/NAME     the connection's private queue NAME
//	/reply-queue/NAME    another connection's temporary queue, as a
//	                     rewritten reply-to names it
//
// A subscription to /topic or /exchange is an exclusive, auto-delete
// queue bound there, gone with the subscription. With durable:true (or
// persistent:true, the older spelling) and an id it is instead the
// durable queue stomp-subscription-ID (stomp-subscription-CLIENT-ID when
// CONNECT had a client-id header; or x-queue-name), which keeps
// collecting while the subscriber is away; UNSUBSCRIBE with durable:true
// deletes it. A reply-to of /temp-queue/NAME on a SEND makes an exclusive
// queue for the connection, subscribes to it as /temp-queue/NAME and
// rewrites the reply-to to /reply-queue/QUEUE, which an AMQP responder
// sees as plain QUEUE; an AMQP reply-to is shown to STOMP as
// /reply-queue/NAME. SEND headers become AMQP properties (content-type,
// persistent:true as delivery mode 2, priority, correlation-id,
// expiration, ...) and the rest the headers table; MESSAGE frames carry
// them back.
//
// # Frames and the event loop
//
// The gateway is "bytes in, events and bytes out" on net.Handler. The
// codec (stompgw/frame) decodes a frame in place in the connection's input
// and encodes MESSAGE frames into a buffer of the session without
// allocating. A SEND to an existing queue is routed and stored on the
// event loop; its RECEIPT is written from the log's commit callback once
// every store has it durably. A SUBSCRIBE that must declare or bind a
// queue, and a SEND whose queue does not exist yet, write definitions, so
// they run on a goroutine while the connection's input waits, which keeps
// frames in order. MESSAGE frames are written from the queue's consumer
// goroutine straight to the connection.
//
// Acknowledgements: ack:auto subscriptions are acknowledged as they are
// sent; client (cumulative) and client-individual keep the delivered
// messages of each subscription in delivery order, and a message id
// ("SUBSCRIPTION@@N", also the 1.2 ack header) finds its entry by binary
// search. NACK gives a message back (requeue:false drops or dead-letters
// it). UNSUBSCRIBE and a closed connection give back what was not
// acknowledged, and it is delivered again with redelivered:true.
// BEGIN...COMMIT holds SENDs, ACKs and NACKs (copied) and applies them in
// order; COMMIT's receipt waits for every message to be stored, and a
// DISCONNECT's receipt for every SEND before it.
//
// Heart-beats are negotiated as STOMP 1.1 says, with a floor
// (Options.MinHeartBeat) so a client cannot ask for a beat every
// millisecond; the server beats when it has sent nothing for its interval
// and closes a connection silent for twice the client's. Errors are STOMP's:
// a malformed frame, an unknown command, a missing header, an ack of an
// unknown id, a refused declaration get an ERROR frame with a message
// header (and the frame's receipt-id) and the connection closes; no other
// connection notices. STOMP over WebSocket is the same session inside
// WebSocket frames (subprotocols v10.stomp to v12.stomp), as RabbitMQ's
// Web-STOMP serves it.
//
// # Monitoring
//
// stats.go holds what the HTTP port reads: the gateway's counters (SENDs
// published, MESSAGE frames written, their bytes, refused logins,
// connections closed with an ERROR) and each connected session with its
// CONNECT (login, client-id, host, version, heart-beats) and its
// subscriptions (destination, queue, ack mode, prefetch, delivered and
// unacknowledged). A session counts SENDs on its loop and MESSAGE frames
// under the lock their delivery holds; nothing is sampled.
package stompgw
