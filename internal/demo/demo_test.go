package demo

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestDemoTellsItsStory runs the whole demo: it must end well, say what
// happened, and leave no child process behind.
func TestDemoTellsItsStory(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out bytes.Buffer
	if err := Run(ctx, Options{Out: &out, Version: "test"}); err != nil {
		t.Fatalf("demo failed: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"rollout #1 promoted",
		"rollout #2 promoted",
		"rollout #3 rolled-back",
		"0 of 2 replicas ready",
		"rollout #4 rolled-back",
		"rolled back to revision 2: check errors failed",
		"still warm: traffic switch only",
		"revision 5  undo of revision 1",
		"hash chain verified",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out.String())
		}
	}
	// The only failed requests are the canary's, before it was rolled back.
	if !regexp.MustCompile(`; (\d+) failed \((\d+) by revision 4\)\n`).MatchString(out.String()) {
		t.Errorf("demo output does not say that only revision 4's requests failed:\n%s", out.String())
	}
	if kids := children(t); len(kids) > 0 {
		t.Fatalf("processes left behind: %v", kids)
	}
}

// children lists live child processes of this test process.
func children(t *testing.T) []int {
	t.Helper()
	me := os.Getpid()
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var out []int
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) < 2 || f[0] == "Z" {
			continue
		}
		if ppid, _ := strconv.Atoi(f[1]); ppid == me {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
			out = append(out, pid)
		}
	}
	return out
}
