// Package monitor serves ledge's HTTP port (8222 by default): health for
// probes, nats-server's monitoring endpoints (/varz, /connz, /subsz,
// /jsz) for the NATS tools, ledge's own JSON API of connections, streams,
// queues, retained messages and uplinks with the operator's actions,
// Prometheus metrics at /metrics, and a small web console at / that is
// embedded in the binary and needs nothing from the internet.
//
// The monitor owns no state of the broker. The program that assembles the
// broker hands it Sources: the broker, each gateway as a Protocol of a
// few functions over the accessors in the gateway's stats.go (NATS, MQTT
// and AMQP in protocols.go: gateways know nothing of monitoring, and a
// protocol is one function there and one line where the broker is put
// together), the listeners, the bridge's status and the logs' latency
// histograms. Every answer is read from them when it is asked
// for; nothing is collected while nobody looks. The only memory the
// monitor keeps is the previous reading of each counter it turns into a
// rate, forgotten when nobody has asked for it for five minutes.
//
// Access goes through an Authorizer, a function that says which Role a
// request has: RoleMonitor reads, RoleAdmin also acts. Without one, every
// request is admin (no users configured). Actions are POST and DELETE
// only, refused when they come cross-origin from a browser
// (http.CrossOriginProtection), and the console is served with a
// Content-Security-Policy that allows its own files only and no framing;
// it escapes every name it shows, since queue names and client ids come
// from clients.
//
// Health is told apart: /healthz is liveness (503 only when a stream's
// log is broken, which a restart repairs), /readyz readiness (503 while
// starting, with a broken log, or with the data disk about to fill). Both
// bodies name every degraded state: a disk nearly full, an uplink down or
// stalled, a certificate close to expiry.
//
// The field names of the API are documented in docs/HTTP-API.md and
// pinned by golden files in testdata/.
package monitor
