package auth

import (
	"errors"
	"net"
	"net/http"
	"strings"
)

// AuthenticateHTTP checks an HTTP request's credentials against the same
// users as every other protocol: Basic (user and password) or Bearer (a
// token) in its Authorization header, or a verified client certificate on
// an HTTPS connection. It waits for the password check, so it is for an
// HTTP handler's goroutine (net/http gives each request its own), never
// for an event loop. The Client returned is not a connection: it needs no
// Close and is not counted against max-connections. Without credentials
// the request is anonymous, let in as any other anonymous client: from
// loopback in the default mode, or under the [anonymous] rules.
func (s *Service) AuthenticateHTTP(r *http.Request) (*Client, error) {
	req := &Request{Protocol: HTTP, TLS: r.TLS}
	if host, port, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		req.Remote = remoteAddr(host, port)
	}
	if user, pass, ok := r.BasicAuth(); ok {
		req.Username, req.Password = user, []byte(pass)
	} else if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
			return nil, ErrBadCredentials
		}
		req.Token = strings.TrimSpace(tok)
	}
	type result struct {
		cl  *Client
		err error
	}
	ch := make(chan result, 1)
	cl, pending, err := s.authenticate(req, false, func(cl *Client, err error) { ch <- result{cl, err} })
	if pending {
		res := <-ch
		cl, err = res.cl, res.err
	}
	return cl, err
}

// remoteAddr parses an HTTP request's remote address.
func remoteAddr(host, port string) net.Addr {
	ip := net.ParseIP(host)
	if ip == nil {
		return nil
	}
	return &net.TCPAddr{IP: ip}
}

// RequireRole wraps an HTTP handler so that only clients with role reach
// it: a request without good credentials is answered 401 with a Basic
// challenge, one whose user lacks the role 403. The monitoring API puts
// its read endpoints behind RoleMonitor and the ones that change things
// behind RoleAdmin.
func (s *Service) RequireRole(role Role, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cl, err := s.AuthenticateHTTP(r)
		switch {
		case err == nil && cl.HasRole(role):
			next.ServeHTTP(w, r)
		case err == nil && !cl.Anonymous():
			http.Error(w, "forbidden: user "+cl.User()+" does not have the "+string(role)+" role", http.StatusForbidden)
		case errors.Is(err, ErrLoginRate), errors.Is(err, ErrBusy):
			w.Header().Set("Retry-After", "1")
			http.Error(w, err.Error(), http.StatusTooManyRequests)
		default:
			w.Header().Set("WWW-Authenticate", `Basic realm="ledge", charset="UTF-8"`)
			http.Error(w, "unauthorized: credentials with the "+string(role)+" role are needed", http.StatusUnauthorized)
		}
	})
}
