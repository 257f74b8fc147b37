package packet_test

import (
	"errors"
	"fmt"

	"github.com/ledgemq/ledge/mqttgw/packet"
)

// The gateway's read loop: decode what the read delivered, consume each
// whole packet, keep a partial one for the next read, and answer a
// violation with the reason code the error carries.
func ExampleDecoder() {
	// What a device might send in one read: CONNECT, then a QoS 1 PUBLISH
	// cut short by the end of the read.
	in := packet.AppendConnect(nil, &packet.Connect{Level: packet.Level5, CleanStart: true, KeepAlive: 30, ClientID: []byte("dev1")})
	in = packet.AppendPublish(in, packet.Level5, &packet.Publish{QoS: packet.QoS1, Topic: []byte("site/7/temp"), PacketID: 1, Payload: []byte("21.5")})
	in = in[:len(in)-2]

	var d packet.Decoder // one per connection; learns the level from CONNECT
	var p packet.Packet  // one per event loop
	var out []byte
	for {
		n, err := d.Decode(in, &p)
		if errors.Is(err, packet.ErrIncomplete) {
			fmt.Printf("keep %d bytes, the packet is %d long\n", len(in), n)
			break
		}
		var perr *packet.Error
		if errors.As(err, &perr) {
			out = packet.AppendDisconnect(out, d.Level, &packet.Disconnect{Reason: perr.Reason})
			break
		}
		switch p.Type {
		case packet.TypeConnect:
			fmt.Printf("CONNECT %s at MQTT %v\n", p.Connect.ClientID, d.Level)
			out = packet.AppendConnack(out, d.Level, &packet.Connack{})
		case packet.TypePublish:
			// p.Publish.Topic and Payload alias in: copy what outlives it.
			fmt.Printf("PUBLISH %s %s\n", p.Publish.Topic, p.Publish.Payload)
		}
		in = in[n:]
	}
	fmt.Printf("reply % x\n", out)
	// Output:
	// CONNECT dev1 at MQTT 5.0
	// keep 20 bytes, the packet is 22 long
	// reply 20 03 00 00 00
}
