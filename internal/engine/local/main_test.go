package local

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// helperEnv switches the test binary into one of the helper processes of
// helpers_test.go instead of running tests.
const helperEnv = "LOCAL_ENGINE_TEST_HELPER"

// sampleApp is the sample app binary, built once for the test binary.
var sampleApp string

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(helperMain(mode))
	}
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "local-engine-test-")
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
