//go:build !linux

package main

// The portable transport of the lean clients (wire.go), for systems
// without epoll: a reader and a writer goroutine per connection. It makes ledge-bench
// usable on a developer's machine; it is not what the figures in
// benchmarks/ are measured with (see wire_linux.go).

import (
	"io"
	"net"
	"sync"
	"time"
)

type connIO struct {
	nc    net.Conn
	wakec chan struct{}
	once  sync.Once
}

func (c *wireConn) attach(nc net.Conn) error {
	c.io.nc = nc
	c.io.wakec = make(chan struct{}, 1)
	go c.readLoop()
	go c.writeLoop()
	return nil
}

func (c *wireConn) wake() {
	select {
	case c.io.wakec <- struct{}{}:
	default:
	}
}

func (c *wireConn) shutdown() { c.io.nc.Close() }

func (c *wireConn) end(err error) {
	c.io.once.Do(func() {
		c.io.nc.Close()
		c.mu.Lock()
		c.conn.failLocked(err)
		c.mu.Unlock()
		close(c.done)
	})
}

func (c *wireConn) readLoop() {
	var s scratch
	buf := make([]byte, 64<<10)
	have := 0
	for {
		if have == len(buf) {
			buf = append(buf, make([]byte, len(buf))...)
		}
		n, err := c.io.nc.Read(buf[have:])
		if err != nil {
			if err == io.EOF {
				err = io.EOF
			}
			c.end(err)
			return
		}
		have += n
		used, perr := c.conn.input(buf[:have], &s)
		have = copy(buf, buf[used:have])
		if perr != nil {
			c.end(perr)
			return
		}
	}
}

func (c *wireConn) writeLoop() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var b []byte
	for {
		select {
		case <-c.io.wakec:
		case now := <-t.C:
			c.conn.tick(now)
			continue
		case <-c.done:
			return
		}
		c.mu.Lock()
		b = append(b[:0], c.out...)
		c.mu.Unlock()
		if len(b) == 0 {
			continue
		}
		if _, err := c.io.nc.Write(b); err != nil {
			c.end(err)
			return
		}
		c.mu.Lock()
		c.wrote(len(b))
		c.mu.Unlock()
	}
}
