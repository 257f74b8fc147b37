package stompgw

import (
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ledgemq/ledge/stompgw/frame"
)

// Each malformed or refused frame gets an ERROR with a message header
// (and the frame's receipt-id) and the connection closes, on both
// transports; another connection goes on.
func TestErrorsCloseTheConnection(t *testing.T) {
	tests := []struct {
		name    string
		version string
		frames  string
		message string
	}{
		{"frame before CONNECT", "-", "SEND\ndestination:/queue/a\n\nx\x00", "not connected"},
		{"second CONNECT", "1.2", "CONNECT\naccept-version:1.2\n\n\x00", "already connected"},
		{"unknown command", "1.2", "FROB\nreceipt:r1\n\n\x00", "unknown command"},
		{"server command from a client", "1.2", "MESSAGE\n\n\x00", "unknown command"},
		{"SEND without destination", "1.2", "SEND\n\nx\x00", "missing header"},
		{"SUBSCRIBE without id", "1.2", "SUBSCRIBE\ndestination:/queue/a\n\n\x00", "missing header"},
		{"unknown destination", "1.2", "SEND\ndestination:/nowhere/a\n\nx\x00", "invalid destination"},
		{"empty queue name", "1.2", "SEND\ndestination:/queue/\n\nx\x00", "invalid destination"},
		{"bad ack mode", "1.2", "SUBSCRIBE\nid:0\ndestination:/queue/a\nack:sometimes\n\n\x00", "invalid ack mode"},
		{"bad prefetch", "1.2", "SUBSCRIBE\nid:0\ndestination:/queue/a\nprefetch-count:many\n\n\x00", "invalid header"},
		{"duplicate subscription id", "1.2", "SUBSCRIBE\nid:0\ndestination:/amq/queue/q\n\n\x00SUBSCRIBE\nid:0\ndestination:/amq/queue/q\n\n\x00", "duplicated subscription"},
		{"unsubscribe unknown", "1.2", "UNSUBSCRIBE\nid:7\n\n\x00", "subscription not found"},
		{"ack of an unknown id", "1.2", "ACK\nid:0@@1\n\n\x00", "unknown ack id"},
		{"ack without id", "1.2", "ACK\n\n\x00", "missing header"},
		{"ack of a garbled id", "1.1", "ACK\nmessage-id:xyz\nsubscription:0\n\n\x00", "unknown ack id"},
		{"undefined escape", "1.2", "SEND\ndestination:/queue/a\nk:\\t\n\nx\x00", "malformed frame"},
		{"bad content-length", "1.2", "SEND\ndestination:/queue/a\ncontent-length:x\n\nx\x00", "malformed frame"},
		{"body longer than content-length", "1.2", "SEND\ndestination:/queue/a\ncontent-length:1\n\nxy\x00", "malformed frame"},
		{"header without colon", "1.2", "SEND\ndestination\n\nx\x00", "malformed frame"},
		{"BEGIN without transaction", "1.2", "BEGIN\n\n\x00", "missing header"},
		{"COMMIT of an unknown transaction", "1.2", "COMMIT\ntransaction:t9\n\n\x00", "unknown transaction"},
		{"SEND in an unknown transaction", "1.2", "SEND\ndestination:/queue/a\ntransaction:t9\n\nx\x00", "unknown transaction"},
		{"BEGIN twice", "1.2", "BEGIN\ntransaction:t\n\n\x00BEGIN\ntransaction:t\n\n\x00", "transaction already begun"},
		{"missing queue", "1.2", "SUBSCRIBE\nid:0\ndestination:/amq/queue/none\n\n\x00", "not_found"},
		{"missing exchange", "1.2", "SEND\ndestination:/exchange/none/k\n\nx\x00", "not_found"},
		{"bad priority", "1.2", "SEND\ndestination:/topic/a\npriority:high\n\nx\x00", "invalid header"},
		{"subscribe to a reply queue", "1.2", "SUBSCRIBE\nid:0\ndestination:/reply-queue/amq.gen-x\n\n\x00", "invalid destination"},
		{"bad heart-beat", "connect-hb", "", "malformed heart-beat"},
		{"unsupported version", "connect-2.0", "", "unsupported protocol version"},
	}
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			g := startGateway(t, tr.portable, Options{}, "")
			_, err := g.amqp.DeclareQueue(nil, "q", amqpQueueOpts())
			must(t, err)
			bystander := dial(t, g.addr)
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					r := dialRaw(t, g.addr)
					switch tt.version {
					case "-":
					case "connect-hb":
						r.send("CONNECT\naccept-version:1.2\nheart-beat:soon\n\n\x00")
					case "connect-2.0":
						r.send("CONNECT\naccept-version:2.0\n\n\x00")
					default:
						r.connect(tt.version)
					}
					r.send(tt.frames)
					f := r.readError(tt.message)
					if strings.Contains(tt.frames, "receipt:r1") && f.Header.Get("receipt-id") != "r1" {
						t.Errorf("ERROR without the frame's receipt-id: %v", f.Header)
					}
					if tt.version == "connect-2.0" && f.Header.Get("version") != "1.0,1.1,1.2" {
						t.Errorf("version ERROR without the versions: %v", f.Header)
					}
				})
			}
			// The other connection never noticed.
			must(t, bystander.Send("/queue/still", "text/plain", []byte("fine"), nil))
			sub, err := bystander.Subscribe("/queue/still", 0)
			must(t, err)
			if m := next(t, sub); string(m.Body) != "fine" {
				t.Fatalf("bystander got %q", m.Body)
			}
		})
	}
}

// Every frame that asks for a receipt gets one.
func TestReceiptsForEveryFrame(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			g := startGateway(t, tr.portable, Options{}, "")
			r := dialRaw(t, g.addr)
			r.connect("1.2")
			steps := []struct{ frame, receipt string }{
				{"SUBSCRIBE\nid:s\ndestination:/queue/r\nack:client-individual\nreceipt:1\n\n\x00", "1"},
				{"SEND\ndestination:/queue/r\nreceipt:2\n\nm\x00", "2+MESSAGE"},
				{"BEGIN\ntransaction:t\nreceipt:3\n\n\x00", "3"},
				{"ACK\nid:s@@1\ntransaction:t\nreceipt:4\n\n\x00", "4"},
				{"COMMIT\ntransaction:t\nreceipt:5\n\n\x00", "5"},
				{"BEGIN\ntransaction:u\n\n\x00ABORT\ntransaction:u\nreceipt:6\n\n\x00", "6"},
				{"SEND\ndestination:/topic/nobody\nreceipt:7\n\nunroutable\x00", "7"},
				{"UNSUBSCRIBE\nid:s\nreceipt:8\n\n\x00", "8"},
				{"DISCONNECT\nreceipt:9\n\n\x00", "9"},
			}
			for _, st := range steps {
				if st.frame != "" {
					r.send(st.frame)
				}
				f := r.read()
				if st.receipt == "2+MESSAGE" {
					// The message and the receipt both come once it is
					// stored, in either order.
					g := r.read()
					if f.Command == "RECEIPT" {
						f, g = g, f
					}
					if f.Command != "MESSAGE" || f.Header.Get("ack") != "s@@1" || g.Command != "RECEIPT" || g.Header.Get("receipt-id") != "2" {
						t.Fatalf("got %s %v and %s %v", f.Command, f.Header, g.Command, g.Header)
					}
					continue
				}
				if f.Command != "RECEIPT" || f.Header.Get("receipt-id") != st.receipt {
					t.Fatalf("after %q: got %s %v %q", st.frame, f.Command, f.Header, f.Body)
				}
			}
			r.closed()
			if q := g.amqp.Queues(); len(q) != 1 || q[0].Ready+q[0].Unacked != 0 {
				t.Fatalf("queue after the committed ACK: %+v", q)
			}
		})
	}
}

// A stream of frames cut into pieces of every size, down to one byte,
// is read as the same frames.
func TestFramesSplitAtAnyByte(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			g := startGateway(t, tr.portable, Options{}, "")
			for _, size := range []int{1, 2, 3, 7, 13} {
				// A queue per run: an auto-ack subscriber of the last run
				// that the server has not yet seen go would take messages.
				q := "/queue/split-" + strconv.Itoa(size)
				stream := "CONNECT\r\naccept-version:1.1,1.2\r\nhost:x\r\n\r\n\x00\n" +
					"SUBSCRIBE\nid:a\\cb\ndestination:" + q + "\n\n\x00\r\n\n" +
					"SEND\ndestination:" + q + "\ncontent-length:7\nk:line\\nbreak\n\nbin\x00ary\x00" +
					"SEND\ndestination:" + q + "\nreceipt:done\n\nnul-ended\x00"
				c, err := net.Dial("tcp", g.addr)
				must(t, err)
				r := &raw{t: t, c: c, rd: newReader(c), v: frame.V12}
				for i := 0; i < len(stream); i += size {
					r.send(stream[i:min(i+size, len(stream))])
				}
				if f := r.read(); f.Command != "CONNECTED" || f.Header.Get("version") != "1.2" {
					t.Fatalf("size %d: %s %v", size, f.Command, f.Header)
				}
				got := map[string]string{}
				for len(got) < 3 {
					f := r.read()
					switch f.Command {
					case "MESSAGE":
						if f.Header.Get("subscription") != "a:b" {
							t.Fatalf("subscription %q", f.Header.Get("subscription"))
						}
						got[string(f.Body)] = f.Header.Get("k")
					case "RECEIPT":
						got["receipt"] = f.Header.Get("receipt-id")
					default:
						t.Fatalf("size %d: %s %v %q", size, f.Command, f.Header, f.Body)
					}
				}
				if v, ok := got["bin\x00ary"]; !ok || v != "line\nbreak" || got["receipt"] != "done" {
					t.Fatalf("size %d: got %q", size, got)
				}
				if _, ok := got["nul-ended"]; !ok {
					t.Fatalf("size %d: got %q", size, got)
				}
				c.Close()
			}
		})
	}
}

// Heart-beats are negotiated: the server beats as often as the client
// asks (no more often than its floor) and closes a client that stops
// beating.
func TestHeartBeats(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			g := startGateway(t, tr.portable, Options{MinHeartBeat: 50 * time.Millisecond}, "")
			r := dialRaw(t, g.addr)
			r.send("CONNECT\naccept-version:1.2\nheart-beat:0,10\n\n\x00")
			f := r.read()
			if f.Command != "CONNECTED" || f.Header.Get("heart-beat") != "50,0" {
				t.Fatalf("CONNECTED %v", f.Header)
			}
			// Beats arrive: single EOLs, at least a few in half a second.
			_ = r.c.SetReadDeadline(time.Now().Add(5 * time.Second))
			beats := 0
			start := time.Now()
			for beats < 4 {
				b, err := r.rd.ReadByte()
				if err != nil {
					t.Fatal(err)
				}
				if b != '\n' {
					t.Fatalf("byte %q between frames", b)
				}
				beats++
			}
			if time.Since(start) < 150*time.Millisecond {
				t.Fatalf("4 beats in %v: faster than the 50 ms floor", time.Since(start))
			}

			// A client that promises beats every 50 ms and goes silent is
			// closed after about two intervals.
			q := dialRaw(t, g.addr)
			q.send("CONNECT\naccept-version:1.2\nheart-beat:50,0\n\n\x00")
			if f := q.read(); f.Header.Get("heart-beat") != "0,50" {
				t.Fatalf("CONNECTED %v", f.Header)
			}
			begin := time.Now()
			q.closed()
			if time.Since(begin) < 90*time.Millisecond {
				t.Fatalf("closed after %v, before two intervals", time.Since(begin))
			}

			// One that beats stays.
			k := dialRaw(t, g.addr)
			k.send("CONNECT\naccept-version:1.2\nheart-beat:50,0\n\n\x00")
			k.read()
			deadline := time.Now().Add(400 * time.Millisecond)
			for time.Now().Before(deadline) {
				k.send("\n")
				time.Sleep(20 * time.Millisecond) // the client's beat interval
			}
			k.send("SEND\ndestination:/topic/x\nreceipt:alive\n\n\x00")
			if f := k.read(); f.Command != "RECEIPT" {
				t.Fatalf("beating client: %s %v", f.Command, f.Header)
			}
		})
	}
}

// A client that never sends CONNECT is closed.
func TestConnectTimeout(t *testing.T) {
	g := startGateway(t, false, Options{ConnectTimeout: 100 * time.Millisecond}, "")
	dialRaw(t, g.addr).closed()
}

// STOMP 1.0 frames are not escaped, and 1.0 needs no id to subscribe: the
// destination names the subscription.
func TestVersion10(t *testing.T) {
	g := startGateway(t, false, Options{}, "")
	r := dialRaw(t, g.addr)
	f := r.connect("")
	if f.Header.Get("version") != "" || f.Header.Get("session") == "" {
		t.Fatalf("1.0 CONNECTED %v", f.Header)
	}
	r.send("SUBSCRIBE\ndestination:/queue/old\nack:client\n\n\x00" +
		"SEND\ndestination:/queue/old\nk:a\\cb\n\nhi\x00")
	m := r.read()
	if m.Command != "MESSAGE" || m.Header.Get("subscription") != "/queue/old" || string(m.Body) != "hi" {
		t.Fatalf("%s %v %q", m.Command, m.Header, m.Body)
	}
	if got := m.Header.Get("k"); got != `a\cb` {
		t.Fatalf("1.0 header %q, want it unescaped", got)
	}
	r.send("ACK\nmessage-id:" + m.Header.Get("message-id") + "\nreceipt:a\n\n\x00")
	if f := r.read(); f.Command != "RECEIPT" {
		t.Fatalf("ack: %s %v", f.Command, f.Header)
	}
	r.send("UNSUBSCRIBE\ndestination:/queue/old\nreceipt:u\n\n\x00")
	if f := r.read(); f.Command != "RECEIPT" {
		t.Fatalf("unsubscribe: %s %v", f.Command, f.Header)
	}
}

// A frame over the size limit is refused with an ERROR, without reading
// the rest.
func TestFrameTooLarge(t *testing.T) {
	g := startGateway(t, false, Options{MaxBodySize: 1024, MaxHeaderSize: 1024}, "")
	r := dialRaw(t, g.addr)
	r.connect("1.2")
	r.send("SEND\ndestination:/queue/a\ncontent-length:5000\n\n")
	r.readError("malformed frame")
	r = dialRaw(t, g.addr)
	r.connect("1.2")
	r.send("SEND\ndestination:/queue/a\n\n" + strings.Repeat("x", 3000))
	r.readError("malformed frame")
}
