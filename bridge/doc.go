// Package bridge is ledge's store-and-forward uplink: it forwards chosen
// local streams to a NATS/JetStream cluster upstream with nats.go, and
// republishes chosen upstream subjects locally (the downlink), so that an
// edge box keeps everything on disk while its link is down and catches up,
// in order and once, when it returns.
//
// # Forwarding
//
// Each uplink reads its local streams through a durable broker consumer
// per stream, so its backlog is the log on disk and its cursor survives
// restarts and crashes; memory holds at most a window of messages in
// flight. Subject patterns that no stream captures yet are captured into
// the stream UPLINK_<name>, with interest retention (a message leaves the
// disk once forwarded) and the uplink's disk budget.
//
// A message goes upstream on its subject behind the uplink's prefix, with
// the header Nats-Msg-Id set to "<gateway>:<stream>:<sequence>", as an
// asynchronous JetStream publish whose acknowledgement comes back on an
// inbox of the session. Only an acknowledged message is acknowledged to the
// local consumer, so the cursor never passes a message the upstream has not
// stored. A message sent again (after a reconnect, or after a crash that
// lost the last second of consumer state) carries the same id and the
// upstream stream's duplicate window drops it: exactly once, as long as
// the link returns within that window (two minutes by default).
//
// When the upstream account has no JetStream, or the uplink says so, the
// uplink publishes with core NATS and confirms each batch with a flush
// round trip: the server has received the messages, but nothing upstream
// stores them or removes duplicates, so this mode is at-least-once, and a
// message is lost upstream if no subscriber is there to take it.
//
// # Catch-up order
//
// By default a backlog goes upstream in order, before anything published
// once the link is back. With CatchUp NewestFirst each session starts by
// making its consumers jump to the tail of their streams
// (broker.Consumer.JumpToTail): what arrives from then on is sent as it
// arrives, and the range jumped over, kept in the consumer's saved state,
// is sent behind it, oldest first, with the link's remaining capacity. The
// cursor's ack floor stays below that range until it is all acknowledged,
// so retention keeps it and a crash resumes it; only the order between
// live messages and backlog differs.
//
// # The link
//
// A session is one connection: it is made, forwards, and ends on the first
// error, disconnection or stall (messages in flight and no acknowledgement
// for StallTimeout). The next session starts after an exponential backoff
// with jitter, and sends again, in order, everything the previous one left
// unacknowledged. nats.go's own reconnection is off, so that no publish is
// replayed from a buffer behind the cursor's back.
//
// # Downlink
//
// An uplink may subscribe upstream to subjects (behind its prefix, which
// is removed again locally), either with a core subscription or through a
// durable upstream JetStream consumer, so that commands sent while the box
// was offline arrive when it returns. A downlinked message is delivered to
// the local live subscribers of every protocol through the shared router,
// and stored by the local stream that captures its subject, if any; a
// durable upstream message is acknowledged once that store has it.
package bridge
