package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// The same Client on RabbitMQ's own Go client, amqp091-go, for the
// measurement that chose the lean client (BenchmarkAMQPClient) and as a
// cross-check that the lean client's messages are what a real client
// sends and reads. Test-only: the tool does not ship it.
func init() {
	p := protocols["amqp"]
	p.Name, p.Dial = "amqp091", dialAMQP091
	protocols["amqp091"] = p
}

type amqp091Client struct {
	o    DialOptions
	conn *amqp.Connection
	ch   *amqp.Channel

	mu      sync.Mutex // publishes and the confirm window
	pending []*amqp.DeferredConfirmation

	replyOnce sync.Once
	replyErr  error
	replies   <-chan amqp.Delivery
	corr      uint64
}

func dialAMQP091(ctx context.Context, url string, o DialOptions) (Client, error) {
	cfg := amqp.Config{Heartbeat: o.KeepAlive, Properties: amqp.Table{"connection_name": o.Name}}
	if d, ok := ctx.Deadline(); ok {
		cfg.Dial = amqp.DefaultDial(time.Until(d))
	}
	conn, err := amqp.DialConfig(url, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", url, err)
	}
	ch, err := conn.Channel()
	if err == nil && o.Confirm {
		err = ch.Confirm(false)
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	c := &amqp091Client{o: o, conn: conn, ch: ch}
	go func() {
		if e, ok := <-conn.NotifyClose(make(chan *amqp.Error, 1)); ok && e != nil && o.OnAsyncError != nil {
			o.OnAsyncError(e)
		}
	}()
	return c, nil
}

func (c *amqp091Client) mode() uint8 {
	if c.o.Durable {
		return amqp.Persistent
	}
	return amqp.Transient
}

func (c *amqp091Client) Publish(subject string, data []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.o.Confirm && len(c.pending) >= max(1, c.o.Window) {
		c.pending[0].Wait()
		c.pending = c.pending[1:]
	}
	dc, err := c.ch.PublishWithDeferredConfirm(c.o.Exchange, subject, false, false, amqp.Publishing{DeliveryMode: c.mode(), Body: data})
	if err == nil && dc != nil {
		c.pending = append(c.pending, dc)
	}
	return err
}

func (c *amqp091Client) Reply(reply string, data []byte) error {
	to, corr, _ := strings.Cut(reply, "\x00")
	return c.ch.Publish("", to, false, false, amqp.Publishing{DeliveryMode: amqp.Transient, CorrelationId: corr, Body: data})
}

func (c *amqp091Client) Subscribe(filter, queue string, h Handler) (Subscription, error) {
	name := queue
	if c.o.Exchange == "" {
		name = filter
	}
	q, err := c.ch.QueueDeclare(name, queue != "" && c.o.Durable, queue == "", queue == "", false, nil)
	if err != nil {
		return nil, err
	}
	if c.o.Exchange != "" {
		if err := c.ch.QueueBind(q.Name, filter, c.o.Exchange, false, nil); err != nil {
			return nil, err
		}
	}
	if queue != "" && q.Messages > 0 {
		if _, err := c.ch.QueuePurge(q.Name, false); err != nil {
			return nil, err
		}
	}
	if !c.o.AutoAck && c.o.Prefetch > 0 {
		if err := c.ch.Qos(c.o.Prefetch, 0, false); err != nil {
			return nil, err
		}
	}
	tag := "ledge-bench-" + q.Name
	msgs, err := c.ch.Consume(q.Name, tag, c.o.AutoAck, false, false, false, nil)
	if err != nil {
		return nil, err
	}
	go func() {
		for d := range msgs {
			reply := ""
			if d.ReplyTo != "" {
				reply = d.ReplyTo + "\x00" + d.CorrelationId
			}
			h(d.RoutingKey, reply, d.Body)
			if !c.o.AutoAck {
				d.Ack(false)
			}
		}
	}()
	return amqp091Sub{c.ch, tag}, nil
}

type amqp091Sub struct {
	ch  *amqp.Channel
	tag string
}

func (s amqp091Sub) Unsubscribe() error {
	if err := s.ch.Cancel(s.tag, false); err != nil && !errors.Is(err, amqp.ErrClosed) {
		return err
	}
	return nil
}

func (c *amqp091Client) Request(ctx context.Context, subject string, data []byte) ([]byte, error) {
	c.replyOnce.Do(func() {
		c.replies, c.replyErr = c.ch.Consume(amqpDirectReplyTo, "", true, false, false, false, nil)
	})
	if c.replyErr != nil {
		return nil, c.replyErr
	}
	c.corr++
	corr := fmt.Sprint(c.corr)
	err := c.ch.PublishWithContext(ctx, c.o.Exchange, subject, false, false, amqp.Publishing{
		DeliveryMode: c.mode(), CorrelationId: corr, ReplyTo: amqpDirectReplyTo, Body: data})
	if err != nil {
		return nil, err
	}
	for {
		select {
		case d, ok := <-c.replies:
			if !ok {
				return nil, amqp.ErrClosed
			}
			if d.CorrelationId == corr {
				return d.Body, nil
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (c *amqp091Client) Flush(ctx context.Context) error {
	c.mu.Lock()
	for _, dc := range c.pending {
		if _, err := dc.WaitContext(ctx); err != nil {
			c.mu.Unlock()
			return err
		}
	}
	c.pending = nil
	c.mu.Unlock()
	ex := c.o.Exchange
	if ex == "" {
		ex = "amq.direct"
	}
	return c.ch.ExchangeDeclarePassive(ex, "direct", true, false, false, false, nil)
}

func (c *amqp091Client) Close() { c.conn.Close() }

// Both clients run the same scenarios against ledge; the cross-check.
func TestAMQP091ClientAgainstLedge(t *testing.T) {
	url := startAMQPLedge(t)
	for _, args := range [][]string{
		{"-scenario", "pubsub", "-clients", "2", "-count", "2000"},
		{"-scenario", "queue", "-pubs", "2", "-subs", "3", "-count", "3000", "-subject", "jobs", "-exchange", "", "-durable", "-confirm"},
		{"-scenario", "reqrep", "-count", "200"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			res := bench(t, url, append([]string{"-proto", "amqp091"}, args...)...)
			if res.Errors != 0 || res.Receive == nil || res.Receive.Msgs != res.Publish.Msgs {
				t.Fatalf("errors %d (%s), published %+v, received %+v", res.Errors, res.FirstError, res.Publish, res.Receive)
			}
		})
	}
}

// BenchmarkAMQPClient runs the work queue (4 publishers, 4
// consumers with prefetch 100 and acks, 128-byte messages) with each
// client and reports the rate and the load tool's CPU per message. Point
// it at a broker of its own process to read the tool's CPU alone:
//
//	LEDGE_BENCH_AMQP_URL=amqp://guest:guest@127.0.0.1:25672/ \
//	  flock /tmp/ledge-bench.lock go test -run '^$' -bench AMQPClient -benchtime 200000x ./cmd/ledge-bench/
func BenchmarkAMQPClient(b *testing.B) {
	url := os.Getenv("LEDGE_BENCH_AMQP_URL")
	if url == "" {
		url = startAMQPLedge(b)
	}
	for _, tc := range []struct{ name, proto string }{{"lean", "amqp"}, {"amqp091", "amqp091"}} {
		for _, mode := range []struct {
			name string
			args []string
		}{
			{"transient", []string{"-max-ahead", "20000"}},
			{"persistent-confirms", []string{"-durable", "-confirm", "-inflight", "256"}},
		} {
			b.Run(tc.name+"/"+mode.name, func(b *testing.B) {
				args := append([]string{"-proto", tc.proto, "-scenario", "queue", "-pubs", "4", "-subs", "4",
					"-subject", "bench-clients-" + mode.name, "-exchange", "", "-count", fmt.Sprint(b.N), "-timeout", "30s"}, mode.args...)
				cfg, err := parseArgs(append([]string{"-url", url, "-quiet"}, args...), os.Stderr)
				if err != nil {
					b.Fatal(err)
				}
				var before, after syscall.Rusage
				syscall.Getrusage(syscall.RUSAGE_SELF, &before)
				b.ResetTimer()
				res, err := run(context.Background(), cfg, os.Stderr, false)
				b.StopTimer()
				syscall.Getrusage(syscall.RUSAGE_SELF, &after)
				if err != nil || res.Errors > 0 || res.Receive == nil {
					b.Fatalf("run: %v (%+v)", err, res)
				}
				cpu := time.Duration(after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano())
				b.ReportMetric(res.Receive.MsgsPerSec, "msgs/s")
				b.ReportMetric(float64(cpu.Nanoseconds())/float64(res.Receive.Msgs), "tool-cpu-ns/msg")
			})
		}
	}
}
