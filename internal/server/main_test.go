package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lastgood/lastgood/internal/api"
	"github.com/lastgood/lastgood/internal/controller"
	"github.com/lastgood/lastgood/internal/strategy"
)

// sampleApp is the sample app built once for the package's tests.
var sampleApp string

func TestMain(m *testing.M) {
	if os.Getenv("LASTGOOD_TEST_SERVE") != "" {
		serveForTest() // a child lastgood for the kill -9 tests; never returns
	}
	dir, err := os.MkdirTemp("", "lastgood-server-test-")
	if err != nil {
		panic(err)
	}
	sampleApp = filepath.Join(dir, "web")
	out, err := exec.Command("go", "build", "-o", sampleApp, "../demo/sampleapp").CombinedOutput()
	if err != nil {
		panic(fmt.Sprintf("build sample app: %v\n%s", err, out))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// serveForTest runs lastgood in this process until it is killed.
func serveForTest() {
	err := Run(context.Background(), Config{
		DataDir: os.Getenv("LASTGOOD_TEST_SERVE"), API: "127.0.0.1:0", StopGrace: time.Second,
		Listening: func(addr string) { fmt.Println("API", addr) },
	})
	fmt.Fprintln(os.Stderr, "serve:", err)
	os.Exit(1)
}

// instance is a lastgood serving in the test's process.
type instance struct {
	c    *api.Client
	dir  string // data dir
	stop func()
}

func start(t *testing.T, data string) *instance {
	t.Helper()
	return startWith(t, Config{DataDir: data})
}

// startWith is start with more of the configuration (tokens, hosts).
func startWith(t *testing.T, cfg Config) *instance {
	t.Helper()
	data := cfg.DataDir
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	done := make(chan error, 1)
	cfg.API, cfg.StopGrace, cfg.Log = "127.0.0.1:0", 2*time.Second, slog.New(slog.NewTextHandler(os.Stderr, nil))
	cfg.Listening = func(a string) { addr <- a }
	go func() {
		done <- Run(ctx, cfg)
	}()
	var in *instance
	select {
	case a := <-addr:
		in = &instance{c: &api.Client{Base: "http://" + a}, dir: data}
	case err := <-done:
		t.Fatalf("server did not start: %v", err)
	}
	var once sync.Once
	in.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("server stopped with %v", err)
			}
		})
	}
	t.Cleanup(in.stop)
	waitFor(t, 10*time.Second, "readyz", func() bool {
		code, body := in.readyz()
		return code == 200 || strings.HasPrefix(body, "degraded:")
	})
	return in
}

// readyz returns /readyz's status code and body.
func (in *instance) readyz() (int, string) {
	res, err := http.Get(in.c.Base + "/readyz")
	if err != nil {
		return 0, err.Error()
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// app writes a manifest and a copy of the sample app into dir.
type app struct {
	dir, listen string
	name        string
}

func newApp(t *testing.T, name string) *app {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(sampleApp)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bin", "web"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	return &app{dir: dir, listen: freeAddr(t), name: name}
}

// manifest writes the manifest with the given replicas, strategy and extra
// environment, and returns its path. Its progress deadline, 20 s, is what
// a revision that never becomes ready costs a test; shorter ones (3 s)
// rolled good releases back on a machine at load 40.
func (a *app) manifest(t *testing.T, replicas int, strategy, env string) string {
	t.Helper()
	return a.manifestWith(t, replicas, strategy, env, "")
}

// manifestWith is manifest with more top-level YAML (an analysis section).
func (a *app) manifestWith(t *testing.T, replicas int, strategy, env, extra string) string {
	t.Helper()
	text := fmt.Sprintf(`name: %s
listen: %s
replicas: %d
run:
  command: ["./bin/web"]
  artifacts: ["./bin/web"]
  env: {%s}
probes:
  readiness: {http: /healthz, period: 100ms, failureThreshold: 2}
strategy:
  %s
rollback:
  progressDeadline: 20s
  window: 1m
%s`, a.name, a.listen, replicas, env, strategy, extra)
	p := filepath.Join(a.dir, "app.yaml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// applyWait applies a manifest and waits for its rollout to end.
func (in *instance) applyWait(t *testing.T, file string) controller.AppStatus {
	t.Helper()
	ctx := context.Background()
	res, err := in.c.ApplyFile(ctx, file)
	if err != nil {
		t.Fatalf("apply %s: %v", file, err)
	}
	if res.Rollout == 0 {
		t.Fatalf("apply started no rollout: %s", res.Message)
	}
	return in.waitRollout(t, res.App, res.Rollout)
}

func (in *instance) waitRollout(t *testing.T, app string, id int64) controller.AppStatus {
	t.Helper()
	var st controller.AppStatus
	waitFor(t, 30*time.Second, fmt.Sprintf("rollout #%d to end", id), func() bool {
		var err error
		st, err = in.c.App(context.Background(), app)
		if err != nil {
			t.Fatal(err)
		}
		return st.Rollout != nil && st.Rollout.ID == id && strategy.Phase(st.Rollout.Phase).Final()
	})
	return st
}

// clients sends requests to addr until stopped, counting answers by
// revision and failures.
type clients struct {
	mu     sync.Mutex
	byRev  map[int]int
	failed []string
	stop   func()
}

func startClients(t *testing.T, addr string, workers int) *clients {
	t.Helper()
	c := &clients{byRev: map[int]int{}}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/", nil)
				res, err := hc.Do(req)
				if ctx.Err() != nil {
					return
				}
				c.mu.Lock()
				switch {
				case err != nil:
					c.failed = append(c.failed, err.Error())
				case res.StatusCode != 200:
					c.failed = append(c.failed, res.Status)
				default:
					rev, _ := strconv.Atoi(res.Header.Get("Lastgood-Revision"))
					c.byRev[rev]++
				}
				c.mu.Unlock()
				if err == nil {
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
				}
				time.Sleep(2 * time.Millisecond)
			}
		})
	}
	var once sync.Once
	c.stop = func() { once.Do(func() { cancel(); wg.Wait(); hc.CloseIdleConnections() }) }
	t.Cleanup(c.stop)
	return c
}

func (c *clients) snapshot() (map[int]int, []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := map[int]int{}
	for k, v := range c.byRev {
		m[k] = v
	}
	return m, append([]string(nil), c.failed...)
}

func get(t *testing.T, addr string) (int, string) {
	t.Helper()
	res, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	rev, _ := strconv.Atoi(res.Header.Get("Lastgood-Revision"))
	return rev, strings.TrimSpace(string(b))
}

// revisionAt asks the router at addr once and returns the revision that
// answered.
func revisionAt(addr string) (int, error) {
	res, err := http.Get("http://" + addr + "/")
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	io.Copy(io.Discard, res.Body)
	if res.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%s", res.Status)
	}
	return strconv.Atoi(res.Header.Get("Lastgood-Revision"))
}
