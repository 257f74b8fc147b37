package monitor

import (
	"bufio"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3"
	"github.com/nats-io/nats-server/v2/server"
)

// TestSTOMPMonitoring finds the go-stomp worker of the traffic (two
// persistent jobs sent, one held unacknowledged) in the API, /varz,
// /metrics and the subscriptions, counts a refused login and a
// malformed frame, and closes the worker's connection from the API,
// which gives its job back to the queue for the next worker.
func TestSTOMPMonitoring(t *testing.T) {
	r := newRig(t, Options{})
	tr := r.makeTraffic(t)

	var cl ConnList
	r.getJSON(t, "/api/connections?protocol=stomp&subs=true", &cl)
	if cl.Total != 1 {
		t.Fatalf("stomp connections: %+v", cl)
	}
	c := cl.Connections[0]
	if c.ClientID != "stomp-worker" || c.User != "guest" || c.ProtocolVersion != "1.2" || c.InMsgs != 2 || c.OutMsgs != 1 ||
		c.Inflight != 1 || c.Subscriptions != 1 || c.Addr == "" || c.InBytes == 0 || c.OutBytes == 0 || c.Start.IsZero() || c.KeepAlive == 0 {
		t.Errorf("stomp connection %+v", c)
	}
	var one Conn
	r.getJSON(t, "/api/connections/stomp/"+strconv.FormatUint(c.ID, 10), &one)
	if one.ClientID != "stomp-worker" || one.Protocol != "stomp" {
		t.Errorf("one stomp connection: %+v", one)
	}

	var sl SubList
	r.getJSON(t, "/api/subscriptions?protocol=stomp", &sl)
	if sl.Total != 1 || sl.Subscriptions[0].Subject != "/queue/stomp_jobs" || sl.Subscriptions[0].Queue != "stomp_jobs" ||
		sl.Subscriptions[0].SID == "" || sl.Subscriptions[0].Delivered != 1 || sl.Subscriptions[0].ConnID != c.ID {
		t.Errorf("stomp subscriptions: %+v", sl)
	}

	var ql QueueList
	r.getJSON(t, "/api/queues?name=stomp_jobs", &ql)
	if len(ql.Queues) != 1 || ql.Queues[0].Ready != 1 || ql.Queues[0].Unacked != 1 || ql.Queues[0].Consumers != 1 || !ql.Queues[0].Durable {
		t.Errorf("the STOMP worker's queue: %+v", ql.Queues)
	}

	// /varz counts every protocol's connections; /connz lists NATS
	// clients only, as nats-server's does.
	var v server.Varz
	r.getStrict(t, "/varz", &v)
	if v.Connections != 4 {
		t.Errorf("varz connections %d, want 4 (one per protocol)", v.Connections)
	}
	var cz server.Connz
	r.getStrict(t, "/connz", &cz)
	for _, ci := range cz.Conns {
		if ci.Type != "nats" {
			t.Errorf("connz lists a %s connection: %+v", ci.Type, ci)
		}
	}

	// A refused login and a frame of no command, each closing its
	// connection with an ERROR.
	rawSTOMP(t, r.stompAddr, "CONNECT\naccept-version:1.2\nhost:/\nlogin:guest\npasscode:wrong\n\n\x00", "access refused")
	rawSTOMP(t, r.stompAddr, "CONNECT\naccept-version:1.2\nhost:/\nlogin:guest\npasscode:guest\n\n\x00BOGUS\n\n\x00", "unknown command")
	var si ServerInfo
	waitFor(t, "the refusals counted", func() bool {
		r.getJSON(t, "/api/server", &si)
		p := protocolOf(si, "stomp")
		return p.AuthFailures == 1 && p.ProtocolErrors == 1
	})
	p := protocolOf(si, "stomp")
	if p.Connections != 1 || p.InMsgs != 2 || p.OutMsgs != 1 || p.InBytes != 6 || p.OutBytes != 3 {
		t.Errorf("stomp totals %+v", p)
	}
	fams := r.scrape(t)
	for _, m := range []struct {
		name string
		want float64
	}{{"ledge_auth_failures_total", 1}, {"ledge_protocol_errors_total", 1}, {"ledge_connections", 1}, {"ledge_messages_sent_total", 1}} {
		if got := value(t, fams, m.name, "protocol", "stomp"); got != m.want {
			t.Errorf("%s{protocol=stomp} = %v, want %v", m.name, got, m.want)
		}
	}

	// Closed by an operator: the client sees its connection end and the
	// job it held is ready again.
	status, body := r.do(t, http.MethodDelete, "/api/connections/stomp/"+strconv.FormatUint(c.ID, 10))
	if status != http.StatusOK {
		t.Fatalf("close: %d %s", status, body)
	}
	select {
	case m := <-tr.stompSub.C:
		if m == nil || m.Err == nil {
			t.Errorf("after the close the subscription got %+v", m)
		}
	case <-time.After(testTimeout):
		t.Fatal("the STOMP client did not see its connection closed")
	}
	waitFor(t, "the worker's subscription gone", func() bool {
		r.getJSON(t, "/api/queues?name=stomp_jobs", &ql)
		return len(ql.Queues) == 1 && ql.Queues[0].Consumers == 0
	})
	// The next worker gets both jobs, the held one marked redelivered.
	w, err := stomp.Dial("tcp", r.stompAddr, stomp.ConnOpt.Host("/"), stomp.ConnOpt.Login("guest", "guest"), stomp.ConnOpt.Logger(quietStomp{}))
	if err != nil {
		t.Fatal(err)
	}
	defer w.MustDisconnect()
	sub, err := w.Subscribe("/queue/stomp_jobs", stomp.AckAuto)
	if err != nil {
		t.Fatal(err)
	}
	var redelivered []string
	for range 2 {
		select {
		case m := <-sub.C:
			if m.Err != nil {
				t.Fatal(m.Err)
			}
			redelivered = append(redelivered, m.Header.Get("redelivered"))
		case <-time.After(testTimeout):
			t.Fatal("the next worker did not get both jobs")
		}
	}
	if redelivered[0] != "true" || redelivered[1] != "" {
		t.Errorf("redelivered headers %q, want the held job first and marked", redelivered)
	}
	var after ConnList // a fresh one: JSON leaves absent fields as they were
	r.getJSON(t, "/api/connections?protocol=stomp", &after)
	if after.Total != 1 || after.Connections[0].ID == c.ID || after.Connections[0].ClientID != "" || after.Connections[0].OutMsgs != 2 {
		t.Errorf("stomp connections after the close: %+v, want only the next worker's", after)
	}
	if status, _ := r.do(t, http.MethodDelete, "/api/connections/stomp/"+strconv.FormatUint(c.ID, 10)); status != http.StatusNotFound {
		t.Errorf("closing it again: %d, want 404", status)
	}
}

// rawSTOMP sends frames on a connection of its own and waits for the
// ERROR frame that names want, and the close after it.
func rawSTOMP(t *testing.T, addr, frames, want string) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(testTimeout))
	if _, err := nc.Write([]byte(frames)); err != nil {
		t.Fatal(err)
	}
	var got strings.Builder
	rd := bufio.NewReader(nc)
	for {
		b, err := rd.ReadByte()
		if err != nil {
			break // closed after the ERROR
		}
		got.WriteByte(b)
	}
	if !strings.Contains(got.String(), "ERROR\n") || !strings.Contains(got.String(), "message:"+want) {
		t.Errorf("after %q the broker sent %q, want an ERROR about %s", frames, got.String(), want)
	}
}

func protocolOf(si ServerInfo, name string) ProtocolInfo {
	for _, p := range si.Protocols {
		if p.Name == name {
			return p
		}
	}
	return ProtocolInfo{}
}
