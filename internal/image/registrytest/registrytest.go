// Package registrytest runs a real OCI registry (Debian's docker-registry,
// installed by scripts/test.sh) on 127.0.0.1 for tests, and pushes images
// to it. Only tests import it.
package registrytest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Binary is the registry program (the docker-registry package).
const Binary = "docker-registry"

// Start runs a registry on a free port of 127.0.0.1 with its storage in a
// temporary directory, until the test ends, and returns its host:port.
func Start(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath(Binary)
	if err != nil {
		t.Fatalf("%s not found in PATH: install the Debian package docker-registry (scripts/need.sh docker-registry docker-registry, as scripts/test.sh does)", Binary)
	}
	dir := t.TempDir()
	addr := freeAddr(t)
	conf := filepath.Join(dir, "config.yml")
	err = os.WriteFile(conf, fmt.Appendf(nil, `version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage:
  filesystem: {rootdirectory: %s}
  delete: {enabled: true}
http:
  addr: %s
`, filepath.Join(dir, "data"), addr), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "serve", conf)
	log, err := os.Create(filepath.Join(dir, "registry.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() { cancel(); <-done; log.Close() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Get("http://" + addr + "/v2/")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return addr
			}
		}
		select {
		case <-done:
			b, _ := os.ReadFile(log.Name())
			t.Fatalf("%s exited: %s", bin, b)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer on %s in 30s", bin, addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Push writes a new random image to ref (host:port/repo:tag) and returns
// its digest; pushing again to the same tag moves the tag.
func Push(t testing.TB, ref string) string {
	t.Helper()
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
