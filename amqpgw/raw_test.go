package amqpgw

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	stdnet "net"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// rawConn is a client that writes frames by hand, for what real clients
// cannot be made to send.
type rawConn struct {
	t   testing.TB
	c   stdnet.Conn
	buf []byte
}

func dialRaw(t testing.TB, addr string) *rawConn {
	t.Helper()
	c, err := stdnet.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, c: c}
}

func (r *rawConn) write(b []byte) {
	r.t.Helper()
	if _, err := r.c.Write(b); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

// next returns the next frame from the server, or an error at EOF.
func (r *rawConn) next() (Frame, error) {
	_ = r.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		var f Frame
		n, err := decodeFrame(r.buf, 1<<20, &f)
		if err == nil {
			f.Payload = append([]byte(nil), f.Payload...)
			r.buf = r.buf[n:]
			return f, nil
		}
		if err != errIncomplete {
			return f, err
		}
		tmp := make([]byte, 4096)
		k, err := r.c.Read(tmp)
		if err != nil {
			return f, err
		}
		r.buf = append(r.buf, tmp[:k]...)
	}
}

// method reads frames until a method one and decodes it.
func (r *rawConn) method() (methodID, []byte) {
	r.t.Helper()
	for {
		f, err := r.next()
		if err != nil {
			r.t.Fatalf("read: %v", err)
		}
		if f.Type == frameMethod {
			return methodID(binary.BigEndian.Uint32(f.Payload)), f.Payload[4:]
		}
	}
}

func rawMethod(ch uint16, id methodID, args ...byte) []byte {
	b, at := appendMethodStart(nil, ch, id)
	b = append(b, args...)
	return finishFrame(b, at)
}

// handshake opens a connection and channel 1 by hand.
func (r *rawConn) handshake() {
	r.t.Helper()
	r.write(protocolHeader)
	if id, _ := r.method(); id != connStart {
		r.t.Fatalf("got %x, want connection.start", id)
	}
	var args []byte
	args = appendTable(args, func(b []byte) []byte { return b })
	args = appendShortstr(args, "PLAIN")
	args = appendLongstr(args, "\x00guest\x00guest")
	args = appendShortstr(args, "en_US")
	r.write(rawMethod(0, connStartOk, args...))
	if id, _ := r.method(); id != connTune {
		r.t.Fatalf("got %x, want tune", id)
	}
	r.write(rawMethod(0, connTuneOk, 0, 0, 0, 0, 0x10, 0, 0, 0)) // frame-max 4096
	r.write(rawMethod(0, connOpen, 1, '/', 0, 0))
	if id, _ := r.method(); id != connOpenOk {
		r.t.Fatalf("got %x, want open-ok", id)
	}
	r.write(rawMethod(1, chanOpen, 0))
	if id, _ := r.method(); id != chanOpenOk {
		r.t.Fatalf("got %x, want channel.open-ok", id)
	}
}

// expectClose reads until a close method of the given kind and checks
// its code.
func (r *rawConn) expectClose(id methodID, code int) {
	r.t.Helper()
	for {
		got, args := r.method()
		if got == id {
			if c := int(binary.BigEndian.Uint16(args)); c != code {
				r.t.Fatalf("closed with %d (%s), want %d", c, args[3:3+int(args[2])], code)
			}
			return
		}
	}
}

// expectEOF checks that the server closed the connection.
func (r *rawConn) expectEOF() {
	r.t.Helper()
	for {
		_, err := r.next()
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, stdnet.ErrClosed) {
				var ne stdnet.Error
				if errors.As(err, &ne) && ne.Timeout() {
					r.t.Fatal("connection not closed")
				}
			}
			return
		}
	}
}

func TestMalformedInputClosesWithCode(t *testing.T) {
	g := startGateway(t, Options{FrameMax: 8192}, "")
	// A client that keeps a queue with a message throughout: nothing
	// stored may be lost, and it must be unaffected.
	_, keep := dial(t, g)
	_, err := keep.QueueDeclare("kept", true, false, false, false, nil)
	must(t, err)
	must(t, keep.Confirm(false))
	dc, err := keep.PublishWithDeferredConfirmWithContext(context.Background(), "", "kept", false, false, text("precious"))
	must(t, err)
	if ok, err := dc.WaitContext(context.Background()); !ok || err != nil {
		t.Fatal("not confirmed")
	}

	cases := []struct {
		name  string
		send  func(r *rawConn)
		close methodID
		code  int
	}{
		{"frame without frame-end", func(r *rawConn) {
			b := rawMethod(1, bQos, 0, 0, 0, 0, 0, 1, 0)
			b[len(b)-1] = 0
			r.write(b)
		}, connClose, codeFrameError},
		{"oversized frame", func(r *rawConn) {
			b := []byte{frameBody, 0, 1, 0, 1, 0, 0}
			r.write(append(b, make([]byte, 70000)...))
		}, connClose, codeFrameError},
		{"unknown frame type", func(r *rawConn) { r.write([]byte{7, 0, 0, 0, 0, 0, 0, frameEnd}) }, connClose, codeFrameError},
		{"unknown method", func(r *rawConn) { r.write(rawMethod(1, mid(60, 99))) }, connClose, codeNotImplemented},
		{"truncated arguments", func(r *rawConn) { r.write(rawMethod(1, bAck, 0, 0, 1)) }, connClose, codeSyntaxError},
		{"channel not open", func(r *rawConn) { r.write(rawMethod(9, bQos, 0, 0, 0, 0, 0, 1, 0)) }, connClose, codeChannelError},
		{"channel opened twice", func(r *rawConn) { r.write(rawMethod(1, chanOpen, 0)) }, connClose, codeChannelError},
		{"body without publish", func(r *rawConn) {
			b, at := appendFrameStart(nil, frameBody, 1)
			r.write(finishFrame(append(b, 'x'), at))
		}, connClose, codeUnexpectedFrame},
		{"method during content", func(r *rawConn) {
			r.write(rawMethod(1, bPublish, 0, 0, 0, 1, 'q', 0))
			r.write(rawMethod(1, bQos, 0, 0, 0, 0, 0, 1, 0))
		}, connClose, codeUnexpectedFrame},
		{"heartbeat on a channel", func(r *rawConn) { r.write([]byte{frameHeartbeat, 0, 1, 0, 0, 0, 0, frameEnd}) }, connClose, codeFrameError},
		{"bad field table", func(r *rawConn) {
			args := []byte{0, 0, 1, 'q', 0, 0, 0, 0, 3, 1, 'k', 'Z'}
			r.write(rawMethod(1, qDeclare, args...))
		}, connClose, codeSyntaxError},
		{"connection method on a channel", func(r *rawConn) { r.write(rawMethod(1, connOpen, 1, '/', 0, 0)) }, connClose, codeCommandInvalid},
		{"publish to a missing exchange", func(r *rawConn) {
			r.write(rawMethod(1, bPublish, 0, 0, 4, 'n', 'o', 'n', 'e', 0, 0))
			b, at := appendFrameStart(nil, frameHeader, 1)
			b = append(b, 0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
			r.write(finishFrame(b, at))
		}, chanClose, codeNotFound},
		{"ack of an unknown tag", func(r *rawConn) { r.write(rawMethod(1, bAck, 0, 0, 0, 0, 0, 0, 0, 42, 0)) }, chanClose, codePrecondition},
		{"consume from a missing queue", func(r *rawConn) {
			r.write(rawMethod(1, bConsume, 0, 0, 4, 'n', 'o', 'n', 'e', 0, 0, 0, 0, 0, 0))
		}, chanClose, codeNotFound},
		{"exchange bind to a missing exchange", func(r *rawConn) {
			r.write(rawMethod(1, exBind, 0, 0, 1, 'a', 1, 'b', 0, 0, 0, 0, 0, 0))
		}, chanClose, codeNotFound},
		{"global prefetch", func(r *rawConn) { r.write(rawMethod(1, bQos, 0, 0, 0, 0, 0, 5, 1)) }, connClose, codeNotImplemented},
		{"recover without requeue", func(r *rawConn) { r.write(rawMethod(1, bRecover, 0)) }, connClose, codeNotImplemented},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := dialRaw(t, g.addr)
			r.handshake()
			tc.send(r)
			r.expectClose(tc.close, tc.code)
			if tc.close == connClose {
				r.expectEOF()
			}
		})
	}
	t.Run("wrong protocol header", func(t *testing.T) {
		r := dialRaw(t, g.addr)
		r.write([]byte("AMQP\x01\x01\x00\x0a"))
		b := make([]byte, 8)
		_ = r.c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(r.c, b); err != nil || string(b) != string(protocolHeader) {
			t.Fatalf("got %q %v", b, err)
		}
		r.expectEOF()
	})

	// The other client and the stored message are unaffected.
	msg, ok, err := keep.Get("kept", true)
	if err != nil || !ok || string(msg.Body) != "precious" {
		t.Fatalf("kept message: %q %v %v", msg.Body, ok, err)
	}
}

func TestHandshakeTimeout(t *testing.T) {
	g := startGateway(t, Options{HandshakeTimeout: 100 * time.Millisecond}, "")
	r := dialRaw(t, g.addr)
	r.write(protocolHeader)
	start := time.Now()
	r.expectEOF()
	if time.Since(start) > 3*time.Second {
		t.Fatal("handshake timeout not applied")
	}
}

func TestMissedHeartbeatsClose(t *testing.T) {
	g := startGateway(t, Options{}, "")
	r := dialRaw(t, g.addr)
	r.write(protocolHeader)
	r.method()
	var args []byte
	args = appendTable(args, func(b []byte) []byte { return b })
	args = appendShortstr(args, "PLAIN")
	args = appendLongstr(args, "\x00guest\x00guest")
	args = appendShortstr(args, "en_US")
	r.write(rawMethod(0, connStartOk, args...))
	r.method()
	r.write(rawMethod(0, connTuneOk, 0, 0, 0, 2, 0, 0, 0, 1)) // heartbeat 1 s
	r.write(rawMethod(0, connOpen, 1, '/', 0, 0))
	r.method()
	start := time.Now()
	r.expectEOF()
	if d := time.Since(start); d < time.Second || d > 4*time.Second {
		t.Fatalf("closed after %v", d)
	}
}

func TestWrongCredentialsRefused(t *testing.T) {
	g := startGateway(t, Options{Auth: newAuth(t, "[user u]\npassword = plain:p\n")}, "")
	_, err := amqp.Dial("amqp://u:bad@" + g.addr + "/")
	var e *amqp.Error
	if !errors.As(err, &e) || e.Code != codeAccessRefused {
		if err == nil || !errors.Is(err, amqp.ErrSASL) && !errors.Is(err, amqp.ErrCredentials) {
			t.Fatalf("dial with a bad password: %v", err)
		}
	}
	c, err := amqp.Dial("amqp://u:p@" + g.addr + "/")
	must(t, err)
	c.Close()
}

func TestUnknownVirtualHostRefused(t *testing.T) {
	g := startGateway(t, Options{}, "")
	_, err := amqp.Dial("amqp://guest:guest@" + g.addr + "/prod")
	var e *amqp.Error
	if !errors.As(err, &e) || e.Code != codeNotAllowed {
		t.Fatalf("dial vhost /prod: %v", err)
	}
}

// Methods pipelined behind an administrative one (served off the loop)
// wait for it and run in order.
func TestPipelinedAfterDeclare(t *testing.T) {
	g := startGateway(t, Options{}, "")
	r := dialRaw(t, g.addr)
	r.handshake()
	var b []byte
	b = append(b, rawMethod(1, qDeclare, 0, 0, 4, 'p', 'i', 'p', 'e', 0, 0, 0, 0, 0)...)
	b = append(b, rawMethod(1, bPublish, 0, 0, 0, 4, 'p', 'i', 'p', 'e', 0)...)
	b = appendContent(b, 1, 4096, []byte{0, 0}, []byte("piped"))
	b = append(b, rawMethod(1, bGet, 0, 0, 4, 'p', 'i', 'p', 'e', 1)...)
	r.write(b)
	if id, _ := r.method(); id != qDeclareOk {
		t.Fatalf("got %x, want queue.declare-ok", id)
	}
	// The get may come before the publish is durable: ask until it is.
	for deadline := time.Now().Add(5 * time.Second); ; {
		id, _ := r.method()
		if id == bGetOk {
			f, err := r.next()
			if err != nil || f.Type != frameHeader {
				t.Fatalf("content header: %v", err)
			}
			f, err = r.next()
			if err != nil || string(f.Payload) != "piped" {
				t.Fatalf("body %q %v", f.Payload, err)
			}
			return
		}
		if id != bGetEmpty || time.Now().After(deadline) {
			t.Fatalf("got %x", id)
		}
		r.write(rawMethod(1, bGet, 0, 0, 4, 'p', 'i', 'p', 'e', 1))
	}
}
