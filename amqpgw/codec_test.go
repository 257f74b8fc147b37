package amqpgw

import (
	"encoding/binary"
	"testing"
)

// seedFrames are the spec's edge cases: every method a client sends, a
// content header with every property, tables with every field type,
// nested and truncated.
func seedFrames() [][]byte {
	var seeds [][]byte
	full := appendTable(nil, func(b []byte) []byte {
		b = appendStringField(b, "S", "str")
		for _, f := range [][]byte{
			{1, 't', 't', 1}, {1, 'b', 'b', 0x80}, {1, 'B', 'B', 0xff}, {1, 's', 's', 0xff, 0xfe}, {1, 'u', 'u', 0, 1},
			{1, 'I', 'I', 0, 0, 0, 1}, {1, 'i', 'i', 0xff, 0, 0, 0}, {1, 'l', 'l', 0, 0, 0, 0, 0, 0, 0, 1},
			{1, 'f', 'f', 0x3f, 0x80, 0, 0}, {1, 'd', 'd', 0, 0, 0, 0, 0, 0, 0, 0}, {1, 'D', 'D', 2, 0, 0, 1, 0x3a},
			{1, 'T', 'T', 0, 0, 0, 0, 0x65, 0x53, 0xf1, 0}, {1, 'V', 'V'}, {1, 'x', 'x', 0, 0, 0, 2, 0, 1},
			{1, 'A', 'A', 0, 0, 0, 5, 'I', 0, 0, 0, 7}, {1, 'F', 'F', 0, 0, 0, 3, 1, 'n', 'V'},
		} {
			b = append(b, f...)
		}
		return b
	})
	seeds = append(seeds, rawMethod(1, qDeclare, append([]byte{0, 0, 1, 'q', 2}, full...)...))
	seeds = append(seeds, rawMethod(1, bPublish, 0, 0, 3, 'a', 'm', 'q', 1, 'k', 1))
	var props []byte
	props = binary.BigEndian.AppendUint16(props, 0xfffc)
	props = appendShortstr(props, "text/plain")
	props = appendShortstr(props, "gzip")
	props = append(props, full...)
	props = append(props, 2, 5)
	props = appendShortstr(props, "corr")
	props = appendShortstr(props, "reply")
	props = appendShortstr(props, "1000")
	props = appendShortstr(props, "id")
	props = binary.BigEndian.AppendUint64(props, 1700000000)
	props = appendShortstr(props, "type")
	props = appendShortstr(props, "user")
	props = appendShortstr(props, "app")
	props = appendShortstr(props, "cluster")
	seeds = append(seeds, appendContent(nil, 1, 4096, props, []byte("hello")))
	for _, id := range []methodID{connStartOk, connTuneOk, connOpen, connClose, chanOpen, chanClose, chanFlow, exDeclare,
		exDelete, exBind, qBind, qUnbind, qPurge, qDelete, bQos, bConsume, bCancel, bGet, bAck, bReject, bNack, bRecover,
		confSelect, txSelect, txCommit, txRollback} {
		seeds = append(seeds, rawMethod(0, id, make([]byte, 12)...))
	}
	seeds = append(seeds, appendHeartbeat(nil))
	// Truncated and hostile: a table nested past the limit, a huge length.
	deep := []byte{}
	for i := 0; i < 40; i++ {
		deep = append([]byte{1, 'n', 'F', 0, 0, 0, byte(len(deep))}, deep...)
	}
	seeds = append(seeds, rawMethod(1, qDeclare, append([]byte{0, 0, 1, 'q', 0, 0, 0, 0, byte(len(deep))}, deep...)...))
	seeds = append(seeds, rawMethod(1, qDeclare, 0, 0, 1, 'q', 0, 0xff, 0xff, 0xff, 0xff))
	return seeds
}

// FuzzDecode feeds arbitrary bytes to the frame, method, table and
// property decoders: they must never panic or read out of bounds, and
// what they accept must be what the encoders write.
func FuzzDecode(f *testing.F) {
	for _, s := range seedFrames() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var fr Frame
		var m Method
		var p props
		for len(in) > 0 {
			n, err := decodeFrame(in, 1<<16, &fr)
			if err != nil {
				return
			}
			in = in[n:]
			switch fr.Type {
			case frameMethod:
				if decodeMethod(fr.Payload, &m) == nil && m.Arguments != nil {
					for t := m.Arguments; len(t) > 0; {
						_, t = nextField(t)
					}
					headersMatch(m.Arguments, m.Arguments)
				}
			case frameHeader:
				if len(fr.Payload) >= 12 && parseProps(fr.Payload[12:], &p) == nil && p.hasReply {
					out := appendPropsWithReplyTo(nil, fr.Payload[12:], &p, "amq.rabbitmq.reply-to.x")
					var q props
					if parseProps(out, &q) != nil || string(q.ReplyTo) != "amq.rabbitmq.reply-to.x" {
						t.Fatalf("reply-to rewrite broke the properties")
					}
				}
			}
		}
	})
}

func TestSeedsDecode(t *testing.T) {
	seeds := seedFrames()
	var fr Frame
	var m Method
	if _, err := decodeFrame(seeds[0], 1<<16, &fr); err != nil {
		t.Fatal(err)
	}
	if err := decodeMethod(fr.Payload, &m); err != nil || string(m.Queue) != "q" || !m.Durable {
		t.Fatalf("queue.declare: %v %+v", err, m)
	}
	if _, ok := lookup(m.Arguments, "F"); !ok {
		t.Fatal("nested table not found")
	}
	n, _ := decodeFrame(seeds[2], 1<<16, &fr)
	var p props
	if err := parseProps(fr.Payload[12:], &p); err != nil || p.DeliveryMode != 2 || string(p.ReplyTo) != "reply" || string(p.Expiration) != "1000" {
		t.Fatalf("props: %v %+v", err, p)
	}
	_ = n
	last := seeds[len(seeds)-2]
	decodeFrame(last, 1<<16, &fr)
	if err := decodeMethod(fr.Payload, &m); err == nil {
		t.Fatal("a table nested 40 deep was accepted")
	}
}

// The hot path allocates nothing: decoding a publish with its content
// header, and encoding a delivery into a buffer that has grown.
func TestCodecAllocatesNothing(t *testing.T) {
	seeds := seedFrames()
	pub, hdr := seeds[1], seeds[2]
	var fr Frame
	var m Method
	var p props
	buf := make([]byte, 0, 4096)
	allocs := testing.AllocsPerRun(1000, func() {
		decodeFrame(pub, 1<<16, &fr)
		_ = decodeMethod(fr.Payload, &m)
		decodeFrame(hdr, 1<<16, &fr)
		_ = parseProps(fr.Payload[12:], &p)
		buf = appendDeliver(buf[:0], 1, 4096, "ctag", 7, true, m.Exchange, m.RoutingKey, fr.Payload[12:], []byte("hello"))
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per publish and delivery", allocs)
	}
}

func BenchmarkDecodePublish(b *testing.B) {
	seeds := seedFrames()
	in := append(append([]byte{}, seeds[1]...), seeds[2]...)
	var fr Frame
	var m Method
	var p props
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		n, _ := decodeFrame(in, 1<<16, &fr)
		_ = decodeMethod(fr.Payload, &m)
		decodeFrame(in[n:], 1<<16, &fr)
		_ = parseProps(fr.Payload[12:], &p)
	}
}
