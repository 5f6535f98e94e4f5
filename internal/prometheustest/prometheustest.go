// Package prometheustest starts the real Prometheus server (the Debian
// package; scripts/test.sh installs it) for tests: on a free 127.0.0.1
// port, scraping one target every second, stopped when the test ends. It
// is imported by tests only.
package prometheustest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// Query evaluates a PromQL expression that must return one sample.
func Query(t testing.TB, prom v1.API, q string) float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	val, _, _, err := prom.Query(ctx, q, time.Now())
	if err != nil {
		t.Fatalf("query %s: %v", q, err)
	}
	vec, ok := val.(model.Vector)
	if !ok || len(vec) != 1 {
		t.Fatalf("query %s: want one sample, got %v", q, val)
	}
	return float64(vec[0].Value)
}

// Start runs the real Prometheus server (the Debian package) on
// a free 127.0.0.1 port, scraping target's /metrics every second as job, and stops
// it when the test ends. It returns its API once readyQuery (a PromQL
// query over what the target exports) returns a sample.
func Start(t testing.TB, job, target, readyQuery string) v1.API {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatalf("the prometheus server is not installed (%v): run scripts/test.sh, which installs it", err)
	}
	dir := t.TempDir()
	config := filepath.Join(dir, "prometheus.yml")
	err = os.WriteFile(config, fmt.Appendf(nil, `global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: %s
    static_configs:
      - targets: ['%s']
`, job, target), 0o644)
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
	client, err := api.NewClient(api.Config{Address: "http://" + addr})
	if err != nil {
		t.Fatal(err)
	}
	prom := v1.NewAPI(client)
	prom = withAddress{prom, "http://" + addr}
	// Targets appear seconds after /-/ready: wait for a scraped sample.
	deadline := time.Now().Add(90 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		val, _, _, err := prom.Query(ctx, readyQuery, time.Now())
		cancel()
		if vec, ok := val.(model.Vector); err == nil && ok && len(vec) > 0 {
			return prom
		}
		if time.Now().After(deadline) {
			t.Fatalf("no scrape of %s within 90s (last error: %v); prometheus log:\n%s", target, err, readLog(dir))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// startServer starts prometheus listening on addr; false when it exited at
// once (the port was taken meanwhile).
func startServer(t testing.TB, bin, dir, config, addr string) bool {
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
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			t.Errorf("prometheus did not stop on SIGTERM within 15s; killing it")
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	})
	return true
}

func freeAddr(t testing.TB) string {
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

// withAddress is a v1.API that also knows its server's base URL.
type withAddress struct {
	v1.API
	address string
}

// Address returns the base URL (http://127.0.0.1:port) of the Prometheus
// server behind an API returned by Start.
func Address(prom v1.API) string {
	if w, ok := prom.(withAddress); ok {
		return w.address
	}
	return ""
}
