package monitor

import (
	"github.com/ledgemq/ledge/amqpgw"
	"github.com/ledgemq/ledge/mqttgw"
	"github.com/ledgemq/ledge/natsgw"
	"github.com/ledgemq/ledge/stompgw"
)

// The gateways as the monitor reads them. A protocol is one function here
// turning its gateway's accessors (stats.go of each gateway) into a
// Protocol, and one line where the broker is assembled.

// NATS reads the NATS gateway.
func NATS(gw *natsgw.Server) Protocol {
	return Protocol{
		Name: "nats",
		Totals: func() Totals {
			s := gw.Stats()
			return Totals{Connections: gw.ConnCount(), InMsgs: s.InMsgs.Load(), OutMsgs: s.OutMsgs.Load(),
				InBytes: s.InBytes.Load(), OutBytes: s.OutBytes.Load(),
				AuthFailures: s.AuthFailures.Load(), ProtocolErrors: s.ProtocolErrors.Load()}
		},
		Conns: func() []Conn {
			var out []Conn
			for _, c := range gw.Conns() {
				mc := Conn{ID: c.ID, Name: c.Name, Addr: c.IP, User: c.User, Lang: c.Lang, Version: c.Version,
					Subscriptions: c.Subscriptions, InMsgs: c.InMsgs, OutMsgs: c.OutMsgs}
				if c.Network {
					mc.fromNet(c.Remote, c.Net, c.Pending)
				}
				out = append(out, mc)
			}
			return out
		},
		Close: func(id uint64) bool { return gw.CloseConn(id, errClosedByOperator) },
		Subscriptions: func() []Subscription {
			var out []Subscription
			for _, s := range gw.Subscriptions() {
				out = append(out, Subscription{ConnID: s.ConnID, Subject: s.Subject, Queue: s.Queue, SID: s.SID,
					Delivered: s.Delivered, Max: s.Max})
			}
			return out
		},
	}
}

// MQTT reads the MQTT gateway.
func MQTT(gw *mqttgw.Server) Protocol {
	return Protocol{
		Name: "mqtt",
		Totals: func() Totals {
			s := gw.Stats()
			return Totals{Connections: int(s.Connections.Load()), InMsgs: s.InMsgs.Load(), OutMsgs: s.OutMsgs.Load(),
				InBytes: s.InBytes.Load(), OutBytes: s.OutBytes.Load(), Dropped: s.Dropped.Load(), AuthFailures: s.AuthFailures.Load(),
				ProtocolErrors: s.ProtocolErrors.Load()}
		},
		Conns: func() []Conn {
			var out []Conn
			for _, c := range gw.Conns() {
				mc := Conn{ID: c.ID, ClientID: c.ClientID, Addr: c.IP, User: c.User, ProtocolVersion: c.Version,
					Subscriptions: len(c.Subscriptions), Subjects: c.Subscriptions, InMsgs: c.InMsgs, OutMsgs: c.OutMsgs,
					KeepAlive: c.KeepAlive.Seconds(), Clean: c.Clean, Persistent: c.Persistent, WebSocket: c.WebSocket,
					Inflight: c.Inflight, Queued: c.Queued}
				if c.Network {
					mc.fromNet(c.Remote, c.Net, c.Pending)
				}
				out = append(out, mc)
			}
			return out
		},
		Close: func(id uint64) bool { return gw.CloseConn(id, errClosedByOperator) },
		Subscriptions: func() []Subscription {
			var out []Subscription
			for _, s := range gw.Subscriptions() {
				out = append(out, Subscription{Client: s.ClientID, Subject: s.Filter, Queue: s.Group, QoS: int(s.QoS)})
			}
			return out
		},
		Retained: func(filter string) ([]Retained, error) {
			list, err := gw.Retained(filter)
			out := make([]Retained, len(list))
			for i, m := range list {
				out[i] = Retained{Topic: m.Topic, QoS: m.QoS, Payload: m.Payload}
			}
			return out, err
		},
	}
}

// AMQP reads the AMQP gateway.
func AMQP(gw *amqpgw.Server) Protocol {
	return Protocol{
		Name: "amqp",
		Totals: func() Totals {
			s := gw.Stats()
			return Totals{Connections: gw.ConnCount(), InMsgs: s.InMsgs.Load(), OutMsgs: s.OutMsgs.Load(),
				InBytes: s.InBytes.Load(), OutBytes: s.OutBytes.Load(), AuthFailures: s.AuthFailures.Load(),
				ProtocolErrors: s.ProtocolErrors.Load()}
		},
		Conns: func() []Conn {
			var out []Conn
			for _, c := range gw.Conns() {
				mc := Conn{ID: c.ID, Name: c.Name, User: c.User, Lang: c.Product, Version: c.Version,
					ProtocolVersion: "0-9-1", Channels: c.Channels, InMsgs: c.InMsgs, OutMsgs: c.OutMsgs}
				mc.fromNet(c.Remote, c.Net, c.Pending)
				out = append(out, mc)
			}
			return out
		},
		Close: func(id uint64) bool { return gw.CloseConn(id, errClosedByOperator) },
		Queues: func() []QueueRef {
			var out []QueueRef
			for _, q := range gw.QueueRefs() {
				out = append(out, QueueRef{Name: q.Name, Stream: q.Stream, Consumer: q.Consumer, Consumers: q.Consumers,
					Durable: q.Durable, Exclusive: q.Exclusive, AutoDelete: q.AutoDelete})
			}
			return out
		},
	}
}

// STOMP reads the STOMP gateway. Its queues are the AMQP gateway's, listed
// there.
func STOMP(gw *stompgw.Server) Protocol {
	return Protocol{
		Name: "stomp",
		Totals: func() Totals {
			s := gw.Stats()
			return Totals{Connections: gw.ConnCount(), InMsgs: s.InMsgs.Load(), OutMsgs: s.OutMsgs.Load(),
				InBytes: s.InBytes.Load(), OutBytes: s.OutBytes.Load(), AuthFailures: s.AuthFailures.Load(),
				ProtocolErrors: s.ProtocolErrors.Load()}
		},
		Conns: func() []Conn {
			var out []Conn
			for _, c := range gw.Conns() {
				mc := Conn{ID: c.ID, ClientID: c.ClientID, User: c.Login, ProtocolVersion: c.Version,
					Subscriptions: len(c.Subscriptions), InMsgs: c.InMsgs, OutMsgs: c.OutMsgs,
					KeepAlive: c.HeartBeatIn.Seconds(), WebSocket: c.WebSocket, Inflight: c.Unacked}
				for _, s := range c.Subscriptions {
					mc.Subjects = append(mc.Subjects, s.Destination)
				}
				mc.fromNet(c.Remote, c.Net, c.Pending)
				out = append(out, mc)
			}
			return out
		},
		Close: func(id uint64) bool { return gw.CloseConn(id, errClosedByOperator) },
		Subscriptions: func() []Subscription {
			var out []Subscription
			for _, s := range gw.Subscriptions() {
				out = append(out, Subscription{ConnID: s.ConnID, Subject: s.Destination, Queue: s.Queue, SID: s.ID,
					Delivered: s.Delivered})
			}
			return out
		},
	}
}
