package journey

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startSampleApp builds the demo's sample app and runs one replica of it,
// as the local engine would, on a free port; the replica stops with the
// test.
func startSampleApp(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(t.TempDir(), "sampleapp")
	build := exec.Command(goTool, "build", "-o", bin, "github.com/lastgood/lastgood/internal/demo/sampleapp")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the sample app: %v\n%s", err, out)
	}
	for attempt := 0; attempt < 3; attempt++ {
		addr := freeAddr(t)
		_, port, _ := strings.Cut(addr, ":")
		cmd := exec.Command(bin)
		cmd.Env = append(os.Environ(), "PORT="+port, "LASTGOOD_APP=web", "LASTGOOD_REVISION=4")
		logPath := filepath.Join(t.TempDir(), "replica.log")
		logs, err := os.Create(logPath)
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = logs, logs
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		err = cmd.Start()
		logs.Close()
		if err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		t.Cleanup(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(30 * time.Second):
				_ = cmd.Process.Kill()
				<-exited
			}
		})
		if waitReady(addr, exited) {
			return addr
		}
		out, _ := os.ReadFile(logPath)
		t.Logf("sample app on %s did not become ready:\n%s", addr, out)
	}
	t.Fatal("the sample app did not become ready on three ports")
	return ""
}

// waitReady polls the replica's /healthz for up to 30s; false when it
// exited (the port was taken meanwhile) or never answered.
func waitReady(addr string, exited chan error) bool {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if Run(context.Background(), addr, []Step{{Path: "/healthz"}}, time.Second).Passed {
			return true
		}
		select {
		case err := <-exited:
			exited <- err // for the cleanup
			return false
		case <-time.After(50 * time.Millisecond):
		}
	}
	return false
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

func TestJourneyAgainstARealReplica(t *testing.T) {
	addr := startSampleApp(t)
	res := Run(context.Background(), addr, []Step{
		{Name: "health", Path: "/healthz", ExpectBody: "ok"},
		{Name: "home", Path: "/", ExpectBody: `^hello from web revision 4 `},
	}, 5*time.Second)
	if !res.Passed {
		t.Fatalf("got %+v, want a pass", res)
	}
	res = Run(context.Background(), addr, []Step{{Name: "home", Path: "/", ExpectBody: "revision 5"}}, 5*time.Second)
	if res.Passed || !strings.Contains(res.Steps[0].Err, `body does not match "revision 5"; body: "hello from web revision 4`) {
		t.Errorf("got %+v, want a body mismatch showing the body", res)
	}
}
