package packet

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

// normalize sets every empty slice reachable from v to nil, so that a
// decoded packet, whose reused slices are empty but not nil, compares equal
// to a literal that leaves them out.
func normalize(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			normalize(v.Elem())
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			normalize(v.Field(i))
		}
	case reflect.Slice:
		if v.Len() == 0 {
			if v.CanSet() {
				v.Set(reflect.Zero(v.Type()))
			}
			return
		}
		if v.Type().Elem().Kind() != reflect.Uint8 {
			for i := 0; i < v.Len(); i++ {
				normalize(v.Index(i))
			}
		}
	}
}

// content returns a normalized copy of the field of p that p.Type names.
func content(p *Packet) any {
	var v any
	switch p.Type {
	case TypeConnect:
		c := p.Connect
		v = &c
	case TypeConnack:
		c := p.Connack
		v = &c
	case TypePublish:
		c := p.Publish
		v = &c
	case TypePuback, TypePubrec, TypePubrel, TypePubcomp:
		c := p.Ack
		c.Type = p.Type
		v = &c
	case TypeSubscribe:
		c := p.Subscribe
		c.Subscriptions = append([]Subscription(nil), c.Subscriptions...)
		v = &c
	case TypeSuback:
		c := p.Suback
		v = &c
	case TypeUnsubscribe:
		c := p.Unsubscribe
		v = &c
	case TypeUnsuback:
		c := p.Unsuback
		v = &c
	case TypeDisconnect:
		c := p.Disconnect
		v = &c
	case TypeAuth:
		c := p.Auth
		v = &c
	default:
		return p.Type
	}
	normalize(reflect.ValueOf(v))
	return v
}

func b(s string) []byte { return []byte(s) }

func props(f func(p *Properties)) Properties {
	var p Properties
	f(&p)
	return p
}

type roundTrip struct {
	name  string
	level Level
	p     Packet
}

func roundTripCases() []roundTrip {
	user := []UserProperty{{b("region"), b("eu")}, {b("region"), b("us")}, {b(""), b("")}}
	willProps := props(func(p *Properties) {
		p.PayloadFormatIndicator, p.MessageExpiryInterval, p.ContentType = 1, 3600, b("text/plain")
		p.ResponseTopic, p.CorrelationData, p.WillDelayInterval = b("reply/1"), []byte{0, 1, 2}, 30
		p.UserProperties = user[:1]
		for _, id := range []PropertyID{PropPayloadFormatIndicator, PropMessageExpiryInterval, PropContentType,
			PropResponseTopic, PropCorrelationData, PropWillDelayInterval} {
			p.Present.Add(id)
		}
	})
	connectProps := props(func(p *Properties) {
		p.SessionExpiryInterval, p.ReceiveMaximum, p.MaximumPacketSize, p.TopicAliasMaximum = 86400, 20, 65536, 10
		p.RequestResponseInformation, p.RequestProblemInformation = 1, 0
		p.AuthenticationMethod, p.AuthenticationData = b("SCRAM-SHA-1"), b("client-first")
		p.UserProperties = user
		for _, id := range []PropertyID{PropSessionExpiryInterval, PropReceiveMaximum, PropMaximumPacketSize,
			PropTopicAliasMaximum, PropRequestResponseInformation, PropRequestProblemInformation,
			PropAuthenticationMethod, PropAuthenticationData} {
			p.Present.Add(id)
		}
	})
	connackProps := props(func(p *Properties) {
		p.SessionExpiryInterval, p.ReceiveMaximum, p.MaximumQoS, p.RetainAvailable = 60, 100, 1, 0
		p.MaximumPacketSize, p.AssignedClientIdentifier, p.TopicAliasMaximum = 1<<20, b("auto-7f3a"), 16
		p.ReasonString, p.WildcardSubscriptionAvailable, p.SubscriptionIdentifierAvailable = b("welcome"), 1, 0
		p.SharedSubscriptionAvailable, p.ServerKeepAlive, p.ResponseInformation = 1, 120, b("resp/")
		p.ServerReference, p.AuthenticationMethod, p.AuthenticationData = b("other:1883"), b("SCRAM-SHA-1"), b("server-final")
		p.UserProperties = user[1:2]
		for id := PropertyID(0); id <= maxPropertyID; id++ {
			if id.AllowedIn(TypeConnack) && id != PropUserProperty {
				p.Present.Add(id)
			}
		}
	})
	publishProps := props(func(p *Properties) {
		p.PayloadFormatIndicator, p.MessageExpiryInterval, p.TopicAlias = 1, 10, 3
		p.ResponseTopic, p.CorrelationData, p.ContentType = b("reply/dev1"), b("corr-42"), b("application/json")
		p.SubscriptionIdentifiers = []uint32{1, 268_435_455, 128}
		p.UserProperties = user
		for _, id := range []PropertyID{PropPayloadFormatIndicator, PropMessageExpiryInterval, PropTopicAlias,
			PropResponseTopic, PropCorrelationData, PropContentType} {
			p.Present.Add(id)
		}
	})
	reason := props(func(p *Properties) {
		p.ReasonString = b("quota")
		p.Present.Add(PropReasonString)
		p.UserProperties = user[:1]
	})
	aliasOnly := props(func(p *Properties) { p.TopicAlias = 3; p.Present.Add(PropTopicAlias) })
	subID := props(func(p *Properties) { p.SubscriptionIdentifiers = []uint32{16384}; p.UserProperties = user[2:] })
	disconnectProps := props(func(p *Properties) {
		p.SessionExpiryInterval, p.ServerReference, p.ReasonString = 0, b("backup:1883"), b("moving")
		p.Present.Add(PropSessionExpiryInterval)
		p.Present.Add(PropServerReference)
		p.Present.Add(PropReasonString)
	})
	authProps := props(func(p *Properties) {
		p.AuthenticationMethod, p.AuthenticationData = b("SCRAM-SHA-1"), b("server-first")
		p.Present.Add(PropAuthenticationMethod)
		p.Present.Add(PropAuthenticationData)
	})
	payload := bytes.Repeat(b("x"), 300)
	big := bytes.Repeat(b("y"), 200_000) // three-byte remaining length

	cases := []roundTrip{
		{"CONNECT 3.1 MQIsdp", Level31, Packet{Type: TypeConnect, Connect: Connect{Level: Level31, CleanStart: true, KeepAlive: 60, ClientID: b("old-device")}}},
		{"CONNECT 3.1.1 empty client id", Level311, Packet{Type: TypeConnect, Connect: Connect{Level: Level311, CleanStart: true, ClientID: b("")}}},
		{"CONNECT 3.1.1 will user password", Level311, Packet{Type: TypeConnect, Connect: Connect{Level: Level311, KeepAlive: 10,
			ClientID: b("dev1"), WillFlag: true, WillQoS: QoS1, WillRetain: true, WillTopic: b("site/7/status"), WillPayload: b("offline"),
			UsernameFlag: true, Username: b("alice"), PasswordFlag: true, Password: []byte{0, 0xff, 1}}}},
		{"CONNECT 5.0 all properties", Level5, Packet{Type: TypeConnect, Connect: Connect{Level: Level5, KeepAlive: 30,
			Properties: connectProps, ClientID: b("dev-ü"), WillFlag: true, WillQoS: QoS2, WillProperties: willProps,
			WillTopic: b("site/7/status"), WillPayload: b("gone"), UsernameFlag: true, Username: b("bob"), PasswordFlag: true, Password: b("pw")}}},
		{"CONNECT 5.0 password without user name", Level5, Packet{Type: TypeConnect, Connect: Connect{Level: Level5, CleanStart: true,
			ClientID: b(""), PasswordFlag: true, Password: b("token")}}},
		{"CONNACK 3.1.1 session present", Level311, Packet{Type: TypeConnack, Connack: Connack{SessionPresent: true}}},
		{"CONNACK 3.1.1 refused", Level311, Packet{Type: TypeConnack, Connack: Connack{ReturnCode: RefusedNotAuthorized}}},
		{"CONNACK 5.0 all properties", Level5, Packet{Type: TypeConnack, Connack: Connack{SessionPresent: true, Properties: connackProps}}},
		{"CONNACK 5.0 refused", Level5, Packet{Type: TypeConnack, Connack: Connack{Reason: BadAuthenticationMethod}}},
		{"PUBLISH 3.1.1 QoS 0", Level311, Packet{Type: TypePublish, Publish: Publish{Topic: b("site/7/temp"), Payload: b("21.5")}}},
		{"PUBLISH 3.1.1 QoS 1 DUP retain", Level311, Packet{Type: TypePublish, Publish: Publish{Dup: true, QoS: QoS1, Retain: true, Topic: b("a"), PacketID: 1, Payload: payload}}},
		{"PUBLISH 3.1.1 QoS 2 empty payload", Level311, Packet{Type: TypePublish, Publish: Publish{QoS: QoS2, Topic: b("/ü/"), PacketID: 65535}}},
		{"PUBLISH 3.1.1 200 kB", Level311, Packet{Type: TypePublish, Publish: Publish{QoS: QoS1, Topic: b("bulk"), PacketID: 9, Payload: big}}},
		{"PUBLISH 5.0 QoS 0", Level5, Packet{Type: TypePublish, Publish: Publish{Topic: b("site/7/temp"), Payload: b("21.5")}}},
		{"PUBLISH 5.0 all properties", Level5, Packet{Type: TypePublish, Publish: Publish{QoS: QoS1, Topic: b("site/7/cmd"), PacketID: 7, Properties: publishProps, Payload: payload}}},
		{"PUBLISH 5.0 topic alias only", Level5, Packet{Type: TypePublish, Publish: Publish{QoS: QoS2, Retain: true, PacketID: 2, Properties: aliasOnly, Payload: b("v")}}},
		{"PUBACK 3.1.1", Level311, Packet{Type: TypePuback, Ack: Ack{Type: TypePuback, PacketID: 1}}},
		{"PUBREC 3.1.1", Level311, Packet{Type: TypePubrec, Ack: Ack{Type: TypePubrec, PacketID: 2}}},
		{"PUBREL 3.1.1", Level311, Packet{Type: TypePubrel, Ack: Ack{Type: TypePubrel, PacketID: 3}}},
		{"PUBCOMP 3.1.1", Level311, Packet{Type: TypePubcomp, Ack: Ack{Type: TypePubcomp, PacketID: 65535}}},
		{"PUBACK 5.0 success", Level5, Packet{Type: TypePuback, Ack: Ack{Type: TypePuback, PacketID: 1}}},
		{"PUBACK 5.0 reason only", Level5, Packet{Type: TypePuback, Ack: Ack{Type: TypePuback, PacketID: 1, Reason: NoMatchingSubscribers}}},
		{"PUBREC 5.0 with properties", Level5, Packet{Type: TypePubrec, Ack: Ack{Type: TypePubrec, PacketID: 5, Reason: QuotaExceeded, Properties: reason}}},
		{"PUBREL 5.0 not found", Level5, Packet{Type: TypePubrel, Ack: Ack{Type: TypePubrel, PacketID: 5, Reason: PacketIdentifierNotFound}}},
		{"PUBCOMP 5.0 success with properties", Level5, Packet{Type: TypePubcomp, Ack: Ack{Type: TypePubcomp, PacketID: 5, Properties: reason}}},
		{"SUBSCRIBE 3.1.1", Level311, Packet{Type: TypeSubscribe, Subscribe: Subscribe{PacketID: 10, Subscriptions: []Subscription{
			{Filter: b("a/b"), QoS: QoS1}, {Filter: b("c/#"), QoS: QoS2}, {Filter: b("+"), QoS: QoS0}, {Filter: b("$share/g/x/+/y")}}}}},
		{"SUBSCRIBE 5.0 options", Level5, Packet{Type: TypeSubscribe, Subscribe: Subscribe{PacketID: 11, Properties: subID, Subscriptions: []Subscription{
			{Filter: b("site/+/temp"), QoS: QoS1, NoLocal: true, RetainAsPublished: true, RetainHandling: 2},
			{Filter: b("#"), QoS: QoS2, RetainHandling: 1},
			{Filter: b("$share/workers/jobs/#"), QoS: QoS1, RetainAsPublished: true}}}}},
		{"SUBACK 3.1.1", Level311, Packet{Type: TypeSuback, Suback: Suback{PacketID: 10, ReasonCodes: []ReasonCode{GrantedQoS0, GrantedQoS1, GrantedQoS2, UnspecifiedError}}}},
		{"SUBACK 5.0", Level5, Packet{Type: TypeSuback, Suback: Suback{PacketID: 11, Properties: reason, ReasonCodes: []ReasonCode{GrantedQoS1, NotAuthorized, SharedSubscriptionsNotSupported}}}},
		{"UNSUBSCRIBE 3.1.1", Level311, Packet{Type: TypeUnsubscribe, Unsubscribe: Unsubscribe{PacketID: 12, Filters: [][]byte{b("a/b"), b("c/#")}}}},
		{"UNSUBSCRIBE 5.0", Level5, Packet{Type: TypeUnsubscribe, Unsubscribe: Unsubscribe{PacketID: 12, Properties: props(func(p *Properties) { p.UserProperties = user }), Filters: [][]byte{b("a/b")}}}},
		{"UNSUBACK 3.1.1", Level311, Packet{Type: TypeUnsuback, Unsuback: Unsuback{PacketID: 12}}},
		{"UNSUBACK 5.0", Level5, Packet{Type: TypeUnsuback, Unsuback: Unsuback{PacketID: 12, Properties: reason, ReasonCodes: []ReasonCode{Success, NoSubscriptionExisted}}}},
		{"PINGREQ 3.1.1", Level311, Packet{Type: TypePingreq}},
		{"PINGRESP 3.1.1", Level311, Packet{Type: TypePingresp}},
		{"PINGREQ 5.0", Level5, Packet{Type: TypePingreq}},
		{"PINGRESP 5.0", Level5, Packet{Type: TypePingresp}},
		{"DISCONNECT 3.1.1", Level311, Packet{Type: TypeDisconnect}},
		{"DISCONNECT 5.0 normal", Level5, Packet{Type: TypeDisconnect}},
		{"DISCONNECT 5.0 with will", Level5, Packet{Type: TypeDisconnect, Disconnect: Disconnect{Reason: DisconnectWithWillMessage}}},
		{"DISCONNECT 5.0 server moved", Level5, Packet{Type: TypeDisconnect, Disconnect: Disconnect{Reason: ServerMoved, Properties: disconnectProps}}},
		{"AUTH 5.0 bare success", Level5, Packet{Type: TypeAuth}},
		{"AUTH 5.0 continue", Level5, Packet{Type: TypeAuth, Auth: Auth{Reason: ContinueAuthentication, Properties: authProps}}},
	}
	return cases
}

// TestRoundTrip encodes every packet at its level, decodes it, and expects
// the same packet back, the whole buffer consumed, and ErrIncomplete for
// every shorter prefix.
func TestRoundTrip(t *testing.T) {
	for _, tc := range roundTripCases() {
		t.Run(tc.name, func(t *testing.T) {
			buf := AppendPacket(nil, tc.level, &tc.p)
			start := tc.level
			if tc.p.Type == TypeConnect {
				start = 0 // CONNECT is decoded before the level is known
			}
			d := Decoder{Level: start}
			var got Packet
			n, err := d.Decode(buf, &got)
			if err != nil {
				t.Fatalf("decode % x: %v", buf[:min(len(buf), 64)], err)
			}
			if n != len(buf) {
				t.Fatalf("decode consumed %d of %d bytes", n, len(buf))
			}
			if got.Type != tc.p.Type {
				t.Fatalf("type %v, want %v", got.Type, tc.p.Type)
			}
			if want, have := content(&tc.p), content(&got); !reflect.DeepEqual(want, have) {
				t.Fatalf("decoded\n%+v\nwant\n%+v", have, want)
			}
			if d.Level != tc.level {
				t.Fatalf("decoder level %v after decoding, want %v", d.Level, tc.level)
			}
			// Re-encoding the decoded packet gives the same bytes.
			if again := AppendPacket(nil, tc.level, &got); !bytes.Equal(again, buf) {
				t.Fatalf("re-encoded\n% x\nwant\n% x", again, buf)
			}
			// Every proper prefix is incomplete; once the fixed header is
			// there the decoder says how long the packet is.
			for i := 0; i < len(buf) && i < 600; i++ {
				d := Decoder{Level: start}
				n, err := d.Decode(buf[:i], &got)
				if !errors.Is(err, ErrIncomplete) {
					t.Fatalf("prefix of %d bytes: %v, want ErrIncomplete", i, err)
				}
				if n != 0 && n != len(buf) {
					t.Fatalf("prefix of %d bytes: need %d, want %d", i, n, len(buf))
				}
			}
		})
	}
}

// TestDecodeStream decodes packets one after another from one buffer, as
// the gateway does with a read that holds several, into one reused Packet.
func TestDecodeStream(t *testing.T) {
	for _, level := range []Level{Level311, Level5} {
		var stream []byte
		var want []any
		for _, tc := range roundTripCases() {
			if tc.level != level && !(level == Level311 && tc.level == Level31) || tc.p.Type == TypeConnect {
				continue
			}
			stream = AppendPacket(stream, level, &tc.p)
			want = append(want, content(&tc.p))
		}
		d := Decoder{Level: level}
		var p Packet
		for i := 0; len(stream) > 0; i++ {
			n, err := d.Decode(stream, &p)
			if err != nil {
				t.Fatalf("level %v packet %d: %v", level, i, err)
			}
			if got := content(&p); !reflect.DeepEqual(got, want[i]) {
				t.Fatalf("level %v packet %d:\n%+v\nwant\n%+v", level, i, got, want[i])
			}
			stream = stream[n:]
		}
	}
}
