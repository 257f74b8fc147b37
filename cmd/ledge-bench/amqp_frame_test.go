package main

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// serverFrames is a server's side of a short session, as the client
// reads it: start, tune, open-ok, channel open-ok, a delivery in two body
// frames, a confirm, a heartbeat, a close.
func serverFrames() []byte {
	m := func(id uint32, args ...byte) []byte {
		dst, at := amqpMethodStart(nil, 0, id)
		return amqpFrameFinish(append(dst, args...), at)
	}
	var b []byte
	start := []byte{0, 9, 0, 0, 0, 0}
	start = appendLong(start, "PLAIN AMQPLAIN")
	start = appendLong(start, "en_US")
	b = append(b, m(amqpConnStart, start...)...)
	b = append(b, m(amqpConnTune, 0, 0, 0, 2, 0, 0, 0, 60)...)
	b = append(b, m(amqpConnOpenOk, 0)...)
	b = append(b, m(amqpChanOpenOk, 0, 0, 0, 0)...)
	del := appendShort(nil, "ledge-bench-1")
	del = binary.BigEndian.AppendUint64(del, 7)
	del = append(del, 1)
	del = appendShort(del, "amq.topic")
	del = appendShort(del, "a.b")
	b = append(b, m(amqpBDeliver, del...)...)
	hdr, at := amqpFrameStart(nil, amqpFrameHeader, 1)
	hdr = append(hdr, 0, amqpClassBasic, 0, 0)
	hdr = binary.BigEndian.AppendUint64(hdr, 6)
	hdr = binary.BigEndian.AppendUint16(hdr, amqpPropDeliveryMode|amqpPropCorrelationID|amqpPropReplyTo)
	hdr = appendShort(append(hdr, 2), "c1")
	hdr = appendShort(hdr, "amq.rabbitmq.reply-to")
	b = append(b, amqpFrameFinish(hdr, at)...)
	for _, part := range []string{"hel", "lo!"} {
		body, at := amqpFrameStart(nil, amqpFrameBody, 1)
		b = append(b, amqpFrameFinish(append(body, part...), at)...)
	}
	b = append(b, m(amqpBAck, 0, 0, 0, 0, 0, 0, 0, 1, 0)...)
	b = appendAMQPHeartbeat(b)
	closeArgs := []byte{1, 64}
	closeArgs = appendShort(closeArgs, "CONNECTION_FORCED")
	b = append(b, m(amqpConnClose, append(closeArgs, 0, 0, 0, 0)...)...)
	return b
}

// The decoders read what the encoders (and a server) write.
func TestAMQPCodecRoundTrip(t *testing.T) {
	var f amqpFrame
	var m amqpMethod
	var h amqpContent
	in := serverFrames()
	var ids []uint32
	var body []byte
	for len(in) > 0 {
		n, err := decodeAMQPFrame(in, amqpFrameMax, &f)
		if err != nil {
			t.Fatalf("decode frame: %v", err)
		}
		switch f.Type {
		case amqpFrameMethod:
			if err := decodeAMQPMethod(f.Payload, &m); err != nil {
				t.Fatalf("decode method: %v", err)
			}
			ids = append(ids, m.ID)
			switch m.ID {
			case amqpConnTune:
				if m.FrameMax != 131072 || m.ChannelMax != 0 || m.Heartbeat != 60 {
					t.Errorf("tune %+v", m)
				}
			case amqpBDeliver:
				if string(m.ConsumerTag) != "ledge-bench-1" || m.DeliveryTag != 7 || !m.Redelivered || string(m.RoutingKey) != "a.b" {
					t.Errorf("deliver %+v", m)
				}
			case amqpConnClose:
				if m.ReplyCode != 320 || string(m.ReplyText) != "CONNECTION_FORCED" {
					t.Errorf("close %+v", m)
				}
			}
		case amqpFrameHeader:
			if err := decodeAMQPContent(f.Payload, &h); err != nil {
				t.Fatal(err)
			}
			if h.BodySize != 6 || string(h.CorrelationID) != "c1" || string(h.ReplyTo) != "amq.rabbitmq.reply-to" {
				t.Errorf("content %+v", h)
			}
		case amqpFrameBody:
			body = append(body, f.Payload...)
		}
		in = in[n:]
	}
	if len(ids) != 7 || string(body) != "hello!" {
		t.Errorf("methods %v, body %q", ids, body)
	}
	// A publish split over frames of at most frame-max.
	p := appendPublish(nil, 1, amqpMinFrameMax, &amqpPublishing{Exchange: "x", RoutingKey: "k", DeliveryMode: 2}, bytes.Repeat([]byte{'z'}, 10000))
	frames := 0
	for len(p) > 0 {
		n, err := decodeAMQPFrame(p, amqpMinFrameMax, &f)
		if err != nil {
			t.Fatal(err)
		}
		frames++
		p = p[n:]
	}
	if frames != 2+3 {
		t.Errorf("a 10,000-byte publish at frame-max 4096 took %d frames, want 5", frames)
	}
}

// A client's publish and its acks allocate nothing once the buffer has
// grown: the tool must not be what is measured.
func TestAMQPEncodeAllocs(t *testing.T) {
	buf := make([]byte, 0, 4096)
	body := make([]byte, 128)
	p := amqpPublishing{RoutingKey: "bench", DeliveryMode: 2}
	if n := testing.AllocsPerRun(100, func() {
		b := appendPublish(buf[:0], 1, amqpFrameMax, &p, body)
		appendAck(b, 1, 42, false)
	}); n != 0 {
		t.Errorf("publish and ack: %v allocations, want 0", n)
	}
	in := serverFrames()
	var f amqpFrame
	var m amqpMethod
	if n := testing.AllocsPerRun(100, func() {
		for b := in; len(b) > 0; {
			k, err := decodeAMQPFrame(b, amqpFrameMax, &f)
			if err != nil {
				panic(err)
			}
			if f.Type == amqpFrameMethod {
				decodeAMQPMethod(f.Payload, &m)
			}
			b = b[k:]
		}
	}); n != 0 {
		t.Errorf("decoding a session: %v allocations, want 0", n)
	}
}

// FuzzAMQPClientInput feeds arbitrary server bytes to a client's input:
// it may refuse them, never panic or loop.
func FuzzAMQPClientInput(f *testing.F) {
	f.Add(serverFrames())
	f.Add([]byte("AMQP\x00\x00\x09\x01"))
	f.Add([]byte{1, 0, 0, 0, 0, 0, 4, 0, 10, 0, 10, 0xCE})
	f.Add([]byte{3, 0, 1, 0, 0, 0, 1, 'x', 0xCE})
	f.Fuzz(func(t *testing.T, in []byte) {
		c := &amqpClient{maxIn: amqpFrameMax, frameMax: amqpFrameMax, ready: make(chan error, 1),
			rpcCh: make(chan amqpReply, 1), confirmed: make(chan struct{}, 1), replyCh: make(chan []byte, 1), window: 1}
		c.initWire(c)
		c.opts.Timeout = 1
		subs := []*amqpSub{{tag: "ledge-bench-1", h: func(string, string, []byte) bool { return true }}}
		c.subs.Store(&subs)
		c.inLoop = true // queued answers stay in c.out
		var s scratch
		for len(in) > 0 {
			n, err := c.input(in, &s)
			if err != nil || n == 0 {
				return
			}
			in = in[n:]
		}
	})
}
