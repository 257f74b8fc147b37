package net

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	stdnet "net"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// upgradeHandler greets in plaintext, then asks for TLS, then echoes lines;
// it records whether OnData ever ran before the handshake.
func upgradeHandler(cfg *tls.Config, plainData *atomic.Bool, closed chan error) *funcHandler {
	return &funcHandler{
		open: func(c *Conn) {
			c.Write([]byte("HELLO plaintext\n"))
			if err := c.StartTLS(cfg); err != nil {
				c.Close(err)
			}
		},
		data: func(c *Conn, in []byte) (int, error) {
			if c.TLS() == nil {
				plainData.Store(true)
			}
			return lineEcho(c, in)
		},
		close: func(c *Conn, err error) {
			if closed != nil {
				closed <- err
			}
		},
	}
}

func TestStartTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	var plain atomic.Bool
	s := start(t, transportCase{name: "portable", opts: Options{Portable: true}}, upgradeHandler(cfg, &plain, nil), nil)

	raw := dial(t, s)
	r := bufio.NewReader(raw)
	if got := readLine(t, r); got != "HELLO plaintext\n" {
		t.Fatalf("greeting %q", got)
	}
	if r.Buffered() != 0 {
		t.Fatal("bytes after the greeting before the handshake")
	}
	tc := tls.Client(raw, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	tc.SetDeadline(time.Now().Add(testTimeout))
	io.WriteString(tc, "over tls\n")
	tr := bufio.NewReader(tc)
	if got := readLine(t, tr); got != "over tls\n" {
		t.Fatalf("echo %q", got)
	}
	if plain.Load() {
		t.Error("OnData ran before the handshake was done")
	}
}

func TestStartTLSRefusesPlaintextPeer(t *testing.T) {
	cert, _ := selfSigned(t)
	var plain atomic.Bool
	closed := make(chan error, 1)
	s := start(t, transportCase{name: "portable", opts: Options{Portable: true}}, upgradeHandler(&tls.Config{Certificates: []tls.Certificate{cert}}, &plain, closed), nil)
	raw := dial(t, s)
	r := bufio.NewReader(raw)
	readLine(t, r)
	io.WriteString(raw, "CONNECT {}\r\nPUB a 1\r\nx\r\n")
	select {
	case err := <-closed:
		if err == nil || !strings.Contains(err.Error(), "tls") {
			t.Errorf("close reason %v, want the handshake's error", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("a peer that speaks plaintext after StartTLS was not closed")
	}
	if plain.Load() {
		t.Error("plaintext input reached the handler")
	}
	if s.Stats().TLSHandshakeFailures != 1 {
		t.Errorf("handshake failures %d", s.Stats().TLSHandshakeFailures)
	}
}

func TestStartTLSNeedsPortable(t *testing.T) {
	if !epollSupported("tcp") {
		t.Skip("no epoll here")
	}
	got := make(chan error, 1)
	h := &funcHandler{open: func(c *Conn) { got <- c.StartTLS(&tls.Config{}) }}
	s := start(t, transportCase{name: "epoll", opts: Options{Loops: 1}}, h, nil)
	dial(t, s)
	if err := <-got; !errors.Is(err, ErrNoUpgrade) {
		t.Fatalf("StartTLS on epoll: %v", err)
	}
}

// A TLS client that never finishes its handshake is closed after
// HandshakeTimeout without the handler ever seeing it.
func TestHandshakeTimeout(t *testing.T) {
	cert, _ := selfSigned(t)
	var opened atomic.Int32
	h := &funcHandler{open: func(*Conn) { opened.Add(1) }}
	s := start(t, transportCase{name: "portable", opts: Options{TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}}}, h,
		func(o *Options) { o.HandshakeTimeout = 100 * time.Millisecond })
	conns := make([]stdnet.Conn, 20)
	for i := range conns {
		conns[i] = dial(t, s)
	}
	for _, c := range conns {
		c.SetReadDeadline(time.Now().Add(testTimeout))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatal("read something from a server in a handshake we never started")
		}
	}
	waitFor(t, "connections closed", func() bool { return s.Stats().ConnsOpen == 0 })
	if opened.Load() != 0 || s.Stats().TLSHandshakeFailures != uint64(len(conns)) {
		t.Errorf("opened %d, handshake failures %d", opened.Load(), s.Stats().TLSHandshakeFailures)
	}
}

// On a TLS listener the client's certificate is known in OnOpen.
func TestTLSStateInOnOpen(t *testing.T) {
	cert, pool := selfSigned(t)
	clientCert, _ := selfSigned(t)
	clientPool := x509.NewCertPool()
	clientPool.AddCert(clientCert.Leaf)
	got := make(chan string, 1)
	h := &funcHandler{open: func(c *Conn) {
		st := c.TLS()
		if st == nil || len(st.PeerCertificates) == 0 {
			got <- "none"
			return
		}
		got <- st.PeerCertificates[0].Subject.CommonName
	}}
	s := start(t, transportCase{name: "portable", opts: Options{TLSConfig: &tls.Config{
		Certificates: []tls.Certificate{cert}, ClientCAs: clientPool, ClientAuth: tls.RequireAnyClientCert,
	}}}, h, nil)
	nc, err := tls.Dial("tcp", s.Addr().String(), &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{clientCert}})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if cn := <-got; cn != "ledge test" {
		t.Fatalf("certificate in OnOpen: %q", cn)
	}
}

func TestResumeReading(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tc transportCase) {
		// The handler declines input while "busy" and resumes from Do,
		// as a gateway does around a password check.
		var busy atomic.Bool
		h := &funcHandler{data: func(c *Conn, in []byte) (int, error) {
			if busy.Load() {
				return 0, nil
			}
			if strings.HasPrefix(string(in), "LOGIN\n") {
				busy.Store(true)
				c.PauseReading(time.Hour)
				go func() {
					c.Do(func(c *Conn) {
						busy.Store(false)
						c.Write([]byte("OK\n"))
						c.ResumeReading()
					})
				}()
				return len("LOGIN\n"), nil
			}
			return lineEcho(c, in)
		}}
		s := start(t, tc, h, nil)
		nc := dial(t, s)
		r := bufio.NewReader(nc)
		io.WriteString(nc, "LOGIN\nafter\n")
		if got := readLine(t, r); got != "OK\n" {
			t.Fatalf("got %q", got)
		}
		if got := readLine(t, r); got != "after\n" {
			t.Fatalf("the input held during the pause: %q", got)
		}
	})
}

// A connection closed while its reading is paused for long is finalized
// at once, on every transport: the pause's end never comes.
func TestCloseWhilePaused(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tc transportCase) {
		closed := make(chan struct{})
		h := &funcHandler{
			open: func(c *Conn) {
				c.PauseReading(time.Hour)
				c.Close(nil)
			},
			close: func(*Conn, error) { close(closed) },
		}
		s := start(t, tc, h, nil)
		dial(t, s)
		select {
		case <-closed:
		case <-time.After(testTimeout):
			t.Fatal("a paused connection was never finalized")
		}
	})
}
