package stompgw

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"io"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3"

	lnet "github.com/ledgemq/ledge/net"
	"github.com/ledgemq/ledge/net/websocket"
	"github.com/ledgemq/ledge/stompgw/frame"
)

// wsClient is a browser's side of STOMP over WebSocket, by hand: masked
// frames out, plain frames in.
type wsClient struct {
	t   *testing.T
	c   net.Conn
	rd  *bufio.Reader
	buf []byte
	op  byte
}

func dialWS(t *testing.T, addr, protocols string, op byte) (*wsClient, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	must(t, err)
	t.Cleanup(func() { c.Close() })
	_, err = io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: "+protocols+"\r\n\r\n")
	must(t, err)
	rd := bufio.NewReader(c)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var resp strings.Builder
	for {
		line, err := rd.ReadString('\n')
		must(t, err)
		resp.WriteString(line)
		if line == "\r\n" {
			break
		}
	}
	if !strings.HasPrefix(resp.String(), "HTTP/1.1 101") {
		t.Fatalf("upgrade refused: %s", resp.String())
	}
	proto := ""
	for _, l := range strings.Split(resp.String(), "\r\n") {
		if v, ok := strings.CutPrefix(l, "Sec-WebSocket-Protocol: "); ok {
			proto = v
		}
	}
	return &wsClient{t: t, c: c, rd: rd, op: op}, proto
}

// send writes STOMP bytes in one masked frame.
func (w *wsClient) send(s string) {
	w.t.Helper()
	p := []byte(s)
	out := []byte{0x80 | w.op}
	switch n := len(p); {
	case n <= 125:
		out = append(out, 0x80|byte(n))
	case n <= 0xFFFF:
		out = append(out, 0x80|126, byte(n>>8), byte(n))
	default:
		out = append(out, 0x80|127)
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	}
	mask := []byte{7, 1, 9, 4}
	out = append(out, mask...)
	for i, c := range p {
		out = append(out, c^mask[i&3])
	}
	_, err := w.c.Write(out)
	must(w.t, err)
}

// read returns the next STOMP frame and the WebSocket opcode it came in.
func (w *wsClient) read() (*rawFrame, byte) {
	w.t.Helper()
	_ = w.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var op byte
	for {
		w.buf = w.buf[frame.SkipEOL(w.buf):]
		if len(w.buf) > 0 {
			var f frame.Frame
			n, err := frame.Decode(w.buf, frame.V12, frame.Limits{MaxFrame: 1 << 20, MaxHeaders: 100}, &f)
			if err == nil {
				out := &rawFrame{Command: f.Command.String(), Body: append([]byte(nil), f.Body...)}
				for _, h := range f.Headers {
					out.Header = append(out.Header, [2]string{string(h.Key), string(h.Value)})
				}
				w.buf = w.buf[n:]
				return out, op
			}
		}
		var hdr [2]byte
		_, err := io.ReadFull(w.rd, hdr[:])
		must(w.t, err)
		if hdr[1]&0x80 != 0 {
			w.t.Fatal("server frame masked")
		}
		n := int(hdr[1] & 0x7F)
		switch n {
		case 126:
			var l [2]byte
			_, err = io.ReadFull(w.rd, l[:])
			n = int(binary.BigEndian.Uint16(l[:]))
		case 127:
			var l [8]byte
			_, err = io.ReadFull(w.rd, l[:])
			n = int(binary.BigEndian.Uint64(l[:]))
		}
		must(w.t, err)
		p := make([]byte, n)
		_, err = io.ReadFull(w.rd, p)
		must(w.t, err)
		op = hdr[0] & 0x0F
		w.buf = append(w.buf, p...)
	}
}

// A browser's STOMP client over WebSocket negotiates v12.stomp, sends and
// subscribes like any other, and sees what TCP clients send; frames split
// across WebSocket frames are reassembled.
func TestWebSocket(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			g := startGateway(t, tr.portable, Options{}, "")
			wsAddr := g.listen(t, g.srv.WebSocketHandler(), lnet.Options{Portable: tr.portable})
			w, proto := dialWS(t, wsAddr, "v10.stomp, v11.stomp, v12.stomp", websocket.OpText)
			if proto != "v12.stomp" {
				t.Fatalf("subprotocol %q", proto)
			}
			w.send("CONNECT\naccept-version:1.2\nhost:/\n\n\x00")
			if f, op := w.read(); f.Command != "CONNECTED" || op != websocket.OpText {
				t.Fatalf("%s op %d", f.Command, op)
			}
			w.send("SUBSCRIBE\nid:0\ndestination:/topic/dash.#\n")
			w.send("receipt:s\n\n\x00")
			if f, _ := w.read(); f.Command != "RECEIPT" {
				t.Fatalf("%s %v", f.Command, f.Header)
			}
			c := dial(t, g.addr)
			must(t, c.Send("/topic/dash.temp", "text/plain", []byte("21.5"), stomp.SendOpt.Receipt))
			f, op := w.read()
			if f.Command != "MESSAGE" || string(f.Body) != "21.5" || op != websocket.OpText {
				t.Fatalf("%s %q op %d", f.Command, f.Body, op)
			}
			// A binary body cannot go in a text frame.
			must(t, c.Send("/topic/dash.raw", "application/octet-stream", []byte{0xff, 0xfe}, stomp.SendOpt.Receipt))
			if f, op := w.read(); !bytesEqual(f.Body, []byte{0xff, 0xfe}) || op != websocket.OpBinary {
				t.Fatalf("%q op %d", f.Body, op)
			}
			// And the browser's messages reach TCP subscribers.
			sub, err := c.Subscribe("/queue/from-browser", stomp.AckAuto)
			must(t, err)
			syncConn(t, c)
			w.send("SEND\ndestination:/queue/from-browser\n\nclick\x00")
			if m := next(t, sub); string(m.Body) != "click" {
				t.Fatalf("got %q", m.Body)
			}
		})
	}
}

// Binary WebSocket frames are answered in binary frames; a plain HTTP
// request is refused.
func TestWebSocketBinaryAndRefusal(t *testing.T) {
	g := startGateway(t, false, Options{}, "")
	wsAddr := g.listen(t, g.srv.WebSocketHandler(), lnet.Options{})
	w, proto := dialWS(t, wsAddr, "stomp", websocket.OpBinary)
	if proto != "stomp" {
		t.Fatalf("subprotocol %q", proto)
	}
	w.send("CONNECT\naccept-version:1.1\n\n\x00")
	if f, op := w.read(); f.Command != "CONNECTED" || op != websocket.OpBinary {
		t.Fatalf("%s op %d", f.Command, op)
	}
	r := dialRaw(t, wsAddr)
	r.send("GET / HTTP/1.1\r\nHost: gw\r\n\r\n")
	_ = r.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, _ := io.ReadAll(r.rd)
	if !strings.HasPrefix(string(resp), "HTTP/1.1 400") {
		t.Fatalf("plain HTTP got %q", resp)
	}
}

// STOMP over TLS, with go-stomp on a TLS connection.
func TestTLS(t *testing.T) {
	g := startGateway(t, false, Options{}, "")
	cert := selfSigned(t)
	tlsAddr := g.listen(t, g.srv.Handler(), lnet.Options{TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}})
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	nc, err := tls.Dial("tcp", tlsAddr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	must(t, err)
	c, err := stomp.Connect(nc, stomp.ConnOpt.Host("/"), stomp.ConnOpt.Logger(quietStomp{}))
	must(t, err)
	defer c.MustDisconnect()
	sub, err := c.Subscribe("/queue/secure", stomp.AckClientIndividual)
	must(t, err)
	must(t, c.Send("/queue/secure", "text/plain", []byte("over tls"), stomp.SendOpt.Receipt))
	m := next(t, sub)
	if string(m.Body) != "over tls" {
		t.Fatalf("got %q", m.Body)
	}
	must(t, c.Ack(m))
}

func bytesEqual(a, b []byte) bool { return string(a) == string(b) }

func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
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
	must(t, err)
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}
