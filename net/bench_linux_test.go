//go:build linux

package net

import (
	stdnet "net"
	"testing"

	"golang.org/x/sys/unix"
)

// dialIdle connects n raw sockets: no Go objects on the client side, so heap
// figures are the server's alone.
func dialIdle(b *testing.B, addr *stdnet.TCPAddr, n int) (closeAll func()) {
	var sa unix.SockaddrInet4
	copy(sa.Addr[:], addr.IP.To4())
	sa.Port = addr.Port
	fds := make([]int, 0, n)
	closeAll = func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}
	for i := 0; i < n; i++ {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			closeAll()
			b.Fatal(err)
		}
		fds = append(fds, fd)
		if err := unix.Connect(fd, &sa); err != nil {
			closeAll()
			b.Fatal(err)
		}
	}
	return closeAll
}
