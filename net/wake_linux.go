//go:build linux

package net

import (
	"encoding/binary"
	"fmt"

	"golang.org/x/sys/unix"
)

// A loop is woken by an eventfd: one counter, one fd, cheaper than a pipe.
// Wakeups are batched by loop.notified: only the first hand-off after the
// loop went to sleep writes to the eventfd; later ones see the flag and
// return, so many cross-loop writes cost one system call.

func newEventFD() (int, error) {
	fd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("eventfd: %w", err)
	}
	return fd, nil
}

// wake makes the loop's epoll_wait return unless a wakeup is already on its
// way or the loop is awake and will look at its pending work anyway.
func (l *loop) wake() {
	if !l.notified.CompareAndSwap(false, true) {
		return
	}
	l.mu.Lock()
	if !l.exited {
		// EAGAIN means the counter is saturated: the loop is woken anyway.
		_, _ = unix.Write(l.efd, l.wakeOne[:])
	}
	l.mu.Unlock()
}

// drainWake resets the eventfd counter after a wakeup.
func (l *loop) drainWake() {
	_, _ = unix.Read(l.efd, l.wakeBuf[:])
}

// wakeOne is the eventfd increment, kept in the loop so writing it does not
// allocate.
func wakeOne() [8]byte {
	var b [8]byte
	binary.NativeEndian.PutUint64(b[:], 1)
	return b
}
