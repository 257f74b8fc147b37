package net_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	stdnet "net"
	"time"

	lnet "github.com/ledgemq/ledge/net"
)

// pingProto is a tiny line protocol: "PING" is answered with "PONG", any
// other line with an error that closes the connection, and a client silent
// for a minute is closed by its keepalive.
type pingProto struct{}

type pingSession struct{ keepalive *lnet.Timer }

var errUnknown = errors.New("unknown command")

func (pingProto) OnOpen(c *lnet.Conn) {
	s := &pingSession{}
	// Timers run on the connection's loop, after OnOpen has returned.
	s.keepalive = c.AfterFunc(time.Minute, func(c *lnet.Conn) { c.Close(errors.New("idle")) })
	c.SetContext(s)
}

func (pingProto) OnData(c *lnet.Conn, in []byte) (int, error) {
	c.Context().(*pingSession).keepalive.Reset(time.Minute)
	consumed := 0
	for {
		i := bytes.IndexByte(in[consumed:], '\n')
		if i < 0 {
			return consumed, nil // keep the partial line for the next read
		}
		line := in[consumed : consumed+i]
		consumed += i + 1
		if string(line) != "PING" {
			c.Write([]byte("-ERR unknown command\n")) // flushed before the close
			return consumed, errUnknown
		}
		c.Write([]byte("PONG\n"))
	}
}

func (pingProto) OnClose(c *lnet.Conn, err error) {}

func Example() {
	srv, err := lnet.Listen("tcp", "127.0.0.1:0", pingProto{}, lnet.Options{MaxInput: 4096})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Shutdown(context.Background())

	nc, err := stdnet.Dial("tcp", srv.Addr().String())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer nc.Close()
	io.WriteString(nc, "PING\nPING\nHELLO\n")
	reply, _ := io.ReadAll(nc)
	fmt.Print(string(reply))
	// Output:
	// PONG
	// PONG
	// -ERR unknown command
}
