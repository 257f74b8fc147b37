package main

// The transport shared by the tool's lean clients (MQTT, AMQP and STOMP): a connection is a wireConn, its socket owned by a
// transport (a few epoll loops on Linux, wire_linux.go; a reader and a
// writer goroutine elsewhere, wire_other.go). Any goroutine queues bytes on
// the connection's outbound buffer; the transport writes everything queued
// with one system call, reads the socket into a buffer of its own and
// hands the bytes to the protocol's input, which decodes them in place and
// answers (acks, pongs) by queueing more. A protocol is added by
// implementing loopConn; its client embeds a wireConn.

import (
	"sync"
	"time"

	"github.com/ledgemq/ledge/mqttgw/packet"
	"github.com/ledgemq/ledge/stompgw/frame"
)

// wireKeepBuffer is the largest outbound buffer kept once drained; an
// idle connection should cost no buffer at all.
const wireKeepBuffer = 64 << 10

// loopConn is a protocol's side of a connection, as its transport calls it.
// input runs on the goroutine that reads the socket; tick and failLocked
// run there too on Linux, on the writing goroutine elsewhere, so state they
// share with input is under wireConn.mu.
type loopConn interface {
	wire() *wireConn
	// input decodes and acts on the frames at the start of b and returns
	// how many bytes it used; a partial frame is kept and given again
	// with what follows. s is scratch space shared by the connections of
	// one transport goroutine. An error closes the connection.
	input(b []byte, s *scratch) (int, error)
	// tick runs about once a second, for keep alive.
	tick(now time.Time)
	// failLocked records why the connection ended and tells the
	// goroutines waiting on it; wireConn.mu is held.
	failLocked(err error)
}

// scratch is the decoding space of one transport goroutine, a field per
// protocol, so that a connection costs no decoder state while idle.
type scratch struct {
	mqtt        packet.Packet
	amqpFrame   amqpFrame
	amqpMethod  amqpMethod
	amqpContent amqpContent
	stomp       frame.Frame
}

// wireConn is the state of a lean client's connection that its transport
// shares with the goroutines using it.
type wireConn struct {
	io   connIO // the transport's part, see wire_linux.go / wire_other.go
	conn loopConn

	// Set and read only by the goroutine that reads the socket.
	inLoop    bool // input or tick is running: queued bytes are flushed after it
	needFlush bool

	mu        sync.Mutex
	out       []byte // bytes queued and not yet written
	err       error  // why the connection ended; nil while it is up
	closing   bool   // the client is closing it: the end is no error
	lastWrite time.Time

	space chan struct{} // poked when out shrinks, an ack arrives or the connection ends
	done  chan struct{} // closed when the transport has closed the socket
}

// initWire prepares w for conn, before the socket is attached.
func (w *wireConn) initWire(conn loopConn) {
	w.conn = conn
	w.space = make(chan struct{}, 1)
	w.done = make(chan struct{})
	w.lastWrite = time.Now()
}

func (w *wireConn) wire() *wireConn { return w }

// queueLocked appends b to the outbound buffer and has it written: by the
// reading goroutine after its input when that is who queues, otherwise by
// waking the transport. w.mu is held.
func (w *wireConn) queueLocked(b []byte) {
	wasEmpty := len(w.out) == 0
	w.out = append(w.out, b...)
	w.queuedLocked(wasEmpty)
}

// queuedLocked has bytes appended to w.out directly (by an encoder that
// appends in place) written; wasEmpty is whether w.out was empty before.
// w.mu is held.
func (w *wireConn) queuedLocked(wasEmpty bool) {
	if w.inLoop {
		w.needFlush = true
		return
	}
	if wasEmpty {
		w.wake()
	}
}

// poke tells a goroutine waiting for space or acks to look again.
func (w *wireConn) poke() {
	select {
	case w.space <- struct{}{}:
	default:
	}
}

// wrote records that n queued bytes reached the socket. w.mu is held.
func (w *wireConn) wrote(n int) {
	w.out = w.out[:copy(w.out, w.out[n:])]
	w.lastWrite = time.Now()
	if len(w.out) == 0 && cap(w.out) > wireKeepBuffer {
		w.out = nil
	}
	w.poke()
}

// drain waits up to d for what is queued to be written, so that a
// closing frame leaves before the socket is shut.
func (w *wireConn) drain(d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		w.mu.Lock()
		left := len(w.out)
		failed := w.err != nil
		w.mu.Unlock()
		if left == 0 || failed {
			return
		}
		select {
		case <-w.space:
		case <-time.After(5 * time.Millisecond):
		}
	}
}
