package monitor

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/go-stomp/stomp/v3"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/ledgemq/ledge/amqpgw"
	"github.com/ledgemq/ledge/auth"
	"github.com/ledgemq/ledge/auth/authtest"
	"github.com/ledgemq/ledge/broker"
	"github.com/ledgemq/ledge/log"
	"github.com/ledgemq/ledge/mqttgw"
	"github.com/ledgemq/ledge/natsgw"
	lnet "github.com/ledgemq/ledge/net"
	"github.com/ledgemq/ledge/router"
	"github.com/ledgemq/ledge/stompgw"
)

const testTimeout = 10 * time.Second

// rig is a broker with every gateway on 127.0.0.1:0 and the monitor in
// front of it, put together as cmd/ledge does.
type rig struct {
	b                            *broker.Broker
	live                         *router.Router[broker.Receiver]
	natsAddr, mqttAddr, amqpAddr string
	stompAddr                    string
	mon                          *Server
	http                         *httptest.Server
	src                          Sources
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newRig(t testing.TB, opts Options) *rig {
	t.Helper()
	metrics := &log.Metrics{}
	dir := t.TempDir()
	b, err := broker.Open(broker.Options{Dir: dir, LogMetrics: metrics, Logger: quietLogger(), StateFlushInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{b: b, live: router.New[broker.Receiver](router.Options{})}
	var servers []*lnet.Server
	t.Cleanup(func() {
		for _, s := range servers {
			s.Close()
		}
		b.Close()
	})
	listen := func(name string, h lnet.Handler, maxInput int) *lnet.Server {
		ln, err := lnet.Listen("tcp", "127.0.0.1:0", h, lnet.Options{MaxInput: maxInput})
		if err != nil {
			t.Fatal(err)
		}
		servers = append(servers, ln)
		r.src.Listeners = append(r.src.Listeners, Listener{Name: name, Protocol: name, Addr: ln.Addr().String(), Stats: ln.Stats})
		return ln
	}
	ng := natsgw.NewServer(natsgw.Options{Logger: quietLogger(), Broker: b, Live: r.live})
	r.natsAddr = listen("nats", ng.Handler(), ng.MaxInput()).Addr().String()
	mg, err := mqttgw.NewServer(mqttgw.Options{Logger: quietLogger()}, r.live, b)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(mg.Close)
	r.mqttAddr = listen("mqtt", mg.Handler(), mg.MaxInput()).Addr().String()
	ag, err := amqpgw.NewServer(amqpgw.Options{Logger: quietLogger()}, r.live, b)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ag.Close)
	r.amqpAddr = listen("amqp", ag.Handler(), ag.MaxInput()).Addr().String()
	// STOMP requires a login, so that a refused one can be counted.
	logins := auth.New(auth.Options{Logger: quietLogger(), Policy: authtest.Policy(t, "[user guest]\npassword = plain:guest\nroles = admin\n")})
	t.Cleanup(logins.Close)
	sg, err := stompgw.NewServer(stompgw.Options{Logger: quietLogger(), Auth: logins}, ag)
	if err != nil {
		t.Fatal(err)
	}
	r.stompAddr = listen("stomp", sg.Handler(), sg.MaxInput()).Addr().String()

	st := ng.Settings()
	r.src.NATS = &NATSSettings{ServerID: st.ServerID, MaxPayload: st.MaxPayload, MaxControlLine: st.MaxControlLine,
		PingInterval: st.PingInterval, MaxPingsOut: st.MaxPingsOut, AuthTimeout: st.AuthTimeout, Version: st.ProtocolVersion}
	r.src.Protocols = []Protocol{NATS(ng), MQTT(mg), AMQP(ag), STOMP(sg)}
	r.src.Broker, r.src.LogMetrics, r.src.Sync = b, metrics, "always"
	r.src.Router = func() (int, int) { return r.live.Count(), r.live.CachedSubjects() }

	if opts.DataDir == "" {
		opts.DataDir = dir
	}
	// The machine's disk is not the test's business unless it says so.
	if opts.DiskWarnUsed == 0 {
		opts.DiskWarnUsed = 1
	}
	if opts.DiskMinFree == 0 {
		opts.DiskMinFree = 1
	}
	if opts.Logger == nil {
		opts.Logger = quietLogger()
	}
	if opts.ServerName == "" {
		opts.ServerName = "test-gw"
	}
	if opts.Version == "" {
		opts.Version = "v0.0.0-test"
	}
	r.mon = New(opts)
	r.mon.Attach(r.src)
	r.http = httptest.NewServer(r.mon.Handler())
	t.Cleanup(r.http.Close)
	return r
}

// do makes a request and returns the status and body.
func (r *rig) do(t testing.TB, method, path string, hdr ...string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, r.http.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := r.http.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

// getJSON gets path, wants 200 and decodes the body into v.
func (r *rig) getJSON(t testing.TB, path string, v any) {
	t.Helper()
	status, body := r.do(t, http.MethodGet, path)
	if status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, status, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v\n%s", path, err, body)
	}
}

// waitFor polls cond, for numbers the broker updates on its own
// goroutines, with a deadline.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// traffic is what the tests make the broker count: clients of every
// protocol, a JetStream worker holding two of seven jobs, an AMQP worker
// holding one of three, a STOMP worker holding one of two, a retained
// MQTT message.
type traffic struct {
	nc       *nats.Conn
	js       jetstream.JetStream
	amqpConn *amqp.Connection
	mqtt     paho.Client
	stomp    *stomp.Conn
	stompSub *stomp.Subscription
}

func (r *rig) makeTraffic(t testing.TB) *traffic {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	tr := &traffic{}
	var err error
	tr.nc, err = nats.Connect("nats://"+r.natsAddr, nats.Name("golden-client"), nats.NoReconnect())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.nc.Close)
	if _, err := tr.nc.SubscribeSync("orders.*"); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.nc.QueueSubscribeSync("orders.new", "billing"); err != nil {
		t.Fatal(err)
	}
	tr.js, _ = jetstream.New(tr.nc)
	s, err := tr.js.CreateStream(ctx, jetstream.StreamConfig{Name: "JOBS", Subjects: []string{"jobs.>"}, Retention: jetstream.WorkQueuePolicy})
	if err != nil {
		t.Fatal(err)
	}
	for range 7 {
		if _, err := tr.js.Publish(ctx, "jobs.resize", []byte("image")); err != nil {
			t.Fatal(err)
		}
	}
	c, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "workers", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := c.Fetch(2, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for range batch.Messages() {
		n++ // held, never acknowledged
	}
	if n != 2 {
		t.Fatalf("fetched %d jobs, want 2", n)
	}
	for range 3 {
		if err := tr.nc.Publish("orders.new", []byte("order")); err != nil {
			t.Fatal(err)
		}
	}
	if err := tr.nc.Flush(); err != nil {
		t.Fatal(err)
	}

	tr.amqpConn, err = amqp.DialConfig("amqp://guest:guest@"+r.amqpAddr+"/", amqp.Config{Properties: amqp.Table{"connection_name": "billing-worker"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.amqpConn.Close() })
	ch, err := tr.amqpConn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("task_queue", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", "task_queue", false, false, amqp.Publishing{DeliveryMode: 2, Body: []byte("task")})
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := dc.WaitContext(ctx); !ok || err != nil {
			t.Fatalf("publish not confirmed: %v", err)
		}
	}
	if err := ch.Qos(1, 0, false); err != nil {
		t.Fatal(err)
	}
	msgs, err := ch.Consume("task_queue", "worker-1", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-msgs: // held, never acknowledged
	case <-time.After(testTimeout):
		t.Fatal("no AMQP delivery")
	}

	o := paho.NewClientOptions().AddBroker("tcp://" + r.mqttAddr).SetClientID("sensor-7").SetCleanSession(true).
		SetAutoReconnect(false).SetProtocolVersion(4).SetConnectTimeout(5 * time.Second)
	tr.mqtt = paho.NewClient(o)
	if tok := tr.mqtt.Connect(); !tok.WaitTimeout(testTimeout) || tok.Error() != nil {
		t.Fatalf("mqtt connect: %v", tok.Error())
	}
	t.Cleanup(func() { tr.mqtt.Disconnect(50) })
	if tok := tr.mqtt.Subscribe("site/+/temp", 1, func(paho.Client, paho.Message) {}); !tok.WaitTimeout(testTimeout) || tok.Error() != nil {
		t.Fatalf("mqtt subscribe: %v", tok.Error())
	}
	if tok := tr.mqtt.Publish("site/7/state", 1, true, "on"); !tok.WaitTimeout(testTimeout) || tok.Error() != nil {
		t.Fatalf("mqtt publish: %v", tok.Error())
	}

	tr.stomp, err = stomp.Dial("tcp", r.stompAddr, stomp.ConnOpt.Host("/"), stomp.ConnOpt.Login("guest", "guest"),
		stomp.ConnOpt.Header("client-id", "stomp-worker"), stomp.ConnOpt.Logger(quietStomp{}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.stomp.MustDisconnect() })
	for range 2 {
		if err := tr.stomp.Send("/queue/stomp_jobs", "text/plain", []byte("job"), stomp.SendOpt.Receipt,
			stomp.SendOpt.Header("persistent", "true")); err != nil {
			t.Fatalf("stomp send: %v", err)
		}
	}
	tr.stompSub, err = tr.stomp.Subscribe("/queue/stomp_jobs", stomp.AckClientIndividual, stomp.SubscribeOpt.Id("jobs"),
		stomp.SubscribeOpt.Header("prefetch-count", "1"))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-tr.stompSub.C: // held, never acknowledged
		if m.Err != nil {
			t.Fatalf("stomp subscription: %v", m.Err)
		}
	case <-time.After(testTimeout):
		t.Fatal("no STOMP delivery")
	}
	return tr
}

// quietStomp keeps go-stomp's log out of the test output.
type quietStomp struct{}

func (quietStomp) Debugf(string, ...interface{})   {}
func (quietStomp) Infof(string, ...interface{})    {}
func (quietStomp) Warningf(string, ...interface{}) {}
func (quietStomp) Errorf(string, ...interface{})   {}
func (quietStomp) Debug(string)                    {}
func (quietStomp) Info(string)                     {}
func (quietStomp) Warning(string)                  {}
func (quietStomp) Error(string)                    {}

// findQueue returns the queue row of stream and consumer.
func findQueue(t testing.TB, l QueueList, stream, consumer string) QueueRow {
	t.Helper()
	for _, q := range l.Queues {
		if q.Stream == stream && q.Consumer == consumer {
			return q
		}
	}
	var have []string
	for _, q := range l.Queues {
		have = append(have, q.Stream+"/"+q.Consumer)
	}
	t.Fatalf("no queue %s/%s in %s", stream, consumer, strings.Join(have, " "))
	return QueueRow{}
}
