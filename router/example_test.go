package router_test

import (
	"fmt"

	"github.com/ledgemq/ledge/router"
)

// One router serves every protocol: a NATS subscription, an MQTT filter, an
// AMQP binding and a queue group all receive a message published on MQTT.
func Example() {
	r := router.New[string](router.Options{})

	r.Insert(router.Subscription[string]{Pattern: "site.*.temp", Handle: "nats-sub"})

	filter, _ := router.PatternFromMQTTFilter("site/#")
	r.Insert(router.Subscription[string]{Pattern: filter, SkipDollar: true, Handle: "mqtt-session"})

	binding, _ := router.PatternFromAMQPBindingKey("#.temp")
	r.Insert(router.Subscription[string]{Pattern: binding, Handle: "amqp-queue"})
	// A second binding of the same queue: the queue still gets one copy.
	r.Insert(router.Subscription[string]{Pattern: "site.#", Handle: "amqp-queue"})

	for _, w := range []string{"worker-1", "worker-2"} {
		r.Insert(router.Subscription[string]{Pattern: "site.>", Queue: "workers", Handle: w})
	}

	subject, _ := router.SubjectFromMQTTTopic("site/42/temp")
	var res router.Result[string] // reused from one match to the next
	if err := r.Match(subject, &res); err != nil {
		panic(err)
	}
	fmt.Println(subject, res.Subs) // in no particular order
	for _, g := range res.Groups {
		first, _ := g.Pick(nil)
		second, _ := g.Pick(nil)
		fmt.Println(g.Name, first, second)
	}
	// Output:
	// site.42.temp [mqtt-session amqp-queue nats-sub]
	// workers worker-1 worker-2
}

// The MQTT mapping leaves ordinary topics alone and escapes only what a
// subject token cannot hold.
func ExampleSubjectFromMQTTTopic() {
	for _, topic := range []string{"a/b/c", "a//b", "/status", "fw/v1.2", "$SYS/uptime"} {
		subject, _ := router.SubjectFromMQTTTopic(topic)
		back, _ := router.MQTTTopicFromSubject(subject)
		fmt.Printf("%-12s %-14s %s\n", topic, subject, back)
	}
	// Output:
	// a/b/c        a.b.c          a/b/c
	// a//b         a.%.b          a//b
	// /status      %.status       /status
	// fw/v1.2      fw.v1%2E2      fw/v1.2
	// $SYS/uptime  $SYS.uptime    $SYS/uptime
}
