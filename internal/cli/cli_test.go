package cli_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, for the psql command
	"github.com/rogpeppe/go-internal/testscript"
	_ "modernc.org/sqlite" // the "sqlite" driver, for the sqlite command

	"github.com/lastgood/lastgood/internal/api"
	"github.com/lastgood/lastgood/internal/cli"
	"github.com/lastgood/lastgood/internal/postgrestest"
	"github.com/lastgood/lastgood/internal/store"
	"github.com/lastgood/lastgood/internal/strategy"
	"github.com/lastgood/lastgood/internal/tlstest"
)

// patience bounds every poll of the helper commands: generous, because
// the scripts run a race-instrumented lastgood on a shared two-core machine.
const patience = 30 * time.Second

// sampleAppBinary is the sample app, built once per test binary by
// TestMain before any test runs, and only read after.
var sampleAppBinary string

// TestMain makes the test binary double as the `lastgood` command of the
// scripts: testscript runs it under that name, and it then runs cli.Main.
func TestMain(m *testing.M) {
	testscript.Main(withSampleApp{m}, map[string]func(){"lastgood": lastgoodMain})
}

// lastgoodMain is cmd/lastgood's main: a real process with a real exit
// code, stopped gracefully by SIGINT or SIGTERM.
func lastgoodMain() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], &cli.Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr})
	stop()
	os.Exit(code)
}

// withSampleApp builds the sample app before the tests run and removes it
// after. It is only used by the top-level test process, never by the
// `lastgood` commands the scripts run.
type withSampleApp struct{ m *testing.M }

func (w withSampleApp) Run() int {
	dir, err := os.MkdirTemp("", "lastgood-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	sampleAppBinary = filepath.Join(dir, "sampleapp")
	build := exec.Command("go", "build", "-o", sampleAppBinary, "github.com/lastgood/lastgood/internal/demo/sampleapp")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "build the sample app: %v\n", err)
		return 1
	}
	return w.m.Run()
}

// TestScripts runs every story in testdata/script. See the commands below
// for what the scripts can say besides testscript's own.
func TestScripts(t *testing.T) {
	ports := &portBook{given: map[string]bool{}}
	testscript.Run(t, testscript.Params{
		Dir:   "testdata/script",
		Setup: setup,
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"waitserver":   cmdWaitServer,
			"sampleapp":    cmdSampleApp,
			"freeport":     ports.cmd,
			"expand":       cmdExpand,
			"waitfor":      cmdWaitFor,
			"waitstatus":   cmdWaitStatus,
			"waitincident": cmdWaitIncident,
			"waitevent":    cmdWaitEvent,
			"httpget":      cmdHTTPGet,
			"httpgets":     cmdHTTPGets,
			"exits":        cmdExits,
			"start":        cmdStart,
			"waitout":      cmdWaitOut,
			"interrupt":    cmdInterrupt,
			"await":        cmdAwait,
			"pad":          cmdPad,
			"tolatin1":     cmdToLatin1,
			"json":         cmdJSON,
			"sqlite":       cmdSQLite,
			"sqlquery":     cmdSQLQuery,
			"postgres":     cmdPostgres,
			"psql":         cmdPSQL,
			"psqlwait":     cmdPSQLWait,
			"apiaction":    cmdAPIAction,
			"portfree":     cmdPortFree,
			"procsin":      cmdProcsIn,
			"damage":       cmdDamage,
			"gencert":      cmdGenCert,
			"ofrep":        cmdOFREP,
		},
	})
}

// setup gives each script its registry of background commands and checks,
// once the script and all its background commands have ended, that no
// process it started is still alive: no `lastgood serve`, no replica.
func setup(env *testscript.Env) error {
	// A race-instrumented program sleeps a second before it exits unless
	// told otherwise; every `lastgood` of the scripts is one.
	env.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	bg := &background{procs: map[string]*proc{}}
	env.Values[backgroundKey{}] = bg
	env.Defer(bg.killAll)
	work := env.WorkDir
	tb, ok := env.T().(testing.TB)
	if !ok {
		return errors.New("testscript's T is not a testing.TB")
	}
	tb.Cleanup(func() {
		for _, p := range survivorsIn(work) {
			tb.Errorf("process %d outlived its script: %s", p.pid, p.cmdline)
			syscall.Kill(p.pid, syscall.SIGKILL)
		}
	})
	return nil
}

// waitserver FILE [STATUS] [CA]: wait until `lastgood serve --addr-file
// FILE` has written its address and answers /readyz with STATUS (default
// 200; 503 for a degraded server), then point LASTGOOD_SERVER at it. With
// CA, the server speaks HTTPS with a certificate CA signed.
func cmdWaitServer(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 || len(args) > 3 {
		ts.Fatalf("usage: waitserver ADDR-FILE [STATUS] [CA-FILE]")
	}
	file := ts.MkAbs(args[0])
	hc := httpClient(2 * time.Second)
	want, scheme := http.StatusOK, "http://"
	for _, arg := range args[1:] {
		if n, err := strconv.Atoi(arg); err == nil {
			want = n
			continue
		}
		tlsClient, err := api.HTTPClient(ts.MkAbs(arg))
		ts.Check(err)
		tlsClient.Transport.(*http.Transport).DisableKeepAlives = true
		hc.Transport = tlsClient.Transport
		scheme = "https://"
	}
	var last string
	for deadline := time.Now().Add(patience); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		b, err := os.ReadFile(file)
		if err != nil {
			last = err.Error()
			continue
		}
		addr := strings.TrimSpace(string(b))
		res, err := hc.Get(scheme + addr + "/readyz")
		if err != nil {
			last = err.Error()
			continue
		}
		res.Body.Close()
		if res.StatusCode == want {
			if scheme == "https://" {
				addr = scheme + addr
			}
			ts.Setenv("LASTGOOD_SERVER", addr)
			return
		}
		last = res.Status
	}
	ts.Fatalf("lastgood did not become ready within %v: %s", patience, last)
}

// sampleapp DEST [BUILD]: copy the sample app to DEST, executable. With
// BUILD, the text is appended to the copy (the program ignores it), so
// that the copy's digest differs as a new build's would.
func cmdSampleApp(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 || len(args) > 2 {
		ts.Fatalf("usage: sampleapp DEST [BUILD]")
	}
	b, err := os.ReadFile(sampleAppBinary)
	ts.Check(err)
	if len(args) == 2 {
		b = append(b, "\nbuild "+args[1]+"\n"...)
	}
	dest := ts.MkAbs(args[0])
	ts.Check(os.MkdirAll(filepath.Dir(dest), 0o755))
	ts.Check(os.WriteFile(dest, b, 0o755))
	ts.Check(os.Chmod(dest, 0o755))
}

// portBook hands out free 127.0.0.1 ports, never the same one twice in a
// test binary, so that parallel scripts do not collide.
type portBook struct {
	mu    sync.Mutex
	given map[string]bool
}

// freeport NAME...: set each NAME to a free 127.0.0.1:PORT address.
func (b *portBook) cmd(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) == 0 {
		ts.Fatalf("usage: freeport NAME...")
	}
	for _, name := range args {
		addr, err := b.free()
		ts.Check(err)
		ts.Setenv(name, addr)
	}
}

func (b *portBook) free() (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for range 100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		addr := ln.Addr().String()
		ln.Close()
		if !b.given[addr] {
			b.given[addr] = true
			return addr, nil
		}
	}
	return "", errors.New("no free port found in 100 tries")
}

// expand FILE...: replace $NAME and ${NAME} in each file by the script's
// environment variable NAME; unset names, and any other $, stay as written.
func cmdExpand(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) == 0 {
		ts.Fatalf("usage: expand FILE...")
	}
	for _, f := range args {
		path := ts.MkAbs(f)
		b, err := os.ReadFile(path)
		ts.Check(err)
		out := variable.ReplaceAllStringFunc(string(b), func(ref string) string {
			name := strings.Trim(ref, "${}")
			if v := ts.Getenv(name); v != "" {
				return v
			}
			return ref
		})
		ts.Check(os.WriteFile(path, []byte(out), 0o644))
	}
}

var variable = regexp.MustCompile(`\$\{[A-Za-z_][A-Za-z0-9_]*\}|\$[A-Za-z_][A-Za-z0-9_]*`)

// waitfor APP PHASE [ROLLOUT]: wait until the app's latest rollout (or
// rollout number ROLLOUT) is in PHASE; fail at once if it ends in another
// phase.
func cmdWaitFor(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 || len(args) > 3 {
		ts.Fatalf("usage: waitfor APP PHASE [ROLLOUT]")
	}
	app, want := args[0], args[1]
	var id int64
	if len(args) == 3 {
		var err error
		id, err = strconv.ParseInt(args[2], 10, 64)
		ts.Check(err)
	}
	c := client(ts)
	var last string
	for deadline := time.Now().Add(patience); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		st, err := c.App(context.Background(), app)
		if err != nil {
			last = err.Error()
			continue
		}
		r := st.Rollout
		if r == nil || (id != 0 && r.ID != id) {
			last = "no such rollout yet"
			continue
		}
		last = fmt.Sprintf("rollout #%d %s", r.ID, r.Phase)
		if r.Phase == want {
			fmt.Fprintln(ts.Stdout(), last)
			return
		}
		if strategy.Phase(r.Phase).Final() && (id != 0 || strategy.Phase(want).Final()) {
			ts.Fatalf("%s: %s ended %s (%s), not %s", app, last, r.Phase, r.Reason, want)
		}
	}
	ts.Fatalf("%s did not reach %s within %v: %s", app, want, patience, last)
}

// waitincident ID [PATH WANT]: wait until the server has written incident
// ID (with WANT at PATH of its incident.json, as the json command reads
// it).
func cmdWaitIncident(ts *testscript.TestScript, neg bool, args []string) {
	if neg || (len(args) != 1 && len(args) != 3) {
		ts.Fatalf("usage: waitincident ID [PATH WANT]")
	}
	c := client(ts)
	var err error
	for deadline := time.Now().Add(patience); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		var inc any
		if inc, err = c.Incident(context.Background(), args[0]); err != nil {
			continue
		}
		if len(args) == 1 {
			return
		}
		var v any
		if err = roundTrip(inc, &v); err != nil {
			continue
		}
		got, _ := jsonAt(v, args[1])
		if got == args[2] {
			return
		}
		err = fmt.Errorf("%s is %s, want %s", args[1], got, args[2])
	}
	ts.Fatalf("incident %s: %v", args[0], err)
}

// waitevent APP TYPE [PATTERN]: wait until the app has an event of TYPE
// (whose message matches the regular expression PATTERN), and print the
// last one's message to stdout.
func cmdWaitEvent(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 || len(args) > 3 {
		ts.Fatalf("usage: waitevent APP TYPE [PATTERN]")
	}
	match := regexp.MustCompile("")
	if len(args) == 3 {
		match = regexp.MustCompile(args[2])
	}
	c := client(ts)
	var err error
	for deadline := time.Now().Add(patience); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		var evs []store.Event
		if evs, err = c.Events(context.Background(), args[0], 0); err != nil {
			continue
		}
		for i := len(evs) - 1; i >= 0; i-- {
			if evs[i].Type == args[1] && match.MatchString(evs[i].Message) {
				fmt.Fprintln(ts.Stdout(), evs[i].Message)
				return
			}
		}
		err = fmt.Errorf("no such event yet")
	}
	ts.Fatalf("waitevent %s: %v", strings.Join(args, " "), err)
}

// waitstatus APP PATH WANT: wait until `lastgood status APP -o json`
// has WANT at PATH (as the json command reads it).
func cmdWaitStatus(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: waitstatus APP PATH WANT")
	}
	c := client(ts)
	var last string
	for deadline := time.Now().Add(patience); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		var st any
		status, err := c.App(context.Background(), args[0])
		if err == nil {
			err = roundTrip(status, &st)
		}
		if err != nil {
			last = err.Error()
			continue
		}
		got, ok := jsonAt(st, args[1])
		if ok && got == args[2] {
			return
		}
		last = fmt.Sprintf("%s is %s", args[1], got)
	}
	ts.Fatalf("%s: %s did not become %s within %v: %s", args[0], args[1], args[2], patience, last)
}

// roundTrip gives v as `-o json` prints it, decoded into out.
func roundTrip(v, out any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, out)
}

func client(ts *testscript.TestScript) *api.Client {
	server := ts.Getenv("LASTGOOD_SERVER")
	if server == "" {
		ts.Fatalf("LASTGOOD_SERVER is not set; run waitserver first")
	}
	base := server
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	hc := httpClient(5 * time.Second)
	if ca := ts.Getenv("LASTGOOD_CA_CERT"); ca != "" {
		tlsClient, err := api.HTTPClient(ts.MkAbs(ca))
		ts.Check(err)
		tlsClient.Transport.(*http.Transport).DisableKeepAlives = true
		hc.Transport = tlsClient.Transport
	}
	return &api.Client{Base: base, Token: ts.Getenv("LASTGOOD_TOKEN"), HTTP: hc}
}

// gencert DIR: write a throwaway CA (DIR/ca.pem) and a certificate for
// 127.0.0.1 it signed (DIR/cert.pem, DIR/key.pem).
func cmdGenCert(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: gencert DIR")
	}
	dir := ts.MkAbs(args[0])
	ts.Check(os.MkdirAll(dir, 0o755))
	_, err := tlstest.Write(dir)
	ts.Check(err)
}

// httpClient keeps no connection open between requests, so nothing of
// the test process lingers on servers the scripts stop.
func httpClient(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: &http.Transport{DisableKeepAlives: true}}
}

// httpget URL [STATUS]: GET URL (default scheme http) without cookies and
// expect STATUS (default 200). Stdout is the Lastgood-Revision header
// line followed by the body.
func cmdHTTPGet(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 || len(args) > 2 {
		ts.Fatalf("usage: httpget URL [STATUS]")
	}
	url := args[0]
	if !strings.Contains(url, "://") {
		url = "http://" + url
	}
	want := http.StatusOK
	if len(args) == 2 {
		var err error
		want, err = strconv.Atoi(args[1])
		ts.Check(err)
	}
	hc := httpClient(10 * time.Second)
	res, err := hc.Get(url)
	ts.Check(err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	ts.Check(err)
	fmt.Fprintf(ts.Stdout(), "Lastgood-Revision: %s\n%s", res.Header.Get("Lastgood-Revision"), body)
	if res.StatusCode != want {
		ts.Fatalf("GET %s: %s, want %d", url, res.Status, want)
	}
}

// httpgets URL N: GET URL (default scheme http) N times, one after the
// other, without cookies; every answer must be 200. Stdout has one line
// per revision that answered, "revision R: COUNT", by revision.
func cmdHTTPGets(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: httpgets URL N")
	}
	url := args[0]
	if !strings.Contains(url, "://") {
		url = "http://" + url
	}
	n, err := strconv.Atoi(args[1])
	ts.Check(err)
	hc := &http.Client{Timeout: 10 * time.Second}
	defer hc.CloseIdleConnections()
	counts := map[string]int{}
	for range n {
		res, err := hc.Get(url)
		ts.Check(err)
		_, err = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		ts.Check(err)
		if res.StatusCode != http.StatusOK {
			ts.Fatalf("GET %s: %s", url, res.Status)
		}
		counts[res.Header.Get("Lastgood-Revision")]++
	}
	for _, rev := range slices.Sorted(maps.Keys(counts)) {
		fmt.Fprintf(ts.Stdout(), "revision %s: %d\n", rev, counts[rev])
	}
}

// exits CODE PROG [ARGS...]: like exec, but the command must exit with
// exactly CODE; its stdout and stderr are kept for stdout and stderr.
func cmdExits(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exits CODE PROG [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	got := 0
	if err := ts.Exec(args[1], args[2:]...); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("%s: %v", args[1], err)
		}
		got = ee.ExitCode()
	}
	if got != want {
		ts.Fatalf("%s exited %d, want %d", args[1], got, want)
	}
}

// pad FILE SIZE: append comment lines to FILE until it has SIZE bytes
// (an integer with an optional Ki or Mi suffix).
func cmdPad(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: pad FILE SIZE")
	}
	size, err := parseSize(args[1])
	ts.Check(err)
	path := ts.MkAbs(args[0])
	b, err := os.ReadFile(path)
	ts.Check(err)
	line := "# " + strings.Repeat("padding ", 127) + "\n"
	buf := bytes.NewBuffer(b)
	for buf.Len() < size {
		buf.WriteString(line)
	}
	ts.Check(os.WriteFile(path, buf.Bytes(), 0o644))
}

func parseSize(s string) (int, error) {
	mult := 1
	if n, ok := strings.CutSuffix(s, "Mi"); ok {
		s, mult = n, 1<<20
	} else if n, ok := strings.CutSuffix(s, "Ki"); ok {
		s, mult = n, 1<<10
	}
	n, err := strconv.Atoi(s)
	return n * mult, err
}

// tolatin1 FILE: re-encode FILE from UTF-8 to ISO-8859-1, as an editor
// set to Latin-1 would save it.
func cmdToLatin1(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: tolatin1 FILE")
	}
	path := ts.MkAbs(args[0])
	b, err := os.ReadFile(path)
	ts.Check(err)
	var out []byte
	for _, r := range string(b) {
		if r > 0xff {
			ts.Fatalf("%s: %q has no Latin-1 encoding", args[0], r)
		}
		out = append(out, byte(r))
	}
	ts.Check(os.WriteFile(path, out, 0o644))
}

// survivor is a process that still runs for a script that has ended.
type survivor struct {
	pid     int
	cmdline string
}

// survivorsIn lists the processes whose command line names a path inside
// work, or whose working directory is inside it.
func survivorsIn(work string) []survivor {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []survivor
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(raw) == 0 { // gone, or a zombie
			continue
		}
		args := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
		inside := false
		for _, a := range args {
			inside = inside || strings.Contains(a, work+"/") || strings.HasSuffix(a, work)
		}
		if cwd, err := os.Readlink(filepath.Join("/proc", e.Name(), "cwd")); err == nil {
			cwd = strings.TrimSuffix(cwd, " (deleted)")
			inside = inside || cwd == work || strings.HasPrefix(cwd, work+"/")
		}
		if inside {
			out = append(out, survivor{pid, strings.Join(args, " ")})
		}
	}
	return out
}

// background is a script's own background commands: unlike testscript's
// `exec ... &`, their output can be waited for while they run, and their
// exact exit code checked.
type background struct {
	mu    sync.Mutex
	procs map[string]*proc
}

type backgroundKey struct{}

type proc struct {
	cmd            *exec.Cmd
	stdout, stderr lockedBuffer
	done           chan struct{}
	err            error // set before done is closed
}

// lockedBuffer is written by the command's output copier and read by the
// script while the command runs.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func backgroundOf(ts *testscript.TestScript) *background {
	return ts.Value(backgroundKey{}).(*background)
}

func (bg *background) get(ts *testscript.TestScript, name string) *proc {
	bg.mu.Lock()
	defer bg.mu.Unlock()
	p := bg.procs[name]
	if p == nil {
		ts.Fatalf("no background command %q; start it first", name)
	}
	return p
}

// killAll ends the commands the script did not await.
func (bg *background) killAll() {
	bg.mu.Lock()
	defer bg.mu.Unlock()
	for name, p := range bg.procs {
		p.cmd.Process.Kill()
		<-p.done
		delete(bg.procs, name)
	}
}

// start NAME PROG [ARGS...]: run a command in the background, in the
// script's directory, with the script's LASTGOOD_* variables.
func cmdStart(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: start NAME PROG [ARGS...]")
	}
	bg := backgroundOf(ts)
	name := args[0]
	prog, err := exec.LookPath(args[1])
	ts.Check(err)
	p := &proc{cmd: exec.Command(prog, args[2:]...), done: make(chan struct{})}
	p.cmd.Dir = ts.MkAbs(".")
	p.cmd.Env = os.Environ()
	for _, name := range []string{"LASTGOOD_SERVER", "LASTGOOD_TOKEN", "GORACE", "HOME", "TMPDIR"} {
		p.cmd.Env = append(p.cmd.Env, name+"="+ts.Getenv(name))
	}
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	ts.Check(p.cmd.Start())
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	bg.mu.Lock()
	defer bg.mu.Unlock()
	if bg.procs[name] != nil {
		p.cmd.Process.Kill()
		<-p.done
		ts.Fatalf("background command %q already started", name)
	}
	bg.procs[name] = p
}

// waitout NAME REGEXP: wait until the stdout of background command NAME
// matches REGEXP.
func cmdWaitOut(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: waitout NAME REGEXP")
	}
	p := backgroundOf(ts).get(ts, args[0])
	re, err := regexp.Compile("(?m)" + args[1])
	ts.Check(err)
	deadline := time.After(patience)
	for !re.MatchString(p.stdout.String()) {
		select {
		case <-p.done:
			if !re.MatchString(p.stdout.String()) {
				ts.Fatalf("%s exited (%v) before printing %q:\n%s%s", args[0], p.err, args[1], p.stdout.String(), p.stderr.String())
			}
		case <-deadline:
			ts.Fatalf("%s did not print %q within %v:\n%s", args[0], args[1], patience, p.stdout.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// interrupt NAME: send SIGINT to background command NAME.
func cmdInterrupt(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: interrupt NAME")
	}
	p := backgroundOf(ts).get(ts, args[0])
	ts.Check(p.cmd.Process.Signal(os.Interrupt))
}

// await NAME CODE: wait for background command NAME to exit with exactly
// CODE; its stdout and stderr become the script's stdout and stderr.
func cmdAwait(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: await NAME CODE")
	}
	want, err := strconv.Atoi(args[1])
	ts.Check(err)
	bg := backgroundOf(ts)
	p := bg.get(ts, args[0])
	select {
	case <-p.done:
	case <-time.After(patience):
		ts.Fatalf("%s did not exit within %v:\n%s", args[0], patience, p.stdout.String())
	}
	bg.mu.Lock()
	delete(bg.procs, args[0])
	bg.mu.Unlock()
	io.WriteString(ts.Stdout(), p.stdout.String())
	io.WriteString(ts.Stderr(), p.stderr.String())
	got := 0
	if p.err != nil {
		var ee *exec.ExitError
		if !errors.As(p.err, &ee) {
			ts.Fatalf("%s: %v", args[0], p.err)
		}
		got = ee.ExitCode()
	}
	if got != want {
		ts.Fatalf("%s exited %d, want %d", args[0], got, want)
	}
}

// json PATH [WANT]: stdout must be one JSON value (or a stream of them, of
// which the last counts) in which PATH — keys and array indexes joined by
// dots, "." for the whole value — exists and, with WANT, prints as WANT
// (numbers in their shortest form, arrays by length: "len=3").
func cmdJSON(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 1 || len(args) > 2 || (neg && len(args) != 1) {
		ts.Fatalf("usage: json PATH [WANT] | ! json PATH")
	}
	var v any
	dec := json.NewDecoder(strings.NewReader(ts.ReadFile("stdout")))
	n := 0
	for ; ; n++ {
		var next any
		if err := dec.Decode(&next); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			ts.Fatalf("stdout is not JSON: %v", err)
		}
		v = next
	}
	if n == 0 {
		ts.Fatalf("stdout is empty, not JSON")
	}
	got, ok := jsonAt(v, args[0])
	switch {
	case neg && ok:
		ts.Fatalf("%s is present: %s", args[0], got)
	case neg:
		return
	case !ok:
		ts.Fatalf("%s is absent from stdout", args[0])
	case len(args) == 2 && got != args[1]:
		ts.Fatalf("%s is %s, want %s", args[0], got, args[1])
	}
}

// jsonAt finds path in v and formats what it finds.
func jsonAt(v any, path string) (string, bool) {
	if path != "." {
		for _, key := range strings.Split(path, ".") {
			switch x := v.(type) {
			case map[string]any:
				var ok bool
				if v, ok = x[key]; !ok {
					return "", false
				}
			case []any:
				i, err := strconv.Atoi(key)
				if err != nil || i < 0 || i >= len(x) {
					return "", false
				}
				v = x[i]
			default:
				return "", false
			}
		}
	}
	switch x := v.(type) {
	case []any:
		return fmt.Sprintf("len=%d", len(x)), true
	case map[string]any:
		return fmt.Sprintf("object with %d keys", len(x)), true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	default:
		return fmt.Sprint(x), true
	}
}

// sqlite DB STATEMENT: run one SQL statement on a stopped lastgood's
// database, as someone tampering with it would.
func cmdSQLite(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: sqlite DB STATEMENT")
	}
	db, err := sql.Open("sqlite", ts.MkAbs(args[0]))
	ts.Check(err)
	defer db.Close()
	res, err := db.Exec(args[1])
	ts.Check(err)
	n, err := res.RowsAffected()
	ts.Check(err)
	fmt.Fprintf(ts.Stdout(), "%d rows affected\n", n)
}

// sqlquery DB QUERY: print the rows of a query on a SQLite file, one a
// line, columns separated by spaces (NULL prints as NULL).
func cmdSQLQuery(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: sqlquery DB QUERY")
	}
	db, err := sql.Open("sqlite", ts.MkAbs(args[0]))
	ts.Check(err)
	defer db.Close()
	printRows(ts, db, args[1])
}

// printRows prints a query's rows, one a line, columns separated by
// spaces.
func printRows(ts *testscript.TestScript, db *sql.DB, query string) {
	rows, err := db.Query(query)
	ts.Check(err)
	defer rows.Close()
	cols, err := rows.Columns()
	ts.Check(err)
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		ts.Check(rows.Scan(ptrs...))
		out := make([]string, len(cols))
		for i, v := range vals {
			out[i] = "NULL"
			if v.Valid {
				out[i] = v.String
			}
		}
		fmt.Fprintln(ts.Stdout(), strings.Join(out, " "))
	}
	ts.Check(rows.Err())
}

// postgres: start a throwaway PostgreSQL server on 127.0.0.1 for the
// script (stopped when it ends) with a database "app", and set
// DATABASE_URL (with the password), PGHOSTPORT and PGPASSWORD.
func cmdPostgres(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: postgres")
	}
	s, err := postgrestest.StartServer()
	ts.Check(err)
	ts.Defer(s.Stop)
	u, err := s.NewDatabase("app")
	ts.Check(err)
	ts.Setenv("DATABASE_URL", u)
	ts.Setenv("PGHOSTPORT", net.JoinHostPort(s.Host, strconv.Itoa(s.Port)))
	ts.Setenv("PGPASSWORD", postgrestest.Password)
}

// psql QUERY: run a statement on $DATABASE_URL and print the rows it
// returns, like sqlquery.
func cmdPSQL(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: psql QUERY")
	}
	db, err := sql.Open("pgx", ts.Getenv("DATABASE_URL"))
	ts.Check(err)
	defer db.Close()
	printRows(ts, db, args[0])
}

// psqlwait QUERY VALUE: poll a one-value query on $DATABASE_URL until it
// returns VALUE.
func cmdPSQLWait(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: psqlwait QUERY VALUE")
	}
	db, err := sql.Open("pgx", ts.Getenv("DATABASE_URL"))
	ts.Check(err)
	defer db.Close()
	var got string
	for deadline := time.Now().Add(patience); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if err = db.QueryRow(args[0]).Scan(&got); err == nil && got == args[1] {
			return
		}
	}
	ts.Fatalf("psqlwait: last got %q, %v", got, err)
}

// apiaction APP VERB STATUS: POST the action VERB (promote, abort, pause,
// resume) of APP to the API and check the HTTP status it answers; the
// error message, if any, goes to stdout.
func cmdAPIAction(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: apiaction APP VERB STATUS")
	}
	want, err := strconv.Atoi(args[2])
	ts.Check(err)
	_, err = client(ts).Action(context.Background(), args[0], args[1], api.ActionRequest{})
	got := http.StatusOK
	if se, ok := errors.AsType[*api.StatusError](err); ok {
		got = se.Code
		fmt.Fprintln(ts.Stdout(), se.Body.Error)
	} else if err != nil {
		ts.Fatalf("%s %s: %v", args[1], args[0], err)
	}
	if got != want {
		ts.Fatalf("%s %s: HTTP %d, want %d", args[1], args[0], got, want)
	}
}

// portfree ADDR: nothing listens on ADDR, and it can be listened on.
func cmdPortFree(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: portfree ADDR")
	}
	if c, err := net.DialTimeout("tcp", args[0], 2*time.Second); err == nil {
		c.Close()
		ts.Fatalf("%s still accepts connections", args[0])
	}
	ln, err := net.Listen("tcp", args[0])
	if err != nil {
		ts.Fatalf("%s cannot be listened on: %v", args[0], err)
	}
	ln.Close()
}

// procsin DIR N: exactly N processes run with their working directory
// inside DIR (a local engine's replicas run in <data>/work/<app>).
func cmdProcsIn(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: procsin DIR N")
	}
	dir := ts.MkAbs(args[0])
	want, err := strconv.Atoi(args[1])
	ts.Check(err)
	var got []string
	entries, err := os.ReadDir("/proc")
	ts.Check(err)
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		cwd, err := os.Readlink(filepath.Join("/proc", e.Name(), "cwd"))
		if err != nil {
			continue // gone, or not ours to read
		}
		cwd = strings.TrimSuffix(cwd, " (deleted)")
		if cwd == dir || strings.HasPrefix(cwd, dir+"/") {
			got = append(got, e.Name())
		}
	}
	if len(got) != want {
		ts.Fatalf("%d processes run in %s (pids %v), want %d", len(got), args[0], got, want)
	}
}

// damage DB TABLE: overwrite the root page of TABLE in the SQLite file DB
// (lastgood stopped, so its log is checkpointed) with garbage, as a disk
// that lost a sector would.
func cmdDamage(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: damage DB TABLE")
	}
	path := ts.MkAbs(args[0])
	db, err := sql.Open("sqlite", path)
	ts.Check(err)
	var page, size int64
	ts.Check(db.QueryRow(`SELECT rootpage FROM sqlite_schema WHERE name = ?`, args[1]).Scan(&page))
	ts.Check(db.QueryRow(`PRAGMA page_size`).Scan(&size))
	db.Close()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	ts.Check(err)
	defer f.Close()
	_, err = f.WriteAt(bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef}, int(size/4)), (page-1)*size)
	ts.Check(err)
}
