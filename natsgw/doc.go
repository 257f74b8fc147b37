// Package natsgw serves the NATS client protocol, the one nats.go and the
// nats CLI speak: publish/subscribe, queue groups and request/reply, with
// headers and the no-responders status, over ledge's subject router.
//
// The package is a parser (parse.go), an encoder of the server's lines
// (encode.go), and a session per connection (client.go) driven by bytes
// that the network layer hands it: nothing here reads or writes a socket,
// blocks, or touches a file. A session's callbacks run on the event loop
// that owns its connection; deliveries to subscribers on other connections
// are queued on those connections from the publisher's loop, so a message
// is matched once and written to each receiver's outbound queue without a
// goroutine or channel in between.
//
// With a broker (Options.Broker) the gateway also serves the part of the
// JetStream API that nats.go's jetstream package and the nats CLI use: a
// publish that a stream captures is stored and, with a reply subject,
// answered with its PubAck once durable; requests on $JS.API.> manage
// streams and consumers (jsapi.go, in nats-server's JSON: jsjson.go);
// acknowledgements arrive on $JS.ACK.>; and the Server is the broker's
// Outlet (outlet.go), routing consumers' messages and status messages to
// subscribers. Requests that write files run off the event loops.
//
// Subjects are the router's grammar (see package router): tokens separated
// by '.', '*' for one token, '>' for one or more trailing tokens. One
// difference from nats-server follows from ledge serving AMQP on the same
// router: '#' is a wildcard there, so a NATS client cannot use a token that
// is exactly '#' as a literal.
package natsgw
