package main

// The MQTT client of the load tool is our own, on ledge's packet codec
// (mqttgw/packet), not paho. paho runs several goroutines and channels per
// connection (reader, writer, pinger, router), so 10,000 simulated devices
// cost tens of thousands of goroutines and their stacks, and on a
// two-core machine the tool, not the broker, becomes what is measured.
// Here a connection is a small struct on the lean clients' transport
// (wire.go): on Linux its socket is watched by one of a few epoll loops
// (wire_linux.go) that read, decode, answer and write for all the
// connections they own; a publisher appends its PUBLISH to the
// connection's outbound buffer and a loop writes everything queued with
// one system call. Elsewhere a portable transport with a reader and a
// writer goroutine per connection stands in (wire_other.go); it is for
// developers' machines, not for measuring.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/ledgemq/ledge/mqttgw/packet"
)

// MQTT settings of the client, from the command line.
const (
	// mqttHighWater is how many bytes a publisher may queue on its
	// connection before it waits for the socket: the broker's TCP window,
	// not the tool's memory, then sets the pace.
	mqttHighWater = 256 << 10
)

var errMQTTClosed = errors.New("mqtt: connection closed")

var mqttClientSeq atomic.Uint64

// mqttClient is one MQTT connection: the Client of -proto mqtt. Its
// socket belongs to a transport (an epoll loop on Linux), which calls
// input with what it read and flushes out when woken.
type mqttClient struct {
	wireConn // mu guards the fields below it too

	opts     DialOptions
	level    packet.Level
	qos      packet.QoS
	clientID string
	addr     string
	dec      packet.Decoder

	subs atomic.Pointer[[]mqttSub] // copy on write: read for every message

	window    int                 // QoS 1 and 2 publishes in flight at most
	inflight  map[uint16]struct{} // packet ids awaiting PUBACK (or PUBCOMP)
	nextPID   uint16
	pings     []chan error // one per PINGREQ in flight; nil for keep alive pings
	waiters   map[uint16]chan error
	connack   chan error
	keepAlive time.Duration
	pingSent  time.Time // oldest unanswered keep alive ping

	timer *time.Timer // the publishing goroutine's wait for space
}

type mqttSub struct {
	filter string // as subscribed, without $share/group/
	h      Handler
}

func (c *mqttClient) String() string { return c.clientID }

// mqttAddr turns -url into host:port: mqtt://host:port, tcp://host:port
// or host:port; the port defaults to 1883.
func mqttAddr(raw string) (string, error) {
	if strings.Contains(raw, "://") {
		u, err := url.Parse(raw)
		if err != nil {
			return "", err
		}
		raw = u.Host
	}
	if _, _, err := net.SplitHostPort(raw); err != nil {
		raw = net.JoinHostPort(raw, "1883")
	}
	return raw, nil
}

func dialMQTT(ctx context.Context, rawURL string, o DialOptions) (Client, error) {
	addr, err := mqttAddr(rawURL)
	if err != nil {
		return nil, err
	}
	c := &mqttClient{
		opts:      o,
		level:     packet.Level311,
		qos:       packet.QoS(o.QoS),
		addr:      addr,
		window:    o.Window,
		keepAlive: o.KeepAlive,
		connack:   make(chan error, 1),
	}
	c.initWire(c)
	if o.MQTTVersion == 5 {
		c.level = packet.Level5
	}
	if c.window <= 0 {
		c.window = 1
	}
	// Short client ids: 3.1.1 servers need only accept 23 characters.
	c.clientID = fmt.Sprintf("lb%s-%d", strconv.FormatInt(time.Now().UnixNano()%1e9, 36), mqttClientSeq.Add(1))
	if o.ClientID != "" {
		c.clientID = o.ClientID
	}
	c.dec.Level = c.level
	if err := c.connect(ctx, !o.Persistent); err != nil {
		return nil, err
	}
	return c, nil
}

// connect opens the socket, hands it to a transport and waits for the
// CONNACK.
func (c *mqttClient) connect(ctx context.Context, clean bool) error {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", c.addr)
	if err != nil {
		return fmt.Errorf("connect %s: %w", c.addr, err)
	}
	if err := c.attach(nc); err != nil {
		return fmt.Errorf("connect %s: %w", c.addr, err)
	}
	cp := packet.Connect{
		Level:      c.level,
		CleanStart: clean,
		KeepAlive:  uint16(c.keepAlive / time.Second),
		ClientID:   []byte(c.clientID),
	}
	if c.level == packet.Level5 {
		// Let the broker send as much as it likes: the tool's receivers
		// answer at once.
		cp.Properties.Present.Add(packet.PropReceiveMaximum)
		cp.Properties.ReceiveMaximum = 65535
		if !clean {
			// A 5.0 session outlives its connection only with an expiry.
			cp.Properties.Present.Add(packet.PropSessionExpiryInterval)
			cp.Properties.SessionExpiryInterval = 3600
		}
	}
	c.mu.Lock()
	c.queueLocked(packet.AppendConnect(nil, &cp))
	c.mu.Unlock()
	select {
	case err = <-c.connack:
	case <-ctx.Done():
		err = ctx.Err()
	case <-c.done:
		err = c.cause()
	}
	if err != nil {
		c.shutdown()
		<-c.done
		return fmt.Errorf("connect %s: %w", c.addr, err)
	}
	return nil
}

// cause is why the connection ended.
func (c *mqttClient) cause() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		return errMQTTClosed
	}
	return c.err
}

// fail ends the connection with err, once; the transport closes the
// socket. Waiters are told. c.mu is held.
func (c *mqttClient) failLocked(err error) {
	if c.err != nil {
		return
	}
	if c.closing {
		err = errMQTTClosed
	} else if c.opts.OnAsyncError != nil {
		// Not under our lock: the runner's handler takes its own.
		go c.opts.OnAsyncError(fmt.Errorf("mqtt %s: connection lost: %w", c.clientID, err))
	}
	c.err = err
	for _, ch := range c.pings {
		if ch != nil {
			ch <- err
		}
	}
	c.pings = nil
	for _, ch := range c.waiters {
		ch <- err
	}
	c.waiters = nil
	select {
	case c.connack <- err:
	default:
	}
	c.poke()
}

// input decodes the packets at the start of b and acts on them; it returns
// how many bytes it consumed. It runs on the goroutine that reads the
// socket.
func (c *mqttClient) input(b []byte, s *scratch) (int, error) {
	p := &s.mqtt
	n := 0
	for n < len(b) {
		k, err := c.dec.Decode(b[n:], p)
		if errors.Is(err, packet.ErrIncomplete) {
			break
		}
		if err != nil {
			return n, fmt.Errorf("from broker: %w", err)
		}
		if err := c.handle(p); err != nil {
			return n, err
		}
		n += k
	}
	return n, nil
}

func (c *mqttClient) handle(p *packet.Packet) error {
	switch p.Type {
	case packet.TypeConnack:
		ca := &p.Connack
		var err error
		if c.level == packet.Level5 {
			if ca.Reason.IsError() {
				err = fmt.Errorf("refused: %v", ca.Reason)
			}
		} else if ca.ReturnCode != 0 {
			err = fmt.Errorf("refused: %v", ca.ReturnCode)
		}
		c.mu.Lock()
		if c.level == packet.Level5 {
			if ca.Properties.Present.Has(packet.PropReceiveMaximum) && int(ca.Properties.ReceiveMaximum) < c.window {
				c.window = int(ca.Properties.ReceiveMaximum)
			}
			if ca.Properties.Present.Has(packet.PropServerKeepAlive) {
				c.keepAlive = time.Duration(ca.Properties.ServerKeepAlive) * time.Second
			}
		}
		c.mu.Unlock()
		select {
		case c.connack <- err:
		default:
		}
		return err
	case packet.TypePublish:
		pub := &p.Publish
		subs := c.subs.Load()
		if subs != nil {
			topic := string(pub.Topic)
			for _, s := range *subs {
				if len(*subs) == 1 || mqttDialect.matches(s.filter, topic) {
					s.h(topic, "", pub.Payload)
					break
				}
			}
		}
		switch pub.QoS {
		case packet.QoS1:
			c.sendAck(packet.TypePuback, pub.PacketID)
		case packet.QoS2:
			c.sendAck(packet.TypePubrec, pub.PacketID)
		}
	case packet.TypePubrel:
		c.sendAck(packet.TypePubcomp, p.Ack.PacketID)
	case packet.TypePuback, packet.TypePubcomp:
		return c.released(p.Ack.PacketID, p.Ack.Reason)
	case packet.TypePubrec:
		if p.Ack.Reason.IsError() {
			return c.released(p.Ack.PacketID, p.Ack.Reason)
		}
		c.sendAck(packet.TypePubrel, p.Ack.PacketID)
	case packet.TypeSuback:
		var err error
		for i, rc := range p.Suback.ReasonCodes {
			if rc.IsError() {
				err = fmt.Errorf("subscription %d refused: %v", i, rc)
			}
		}
		c.mu.Lock()
		if ch, ok := c.waiters[p.Suback.PacketID]; ok {
			delete(c.waiters, p.Suback.PacketID)
			ch <- err
		}
		c.mu.Unlock()
	case packet.TypeUnsuback:
		c.mu.Lock()
		if ch, ok := c.waiters[p.Unsuback.PacketID]; ok {
			delete(c.waiters, p.Unsuback.PacketID)
			ch <- nil
		}
		c.mu.Unlock()
	case packet.TypePingresp:
		c.mu.Lock()
		if len(c.pings) > 0 {
			if ch := c.pings[0]; ch != nil {
				ch <- nil
			}
			c.pings = c.pings[1:]
		}
		c.pingSent = time.Time{}
		c.mu.Unlock()
	case packet.TypeDisconnect:
		return fmt.Errorf("disconnected by the broker: %v", p.Disconnect.Reason)
	default:
		return fmt.Errorf("unexpected %v from the broker", p.Type)
	}
	return nil
}

// released frees the window slot of an acknowledged publish.
func (c *mqttClient) released(pid uint16, rc packet.ReasonCode) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.inflight[pid]; !ok {
		return fmt.Errorf("acknowledgement of packet id %d, which is not in flight", pid)
	}
	delete(c.inflight, pid)
	c.poke()
	// 0x10 (no matching subscribers) is a success in 5.0.
	if rc.IsError() && c.opts.OnAsyncError != nil {
		go c.opts.OnAsyncError(fmt.Errorf("mqtt %s: publish refused: %v", c.clientID, rc))
	}
	return nil
}

func (c *mqttClient) sendAck(t packet.Type, pid uint16) {
	var buf [8]byte
	b := packet.AppendAck(buf[:0], c.level, &packet.Ack{Type: t, PacketID: pid})
	c.mu.Lock()
	c.queueLocked(b)
	c.mu.Unlock()
}

// tick sends a keep alive ping when the connection has been quiet for
// half its keep alive, and gives up on a broker that has not answered one
// within the keep alive. The transport calls it about once a second.
func (c *mqttClient) tick(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil || c.keepAlive == 0 {
		return
	}
	if !c.pingSent.IsZero() && now.Sub(c.pingSent) > c.keepAlive {
		c.failLocked(fmt.Errorf("no PINGRESP within the keep alive of %v", c.keepAlive))
		c.shutdown()
		return
	}
	if now.Sub(c.lastWrite) >= c.keepAlive/2 && c.pingSent.IsZero() {
		c.pingSent = now
		c.pings = append(c.pings, nil)
		c.queueLocked(packet.AppendPingreq(nil))
	}
}

// Publish sends data to topic at -qos. At QoS 1 and 2 it waits while the
// window of unacknowledged publishes is full; at any QoS while the
// connection has mqttHighWater bytes unwritten.
func (c *mqttClient) Publish(topic string, data []byte) error {
	if err := c.waitSpace(c.qos > 0); err != nil {
		return err
	}
	// c.mu is held.
	pub := packet.Publish{QoS: c.qos, Topic: unsafeBytes(topic), Payload: data}
	if c.qos > 0 {
		if c.inflight == nil {
			c.inflight = make(map[uint16]struct{}, c.window)
		}
		for {
			c.nextPID++
			if c.nextPID == 0 {
				c.nextPID = 1
			}
			if _, used := c.inflight[c.nextPID]; !used {
				break
			}
		}
		pub.PacketID = c.nextPID
		c.inflight[pub.PacketID] = struct{}{}
	}
	wasEmpty := len(c.out) == 0
	c.out = packet.AppendPublish(c.out, c.level, &pub)
	c.queuedLocked(wasEmpty)
	c.mu.Unlock()
	return nil
}

// waitSpace returns with c.mu held once a publish may be queued, or with
// an error (and c.mu free) when the connection ended or -timeout passed.
func (c *mqttClient) waitSpace(needSlot bool) error {
	var deadline time.Time
	for {
		c.mu.Lock()
		if c.err != nil {
			err := c.err
			c.mu.Unlock()
			return err
		}
		if len(c.out) < mqttHighWater && (!needSlot || len(c.inflight) < c.window) {
			return nil
		}
		c.mu.Unlock()
		if deadline.IsZero() {
			deadline = time.Now().Add(c.opts.Timeout)
		}
		wait := time.Until(deadline)
		if wait <= 0 {
			return fmt.Errorf("mqtt %s: the broker took nothing for %v", c.clientID, c.opts.Timeout)
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

// Subscribe subscribes to filter at -qos; with a queue name the filter is
// shared: $share/queue/filter, each message to one member of the group.
func (c *mqttClient) Subscribe(filter, queue string, h Handler) (Subscription, error) {
	full := filter
	if queue != "" {
		full = "$share/" + queue + "/" + filter
	}
	sp := packet.Subscribe{Subscriptions: []packet.Subscription{{Filter: []byte(full), QoS: c.qos}}}
	ch := make(chan error, 1)
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return nil, c.err
	}
	sp.PacketID = c.waiterLocked(ch)
	old := c.subs.Load()
	var subs []mqttSub
	if old != nil {
		subs = append(subs, *old...)
	}
	subs = append(subs, mqttSub{filter: filter, h: h})
	c.subs.Store(&subs)
	c.queueLocked(packet.AppendSubscribe(nil, c.level, &sp))
	c.mu.Unlock()
	t := time.NewTimer(c.opts.Timeout)
	defer t.Stop()
	select {
	case err := <-ch:
		if err != nil {
			return nil, fmt.Errorf("subscribe %s: %w", full, err)
		}
	case <-t.C:
		return nil, fmt.Errorf("subscribe %s: no SUBACK within %v", full, c.opts.Timeout)
	}
	return &mqttSubscription{c: c, filter: full}, nil
}

// waiterLocked registers ch for the answer to a new packet id of
// SUBSCRIBE or UNSUBSCRIBE; their ids are counted down from the top so as
// not to meet the publishes'.
func (c *mqttClient) waiterLocked(ch chan error) uint16 {
	if c.waiters == nil {
		c.waiters = make(map[uint16]chan error)
	}
	pid := uint16(65535)
	for {
		if _, used := c.waiters[pid]; !used {
			break
		}
		pid--
	}
	c.waiters[pid] = ch
	return pid
}

type mqttSubscription struct {
	c      *mqttClient
	filter string
}

// Unsubscribe sends UNSUBSCRIBE and waits for its UNSUBACK.
func (s *mqttSubscription) Unsubscribe() error {
	c := s.c
	ch := make(chan error, 1)
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return nil // gone with its connection
	}
	u := packet.Unsubscribe{PacketID: c.waiterLocked(ch), Filters: [][]byte{[]byte(s.filter)}}
	c.queueLocked(packet.AppendUnsubscribe(nil, c.level, &u))
	c.mu.Unlock()
	t := time.NewTimer(c.opts.Timeout)
	defer t.Stop()
	select {
	case <-ch:
		c.subs.Store(nil)
		return nil
	case <-t.C:
		return fmt.Errorf("unsubscribe %s: no UNSUBACK within %v", s.filter, c.opts.Timeout)
	}
}

// Request is not offered: MQTT 5.0 request/response would need a
// response topic per requester, and the peers measured against speak
// 3.1.1.
func (c *mqttClient) Request(context.Context, string, []byte) ([]byte, error) {
	return nil, errors.New("request/reply is not offered over MQTT by ledge-bench")
}

// Flush waits until every QoS 1 and 2 publish is acknowledged, then for
// the answer to a PINGREQ: the broker handles a connection's packets in
// order, so by then it has taken everything sent before.
func (c *mqttClient) Flush(ctx context.Context) error {
	for {
		c.mu.Lock()
		if c.err != nil {
			err := c.err
			c.mu.Unlock()
			return err
		}
		if len(c.inflight) == 0 {
			break
		}
		c.mu.Unlock()
		select {
		case <-c.space:
		case <-time.After(10 * time.Millisecond):
			// Another waiter may have taken the poke.
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	ch := make(chan error, 1)
	c.pings = append(c.pings, ch)
	c.queueLocked(packet.AppendPingreq(nil))
	c.mu.Unlock()
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Connected reports whether the connection is still up.
func (c *mqttClient) Connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err == nil
}

// Close sends DISCONNECT and closes the connection. A receiver that kept a
// persistent session then connects once more with a clean session, so
// that the broker drops what it kept for it and the next run starts
// from nothing.
func (c *mqttClient) Close() {
	c.closeConn()
	if c.opts.Persistent {
		ctx, cancel := context.WithTimeout(context.Background(), c.opts.Timeout)
		defer cancel()
		d := &mqttClient{
			opts: DialOptions{Timeout: c.opts.Timeout}, level: c.level, clientID: c.clientID, addr: c.addr,
			window: 1, connack: make(chan error, 1),
		}
		d.initWire(d)
		d.dec.Level = d.level
		if d.connect(ctx, true) == nil {
			d.closeConn()
		}
	}
}

func (c *mqttClient) closeConn() {
	c.mu.Lock()
	if c.err == nil && !c.closing {
		c.closing = true
		c.queueLocked(packet.AppendDisconnect(nil, c.level, &packet.Disconnect{}))
	}
	c.mu.Unlock()
	// Give the DISCONNECT (and what was queued before it) a moment to
	// leave, then close.
	c.drain(time.Second)
	c.shutdown()
	<-c.done
}

// unsafeBytes views s as bytes for an encoder that only reads them.
func unsafeBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }
