// Command tlsload measures MQTT throughput over TLS: publishers send QoS 0
// messages as fast as the broker takes them, within a window of messages
// not yet received, to one subscriber of "bench/#", all over TLS, and it
// prints the subscriber's rate as JSON. It is benchmarks/tls.sh's load for
// MQTT, where ledge-bench's event-loop client has no TLS: each connection
// here is a goroutine with a crypto/tls connection, and the publishers
// write their messages in batches, so that the tool spends its time in
// TLS as the brokers do.
//
// With -gen DIR it writes a CA and a certificate for 127.0.0.1 (ca.pem,
// cert.pem, key.pem) for the brokers and the clients of a run.
package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ledgemq/ledge/mqttgw/packet"
)

func main() {
	gen := flag.String("gen", "", "write ca.pem, cert.pem and key.pem for 127.0.0.1 into `DIR` and exit")
	addr := flag.String("addr", "127.0.0.1:8883", "the broker's MQTT over TLS address")
	caFile := flag.String("ca", "ca.pem", "CA `FILE` to trust")
	pubs := flag.Int("pubs", 10, "publishers")
	count := flag.Int("count", 1000000, "messages in all")
	size := flag.Int("size", 100, "payload bytes")
	batch := flag.Int("batch", 64, "messages a publisher writes at once")
	ahead := flag.Int("max-ahead", 20000, "messages published and not yet received, at most")
	user := flag.String("user", "", "user name")
	pass := flag.String("password", "", "password")
	timeout := flag.Duration("timeout", 60*time.Second, "give up after")
	flag.Parse()
	if *gen != "" {
		if err := generate(*gen); err != nil {
			fmt.Fprintln(os.Stderr, "tlsload:", err)
			os.Exit(1)
		}
		return
	}
	res, err := run(*addr, *caFile, *user, *pass, *pubs, *count, *size, *batch, *ahead, *timeout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tlsload:", err)
	}
	json.NewEncoder(os.Stdout).Encode(res)
	if err != nil {
		os.Exit(1)
	}
}

type result struct {
	Received   int64   `json:"received"`
	Expected   int64   `json:"expected"`
	Seconds    float64 `json:"seconds"`
	MsgsPerSec float64 `json:"msgs_per_sec"`
}

func run(addr, caFile, user, pass string, pubs, count, size, batch, ahead int, timeout time.Duration) (result, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return result{}, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12, ServerName: "127.0.0.1"}
	dial := func(id string) (*tls.Conn, *bufio.Reader, error) {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
		if err != nil {
			return nil, nil, err
		}
		cp := &packet.Connect{Level: packet.Level311, CleanStart: true, KeepAlive: 60, ClientID: []byte(id)}
		if user != "" {
			cp.UsernameFlag, cp.Username, cp.PasswordFlag, cp.Password = true, []byte(user), true, []byte(pass)
		}
		if _, err := c.Write(packet.AppendConnect(nil, cp)); err != nil {
			return nil, nil, err
		}
		r := bufio.NewReaderSize(c, 64<<10)
		if t, _, err := readPacket(r); err != nil || t != packet.TypeConnack {
			return nil, nil, fmt.Errorf("connect %s: %v (packet %v)", id, err, t)
		}
		return c, r, nil
	}
	sub, sr, err := dial("tlsload-sub")
	if err != nil {
		return result{}, err
	}
	defer sub.Close()
	sub.Write(packet.AppendSubscribe(nil, packet.Level311, &packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: []byte("bench/#")}}}))
	if t, _, err := readPacket(sr); err != nil || t != packet.TypeSuback {
		return result{}, fmt.Errorf("subscribe: %v", err)
	}

	var received, published atomic.Int64
	expected := int64(count / pubs * pubs)
	done := make(chan struct{})
	var start time.Time
	var startOnce sync.Once
	go func() {
		defer close(done)
		for received.Load() < expected {
			t, _, err := readPacket(sr)
			if err != nil {
				return
			}
			if t == packet.TypePublish {
				startOnce.Do(func() { start = time.Now() })
				received.Add(1)
			}
		}
	}()
	payload := make([]byte, size)
	var wg sync.WaitGroup
	errs := make(chan error, pubs)
	for i := range pubs {
		c, _, err := dial(fmt.Sprint("tlsload-pub-", i))
		if err != nil {
			return result{}, err
		}
		defer c.Close()
		one := packet.AppendPublish(nil, packet.Level311, &packet.Publish{Topic: fmt.Appendf(nil, "bench/%d", i), Payload: payload})
		var buf []byte
		for range batch {
			buf = append(buf, one...)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for sent := 0; sent < count/pubs; {
				n := min(batch, count/pubs-sent)
				for published.Load()-received.Load() > int64(ahead) {
					runtime.Gosched()
				}
				if _, err := c.Write(buf[:n*len(one)]); err != nil {
					errs <- err
					return
				}
				published.Add(int64(n))
				sent += n
			}
		}()
	}
	wg.Wait()
	select {
	case <-done:
	case <-time.After(timeout):
	case err := <-errs:
		return result{Received: received.Load(), Expected: expected}, err
	}
	sec := time.Since(start).Seconds()
	res := result{Received: received.Load(), Expected: expected, Seconds: sec}
	if sec > 0 {
		res.MsgsPerSec = float64(res.Received) / sec
	}
	if res.Received < expected {
		return res, fmt.Errorf("received %d of %d", res.Received, expected)
	}
	return res, nil
}

// readPacket reads one MQTT packet's fixed header and skips its body.
func readPacket(r *bufio.Reader) (packet.Type, int, error) {
	b, err := r.ReadByte()
	if err != nil {
		return 0, 0, err
	}
	n, mult := 0, 1
	for i := 0; ; i++ {
		c, err := r.ReadByte()
		if err != nil {
			return 0, 0, err
		}
		n += int(c&0x7f) * mult
		if c&0x80 == 0 {
			break
		}
		if mult *= 128; i == 3 {
			return 0, 0, errors.New("bad remaining length")
		}
	}
	if _, err := r.Discard(n); err != nil {
		return 0, 0, err
	}
	return packet.Type(b >> 4), n, nil
}

// generate writes a CA and a server certificate for 127.0.0.1 signed by it.
func generate(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tlsload CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	for _, f := range []struct {
		name, kind string
		der        []byte
	}{{"ca.pem", "CERTIFICATE", caDER}, {"cert.pem", "CERTIFICATE", der}, {"key.pem", "PRIVATE KEY", kder}} {
		w, err := os.Create(filepath.Join(dir, f.name))
		if err != nil {
			return err
		}
		err = pem.Encode(w, &pem.Block{Type: f.kind, Bytes: f.der})
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}
