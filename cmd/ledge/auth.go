package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/ledgemq/ledge/auth"
	"github.com/ledgemq/ledge/monitor"
	"github.com/ledgemq/ledge/natsgw"
	lnet "github.com/ledgemq/ledge/net"
)

// The NATS port's TLS, set in the config file as "tls.nats": required
// (INFO in plaintext, then the handshake, as nats.go expects), first
// (handshake before INFO, for nats.TLSHandshakeFirst clients), or off
// (plaintext even with a certificate).
const (
	natsTLSRequired = "required"
	natsTLSFirst    = "handshake-first"
	natsTLSOff      = "off"
)

// tlsSettings are the config file's "tls.*" lines, which need no flag.
type tlsSettings struct {
	nats        string // natsTLS*
	clientCerts string // "optional" or "require"
}

// setTLSSetting reads one "tls.NAME = value" line of the config file.
func (c *config) setTLSSetting(name, value string) error {
	switch name {
	case "tls.nats":
		switch value {
		case natsTLSRequired, natsTLSFirst, natsTLSOff:
			c.tlsExtra.nats = value
			return nil
		}
		return fmt.Errorf("tls.nats %q: want %s, %s or %s", value, natsTLSRequired, natsTLSFirst, natsTLSOff)
	case "tls.client-certs":
		switch value {
		case "optional", "require":
			c.tlsExtra.clientCerts = value
			return nil
		}
		return fmt.Errorf("tls.client-certs %q: want optional or require", value)
	}
	return fmt.Errorf("unknown setting %q (tls.nats, tls.client-certs)", name)
}

// validateSecurity checks the auth and TLS settings.
func (c *config) validateSecurity() error {
	var errs []error
	if (c.tlsCert == "") != (c.tlsKey == "") {
		errs = append(errs, errors.New("-tls-cert and -tls-key go together"))
	}
	if c.tlsCA != "" && c.tlsCert == "" {
		errs = append(errs, errors.New("-tls-ca (client certificates) needs -tls-cert"))
	}
	if c.tlsExtra.clientCerts == "require" && c.tlsCA == "" {
		errs = append(errs, errors.New("tls.client-certs = require needs -tls-ca"))
	}
	if (c.user == "") != (c.password == "") {
		errs = append(errs, errors.New("-user and -password go together"))
	}
	return errors.Join(errs...)
}

// security is the running broker's users and TLS: what the listeners are
// given, and the reload on SIGHUP.
type security struct {
	cfg    *config
	log    *slog.Logger
	policy func() (*auth.Policy, error)
	svc    *auth.Service
	// tls is nil without -tls-cert.
	tls *auth.ServerTLS
}

// loadPolicy reads the users file (none: the default mode) and adds the
// command line's user, an admin.
func loadPolicy(cfg *config) (*auth.Policy, error) {
	p := auth.NewPolicy()
	if cfg.usersFile != "" {
		var err error
		if p, err = auth.LoadFile(cfg.usersFile); err != nil {
			return nil, err
		}
	}
	if cfg.user != "" {
		if err := p.AddUser(cfg.user, cfg.password, auth.RoleAdmin); err != nil {
			return nil, fmt.Errorf("-user %s: %w", cfg.user, err)
		}
	}
	return p, nil
}

func setupSecurity(cfg *config, logger *slog.Logger) (*security, error) {
	s := &security{cfg: cfg, log: logger.With("part", "auth")}
	s.policy = func() (*auth.Policy, error) { return loadPolicy(cfg) }
	p, err := s.policy()
	if err != nil {
		return nil, err
	}
	s.svc = auth.New(auth.Options{Policy: p, Logger: s.log})
	if cfg.tlsCert != "" {
		s.tls, err = auth.NewServerTLS(auth.TLSFiles{
			Cert: cfg.tlsCert, Key: cfg.tlsKey, CA: cfg.tlsCA,
			RequireClientCert: cfg.tlsExtra.clientCerts == "require",
		})
		if err != nil {
			s.svc.Close()
			return nil, err
		}
	}
	cfg.sec = s
	return s, nil
}

func (s *security) close() { s.svc.Close() }

// mode is the startup line's word on auth and TLS.
func (s *security) mode() (authMode, tlsMode string) {
	authMode = s.svc.Policy().Mode()
	tlsMode = "off"
	if s.tls != nil {
		tlsMode = "on, NATS " + s.natsTLS()
		if s.cfg.tlsCA != "" {
			tlsMode += ", client certificates " + orDefault(s.cfg.tlsExtra.clientCerts, "optional")
		}
	}
	return authMode, tlsMode
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// natsTLS is the NATS port's TLS mode in force.
func (s *security) natsTLS() string {
	if s.tls == nil {
		return natsTLSOff
	}
	return orDefault(s.cfg.tlsExtra.nats, natsTLSRequired)
}

// nats sets the NATS gateway's and listener's options for auth and TLS:
// TLS after INFO needs the portable transport, which can upgrade.
func (s *security) nats(o *natsgw.Options, lo *lnet.Options) {
	o.Auth = s.svc
	switch s.natsTLS() {
	case natsTLSRequired:
		o.TLS = s.tls.Config()
		o.TLSVerify = s.cfg.tlsExtra.clientCerts == "require"
		lo.Portable = true
	case natsTLSFirst:
		o.TLSHandshakeFirst = true
		o.TLSVerify = s.cfg.tlsExtra.clientCerts == "require"
		lo.TLSConfig = s.tls.Config()
	}
}

// listenerTLS is the TLS configuration of the TLS listeners (MQTT 8883 and
// WebSocket, AMQPS); nil without a certificate.
func (s *security) listenerTLS() *tls.Config {
	if s.tls == nil {
		return nil
	}
	return s.tls.Config()
}

// httpAccess is the HTTP port's monitor.Authorizer: the request's
// credentials (Basic, Bearer, a client certificate) checked against the
// same users, and the user's role. In the default mode requests from
// loopback are admin and others refused, as for every protocol.
func (s *security) httpAccess(r *http.Request) monitor.Role {
	cl, err := s.svc.AuthenticateHTTP(r)
	switch {
	case err != nil:
		return monitor.RoleNone
	case cl.HasRole(auth.RoleAdmin):
		return monitor.RoleAdmin
	case cl.HasRole(auth.RoleMonitor):
		return monitor.RoleMonitor
	}
	return monitor.RoleUser
}

// watch reloads the users file and the TLS certificate on SIGHUP until ctx
// ends. SIGHUP is caught from the call on: it never ends the broker.
func (s *security) watch(ctx context.Context) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				s.reload()
			}
		}
	}()
}

// reload puts a changed users file and certificate in force. A file with
// an error is refused, with its name, line and reason, and what is in
// force stays.
func (s *security) reload() {
	if p, err := s.policy(); err != nil {
		s.log.Error("reload: users not reloaded; the rules in force stay", "err", err)
	} else {
		s.svc.Reload(p)
	}
	if s.tls != nil {
		if err := s.tls.Reload(); err != nil {
			s.log.Error("reload: certificate not reloaded; the one in force stays", "err", err)
		} else {
			s.log.Info("reload: certificate reloaded for new connections", "cert", s.cfg.tlsCert, "subject", subjectOf(s.tls.Certificate()))
		}
	}
}

func subjectOf(c *x509.Certificate) string {
	if c == nil {
		return ""
	}
	names := append([]string{c.Subject.CommonName}, c.DNSNames...)
	return strings.Join(names, " ")
}
