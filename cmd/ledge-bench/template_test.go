package main

import "testing"

func TestTemplates(t *testing.T) {
	cases := []struct {
		tmpl, at3, wild string
	}{
		{"site.{n}.temp", "site.3.temp", "site.*.temp"},
		{"bench", "bench", "bench"},
		{"dev{n}.up", "dev3.up", "*.up"},
		{"a.{n}.{n}", "a.3.3", "a.*.*"},
	}
	for _, c := range cases {
		if err := checkTemplate(c.tmpl); err != nil {
			t.Errorf("checkTemplate(%q): %v", c.tmpl, err)
		}
		if got := expand(c.tmpl, 3); got != c.at3 {
			t.Errorf("expand(%q, 3) = %q, want %q", c.tmpl, got, c.at3)
		}
		if got := wildcard(c.tmpl); got != c.wild {
			t.Errorf("wildcard(%q) = %q, want %q", c.tmpl, got, c.wild)
		}
		if !matches(c.wild, c.at3) {
			t.Errorf("%q does not match %q", c.wild, c.at3)
		}
	}
}

func TestBadTemplates(t *testing.T) {
	for _, tmpl := range []string{"", "site.*.temp", "site.>", "a..b", ".a", "a b", "site.{id}.temp", "site.{n"} {
		if checkTemplate(tmpl) == nil {
			t.Errorf("checkTemplate(%q) accepted", tmpl)
		}
	}
}

func TestMatches(t *testing.T) {
	cases := []struct {
		filter, subject string
		want            bool
	}{
		{"a.b", "a.b", true},
		{"a.b", "a.c", false},
		{"a.*", "a.b", true},
		{"a.*", "a.b.c", false},
		{"a.>", "a.b.c", true},
		{"a.>", "a", false},
		{"*.b", "a.b", true},
		{"a.b.c", "a.b", false},
	}
	for _, c := range cases {
		if got := matches(c.filter, c.subject); got != c.want {
			t.Errorf("matches(%q, %q) = %v", c.filter, c.subject, got)
		}
	}
}

func TestMQTTTemplates(t *testing.T) {
	d := mqttDialect
	if err := d.checkTemplate("site/{n}/temp"); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"site/+/temp", "site/#", "a/b+", ""} {
		if d.checkTemplate(bad) == nil {
			t.Errorf("checkTemplate(%q) accepted", bad)
		}
	}
	if got := d.wildcard("site/{n}/temp"); got != "site/+/temp" {
		t.Errorf("wildcard = %q", got)
	}
	cases := []struct {
		filter, topic string
		want          bool
	}{
		{"site/+/temp", "site/7/temp", true},
		{"site/+/temp", "site/7/hum", false},
		{"site/#", "site", true},
		{"site/#", "site/7/temp", true},
		{"site.+.temp", "site.7.temp", false}, // dots are not separators in MQTT
		{"+", "site.7.temp", true},
	}
	for _, c := range cases {
		if got := d.matches(c.filter, c.topic); got != c.want {
			t.Errorf("matches(%q, %q) = %v", c.filter, c.topic, got)
		}
	}
}
