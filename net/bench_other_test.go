//go:build !linux

package net

import (
	stdnet "net"
	"testing"
)

// dialIdle connects n clients with the standard library; their own objects
// are counted too, so figures here overstate the server's cost.
func dialIdle(b *testing.B, addr *stdnet.TCPAddr, n int) (closeAll func()) {
	ncs := make([]stdnet.Conn, 0, n)
	closeAll = func() {
		for _, nc := range ncs {
			nc.Close()
		}
	}
	for i := 0; i < n; i++ {
		nc, err := stdnet.Dial("tcp", addr.String())
		if err != nil {
			closeAll()
			b.Fatal(err)
		}
		ncs = append(ncs, nc)
	}
	return closeAll
}
