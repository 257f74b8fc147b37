package auth

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestRequireRole(t *testing.T) {
	s := newService(t, policy(t, `
[user mon]
password = HASH
roles = monitor
[user dev]
password = HASH
[user ops]
token = `+TokenDigest("opstoken")+`
roles = admin
`), nil)
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	read := s.RequireRole(RoleMonitor, ok)
	write := s.RequireRole(RoleAdmin, ok)
	cases := []struct {
		name   string
		h      http.Handler
		user   string
		pass   string
		bearer string
		remote string
		want   int
	}{
		{"monitor reads", read, "mon", "secret", "", "10.0.0.1:1", 204},
		{"monitor may not write", write, "mon", "secret", "", "10.0.0.1:1", 403},
		{"user without the role", read, "dev", "secret", "", "10.0.0.1:1", 403},
		{"wrong password", read, "mon", "nope", "", "10.0.0.1:1", 401},
		{"no credentials", read, "", "", "", "10.0.0.1:1", 401},
		{"admin token", write, "", "", "opstoken", "10.0.0.1:1", 204},
		{"bad token", write, "", "", "x", "10.0.0.1:1", 401},
		{"loopback without credentials, users configured", read, "", "", "", "127.0.0.1:1", 401},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/varz", nil)
			r.RemoteAddr = c.remote
			if c.user != "" {
				r.SetBasicAuth(c.user, c.pass)
			}
			if c.bearer != "" {
				r.Header.Set("Authorization", "Bearer "+c.bearer)
			}
			w := httptest.NewRecorder()
			c.h.ServeHTTP(w, r)
			if w.Code != c.want {
				t.Fatalf("status %d, want %d", w.Code, c.want)
			}
			if c.want == 401 && w.Header().Get("WWW-Authenticate") == "" {
				t.Error("401 without a challenge")
			}
		})
	}
}

func TestRequireRoleDefaultMode(t *testing.T) {
	s := newService(t, nil, nil)
	h := s.RequireRole(RoleAdmin, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	for remote, want := range map[string]int{"127.0.0.1:5": 200, "[::1]:5": 200, "192.168.1.9:5": 401} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = remote
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != want {
			t.Errorf("%s: %d, want %d", remote, w.Code, want)
		}
	}
}
