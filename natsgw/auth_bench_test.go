package natsgw

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ledgemq/ledge/auth"
)

// benchUsers is a users file of n devices, each with a token and rules of
// its own through one group: the gateway of a plant.
func benchUsers(n int, deny bool) string {
	var b strings.Builder
	b.WriteString("[group devices]\npublish = site.%u.>\nsubscribe = site.%u.>\n")
	if deny {
		b.WriteString("subscribe-deny = site.%u.secret\n")
	}
	for i := range n {
		fmt.Fprintf(&b, "[user dev-%d]\ntoken = %s\ngroups = devices\n", i, auth.TokenDigest(fmt.Sprint("tok-", i)))
	}
	return b.String()
}

// loginToken authenticates a token at once (no password check) and gives
// the client to a session driven without a network connection.
func loginToken(tb testing.TB, svc *auth.Service, ss *Session, token string) {
	tb.Helper()
	cl, pending, err := svc.Authenticate(&auth.Request{Protocol: auth.NATS, Token: token,
		Remote: &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1)}}, nil)
	if err != nil || pending {
		tb.Fatalf("login: %v %v", pending, err)
	}
	ss.client = cl
	ss.limitsChanged()
}

// pairs makes n publisher and subscriber sessions, one pair per device,
// each subscriber on site.dev-N.> and each publisher publishing to
// site.dev-N.temp; with svc they are that device's user.
func pairs(tb testing.TB, svc *auth.Service, n int) (pubs []*Session, subs []*sink, msgs [][]byte) {
	srv := NewServer(Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	for i := range n {
		sc, pc := &sink{}, &sink{}
		sub, pub := srv.Open(sc, "10.0.0.1"), srv.Open(pc, "10.0.0.1")
		if svc != nil {
			loginToken(tb, svc, sub, fmt.Sprint("tok-", i))
			loginToken(tb, svc, pub, fmt.Sprint("tok-", i))
		}
		feedAll(tb, sub, fmt.Sprintf("CONNECT {}\r\nSUB site.dev-%d.> 1\r\n", i))
		feedAll(tb, pub, "CONNECT {}\r\n")
		pubs, subs = append(pubs, pub), append(subs, sc)
		msgs = append(msgs, fmt.Appendf(nil, "PUB site.dev-%d.temp 16\r\n0123456789abcdef\r\n", i))
	}
	return pubs, subs, msgs
}

// BenchmarkPubSubUsers is NATS publish to subscribe through the gateway
// for 1,000 devices, without auth and with per-user rules: the cost of the
// checks on the hot path. "filtered" subscribers' filters overlap a deny
// rule, so each delivery is checked too.
func BenchmarkPubSubUsers(b *testing.B) {
	const n = 1000
	for _, bc := range []struct {
		name string
		deny bool
		auth bool
	}{{"none", false, false}, {"rules", false, true}, {"rules-filtered", true, true}} {
		b.Run(bc.name, func(b *testing.B) {
			var svc *auth.Service
			if bc.auth {
				p, err := auth.Parse("bench", strings.NewReader(benchUsers(n, bc.deny)))
				if err != nil {
					b.Fatal(err)
				}
				svc = auth.New(auth.Options{Policy: p, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
				defer svc.Close()
			}
			pubs, subs, msgs := pairs(b, svc, n)
			b.SetBytes(16)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				k := i % n
				if _, err := pubs[k].Feed(msgs[k]); err != nil {
					b.Fatal(err)
				}
				subs[k].out = subs[k].out[:0]
				i++
			}
		})
	}
}

// TestPublishWithRulesDoesNotAllocate: the checks add no allocation.
func TestPublishWithRulesDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race")
	}
	p, err := auth.Parse("t", strings.NewReader(benchUsers(10, true)))
	if err != nil {
		t.Fatal(err)
	}
	svc := auth.New(auth.Options{Policy: p, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	defer svc.Close()
	pubs, subs, msgs := pairs(t, svc, 10)
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		k := i % 10
		pubs[k].Feed(msgs[k])
		subs[k].out = subs[k].out[:0]
		i++
	})
	if allocs != 0 {
		t.Errorf("a publish under rules allocates %.1f times", allocs)
	}
	if got := string(subs[3].out); got != "" {
		t.Errorf("leftover %q", got)
	}
	pubs[3].Feed(msgs[3])
	if !strings.HasPrefix(string(subs[3].out), "MSG site.dev-3.temp 1 16") {
		t.Errorf("the subscriber got %q", subs[3].out)
	}
}

var (
	badLogin  = []byte("CONNECT {\"user\":\"dev\",\"pass\":\"wrong\"}\r\nPING\r\n")
	goodLogin = []byte("CONNECT {\"auth_token\":\"app\"}\r\nPING\r\n")
)

// TestHelperBadLogins is the attackers of BenchmarkPublishDuringBadLogins,
// in a process of their own (on one core: GOMAXPROCS=1), as they would be
// on other machines: 100 connections trying a wrong password in a loop,
// each a raw client that sends CONNECT, reads the refusal and dials again.
func TestHelperBadLogins(t *testing.T) {
	addr := os.Getenv("LEDGE_BADLOGIN_ADDR")
	if addr == "" {
		t.Skip("only run as BenchmarkPublishDuringBadLogins's child")
	}
	login := badLogin
	if os.Getenv("LEDGE_BADLOGIN_GOOD") != "" {
		login = goodLogin
	}
	fmt.Println("ready")
	var wg sync.WaitGroup
	for range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				c, err := net.DialTimeout("tcp", addr, 5*time.Second)
				if err != nil {
					time.Sleep(time.Millisecond)
					continue
				}
				c.SetDeadline(time.Now().Add(5 * time.Second))
				c.Write(login)
				if len(login) == len(goodLogin) {
					// In: read INFO and the PONG, and leave.
					r := bufio.NewReader(c)
					r.ReadString('\n')
					r.ReadString('\n')
				} else {
					io.Copy(io.Discard, c) // INFO, the -ERR, then the close
				}
				c.Close()
			}
		}()
	}
	wg.Wait()
}

// BenchmarkPublishDuringBadLogins is a client making round trips through
// the gateway while 100 connections of another process keep trying wrong
// passwords (bcrypt at its default cost, as ledge passwd writes it),
// against the same without them: a flood of bad logins must not slow the
// clients that are in more than the connections themselves cost. The
// figures are the round trip and the rate of refused logins; the same
// churn of connections that log in rightly ("100-reconnects") is what the
// connections alone cost.
func BenchmarkPublishDuringBadLogins(b *testing.B) {
	hash, err := auth.HashPassword("right", 0)
	if err != nil {
		b.Fatal(err)
	}
	p, err := auth.Parse("bench", strings.NewReader("[user dev]\npassword = "+hash+"\n[user app]\ntoken = "+auth.TokenDigest("app")+"\n"))
	if err != nil {
		b.Fatal(err)
	}
	for _, mode := range []string{"quiet", "100-reconnects", "100-bad-logins"} {
		flood := mode != "quiet"
		b.Run(mode, func(b *testing.B) {
			svc := auth.New(auth.Options{Policy: p, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			defer svc.Close()
			g := startGateway(b, false, Options{Auth: svc}, "")
			pub := connect(b, g.url, nats.Token("app"))
			sub := connect(b, g.url, nats.Token("app"))
			got := make(chan struct{}, 1024)
			sub.Subscribe("telemetry", func(*nats.Msg) { got <- struct{}{} })
			sub.Flush()
			if flood {
				cmd := exec.Command(os.Args[0], "-test.run=^TestHelperBadLogins$")
				cmd.Env = append(os.Environ(), "LEDGE_BADLOGIN_ADDR="+g.ln.Addr().String(), "GOMAXPROCS=1")
				if mode == "100-reconnects" {
					cmd.Env = append(cmd.Env, "LEDGE_BADLOGIN_GOOD=1")
				}
				out, _ := cmd.StdoutPipe()
				if err := cmd.Start(); err != nil {
					b.Fatal(err)
				}
				defer func() { cmd.Process.Kill(); cmd.Wait() }()
				bufio.NewReader(out).ReadString('\n')
				// Past the burst the limiter allows.
				time.Sleep(500 * time.Millisecond)
			}
			before := g.srv.Stats().AuthFailures.Load()
			conns := g.ln.Stats().ConnsTotal
			payload := make([]byte, 128)
			b.SetBytes(128)
			b.ResetTimer()
			for b.Loop() {
				pub.Publish("telemetry", payload)
				<-got
			}
			b.StopTimer()
			if flood {
				b.ReportMetric(float64(g.srv.Stats().AuthFailures.Load()-before)/b.Elapsed().Seconds(), "bad-logins/s")
				b.ReportMetric(float64(g.ln.Stats().ConnsTotal-conns)/b.Elapsed().Seconds(), "conns/s")
			}
		})
	}
}
