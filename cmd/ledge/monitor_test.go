package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/ledgemq/ledge/monitor"
)

func TestHTTPAddrSetting(t *testing.T) {
	cfg, err := loadConfig(nil, env(nil), &bytes.Buffer{})
	if err != nil || cfg.monitor.addr != ":8222" || cfg.monitor.top != 20 {
		t.Fatalf("default: %v %+v", err, cfg.monitor)
	}
	cfg, err = loadConfig(nil, env(map[string]string{"LEDGE_HTTP_ADDR": "127.0.0.1:9999"}), &bytes.Buffer{})
	if err != nil || cfg.monitor.addr != "127.0.0.1:9999" {
		t.Fatalf("LEDGE_HTTP_ADDR: %v %+v", err, cfg.monitor)
	}
	for _, args := range [][]string{{"-http-tls"}, {"-metrics-top", "0"}} {
		if _, err := loadConfig(args, env(nil), &bytes.Buffer{}); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}

// ctl runs "ledge ctl" against the broker at httpAddr and returns what it
// printed.
func ctl(t *testing.T, httpAddr string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	err := runCtl(ctx, append(args, "-url", "http://"+httpAddr), env(nil), &out, &errOut)
	return out.String(), err
}

// TestCtlOverHTTP leaves an AMQP worker holding one of three messages and
// works on the broker with ledge ctl, the way an operator would: look,
// peek, purge, close the worker, and get clear errors for wrong names.
func TestCtlOverHTTP(t *testing.T) {
	var logs syncBuffer
	l, stop := startBrokerAll(t, filepath.Join(t.TempDir(), "data"), &logs)
	defer stop()
	h := l["http"]

	conn, err := amqp.DialConfig("amqp://guest:guest@"+l["amqp"]+"/", amqp.Config{Properties: amqp.Table{"connection_name": "worker-7"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	ch, _ := conn.Channel()
	if _, err := ch.QueueDeclare("task_queue", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	_ = ch.Confirm(false)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range 3 {
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", "task_queue", false, false, amqp.Publishing{DeliveryMode: 2, Body: []byte("job " + strconv.Itoa(i))})
		if err != nil {
			t.Fatal(err)
		}
		if ok, _ := dc.WaitContext(ctx); !ok {
			t.Fatal("not confirmed")
		}
	}
	_ = ch.Qos(1, 0, false)
	msgs, _ := ch.Consume("task_queue", "", false, false, false, false, nil)
	select {
	case <-msgs:
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery")
	}

	out, err := ctl(t, h, "list_queues", "name", "messages_ready", "messages_unacknowledged")
	if want := "Listing queues for vhost / ...\nname\tmessages_ready\tmessages_unacknowledged\ntask_queue\t2\t1\n"; err != nil || out != want {
		t.Fatalf("list_queues: %v\n%q\nwant\n%q", err, out, want)
	}
	out, err = ctl(t, h, "connections")
	if err != nil || !strings.Contains(out, "worker-7") || !strings.Contains(out, "amqp") {
		t.Fatalf("connections: %v\n%s", err, out)
	}
	// --json prints the API's own answer, after the arguments too.
	out, err = ctl(t, h, "connections", "-protocol", "amqp", "--json")
	var cl monitor.ConnList
	if err != nil || json.Unmarshal([]byte(out), &cl) != nil || cl.Total != 1 || cl.Connections[0].Name != "worker-7" {
		t.Fatalf("connections --json: %v\n%s", err, out)
	}
	out, err = ctl(t, h, "peek", "AMQP_q_task_queue", "amqp", "-limit", "5")
	if err != nil || !strings.Contains(out, `"job 0"`) || !strings.Contains(out, "delivered") || !strings.Contains(out, "ready") {
		t.Fatalf("peek: %v\n%s", err, out)
	}
	for _, cmd := range [][]string{{"server"}, {"health"}, {"streams"}, {"subscriptions"}, {"retained"}, {"uplinks"}} {
		if out, err := ctl(t, h, cmd...); err != nil || out == "" {
			t.Errorf("%v: %v\n%s", cmd, err, out)
		}
	}

	out, err = ctl(t, h, "purge_queue", "task_queue")
	if err != nil || !strings.Contains(out, "3 messages removed") {
		t.Fatalf("purge_queue: %v\n%s", err, out)
	}
	out, _ = ctl(t, h, "list_queues", "name", "messages_ready")
	if !strings.Contains(out, "task_queue\t0\n") {
		t.Errorf("after purge: %q", out)
	}

	if _, err := ctl(t, h, "close_connection", "amqp", strconv.FormatUint(cl.Connections[0].ID, 10)); err != nil {
		t.Fatalf("close_connection: %v", err)
	}
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the AMQP client did not see its connection closed")
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"delete_stream", "NOPE"}, `no stream "NOPE" (HTTP 404)`},
		{[]string{"purge_queue", "nobody"}, `no queue named "nobody"`},
		{[]string{"close_connection", "amqp", "12345"}, "no amqp connection 12345 (HTTP 404)"},
		{[]string{"close_connection", "amqp", "x"}, "not a number"},
		{[]string{"delete_stream", "MQTT_retained"}, "HTTP 409"},
		{[]string{"delete_consumer", "JOBS"}, "want STREAM CONSUMER"},
		{[]string{"list_queues", "pid"}, `column "pid"`},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
	} {
		if _, err := ctl(t, h, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
	// A broker that is not there.
	if _, err := ctl(t, "127.0.0.1:1", "server"); err == nil || !strings.Contains(err.Error(), "is the broker's HTTP port") {
		t.Errorf("no broker: %v", err)
	}

	// The console and the probes are on the same port.
	for path, want := range map[string]int{"/": 200, "/healthz": 200, "/readyz": 200, "/metrics": 200, "/varz": 200} {
		resp, err := http.Get("http://" + h + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s: %d", path, resp.StatusCode)
		}
	}
	if !strings.Contains(logs.String(), "http="+h) {
		t.Errorf("the ready line does not name the HTTP port:\n%s", logs.String())
	}
}
