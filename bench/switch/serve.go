package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// binaries are the programs the benchmark builds from this module.
type binaries struct {
	lastgood, sampleApp string
}

// build compiles lastgood and the sample app into dir.
func build(ctx context.Context, dir string) (binaries, error) {
	b := binaries{lastgood: filepath.Join(dir, "lastgood"), sampleApp: filepath.Join(dir, "web")}
	for out, pkg := range map[string]string{
		b.lastgood:  "github.com/lastgood/lastgood/cmd/lastgood",
		b.sampleApp: "github.com/lastgood/lastgood/internal/demo/sampleapp",
	} {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
		if msg, err := cmd.CombinedOutput(); err != nil {
			return b, fmt.Errorf("go build %s: %w\n%s", pkg, err, msg)
		}
	}
	return b, nil
}

// server is a `lastgood serve` subprocess.
type server struct {
	cmd    *exec.Cmd
	base   string // API URL
	exited chan struct{}
	err    error // set before exited closes
}

// startServe runs lastgood in its own process group (so a Ctrl-C reaches
// only the benchmark, which then stops lastgood after the load) and waits
// until its API is ready.
func startServe(ctx context.Context, bin, data, logPath string) (*server, error) {
	addrFile := filepath.Join(data, "..", "api-addr")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("serve log: %w", err)
	}
	defer logf.Close() // the child holds its own copy
	cmd := exec.Command(bin, "serve", "--data", data, "--api", "127.0.0.1:0", "--addr-file", addrFile)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = os.Environ()
	// Pdeathsig kills lastgood (and so, by its own Pdeathsig, every
	// replica) should the benchmark die without running its cleanup.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start lastgood serve: %w", err)
	}
	s := &server{cmd: cmd, exited: make(chan struct{})}
	go func() {
		s.err = cmd.Wait()
		close(s.exited)
	}()
	if err := s.waitReady(ctx, addrFile); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

func (s *server) waitReady(ctx context.Context, addrFile string) error {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.exited:
			return fmt.Errorf("lastgood serve exited before it was ready: %v", s.err)
		case <-time.After(20 * time.Millisecond):
		}
		if s.base == "" {
			b, err := os.ReadFile(addrFile)
			if err != nil {
				continue
			}
			s.base = "http://" + strings.TrimSpace(string(b))
		}
		res, err := http.Get(s.base + "/readyz")
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

// stop asks lastgood to shut down (SIGTERM), and kills its process group
// if it has not exited within 10 seconds. It is safe to call twice.
func (s *server) stop() error {
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

func (s *server) pid() int { return s.cmd.Process.Pid }

// memory is a process's resident set, from /proc/<pid>/status.
type memory struct {
	RSS, HWM int64 // bytes: VmRSS and VmHWM (the peak)
}

func readMemory(pid int) (memory, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memory{}, fmt.Errorf("read memory of pid %d: %w", pid, err)
	}
	defer f.Close()
	var m memory
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok || (key != "VmRSS" && key != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(val), " kB"), 10, 64)
		if err != nil {
			return m, fmt.Errorf("pid %d %s: %w", pid, key, err)
		}
		if key == "VmRSS" {
			m.RSS = kb << 10
		} else {
			m.HWM = kb << 10
		}
	}
	return m, sc.Err()
}

// children returns the pids whose parent is pid: lastgood's replicas.
func children(pid int) ([]int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	var kids []int
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // exited meanwhile
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		rest := string(b[strings.LastIndexByte(string(b), ')')+1:])
		fields := strings.Fields(rest)
		if len(fields) > 1 && fields[1] == strconv.Itoa(pid) {
			kids = append(kids, n)
		}
	}
	return kids, nil
}

// alive reports which of pids still exist (and are not zombies).
func alive(pids []int) []int {
	var left []int
	for _, p := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			continue
		}
		rest := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(rest) > 0 && rest[0] != "Z" {
			left = append(left, p)
		}
	}
	return left
}
