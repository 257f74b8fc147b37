package main

// The AMQP 0-9-1 client of the load tool is our own, on the lean
// clients' transport (wire.go), not amqp091-go. amqp091-go writes and
// flushes every publish and every ack with a system call of its own, and
// hands every delivery through two goroutines and a channel as a Delivery
// it allocates; on a two-core machine shared with the broker, the tool
// then spends more CPU per message than the broker it measures. Here a
// connection is one channel on an epoll loop: publishers append their
// frames to the connection's buffer and the loop writes them together;
// deliveries are decoded in place and acknowledged in one batch per read.
// The measurement behind the choice is in BenchmarkAMQPClient
// (amqp_test.go) and the README.
//
// Each Client is one connection with one channel (1). Publishes go to
// -exchange with the subject as routing key; a subscription is a queue
// bound to that exchange with the filter as binding key (a server-named
// exclusive queue per subscriber, or the shared queue -queue for
// competing consumers) and a basic.consume on it.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

const (
	amqpChannel = 1
	// amqpHighWater is how many bytes a publisher may queue on its
	// connection before it waits for the socket.
	amqpHighWater = 256 << 10
	// amqpDirectReplyTo is RabbitMQ's direct reply-to pseudo-queue.
	amqpDirectReplyTo = "amq.rabbitmq.reply-to"
)

var errAMQPClosed = errors.New("amqp: connection closed")

// amqpAddr is a parsed amqp:// URL.
type amqpAddr struct {
	hostPort, user, pass, vhost string
}

// parseAMQPURL reads amqp://user:pass@host:port/vhost, or host:port; the
// port defaults to 5672, the user to guest/guest, the vhost to "/".
func parseAMQPURL(raw string) (amqpAddr, error) {
	a := amqpAddr{user: "guest", pass: "guest", vhost: "/"}
	if !strings.Contains(raw, "://") {
		raw = "amqp://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return a, err
	}
	if u.Scheme != "amqp" {
		return a, fmt.Errorf("scheme %q: the load tool speaks plain amqp://", u.Scheme)
	}
	a.hostPort = u.Host
	if _, _, err := net.SplitHostPort(a.hostPort); err != nil {
		a.hostPort = net.JoinHostPort(u.Host, "5672")
	}
	if u.User != nil {
		a.user = u.User.Username()
		a.pass, _ = u.User.Password()
	}
	if p := strings.TrimPrefix(u.Path, "/"); p != "" {
		a.vhost = p
	}
	return a, nil
}

// amqpSub is one consumer of the connection's channel.
type amqpSub struct {
	tag   string
	noAck bool
	// h handles one delivery; subject and reply are valid only during
	// the call. It returns whether to acknowledge.
	h func(subject, reply string, data []byte) bool
}

// amqpReply is the answer to a synchronous method.
type amqpReply struct {
	queue string
	count uint32
}

// amqpIn is the delivery being assembled by the reading goroutine: a
// basic.deliver (or basic.return), its content header, its body frames.
type amqpIn struct {
	want    byte     // 0, amqpFrameHeader or amqpFrameBody
	sub     *amqpSub // nil: a returned message, dropped
	tag     uint64
	rk      []byte
	replyTo []byte
	corr    []byte
	size    uint64
	body    []byte // a body in more than one frame
	acks    []byte // ack frames of this read, queued together at its end
}

// amqpClient is one AMQP connection: the Client of -proto amqp.
type amqpClient struct {
	wireConn // mu guards the fields below it too

	opts     DialOptions
	addr     amqpAddr
	id       string
	exchange string
	mode     byte // delivery mode of publishes: 1 transient, 2 persistent

	// The reading goroutine's own.
	in       amqpIn
	maxIn    int  // largest frame accepted
	open     bool // the handshake is done
	lastRead atomic.Int64

	ready chan error // the handshake's outcome

	// Set during the handshake, read after it.
	frameMax  int
	heartbeat time.Duration

	// Synchronous methods, one at a time.
	rpcMu   sync.Mutex
	rpcWant uint32 // under mu: the reply awaited
	rpcCh   chan amqpReply

	// Publisher confirms.
	confirming bool
	pubSeq     uint64
	unconf     []uint64 // sequence numbers awaiting their confirm, ascending from unconfHead
	unconfHead int
	nacked     map[uint64]bool
	window     int
	confirmed  chan struct{} // poked for the stored-ack waiter
	timer      *time.Timer

	subs    atomic.Pointer[[]*amqpSub] // copy on write: read for every delivery
	nextTag int
	qosSet  bool

	// RPC requester.
	reqMu   sync.Mutex
	replyTo string
	corr    uint64
	want    string      // under mu: the correlation id awaited
	replyCh chan []byte // the answer to want
}

var (
	_ StreamClient = (*amqpClient)(nil)
	_ loopConn     = (*amqpClient)(nil)
	_ replier      = (*amqpClient)(nil)
)

var amqpClientSeq atomic.Uint64

func dialAMQP(ctx context.Context, rawURL string, o DialOptions) (Client, error) {
	addr, err := parseAMQPURL(rawURL)
	if err != nil {
		return nil, err
	}
	c := &amqpClient{
		opts:      o,
		addr:      addr,
		id:        fmt.Sprintf("amqp %d", amqpClientSeq.Add(1)),
		exchange:  o.Exchange,
		mode:      1,
		maxIn:     amqpFrameMax,
		frameMax:  amqpFrameMax,
		ready:     make(chan error, 1),
		rpcCh:     make(chan amqpReply, 1),
		window:    max(1, o.Window),
		confirmed: make(chan struct{}, 1),
		replyCh:   make(chan []byte, 1),
	}
	if o.Name != "" {
		c.id = o.Name
	}
	if o.Durable {
		c.mode = 2
	}
	c.initWire(c)
	c.lastRead.Store(time.Now().UnixNano())
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr.hostPort)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", addr.hostPort, err)
	}
	if err := c.attach(nc); err != nil {
		return nil, fmt.Errorf("connect %s: %w", addr.hostPort, err)
	}
	c.mu.Lock()
	c.queueLocked(amqpProtocolHeader)
	c.mu.Unlock()
	select {
	case err = <-c.ready:
	case <-ctx.Done():
		err = ctx.Err()
	case <-c.done:
		err = c.cause()
	}
	if err == nil && c.exchange != "" && !strings.HasPrefix(c.exchange, "amq.") {
		// A named exchange is a durable topic exchange, made if missing.
		err = c.declareExchange(c.exchange)
	}
	if err != nil {
		c.shutdown()
		<-c.done
		return nil, fmt.Errorf("connect %s: %w", addr.hostPort, err)
	}
	return c, nil
}

// cause is why the connection ended.
func (c *amqpClient) cause() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		return errAMQPClosed
	}
	return c.err
}

// failLocked ends the connection with err, once, and wakes every waiter.
// c.mu is held.
func (c *amqpClient) failLocked(err error) {
	if c.err != nil {
		return
	}
	if c.closing {
		err = errAMQPClosed
	} else if c.opts.OnAsyncError != nil && c.open {
		go c.opts.OnAsyncError(fmt.Errorf("amqp %s: connection lost: %w", c.id, err))
	}
	c.err = err
	select {
	case c.ready <- err:
	default:
	}
	c.poke()
	select {
	case c.confirmed <- struct{}{}:
	default:
	}
}

// input decodes the frames at the start of b and acts on them. It runs on
// the goroutine that reads the socket.
func (c *amqpClient) input(b []byte, s *scratch) (int, error) {
	c.lastRead.Store(time.Now().UnixNano())
	if !c.open && len(b) >= 4 && string(b[:4]) == "AMQP" {
		// A server that does not speak 0-9-1 answers with the header it does.
		return 0, fmt.Errorf("the server refused AMQP 0-9-1 (it offers %q)", b[:min(len(b), 8)])
	}
	n := 0
	var err error
	for n < len(b) {
		k, ferr := decodeAMQPFrame(b[n:], c.maxIn, &s.amqpFrame)
		if errors.Is(ferr, errAMQPIncomplete) {
			break
		}
		if ferr != nil {
			err = fmt.Errorf("from broker: %w", ferr)
			break
		}
		if err = c.frame(&s.amqpFrame, s); err != nil {
			break
		}
		n += k
	}
	if len(c.in.acks) > 0 {
		c.mu.Lock()
		c.queueLocked(c.in.acks)
		c.mu.Unlock()
		c.in.acks = c.in.acks[:0]
	}
	return n, err
}

func (c *amqpClient) frame(f *amqpFrame, s *scratch) error {
	switch f.Type {
	case amqpFrameHeartbeat:
		return nil
	case amqpFrameMethod:
		if c.in.want != 0 {
			return errors.New("a method frame inside a message's content")
		}
		m := &s.amqpMethod
		if err := decodeAMQPMethod(f.Payload, m); err != nil {
			return err
		}
		return c.method(f.Channel, m)
	case amqpFrameHeader:
		if c.in.want != amqpFrameHeader {
			return errors.New("a content header without its method")
		}
		h := &s.amqpContent
		if err := decodeAMQPContent(f.Payload, h); err != nil {
			return err
		}
		c.in.size = h.BodySize
		c.in.replyTo = append(c.in.replyTo[:0], h.ReplyTo...)
		c.in.corr = append(c.in.corr[:0], h.CorrelationID...)
		c.in.body = c.in.body[:0]
		c.in.want = amqpFrameBody
		if h.BodySize == 0 {
			return c.deliver(nil)
		}
		return nil
	case amqpFrameBody:
		if c.in.want != amqpFrameBody {
			return errors.New("a body frame without its header")
		}
		p := f.Payload
		if len(c.in.body) == 0 && uint64(len(p)) == c.in.size {
			return c.deliver(p) // the usual case: the body in one frame, not copied
		}
		if uint64(len(c.in.body)+len(p)) > c.in.size {
			return errors.New("a body longer than its content header says")
		}
		c.in.body = append(c.in.body, p...)
		if uint64(len(c.in.body)) == c.in.size {
			err := c.deliver(c.in.body)
			if cap(c.in.body) > wireKeepBuffer {
				c.in.body = nil
			}
			return err
		}
		return nil
	default:
		return fmt.Errorf("frame of unknown type %d", f.Type)
	}
}

// method acts on a method frame from the server.
func (c *amqpClient) method(ch uint16, m *amqpMethod) error {
	switch m.ID {
	case amqpConnStart:
		if !containsWord(string(m.Mechanisms), "PLAIN") {
			return fmt.Errorf("the server offers no PLAIN authentication (%q)", m.Mechanisms)
		}
		c.send(appendStartOk(nil, c.opts.Name, c.addr.user, c.addr.pass))
	case amqpConnSecure:
		return errors.New("the server asks for a SASL challenge, which PLAIN does not have")
	case amqpConnTune:
		fm := uint32(amqpFrameMax)
		if m.FrameMax != 0 && m.FrameMax < fm {
			fm = max(m.FrameMax, amqpMinFrameMax)
		}
		hb := m.Heartbeat
		if want := uint16(c.opts.KeepAlive / time.Second); want > 0 && (hb == 0 || want < hb) {
			hb = want
		}
		c.mu.Lock()
		c.frameMax = int(fm)
		c.heartbeat = time.Duration(hb) * time.Second
		c.mu.Unlock()
		c.maxIn = int(fm)
		chMax := m.ChannelMax
		if chMax == 0 || chMax > 1 {
			chMax = 1
		}
		c.send(appendConnOpen(appendTuneOk(nil, chMax, fm, hb), c.addr.vhost))
	case amqpConnOpenOk:
		c.send(appendChanOpen(nil, amqpChannel))
	case amqpChanOpenOk:
		if c.opts.Confirm {
			c.send(appendConfirmSelect(nil, amqpChannel))
			return nil
		}
		c.handshakeDone()
	case amqpConfSelectOk:
		c.mu.Lock()
		c.confirming = true
		c.mu.Unlock()
		if !c.open {
			c.handshakeDone()
			return nil
		}
		return c.reply(m)
	case amqpConnClose:
		c.send(appendEmptyMethod(nil, 0, amqpConnCloseOk))
		return fmt.Errorf("closed by the broker: %d %s", m.ReplyCode, m.ReplyText)
	case amqpConnCloseOk:
		return errAMQPClosed
	case amqpChanClose:
		c.send(appendEmptyMethod(nil, ch, amqpChanCloseOk))
		return fmt.Errorf("channel closed by the broker: %d %s (after method %d.%d)", m.ReplyCode, m.ReplyText, m.FailClass, m.FailMethod)
	case amqpChanFlow:
		c.send(appendFlowOk(nil, ch, m.Active))
	case amqpConnBlocked, amqpConnUnblock:
		// Not asked for (no connection.blocked capability); a broker that
		// sends them anyway stops reading, which the high water shows.
	case amqpBDeliver:
		subs := c.subs.Load()
		c.in.sub = nil
		if subs != nil {
			for _, s := range *subs {
				if string(m.ConsumerTag) == s.tag {
					c.in.sub = s
					break
				}
			}
		}
		if c.in.sub == nil {
			return fmt.Errorf("a delivery for consumer %q, which this connection does not have", m.ConsumerTag)
		}
		c.in.tag = m.DeliveryTag
		c.in.rk = append(c.in.rk[:0], m.RoutingKey...)
		c.in.want = amqpFrameHeader
	case amqpBReturn:
		c.in.sub = nil
		c.in.want = amqpFrameHeader
	case amqpBAck, amqpBNack:
		return c.confirm(m.DeliveryTag, m.Multiple, m.ID == amqpBNack)
	case amqpBCancel:
		return fmt.Errorf("the broker cancelled consumer %q", m.ConsumerTag)
	default:
		return c.reply(m)
	}
	return nil
}

// send queues frames from the reading goroutine.
func (c *amqpClient) send(b []byte) {
	c.mu.Lock()
	c.queueLocked(b)
	c.mu.Unlock()
}

func (c *amqpClient) handshakeDone() {
	c.open = true
	select {
	case c.ready <- nil:
	default:
	}
}

// reply hands the answer of a synchronous method to its caller.
func (c *amqpClient) reply(m *amqpMethod) error {
	c.mu.Lock()
	want := c.rpcWant
	c.rpcWant = 0
	c.mu.Unlock()
	if want == 0 || m.ID != want {
		return fmt.Errorf("unexpected method %d.%d from the broker", m.ID>>16, m.ID&0xffff)
	}
	c.rpcCh <- amqpReply{queue: string(m.Queue), count: m.MessageCount}
	return nil
}

// deliver hands a complete message to its consumer and queues its ack.
func (c *amqpClient) deliver(body []byte) error {
	in := &c.in
	in.want = 0
	s := in.sub
	if s == nil {
		return nil // a basic.return: the tool publishes nothing mandatory
	}
	if s.h == nil { // the RPC reply consumer
		c.mu.Lock()
		match := c.want != "" && string(in.corr) == c.want
		if match {
			c.want = ""
		}
		c.mu.Unlock()
		if match {
			c.replyCh <- append([]byte(nil), body...)
		}
		return nil
	}
	reply := ""
	if len(in.replyTo) > 0 {
		reply = string(in.replyTo) + "\x00" + string(in.corr)
	}
	if s.h(unsafeString(in.rk), reply, body) && !s.noAck {
		in.acks = appendAck(in.acks, amqpChannel, in.tag, false)
	}
	return nil
}

// confirm records a publisher confirm (or nack) of tag, or of every
// publish up to tag when multiple.
func (c *amqpClient) confirm(tag uint64, multiple, nack bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	live := c.unconf[c.unconfHead:]
	if !c.confirming || len(live) == 0 || tag < live[0] || tag > c.pubSeq {
		return fmt.Errorf("a confirm of publish %d, which is not awaited", tag)
	}
	var done []uint64
	if multiple {
		k := sort.Search(len(live), func(i int) bool { return live[i] > tag })
		done = live[:k]
		c.unconfHead += k
	} else {
		k := sort.Search(len(live), func(i int) bool { return live[i] >= tag })
		if k == len(live) || live[k] != tag {
			return fmt.Errorf("a confirm of publish %d, which is not awaited", tag)
		}
		done = live[k : k+1]
		if k == 0 {
			c.unconfHead++
		} else {
			v := live[k]
			copy(live[k:], live[k+1:])
			c.unconf = c.unconf[:len(c.unconf)-1]
			done = []uint64{v}
		}
	}
	if nack {
		if c.nacked == nil {
			c.nacked = make(map[uint64]bool)
		}
		for _, s := range done {
			c.nacked[s] = true
		}
		if c.opts.OnAsyncError != nil {
			go c.opts.OnAsyncError(fmt.Errorf("amqp %s: the broker refused %d publishes (basic.nack)", c.id, len(done)))
		}
	}
	if c.unconfHead == len(c.unconf) {
		c.unconf, c.unconfHead = c.unconf[:0], 0
	}
	c.poke()
	select {
	case c.confirmed <- struct{}{}:
	default:
	}
	return nil
}

// awaitingLocked reports whether publish seq still awaits its confirm.
func (c *amqpClient) awaitingLocked(seq uint64) bool {
	live := c.unconf[c.unconfHead:]
	k := sort.Search(len(live), func(i int) bool { return live[i] >= seq })
	return k < len(live) && live[k] == seq
}

// tick sends a heartbeat when the connection has been quiet for half the
// negotiated interval, and gives up on a broker silent for two (spec
// 4.2.7).
func (c *amqpClient) tick(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil || c.heartbeat == 0 {
		return
	}
	if now.Sub(time.Unix(0, c.lastRead.Load())) > 2*c.heartbeat {
		c.failLocked(fmt.Errorf("no frame from the broker for two heartbeat intervals (%v)", c.heartbeat))
		c.shutdown()
		return
	}
	if now.Sub(c.lastWrite) >= c.heartbeat/2 {
		c.queueLocked(appendAMQPHeartbeat(nil))
	}
}

// call sends a synchronous method and waits for its reply, want.
func (c *amqpClient) call(frame []byte, want uint32) (amqpReply, error) {
	c.rpcMu.Lock()
	defer c.rpcMu.Unlock()
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return amqpReply{}, err
	}
	c.rpcWant = want
	c.queueLocked(frame)
	c.mu.Unlock()
	t := time.NewTimer(c.opts.Timeout)
	defer t.Stop()
	select {
	case r := <-c.rpcCh:
		return r, nil
	case <-c.done:
		return amqpReply{}, c.cause()
	case <-t.C:
		// A reply that comes later would answer the next call: the
		// connection is of no more use.
		c.mu.Lock()
		c.failLocked(fmt.Errorf("no reply to method %d.%d within %v", want>>16, want&0xffff, c.opts.Timeout))
		c.mu.Unlock()
		c.shutdown()
		return amqpReply{}, c.cause()
	}
}

func (c *amqpClient) declareExchange(name string) error {
	if len(name) > 255 {
		return fmt.Errorf("exchange name of %d bytes (at most 255)", len(name))
	}
	dst, at := amqpMethodStart(nil, amqpChannel, amqpExDeclare)
	dst = append(dst, 0, 0)
	dst = appendShort(dst, name)
	dst = appendShort(dst, "topic")
	dst = appendBits(dst, false, true, false, false, false) // durable
	dst = append(dst, 0, 0, 0, 0)
	if _, err := c.call(amqpFrameFinish(dst, at), amqpExDeclareOk); err != nil {
		return fmt.Errorf("declare exchange %s: %w", name, err)
	}
	return nil
}

// waitSpace returns with c.mu held once a publish may be queued, or with
// an error (and c.mu free) when the connection ended or -timeout passed.
// A publish from the reading goroutine (a reply) never waits: only that
// goroutine could make the room.
func (c *amqpClient) waitSpace(needSlot bool) error {
	var deadline time.Time
	for {
		c.mu.Lock()
		if c.err != nil {
			err := c.err
			c.mu.Unlock()
			return err
		}
		if c.inLoop || (len(c.out) < amqpHighWater && (!needSlot || len(c.unconf)-c.unconfHead < c.window)) {
			return nil
		}
		c.mu.Unlock()
		if deadline.IsZero() {
			deadline = time.Now().Add(c.opts.Timeout)
		}
		wait := time.Until(deadline)
		if wait <= 0 {
			return fmt.Errorf("amqp %s: the broker took nothing (or confirmed nothing) for %v", c.id, c.opts.Timeout)
		}
		if c.timer == nil {
			c.timer = time.NewTimer(wait)
		} else {
			c.timer.Reset(wait)
		}
		select {
		case <-c.space:
			c.timer.Stop()
		case <-c.timer.C:
		}
	}
}

// publishLocked queues one publish; in confirm mode it is awaited under
// the next sequence number, which it returns. c.mu is held.
func (c *amqpClient) publishLocked(p *amqpPublishing, data []byte) uint64 {
	var seq uint64
	if c.confirming {
		c.pubSeq++
		seq = c.pubSeq
		if len(c.unconf) == cap(c.unconf) && c.unconfHead > 0 {
			n := copy(c.unconf, c.unconf[c.unconfHead:])
			c.unconf, c.unconfHead = c.unconf[:n], 0
		}
		c.unconf = append(c.unconf, seq)
	}
	wasEmpty := len(c.out) == 0
	c.out = appendPublish(c.out, amqpChannel, c.frameMax, p, data)
	c.queuedLocked(wasEmpty)
	return seq
}

// Publish sends data to -exchange with subject as routing key. With
// -confirm it waits while -inflight publishes await their confirm; always
// while the connection has amqpHighWater bytes unwritten.
func (c *amqpClient) Publish(subject string, data []byte) error {
	if err := c.waitSpace(c.opts.Confirm); err != nil {
		return err
	}
	c.publishLocked(&amqpPublishing{Exchange: c.exchange, RoutingKey: subject, DeliveryMode: c.mode}, data)
	c.mu.Unlock()
	return nil
}

// Reply answers a request delivered with reply: its reply-to address and
// correlation id, through the default exchange as RabbitMQ's RPC
// tutorial does.
func (c *amqpClient) Reply(reply string, data []byte) error {
	to, corr, ok := strings.Cut(reply, "\x00")
	if !ok || to == "" {
		return fmt.Errorf("reply address %q is not an AMQP reply-to", reply)
	}
	if err := c.waitSpace(false); err != nil {
		return err
	}
	c.publishLocked(&amqpPublishing{RoutingKey: to, DeliveryMode: 1, CorrelationID: corr}, data)
	c.mu.Unlock()
	return nil
}

// Subscribe binds a queue to -exchange with filter as binding key and
// consumes from it: a server-named exclusive queue of its own, or with a
// queue name the shared queue of that name, whose consumers compete for
// its messages. With the default exchange the queue is named filter. A
// shared queue is purged when declared, so that what an earlier run left
// in it is not counted.
func (c *amqpClient) Subscribe(filter, queue string, h Handler) (Subscription, error) {
	decl := amqpQueueDecl{Name: queue, Durable: queue != "" && c.opts.Durable, Exclusive: queue == "", AutoDelete: queue == ""}
	if c.exchange == "" {
		decl.Name = filter
	}
	r, err := c.call(appendQueueDeclare(nil, amqpChannel, decl), amqpQDeclareOk)
	if err != nil {
		return nil, fmt.Errorf("declare queue %q: %w", decl.Name, err)
	}
	name := r.queue
	if c.exchange != "" {
		if _, err := c.call(appendQueueBind(nil, amqpChannel, name, c.exchange, filter), amqpQBindOk); err != nil {
			return nil, fmt.Errorf("bind queue %s to %s with %q: %w", name, c.exchange, filter, err)
		}
	}
	if !decl.Exclusive && r.count > 0 {
		if _, err := c.call(appendQueuePurge(nil, amqpChannel, name), amqpQPurgeOk); err != nil {
			return nil, fmt.Errorf("purge queue %s: %w", name, err)
		}
	}
	return c.consume(name, c.opts.AutoAck, c.opts.Prefetch, func(subject, reply string, data []byte) bool {
		h(subject, reply, data)
		return true
	})
}

// consume starts a consumer on queue; h nil is the RPC reply consumer.
func (c *amqpClient) consume(queue string, noAck bool, prefetch int, h func(subject, reply string, data []byte) bool) (Subscription, error) {
	if !noAck && prefetch > 0 && !c.qosSet {
		if _, err := c.call(appendQos(nil, amqpChannel, uint16(min(prefetch, 65535))), amqpBQosOk); err != nil {
			return nil, fmt.Errorf("basic.qos %d: %w", prefetch, err)
		}
		c.qosSet = true
	}
	c.mu.Lock()
	c.nextTag++
	s := &amqpSub{tag: "ledge-bench-" + strconv.Itoa(c.nextTag), noAck: noAck, h: h}
	old := c.subs.Load()
	var subs []*amqpSub
	if old != nil {
		subs = append(subs, *old...)
	}
	subs = append(subs, s)
	// Before the consume goes out: its first deliveries may be read
	// before this goroutine hears consume-ok.
	c.subs.Store(&subs)
	c.mu.Unlock()
	if _, err := c.call(appendConsume(nil, amqpChannel, queue, s.tag, noAck), amqpBConsumeOk); err != nil {
		return nil, fmt.Errorf("consume from %s: %w", queue, err)
	}
	return &amqpSubscription{c: c, tag: s.tag}, nil
}

type amqpSubscription struct {
	c   *amqpClient
	tag string
}

// Unsubscribe cancels the consumer. Messages it had and did not
// acknowledge go back to the queue when the connection closes.
func (s *amqpSubscription) Unsubscribe() error {
	c := s.c
	if !c.Connected() {
		return nil // gone with its connection
	}
	if _, err := c.call(appendCancel(nil, amqpChannel, s.tag), amqpBCancelOk); err != nil {
		if !c.Connected() {
			return nil
		}
		return fmt.Errorf("cancel consumer %s: %w", s.tag, err)
	}
	return nil
}

// Request publishes data to subject with a reply-to address and a
// correlation id and waits for the answer: on RabbitMQ's direct reply-to
// pseudo-queue, or with -reply-to queue on an exclusive queue of the
// requester's own.
func (c *amqpClient) Request(ctx context.Context, subject string, data []byte) ([]byte, error) {
	c.reqMu.Lock()
	defer c.reqMu.Unlock()
	if c.replyTo == "" {
		to := amqpDirectReplyTo
		if !c.opts.DirectReplyTo {
			r, err := c.call(appendQueueDeclare(nil, amqpChannel, amqpQueueDecl{Exclusive: true, AutoDelete: true}), amqpQDeclareOk)
			if err != nil {
				return nil, fmt.Errorf("declare the reply queue: %w", err)
			}
			to = r.queue
		}
		if _, err := c.consume(to, true, 0, nil); err != nil {
			return nil, err
		}
		c.replyTo = to
	}
	c.corr++
	corr := strconv.FormatUint(c.corr, 10)
	for len(c.replyCh) > 0 { // an answer that came after its request timed out
		<-c.replyCh
	}
	if err := c.waitSpace(false); err != nil {
		return nil, err
	}
	c.want = corr
	c.publishLocked(&amqpPublishing{Exchange: c.exchange, RoutingKey: subject, DeliveryMode: c.mode,
		CorrelationID: corr, ReplyTo: c.replyTo}, data)
	c.mu.Unlock()
	select {
	case b := <-c.replyCh:
		return b, nil
	case <-ctx.Done():
		c.mu.Lock()
		c.want = ""
		c.mu.Unlock()
		return nil, ctx.Err()
	case <-c.done:
		return nil, c.cause()
	}
}

// Flush waits until every confirming publish is confirmed, then for the
// answer to a passive exchange.declare: the broker handles a channel's
// methods in order, so by then it has routed everything sent before.
func (c *amqpClient) Flush(ctx context.Context) error {
	for {
		c.mu.Lock()
		err, left := c.err, len(c.unconf)-c.unconfHead
		c.mu.Unlock()
		if err != nil {
			return err
		}
		if left == 0 {
			break
		}
		select {
		case <-c.space:
		case <-time.After(10 * time.Millisecond):
			// Another waiter may have taken the poke.
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	ex := c.exchange
	if ex == "" {
		ex = "amq.direct" // the default exchange cannot be declared, even passively
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.call(appendExchangeCheck(nil, amqpChannel, ex), amqpExDeclareOk)
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// EnsureStream declares the durable queue name (passively unless create)
// and binds it to -exchange with each of subjects.
func (c *amqpClient) EnsureStream(ctx context.Context, name string, subjects []string, create bool) error {
	if c.exchange == "" {
		return errors.New("the durable scenarios bind their queue to an exchange: give -exchange amq.topic or another")
	}
	if _, err := c.call(appendQueueDeclare(nil, amqpChannel, amqpQueueDecl{Name: name, Passive: !create, Durable: true}), amqpQDeclareOk); err != nil {
		if !create {
			return fmt.Errorf("queue %s: %w (-create-stream declares it)", name, err)
		}
		return fmt.Errorf("declare queue %s: %w", name, err)
	}
	for _, s := range subjects {
		if _, err := c.call(appendQueueBind(nil, amqpChannel, name, c.exchange, s), amqpQBindOk); err != nil {
			return fmt.Errorf("bind queue %s to %s with %q: %w", name, c.exchange, s, err)
		}
	}
	return nil
}

// PublishStored publishes a persistent message with a publisher confirm
// (the channel is put into confirm mode on first use); the Ack completes
// with the broker's basic.ack, or fails with its basic.nack.
func (c *amqpClient) PublishStored(subject string, data []byte) (Ack, error) {
	c.mu.Lock()
	confirming := c.confirming
	c.mu.Unlock()
	if !confirming {
		if _, err := c.call(appendConfirmSelect(nil, amqpChannel), amqpConfSelectOk); err != nil {
			return nil, fmt.Errorf("confirm.select: %w", err)
		}
	}
	if err := c.waitSpace(false); err != nil {
		return nil, err
	}
	seq := c.publishLocked(&amqpPublishing{Exchange: c.exchange, RoutingKey: subject, DeliveryMode: 2}, data)
	c.mu.Unlock()
	return amqpAck{c, seq}, nil
}

type amqpAck struct {
	c   *amqpClient
	seq uint64
}

// Wait returns when the publish is confirmed. One goroutine waits for a
// client's acks at a time (the runner's), in publishing order.
func (a amqpAck) Wait(ctx context.Context) error {
	c := a.c
	for {
		c.mu.Lock()
		awaiting, err := c.awaitingLocked(a.seq), c.err
		nacked := c.nacked[a.seq]
		if nacked {
			delete(c.nacked, a.seq)
		}
		c.mu.Unlock()
		switch {
		case nacked:
			return errors.New("refused by the broker (basic.nack)")
		case !awaiting:
			return nil
		case err != nil:
			return err
		}
		select {
		case <-c.confirmed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Consume consumes from the durable queue stream with a prefetch of
// batch, acknowledging each message its handler accepts; the others go
// back to the queue when the connection closes.
func (c *amqpClient) Consume(ctx context.Context, stream, consumer string, batch int, h func([]byte) bool) (Subscription, error) {
	return c.consume(stream, false, batch, func(_, _ string, data []byte) bool { return h(data) })
}

// Connected reports whether the connection is still up.
func (c *amqpClient) Connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err == nil
}

// Close sends connection.close and waits a moment for close-ok.
func (c *amqpClient) Close() {
	c.mu.Lock()
	if c.err == nil && !c.closing {
		c.closing = true
		c.queueLocked(appendClose(nil, 0, 200, "ledge-bench done"))
	}
	c.mu.Unlock()
	t := time.NewTimer(time.Second)
	defer t.Stop()
	select {
	case <-c.done:
		return
	case <-t.C:
	}
	c.shutdown()
	<-c.done
}

// containsWord reports whether the space-separated list has w.
func containsWord(list, w string) bool {
	for _, f := range strings.Fields(list) {
		if f == w {
			return true
		}
	}
	return false
}

// unsafeString views b as a string for a handler that does not keep it.
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
