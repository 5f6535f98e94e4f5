package prometheus

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/lastgood/lastgood/internal/manifest"
)

// target is a real scrape target: an HTTP server in the test process that
// exposes, in the Prometheus text format, a counter that grows by 5 at
// every scrape for revision 2 and stays 0 for revision 1, and a gauge with
// one value per revision.
type target struct {
	srv     *httptest.Server
	scrapes atomic.Int64
}

func startTarget(t *testing.T) *target {
	t.Helper()
	tg := &target{}
	tg.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		n := tg.scrapes.Add(1)
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprintf(w, "# HELP checkout_failed_total Failed checkouts.\n# TYPE checkout_failed_total counter\n")
		fmt.Fprintf(w, "checkout_failed_total{revision=\"1\"} 0\n")
		fmt.Fprintf(w, "checkout_failed_total{revision=\"2\"} %d\n", 5*n)
		fmt.Fprintf(w, "# HELP queue_depth Items waiting.\n# TYPE queue_depth gauge\n")
		fmt.Fprintf(w, "queue_depth{revision=\"1\"} 3\n")
		fmt.Fprintf(w, "queue_depth{revision=\"2\"} 42\n")
	}))
	t.Cleanup(tg.srv.Close)
	return tg
}

// startPrometheus runs the real Prometheus server (the Debian package) on a
// free 127.0.0.1 port, scraping tg every second, and stops it when the test
// ends. It returns the server's address once the target's samples can be
// queried.
func startPrometheus(t *testing.T, tg *target) string {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		if _, statErr := os.Stat("/usr/bin/prometheus"); statErr != nil {
			t.Fatalf("the prometheus server is not installed (%v): run scripts/test.sh, which installs it "+
				"(or scripts/need.sh prometheus prometheus alone)", err)
		}
		bin = "/usr/bin/prometheus"
	}
	dir := t.TempDir()
	config := filepath.Join(dir, "prometheus.yml")
	targetAddr := tg.srv.Listener.Addr().String()
	err = os.WriteFile(config, fmt.Appendf(nil, `global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: target
    static_configs:
      - targets: ['%s']
`, targetAddr), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	var addr string
	for attempt := 0; ; attempt++ {
		addr = freeAddr(t)
		if startServer(t, bin, dir, config, addr) {
			break
		}
		if attempt == 2 {
			t.Fatalf("prometheus did not start; its log:\n%s", readLog(dir))
		}
	}
	waitForQuery(t, "http://"+addr, `up{job="target"} == 1`, dir)
	return "http://" + addr
}

// startServer starts prometheus listening on addr; false when it exited at
// once (the port was taken meanwhile).
func startServer(t *testing.T, bin, dir, config, addr string) bool {
	t.Helper()
	logFile, err := os.OpenFile(filepath.Join(dir, "prometheus.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(bin,
		"--config.file="+config,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--log.level=warn",
	)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start prometheus: %v", err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	// Listening means it started; an early exit means it did not.
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			t.Logf("prometheus on %s exited at start: %v", addr, waitErr)
			return false
		case <-time.After(50 * time.Millisecond):
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			break
		}
	}
	t.Cleanup(func() { stopServer(t, cmd, exited) })
	return true
}

func stopServer(t *testing.T, cmd *exec.Cmd, exited <-chan struct{}) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(15 * time.Second):
		t.Errorf("prometheus did not stop on SIGTERM within 15s; killing it")
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func readLog(dir string) string {
	b, _ := os.ReadFile(filepath.Join(dir, "prometheus.log"))
	return string(b)
}

// waitForQuery polls until query returns at least one sample. Targets show
// up several seconds after /-/ready, so readiness is not enough.
func waitForQuery(t *testing.T, address, query, dir string) {
	t.Helper()
	c, err := Compile(manifest.Prometheus{Address: address, Query: query}, "result < 0", "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	deadline := time.Now().Add(90 * time.Second)
	var last Outcome
	for time.Now().Before(deadline) {
		last = c.Evaluate(context.Background(), TemplateData{})
		if last.Err == nil {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("no data for %s within 90s (last: %v); prometheus log:\n%s", query, last.Err, readLog(dir))
}

// hangingServer accepts TCP connections and never answers on them.
func hangingServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return "http://" + l.Addr().String()
}

// closedAddress is an address where nothing listens.
func closedAddress(t *testing.T) string {
	return "http://" + freeAddr(t)
}
