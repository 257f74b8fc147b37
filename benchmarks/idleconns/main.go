// Command idleconns opens many idle NATS client connections to a server and
// holds them, so that the server's memory per idle connection can be
// measured: every connection completes the handshake (INFO, CONNECT, PING,
// PONG) and then stays silent, as a sleeping device would.
//
// It prints "ready N" once all N are open, and holds them until it gets
// SIGINT or SIGTERM, or -hold passes. Source addresses rotate over 127.0.0.1,
// 127.0.0.2, ... when one address would run out of ephemeral ports.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:4222", "NATS server address")
	n := flag.Int("n", 10000, "connections to open")
	perSource := flag.Int("per-source", 20000, "connections per source address before moving to the next")
	workers := flag.Int("workers", 32, "connections opened in parallel")
	hold := flag.Duration("hold", 10*time.Minute, "how long to hold them at most")
	flag.Parse()

	conns, err := open(*addr, *n, *perSource, *workers)
	if err != nil {
		fmt.Fprintln(os.Stderr, "idleconns:", err)
		os.Exit(1)
	}
	fmt.Printf("ready %d\n", len(conns))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	select {
	case <-ctx.Done():
	case <-time.After(*hold):
	}
	for _, c := range conns {
		c.Close()
	}
}

// open dials n connections and completes the NATS handshake on each.
func open(addr string, n, perSource, workers int) ([]net.Conn, error) {
	conns := make([]net.Conn, n)
	jobs := make(chan int)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				c, err := handshake(addr, sourceAddr(i/perSource))
				if err != nil {
					errs <- fmt.Errorf("connection %d: %w", i, err)
					return
				}
				conns[i] = c
			}
		}()
	}
	var firstErr error
feed:
	for i := 0; i < n; i++ {
		select {
		case jobs <- i:
		case firstErr = <-errs:
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if firstErr == nil {
		select {
		case firstErr = <-errs:
		default:
		}
	}
	if firstErr != nil {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
		return nil, firstErr
	}
	return conns, nil
}

// sourceAddr is the k-th loopback source address: 127.0.0.1, .2, ...
func sourceAddr(k int) *net.TCPAddr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, byte(k/254), byte(1+k%254))}
}

func handshake(addr string, src *net.TCPAddr) (net.Conn, error) {
	d := net.Dialer{LocalAddr: src, Timeout: 10 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReaderSize(c, 4096)
	line, err := r.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "INFO ") {
		c.Close()
		return nil, fmt.Errorf("no INFO: %q %v", line, err)
	}
	if _, err := io.WriteString(c, "CONNECT {\"verbose\":false,\"pedantic\":false,\"lang\":\"idleconns\"}\r\nPING\r\n"); err != nil {
		c.Close()
		return nil, err
	}
	if line, err = r.ReadString('\n'); err != nil || strings.TrimSpace(line) != "PONG" {
		c.Close()
		return nil, fmt.Errorf("no PONG: %q %v", line, err)
	}
	c.SetDeadline(time.Time{})
	return c, nil
}
