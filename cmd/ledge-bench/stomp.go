package main

// The STOMP client of the load tool is our own, on the lean clients'
// transport (wire.go) and ledge's STOMP frame codec (stompgw/frame, which
// decodes in place and allocates nothing), not go-stomp. go-stomp hands
// every frame through a reader goroutine, a channel and a writer
// goroutine as a *frame.Frame with a header slice it allocates, writes
// every SEND and every ACK with a system call of its own, and waits for
// each receipt before the next SEND; measured against ledge it needed
// several times the tool's CPU per message (BenchmarkSTOMPClient,
// stomp_test.go). Here publishers append SEND frames to the connection's
// buffer and the epoll loop writes them together; MESSAGE frames are
// decoded in the loop's buffer and their ACKs queued in one batch per
// read.
//
// Destinations are RabbitMQ's, which ledge serves too: -subject is the
// whole destination (/topic/bench.{n}, /queue/jobs, /exchange/x/key).
// Publishers SEND to it, with persistent:true (-durable) and a receipt
// each (-confirm, at most -inflight awaited); receivers SUBSCRIBE to it
// (or to the wildcard over all publishers' /topic destinations) with
// -ack auto, client or client-individual and a prefetch-count (-prefetch).
// Competing consumers share a /queue/NAME. Requests carry a reply-to of
// /temp-queue/ledge-bench and a correlation-id; the broker gives the
// requester the replies on the subscription of that name.

import (
	"bytes"
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

	"github.com/ledgemq/ledge/stompgw/frame"
)

const (
	// stompHighWater is how many bytes a publisher may queue on its
	// connection before it waits for the socket.
	stompHighWater = 256 << 10
	// stompReplyQueue is the temporary queue of a requester's replies.
	stompReplyQueue = "/temp-queue/ledge-bench"
	// stompMaxFrame bounds a frame from the broker: the largest -size and
	// its headers.
	stompMaxFrame = 64<<20 + 64<<10
)

// The ack modes of SUBSCRIBE.
const (
	stompAckAuto       = "auto"
	stompAckClient     = "client"
	stompAckIndividual = "client-individual"
)

var (
	errSTOMPClosed = errors.New("stomp: connection closed")
	stompLimits    = frame.Limits{MaxFrame: stompMaxFrame, MaxHeaders: 1024}
	stompClientSeq atomic.Uint64
)

// stompAddr is a parsed stomp:// URL.
type stompAddr struct {
	hostPort, login, passcode, host string
}

// parseSTOMPURL reads stomp://login:passcode@host:port/vhost, or
// host:port; the port defaults to 61613, the login to guest/guest (what
// RabbitMQ accepts from 127.0.0.1; ledge without users takes any), the
// virtual host (the host header) to "/".
func parseSTOMPURL(raw string) (stompAddr, error) {
	a := stompAddr{login: "guest", passcode: "guest", host: "/"}
	if !strings.Contains(raw, "://") {
		raw = "stomp://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return a, err
	}
	if u.Scheme != "stomp" {
		return a, fmt.Errorf("scheme %q: the load tool speaks plain stomp://", u.Scheme)
	}
	a.hostPort = u.Host
	if _, _, err := net.SplitHostPort(a.hostPort); err != nil {
		a.hostPort = net.JoinHostPort(u.Host, "61613")
	}
	if u.User != nil {
		a.login = u.User.Username()
		a.passcode, _ = u.User.Password()
	}
	if p := strings.TrimPrefix(u.Path, "/"); p != "" {
		a.host = p
	}
	return a, nil
}

// stompSub is one subscription of the connection.
type stompSub struct {
	id   string
	mode string
	// h handles one message; subject (the destination) and reply are
	// valid only during the call. nil is the requester's reply
	// subscription.
	h Handler
	// lastAck is the ack id of the latest message of a client-mode
	// subscription in this read; one cumulative ACK goes out at its end.
	// The reading goroutine's.
	lastAck []byte
}

// stompClient is one STOMP connection: the Client of -proto stomp.
type stompClient struct {
	wireConn // mu guards the fields below it too

	opts    DialOptions
	addr    stompAddr
	id      string
	ackMode string

	// The reading goroutine's own.
	connected bool
	lastRead  atomic.Int64
	// inputs counts calls of input, up at the start and the end: odd
	// while one runs. Unsubscribe waits for the one running to end, so
	// that the ACKs of what it handled go out before the UNSUBSCRIBE.
	inputs  atomic.Uint64
	acks    []byte      // ACK frames of this read, queued together at its end
	pendAck []*stompSub // client-mode subscriptions with an ACK due at the end of this read

	ready chan error // CONNECTED or the error

	// Set when CONNECTED arrives, before ready; read after it.
	version      frame.Version
	hbOut, hbIn  time.Duration // the negotiated heart-beats: what we send, what we expect
	serverHeader string

	// Receipts: every frame that asks for one gets the next number.
	nextReceipt uint64
	unrec       []uint64 // SENDs awaiting their receipt, ascending from unrecHead
	unrecHead   int
	window      int
	waiters     map[uint64]chan struct{} // other frames' receipts (SUBSCRIBE, flush, DISCONNECT)

	subs    atomic.Pointer[[]*stompSub] // copy on write: read for every MESSAGE
	nextSub int

	// The publisher's encoding of its last destination, reused.
	sendDest string
	sendHead []byte

	// Requests, one at a time.
	reqMu   sync.Mutex
	corr    uint64
	want    string      // under mu: the correlation id awaited
	replyCh chan []byte // the answer to want

	timer *time.Timer // the publishing goroutine's wait for space
	flush atomic.Uint64
}

var (
	_ Client   = (*stompClient)(nil)
	_ loopConn = (*stompClient)(nil)
	_ replier  = (*stompClient)(nil)
)

func dialSTOMP(ctx context.Context, rawURL string, o DialOptions) (Client, error) {
	addr, err := parseSTOMPURL(rawURL)
	if err != nil {
		return nil, err
	}
	c := newSTOMPClient(addr, o)
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr.hostPort)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", addr.hostPort, err)
	}
	if err := c.attach(nc); err != nil {
		return nil, fmt.Errorf("connect %s: %w", addr.hostPort, err)
	}
	c.mu.Lock()
	c.queueLocked(c.appendConnect(nil))
	c.mu.Unlock()
	select {
	case err = <-c.ready:
	case <-ctx.Done():
		err = ctx.Err()
	case <-c.done:
		err = c.cause()
	}
	if err != nil {
		c.shutdown()
		<-c.done
		return nil, fmt.Errorf("connect %s: %w", addr.hostPort, err)
	}
	return c, nil
}

// newSTOMPClient returns a client of addr not yet attached to a socket.
func newSTOMPClient(addr stompAddr, o DialOptions) *stompClient {
	c := &stompClient{
		opts:    o,
		addr:    addr,
		id:      fmt.Sprintf("stomp %d", stompClientSeq.Add(1)),
		ackMode: o.Ack,
		ready:   make(chan error, 1),
		window:  max(1, o.Window),
		waiters: make(map[uint64]chan struct{}),
		replyCh: make(chan []byte, 1),
	}
	if c.ackMode == "" {
		c.ackMode = stompAckIndividual
	}
	if o.Name != "" {
		c.id = o.Name
	}
	c.initWire(c)
	c.lastRead.Store(time.Now().UnixNano())
	return c
}

// appendConnect appends the CONNECT frame: every version the codec
// speaks (the broker picks the highest it has), the virtual host, the
// credentials and the heart-beats of -keepalive both ways. CONNECT is
// never escaped.
func (c *stompClient) appendConnect(b []byte) []byte {
	const cmd = frame.CONNECT
	b = frame.AppendCommand(b, cmd)
	b = frame.AppendHeader(b, frame.V10, cmd, "accept-version", "1.0,1.1,1.2")
	b = frame.AppendHeader(b, frame.V10, cmd, "host", c.addr.host)
	b = frame.AppendHeader(b, frame.V10, cmd, "login", c.addr.login)
	b = frame.AppendHeader(b, frame.V10, cmd, "passcode", c.addr.passcode)
	if c.opts.ClientID != "" {
		b = frame.AppendHeader(b, frame.V10, cmd, "client-id", c.opts.ClientID)
	}
	ms := c.opts.KeepAlive.Milliseconds()
	b = append(b, "heart-beat:"...)
	b = strconv.AppendInt(b, ms, 10)
	b = append(b, ',')
	b = strconv.AppendInt(b, ms, 10)
	return append(b, '\n', '\n', 0)
}

// cause is why the connection ended.
func (c *stompClient) cause() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		return errSTOMPClosed
	}
	return c.err
}

// failLocked ends the connection with err, once, and wakes every waiter.
// c.mu is held.
func (c *stompClient) failLocked(err error) {
	if c.err != nil {
		return
	}
	if c.closing {
		err = errSTOMPClosed
	} else if c.opts.OnAsyncError != nil && c.connected {
		go c.opts.OnAsyncError(fmt.Errorf("stomp %s: connection lost: %w", c.id, err))
	}
	c.err = err
	select {
	case c.ready <- err:
	default:
	}
	c.poke()
}

// input decodes the frames at the start of b and acts on them. It runs on
// the goroutine that reads the socket.
func (c *stompClient) input(b []byte, s *scratch) (int, error) {
	c.inputs.Add(1)
	defer c.inputs.Add(1)
	c.lastRead.Store(time.Now().UnixNano())
	n := 0
	var err error
	for n < len(b) {
		n += frame.SkipEOL(b[n:]) // heart-beats
		if n == len(b) {
			break
		}
		v := c.version
		if !c.connected {
			v = frame.V10 // CONNECTED is never escaped
		}
		k, ferr := frame.Decode(b[n:], v, stompLimits, &s.stomp)
		if errors.Is(ferr, frame.ErrIncomplete) {
			break
		}
		if ferr != nil {
			err = fmt.Errorf("from broker: %w", ferr)
			break
		}
		if err = c.frame(&s.stomp); err != nil {
			break
		}
		n += k
	}
	// The cumulative ACKs of client-mode subscriptions: one each for
	// what this read delivered.
	for _, sub := range c.pendAck {
		c.acks = c.appendAck(c.acks, sub, sub.lastAck)
	}
	c.pendAck = c.pendAck[:0]
	if len(c.acks) > 0 {
		c.mu.Lock()
		c.queueLocked(c.acks)
		c.mu.Unlock()
		c.acks = c.acks[:0]
		if cap(c.acks) > wireKeepBuffer {
			c.acks = nil
		}
	}
	return n, err
}

// frame acts on one frame from the broker.
func (c *stompClient) frame(f *frame.Frame) error {
	switch f.Command {
	case frame.MESSAGE:
		return c.message(f)
	case frame.RECEIPT:
		id, _ := f.Get("receipt-id")
		return c.receipt(id)
	case frame.CONNECTED:
		return c.connectedFrame(f)
	case frame.ERROR:
		msg, _ := f.Get("message")
		text := fmt.Sprintf("the broker sent ERROR %q", msg)
		if body := bytes.TrimSpace(f.Body); len(body) > 0 {
			text += fmt.Sprintf(": %q", body[:min(len(body), 300)])
		}
		return errors.New(text)
	}
	return fmt.Errorf("unexpected %s frame from the broker", printableName(f.Name))
}

func printableName(b []byte) string { return strconv.Quote(string(b[:min(len(b), 32)])) }

// connectedFrame takes the version and heart-beats the broker agreed to.
func (c *stompClient) connectedFrame(f *frame.Frame) error {
	if c.connected {
		return errors.New("a second CONNECTED frame")
	}
	v := frame.V10
	if vb, ok := f.Get("version"); ok {
		var known bool
		if v, known = frame.ParseVersion(vb); !known {
			return fmt.Errorf("the broker chose version %q, which was not offered", vb)
		}
	}
	// STOMP 1.1 heart-beating: each direction beats at the larger of
	// what its sender can do and its receiver wants, 0 on either side
	// meaning none.
	var sx, sy time.Duration
	if hb, ok := f.Get("heart-beat"); ok {
		a, b, found := strings.Cut(string(hb), ",")
		x, err1 := strconv.ParseUint(strings.TrimSpace(a), 10, 31)
		y, err2 := strconv.ParseUint(strings.TrimSpace(b), 10, 31)
		if !found || err1 != nil || err2 != nil {
			return fmt.Errorf("malformed heart-beat header %q", hb)
		}
		sx, sy = time.Duration(x)*time.Millisecond, time.Duration(y)*time.Millisecond
	}
	ka := c.opts.KeepAlive
	c.mu.Lock()
	c.version = v
	if ka > 0 && sy > 0 {
		c.hbOut = max(ka, sy)
	}
	if ka > 0 && sx > 0 {
		c.hbIn = max(ka, sx)
	}
	if srv, ok := f.Get("server"); ok {
		c.serverHeader = string(srv)
	}
	// Under mu: the tick and failLocked read it, on another goroutine
	// with the portable transport.
	c.connected = true
	c.mu.Unlock()
	select {
	case c.ready <- nil:
	default:
	}
	return nil
}

// message hands a MESSAGE to its subscription's handler and has it
// acknowledged as the subscription's ack mode says.
func (c *stompClient) message(f *frame.Frame) error {
	sid, _ := f.Get("subscription")
	var sub *stompSub
	if subs := c.subs.Load(); subs != nil {
		for _, s := range *subs {
			if string(sid) == s.id {
				sub = s
				break
			}
		}
	}
	if sub == nil {
		if string(sid) == stompReplyQueue {
			return c.replied(f)
		}
		// Sent before the broker read an UNSUBSCRIBE: nobody wants it,
		// and it goes back to its queue when the connection closes.
		return nil
	}
	dest, _ := f.Get("destination")
	reply := ""
	if r, ok := f.Get("reply-to"); ok && len(r) > 0 {
		corr, _ := f.Get("correlation-id")
		reply = string(r) + "\x00" + string(corr)
	}
	sub.h(unsafeString(dest), reply, f.Body)
	switch sub.mode {
	case stompAckIndividual:
		id, err := c.ackID(f)
		if err != nil {
			return err
		}
		c.acks = c.appendAck(c.acks, sub, id)
	case stompAckClient:
		id, err := c.ackID(f)
		if err != nil {
			return err
		}
		if len(sub.lastAck) == 0 {
			c.pendAck = append(c.pendAck, sub)
		}
		sub.lastAck = append(sub.lastAck[:0], id...)
	}
	return nil
}

// ackID is what an ACK of f names: the ack header in STOMP 1.2, the
// message-id before. The broker makes them; the tool never does.
func (c *stompClient) ackID(f *frame.Frame) ([]byte, error) {
	if c.version >= frame.V12 {
		if id, ok := f.Get("ack"); ok {
			return id, nil
		}
		return nil, errors.New("a MESSAGE of a subscription with acks but no ack header (STOMP 1.2)")
	}
	if id, ok := f.Get("message-id"); ok {
		return id, nil
	}
	return nil, errors.New("a MESSAGE without a message-id header")
}

// appendAck appends the ACK of one message (in client mode, of it and
// every earlier one) of sub.
func (c *stompClient) appendAck(b []byte, sub *stompSub, id []byte) []byte {
	v := c.version
	const cmd = frame.ACK
	b = frame.AppendCommand(b, cmd)
	if v >= frame.V12 {
		b = frame.AppendHeader(b, v, cmd, "id", id)
	} else {
		b = frame.AppendHeader(b, v, cmd, "message-id", id)
		if v == frame.V11 {
			b = frame.AppendHeader(b, v, cmd, "subscription", sub.id)
		}
	}
	if sub.mode == stompAckClient {
		sub.lastAck = sub.lastAck[:0]
	}
	return append(b, '\n', 0)
}

// replied hands a reply to the request awaiting it.
func (c *stompClient) replied(f *frame.Frame) error {
	corr, _ := f.Get("correlation-id")
	c.mu.Lock()
	match := c.want != "" && string(corr) == c.want
	if match {
		c.want = ""
	}
	c.mu.Unlock()
	if match {
		c.replyCh <- append([]byte(nil), f.Body...)
	}
	return nil
}

// receipt records the RECEIPT of frame id: a SEND's, which frees its
// place in the window, or another frame's, whose waiter is told.
func (c *stompClient) receipt(idB []byte) error {
	id, err := strconv.ParseUint(string(idB), 10, 64)
	if err != nil {
		return fmt.Errorf("a RECEIPT for %q, which was not asked for", idB)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if ch, ok := c.waiters[id]; ok {
		delete(c.waiters, id)
		close(ch)
		return nil
	}
	live := c.unrec[c.unrecHead:]
	// Receipts of one queue come in order; of several, nearly so.
	k := 0
	if len(live) == 0 || live[0] != id {
		k = sort.Search(len(live), func(i int) bool { return live[i] >= id })
		if k == len(live) || live[k] != id {
			return fmt.Errorf("a RECEIPT for %d, which is not awaited", id)
		}
	}
	if k == 0 {
		c.unrecHead++
	} else {
		copy(live[k:], live[k+1:])
		c.unrec = c.unrec[:len(c.unrec)-1]
	}
	if c.unrecHead == len(c.unrec) {
		c.unrec, c.unrecHead = c.unrec[:0], 0
	}
	c.poke()
	return nil
}

// tick sends a heart-beat (an EOL) when nothing went out for half the
// negotiated interval, and gives up on a broker silent for two of its
// intervals.
func (c *stompClient) tick(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil || !c.connected {
		return
	}
	if c.hbIn > 0 && now.Sub(time.Unix(0, c.lastRead.Load())) > 2*c.hbIn {
		c.failLocked(fmt.Errorf("no frame or heart-beat from the broker for two intervals (%v)", c.hbIn))
		c.shutdown()
		return
	}
	if c.hbOut > 0 && now.Sub(c.lastWrite) >= c.hbOut/2 {
		c.queueLocked([]byte{'\n'})
	}
}

// waitSpace returns with c.mu held once a frame may be queued, or with an
// error (and c.mu free) when the connection ended or -timeout passed. A
// SEND from the reading goroutine (a reply) never waits: only that
// goroutine could make the room.
func (c *stompClient) waitSpace(needSlot bool) error {
	var deadline time.Time
	for {
		c.mu.Lock()
		if c.err != nil {
			err := c.err
			c.mu.Unlock()
			return err
		}
		if c.inLoop || (len(c.out) < stompHighWater && (!needSlot || len(c.unrec)-c.unrecHead < c.window)) {
			return nil
		}
		c.mu.Unlock()
		if deadline.IsZero() {
			deadline = time.Now().Add(c.opts.Timeout)
		}
		wait := time.Until(deadline)
		if wait <= 0 {
			return fmt.Errorf("stomp %s: the broker took nothing (or sent no receipt) for %v", c.id, c.opts.Timeout)
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

// sendLocked queues a SEND of data to dest with the extra headers (name,
// value pairs); with receipt it is awaited in the window. c.mu is held.
func (c *stompClient) sendLocked(dest string, receipt bool, data []byte, extra ...string) {
	wasEmpty := len(c.out) == 0
	v := c.version
	const cmd = frame.SEND
	b := c.out
	if dest == c.sendDest && c.sendHead != nil {
		b = append(b, c.sendHead...)
	} else {
		at := len(b)
		b = frame.AppendCommand(b, cmd)
		b = frame.AppendHeader(b, v, cmd, "destination", dest)
		if c.opts.Durable {
			b = append(b, "persistent:true\n"...)
		}
		c.sendDest, c.sendHead = dest, append(c.sendHead[:0], b[at:]...)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		b = frame.AppendHeader(b, v, cmd, extra[i], extra[i+1])
	}
	if receipt {
		c.nextReceipt++
		id := c.nextReceipt
		if len(c.unrec) == cap(c.unrec) && c.unrecHead > 0 {
			n := copy(c.unrec, c.unrec[c.unrecHead:])
			c.unrec, c.unrecHead = c.unrec[:n], 0
		}
		c.unrec = append(c.unrec, id)
		b = frame.AppendHeaderUint(b, "receipt", id)
	}
	c.out = frame.AppendBody(b, data)
	c.queuedLocked(wasEmpty)
}

// Publish SENDs data to the destination subject. With -confirm it asks
// for a receipt and waits while -inflight receipts are outstanding;
// always while the connection has stompHighWater bytes unwritten.
func (c *stompClient) Publish(subject string, data []byte) error {
	if err := c.waitSpace(c.opts.Confirm); err != nil {
		return err
	}
	c.sendLocked(subject, c.opts.Confirm, data)
	c.mu.Unlock()
	return nil
}

// Reply answers a request delivered with reply: its reply-to destination
// and correlation id.
func (c *stompClient) Reply(reply string, data []byte) error {
	to, corr, ok := strings.Cut(reply, "\x00")
	if !ok || to == "" {
		return fmt.Errorf("reply address %q is not a STOMP reply-to", reply)
	}
	if err := c.waitSpace(false); err != nil {
		return err
	}
	if corr != "" {
		c.sendLocked(to, false, data, "correlation-id", corr)
	} else {
		c.sendLocked(to, false, data)
	}
	c.mu.Unlock()
	return nil
}

// call queues a frame that asks for a receipt (built by build with the
// receipt's header) and waits for the receipt, or the connection's end,
// or -timeout.
func (c *stompClient) call(what string, build func(b []byte, receipt uint64) []byte) error {
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return err
	}
	c.nextReceipt++
	id := c.nextReceipt
	ch := make(chan struct{})
	c.waiters[id] = ch
	c.queueLocked(build(nil, id))
	c.mu.Unlock()
	t := time.NewTimer(c.opts.Timeout)
	defer t.Stop()
	select {
	case <-ch:
		return nil
	case <-c.done:
		return fmt.Errorf("%s: %w", what, c.cause())
	case <-t.C:
		c.mu.Lock()
		delete(c.waiters, id)
		c.mu.Unlock()
		return fmt.Errorf("%s: no receipt within %v", what, c.opts.Timeout)
	}
}

// Subscribe subscribes to the destination filter with -ack and a
// prefetch-count of -prefetch, and returns once the broker's receipt says
// it is in place. queue is not used: a /queue/NAME destination is itself
// the queue its subscribers compete for.
func (c *stompClient) Subscribe(filter, _ string, h Handler) (Subscription, error) {
	c.mu.Lock()
	c.nextSub++
	s := &stompSub{id: "ledge-bench-" + strconv.Itoa(c.nextSub), mode: c.ackMode, h: h}
	old := c.subs.Load()
	var subs []*stompSub
	if old != nil {
		subs = append(subs, *old...)
	}
	subs = append(subs, s)
	// Before SUBSCRIBE goes out: its first messages may be read before
	// this goroutine hears the receipt.
	c.subs.Store(&subs)
	v := c.version
	c.mu.Unlock()
	err := c.call("subscribe "+filter, func(b []byte, receipt uint64) []byte {
		const cmd = frame.SUBSCRIBE
		b = frame.AppendCommand(b, cmd)
		b = frame.AppendHeader(b, v, cmd, "id", s.id)
		b = frame.AppendHeader(b, v, cmd, "destination", filter)
		b = frame.AppendHeader(b, v, cmd, "ack", s.mode)
		if c.opts.Prefetch > 0 && s.mode != stompAckAuto {
			b = frame.AppendHeaderUint(b, "prefetch-count", uint64(c.opts.Prefetch))
		}
		b = frame.AppendHeaderUint(b, "receipt", receipt)
		return append(b, '\n', 0)
	})
	if err != nil {
		return nil, err
	}
	return &stompSubscription{c: c, s: s}, nil
}

type stompSubscription struct {
	c *stompClient
	s *stompSub
}

// Unsubscribe ends the subscription; what it had not acknowledged goes
// back to the queue. Its handler is called no more once it returns, and
// the messages it handled are acknowledged before the UNSUBSCRIBE: an
// ACK after it would name a subscription the broker no longer has.
func (u *stompSubscription) Unsubscribe() error {
	c := u.c
	if !c.Connected() {
		return nil // gone with its connection
	}
	c.mu.Lock()
	var subs []*stompSub
	for _, s := range *c.subs.Load() {
		if s != u.s {
			subs = append(subs, s)
		}
	}
	c.subs.Store(&subs)
	v := c.version
	c.mu.Unlock()
	// A read that began before the subscription left the list may still
	// be handling its messages; its ACKs are queued when it ends.
	if n := c.inputs.Load(); n%2 == 1 {
		for c.inputs.Load() == n && c.Connected() {
			time.Sleep(20 * time.Microsecond)
		}
	}
	err := c.call("unsubscribe "+u.s.id, func(b []byte, receipt uint64) []byte {
		const cmd = frame.UNSUBSCRIBE
		b = frame.AppendCommand(b, cmd)
		b = frame.AppendHeader(b, v, cmd, "id", u.s.id)
		b = frame.AppendHeaderUint(b, "receipt", receipt)
		return append(b, '\n', 0)
	})
	if err != nil && !c.Connected() {
		return nil
	}
	return err
}

// Request SENDs data to subject with a reply-to of the connection's
// temporary queue and a correlation id, and waits for the answer.
func (c *stompClient) Request(ctx context.Context, subject string, data []byte) ([]byte, error) {
	c.reqMu.Lock()
	defer c.reqMu.Unlock()
	c.corr++
	corr := strconv.FormatUint(c.corr, 10)
	for len(c.replyCh) > 0 { // an answer that came after its request timed out
		<-c.replyCh
	}
	if err := c.waitSpace(false); err != nil {
		return nil, err
	}
	c.want = corr
	c.sendLocked(subject, false, data, "reply-to", stompReplyQueue, "correlation-id", corr)
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

// Flush waits for the receipts of every SEND that asked for one, then
// for the receipt of an empty transaction's ABORT: the broker serves a
// connection's frames in order, so by then it has routed everything sent
// before.
func (c *stompClient) Flush(ctx context.Context) error {
	for {
		c.mu.Lock()
		err, left := c.err, len(c.unrec)-c.unrecHead
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
	tx := "ledge-bench-flush-" + strconv.FormatUint(c.flush.Add(1), 10)
	v := c.version
	done := make(chan error, 1)
	go func() {
		done <- c.call("flush", func(b []byte, receipt uint64) []byte {
			b = frame.AppendCommand(b, frame.BEGIN)
			b = frame.AppendHeader(b, v, frame.BEGIN, "transaction", tx)
			b = append(b, '\n', 0)
			b = frame.AppendCommand(b, frame.ABORT)
			b = frame.AppendHeader(b, v, frame.ABORT, "transaction", tx)
			b = frame.AppendHeaderUint(b, "receipt", receipt)
			return append(b, '\n', 0)
		})
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Connected reports whether the connection is still up.
func (c *stompClient) Connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err == nil
}

// Close sends DISCONNECT and waits a moment for the broker to close the
// connection after its receipt.
func (c *stompClient) Close() {
	c.mu.Lock()
	if c.err == nil && !c.closing {
		c.closing = true
		c.nextReceipt++
		b := frame.AppendCommand(nil, frame.DISCONNECT)
		b = frame.AppendHeaderUint(b, "receipt", c.nextReceipt)
		c.waiters[c.nextReceipt] = make(chan struct{})
		c.queueLocked(append(b, '\n', 0))
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
