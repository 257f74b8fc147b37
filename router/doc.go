// Package router is ledge's subject router: the one trie that decides, for
// every published message on every protocol, which subscriptions and queue
// groups receive it. It knows subjects and patterns, not connections, and
// keeps the hot path to a lock-free cache lookup or one read-locked walk,
// without allocating.
//
// # Subjects and patterns
//
// A subject is a sequence of tokens separated by '.': "site.42.device.7.temp".
// Tokens are case-sensitive and non-empty and hold no space or control byte;
// the empty string is the subject with zero tokens (an AMQP empty routing
// key). A pattern is a subject whose tokens may also be wildcards:
//
//	"*"  exactly one token                    (NATS '*', AMQP '*', MQTT '+')
//	">"  one or more tokens, last token only  (NATS '>')
//	"#"  zero or more tokens, anywhere        (AMQP '#', MQTT's trailing '#')
//
// So "#" matches every subject, the empty one included; "kern.#.critical"
// matches "kern.critical" and "kern.a.b.critical"; "a.#" matches "a" and
// "a.b.c" (which is MQTT's "a/#"); "a.>" matches "a.b" but not "a". A
// wildcard character inside a longer token ("a*b") is plain text. Patterns
// are normalised, so "a.#.#" and "a.#", or "a.#.>" and "a.>", are the same
// pattern. A subject or pattern has at most MaxTokens (128) tokens, so that
// no subscription can make matching expensive. See ValidateSubject and
// ValidatePattern.
//
// # Protocol mappings
//
// NATS subjects and wildcards are used as they are. MQTT topic levels and
// AMQP routing-key words map to tokens one to one, so the MQTT topic
// "a/b/c", the AMQP routing key "a.b.c" and the NATS subject "a.b.c" are
// the same subject. A level or word that cannot be a token as it is gets
// escaped, and nothing else does:
//
//	empty level or word              %      ("a//b" is "a.%.b", "/a" is "%.a")
//	level exactly "*", ">" or "#"    %2A, %3E, %23
//	'%', '.', space, control, DEL    %XX, two upper-case hex digits
//	                                 ("50%" is "50%25", "v1.2" is "v1%2E2")
//
// The mapping is one to one, so topics round-trip and never collide, and a
// NATS client reads MQTT traffic with ordinary subjects. Decoding undoes only
// these escapes; a subject with a token no topic can hold (a '/', '+' or
// '#' inside a token) gives ErrNotRepresentable, and the gateway skips that
// message for MQTT subscribers. MQTT filters map '+' to '*' and a trailing
// '#' to '#'. AMQP words are escaped the same way: an empty word is "%",
// which '*' matches as it does in RabbitMQ. See SubjectFromMQTTTopic,
// PatternFromMQTTFilter, MQTTTopicFromSubject, MQTTFilterFromPattern,
// SubjectFromAMQPRoutingKey, PatternFromAMQPBindingKey and
// AMQPRoutingKeyFromSubject.
//
// MQTT says a filter starting with a wildcard does not match topics starting
// with '$' (MQTT-4.7.2-1), so "#" does not see "$SYS/...". That rule belongs
// to the subscription, not the grammar: Subscription.SkipDollar, which the
// MQTT gateway sets. NATS and AMQP subscriptions leave it off, because in
// those protocols a '$' subject is an ordinary subject: "nats sub '>'" is
// expected to show "$JS.API..." traffic, and what a client may see is the
// business of permissions (auth/), not of wildcards.
//
// # Concurrency and ownership
//
// A Router is safe for concurrent use. Match first looks the subject up in
// a cache of recent results that takes no lock; on a miss it walks the trie
// under a read lock, so matches from every event loop run in parallel.
// Not every missed subject is cached: a small frequency sketch (TinyLFU's
// count-min sketch of 4-bit counters, halved as traffic passes) counts the
// matches of each subject, and a missed subject takes a cached one's place
// only if it has been matched clearly more often. An edge gateway's
// thousands of devices, each publishing on its own subject, outnumber the
// cache; caching every miss would allocate and evict on every match for
// nearly no hits, while with the rule the cache keeps a fixed part of them
// and the rest walk the trie without allocating, at the cost of no cache,
// and the few subjects that carry most of a skewed load stay cached. A
// writer (Insert, Remove) holds the write lock only while it changes its own
// path, well under a microsecond; it sweeps the cache after releasing it.
// Inserting or removing a pattern drops from the cache exactly the subjects
// that pattern matches, before Insert or Remove returns. A read-write lock
// was chosen over a copy-on-write trie because copying a path copies the
// child tables along it, thousands of entries at a busy level, on every
// subscribe; matches that hit the cache never touch the lock at all.
//
// The caller owns the Result it passes to Match (or MatchBytes) and reuses
// it: Match resets it and appends to its slices, so once they have grown a match allocates
// nothing, and the slices stay valid until the next Match into the same
// Result. The router keeps no reference to a Result. Each handle is reported
// at most once per match, however many of its patterns match (the AMQP rule
// that a queue bound twice gets a message once). Queue groups carry their
// members; Group.Pick chooses one, round robin, passing over members that
// say they are full.
package router
