// Package net is the connection layer every ledge protocol gateway sits on:
// it accepts TCP connections, reads their bytes into a protocol handler and
// writes the handler's replies back, on a few event loops instead of a
// goroutine per connection. On Linux it runs epoll event loops (one per
// GOMAXPROCS by default); elsewhere, and for TLS listeners, it runs a portable
// transport on the standard library with exactly the same contract, so
// protocol code cannot tell them apart.
//
// Callers import it under another name, because the standard library's net is
// usually needed beside it:
//
//	import lnet "github.com/ledgemq/ledge/net"
//
// # Handler contract
//
// A protocol is written as "bytes in, events and bytes out" by implementing
// [Handler]:
//
//   - OnOpen(c) is called once when a connection is accepted, before any data.
//   - OnData(c, in) receives the connection's unconsumed input and returns how
//     many bytes it consumed. The bytes it leaves are kept and presented again,
//     with newly read bytes appended, on the next call; if it consumed some
//     bytes and left a non-empty rest, it is called again at once so that a
//     handler may consume one frame per call. Returning an error closes the
//     connection after flushing what was already queued, so a protocol can
//     queue "-ERR ..." and return an error.
//   - OnClose(c, err) is called exactly once when the connection is gone. err
//     is nil when the peer closed cleanly or Close(nil) was called, otherwise
//     the reason: the handler's error, [ErrSlowConsumer], [ErrInputTooLarge],
//     [ErrServerClosed], or an I/O error.
//
// A handler must never block: it runs on an event loop shared by thousands of
// connections. Work that may block (an fsync, a bcrypt check) is handed to
// another goroutine, which answers later with [Conn.Write], or with
// [Conn.Do] when the answer must also update the session. A handler that
// must not read on until that answer comes (a login) pauses its input for
// as long as the work may take ([Conn.PauseReading]) and the function
// given to Do ends the pause ([Conn.ResumeReading]), which presents the
// input held meanwhile.
//
// # Concurrency
//
// All callbacks of one connection (OnOpen, OnData, OnClose and the functions
// given to [Conn.AfterFunc] and [Conn.Do]) are serialized: they never run concurrently with
// each other. On the epoll transport they all run on the connection's event
// loop goroutine; on the portable transport they run on goroutines of the
// connection, under a per-connection lock.
//
// [Conn.Write], [Conn.WriteRef], [Conn.Close], [Conn.Do], [Conn.AfterFunc],
// [Timer.Stop], [Timer.Reset] and the read-only accessors are safe from any
// goroutine. Writes from a callback are queued without a system call and
// flushed with one writev per connection after the loop has handled its ready
// events; writes from other goroutines are queued the same way and wake the
// connection's loop, and many such writes between two loop iterations cost a
// single wakeup. [Conn.SetContext] and [Conn.Context] are meant for the
// callbacks; other goroutines that use them must synchronize themselves.
//
// OnOpen returns before any other callback of its connection starts, so a
// timer armed in OnOpen may refer to variables OnOpen sets after arming it.
//
// # Transports
//
// The epoll transport runs Options.Loops loops. Loop 0 owns the listening
// socket, accepts without blocking and deals connections round-robin to all
// loops, which keeps them balanced. Each loop parks in the Go netpoller on its
// epoll fd rather than in a blocking epoll_wait, so an idle loop holds no P
// and other goroutines of the broker keep both cores; it then collects events
// with a non-blocking epoll_pwait, does one read per ready connection into
// the loop's buffer, runs due timers from a min-heap (whose earliest deadline
// is the wait's deadline), and finally flushes every connection that was
// written to, each with writev of up to IOV_MAX queued pieces. EPOLLOUT is
// registered only while a partial write left bytes queued. Another goroutine
// that writes to a connection puts it on its loop's pending list and writes
// the loop's eventfd only if the loop is asleep and not already woken.
//
// The portable transport runs a reader goroutine per connection and a writer
// goroutine only while the connection has bytes queued; it flushes with
// net.Buffers (writev on TCP) and coalesces small pieces into record-sized
// writes on TLS.
//
// # TLS
//
// A listener with Options.TLSConfig runs the handshake of each connection
// on its reader goroutine before OnOpen, within Options.HandshakeTimeout,
// and allocates the connection's read buffer only after it: a client that
// never finishes its handshake costs a goroutine and the TLS state until
// the timeout closes it, and the handler never sees it. [Conn.TLS] gives
// the handler the connection's state, with the client's verified
// certificates. A protocol that starts in plaintext and upgrades (NATS
// sends INFO, then the client starts TLS) calls [Conn.StartTLS] from
// OnOpen or OnData on a portable listener without TLSConfig: what was
// written before the call goes out in plaintext, the reader then runs
// the handshake and replaces the socket with the TLS connection, and no
// input reaches OnData before the handshake is done. The epoll transport
// has no TLS: its loops would have to run handshakes, which block.
//
// # Ownership of byte slices
//
//   - The in slice given to OnData belongs to the transport and is valid only
//     during the call; keep a copy of anything needed later.
//   - [Conn.Write] copies its argument into pooled buffers before it returns.
//   - [Conn.WriteRef] queues the caller's slice by reference, without a copy:
//     the caller must not modify it until its release function is called.
//     release is called exactly once, from any goroutine, when the kernel has
//     taken the bytes, when the connection is dropped, or before WriteRef
//     returns an error. This is how slices of mmap'd log segments are sent.
//
// # Bounded memory
//
// A connection's outbound queue is limited to [Options.MaxOutbound] bytes; a
// write that would exceed it cuts the connection off as a slow consumer
// ([ErrSlowConsumer], counted in [Stats]) and drops its queue, so one stalled
// reader cannot grow the broker. Idle connections hold no read buffer on the
// epoll transport: each loop reads into one buffer of its own, and only a
// connection left with a partial frame keeps a pooled buffer for the rest,
// which is returned as soon as the rest is consumed. The unconsumed input of a
// connection is limited to [Options.MaxInput] bytes ([ErrInputTooLarge]).
// [Options.MaxConns] refuses connections beyond a count.
//
// A burst is not a slow consumer: a protocol that writes to a connection on
// behalf of another (a publisher's message to a subscriber) checks
// [Conn.Congested] and, when the receiver's queue is over half full, calls
// [Conn.PauseReading] on the producer. The producer's bytes then wait in the
// kernel and TCP flow control slows it down, while the consumer drains;
// only a consumer that stops reading altogether reaches the limit.
//
// # Failures stay with their connection
//
// A panic in OnData, which bad input can only cause through a bug in a
// protocol, is recovered: that connection closes with a
// [*HandlerPanicError] (stack included, counted in [Stats]) and every other
// connection goes on.
package net
