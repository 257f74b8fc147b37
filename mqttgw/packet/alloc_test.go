package packet

import (
	"bytes"
	"testing"
)

// telemetry is the benchmark's message: a QoS 1 PUBLISH of a 100-byte
// payload, the size of the device telemetry.
func telemetry() *Publish {
	return &Publish{QoS: QoS1, Topic: b("site/7/temp"), PacketID: 4242, Payload: bytes.Repeat(b("t"), 100)}
}

// TestZeroAlloc fails if decoding or encoding PUBLISH or PUBACK allocates:
// the gateway does both once per message.
func TestZeroAlloc(t *testing.T) {
	withProps := telemetry()
	withProps.Properties.MessageExpiryInterval = 60
	withProps.Properties.Present.Add(PropMessageExpiryInterval)
	withProps.Properties.UserProperties = []UserProperty{{b("unit"), b("C")}}
	withProps.Properties.SubscriptionIdentifiers = []uint32{7}
	ackProps := &Ack{Type: TypePuback, PacketID: 1, Reason: NoMatchingSubscribers}
	ackProps.Properties.ReasonString = b("nobody")
	ackProps.Properties.Present.Add(PropReasonString)

	cases := []struct {
		name  string
		level Level
		p     Packet
	}{
		{"PUBLISH 3.1.1", Level311, Packet{Type: TypePublish, Publish: *telemetry()}},
		{"PUBLISH 5.0", Level5, Packet{Type: TypePublish, Publish: *telemetry()}},
		{"PUBLISH 5.0 with properties", Level5, Packet{Type: TypePublish, Publish: *withProps}},
		{"PUBACK 3.1.1", Level311, Packet{Type: TypePuback, Ack: Ack{Type: TypePuback, PacketID: 1}}},
		{"PUBACK 5.0", Level5, Packet{Type: TypePuback, Ack: Ack{Type: TypePuback, PacketID: 1}}},
		{"PUBACK 5.0 with properties", Level5, Packet{Type: TypePuback, Ack: *ackProps}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wire := AppendPacket(nil, tc.level, &tc.p)
			d := Decoder{Level: tc.level}
			var p Packet
			if a := testing.AllocsPerRun(100, func() {
				if _, err := d.Decode(wire, &p); err != nil {
					t.Fatal(err)
				}
			}); a != 0 {
				t.Errorf("decode: %v allocations", a)
			}
			dst := make([]byte, 0, 512)
			if a := testing.AllocsPerRun(100, func() {
				switch tc.p.Type {
				case TypePublish:
					dst = AppendPublish(dst[:0], tc.level, &tc.p.Publish)
				default:
					dst = AppendAck(dst[:0], tc.level, &tc.p.Ack)
				}
			}); a != 0 {
				t.Errorf("encode: %v allocations", a)
			}
			if !bytes.Equal(dst, wire) {
				t.Errorf("encoded % x, want % x", dst, wire)
			}
		})
	}
}

func benchmarkDecodePublish(b *testing.B, level Level) {
	wire := AppendPublish(nil, level, telemetry())
	d := Decoder{Level: level}
	var p Packet
	b.ReportAllocs()
	b.SetBytes(int64(len(wire)))
	for b.Loop() {
		if _, err := d.Decode(wire, &p); err != nil {
			b.Fatal(err)
		}
	}
}

func benchmarkEncodePublish(b *testing.B, level Level) {
	pub := telemetry()
	dst := AppendPublish(nil, level, pub)
	b.ReportAllocs()
	b.SetBytes(int64(len(dst)))
	for b.Loop() {
		dst = AppendPublish(dst[:0], level, pub)
	}
}

func BenchmarkDecodePublishQoS1V311(b *testing.B) { benchmarkDecodePublish(b, Level311) }
func BenchmarkDecodePublishQoS1V5(b *testing.B)   { benchmarkDecodePublish(b, Level5) }
func BenchmarkEncodePublishQoS1V311(b *testing.B) { benchmarkEncodePublish(b, Level311) }
func BenchmarkEncodePublishQoS1V5(b *testing.B)   { benchmarkEncodePublish(b, Level5) }

func BenchmarkDecodePuback(b *testing.B) {
	wire := AppendAck(nil, Level5, &Ack{Type: TypePuback, PacketID: 4242})
	d := Decoder{Level: Level5}
	var p Packet
	b.ReportAllocs()
	b.SetBytes(int64(len(wire)))
	for b.Loop() {
		if _, err := d.Decode(wire, &p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodePuback(b *testing.B) {
	ack := &Ack{Type: TypePuback, PacketID: 4242}
	dst := make([]byte, 0, 16)
	b.ReportAllocs()
	b.SetBytes(4)
	for b.Loop() {
		dst = AppendAck(dst[:0], Level5, ack)
	}
}
