package amqpgw

import (
	"context"
	"sync"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"
)

// BenchmarkPersistentConfirmed publishes 128-byte persistent messages
// with confirms into a durable queue from 4 publishers while 4 consumers
// with prefetch 100 ack them: the persistent scenario.
func BenchmarkPersistentConfirmed(b *testing.B) { benchQueue(b, true) }

// BenchmarkTransient is the same into a transient queue, without confirms.
func BenchmarkTransient(b *testing.B) { benchQueue(b, false) }

func benchQueue(b *testing.B, durable bool) {
	g := startGateway(b, Options{}, "")
	_, ch := dial(b, g)
	_, err := ch.QueueDeclare("bench", durable, false, false, false, nil)
	must(b, err)
	body := make([]byte, 128)
	var got sync.WaitGroup
	got.Add(b.N)
	for i := 0; i < 4; i++ {
		_, cch := dial(b, g)
		must(b, cch.Qos(100, 0, false))
		msgs, err := cch.Consume("bench", "", false, false, false, false, nil)
		must(b, err)
		go func() {
			for d := range msgs {
				_ = d.Ack(false)
				got.Done()
			}
		}()
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	var pubs sync.WaitGroup
	for p := 0; p < 4; p++ {
		n := b.N / 4
		if p == 0 {
			n += b.N % 4
		}
		pubs.Add(1)
		go func() {
			defer pubs.Done()
			_, pch := dial(b, g)
			mode := amqp.Transient
			if durable {
				mode = amqp.Persistent
				_ = pch.Confirm(false)
			}
			var last *amqp.DeferredConfirmation
			for i := 0; i < n; i++ {
				dc, err := pch.PublishWithDeferredConfirmWithContext(context.Background(), "", "bench", false, false, amqp.Publishing{DeliveryMode: mode, Body: body})
				if err != nil {
					b.Error(err)
					return
				}
				if dc != nil && i%256 == 255 {
					// A window of outstanding confirms, as a real publisher keeps.
					if last != nil {
						last.Wait()
					}
					last = dc
				}
			}
		}()
	}
	pubs.Wait()
	got.Wait()
}
