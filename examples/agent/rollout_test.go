package main

// End-to-end: the real lastgood binary runs the example agent, the agent
// exports its traces with the OpenTelemetry SDK to lastgood's receiver
// (found through OTEL_EXPORTER_OTLP_ENDPOINT), and the agent checks judge
// a config-only release.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
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

var bins struct {
	once            sync.Once
	lastgood, agent string
	err             error
}

// build builds lastgood and the agent once per test binary.
func build(t *testing.T) (lastgood, agent string) {
	t.Helper()
	bins.once.Do(func() {
		dir, err := os.MkdirTemp("", "lastgood-agent-e2e-")
		if err != nil {
			bins.err = err
			return
		}
		bins.lastgood, bins.agent = filepath.Join(dir, "lastgood"), filepath.Join(dir, "agent")
		for _, b := range [][2]string{{bins.lastgood, "github.com/lastgood/lastgood/cmd/lastgood"}, {bins.agent, "github.com/lastgood/lastgood/examples/agent"}} {
			out, err := exec.Command("go", "build", "-o", b[0], b[1]).CombinedOutput()
			if err != nil {
				bins.err = fmt.Errorf("build %s: %v\n%s", b[1], err, out)
				return
			}
		}
	})
	if bins.err != nil {
		t.Fatal(bins.err)
	}
	return bins.lastgood, bins.agent
}

// world is one `lastgood serve` with the agent's files in a work folder.
type world struct {
	t        *testing.T
	lastgood string
	dir      string
	server   string
	listen   string
}

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func start(t *testing.T) *world {
	lastgood, agent := build(t)
	dir := t.TempDir()
	w := &world{t: t, lastgood: lastgood, dir: dir, listen: freePort(t)}
	os.MkdirAll(filepath.Join(dir, "bin"), 0o755)
	b, err := os.ReadFile(agent)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "bin", "agent"), b, 0o755)
	addrFile := filepath.Join(dir, "addr")
	serve := exec.Command(lastgood, "serve", "--data", filepath.Join(dir, "data"), "--api", "127.0.0.1:0",
		"--addr-file", addrFile, "--otlp", "127.0.0.1:0")
	serve.Dir = dir
	var log bytes.Buffer
	serve.Stdout, serve.Stderr = &log, &log
	serve.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- serve.Wait() }()
	t.Cleanup(func() {
		serve.Process.Signal(syscall.SIGINT)
		select {
		case <-done:
		case <-time.After(time.Minute):
			syscall.Kill(-serve.Process.Pid, syscall.SIGKILL)
			<-done
		}
		if t.Failed() {
			t.Logf("lastgood serve:\n%s", log.String())
		}
	})
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
		if b, err := os.ReadFile(addrFile); err == nil {
			addr := strings.TrimSpace(string(b))
			if res, err := http.Get("http://" + addr + "/readyz"); err == nil {
				res.Body.Close()
				if res.StatusCode == 200 {
					w.server = addr
					break
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("lastgood serve did not become ready:\n%s", log.String())
		}
	}
	return w
}

// manifest writes a revision of the agent with config cfg (JSON) and
// returns its file name.
func (w *world) manifest(name, cfg, release, analyzeFor string) string {
	return w.manifestWith(name, cfg, release, analyzeFor, defaultChecks)
}

// defaultChecks are the agent checks most tests use.
const defaultChecks = `    - {name: tools,   compare: {metric: toolErrorRate, maxIncrease: 0.02}}
    - {name: tasks,   compare: {metric: taskErrorRate, maxIncrease: 0.01}}
    - {name: cut-off, compare: {metric: truncationRate, maxIncrease: 0.01}}
    - {name: cost,    compare: {metric: tokensPerTask, maxIncrease: 200}}
    - {name: steps,   compare: {metric: toolCallsPerTask, maxIncrease: 1}}
`

// manifestWith is manifest with the given analysis.checks entries.
func (w *world) manifestWith(name, cfg, release, analyzeFor, checks string) string {
	os.WriteFile(filepath.Join(w.dir, name+".json"), []byte(cfg), 0o644)
	m := fmt.Sprintf(`name: helper
listen: %s
replicas: 2
run:
  command: ["./bin/agent", "--config=./%s.json"]
  artifacts: ["./bin/agent", "./%s.json"]
  env: {RELEASE: "%s"}
probes:
  # forgiving a second: at a load of 40 a 100 ms probe times out
  # (docs/decisions.md, "Tests on a busy machine")
  readiness: {http: /healthz, period: 250ms, timeout: 250ms, failureThreshold: 4}
strategy:
  canary:
    steps: [{setWeight: 50}, {analyze: {for: %s}}]
rollback:
  progressDeadline: 1m
analysis:
  checks:
%s`, w.listen, name, name, release, analyzeFor, checks)
	file := filepath.Join(w.dir, name+".yaml")
	os.WriteFile(file, []byte(m), 0o644)
	return file
}

// apply runs `lastgood apply -f file --wait` and returns its exit code
// and output.
func (w *world) apply(file string) (int, string) {
	cmd := exec.Command(w.lastgood, "apply", "-f", file, "--wait")
	cmd.Dir = w.dir
	cmd.Env = append(os.Environ(), "LASTGOOD_SERVER="+w.server)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), string(out)
	}
	if err != nil {
		w.t.Fatal(err)
	}
	return 0, string(out)
}

// load sends tasks to the app's address until ctx ends (at most a
// bounded number), from a few clients.
func (w *world) load(ctx context.Context) func() {
	var wg sync.WaitGroup
	for c := range 4 {
		wg.Go(func() {
			hc := &http.Client{Timeout: 10 * time.Second}
			for i := 0; i < 500_000 && ctx.Err() == nil; i++ {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://%s/task?q=c%d-%d", w.listen, c, i), nil)
				if res, err := hc.Do(req); err == nil {
					res.Body.Close()
				} else {
					time.Sleep(20 * time.Millisecond)
				}
			}
		})
	}
	return wg.Wait
}

const goodConfig = `{"prompt": "answer briefly", "tools": ["search", "lookup", "summarize"]}`

func TestAToolFailureIsRolledBackByTheToolsCheck(t *testing.T) {
	w := start(t)
	if code, out := w.apply(w.manifest("v1", goodConfig, "1", "5s")); code != 0 {
		t.Fatalf("first release: exit %d\n%s", code, out)
	}
	ctx, cancel := context.WithCancel(context.Background())
	wait := w.load(ctx)
	defer func() { cancel(); wait() }()
	bad := `{"prompt": "answer briefly", "tools": ["search", "lookup", "summarize"], "faults": {"failTool": "search", "toolFailRate": 0.1}}`
	code, out := w.apply(w.manifest("v2", bad, "2", "5m"))
	if code != 3 || !strings.Contains(out, "check tools: fail: toolErrorRate (execute_tool spans that failed)") ||
		!strings.Contains(out, "rolled back to revision 1: check tools failed") {
		t.Fatalf("a failing tool: exit %d\n%s", code, out)
	}
}

func TestALoopingPromptIsRolledBackByTheStepsCheck(t *testing.T) {
	w := start(t)
	if code, out := w.apply(w.manifest("v1", goodConfig, "1", "5s")); code != 0 {
		t.Fatalf("first release: exit %d\n%s", code, out)
	}
	ctx, cancel := context.WithCancel(context.Background())
	wait := w.load(ctx)
	defer func() { cancel(); wait() }()
	loops := `{"prompt": "think step by step, again", "tools": ["search", "lookup", "summarize"], "faults": {"loopRate": 0.3, "loopCalls": 6}}`
	code, out := w.apply(w.manifest("v2", loops, "2", "5m"))
	if code != 3 || !strings.Contains(out, "check steps: fail: toolCallsPerTask: canary") ||
		!strings.Contains(out, "rolled back to revision 1: check steps failed") {
		t.Fatalf("a looping prompt: exit %d\n%s", code, out)
	}
}

func TestAnIdenticalConfigIsPromoted(t *testing.T) {
	w := start(t)
	if code, out := w.apply(w.manifest("v1", goodConfig, "1", "5s")); code != 0 {
		t.Fatalf("first release: exit %d\n%s", code, out)
	}
	ctx, cancel := context.WithCancel(context.Background())
	wait := w.load(ctx)
	defer func() { cancel(); wait() }()
	code, out := w.apply(w.manifest("v2", goodConfig, "2", "20s"))
	if code != 0 || strings.Contains(out, ": fail:") || !strings.Contains(out, "rollout #2 promoted") {
		t.Fatalf("A/A: exit %d\n%s", code, out)
	}
}

// behaviourChecks are the checks of issue 12's example: relative
// tolerances, the evaluation score and the shape of the traces.
const behaviourChecks = `    - {name: tools,   compare: {metric: toolErrorRate, maxIncrease: 0.02}}
    - {name: cost,    compare: {metric: tokensPerTask, maxIncrease: 20%}}
    - {name: steps,   compare: {metric: toolCallsPerTask, maxIncrease: 30%}}
    - {name: quality, compare: {metric: evalScore, name: helpfulness, maxDecrease: 0.05}}
    - {name: shape,   compare: {metric: traceShape}}
`

// release applies v1 with a good config, then v2 with cfg under load,
// and returns v2's exit code and output.
func release(t *testing.T, cfg, analyzeFor string) (int, string) {
	_, code, out := releaseIn(t, cfg, analyzeFor)
	return code, out
}

// releaseIn is release that also returns the world it ran in.
func releaseIn(t *testing.T, cfg, analyzeFor string) (*world, int, string) {
	w := start(t)
	if code, out := w.apply(w.manifestWith("v1", goodConfig, "1", "5s", behaviourChecks)); code != 0 {
		t.Fatalf("first release: exit %d\n%s", code, out)
	}
	ctx, cancel := context.WithCancel(context.Background())
	wait := w.load(ctx)
	defer func() { cancel(); wait() }()
	code, out := w.apply(w.manifestWith("v2", cfg, "2", analyzeFor, behaviourChecks))
	t.Logf("lastgood apply v2: exit %d\n%s", code, out)
	return w, code, out
}

func TestDoubledTokensAreRolledBackByARelativeTolerance(t *testing.T) {
	code, out := release(t, `{"prompt": "answer briefly", "tools": ["search", "lookup", "summarize"], "faults": {"tokenFactor": 2}}`, "5m")
	if code != 3 || !strings.Contains(out, "check cost: fail: tokensPerTask: canary") || !strings.Contains(out, "by more than 20%") ||
		!strings.Contains(out, "rolled back to revision 1: check cost failed") {
		t.Fatalf("tokens ×2 against maxIncrease 20%%: exit %d\n%s", code, out)
	}
}

func TestLowerHelpfulnessIsRolledBackByTheQualityCheck(t *testing.T) {
	code, out := release(t, `{"prompt": "answer in one word", "tools": ["search", "lookup", "summarize"], "faults": {"evalDrop": 0.15}}`, "5m")
	if code != 3 || !strings.Contains(out, "check quality: fail: evalScore helpfulness: canary") || !strings.Contains(out, "falls below") ||
		!strings.Contains(out, "rolled back to revision 1: check quality failed") {
		t.Fatalf("helpfulness 0.15 lower: exit %d\n%s", code, out)
	}
}

func TestADifferentStepOrderIsRolledBackByTheShapeCheck(t *testing.T) {
	w, code, out := releaseIn(t, `{"prompt": "look it up first", "tools": ["lookup", "search", "summarize"]}`, "5m")
	if code != 3 || !strings.Contains(out, "check shape: fail: traceShape: tasks of shape") ||
		!strings.Contains(out, "rolled back to revision 1: check shape failed") {
		t.Fatalf("a different step order: exit %d\n%s", code, out)
	}
	// The incident shows the canary's traces as span trees, in the new
	// order, with the agent's content left out.
	report := filepath.Join(w.dir, "data", "incidents", "helper-2", "report.md")
	var md []byte
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		md, _ = os.ReadFile(report)
		if bytes.Contains(md, []byte("## Traces of revision 2")) || time.Now().After(deadline) {
			break
		}
	}
	for _, want := range []string{"## Traces of revision 2", "shape lookup > search > summarize", "invoke_agent helper  +0 ms", "\n  execute_tool lookup  +", "gen_ai.tool.name = lookup"} {
		if !bytes.Contains(md, []byte(want)) {
			t.Errorf("%s lacks %q:\n%s", report, want, md)
		}
	}
}

func TestAFewReorderedTasksArePromoted(t *testing.T) {
	code, out := release(t, `{"prompt": "answer briefly", "tools": ["search", "lookup", "summarize"], "faults": {"reorderRate": 0.03}}`, "20s")
	if code != 0 || strings.Contains(out, ": fail:") || !strings.Contains(out, "rollout #2 promoted") {
		t.Fatalf("3%% of tasks reordered, within traceShape's 10 points: exit %d\n%s", code, out)
	}
}

// appStatus is the part of GET /api/v1/apps/{app} the window test reads.
type appStatus struct {
	Rollout struct {
		ID     int64 `json:"id"`
		Detail struct {
			Phase    string `json:"phase"`
			Reason   string `json:"reason"`
			InWindow bool   `json:"inWindow"`
		} `json:"detail"`
	} `json:"rollout"`
}

// A blue-green switch sends the canary no task before it, so the tools
// check can only see the new revision fail after promotion: the
// previous revision keeps the holdback's share of the tasks through the
// rollback window, its spans are the baseline, and the check rolls the
// release back inside the window.
func TestInsideTheWindowTheHoldbacksSpansAreTheBaseline(t *testing.T) {
	w := start(t)
	bg := func(name, cfg string) string {
		file := w.manifestWith(name, cfg, name, "5s", "    - {name: tools, compare: {metric: toolErrorRate, maxIncrease: 0.02}}\n")
		b, _ := os.ReadFile(file)
		m := strings.Replace(string(b), "strategy:\n  canary:\n    steps: [{setWeight: 50}, {analyze: {for: 5s}}]\n", "strategy:\n  blueGreen: {}\n", 1)
		m = strings.Replace(m, "rollback:\n  progressDeadline: 1m\n", "rollback:\n  progressDeadline: 1m\n  window: 5m\n", 1)
		os.WriteFile(file, []byte(m), 0o644)
		return file
	}
	if code, out := w.apply(bg("v1", goodConfig)); code != 0 {
		t.Fatalf("first release: exit %d\n%s", code, out)
	}
	ctx, cancel := context.WithCancel(context.Background())
	wait := w.load(ctx)
	defer func() { cancel(); wait() }()
	bad := `{"prompt": "answer briefly", "tools": ["search", "lookup", "summarize"], "faults": {"failTool": "search", "toolFailRate": 0.2}}`
	code, out := w.apply(bg("v2", bad))
	t.Logf("lastgood apply v2: exit %d\n%s", code, out)
	if code != 0 || !strings.Contains(out, "promoted") {
		// The switch itself is not judged; the window is.
		t.Fatalf("the blue-green switch: exit %d\n%s", code, out)
	}
	var st appStatus
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		res, err := http.Get("http://" + w.server + "/api/v1/apps/helper")
		if err == nil {
			json.NewDecoder(res.Body).Decode(&st)
			res.Body.Close()
		}
		if st.Rollout.Detail.Phase == "rolled-back" || time.Now().After(deadline) {
			break
		}
	}
	d := st.Rollout.Detail
	if d.Phase != "rolled-back" || !d.InWindow || !strings.Contains(d.Reason, "check tools failed: toolErrorRate") {
		t.Fatalf("after the switch: %+v", d)
	}
}
