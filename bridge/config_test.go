package bridge

import (
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	ok := Uplink{Name: "cloud", URLs: []string{"nats://h:4222"}, Subjects: []string{"a.>"}}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"valid", func(*Config) {}, ""},
		{"no gateway id", func(c *Config) { c.GatewayID = "" }, "gateway id"},
		{"colon in gateway id", func(c *Config) { c.GatewayID = "a:b" }, "no spaces or ':'"},
		{"bad name", func(c *Config) { c.Uplinks[0].Name = "a b" }, "uplink name"},
		{"twice", func(c *Config) { c.Uplinks = append(c.Uplinks, ok) }, "named twice"},
		{"no url", func(c *Config) { c.Uplinks[0].URLs = nil }, "no upstream URL"},
		{"nothing", func(c *Config) { c.Uplinks[0].Subjects = nil }, "nothing to forward"},
		{"bad pattern", func(c *Config) { c.Uplinks[0].Subjects = []string{"a..b"} }, "subject"},
		{"prefix without dot", func(c *Config) { c.Uplinks[0].Prefix = "site42" }, "must end with '.'"},
		{"two credentials", func(c *Config) { c.Uplinks[0].Token, c.Uplinks[0].CredsFile = "t", "f" }, "more than one kind"},
		{"cert without key", func(c *Config) { c.Uplinks[0].TLS.Cert = "c" }, "go together"},
		{"durable without stream", func(c *Config) { c.Uplinks[0].DownlinkDurable = "d" }, "downlink stream and durable"},
		{"durable in core mode", func(c *Config) {
			u := &c.Uplinks[0]
			u.DownlinkDurable, u.DownlinkStream, u.Downlink, u.Mode = "d", "S", []string{"cmd.>"}, ModeCore
		}, "needs JetStream"},
		{"negative rate", func(c *Config) { c.Uplinks[0].RateLimit = -1 }, ">= 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{GatewayID: "edge1", Uplinks: []Uplink{ok}}
			tc.edit(&c)
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			}
		})
	}
}

func TestParseModeAndBudget(t *testing.T) {
	for _, m := range []Mode{ModeAuto, ModeJetStream, ModeCore} {
		if got, err := ParseMode(m.String()); err != nil || got != m {
			t.Errorf("ParseMode(%q) = %v, %v", m, got, err)
		}
	}
	for _, p := range []BudgetPolicy{DropOldest, RefuseNew} {
		if got, err := ParseBudgetPolicy(p.String()); err != nil || got != p {
			t.Errorf("ParseBudgetPolicy(%q) = %v, %v", p, got, err)
		}
	}
	if _, err := ParseMode("fast"); err == nil {
		t.Error("ParseMode accepted fast")
	}
}

func TestLimiterPaces(t *testing.T) {
	l := newLimiter(1000)
	if d := l.take(1000); d != 0 {
		t.Errorf("the first second's burst waited %s", d)
	}
	d := l.take(500)
	if d < 400*time.Millisecond || d > 600*time.Millisecond {
		t.Errorf("500 bytes over the burst at 1000 B/s wait %s, want about 500ms", d)
	}
}

func TestMsgID(t *testing.T) {
	if got := msgID("edge1", "UPLINK_cloud", 42); got != "edge1:UPLINK_cloud:42" {
		t.Errorf("msgID = %q", got)
	}
}
