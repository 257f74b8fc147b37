package auth

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
)

// TLSFiles names the PEM files of one TLS endpoint, the settings shape of
// every listener and of the bridge's uplinks.
type TLSFiles struct {
	// Cert and Key are the endpoint's certificate (with its chain) and
	// private key: a server's own, or a client's for mutual TLS.
	Cert, Key string
	// CA is, on a server, the certificates that sign clients'
	// certificates (mutual TLS: a client certificate then logs in as the
	// user it names); on a client, the certificates it trusts instead of
	// the system's.
	CA string
	// RequireClientCert, on a server with CA, refuses clients without a
	// certificate; by default they may log in with a password instead.
	RequireClientCert bool
}

// Enabled reports whether a certificate is named.
func (f TLSFiles) Enabled() bool { return f.Cert != "" }

// Check reports a setting that cannot work, before any file is read.
func (f TLSFiles) Check() error {
	if (f.Cert == "") != (f.Key == "") {
		return errors.New("tls: a certificate and its key go together")
	}
	if f.RequireClientCert && f.CA == "" {
		return errors.New("tls: requiring client certificates needs the CA that signs them")
	}
	return nil
}

// ServerTLS is the TLS of the listeners: a certificate and client CAs that
// Reload replaces for new connections while open ones keep theirs. TLS 1.2
// is the minimum.
type ServerTLS struct {
	files TLSFiles
	cur   atomic.Pointer[tls.Config]
	base  *tls.Config
}

// NewServerTLS loads the files.
func NewServerTLS(f TLSFiles) (*ServerTLS, error) {
	if err := f.Check(); err != nil {
		return nil, err
	}
	if !f.Enabled() {
		return nil, errors.New("tls: no certificate")
	}
	s := &ServerTLS{files: f}
	if err := s.Reload(); err != nil {
		return nil, err
	}
	// What the listeners hold: every handshake takes the configuration
	// in force at its start.
	s.base = &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return s.cur.Load(), nil
		},
	}
	return s, nil
}

// Config returns the configuration to give a listener (lnet.Options.
// TLSConfig, Conn.StartTLS, an HTTPS server's TLSConfig). It stays valid
// across reloads.
func (s *ServerTLS) Config() *tls.Config { return s.base }

// Files returns the files it was made from.
func (s *ServerTLS) Files() TLSFiles { return s.files }

// Reload reads the files again; on an error the certificate in force stays
// and the error says which file is wrong.
func (s *ServerTLS) Reload() error {
	cert, err := tls.LoadX509KeyPair(s.files.Cert, s.files.Key)
	if err != nil {
		return fmt.Errorf("tls: certificate %s, key %s: %w", s.files.Cert, s.files.Key, err)
	}
	cfg := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
	}
	if s.files.CA != "" {
		pool, err := loadPool(s.files.CA)
		if err != nil {
			return err
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
		if s.files.RequireClientCert {
			cfg.ClientAuth = tls.RequireAndVerifyClientCert
		}
	}
	s.cur.Store(cfg)
	return nil
}

// Certificate returns the leaf certificate in force, for a client of the
// broker's own (its ctl services) to pin.
func (s *ServerTLS) Certificate() *x509.Certificate {
	c := s.cur.Load()
	if len(c.Certificates) == 0 {
		return nil
	}
	leaf := c.Certificates[0].Leaf
	if leaf == nil {
		leaf, _ = x509.ParseCertificate(c.Certificates[0].Certificate[0])
	}
	return leaf
}

func loadPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tls: CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("tls: CA %s holds no PEM certificate", path)
	}
	return pool, nil
}

// ClientConfig returns the configuration of a client endpoint: the CA to
// trust (the system's when CA is empty) and a certificate to present when
// one is named. The bridge's uplinks use it.
func (f TLSFiles) ClientConfig() (*tls.Config, error) {
	if err := f.Check(); err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if f.CA != "" {
		pool, err := loadPool(f.CA)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	if f.Cert != "" {
		cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
		if err != nil {
			return nil, fmt.Errorf("tls: client certificate %s, key %s: %w", f.Cert, f.Key, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}
