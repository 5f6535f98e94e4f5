package manifest

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadLimits(t *testing.T) {
	t.Chdir(t.TempDir())
	write := func(name string, data []byte) {
		t.Helper()
		if err := os.WriteFile(name, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	huge := []byte(base + strings.Repeat("# padding padding padding padding\n", 10<<20/34+1))[:10<<20]
	write("app.yaml", huge)
	write("latin1.yaml", []byte("name: web\nimage: caf\xe9\n"))
	write("limit.yaml", append([]byte(base), bytes.Repeat([]byte("#"), MaxSize-len(base))...))
	if err := os.Mkdir("dir.yaml", 0o755); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		path string
		want string
		is   error
	}{
		{"app.yaml", "app.yaml: manifest is 10485760 bytes; the limit is 1048576", nil},
		{"latin1.yaml", "latin1.yaml:2: not valid UTF-8: byte 0xe9 at offset 20 (line 2, column 11); save the file as UTF-8", nil},
		{"missing.yaml", "missing.yaml: no such file", fs.ErrNotExist},
		{"dir.yaml", "dir.yaml: is a directory, not a manifest file", nil},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			app, _, err := Load(tt.path)
			if app != nil || err == nil {
				t.Fatalf("Load(%s) = %v, %v; want an error", tt.path, app, err)
			}
			if err.Error() != tt.want {
				t.Errorf("error = %q\nwant    %q", err, tt.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("errors.Is(err, ErrInvalid) = false")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("errors.Is(err, %v) = false", tt.is)
			}
		})
	}

	// Parse refuses the same bytes when they come another way.
	if _, err := Parse("app.yaml", huge); err == nil || err.Error() != tests[0].want {
		t.Errorf("Parse(10 MiB) = %v", err)
	}
	// Exactly the limit is fine.
	if _, _, err := Load("limit.yaml"); err != nil {
		t.Errorf("Load(1 MiB) = %v", err)
	}
}

func TestLoadDesignExample(t *testing.T) {
	path := filepath.Join("testdata", "design.yaml")
	app, data, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, want) {
		t.Error("Load returned other bytes than the file holds")
	}
	if app.Name != "web" || app.Replicas != 2 || app.History != 50 || app.Image != "registry.example/web:1.4" {
		t.Errorf("name, replicas, history, image = %q, %d, %d, %q", app.Name, app.Replicas, app.History, app.Image)
	}
	steps := app.Strategy.Canary.Steps
	if len(steps) != 4 || *steps[0].SetWeight != 5 || steps[1].Analyze.MaxWait.String() != "2m0s" || steps[3].Pause.For.String() != "1m0s" {
		t.Errorf("canary steps = %s", app.Canonical())
	}
	if got := len(app.Analysis.Checks); got != 6 {
		t.Fatalf("%d checks, want 6", got)
	}
	if c := app.Analysis.Checks[3]; c.Prometheus.Query != `sum(rate(checkout_failed{revision="{{.Revision}}"}[1m]))` || c.FailIf != "result > 0.1" {
		t.Errorf("prometheus check = %+v %+v", c, c.Prometheus)
	}
	if got := app.Analysis.Checks[5].Resources.MaxRSS; got != 512<<20 {
		t.Errorf("maxRSS = %d, want 512Mi", got)
	}
	if got := app.Probes.Liveness.Timeout.String(); got != "1s" {
		t.Errorf("liveness timeout = %s, want the 1s default", got)
	}
}

func TestArtifactPath(t *testing.T) {
	var a App
	tests := []struct{ dir, written, want string }{
		{"/srv/web", "./bin/web", "/srv/web/bin/web"},
		{"/srv/web", "config/../bin/web", "/srv/web/bin/web"},
		{"/srv/web", "/opt/web/bin", "/opt/web/bin"},
		{"/srv/web", "/opt//web/./bin", "/opt/web/bin"},
		{"manifests", "bin/web", "manifests/bin/web"},
	}
	for _, tt := range tests {
		if got := a.ArtifactPath(tt.dir, tt.written); got != tt.want {
			t.Errorf("ArtifactPath(%q, %q) = %q, want %q", tt.dir, tt.written, got, tt.want)
		}
	}
}
