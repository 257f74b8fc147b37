package broker

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/ledgemq/ledge/log"
)

// BenchmarkPublish stores 128-byte messages with a PubAck callback, the
// path of an async JetStream publisher, under each sync policy.
func BenchmarkPublish(b *testing.B) {
	for _, sp := range []log.SyncPolicy{log.SyncNever, log.SyncInterval, log.SyncAlways} {
		b.Run(sp.String(), func(b *testing.B) {
			br, err := Open(Options{Dir: b.TempDir(), Sync: sp, SegmentBytes: 64 << 20})
			if err != nil {
				b.Fatal(err)
			}
			defer br.Close()
			s, err := br.AddStream(StreamConfig{Name: "B", Subjects: []string{"bench.>"}})
			if err != nil {
				b.Fatal(err)
			}
			m := &Message{Subject: []byte("bench.pub"), Payload: make([]byte, 128)}
			var acked atomic.Int64
			done := func(PubAck, error) { acked.Add(1) }
			b.SetBytes(128)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := s.Publish(m, done); err != nil {
					b.Fatal(err)
				}
			}
			for acked.Load() < int64(b.N) {
				time.Sleep(50 * time.Microsecond)
			}
		})
	}
}

// countOutlet counts deliveries and acknowledges each at once, as a
// worker that keeps up would.
type countOutlet struct {
	c         *Consumer
	delivered atomic.Int64
	seqs      []uint64
}

func (o *countOutlet) Deliver(_ string, d *Delivery) bool {
	o.delivered.Add(1)
	o.seqs = append(o.seqs, d.StreamSeq)
	return true
}
func (o *countOutlet) Status(string, Status) {}
func (o *countOutlet) Interest(string) bool  { return true }
func (o *countOutlet) Event(Event)           {}

// BenchmarkPullConsume pulls 128-byte messages in batches of 100 and acks
// each, the path of a work-queue consumer.
func BenchmarkPullConsume(b *testing.B) {
	br, err := Open(Options{Dir: b.TempDir(), Sync: log.SyncNever, SegmentBytes: 64 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer br.Close()
	s, err := br.AddStream(StreamConfig{Name: "C", Subjects: []string{"c"}})
	if err != nil {
		b.Fatal(err)
	}
	m := &Message{Subject: []byte("c"), Payload: make([]byte, 128)}
	for i := 0; i < b.N; i++ {
		if err := s.Publish(m, nil); err != nil {
			b.Fatal(err)
		}
	}
	o := &countOutlet{}
	br.SetOutlet(o)
	c, err := s.AddConsumer(ConsumerConfig{Name: "w", Durable: true, MaxAckPending: 10000}, CreateOrUpdate)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(128)
	b.ReportAllocs()
	b.ResetTimer()
	for got := 0; got < b.N; {
		batch := min(100, b.N-got)
		o.seqs = o.seqs[:0]
		want := o.delivered.Load() + int64(batch)
		if err := c.Pull(PullRequest{Reply: "r", Batch: batch}); err != nil {
			b.Fatal(err)
		}
		for o.delivered.Load() < want {
			time.Sleep(10 * time.Microsecond)
		}
		for _, seq := range o.seqs {
			if err := c.Ack(seq, Ack, 0); err != nil {
				b.Fatal(err)
			}
		}
		got += batch
	}
}
