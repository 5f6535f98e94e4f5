package api_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lastgood/lastgood/internal/api"
	"github.com/lastgood/lastgood/internal/server"
	"github.com/lastgood/lastgood/internal/store"
)

// serve starts a real lastgood in the test's process and returns its API
// address.
func serve(t *testing.T, token string) string {
	t.Helper()
	return serveWith(t, server.Config{Token: token}, http.DefaultClient)
}

// serveWith starts a real lastgood with cfg (on 127.0.0.1:0, in a new
// data directory) and returns its base URL once hc finds it ready.
func serveWith(t *testing.T, cfg server.Config, hc *http.Client) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	done := make(chan error, 1)
	cfg.DataDir = t.TempDir() // before the cleanup below, so it is removed after the server stops
	cfg.API = "127.0.0.1:0"
	cfg.Listening = func(a string) { addr <- a }
	scheme := "http://"
	if cfg.TLSCert != "" {
		scheme = "https://"
	}
	go func() {
		done <- server.Run(ctx, cfg)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	})
	select {
	case a := <-addr:
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if res, err := hc.Get(scheme + a + "/readyz"); err == nil {
				res.Body.Close()
				if res.StatusCode == http.StatusOK {
					return scheme + a
				}
			}
		}
		t.Fatal("lastgood did not become ready")
	case err := <-done:
		t.Fatalf("server did not start: %v", err)
	}
	return ""
}

// manifest writes a manifest whose command is /bin/sleep, which never
// becomes ready: enough to create apps, revisions and events.
func manifest(t *testing.T, name, listen, env string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "app.yaml")
	text := fmt.Sprintf("name: %s\nlisten: %s\nrun:\n  command: [/bin/sleep, \"60\"]\n  env: {X: %q}\nrollback: {progressDeadline: 1s}\n", name, listen, env)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestEventStreamReplaysThenFollows(t *testing.T) {
	base := serve(t, "")
	c := &api.Client{Base: base}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := c.ApplyFile(ctx, manifest(t, "one", freeAddr(t), "a")); err != nil {
		t.Fatal(err)
	}
	var seen []store.Event
	got := make(chan struct{})
	go func() {
		defer close(got)
		c.Follow(ctx, "", 0, func(e store.Event) bool {
			seen = append(seen, e)
			// The first release of a never-ready command is rolled back
			// after its 1s deadline: an event committed while we follow.
			return e.Type != "rollout.rolled-back"
		})
	}()
	select {
	case <-got:
	case <-ctx.Done():
		t.Fatalf("the stream did not deliver the rollback; got %d events", len(seen))
	}
	if len(seen) < 5 || seen[0].Type != "store.created" || seen[1].Type != "app.created" {
		t.Fatalf("stream began with %+v, then %+v", seen[0], seen[1])
	}
	for i := 1; i < len(seen); i++ {
		if seen[i].Seq != seen[i-1].Seq+1 {
			t.Fatalf("stream skipped from %d to %d", seen[i-1].Seq, seen[i].Seq)
		}
	}
	// Resuming after an event replays only what came after it.
	last := seen[len(seen)-2].Seq
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/events?follow=1", nil)
	req.Header.Set("Last-Event-ID", fmt.Sprint(last))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	buf := make([]byte, 4096)
	n, _ := res.Body.Read(buf)
	if want := fmt.Sprintf("id: %d\n", last+1); !strings.HasPrefix(string(buf[:n]), want) {
		t.Fatalf("resumed stream starts %q, want %q", buf[:n], want)
	}
}

func TestTokenIsRequiredWhenSet(t *testing.T) {
	base := serve(t, "s3cret")
	ctx := context.Background()
	if _, err := (&api.Client{Base: base}).Apps(ctx); err == nil || !strings.Contains(err.Error(), "missing token") {
		t.Fatalf("without token: %v", err)
	}
	if _, err := (&api.Client{Base: base, Token: "wrong"}).Apps(ctx); err == nil {
		t.Fatal("a wrong token was accepted")
	}
	if _, err := (&api.Client{Base: base, Token: "s3cret"}).Apps(ctx); err != nil {
		t.Fatalf("with token: %v", err)
	}
	// Health needs no token: probes of lastgood itself do not carry one.
	res, err := http.Get(base + "/healthz")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", res, err)
	}
	res.Body.Close()
}

func TestBadRequestsChangeNothing(t *testing.T) {
	base := serve(t, "")
	c := &api.Client{Base: base}
	ctx := context.Background()
	body := []byte("hello")
	sum := sha256.Sum256(body)
	wrong := "sha256:" + strings.Repeat("ab", 32)
	for _, tc := range []struct {
		name, method, path string
		body               []byte
		want               int
	}{
		{"artifact digest mismatch", http.MethodPut, "/api/v1/artifacts/" + wrong, body, 400},
		{"artifact bad digest", http.MethodPut, "/api/v1/artifacts/md5:abc", body, 400},
		{"apply over the size limit", http.MethodPost, "/api/v1/apply", bytes.Repeat([]byte(" "), 5<<20), 413},
		{"apply not JSON", http.MethodPost, "/api/v1/apply", []byte("name: x"), 400},
		{"apply invalid manifest", http.MethodPost, "/api/v1/apply", []byte(`{"file":"a.yaml","manifest":"name: Bad_Name\n"}`), 422},
		{"unknown action", http.MethodPost, "/api/v1/apps/x/explode", nil, 404},
		{"action on a missing app", http.MethodPost, "/api/v1/apps/nope/promote", nil, 404},
		{"status of a missing app", http.MethodGet, "/api/v1/apps/nope", nil, 404},
	} {
		req, _ := http.NewRequest(tc.method, base+tc.path, bytes.NewReader(tc.body))
		// As the CLI sends them: the rules against forged requests are
		// tested in security_test.go.
		req.Header.Set("Content-Type", "application/json")
		if tc.method == http.MethodPut {
			req.Header.Set("Content-Type", "application/octet-stream")
		}
		req.Header.Set(api.ClientHeader, "1")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, res.StatusCode, tc.want)
		}
	}
	if apps, err := c.Apps(ctx); err != nil || len(apps) != 0 {
		t.Fatalf("apps after bad requests: %v %v", apps, err)
	}
	// A good upload is stored under its digest and found by HEAD.
	good := "sha256:" + hex.EncodeToString(sum[:])
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "f"), body, 0o644)
	if err := c.Upload(ctx, good, filepath.Join(dir, "f")); err != nil {
		t.Fatal(err)
	}
	res, err := http.Head(base + "/api/v1/artifacts/" + good)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("HEAD after upload: %v %v", res, err)
	}
	if res, _ := http.Head(base + "/api/v1/artifacts/" + wrong); res.StatusCode != 404 {
		t.Fatalf("HEAD of the mismatched digest: %d (the wrong body must not be kept under it)", res.StatusCode)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestUploadWaitsWhileRestoring: lastgood answers 503 while it restores
// its state; a HEAD's 503 has no body to say so, and the client waits for
// it all the same. (The server here stands in for a restoring lastgood,
// whose restore is too quick to catch on purpose.)
func TestUploadWaitsWhileRestoring(t *testing.T) {
	var heads, puts int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodHead && heads < 2:
			heads++
			w.WriteHeader(http.StatusServiceUnavailable)
		case r.Method == http.MethodHead:
			heads++
			w.WriteHeader(http.StatusNotFound)
		case r.Method == http.MethodPut && r.Header.Get("Content-Type") == "application/octet-stream" && r.Header.Get(api.ClientHeader) == "1":
			puts++
			w.WriteHeader(http.StatusCreated)
		default:
			http.Error(w, "unexpected "+r.Method, http.StatusBadRequest)
		}
	}))
	defer srv.Close()
	f := filepath.Join(t.TempDir(), "a")
	os.WriteFile(f, []byte("x"), 0o644)
	if err := (&api.Client{Base: srv.URL}).Upload(context.Background(), "sha256:"+strings.Repeat("0", 64), f); err != nil {
		t.Fatal(err)
	}
	if heads != 3 || puts != 1 {
		t.Fatalf("%d HEADs, %d PUTs", heads, puts)
	}
}
