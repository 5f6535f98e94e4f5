package demo

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
)

// sampleapp is the source of the sample app the demo delivers.
//
//go:embed sampleapp
var sampleapp embed.FS

// buildSample compiles the embedded sample app once per version into dir,
// each with its version string baked in, so each version is a different
// artifact with its own digest.
func buildSample(ctx context.Context, dir string, versions ...string) error {
	goTool, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("the demo builds its sample app with the Go toolchain, and `go` is not in PATH: %w", err)
	}
	src := filepath.Join(dir, "src")
	err = fs.WalkDir(sampleapp, "sampleapp", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := sampleapp.ReadFile(path)
		if err != nil {
			return err
		}
		out := filepath.Join(src, filepath.Base(path))
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return err
		}
		return os.WriteFile(out, b, 0o644)
	})
	if err != nil {
		return fmt.Errorf("write sample app source: %w", err)
	}
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte("module sampleapp\n\ngo 1.22\n"), 0o644); err != nil {
		return err
	}
	errs := make([]error, len(versions))
	var wg sync.WaitGroup
	for i, v := range versions {
		wg.Go(func() {
			cmd := exec.CommandContext(ctx, goTool, "build", "-trimpath", "-ldflags", "-X main.version="+v,
				"-o", filepath.Join(dir, "bin", "web-"+v), ".")
			cmd.Dir = src
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=mod", "GOWORK=off")
			if out, err := cmd.CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("build sample app %s: %v\n%s", v, err, out)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
