package resources

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Helper processes: the test binary re-executed with helperEnv set.
const (
	helperEnv = "RESOURCES_TEST_HELPER"
	mibEnv    = "RESOURCES_TEST_MIB"   // MiB to allocate and touch
	filesEnv  = "RESOURCES_TEST_FILES" // extra files to hold open
	burnEnv   = "RESOURCES_TEST_BURN"  // a holder burns a core too
)

// sampleApp is the demo sample app, built once for the engine test.
var sampleApp string

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(helperMain(mode))
	}
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "signal-resources-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	sampleApp = filepath.Join(dir, "sampleapp")
	build := exec.Command("go", "build", "-o", sampleApp, "github.com/lastgood/lastgood/internal/demo/sampleapp")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build sampleapp: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// helperMain runs one helper:
//
//	hog    allocates and holds memory and files, starts a "holder"
//	       grandchild in its own process group that burns a core too,
//	       burns one core, prints "ready" once all is in place and, when
//	       its stdin closes, kills and reaps the grandchild and exits. To a
//	       line "cpu" on stdin it answers its own CPU time and its
//	       grandchild's, in nanoseconds, each as the process itself
//	       reports it (getrusage).
//	holder allocates and holds memory and files, prints "ready", answers
//	       "cpu" with its own CPU time, and exits when its stdin closes.
//	       With burnEnv set it burns a core.
//	exit   exits at once.
func helperMain(mode string) int {
	switch mode {
	case "exit":
		return 0
	case "hog", "holder":
	default:
		fmt.Fprintln(os.Stderr, "unknown helper mode", mode)
		return 2
	}
	mem, files, err := hold()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var grandchild *exec.Cmd
	var grandchildStdin io.WriteCloser
	var grandchildOut *bufio.Reader
	if mode == "hog" {
		if grandchild, grandchildStdin, grandchildOut, err = startHolder(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		go burn()
	}
	if mode == "holder" && os.Getenv(burnEnv) != "" {
		go burn()
	}
	fmt.Println("ready")
	// Stdin closes when the test is done with this helper (or dies).
	in := bufio.NewReader(os.Stdin)
	for {
		line, err := in.ReadString('\n')
		if err != nil || line != "cpu\n" {
			break
		}
		answer := strconv.FormatInt(ownCPU().Nanoseconds(), 10)
		if grandchild != nil {
			fmt.Fprintln(grandchildStdin, "cpu")
			theirs, err := grandchildOut.ReadString('\n')
			if err != nil {
				fmt.Fprintln(os.Stderr, "grandchild's CPU:", err)
				return 1
			}
			answer += " " + strings.TrimSpace(theirs)
		}
		fmt.Println(answer)
	}
	if grandchild != nil {
		grandchildStdin.Close()
		grandchild.Wait()
	}
	runtime.KeepAlive(mem)
	runtime.KeepAlive(files)
	return 0
}

// hold allocates and touches mibEnv MiB and opens filesEnv files.
func hold() ([]byte, []*os.File, error) {
	mib, err := strconv.Atoi(os.Getenv(mibEnv))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", mibEnv, err)
	}
	n, err := strconv.Atoi(os.Getenv(filesEnv))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", filesEnv, err)
	}
	mem := make([]byte, mib<<20)
	for i := 0; i < len(mem); i += 4096 {
		mem[i] = 1
	}
	files := make([]*os.File, 0, n)
	for range n {
		f, err := os.Open(os.DevNull)
		if err != nil {
			return nil, nil, err
		}
		files = append(files, f)
	}
	return mem, files, nil
}

// startHolder starts the grandchild, burning a core; it inherits this
// process's group. It exits when the returned stdin is closed or this
// process dies; out is where it answers.
func startHolder() (*exec.Cmd, io.WriteCloser, *bufio.Reader, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, nil, nil, err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), helperEnv+"=holder", mibEnv+"=16", filesEnv+"=10", burnEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, nil, nil, err
	}
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, nil, err
	}
	out := bufio.NewReader(pipe)
	if line, err := out.ReadString('\n'); err != nil || line != "ready\n" {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, nil, nil, fmt.Errorf("holder did not start: %q %v", line, err)
	}
	return cmd, stdin, out, nil
}

// ownCPU is this process's user + system time, all threads, as the kernel
// reports it to the process itself.
func ownCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return -1
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// burn keeps one core busy until the process exits.
func burn() {
	x := uint64(1)
	for {
		for range 1 << 20 {
			x = x*6364136223846793005 + 1442695040888963407
		}
		if x == 0 {
			time.Sleep(time.Nanosecond) // never happens; keeps x live
		}
	}
}
