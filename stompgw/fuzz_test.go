package stompgw

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/ledgemq/ledge/broker"
	"github.com/ledgemq/ledge/log"
)

// FuzzSession sends arbitrary bytes after a CONNECT to a real gateway:
// whatever a client sends, the session answers or refuses it and closes,
// never panicking (a panic would be recovered by the transport and
// counted), and the next connection is served.
func FuzzSession(f *testing.F) {
	for _, s := range []string{
		"SUBSCRIBE\nid:0\ndestination:/queue/a\nack:client-individual\nprefetch-count:2\n\n\x00SEND\ndestination:/queue/a\n\nx\x00ACK\nid:0@@1\n\n\x00",
		"SUBSCRIBE\nid:t\ndestination:/topic/a.*\n\n\x00SEND\ndestination:/topic/a.b\nreceipt:1\n\n\x00UNSUBSCRIBE\nid:t\n\n\x00",
		"BEGIN\ntransaction:x\n\n\x00SEND\ndestination:/queue/b\ntransaction:x\n\ny\x00ACK\nid:0@@9\ntransaction:x\n\n\x00COMMIT\ntransaction:x\n\n\x00",
		"SEND\ndestination:/queue/rpc\nreply-to:/temp-queue/r\n\nq\x00SEND\ndestination:/temp-queue/r\n\nself\x00",
		"SUBSCRIBE\nid:d\ndestination:/topic/z\ndurable:true\n\n\x00UNSUBSCRIBE\nid:d\ndurable:true\n\n\x00",
		"SEND\ndestination:/exchange/amq.fanout/k\ncontent-length:3\n\na\x00b\x00",
		"SUBSCRIBE\nid:c\ndestination:/queue/c\nack:client\n\n\x00NACK\nid:c@@1\nrequeue:false\n\n\x00",
		"SEND\ndestination:/queue/x\nx-max-length:bad\n\n\x00",
		"DISCONNECT\nreceipt:bye\n\n\x00",
		"\n\n\r\nSEND\ndestination:/queue/\\c\n\n\x00",
	} {
		f.Add([]byte(s))
	}
	// Small segments without fsync: every queue name the fuzzer invents
	// is a durable queue on disk.
	g := startGatewayWith(f, false, Options{MaxBodySize: 4096, MaxHeaderSize: 4096, MaxHeaders: 32},
		broker.Options{SegmentBytes: 64 << 10, Sync: log.SyncNever})
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := net.Dial("tcp", g.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, _ = c.Write([]byte("CONNECT\naccept-version:1.0,1.1,1.2\nhost:/\n\n\x00"))
		_, _ = c.Write(in)
		_ = c.(*net.TCPConn).CloseWrite()
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.Copy(io.Discard, c); err != nil {
			t.Fatalf("the session did not end: %v", err)
		}
		if n := g.ln.Stats().HandlerPanics; n != 0 {
			t.Fatalf("%d handler panics", n)
		}
		if qs := g.amqp.Queues(); len(qs) > 32 {
			for _, q := range qs {
				_ = g.amqp.DeleteQueue(nil, q.Name)
			}
		}
	})
}
