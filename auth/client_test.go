package auth

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

const deviceRules = `
[group devices]
publish = site/%u/#
publish-deny = site/%u/secret
subscribe = site/%u/# cmd.%c.>
subscribe-deny = site/%u/secret

[user dev-7]
password = HASH
groups = devices

[user a.b]
password = HASH
groups = devices

[user svc]
password = HASH
publish = svc.>
subscribe = svc.> _INBOX.>
allow-responses = true

[user root]
password = HASH
roles = admin
`

func clientOf(t testing.TB, s *Service, user, clientID string, proto Protocol) *Client {
	t.Helper()
	cl, err := login(t, s, Request{Protocol: proto, Remote: lan, Username: user, Password: []byte("secret"), ClientID: clientID})
	if err != nil {
		t.Fatalf("login %s: %v", user, err)
	}
	return cl
}

func TestDeviceRules(t *testing.T) {
	s := newService(t, policy(t, deviceRules), nil)
	dev := clientOf(t, s, "dev-7", "c-1", MQTT)
	pub := map[string]bool{
		"site.dev-7.temp": true, "site.dev-7": true, "site.dev-7.a.b": true,
		"site.dev-7.secret": false, "site.dev-8.temp": false, "site": false, "other.x": false,
	}
	for subj, want := range pub {
		if got := dev.MayPublish([]byte(subj)); got != want {
			t.Errorf("publish %s: %v, want %v", subj, got, want)
		}
		// Twice: the second answer comes from the cache.
		if got := dev.MayPublish([]byte(subj)); got != want {
			t.Errorf("publish %s (cached): %v, want %v", subj, got, want)
		}
	}
	sub := map[string]Access{
		"site.dev-7.temp": Allowed, "site.dev-7.#": Filtered, "site.dev-7.*": Filtered,
		"site.dev-7.x.>": Allowed, "site.dev-7.secret": Denied, "site.dev-8.#": Denied,
		"#": Filtered, "site.*.temp": Filtered, "cmd.c-1.reboot": Allowed, "cmd.c-2.>": Denied,
		"a.b.c": Denied,
	}
	for f, want := range sub {
		if got := dev.Subscribe(f); got != want {
			t.Errorf("subscribe %s: %v, want %v", f, got, want)
		}
	}
	for subj, want := range map[string]bool{"site.dev-7.temp": true, "site.dev-7.secret": false, "site.dev-8.temp": false} {
		if got := dev.MayReceive([]byte(subj)); got != want {
			t.Errorf("receive %s: %v, want %v", subj, got, want)
		}
	}
	// A user whose name holds a separator gets its literal token only.
	ab := clientOf(t, s, "a.b", "c-2", MQTT)
	if !ab.MayPublish([]byte("site.a%2Eb.x")) || ab.MayPublish([]byte("site.a.b.x")) || ab.MayPublish([]byte("site.a.x")) {
		t.Error("user a.b: its rules are not literal")
	}
}

func TestAdminAndNoRules(t *testing.T) {
	s := newService(t, policy(t, deviceRules+"\n[user free]\npassword = HASH\n"), nil)
	for _, name := range []string{"root", "free"} {
		cl := clientOf(t, s, name, "", NATS)
		if !cl.Unrestricted() || !cl.MayPublish([]byte("any.thing")) || cl.Subscribe(">") != Allowed || !cl.MayAccess(Queue, Configure, "q") {
			t.Errorf("%s should be unrestricted", name)
		}
	}
	if !clientOf(t, s, "root", "", NATS).HasRole(RoleMonitor) || clientOf(t, s, "free", "", NATS).HasRole(RoleMonitor) {
		t.Error("roles")
	}
}

func TestInboxesArePrivate(t *testing.T) {
	s := newService(t, policy(t, deviceRules), nil)
	root := clientOf(t, s, "root", "", NATS)
	svc := clientOf(t, s, "svc", "", NATS)
	svc2 := clientOf(t, s, "svc", "", NATS)
	// root's nats.go subscribes to its inbox before its first request.
	if root.Subscribe("_INBOX.rootTok.*") != Allowed {
		t.Fatal("root's inbox")
	}
	if svc.Subscribe("_INBOX.svcTok.*") != Allowed {
		t.Fatal("svc's own inbox")
	}
	if got := svc2.Subscribe("_INBOX.svcTok.*"); got != Denied {
		t.Errorf("another connection on svc's inbox token: %v", got)
	}
	if got := svc2.Subscribe("_INBOX.rootTok.>"); got != Denied {
		t.Errorf("a restricted user on root's inbox token: %v", got)
	}
	if got := svc.Subscribe("_INBOX.>"); got != Filtered {
		t.Fatalf("_INBOX.> for a restricted user: %v, want Filtered", got)
	}
	if !svc.MayReceive([]byte("_INBOX.svcTok.1")) || svc.MayReceive([]byte("_INBOX.rootTok.1")) || svc.MayReceive([]byte("_INBOX.unowned.1")) {
		t.Error("a wildcard over inboxes must see its own inbox only")
	}
	if !root.MayReceive([]byte("_INBOX.svcTok.1")) {
		t.Error("an admin sees every subject")
	}
	// Once svc closes, its token is free.
	svc.Close()
	if svc2.Subscribe("_INBOX.svcTok.*") != Allowed {
		t.Error("the token of a closed connection is not free")
	}
}

func TestAllowResponses(t *testing.T) {
	s := newService(t, policy(t, deviceRules), nil)
	svc := clientOf(t, s, "svc", "", NATS)
	reply := []byte("_INBOX.abc.1")
	if svc.MayPublish(reply) {
		t.Fatal("svc may not publish to an inbox without a request")
	}
	svc.NoteReply(reply)
	if !svc.MayPublish(reply) {
		t.Fatal("svc may answer a request it received")
	}
	if svc.MayPublish(reply) {
		t.Fatal("one answer per request by default")
	}
}

func TestResourcePermissions(t *testing.T) {
	s := newService(t, policy(t, deviceRules+`
[user amqp]
password = HASH
publish = orders.>
amqp-configure = ^orders-%u$
amqp-write = ^amq\.topic$
amqp-read = ""
`), nil)
	dev := clientOf(t, s, "dev-7", "", AMQP)
	cases := []struct {
		cl   *Client
		r    Resource
		p    Perm
		name string
		want bool
	}{
		{dev, Queue, Configure, "amq.gen-abc", true},
		{dev, Queue, Configure, "orders", false},
		{dev, Exchange, Write, "amq.topic", true},
		{dev, Exchange, Write, "", true},
		{dev, Exchange, Read, "amq.topic", true},
		{dev, Queue, Read, "orders", false},
	}
	am := clientOf(t, s, "amqp", "", AMQP)
	cases = append(cases, []struct {
		cl   *Client
		r    Resource
		p    Perm
		name string
		want bool
	}{
		{am, Queue, Configure, "orders-amqp", true},
		{am, Queue, Configure, "orders-amqpx", false},
		{am, Exchange, Write, "amq.topic", true},
		{am, Queue, Read, "orders-amqp", false},
	}...)
	for _, c := range cases {
		if got := c.cl.MayAccess(c.r, c.p, c.name); got != c.want {
			t.Errorf("%s %v %v %q: %v", c.cl.User(), c.p, c.r, c.name, got)
		}
	}
}

func TestRateLimit(t *testing.T) {
	s := newService(t, policy(t, "[user d]\ntoken = "+TokenDigest("k")+"\nmax-msgs-per-second = 10\n"), nil)
	now := int64(1)
	s.clock = func() int64 { return now }
	cl, _ := login(t, s, Request{Protocol: MQTT, Remote: lan, Token: "k"})
	for i := range 10 {
		if d, err := cl.Rate(10); err != nil || d != 0 {
			t.Fatalf("message %d of the burst: %v %v", i, d, err)
		}
	}
	d, err := cl.Rate(10)
	if err != nil || d <= 0 || d > 200*time.Millisecond {
		t.Fatalf("past the burst: %v %v, want a short pause", d, err)
	}
	// A burst that ends: the bucket refills and the connection is calm.
	now += int64(2 * time.Second)
	if d, err := cl.Rate(10); d != 0 || err != nil {
		t.Fatalf("after a quiet while: %v %v", d, err)
	}
	// A device that keeps publishing at twice its rate is throttled,
	// then disconnected once RateGrace has passed.
	paused := 0
	var last error
	for i := 0; i < 1000 && last == nil; i++ {
		now += int64(50 * time.Millisecond)
		d, err := cl.Rate(10)
		if d > 0 {
			paused++
		}
		last = err
	}
	if !errors.Is(last, ErrRateExceeded) || paused == 0 || time.Duration(now) < DefaultRateGrace {
		t.Fatalf("a device at twice its rate: %v after %d pauses and %v", last, paused, time.Duration(now))
	}
}

func TestMayPublishAllocs(t *testing.T) {
	s := newService(t, policy(t, deviceRules), nil)
	dev := clientOf(t, s, "dev-7", "c-1", MQTT)
	subjects := make([][]byte, 64)
	for i := range subjects {
		subjects[i] = fmt.Appendf(nil, "site.dev-7.sensor%d.temp", i)
	}
	for _, s := range subjects {
		dev.MayPublish(s)
		dev.MayReceive(s)
	}
	i := 0
	if n := testing.AllocsPerRun(1000, func() {
		dev.MayPublish(subjects[i%len(subjects)])
		dev.MayReceive(subjects[i%len(subjects)])
		i++
	}); n != 0 {
		t.Errorf("MayPublish and MayReceive allocate %.1f times per call", n)
	}
}

func BenchmarkMayPublish(b *testing.B) {
	s := newService(b, policy(b, deviceRules), nil)
	dev := clientOf(b, s, "dev-7", "c-1", MQTT)
	for _, bc := range []struct {
		name    string
		cl      *Client
		subject string
	}{
		{"nil", nil, "site.dev-7.temp"},
		{"unrestricted", clientOf(b, s, "root", "", NATS), "site.dev-7.temp"},
		{"rules-cached", dev, "site.dev-7.temp"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			subj := []byte(bc.subject)
			b.ReportAllocs()
			for b.Loop() {
				if !bc.cl.MayPublish(subj) {
					b.Fatal("denied")
				}
			}
		})
	}
	b.Run("rules-uncached", func(b *testing.B) {
		subj := []byte("site.dev-7.temp")
		g := dev.g.Load()
		b.ReportAllocs()
		for b.Loop() {
			if !g.pub.allows(subj) {
				b.Fatal("denied")
			}
		}
	})
	b.Run("receive-cached", func(b *testing.B) {
		subj := []byte("site.dev-7.temp")
		b.ReportAllocs()
		for b.Loop() {
			if !dev.MayReceive(subj) {
				b.Fatal("denied")
			}
		}
	})
}
