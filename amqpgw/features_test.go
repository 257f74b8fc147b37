package amqpgw

import (
	"testing"
	"time"
)

func TestBasicGet(t *testing.T) {
	g := startGateway(t, Options{}, "")
	_, ch := dial(t, g)
	_, err := ch.QueueDeclare("g", true, false, false, false, nil)
	must(t, err)
	if _, ok, err := ch.Get("g", true); ok || err != nil {
		t.Fatalf("get from an empty queue: %v %v", ok, err)
	}
	publish(t, ch, "", "g", text("one"))
	publish(t, ch, "", "g", text("two"))
	time.Sleep(50 * time.Millisecond)
	d, ok, err := ch.Get("g", false)
	if err != nil || !ok || string(d.Body) != "one" || d.MessageCount != 1 {
		t.Fatalf("get: %q %v %v count %d", d.Body, ok, err, d.MessageCount)
	}
	must(t, d.Ack(false))
	d, ok, err = ch.Get("g", true)
	if err != nil || !ok || string(d.Body) != "two" {
		t.Fatalf("get: %q %v %v", d.Body, ok, err)
	}
}
