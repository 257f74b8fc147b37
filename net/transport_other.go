//go:build !linux

package net

import "errors"

// Without epoll every listener uses the portable transport.
func epollSupported(string) bool { return false }

func listenEpoll(*Server, string, string) (transport, error) {
	return nil, errors.New("epoll transport needs linux")
}
