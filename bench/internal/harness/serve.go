package harness

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Binaries are the programs a benchmark builds from this module.
type Binaries struct {
	Lastgood, SampleApp string
}

// Build compiles lastgood and the sample app into dir.
func Build(ctx context.Context, dir string) (Binaries, error) {
	b := Binaries{Lastgood: filepath.Join(dir, "lastgood"), SampleApp: filepath.Join(dir, "web")}
	for out, pkg := range map[string]string{
		b.Lastgood:  "github.com/lastgood/lastgood/cmd/lastgood",
		b.SampleApp: "github.com/lastgood/lastgood/internal/demo/sampleapp",
	} {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
		if msg, err := cmd.CombinedOutput(); err != nil {
			return b, fmt.Errorf("go build %s: %w\n%s", pkg, err, msg)
		}
	}
	return b, nil
}

// Server is a `lastgood serve` subprocess.
type Server struct {
	Base   string // API URL
	cmd    *exec.Cmd
	exited chan struct{}
	err    error // set before exited closes
}

// StartServe runs lastgood in its own process group (so a Ctrl-C reaches
// only the benchmark, which then stops lastgood after the load) and waits
// until its API is ready.
func StartServe(ctx context.Context, bin, data, logPath string) (*Server, error) {
	return StartServeArgs(ctx, bin, data, logPath)
}

// StartServeArgs is StartServe with more flags for `lastgood serve`.
func StartServeArgs(ctx context.Context, bin, data, logPath string, args ...string) (*Server, error) {
	addrFile := filepath.Join(data, "..", "api-addr")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("serve log: %w", err)
	}
	defer logf.Close() // the child holds its own copy
	cmd := exec.Command(bin, append([]string{"serve", "--data", data, "--api", "127.0.0.1:0", "--addr-file", addrFile}, args...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = os.Environ()
	// Pdeathsig kills lastgood (and so, by its own Pdeathsig, every
	// replica) should the benchmark die without running its cleanup.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start lastgood serve: %w", err)
	}
	s := &Server{cmd: cmd, exited: make(chan struct{})}
	go func() {
		s.err = cmd.Wait()
		close(s.exited)
	}()
	if err := s.waitReady(ctx, addrFile); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

func (s *Server) waitReady(ctx context.Context, addrFile string) error {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.exited:
			return fmt.Errorf("lastgood serve exited before it was ready: %v", s.err)
		case <-time.After(20 * time.Millisecond):
		}
		if s.Base == "" {
			b, err := os.ReadFile(addrFile)
			if err != nil {
				continue
			}
			s.Base = "http://" + strings.TrimSpace(string(b))
		}
		res, err := http.Get(s.Base + "/readyz")
		if err != nil {
			continue
		}
		res.Body.Close()
		if res.StatusCode == http.StatusOK {
			return nil
		}
	}
	return errors.New("lastgood serve was not ready within 20s")
}

// Stop asks lastgood to shut down (SIGTERM), and kills its process group
// if it has not exited within 10 seconds. It is safe to call twice.
func (s *Server) Stop() error {
	select {
	case <-s.exited:
		return nil
	default:
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		return nil
	case <-time.After(10 * time.Second):
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.exited
		return errors.New("lastgood serve ignored SIGTERM for 10s and was killed")
	}
}

// Shutdown stops lastgood and returns its replicas that outlived it (none
// is the contract); err says what went wrong listing them or stopping
// lastgood.
func (s *Server) Shutdown() (left []int, err error) {
	kids, listErr := Children(s.PID())
	err = errors.Join(listErr, s.Stop())
	return Alive(kids), err
}

// PID is lastgood's process id.
func (s *Server) PID() int { return s.cmd.Process.Pid }
