package main

import "strings"

// side is which clients -clients counts in a scenario.
type side int

const (
	sidePubs side = iota
	sideSubs
	sideBoth
)

// scenario is one shape of load. All of them are one loop: publishers on
// the subjects of -subject, receivers subscribed to one subject each
// (pairs) or to the wildcard over all (fan-in, fan-out, queue groups),
// and the checks that every receiver heard what it should have.
type scenario struct {
	name    string
	summary string
	// pubs and subs are the default numbers of each; 0 means the
	// scenario has none and refuses -pubs or -subs.
	pubs, subs int
	clients    side
	// pairs: receiver n subscribes to publisher n's subject only;
	// otherwise every receiver subscribes to the wildcard.
	pairs bool
	// queue: the receivers are one queue group.
	queue bool
	// kind selects the publisher and receiver loops.
	kind kind
	// latency names what the latency figures measure.
	latency string
}

type kind int

const (
	kindCore      kind = iota // publish, subscribe
	kindRequest               // request, reply from a queue group
	kindStorePub              // publish to a stream, wait for acks
	kindStoreCons             // pull from a durable consumer, ack
	kindIdle                  // connect, stay quiet, count who is still there
)

var scenarios = []*scenario{
	{name: "pub", summary: "publish only, nobody subscribed (-clients: publishers)",
		pubs: 1, clients: sidePubs, kind: kindCore},
	{name: "pubsub", summary: "publisher n to subscriber n (-clients: pairs)",
		pubs: 1, subs: 1, clients: sideBoth, pairs: true, kind: kindCore, latency: "publish to receive"},
	{name: "fanout", summary: "1 publisher to N subscribers (-clients: subscribers)",
		pubs: 1, subs: 4, clients: sideSubs, kind: kindCore, latency: "publish to receive"},
	{name: "fanin", summary: "N publishers to 1 subscriber (-clients: publishers)",
		pubs: 4, subs: 1, clients: sidePubs, kind: kindCore, latency: "publish to receive"},
	{name: "queue", summary: "publishers to a queue group of N workers, each message to one (-clients: workers)",
		pubs: 1, subs: 4, clients: sideSubs, queue: true, kind: kindCore, latency: "publish to receive"},
	{name: "reqrep", summary: "requesters to a queue group of responders, one request at a time each (-clients: requesters)",
		pubs: 1, subs: 1, clients: sidePubs, queue: true, kind: kindRequest, latency: "request round trip"},
	{name: "jspub", summary: "durable publish to a stream, acks awaited in a window of -max-pending (-clients: publishers)",
		pubs: 1, clients: sidePubs, kind: kindStorePub, latency: "publish to stored ack"},
	{name: "jsconsume", summary: "pull from a durable consumer with explicit acks (-clients: consumers sharing it)",
		subs: 1, clients: sideSubs, queue: true, kind: kindStoreCons, latency: "publish to consume, time in the stream included"},
	{name: "idle", summary: "open N connections, keep them alive for -duration (default 10s), count how many stayed (-clients: connections)",
		subs: 100, clients: sideSubs, kind: kindIdle},
}

func lookupScenario(name string) (*scenario, bool) {
	for _, s := range scenarios {
		if s.name == name {
			return s, true
		}
	}
	return nil, false
}

func scenarioNames() string {
	var names []string
	for _, s := range scenarios {
		names = append(names, s.name)
	}
	return strings.Join(names, ", ")
}
