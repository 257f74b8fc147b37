package auth

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	loopback = &net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 5000}
	lan      = &net.TCPAddr{IP: net.ParseIP("10.1.2.3"), Port: 5000}
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func policy(t testing.TB, text string) *Policy {
	t.Helper()
	p, err := Parse("test", strings.NewReader(strings.ReplaceAll(text, "HASH", secretHash)))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func newService(t testing.TB, p *Policy, log *slog.Logger) *Service {
	t.Helper()
	if log == nil {
		log = quiet()
	}
	s := New(Options{Policy: p, Logger: log})
	t.Cleanup(s.Close)
	return s
}

// login authenticates and waits for a pending check.
func login(t testing.TB, s *Service, r Request) (*Client, error) {
	t.Helper()
	ch := make(chan struct {
		cl  *Client
		err error
	}, 1)
	cl, pending, err := s.Authenticate(&r, func(cl *Client, err error) {
		ch <- struct {
			cl  *Client
			err error
		}{cl, err}
	})
	if pending {
		select {
		case res := <-ch:
			cl, err = res.cl, res.err
		case <-time.After(10 * time.Second):
			t.Fatal("no answer from the pool")
		}
	}
	if cl != nil {
		t.Cleanup(cl.Close)
	}
	return cl, err
}

type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestDefaultModeLoopbackOnly(t *testing.T) {
	var logs logBuf
	s := newService(t, nil, slog.New(slog.NewTextHandler(&logs, nil)))
	cl, err := login(t, s, Request{Protocol: MQTT, Remote: loopback})
	if err != nil || !cl.Unrestricted() || !cl.Anonymous() {
		t.Fatalf("loopback: %v %v", cl, err)
	}
	// Credentials from loopback are not needed and not checked.
	if _, err := login(t, s, Request{Protocol: NATS, Remote: loopback, Username: "x", Password: []byte("y")}); err != nil {
		t.Fatalf("loopback with credentials: %v", err)
	}
	for _, r := range []Request{{Protocol: MQTT, Remote: lan}, {Protocol: AMQP, Remote: lan, Username: "x", Password: []byte("y")}} {
		if _, err := login(t, s, r); !errors.Is(err, ErrNotAuthorized) {
			t.Fatalf("from the LAN: %v, want ErrNotAuthorized", err)
		}
	}
	if !strings.Contains(logs.String(), "ledge passwd") || strings.Count(logs.String(), "not on loopback") != 1 {
		t.Errorf("the refusal should say once how to add users:\n%s", logs.String())
	}
}

func TestPasswordLogin(t *testing.T) {
	s := newService(t, policy(t, "[user dev]\npassword = HASH\n"), nil)
	r := &Request{Protocol: MQTT, Remote: lan, Username: "dev", Password: []byte("secret")}
	_, pending, err := s.Authenticate(r, func(cl *Client, err error) {})
	if !pending || err != nil {
		t.Fatalf("a first password check must run on the pool: pending %v, %v", pending, err)
	}
	cl, err := login(t, s, *r)
	if err != nil || cl.User() != "dev" || cl.Anonymous() {
		t.Fatalf("good password: %v %v", cl, err)
	}
	// Checked once, remembered: no pool the second time.
	got, pending, err := s.Authenticate(r, func(*Client, error) { t.Error("done called for a decision made at once") })
	if pending || err != nil || got.User() != "dev" {
		t.Fatalf("remembered password: pending %v, %v", pending, err)
	}
	got.Close()
	for _, bad := range []Request{
		{Protocol: MQTT, Remote: lan, Username: "dev", Password: []byte("wrong")},
		{Protocol: MQTT, Remote: lan, Username: "nobody", Password: []byte("secret")},
	} {
		if _, err := login(t, s, bad); !errors.Is(err, ErrBadCredentials) {
			t.Errorf("%s/%s: %v, want ErrBadCredentials", bad.Username, bad.Password, err)
		}
	}
	if _, err := login(t, s, Request{Protocol: MQTT, Remote: lan}); !errors.Is(err, ErrNotAuthorized) {
		t.Errorf("anonymous with users configured: %v", err)
	}
	if _, err := login(t, s, Request{Protocol: MQTT, Remote: loopback}); !errors.Is(err, ErrNotAuthorized) {
		t.Errorf("anonymous on loopback with users configured: %v", err)
	}
}

func TestFailedLoginsRateLimited(t *testing.T) {
	s := New(Options{Policy: policy(t, "[user dev]\npassword = HASH\n"), Logger: quiet(), FailureBurst: 3, FailureInterval: time.Hour})
	t.Cleanup(s.Close)
	bad := Request{Protocol: NATS, Remote: lan, Username: "dev", Password: []byte("guess")}
	for i := range 3 {
		if _, err := login(t, s, bad); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	_, pending, err := s.Authenticate(&bad, func(*Client, error) {})
	if pending || !errors.Is(err, ErrLoginRate) {
		t.Fatalf("past the burst: pending %v, %v; want ErrLoginRate at once", pending, err)
	}
	// Another address is not held back.
	other := bad
	other.Remote = &net.TCPAddr{IP: net.ParseIP("10.9.9.9")}
	other.Password = []byte("secret")
	if _, err := login(t, s, other); err != nil {
		t.Fatalf("another address: %v", err)
	}
	// And a password already known good from the limited address passes.
	good := bad
	good.Password = []byte("secret")
	if _, err := login(t, s, good); err != nil {
		t.Fatalf("a remembered good password from the limited address: %v", err)
	}
}

func TestBusyPool(t *testing.T) {
	s := New(Options{Policy: policy(t, "[user dev]\npassword = HASH\n"), Logger: quiet(), Workers: 1, Queue: 1, FailureBurst: 1000})
	t.Cleanup(s.Close)
	busy := 0
	var wg sync.WaitGroup
	for i := range 50 {
		r := Request{Protocol: MQTT, Remote: &net.TCPAddr{IP: net.IPv4(10, 0, 0, byte(i))}, Username: "dev", Password: []byte("wrong")}
		wg.Add(1)
		_, pending, err := s.Authenticate(&r, func(*Client, error) { wg.Done() })
		if !pending {
			wg.Done()
			if errors.Is(err, ErrBusy) {
				busy++
			}
		}
	}
	wg.Wait()
	if busy == 0 {
		t.Error("50 logins on a pool of one worker and a queue of one: none refused as busy")
	}
}

func TestTokenAndCert(t *testing.T) {
	p := policy(t, "[user ops]\ntoken = "+TokenDigest("t0ken")+"\ncert = ops.example\nprotocols = nats\n")
	s := newService(t, p, nil)
	cl, err := login(t, s, Request{Protocol: NATS, Remote: lan, Token: "t0ken"})
	if err != nil || cl.User() != "ops" {
		t.Fatalf("token: %v %v", cl, err)
	}
	if _, err := login(t, s, Request{Protocol: NATS, Remote: lan, Token: "nope"}); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("bad token: %v", err)
	}
	// A token in the password field, without a user name.
	if cl, err := login(t, s, Request{Protocol: NATS, Remote: lan, Password: []byte("t0ken")}); err != nil || cl.User() != "ops" {
		t.Fatalf("token as password: %v %v", cl, err)
	}
	if _, err := login(t, s, Request{Protocol: MQTT, Remote: lan, Token: "t0ken"}); !errors.Is(err, ErrNotAuthorized) {
		t.Fatalf("a protocol the user may not use: %v", err)
	}
}

func TestMaxConnections(t *testing.T) {
	s := newService(t, policy(t, "[user d]\ntoken = "+TokenDigest("k")+"\nmax-connections = 2\n"), nil)
	r := Request{Protocol: MQTT, Remote: lan, Token: "k"}
	a, _ := login(t, s, r)
	if _, err := login(t, s, r); err != nil {
		t.Fatal(err)
	}
	if _, err := login(t, s, r); !errors.Is(err, ErrTooManyConnections) {
		t.Fatalf("third connection: %v", err)
	}
	a.Close()
	if _, err := login(t, s, r); err != nil {
		t.Fatalf("after one closed: %v", err)
	}
}

func TestAnonymousSection(t *testing.T) {
	s := newService(t, policy(t, "[user d]\npassword = HASH\n[anonymous]\nsubscribe = public.>\npublish-deny = >\n"), nil)
	cl, err := login(t, s, Request{Protocol: MQTT, Remote: lan})
	if err != nil || !cl.Anonymous() {
		t.Fatal(err)
	}
	if cl.MayPublish([]byte("public.x")) || cl.Subscribe("public.x") != Allowed || cl.Subscribe("private.x") != Denied {
		t.Error("anonymous rules not applied")
	}
}

func TestReload(t *testing.T) {
	s := newService(t, policy(t, `
[user a]
password = HASH
subscribe = a.>
[user b]
token = `+TokenDigest("tb")+`
subscribe = b.>
[user c]
token = `+TokenDigest("tc")+`
`), nil)
	ca, _ := login(t, s, Request{Protocol: NATS, Remote: lan, Username: "a", Password: []byte("secret")})
	cb, _ := login(t, s, Request{Protocol: NATS, Remote: lan, Token: "tb"})
	cc, _ := login(t, s, Request{Protocol: NATS, Remote: lan, Token: "tc"})
	if ca == nil || cb == nil || cc == nil {
		t.Fatal("logins failed")
	}
	events := map[string]error{}
	var mu sync.Mutex
	for _, cl := range []*Client{ca, cb, cc} {
		cl.OnChange(func(err error) {
			mu.Lock()
			events[cl.User()] = err
			mu.Unlock()
		})
	}
	if ca.Subscribe("a.x") != Allowed || cb.Subscribe("b.x") != Allowed {
		t.Fatal("before the reload")
	}
	// a's rules narrow, b's token changes, c is removed.
	res := s.Reload(policy(t, `
[user a]
password = HASH
subscribe = a.x
[user b]
token = `+TokenDigest("other")+`
`))
	if res.Kept != 1 || res.Dropped != 2 {
		t.Errorf("reload result %+v", res)
	}
	mu.Lock()
	defer mu.Unlock()
	if err, ok := events["a"]; !ok || err != nil {
		t.Errorf("a: told %v (%v), want a re-check", err, ok)
	}
	if !errors.Is(events["b"], ErrRevoked) || !errors.Is(events["c"], ErrRevoked) {
		t.Errorf("b and c: %v %v, want ErrRevoked", events["b"], events["c"])
	}
	if ca.Subscribe("a.y") != Denied || ca.Subscribe("a.x") != Allowed {
		t.Error("a's new rules are not in force")
	}
}

func TestReloadFromDefaultMode(t *testing.T) {
	s := newService(t, nil, nil)
	cl, err := login(t, s, Request{Protocol: MQTT, Remote: loopback})
	if err != nil {
		t.Fatal(err)
	}
	var got error
	done := make(chan struct{}, 1)
	cl.OnChange(func(err error) { got = err; done <- struct{}{} })
	s.Reload(policy(t, "[user a]\npassword = HASH\n"))
	<-done
	if !errors.Is(got, ErrRevoked) {
		t.Fatalf("a loopback client once users exist: %v", got)
	}
}

func TestPending(t *testing.T) {
	s := newService(t, nil, nil)
	mk := func() *Client {
		cl, _, _ := s.Authenticate(&Request{Protocol: NATS, Remote: loopback}, nil)
		return cl
	}
	// The loop takes the result.
	var p Pending
	cl := mk()
	if !p.Put(cl, nil) {
		t.Fatal("put")
	}
	if got, _, ok := p.Take(); !ok || got != cl {
		t.Fatal("take")
	}
	p.Abandon() // the connection now owns cl: not closed here
	if s.Stats().Clients != 1 {
		t.Fatal("a taken client was closed by Abandon")
	}
	cl.Close()
	// The connection closes first: a later result is closed.
	var q Pending
	q.Abandon()
	if q.Put(mk(), nil) {
		t.Fatal("put after abandon")
	}
	// The connection closes between Put and Take.
	var r Pending
	r.Put(mk(), nil)
	r.Abandon()
	if _, _, ok := r.Take(); ok {
		t.Fatal("take after abandon")
	}
	if n := s.Stats().Clients; n != 0 {
		t.Fatalf("%d clients leaked", n)
	}
}

// Logins that arrive together take the burst between them: a hundred
// connections guessing at once get a burst of checks, not a hundred.
func TestConcurrentBadLoginsShareTheBurst(t *testing.T) {
	s := New(Options{Policy: policy(t, "[user dev]\npassword = HASH\n"), Logger: quiet(), FailureBurst: 5, FailureInterval: time.Hour, Queue: 1000})
	t.Cleanup(s.Close)
	var wg sync.WaitGroup
	checks := 0
	for range 100 {
		r := Request{Protocol: NATS, Remote: lan, Username: "dev", Password: []byte("guess")}
		wg.Add(1)
		_, pending, err := s.Authenticate(&r, func(*Client, error) { wg.Done() })
		if pending {
			checks++
			continue
		}
		wg.Done()
		if !errors.Is(err, ErrLoginRate) {
			t.Fatalf("refused with %v", err)
		}
	}
	wg.Wait()
	if checks != 5 {
		t.Fatalf("%d password checks for 100 logins at once, want the burst of 5", checks)
	}
}
