package auth

import (
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A hash at bcrypt's lowest cost, of "secret".
var secretHash = func() string {
	h, err := HashPassword("secret", 4)
	if err != nil {
		panic(err)
	}
	return h
}()

const exampleFile = `# ledge users
[group devices]
publish = site/%u/#
subscribe = site.%u.> cmd/%u/#
publish-deny = site/%u/secret
max-msgs-per-second = 50
max-payload = 64KiB
protocols = mqtt

[user dev-7]
password = HASH
groups = devices

[user ops]
token = sha256:` + "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b" + `
cert = ops.plant.example
roles = admin monitor
max-connections = 3

[user svc]
password = HASH
publish = svc.>
subscribe = _INBOX.> svc.>
allow-responses = 5 1m
amqp-configure = ^svc\.
amqp-write = "^(svc\..*|amq\.topic)$"
amqp-read = ^svc\.
disk-quota = 10MB

[anonymous]
subscribe = public.>
publish-deny = >
`

func TestParseExample(t *testing.T) {
	p, err := Parse("users", strings.NewReader(strings.ReplaceAll(exampleFile, "HASH", secretHash)))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(p.Users(), " "); got != "dev-7 ops svc" {
		t.Errorf("users %q", got)
	}
	dev := p.users["dev-7"].eff
	if dev.limits.MsgsPerSecond != 50 || dev.limits.MaxPayload != 64<<10 || len(dev.protocols) != 1 || dev.protocols[0] != MQTT {
		t.Errorf("dev-7 from its group: %+v", dev)
	}
	ops := p.users["ops"]
	if !ops.eff.hasRole(RoleAdmin) || ops.eff.limits.MaxConnections != 3 || p.byCert["ops.plant.example"] != ops {
		t.Errorf("ops: %+v", ops.eff)
	}
	if p.byToken[digestOf("secret")] != ops {
		t.Errorf("ops's token (the digest of \"secret\") does not find ops")
	}
	svc := p.users["svc"].eff
	if svc.responses == nil || svc.responses.MaxMsgs != 5 || svc.responses.Expires != time.Minute || svc.limits.DiskQuota != 10e6 {
		t.Errorf("svc: %+v", svc)
	}
	if !p.Anonymous() || !p.HasUsers() {
		t.Errorf("anonymous %v, users %v", p.Anonymous(), p.HasUsers())
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		name, text, want string
	}{
		{"outside a section", "publish = a\n", "x:1: setting"},
		{"unknown section", "\n[users a]\n", "x:2: unknown section [users]"},
		{"header without end", "[user a\n", "x:1: section header"},
		{"two names", "[user a b]\n", "x:1: want [user NAME] with one name"},
		{"duplicate user", "[user a]\ntoken = sha256:" + strings.Repeat("0", 64) + "\n[user a]\n", "x:3: user a: user \"a\" given twice"},
		{"no credentials", "[user a]\npublish = x\n[user b]\n", "x:1: user a has no password"},
		{"plain password", "[user a]\npassword = hunter2\n", "x:2: user a: password must be a bcrypt hash"},
		{"bad token", "[user a]\ntoken = 1234\n", "x:2: user a: token \"1234\""},
		{"unknown setting", "[group g]\npubish = a\n", "x:2: group g: unknown setting \"pubish\""},
		{"not name = value", "[group g]\npublish a\n", "x:2: group g: want name = value"},
		{"bad pattern", "[group g]\npublish = a..b\n", "x:2: group g: publish: pattern \"a..b\": token 1 is empty"},
		{"bad MQTT filter", "[group g]\nsubscribe = a/#/b\n", "'#' must be the last level"},
		{"bad tail", "[group g]\nsubscribe = a.>.b\n", "'>' must be the last token"},
		{"given twice", "[group g]\nmax-payload = 1\nmax-payload = 2\n", "x:3: group g: max-payload given twice (first on line 2)"},
		{"bad number", "[group g]\nmax-connections = many\n", "max-connections: want a whole number"},
		{"bad size", "[group g]\nmax-payload = 1 lot\n", "max-payload: want a size"},
		{"bad role", "[group g]\nroles = root\n", "unknown role \"root\""},
		{"bad protocol", "[group g]\nprotocols = http\n", "unknown protocol \"http\""},
		{"bad regexp", "[group g]\namqp-read = (\n", "amqp-read: regular expression"},
		{"bad responses", "[group g]\nallow-responses = maybe\n", "allow-responses: max messages"},
		{"group in group", "[group g]\ngroups = h\n", "a group cannot name groups"},
		{"unknown group", "[user a]\ntoken = sha256:" + strings.Repeat("1", 64) + "\ngroups = nope\n", "x:1: user a: no group \"nope\""},
		{"same cert", "[user a]\ncert = c\n[user b]\ncert = c\n", "user b names certificate \"c\", already user a's"},
		{"same token", "[user a]\ntoken = sha256:" + strings.Repeat("2", 64) + "\n[user b]\ntoken = sha256:" + strings.Repeat("2", 64) + "\n", "same token"},
		{"password in a group", "[group g]\npassword = x\n", "password belongs in a [user NAME] section"},
		{"anonymous twice", "[anonymous]\n[anonymous]\n", "x:2: [anonymous] given twice"},
		{"not UTF-8", "[group g]\npublish = \xff\n", "x:2: group g: not UTF-8"},
		{"long line", "[group g]\npublish = " + strings.Repeat("a", maxLine) + "\n", "x:2: group g: line longer"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("x", strings.NewReader(c.text))
			if err == nil || !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one with %q", err, c.want)
			}
		})
	}
}

func TestLoadFileNamesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users")
	os.WriteFile(path, []byte("[user a]\n\npassword = nope\n"), 0o600)
	_, err := LoadFile(path)
	if err == nil || !strings.Contains(err.Error(), path+":3:") {
		t.Fatalf("err = %v, want it to name %s:3", err, path)
	}
	_, err = LoadFile(filepath.Join(t.TempDir(), "missing"))
	if err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("missing file: %v", err)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "10": 10, "64KiB": 64 << 10, "1 MiB": 1 << 20, "10MB": 10e6, "2GiB": 2 << 30, "5B": 5} {
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "1.5MB", "MB", "9999999999999TiB"} {
		if _, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) accepted", in)
		}
	}
}

func digestOf(s string) [32]byte {
	var d [32]byte
	copy(d[:], mustHex(TokenDigest(s)[len("sha256:"):]))
	return d
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}
