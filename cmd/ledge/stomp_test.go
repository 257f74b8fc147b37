package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/go-stomp/stomp/v3"
	"github.com/nats-io/nats.go"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/ledgemq/ledge/monitor"
)

func dialSTOMP(t *testing.T, addr string, opts ...func(*stomp.Conn) error) *stomp.Conn {
	t.Helper()
	c, err := stomp.Dial("tcp", addr, append([]func(*stomp.Conn) error{stomp.ConnOpt.Host("/")}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Disconnect() })
	return c
}

func nextSTOMP(t *testing.T, sub *stomp.Subscription) *stomp.Message {
	t.Helper()
	select {
	case m := <-sub.C:
		if m == nil || m.Err != nil {
			t.Fatalf("subscription: %v", m)
		}
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no STOMP message within 5s")
	}
	return nil
}

// The whole broker: a STOMP SEND to /topic reaches NATS and MQTT
// subscribers, an AMQP queue is read through /amq/queue, and the queues
// STOMP makes are listed by "ledge ctl list_queues".
func TestSTOMPMeetsTheOtherProtocols(t *testing.T) {
	var logs syncBuffer
	l, stop := startBrokerAll(t, filepath.Join(t.TempDir(), "data"), &logs)
	t.Cleanup(func() { _ = stop() })
	for _, p := range []string{"stomp", "stomp-ws"} {
		if l[p] == "" {
			t.Fatalf("no %s listener: %v", p, l)
		}
	}
	nc, err := nats.Connect("nats://" + l["nats"])
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ns, _ := nc.SubscribeSync("site.*.temp")
	nc.Flush()
	dev := mqttClient(t, l["mqtt"], "device-9")
	got := make(chan paho.Message, 1)
	if tok := dev.Subscribe("site/+/temp", 1, func(_ paho.Client, m paho.Message) { got <- m }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}

	c := dialSTOMP(t, l["stomp"])
	if err := c.Send("/topic/site.3.temp", "text/plain", []byte("19"), stomp.SendOpt.Receipt); err != nil {
		t.Fatal(err)
	}
	if m, err := ns.NextMsg(5 * time.Second); err != nil || m.Subject != "site.3.temp" || string(m.Data) != "19" {
		t.Fatalf("NATS got %v %v", m, err)
	}
	select {
	case m := <-got:
		if m.Topic() != "site/3/temp" || string(m.Payload()) != "19" {
			t.Fatalf("MQTT got %s %q", m.Topic(), m.Payload())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("MQTT got nothing")
	}

	conn, err := amqp.Dial("amqp://guest:guest@" + l["amqp"] + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, _ := conn.Channel()
	if _, err := ch.QueueDeclare("orders", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.PublishWithContext(context.Background(), "", "orders", false, false, amqp.Publishing{Body: []byte("order 1")}); err != nil {
		t.Fatal(err)
	}
	sub, err := c.Subscribe("/amq/queue/orders", stomp.AckClientIndividual)
	if err != nil {
		t.Fatal(err)
	}
	m := nextSTOMP(t, sub) // held unacknowledged
	if string(m.Body) != "order 1" {
		t.Fatalf("STOMP got %q", m.Body)
	}
	if err := c.Send("/queue/stomp-made", "", []byte("x"), stomp.SendOpt.Receipt); err != nil {
		t.Fatal(err)
	}

	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := runCtl(ctx, []string{"list_queues", "-url", "http://" + l["http"], "name", "messages_ready", "messages_unacknowledged", "consumers"}, env(nil), &out, &errOut); err != nil {
		t.Fatalf("ctl: %v\n%s", err, errOut.String())
	}
	for _, want := range []string{"orders\t0\t1\t1\n", "stomp-made\t1\t0\t0\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("list_queues lacks %q:\n%s", want, out.String())
		}
	}
}

// STOMP listens where the flags and the environment say, over TLS once a
// certificate is given, and the ready line names every listener.
func TestSTOMPListeners(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := writeTestCert(t, dir)
	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan listening, 1)
	done := make(chan error, 1)
	var logs syncBuffer
	go func() {
		done <- run(ctx, []string{"-nats-addr", "", "-mqtt-addr", "", "-mqtt-ws-addr", "", "-amqp-addr", "", "-http-addr", "",
			"-stomp-ws-addr", "", "-stomp-tls-addr", "127.0.0.1:0", "-tls-cert", certFile, "-tls-key", keyFile,
			"-data-dir", filepath.Join(dir, "data")},
			env(map[string]string{"LEDGE_STOMP_ADDR": "127.0.0.1:0", "LEDGE_USER": "app", "LEDGE_PASSWORD": "pw"}), &logs,
			func(l listening) { addrs <- l })
	}()
	var l listening
	select {
	case l = <-addrs:
	case err := <-done:
		t.Fatalf("broker did not start: %v\n%s", err, logs.String())
	case <-time.After(10 * time.Second):
		t.Fatal("broker did not start in time")
	}
	defer func() { cancel(); <-done }()
	if _, ok := l["stomp-ws"]; ok || l["stomp"] == "" || l["stomp-tls"] == "" {
		t.Fatalf("listeners %v", l)
	}
	if out := logs.String(); !strings.Contains(out, "stomp="+l["stomp"]) || !strings.Contains(out, "stomp-tls="+l["stomp-tls"]) {
		t.Fatalf("ready line:\n%s", out)
	}
	if _, err := stomp.Dial("tcp", l["stomp"], stomp.ConnOpt.Login("app", "nope")); err == nil {
		t.Fatal("wrong passcode accepted")
	}
	nc, err := tls.Dial("tcp", l["stomp-tls"], &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := stomp.Connect(nc, stomp.ConnOpt.Host("/"), stomp.ConnOpt.Login("app", "pw"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect()
	sub, err := c.Subscribe("/queue/tls", stomp.AckAuto)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Send("/queue/tls", "", []byte("secure"), stomp.SendOpt.Receipt); err != nil {
		t.Fatal(err)
	}
	if m := nextSTOMP(t, sub); string(m.Body) != "secure" {
		t.Fatalf("got %q", m.Body)
	}
}

// writeTestCert writes a self-signed certificate for 127.0.0.1 and its
// key as PEM files.
func writeTestCert(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "ledge test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(leaf)
	return certFile, keyFile, pool
}

// The STOMP gateway is on the HTTP port: its connection with its counts
// in "ledge ctl connections" and in /metrics.
func TestSTOMPOnTheHTTPPort(t *testing.T) {
	var logs syncBuffer
	l, stop := startBrokerAll(t, filepath.Join(t.TempDir(), "data"), &logs)
	t.Cleanup(func() { _ = stop() })
	c := dialSTOMP(t, l["stomp"], stomp.ConnOpt.Header("client-id", "ctl-worker"))
	for range 3 {
		if err := c.Send("/queue/ctl_jobs", "text/plain", []byte("job"), stomp.SendOpt.Receipt); err != nil {
			t.Fatal(err)
		}
	}
	sub, err := c.Subscribe("/queue/ctl_jobs", stomp.AckClientIndividual, stomp.SubscribeOpt.Header("prefetch-count", "1"))
	if err != nil {
		t.Fatal(err)
	}
	nextSTOMP(t, sub)

	var cl monitor.ConnList
	deadline := time.Now().Add(5 * time.Second)
	for {
		out, err := ctl(t, l["http"], "connections", "-protocol", "stomp", "--json")
		if err != nil {
			t.Fatalf("ctl connections: %v\n%s", err, out)
		}
		cl = monitor.ConnList{}
		if err := json.Unmarshal([]byte(out), &cl); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if cl.Total == 1 && cl.Connections[0].OutMsgs == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ctl connections -protocol stomp: %+v", cl)
		}
		time.Sleep(10 * time.Millisecond)
	}
	sc := cl.Connections[0]
	if sc.ClientID != "ctl-worker" || sc.ProtocolVersion != "1.2" || sc.InMsgs != 3 || sc.Inflight != 1 || sc.Subscriptions != 1 {
		t.Errorf("the STOMP connection: %+v", sc)
	}
	out, err := ctl(t, l["http"], "subscriptions", "-protocol", "stomp")
	if err != nil || !strings.Contains(out, "/queue/ctl_jobs") {
		t.Errorf("ctl subscriptions -protocol stomp: %v\n%s", err, out)
	}
	resp, err := http.Get("http://" + l["http"] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`ledge_connections{protocol="stomp"} 1`, `ledge_messages_received_total{protocol="stomp"} 3`,
		`ledge_messages_sent_total{protocol="stomp"} 1`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics has no %s", want)
		}
	}
}
