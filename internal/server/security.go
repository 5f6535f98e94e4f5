package server

import (
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/lastgood/lastgood/internal/access"
)

// ErrConfig marks a configuration Run refuses before changing anything.
var ErrConfig = errors.New("invalid configuration")

// configError is ErrConfig with its own message, and no prefix.
type configError struct{ error }

func (e configError) Is(target error) bool { return target == ErrConfig }
func (e configError) Unwrap() error        { return e.error }

// security is what the access rules of a Config come to.
type security struct {
	tokens  *access.Tokens
	exposed bool // other machines can reach the API address
	tls     *tls.Config
	metrics access.Role // what /metrics needs
}

// security checks the access settings of cfg: TLS files that load, a
// known MetricsAuth, and no open API on an address other machines can
// reach unless InsecureNoAuth says so.
func (cfg Config) security() (security, error) {
	bad := func(format string, args ...any) (security, error) {
		return security{}, configError{fmt.Errorf(format, args...)}
	}
	s := security{tokens: cfg.Tokens.Clone(), exposed: Exposed(cfg.API)}
	if cfg.Token != "" {
		if err := s.tokens.Add(access.EnvTokenName, access.Admin, cfg.Token); err != nil {
			return bad("LASTGOOD_TOKEN: %v", err)
		}
	}
	if s.exposed && s.tokens.Len() == 0 && !cfg.InsecureNoAuth {
		return bad("--api %s can be reached from other machines and no token is set, so anyone who reaches it could run any command as this user: "+
			"set LASTGOOD_TOKEN or --tokens-file (docs/security.md), listen on 127.0.0.1, or pass --insecure-no-auth to serve it open anyway", cfg.API)
	}
	switch {
	case (cfg.TLSCert == "") != (cfg.TLSKey == ""):
		return bad("--tls-cert and --tls-key go together; got only one")
	case cfg.TLSCert != "":
		pair, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return bad("--tls-cert %s / --tls-key %s: %v", cfg.TLSCert, cfg.TLSKey, err)
		}
		s.tls = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	}
	if _, err := access.New(access.Config{AllowedHosts: cfg.AllowedHosts}); err != nil {
		return security{}, configError{err}
	}
	switch cfg.MetricsAuth {
	case "", "auto":
		if s.exposed && s.tokens.Len() > 0 {
			s.metrics = access.Viewer
		}
	case "token":
		s.metrics = access.Viewer
	case "open":
	default:
		return bad("--metrics-auth: want auto, token or open, got %q", cfg.MetricsAuth)
	}
	return s, nil
}

// warn logs what is allowed but unsafe.
func (s security) warn(cfg Config) {
	if s.exposed && s.tokens.Len() == 0 {
		cfg.Log.Warn("INSECURE: --insecure-no-auth: the API and dashboard on " + cfg.API +
			" have no token; anyone who can reach this address can apply manifests and so run any command as this user")
	}
	if s.exposed && s.tokens.Len() > 0 && s.tls == nil {
		cfg.Log.Warn("the API on " + cfg.API + " is reachable from other machines without TLS: tokens and session cookies cross the network in clear text; use --tls-cert and --tls-key")
	}
}

// Exposed reports whether other machines may reach addr: anything but a
// loopback IP or a name that resolves only to loopback addresses.
func Exposed(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if host == "" {
		return true
	}
	if host == "localhost" {
		return false
	}
	if ip := net.ParseIP(host); ip != nil {
		return !ip.IsLoopback()
	}
	ips, err := net.LookupIP(host)
	if err != nil || len(ips) == 0 {
		return true
	}
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return true
		}
	}
	return false
}

// sessionKey returns the key that signs the dashboard's session cookies,
// kept in the data directory (mode 0600) so sessions survive a restart;
// made on first use.
func sessionKey(dir string) ([]byte, error) {
	p := filepath.Join(dir, "session.key")
	if b, err := os.ReadFile(p); err == nil && len(b) == 32 {
		return b, nil
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, key, 0o600); err != nil {
		return nil, fmt.Errorf("session key: %w", err)
	}
	if err := os.Rename(tmp, p); err != nil {
		return nil, fmt.Errorf("session key: %w", err)
	}
	return key, nil
}
