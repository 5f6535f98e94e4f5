package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// build compiles the sample app with version v2 into a temporary folder.
func build(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "sampleapp")
	cmd := exec.Command("go", "build", "-ldflags", "-X main.version=v2", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// syncBuffer collects a child's stderr while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type proc struct {
	cmd    *exec.Cmd
	addr   string
	stderr *syncBuffer
	done   chan error
}

// start runs bin with extra environment and a free port.
func start(t *testing.T, bin string, env ...string) *proc {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	p := &proc{cmd: exec.Command(bin), addr: addr, stderr: &syncBuffer{}, done: make(chan error, 1)}
	p.cmd.Env = append(os.Environ(), append([]string{"PORT=" + port, "LASTGOOD_APP=web", "LASTGOOD_REVISION=7"}, env...)...)
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

// exitCode waits for the process to end by itself.
func (p *proc) exitCode(t *testing.T) int {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err // for the cleanup
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return exit.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(20 * time.Second):
		t.Fatalf("process did not exit; stderr:\n%s", p.stderr)
		return -1
	}
}

// get polls until the app answers, then returns status and body.
func (p *proc) get(t *testing.T, path string) (int, string) {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := client.Get("http://" + p.addr + path)
		if err == nil {
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			return resp.StatusCode, string(body)
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %v; stderr:\n%s", path, err, p.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestSampleApp(t *testing.T) {
	bin := build(t)

	t.Run("serves and shuts down on SIGTERM", func(t *testing.T) {
		p := start(t, bin)
		if code, body := p.get(t, "/"); code != 200 || body != "hello from web revision 7 version v2\n" {
			t.Errorf("GET / = %d %q", code, body)
		}
		if code, body := p.get(t, "/healthz"); code != 200 || body != "ok" {
			t.Errorf("GET /healthz = %d %q", code, body)
		}
		if code, body := p.get(t, "/stream"); code != 200 || strings.Count(body, "chunk ") != 5 {
			t.Errorf("GET /stream = %d %q", code, body)
		}
		res, err := http.Post("http://"+p.addr+"/upload", "text/plain", strings.NewReader("twelve bytes"))
		if err != nil {
			t.Fatal(err)
		}
		if body, _ := io.ReadAll(res.Body); res.StatusCode != 200 || string(body) != "12 bytes\n" {
			t.Errorf("POST /upload = %d %q", res.StatusCode, body)
		}
		res.Body.Close()
		begin := time.Now()
		if code, _ := p.get(t, "/slow?d=200ms"); code != 200 || time.Since(begin) < 200*time.Millisecond {
			t.Errorf("GET /slow?d=200ms = %d after %s", code, time.Since(begin))
		}
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if code := p.exitCode(t); code != 0 {
			t.Errorf("exit code after SIGTERM = %d, want 0", code)
		}
	})

	t.Run("error rate 1 answers 500", func(t *testing.T) {
		p := start(t, bin, "FAULT_ERROR_RATE=1")
		for range 5 {
			if code, _ := p.get(t, "/"); code != 500 {
				t.Fatalf("GET / = %d, want 500", code)
			}
		}
		if code, _ := p.get(t, "/healthz"); code != 200 {
			t.Errorf("GET /healthz = %d, want 200: error rate must not touch health", code)
		}
	})

	t.Run("error rate 0.5 fails some", func(t *testing.T) {
		p := start(t, bin, "FAULT_ERROR_RATE=0.5")
		fails := 0
		for range 40 {
			if code, _ := p.get(t, "/"); code == 500 {
				fails++
			}
		}
		if fails < 5 || fails > 35 {
			t.Errorf("%d of 40 requests failed, want about half", fails)
		}
	})

	t.Run("dependency down while its file is there", func(t *testing.T) {
		dep := filepath.Join(t.TempDir(), "down")
		p := start(t, bin, "FAULT_DEPENDENCY="+dep)
		if code, _ := p.get(t, "/"); code != 200 {
			t.Fatalf("GET / without the file = %d, want 200", code)
		}
		if err := os.WriteFile(dep, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if code, body := p.get(t, "/"); code != 503 || !strings.Contains(body, "dependency down") {
			t.Fatalf("GET / with the file = %d %q, want 503", code, body)
		}
		if code, _ := p.get(t, "/healthz"); code != 200 {
			t.Errorf("GET /healthz = %d: readiness must not change", code)
		}
		os.Remove(dep)
		if code, _ := p.get(t, "/"); code != 200 {
			t.Fatalf("GET / after the file went = %d, want 200", code)
		}
	})

	t.Run("never ready", func(t *testing.T) {
		p := start(t, bin, "FAULT_NEVER_READY=1")
		if code, _ := p.get(t, "/healthz"); code != 503 {
			t.Errorf("GET /healthz = %d, want 503", code)
		}
	})

	t.Run("unready while a file exists", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "unready")
		p := start(t, bin, "FAULT_UNREADY_FILE="+file)
		if code, _ := p.get(t, "/healthz"); code != 200 {
			t.Errorf("GET /healthz without the file = %d, want 200", code)
		}
		if err := os.WriteFile(file, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if code, _ := p.get(t, "/healthz"); code != 503 {
			t.Errorf("GET /healthz with the file = %d, want 503", code)
		}
		if code, _ := p.get(t, "/"); code != 200 {
			t.Errorf("GET / with the file = %d: only readiness changes", code)
		}
		os.Remove(file)
		if code, _ := p.get(t, "/healthz"); code != 200 {
			t.Errorf("GET /healthz after the file is gone = %d, want 200", code)
		}
	})

	t.Run("unhealthy after", func(t *testing.T) {
		p := start(t, bin, "FAULT_UNHEALTHY_AFTER=300ms")
		if code, body := p.get(t, "/livez"); code != 200 || body != "alive" {
			t.Errorf("GET /livez at start = %d %q", code, body)
		}
		time.Sleep(400 * time.Millisecond)
		if code, _ := p.get(t, "/livez"); code != 503 {
			t.Errorf("GET /livez after 300ms = %d, want 503", code)
		}
		if code, _ := p.get(t, "/healthz"); code != 200 {
			t.Errorf("GET /healthz = %d: readiness must not change", code)
		}
	})

	t.Run("latency", func(t *testing.T) {
		p := start(t, bin, "FAULT_LATENCY=300ms")
		p.get(t, "/healthz") // wait until listening
		begin := time.Now()
		if code, _ := p.get(t, "/"); code != 200 {
			t.Errorf("GET / = %d", code)
		}
		if took := time.Since(begin); took < 300*time.Millisecond {
			t.Errorf("GET / took %s, want at least 300ms", took)
		}
	})

	t.Run("crash after", func(t *testing.T) {
		p := start(t, bin, "FAULT_CRASH_AFTER=300ms")
		if code := p.exitCode(t); code != 1 {
			t.Errorf("exit code = %d, want 1", code)
		}
	})

	t.Run("exit on start", func(t *testing.T) {
		p := start(t, bin, "FAULT_EXIT_ON_START=1")
		if code := p.exitCode(t); code != 3 {
			t.Errorf("exit code = %d, want 3", code)
		}
	})

	t.Run("panic lines", func(t *testing.T) {
		p := start(t, bin, "FAULT_PANIC_EVERY=50ms")
		deadline := time.Now().Add(20 * time.Second)
		for strings.Count(p.stderr.String(), "panic: simulated failure\n") < 2 {
			if time.Now().After(deadline) {
				t.Fatalf("no panic lines; stderr:\n%s", p.stderr)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})

	t.Run("memory growth", func(t *testing.T) {
		p := start(t, bin, "FAULT_MEMORY_GROWTH=32Mi")
		p.get(t, "/healthz")
		deadline := time.Now().Add(20 * time.Second)
		for rss(t, p.cmd.Process.Pid) < 40<<20 {
			if time.Now().After(deadline) {
				t.Fatalf("RSS stayed at %d bytes", rss(t, p.cmd.Process.Pid))
			}
			time.Sleep(100 * time.Millisecond)
		}
	})

	t.Run("malformed fault is a usage error", func(t *testing.T) {
		for _, env := range []string{"FAULT_LATENCY=soon", "FAULT_ERROR_RATE=2", "FAULT_MEMORY_GROWTH=lots"} {
			p := start(t, bin, env)
			if code := p.exitCode(t); code != 2 {
				t.Errorf("%s: exit code = %d, want 2", env, code)
			}
			if name := strings.SplitN(env, "=", 2)[0]; !strings.Contains(p.stderr.String(), name) {
				t.Errorf("%s: stderr %q does not name the variable", env, p.stderr)
			}
		}
	})
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "1024": 1024, "4Ki": 4096, "2Mi": 2 << 20, "1Gi": 1 << 30} {
		got, err := parseSize(in)
		if err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "1Ti", "Mi"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) succeeded, want an error", in)
		}
	}
}

// rss reads a process's resident set size from /proc.
func rss(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb int64
			fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), &kb)
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

func TestSampleAppPathFaults(t *testing.T) {
	bin := build(t)
	t.Run("one path fails", func(t *testing.T) {
		p := start(t, bin, "FAULT_FAIL_PATH=/items/")
		if code, body := p.get(t, "/items/42"); code != 500 || !strings.Contains(body, "FAULT_FAIL_PATH") {
			t.Errorf("GET /items/42 = %d %q, want 500", code, body)
		}
		if code, _ := p.get(t, "/"); code != 200 {
			t.Errorf("GET / = %d, want 200", code)
		}
	})
	t.Run("every page 404", func(t *testing.T) {
		p := start(t, bin, "FAULT_NOT_FOUND=1")
		for _, path := range []string{"/", "/items/1"} {
			if code, _ := p.get(t, path); code != 404 {
				t.Errorf("GET %s = %d, want 404", path, code)
			}
		}
		if code, _ := p.get(t, "/healthz"); code != 200 {
			t.Errorf("GET /healthz = %d, want 200 (probes are spared)", code)
		}
	})
	t.Run("items", func(t *testing.T) {
		p := start(t, bin)
		if code, body := p.get(t, "/items/7"); code != 200 || body != "item 7\n" {
			t.Errorf("GET /items/7 = %d %q", code, body)
		}
	})
}
