package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3"
	stompframe "github.com/go-stomp/stomp/v3/frame"

	"github.com/ledgemq/ledge/stompgw"
)

// The same Client on go-stomp, for the measurement that chose the lean
// client (BenchmarkSTOMPClient) and as a cross-check that the lean
// client's frames are what a real client sends and reads. Test-only: the
// tool does not ship it.
func init() {
	p := protocols["stomp"]
	p.Name, p.Dial = "gostomp", dialGoStomp
	protocols["gostomp"] = p
}

type goStompClient struct {
	o    DialOptions
	conn *stomp.Conn

	reqOnce sync.Once
	reqErr  error
	replies *stomp.Subscription
	corr    uint64
	mu      sync.Mutex // one request at a time
}

func dialGoStomp(ctx context.Context, rawURL string, o DialOptions) (Client, error) {
	addr, err := parseSTOMPURL(rawURL)
	if err != nil {
		return nil, err
	}
	conn, err := stomp.DialWithContext(ctx, "tcp", addr.hostPort, stomp.ConnOpt.Host(addr.host),
		stomp.ConnOpt.Login(addr.login, addr.passcode), stomp.ConnOpt.HeartBeat(o.KeepAlive, o.KeepAlive),
		stomp.ConnOpt.RcvReceiptTimeout(o.Timeout), stomp.ConnOpt.UnsubscribeReceiptTimeout(time.Second),
		stomp.ConnOpt.Logger(quietGoStomp{}))
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", addr.hostPort, err)
	}
	return &goStompClient{o: o, conn: conn}, nil
}

func (c *goStompClient) sendOpts(extra ...func(*stompframe.Frame) error) []func(*stompframe.Frame) error {
	if c.o.Durable {
		extra = append(extra, stomp.SendOpt.Header("persistent", "true"))
	}
	if c.o.Confirm {
		// go-stomp waits for each receipt before it returns: a window
		// of one.
		extra = append(extra, stomp.SendOpt.Receipt)
	}
	return extra
}

// Publish copies data: go-stomp's Send returns before its writer
// goroutine has written the frame, which keeps the body.
func (c *goStompClient) Publish(subject string, data []byte) error {
	return c.conn.Send(subject, "", bytes.Clone(data), c.sendOpts()...)
}

func (c *goStompClient) Reply(reply string, data []byte) error {
	to, corr, _ := strings.Cut(reply, "\x00")
	return c.conn.Send(to, "", bytes.Clone(data), stomp.SendOpt.Header("correlation-id", corr))
}

func (c *goStompClient) Subscribe(filter, _ string, h Handler) (Subscription, error) {
	mode := map[string]stomp.AckMode{stompAckAuto: stomp.AckAuto, stompAckClient: stomp.AckClient, stompAckIndividual: stomp.AckClientIndividual}[c.o.Ack]
	var opts []func(*stompframe.Frame) error
	if c.o.Prefetch > 0 && mode != stomp.AckAuto {
		opts = append(opts, stomp.SubscribeOpt.Header("prefetch-count", strconv.Itoa(c.o.Prefetch)))
	}
	sub, err := c.conn.Subscribe(filter, mode, opts...)
	if err != nil {
		return nil, err
	}
	// Acks go from a goroutine of their own: go-stomp's process loop
	// blocks handing a MESSAGE to a subscription whose 16-message channel
	// is full, so a reader that acks itself (each ACK waiting for that
	// loop) deadlocks with it once 16 are queued.
	acks := make(chan *stomp.Message, 1<<16)
	go func() {
		for m := range acks {
			c.conn.Ack(m)
		}
	}()
	go func() {
		defer close(acks)
		for m := range sub.C {
			if m.Err != nil {
				if c.o.OnAsyncError != nil {
					c.o.OnAsyncError(m.Err)
				}
				return
			}
			reply := ""
			if r := m.Header.Get("reply-to"); r != "" {
				reply = r + "\x00" + m.Header.Get("correlation-id")
			}
			h(m.Destination, reply, m.Body)
			if mode != stomp.AckAuto {
				acks <- m
			}
		}
	}()
	return goStompSub{sub}, nil
}

type goStompSub struct{ s *stomp.Subscription }

// Unsubscribe ends the subscription. Its error is not reported: go-stomp
// v3.1.3 can miss the wake-up of the RECEIPT it waits for and time out
// though the receipt came (see stompgw's tests), which would count as an
// error of the run where the broker did nothing wrong.
func (s goStompSub) Unsubscribe() error {
	_ = s.s.Unsubscribe()
	return nil
}

func (c *goStompClient) Request(ctx context.Context, subject string, data []byte) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reqOnce.Do(func() {
		// go-stomp's way to a temporary queue: a subscription it does
		// not send, under the name the broker delivers replies to.
		c.replies, c.reqErr = c.conn.Subscribe(stompReplyQueue, stomp.AckAuto, stomp.SubscribeOpt.Header("reply-to", stompReplyQueue))
	})
	if c.reqErr != nil {
		return nil, c.reqErr
	}
	c.corr++
	corr := strconv.FormatUint(c.corr, 10)
	err := c.conn.Send(subject, "", bytes.Clone(data), c.sendOpts(stomp.SendOpt.Header("reply-to", stompReplyQueue),
		stomp.SendOpt.Header("correlation-id", corr))...)
	if err != nil {
		return nil, err
	}
	for {
		select {
		case m, ok := <-c.replies.C:
			if !ok || m.Err != nil {
				return nil, errors.New("the reply subscription ended")
			}
			if m.Header.Get("correlation-id") == corr {
				return m.Body, nil
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Flush sends a message with a receipt where nobody listens: go-stomp
// gives no other frame with a receipt to wait for, and the broker serves
// a connection's frames in order.
func (c *goStompClient) Flush(ctx context.Context) error {
	return c.conn.Send("/topic/ledge-bench-flush", "", nil, stomp.SendOpt.Receipt)
}

func (c *goStompClient) Close() { _ = c.conn.Disconnect() }

// quietGoStomp keeps go-stomp's log out of the test output.
type quietGoStomp struct{}

func (quietGoStomp) Debugf(string, ...interface{})   {}
func (quietGoStomp) Debug(string)                    {}
func (quietGoStomp) Infof(string, ...interface{})    {}
func (quietGoStomp) Info(string)                     {}
func (quietGoStomp) Warningf(string, ...interface{}) {}
func (quietGoStomp) Warning(string)                  {}
func (quietGoStomp) Errorf(string, ...interface{})   {}
func (quietGoStomp) Error(string)                    {}

// Both clients run the same scenarios against ledge; the cross-check.
func TestGoStompClientAgainstLedge(t *testing.T) {
	url := startSTOMPLedge(t, stompgw.Options{})
	for _, args := range [][]string{
		{"-scenario", "pubsub", "-clients", "2", "-count", "2000"},
		{"-scenario", "queue", "-pubs", "2", "-subs", "3", "-count", "3000", "-subject", "/queue/gostomp", "-durable"},
		{"-scenario", "reqrep", "-count", "200"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			res := bench(t, url, append([]string{"-proto", "gostomp"}, args...)...)
			if res.Errors != 0 || res.Receive == nil || res.Receive.Msgs != res.Publish.Msgs {
				t.Fatalf("errors %d (%s), published %+v, received %+v", res.Errors, res.FirstError, res.Publish, res.Receive)
			}
		})
	}
}

// BenchmarkSTOMPClient runs the work queue (4 publishers, 4
// subscribers of one /queue with client-individual acks and a
// prefetch-count of 100, 128-byte messages) with each client and reports
// the rate and the load tool's CPU per message. Point it at a broker of
// its own process to read the tool's CPU alone:
//
//	LEDGE_BENCH_STOMP_URL=stomp://guest:guest@127.0.0.1:26613 \
//	  flock /tmp/ledge-bench.lock go test -run '^$' -bench STOMPClient -benchtime 200000x ./cmd/ledge-bench/
func BenchmarkSTOMPClient(b *testing.B) {
	url := os.Getenv("LEDGE_BENCH_STOMP_URL")
	if url == "" {
		url = startSTOMPLedge(b, stompgw.Options{})
	}
	for _, tc := range []struct{ name, proto string }{{"lean", "stomp"}, {"gostomp", "gostomp"}} {
		for _, mode := range []struct {
			name string
			args []string
		}{
			{"transient", []string{"-max-ahead", "20000"}},
			{"persistent", []string{"-durable", "-max-ahead", "20000"}},
		} {
			b.Run(tc.name+"/"+mode.name, func(b *testing.B) {
				args := append([]string{"-proto", tc.proto, "-scenario", "queue", "-pubs", "4", "-subs", "4",
					"-subject", fmt.Sprintf("/queue/bench-clients-%s-%d", mode.name, time.Now().UnixNano()),
					"-count", fmt.Sprint(b.N), "-timeout", "30s"}, mode.args...)
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
