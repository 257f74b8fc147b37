package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// natsClient speaks the NATS client protocol with nats.go; against a
// JetStream-enabled server it is a StreamClient too.
type natsClient struct {
	nc *nats.Conn
	js jetstream.JetStream
}

var _ StreamClient = (*natsClient)(nil)

func dialNATS(ctx context.Context, url string, o DialOptions) (Client, error) {
	opts := []nats.Option{
		nats.Name(o.Name),
		// A benchmark that quietly reconnects would report the messages
		// buffered meanwhile as lost, or worse, as delivered late: a
		// dropped connection ends the client's part of the run instead.
		nats.NoReconnect(),
	}
	if d, ok := ctx.Deadline(); ok {
		opts = append(opts, nats.Timeout(time.Until(d)))
	}
	if o.OnAsyncError != nil {
		opts = append(opts, nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			if sub != nil {
				err = fmt.Errorf("subscription %s: %w", sub.Subject, err)
			}
			o.OnAsyncError(err)
		}))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", url, err)
	}
	return &natsClient{nc: nc}, nil
}

func (c *natsClient) Publish(subject string, data []byte) error {
	return c.nc.Publish(subject, data)
}

func (c *natsClient) Subscribe(filter, queue string, h Handler) (Subscription, error) {
	sub, err := c.nc.QueueSubscribe(filter, queue, func(m *nats.Msg) {
		h(m.Subject, m.Reply, m.Data)
	})
	if err != nil {
		return nil, err
	}
	// The broker, not the client, should decide when a subscriber is too
	// slow: lift nats.go's default limit of 65,536 pending messages.
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		sub.Unsubscribe()
		return nil, err
	}
	return sub, nil
}

func (c *natsClient) Request(ctx context.Context, subject string, data []byte) ([]byte, error) {
	m, err := c.nc.RequestWithContext(ctx, subject, data)
	if err != nil {
		return nil, err
	}
	return m.Data, nil
}

func (c *natsClient) Flush(ctx context.Context) error {
	return c.nc.FlushWithContext(ctx)
}

func (c *natsClient) Close() { c.nc.Close() }

// Connected reports whether the connection is still up.
func (c *natsClient) Connected() bool { return c.nc.IsConnected() }

func (c *natsClient) jetStream() (jetstream.JetStream, error) {
	if c.js != nil {
		return c.js, nil
	}
	// The tool keeps its own window of pending acks (--max-pending);
	// nats.go's must not stall first.
	js, err := jetstream.New(c.nc, jetstream.WithPublishAsyncMaxPending(1<<20))
	if err != nil {
		return nil, err
	}
	c.js = js
	return js, nil
}

func (c *natsClient) EnsureStream(ctx context.Context, name string, subjects []string, create bool) error {
	js, err := c.jetStream()
	if err != nil {
		return err
	}
	_, err = js.Stream(ctx, name)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, jetstream.ErrStreamNotFound) && create:
		_, err = js.CreateStream(ctx, jetstream.StreamConfig{
			Name:     name,
			Subjects: subjects,
			Storage:  jetstream.FileStorage,
		})
		if err != nil {
			return fmt.Errorf("create stream %s: %w", name, err)
		}
		return nil
	case errors.Is(err, jetstream.ErrStreamNotFound):
		return fmt.Errorf("stream %s does not exist (-create-stream creates it)", name)
	case errors.Is(err, nats.ErrNoResponders), errors.Is(err, jetstream.ErrJetStreamNotEnabled):
		return fmt.Errorf("stream %s: the broker answers no JetStream API requests (is JetStream enabled?): %w", name, err)
	default:
		return fmt.Errorf("stream %s: %w", name, err)
	}
}

func (c *natsClient) PublishStored(subject string, data []byte) (Ack, error) {
	js, err := c.jetStream()
	if err != nil {
		return nil, err
	}
	f, err := js.PublishAsync(subject, data)
	if err != nil {
		return nil, err
	}
	return natsAck{f}, nil
}

type natsAck struct{ f jetstream.PubAckFuture }

func (a natsAck) Wait(ctx context.Context) error {
	select {
	case <-a.f.Ok():
		return nil
	case err := <-a.f.Err():
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *natsClient) Consume(ctx context.Context, stream, consumer string, batch int, h func([]byte) bool) (Subscription, error) {
	js, err := c.jetStream()
	if err != nil {
		return nil, err
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, stream, jetstream.ConsumerConfig{
		Durable:   consumer,
		AckPolicy: jetstream.AckExplicitPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("consumer %s on stream %s: %w", consumer, stream, err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		if h(m.Data()) {
			m.Ack()
		}
	}, jetstream.PullMaxMessages(batch))
	if err != nil {
		return nil, err
	}
	return consumeSub{cc}, nil
}

type consumeSub struct{ cc jetstream.ConsumeContext }

func (s consumeSub) Unsubscribe() error {
	s.cc.Stop()
	return nil
}
