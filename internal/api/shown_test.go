package api_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lastgood/lastgood/internal/api"
)

// TestAnswersShowNoSecret reads every answer that carries a manifest, its
// source, a diff or an app's status over HTTP: none holds the secret env
// value, each shows the marker instead.
func TestAnswersShowNoSecret(t *testing.T) {
	base := serve(t, "")
	c := &api.Client{Base: base}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	listen := freeAddr(t)
	write := func(secret string) string {
		p := filepath.Join(t.TempDir(), "app.yaml")
		text := "name: web\nlisten: " + listen + "\nrun:\n  command: [/bin/sleep, \"60\"]\n" +
			"  env: {DB_PASSWORD: " + secret + ", DSN: \"postgres://app:" + secret + "-dsn@db/app\"}\nrollback: {progressDeadline: 1s}\n"
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, secret := range []string{"hunter-one", "hunter-two"} {
		if _, err := c.ApplyFile(ctx, write(secret)); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			st, err := c.App(ctx, "web")
			if err == nil && st.Rollout != nil && st.Rollout.Ended != nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the rollout did not end")
			}
		}
	}
	for _, path := range []string{"/api/v1/apps/web/revisions", "/api/v1/apps/web/revisions/1", "/api/v1/apps/web/revisions/2",
		"/api/v1/apps/web/diff?from=1&to=2", "/api/v1/apps/web", "/api/v1/apps", "/api/v1/apps/web/rollouts", "/api/v1/events?app=web"} {
		res, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("%s: %s %s", path, res.Status, b)
		}
		if strings.Contains(string(b), "hunter-") {
			t.Errorf("%s shows a secret:\n%s", path, b)
		}
		if strings.Contains(path, "revisions") && !strings.Contains(string(b), `"DB_PASSWORD": "[redacted]"`) {
			t.Errorf("%s does not show the secret as redacted:\n%s", path, b)
		}
	}
	d, err := c.Diff(ctx, "web", 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Changes) != 2 || d.Changes[0].New != "[redacted: changed]" {
		t.Errorf("diff %+v, want DB_PASSWORD and DSN changed, redacted", d.Changes)
	}
}
