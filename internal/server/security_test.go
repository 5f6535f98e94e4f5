package server

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestExposed(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:7070": false, "127.0.0.2:1": false, "[::1]:7070": false, "localhost:7070": false,
		"0.0.0.0:7070": true, ":7070": true, "[::]:7070": true, "10.0.0.5:7070": true, "192.168.1.2:80": true,
	} {
		if got := Exposed(addr); got != want {
			t.Errorf("Exposed(%q) = %v", addr, got)
		}
	}
}

// TestOpenAPIOnOtherMachinesIsRefused: `serve --api 0.0.0.0:…` without a
// token stops before it touches anything, and says what to do.
func TestOpenAPIOnOtherMachinesIsRefused(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	err := Run(context.Background(), Config{DataDir: data, API: "0.0.0.0:0"})
	if !errors.Is(err, ErrConfig) {
		t.Fatalf("Run: %v", err)
	}
	for _, want := range []string{"--api 0.0.0.0:0 can be reached from other machines and no token is set", "LASTGOOD_TOKEN or --tokens-file", "--insecure-no-auth"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q lacks %q", err, want)
		}
	}
	if _, err := os.Stat(data); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the refused start made %s: %v", data, err)
	}
}

func TestSecurityChecks(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	for _, tc := range []struct {
		name string
		cfg  Config
		err  string // "" for accepted
		warn string
	}{
		{"loopback, open", Config{API: "127.0.0.1:7070"}, "", ""},
		{"exposed, open", Config{API: "0.0.0.0:7070"}, "no token is set", ""},
		{"exposed, insecure", Config{API: "0.0.0.0:7070", InsecureNoAuth: true}, "", "INSECURE: --insecure-no-auth"},
		{"exposed, token, no TLS", Config{API: ":7070", Token: "s3cret"}, "", "without TLS"},
		{"half TLS", Config{API: "127.0.0.1:7070", TLSCert: "c.pem"}, "--tls-cert and --tls-key go together", ""},
		{"missing TLS files", Config{API: "127.0.0.1:7070", TLSCert: "nope.pem", TLSKey: "nope.key"}, "--tls-cert nope.pem", ""},
		{"metrics auth", Config{API: "127.0.0.1:7070", MetricsAuth: "yes"}, "--metrics-auth: want auto, token or open", ""},
	} {
		logs.Reset()
		tc.cfg.Log = log
		sec, err := tc.cfg.security()
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.err != "" && (err == nil || !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: %v, want %q", tc.name, err, tc.err)
		}
		if err != nil {
			continue
		}
		sec.warn(tc.cfg)
		if tc.warn == "" && logs.Len() > 0 || tc.warn != "" && !strings.Contains(logs.String(), tc.warn) {
			t.Errorf("%s: logged %q, want %q", tc.name, logs.String(), tc.warn)
		}
	}
}
