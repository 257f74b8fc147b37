package net

import (
	"sync/atomic"
	"time"
)

// ConnStats is a snapshot of one connection's traffic, for monitoring.
type ConnStats struct {
	// BytesIn and BytesOut are the bytes read from and written to the
	// socket (protocol framing included; TLS records excluded).
	BytesIn, BytesOut uint64
	// Opened is when the connection was accepted; LastRead when bytes
	// last arrived on it (Opened until then), to within one event-loop
	// wakeup.
	Opened, LastRead time.Time
}

// connCounters are the live values behind ConnStats. The transport
// updates them once per read or write system call, on the connection's
// loop, without a lock.
type connCounters struct {
	in, out  atomic.Uint64
	lastRead atomic.Int64 // unix nanoseconds
	opened   int64        // unix nanoseconds, set before the connection is shared
}

func (cc *connCounters) read(n int, now int64) {
	cc.in.Add(uint64(n))
	cc.lastRead.Store(now)
}

// Stats returns a snapshot of the connection's traffic counters. It is
// safe from any goroutine and takes no lock.
func (c *Conn) Stats() ConnStats {
	st := ConnStats{
		BytesIn:  c.counted.in.Load(),
		BytesOut: c.counted.out.Load(),
		Opened:   time.Unix(0, c.counted.opened),
	}
	st.LastRead = st.Opened
	if r := c.counted.lastRead.Load(); r != 0 {
		st.LastRead = time.Unix(0, r)
	}
	return st
}
