package mqttgw

import (
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/ledgemq/ledge/auth"
	"github.com/ledgemq/ledge/broker"
	"github.com/ledgemq/ledge/mqttgw/packet"
	"github.com/ledgemq/ledge/router"
)

// benchUsers is a users file of n devices, each with a token, that may
// publish only under site/<its name>/.
func benchUsers(n int) string {
	var b strings.Builder
	b.WriteString("[group devices]\npublish = site/%u/#\nsubscribe = cmd/%c/#\n")
	for i := range n {
		fmt.Fprintf(&b, "[user dev-%d]\ntoken = %s\ngroups = devices\n", i, auth.TokenDigest(fmt.Sprint("tok-", i)))
	}
	return b.String()
}

// devices connects n device sessions, without a network, as their users
// when svc is set, and returns them with each one's QoS 0 PUBLISH.
func devices(tb testing.TB, srv *Server, svc *auth.Service, n int) ([]*Session, [][]byte) {
	var sessions []*Session
	var pubs [][]byte
	for i := range n {
		ss := srv.Open(&discardConn{}, "10.0.0.1")
		if svc != nil {
			cl, pending, err := svc.Authenticate(&auth.Request{Protocol: auth.MQTT, Token: fmt.Sprint("tok-", i),
				ClientID: fmt.Sprint("c-", i), Remote: &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1)}}, nil)
			if err != nil || pending {
				tb.Fatalf("login: %v", err)
			}
			ss.client = cl
			ss.limitsChanged()
		}
		connect := packet.AppendConnect(nil, &packet.Connect{Level: packet.Level311, CleanStart: true, ClientID: fmt.Appendf(nil, "c-%d", i)})
		if _, err := ss.Feed(connect); err != nil || !ss.connected {
			tb.Fatalf("connect: %v", err)
		}
		sessions = append(sessions, ss)
		pubs = append(pubs, packet.AppendPublish(nil, packet.Level311, &packet.Publish{Topic: fmt.Appendf(nil, "site/dev-%d/temp", i), Payload: []byte("0123456789abcdef")}))
	}
	return sessions, pubs
}

// BenchmarkIngestQoS0Users is MQTT QoS 0 ingest from 1,000 devices to one
// subscriber of site/#, without auth and with a rule per device.
func BenchmarkIngestQoS0Users(b *testing.B) {
	const n = 1000
	for _, withAuth := range []bool{false, true} {
		name := "none"
		if withAuth {
			name = "rules"
		}
		b.Run(name, func(b *testing.B) {
			var svc *auth.Service
			if withAuth {
				p, err := auth.Parse("bench", strings.NewReader(benchUsers(n)))
				if err != nil {
					b.Fatal(err)
				}
				svc = auth.New(auth.Options{Policy: p, Logger: quietLogger()})
				defer svc.Close()
			}
			live := router.New[broker.Receiver](router.Options{})
			srv, err := NewServer(Options{Logger: quietLogger(), SysInterval: -1}, live, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer srv.Close()
			sub := srv.Open(&discardConn{}, "10.0.0.1")
			sub.Feed(packet.AppendConnect(nil, &packet.Connect{Level: packet.Level311, CleanStart: true, ClientID: []byte("sink")}))
			sub.Feed(packet.AppendSubscribe(nil, packet.Level311, &packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: []byte("site/#")}}}))
			sessions, pubs := devices(b, srv, svc, n)
			b.SetBytes(16)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				k := i % n
				if _, err := sessions[k].Feed(pubs[k]); err != nil {
					b.Fatal(err)
				}
				i++
			}
			if got := srv.Stats().Denied.Load(); got != 0 {
				b.Fatalf("%d denied", got)
			}
		})
	}
}

// TestIngestWithRulesAddsNoAllocation: a QoS 0 publish under a device's
// rules allocates no more than one without auth.
func TestIngestWithRulesAddsNoAllocation(t *testing.T) {
	p, err := auth.Parse("t", strings.NewReader(benchUsers(10)))
	if err != nil {
		t.Fatal(err)
	}
	svc := auth.New(auth.Options{Policy: p, Logger: quietLogger()})
	defer svc.Close()
	measure := func(svc *auth.Service) float64 {
		live := router.New[broker.Receiver](router.Options{})
		srv, err := NewServer(Options{Logger: quietLogger(), SysInterval: -1}, live, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		sessions, pubs := devices(t, srv, svc, 10)
		for k := range sessions {
			sessions[k].Feed(pubs[k])
		}
		i := 0
		allocs := testing.AllocsPerRun(1000, func() {
			k := i % 10
			sessions[k].Feed(pubs[k])
			i++
		})
		if srv.Stats().Denied.Load() != 0 || srv.Stats().InMsgs.Load() == 0 {
			t.Errorf("denied %d, in %d", srv.Stats().Denied.Load(), srv.Stats().InMsgs.Load())
		}
		return allocs
	}
	without, with := measure(nil), measure(svc)
	if with > without {
		t.Errorf("a QoS 0 publish allocates %.1f times under rules, %.1f without", with, without)
	}
}
