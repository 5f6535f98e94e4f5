package logs

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// sampleApp is the demo sample app, built once for the engine test.
var sampleApp string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "signal-logs-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	sampleApp = filepath.Join(dir, "sampleapp")
	build := exec.Command("go", "build", "-o", sampleApp, "github.com/lastgood/lastgood/internal/demo/sampleapp")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build sampleapp: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}
