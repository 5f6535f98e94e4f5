package api

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lastgood/lastgood/internal/artifact"
)

// TestPrepareHashesConfigFiles: kubernetes.config files are hashed into
// the revision's artifacts (keyed as written); a missing one and files
// too large for a ConfigMap are refused before anything is sent.
func TestPrepareHashesConfigFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("conf/app.conf", []byte("color=blue\n"))
	write("web.yaml", []byte("name: web\nimage: registry.test/web:1\nkubernetes:\n  config: {files: [conf/app.conf]}\n"))
	req, paths, err := prepare(filepath.Join(dir, "web.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := artifact.Digest(filepath.Join(dir, "conf/app.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if req.Artifacts["conf/app.conf"] != want || paths["conf/app.conf"] != filepath.Join(dir, "conf/app.conf") {
		t.Errorf("artifacts %v, paths %v; want conf/app.conf = %s", req.Artifacts, paths, want)
	}

	write("missing.yaml", []byte("name: web\nimage: registry.test/web:1\nkubernetes:\n  config: {files: [conf/app.conf, nope.conf]}\n"))
	_, _, err = prepare(filepath.Join(dir, "missing.yaml"))
	if err == nil || !strings.Contains(err.Error(), "missing.yaml:4: kubernetes.config.files[1]: nope.conf: no such file") {
		t.Errorf("a missing config file: %v", err)
	}

	write("big.bin", make([]byte, 1<<20))
	write("big.yaml", []byte("name: web\nimage: registry.test/web:1\nkubernetes:\n  config: {files: [big.bin]}\n"))
	_, _, err = prepare(filepath.Join(dir, "big.yaml"))
	if err == nil || !strings.Contains(err.Error(), "a revision's ConfigMap holds at most") {
		t.Errorf("too large a config file: %v", err)
	}
}
