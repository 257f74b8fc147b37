package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/ledgemq/ledge/stompgw/frame"
)

// newTestSTOMPClient is a client without a socket: what it queues stays
// in its outbound buffer (as while the transport runs its input).
func newTestSTOMPClient(o DialOptions) *stompClient {
	if o.Timeout == 0 {
		o.Timeout = time.Second
	}
	c := newSTOMPClient(stompAddr{hostPort: "127.0.0.1:61613", login: "guest", passcode: "gu:est", host: "/"}, o)
	c.inLoop = true
	return c
}

// feedSTOMP hands chunks to c.input as the transport does: what input
// leaves unused is given again in front of the next chunk.
func feedSTOMP(c *stompClient, chunks ...[]byte) error {
	var s scratch
	var pending []byte
	for _, ch := range chunks {
		data := append(pending, ch...)
		used, err := c.input(data, &s)
		if err != nil {
			return err
		}
		pending = append([]byte(nil), data[used:]...)
	}
	return nil
}

// decodeAll decodes frames of version v, heart-beats skipped.
func decodeAll(t *testing.T, b []byte, v frame.Version) []frame.Frame {
	t.Helper()
	var out []frame.Frame
	for {
		b = b[frame.SkipEOL(b):]
		if len(b) == 0 {
			return out
		}
		var f frame.Frame
		n, err := frame.Decode(b, v, stompLimits, &f)
		if err != nil {
			t.Fatalf("decode %q: %v", b, err)
		}
		f.Headers = append([]frame.Header(nil), f.Headers...)
		out = append(out, f)
		b = b[n:]
	}
}

func hdr(t *testing.T, f *frame.Frame, key string) string {
	t.Helper()
	v, ok := f.Get(key)
	if !ok {
		t.Errorf("%s frame has no %s header: %q", f.Command, key, f.Headers)
	}
	return string(v)
}

// The frames the client writes are what the codec reads, escaped as the
// version says.
func TestSTOMPClientEncodes(t *testing.T) {
	c := newTestSTOMPClient(DialOptions{KeepAlive: 2 * time.Second, ClientID: "bench-1", Durable: true, Confirm: true})
	fs := decodeAll(t, c.appendConnect(nil), frame.V10)
	if len(fs) != 1 || fs[0].Command != frame.CONNECT {
		t.Fatalf("CONNECT: %+v", fs)
	}
	f := &fs[0]
	for k, want := range map[string]string{"accept-version": "1.0,1.1,1.2", "host": "/", "login": "guest",
		"passcode": "gu:est", "heart-beat": "2000,2000", "client-id": "bench-1"} {
		if got := hdr(t, f, k); got != want {
			t.Errorf("CONNECT %s: %q, want %q", k, got, want)
		}
	}

	c.version, c.connected = frame.V12, true
	body := []byte("bin\x00ary")
	c.mu.Lock()
	c.sendLocked("/queue/a:b", true, body, "correlation-id", "x\ny")
	c.sendLocked("/queue/a:b", false, body)
	c.mu.Unlock()
	fs = decodeAll(t, c.out, frame.V12)
	if len(fs) != 2 {
		t.Fatalf("SENDs: %d frames", len(fs))
	}
	for i, f := range fs {
		if f.Command != frame.SEND || hdr(t, &f, "destination") != "/queue/a:b" || hdr(t, &f, "persistent") != "true" ||
			!bytes.Equal(f.Body, body) || f.ContentLength != len(body) {
			t.Errorf("SEND %d: %s %q %q", i, f.Command, f.Headers, f.Body)
		}
	}
	if hdr(t, &fs[0], "receipt") != "1" || hdr(t, &fs[0], "correlation-id") != "x\ny" || fs[1].Has("receipt") {
		t.Errorf("receipt and correlation: %q / %q", fs[0].Headers, fs[1].Headers)
	}
	if len(c.unrec) != 1 || c.unrec[0] != 1 {
		t.Errorf("awaited receipts %v", c.unrec)
	}

	for _, tc := range []struct {
		v    frame.Version
		mode string
		want []string // header name, value, ...
	}{
		{frame.V12, stompAckIndividual, []string{"id", "m:1"}},
		{frame.V11, stompAckIndividual, []string{"message-id", "m:1", "subscription", "s\\1"}},
		{frame.V10, stompAckClient, []string{"message-id", "m:1"}},
	} {
		c.version = tc.v
		sub := &stompSub{id: "s\\1", mode: tc.mode}
		fs := decodeAll(t, c.appendAck(nil, sub, []byte("m:1")), tc.v)
		if len(fs) != 1 || fs[0].Command != frame.ACK || len(fs[0].Headers) != len(tc.want)/2 {
			t.Fatalf("ACK %s: %+v", tc.v, fs)
		}
		for i := 0; i < len(tc.want); i += 2 {
			if got := hdr(t, &fs[0], tc.want[i]); got != tc.want[i+1] {
				t.Errorf("ACK %s %s: %q, want %q", tc.v, tc.want[i], got, tc.want[i+1])
			}
		}
	}
}

// serverSession is a broker's side of a short session: CONNECTED,
// heart-beats, a MESSAGE with escaped headers and a binary body, two
// RECEIPTs, a reply on the temporary queue, a MESSAGE of a subscription
// already gone, and an ERROR.
var serverSession = "CONNECTED\nversion:1.2\nheart-beat:5000,10000\nserver:RabbitMQ/3.10.8\nsession:s-1\n\n\x00" +
	"\n\n" +
	"MESSAGE\nsubscription:ledge-bench-1\ndestination:/topic/a.b\nmessage-id:T_1@@s@@1\nack:a\\cb@@1\n" +
	"reply-to:/reply-queue/amq.gen-1\ncorrelation-id:c\\c1\ncontent-length:6\n\nhe\x00llo\x00" +
	"RECEIPT\nreceipt-id:1\n\n\x00\r\n" +
	"MESSAGE\nsubscription:/temp-queue/ledge-bench\ndestination:/temp-queue/ledge-bench\nmessage-id:x\ncorrelation-id:7\n\nanswer\x00" +
	"RECEIPT\nreceipt-id:2\n\n\x00" +
	"MESSAGE\nsubscription:ledge-bench-9\ndestination:/queue/old\nmessage-id:9\nack:9\n\nlate\x00" +
	"ERROR\nmessage:bye now\ncontent-type:text/plain\n\nthe broker is stopping\x00"

type gotMessage struct{ subject, reply, body string }

// sessionClient is a client awaiting what serverSession answers: the
// receipt of a SEND (1), of a SUBSCRIBE (2), and reply 7.
func sessionClient(mode string) (*stompClient, *[]gotMessage, chan struct{}) {
	c := newTestSTOMPClient(DialOptions{KeepAlive: 2 * time.Second, Window: 4})
	var got []gotMessage
	subs := []*stompSub{{id: "ledge-bench-1", mode: mode, h: func(subject, reply string, data []byte) {
		got = append(got, gotMessage{subject, reply, string(data)})
	}}}
	c.subs.Store(&subs)
	c.nextReceipt = 2
	c.unrec = []uint64{1}
	w := make(chan struct{})
	c.waiters[2] = w
	c.want = "7"
	return c, &got, w
}

func checkSession(t *testing.T, c *stompClient, got []gotMessage, w chan struct{}, err error, mode string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), `"bye now"`) || !strings.Contains(err.Error(), "the broker is stopping") {
		t.Errorf("the ERROR frame: %v", err)
	}
	want := gotMessage{"/topic/a.b", "/reply-queue/amq.gen-1\x00c:1", "he\x00llo"}
	if len(got) != 1 || got[0] != want {
		t.Errorf("messages %q, want one %q", got, want)
	}
	if c.version != frame.V12 || c.hbOut != 10*time.Second || c.hbIn != 5*time.Second || c.serverHeader != "RabbitMQ/3.10.8" {
		t.Errorf("version %s, heart-beats out %v in %v, server %q", c.version, c.hbOut, c.hbIn, c.serverHeader)
	}
	if len(c.unrec)-c.unrecHead != 0 {
		t.Errorf("receipts still awaited: %v", c.unrec[c.unrecHead:])
	}
	select {
	case <-w:
	default:
		t.Error("the SUBSCRIBE's waiter was not told of its receipt")
	}
	select {
	case b := <-c.replyCh:
		if string(b) != "answer" {
			t.Errorf("reply %q", b)
		}
	default:
		t.Error("no reply")
	}
	acks := decodeAll(t, c.out, frame.V12)
	if mode == stompAckAuto {
		if len(acks) != 0 {
			t.Errorf("auto mode sent %d frames", len(acks))
		}
		return
	}
	if len(acks) != 1 || acks[0].Command != frame.ACK || hdr(t, &acks[0], "id") != "a:b@@1" {
		t.Errorf("acks %+v, want one of a:b@@1", acks)
	}
}

// The session gives the same events whether it comes whole, split in two
// at any byte, or a byte at a time.
func TestSTOMPClientReadsSplitFrames(t *testing.T) {
	in := []byte(serverSession)
	for _, mode := range []string{stompAckIndividual, stompAckClient, stompAckAuto} {
		for i := 0; i <= len(in); i++ {
			c, got, w := sessionClient(mode)
			err := feedSTOMP(c, bytes.Clone(in[:i]), bytes.Clone(in[i:]))
			checkSession(t, c, *got, w, err, mode)
			if t.Failed() {
				t.Fatalf("mode %s, split at %d of %q", mode, i, in)
			}
		}
		c, got, w := sessionClient(mode)
		var chunks [][]byte
		for i := range in {
			chunks = append(chunks, []byte{in[i]})
		}
		checkSession(t, c, *got, w, feedSTOMP(c, chunks...), mode)
	}
}

// Client mode acknowledges once per read, with the last message's id.
func TestSTOMPClientCumulativeAck(t *testing.T) {
	c := newTestSTOMPClient(DialOptions{})
	c.version, c.connected = frame.V11, true
	n := 0
	subs := []*stompSub{{id: "s", mode: stompAckClient, h: func(string, string, []byte) { n++ }}}
	c.subs.Store(&subs)
	msg := func(id string) string {
		return "MESSAGE\nsubscription:s\ndestination:/queue/q\nmessage-id:" + id + "\n\nx\x00"
	}
	if err := feedSTOMP(c, []byte(msg("1")+msg("2")+msg("3"))); err != nil {
		t.Fatal(err)
	}
	if err := feedSTOMP(c, []byte(msg("4"))); err != nil {
		t.Fatal(err)
	}
	acks := decodeAll(t, c.out, frame.V11)
	if n != 4 || len(acks) != 2 || hdr(t, &acks[0], "message-id") != "3" || hdr(t, &acks[1], "message-id") != "4" ||
		hdr(t, &acks[1], "subscription") != "s" {
		t.Fatalf("%d messages, acks %+v", n, acks)
	}
}

// What a broker may send wrongly ends the connection with a reason.
func TestSTOMPClientRefusesBadFrames(t *testing.T) {
	connected := "CONNECTED\nversion:1.2\n\n\x00"
	for _, tc := range []struct{ in, want string }{
		{"CONNECTED\nversion:2.0\n\n\x00", "not offered"},
		{"CONNECTED\nversion:1.2\nheart-beat:soon\n\n\x00", "malformed heart-beat"},
		{connected + connected, "a second CONNECTED"},
		{connected + "RECEIPT\nreceipt-id:77\n\n\x00", "not awaited"},
		{connected + "RECEIPT\nreceipt-id:x\n\n\x00", "was not asked for"},
		{connected + "MESSAGE\nsubscription:ledge-bench-1\n\nx\x00", "no ack header"},
		{connected + "SEND\ndestination:/queue/x\n\n\x00", "unexpected \"SEND\""},
		{connected + "MESSAGE\nbad\\q:1\n\n\x00", "undefined escape"},
		{connected + "MESSAGE\ncontent-length:1\n\nxy\x00", "not terminated by NUL"},
	} {
		c := newTestSTOMPClient(DialOptions{})
		subs := []*stompSub{{id: "ledge-bench-1", mode: stompAckIndividual, h: func(string, string, []byte) {}}}
		c.subs.Store(&subs)
		err := feedSTOMP(c, []byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want it to say %q", tc.in, err, tc.want)
		}
	}
}

// Whatever a broker sends, the client's input never panics and never
// claims more bytes than it was given.
func FuzzSTOMPClientInput(f *testing.F) {
	f.Add([]byte(serverSession), uint8(0))
	f.Add([]byte("CONNECTED\nversion:1.1\n\n\x00MESSAGE\nsubscription:ledge-bench-1\nmessage-id:1\n\nx\x00"), uint8(1))
	f.Add([]byte("CONNECTED\n\n\x00MESSAGE\nsubscription:ledge-bench-1\nmessage-id:1\ncontent-length:3\n\na\x00b\x00"), uint8(2))
	f.Add([]byte("CONNECTED\nversion:1.2\nheart-beat:0,0\n\n\x00\n\r\n\rRECEIPT\nreceipt-id:1\n\n\x00"), uint8(3))
	f.Fuzz(func(t *testing.T, in []byte, opts uint8) {
		modes := []string{stompAckIndividual, stompAckClient, stompAckAuto}
		c, _, _ := sessionClient(modes[int(opts)%len(modes)])
		split := 0
		if len(in) > 0 {
			split = int(opts) % (len(in) + 1)
		}
		var s scratch
		data := bytes.Clone(in[:split])
		used, err := c.input(data, &s)
		if used < 0 || used > len(data) {
			t.Fatalf("input used %d of %d", used, len(data))
		}
		if err != nil {
			return
		}
		data = append(data[used:], in[split:]...)
		used, _ = c.input(data, &s)
		if used < 0 || used > len(data) {
			t.Fatalf("input used %d of %d", used, len(data))
		}
	})
}
