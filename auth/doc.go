// Package auth is ledge's one model of who may connect and what each
// client may do, asked the same questions by every gateway (NATS, MQTT,
// AMQP, STOMP, the HTTP monitoring API), so that a message crossing
// protocols never crosses a permission. It also holds the TLS settings
// every listener shares.
//
// # Users, and the default without them
//
// A Policy is the users file (file.go; the format is in docs/AUTH.md):
// users with bcrypt password hashes, token digests and client-certificate
// identities (a verified certificate's subject CN or a SAN names the
// user), groups of rules that users share, and the rules of anonymous
// clients. With no users and no [anonymous] section, clients on loopback
// are let in anonymously with every permission and any other is refused
// with ErrNotAuthorized and a log line that says how to add users: a
// newcomer's broker works on the box and is closed to the network. Once
// users exist, anonymous clients are refused unless [anonymous] gives
// them rules of their own.
//
// # Rules
//
// A user's publish and subscribe rules are allow and deny patterns; deny
// wins; a direction without rules allows everything (nats-server's
// meaning). A pattern with a '/' is an MQTT filter ("site/%u/#"), any
// other a subject pattern ("site.%u.>"); both become the router's grammar,
// so one rule covers every protocol. %u is replaced by the user name and
// %c by the MQTT client id, each as one literal token encoded as the
// router encodes an MQTT level: a name holding '+', '#', '*', '>', '/' or
// '.' matches itself literally or nothing, never more (the class of
// mosquitto's CVE-2017-7650). A subscription is Denied, Allowed, or
// Filtered when its filter is wider than the rules (a wildcard over a
// denied subject or over other clients' inboxes, see inbox.go): then each
// delivery is checked, so a message an allowed user publishes never
// reaches a subscriber whose rules forbid its subject, whichever
// protocols the two speak. allow-responses lets a service answer the
// requests it receives without a publish rule for every inbox. AMQP and
// STOMP add RabbitMQ's resource permissions (configure, write, read
// regular expressions on exchange and queue names). Limits per user bound
// connections, subscriptions, payload size, publishing rate (throttled,
// then disconnected after RateGrace) and the disk its streams may use.
//
// # The interface the gateways use
//
// Every gateway asks the same questions, at the same moments: may this
// client connect (Service.Authenticate), publish here (Client.MayPublish),
// subscribe to this (Client.Subscribe), receive this (Client.MayReceive),
// use this queue (Client.MayAccess), and what changed after a reload
// (Client.OnChange). So the interface is defined here, once, as the
// concrete types Service and Client rather than as an interface in each
// gateway: the per-message questions sit on hot paths, where a concrete
// method on a pointer inlines its fast exits (a nil Client, an
// unrestricted grant) and costs no dynamic call, and a nil *Client is the
// gateway without auth, so gateways and their tests need no fake. The
// only indirection a gateway holds is Authenticator, the one method it
// calls at connect time, so a gateway can be given any source of Clients.
//
// # Off the event loops
//
// A password check is bcrypt, most of a second on a small ARM core.
// Authenticate never runs one on the caller's goroutine: it answers at
// once when it can (no credentials needed, a token, a certificate, a
// password checked recently, whose HMAC it remembers) and otherwise hands
// the check to a bounded pool of goroutines (Options.Workers, half the
// cores) with a bounded queue, and calls back; the gateway's connection
// stops reading meanwhile. Failed logins are counted per address in a
// token bucket: a burst is checked, then one per second, the rest are
// refused at once without a check. So a flood of wrong passwords costs at
// most the pool's cores, at a bounded rate, and the event loops and the
// clients already connected go on.
//
// # Hot paths
//
// MayPublish and MayReceive cost one atomic load for an unrestricted
// client, and otherwise a look-up in a small per-connection cache of
// decisions keyed by the subject's bytes: no allocation, a few tens of
// nanoseconds (BenchmarkMayPublish, TestMayPublishAllocs). A decision
// belongs to the grant it was made under, so a reload, which gives each
// connection a new grant, invalidates them all without touching the
// caches. With a thousand connections even that reaches into memory the
// message does not otherwise touch, so PublishDecision says which answers
// last until OnChange, and the gateways keep the last subject's answer in
// the session and in each filtered subscription.
//
// # Plugging a gateway in
//
// A gateway takes an Authenticator in its options (nil: no auth) and:
//
//   - at its CONNECT (or login frame) builds a Request (protocol, remote
//     address, user name and password or token, the MQTT client id, the
//     connection's TLS state) and calls Authenticate; when the answer is
//     pending it pauses the connection's input for about the login
//     timeout and, in done, puts the result in a Pending and schedules on
//     the connection's loop (lnet.Conn.Do) a function that Takes it,
//     answers the login and calls ResumeReading; its close calls
//     Pending.Abandon and Client.Close;
//   - refuses a publish when MayPublish says no (with the protocol's
//     answer and Client.Denied, which counts and logs), applies Limits and
//     Rate;
//   - relates each subscription to the rules with Subscribe: Denied is
//     refused, Filtered is marked so that each delivery to it asks
//     MayReceive (on the publisher's goroutine), Allowed needs nothing;
//     NoteReply follows a delivered message's reply subject;
//   - for queues and exchanges (AMQP, STOMP destinations) asks MayAccess;
//   - sets OnChange, which after a reload either revokes the client (close
//     with the protocol's answer) or asks it to re-check its
//     subscriptions, in both cases through Conn.Do onto its own loop.
//
// STOMP, which is built on the AMQP gateway's exchanges and queues, only
// authenticates: it gives its client to the AMQP gateway's Owner and
// Publisher, which check what it does as they check an AMQP connection.
//
// # Reload
//
// Service.Reload puts a new Policy in force: connections whose proof no
// longer holds are revoked, the others get new grants and re-check their
// subscriptions. A file with an error never reaches Reload (LoadFile
// fails first, naming file, line and reason), so the rules in force stay.
// ServerTLS reloads certificates the same way: new handshakes take the new
// certificate, open connections keep theirs.
package auth

// Authenticator is what a gateway needs to let clients in; *Service is
// one. See Service.Authenticate for the contract.
type Authenticator interface {
	Authenticate(r *Request, done func(*Client, error)) (cl *Client, pending bool, err error)
}
