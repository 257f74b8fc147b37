package auth

import (
	"strings"
	"testing"
)

func TestEditKeepsTheRest(t *testing.T) {
	text := []byte(`# plant users
[group devices]
publish = site/%u/#

[user dev-7]
# the boiler
password = ` + secretHash + `
groups = devices

[user ops]
token = ` + TokenDigest("t") + `
`)
	h2, _ := HashPassword("new", 4)
	out, err := SetPassword("users", text, "dev-7", h2)
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	if !strings.Contains(s, "password = "+h2) || strings.Contains(s, secretHash) || !strings.Contains(s, "# the boiler") || !strings.Contains(s, "groups = devices") {
		t.Fatalf("changed password:\n%s", s)
	}
	out, err = SetPassword("users", out, "dev-8", h2)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse("users", strings.NewReader(string(out)))
	if err != nil || strings.Join(p.Users(), " ") != "dev-7 ops dev-8" {
		t.Fatalf("added user: %v %v\n%s", err, p.Users(), out)
	}
	out, err = AddToken("users", out, "ops", TokenDigest("second"))
	if err != nil || strings.Count(string(out), "token = ") != 2 {
		t.Fatalf("second token: %v\n%s", err, out)
	}
	out, found, err := DeleteUser("users", out, "dev-7")
	if err != nil || !found || strings.Contains(string(out), "dev-7") || !strings.Contains(string(out), "[group devices]") {
		t.Fatalf("delete: %v %v\n%s", found, err, out)
	}
	if _, found, _ := DeleteUser("users", out, "nobody"); found {
		t.Fatal("deleted a user that is not there")
	}
	// A change that would leave the file broken is refused.
	if _, err := SetPassword("users", []byte("[user x]\n"), "y", h2); err == nil {
		t.Fatal("an edit of a broken file succeeded")
	}
	if _, err := SetPassword("users", nil, "a b", h2); err == nil {
		t.Fatal("a user name with a space was written")
	}
}
