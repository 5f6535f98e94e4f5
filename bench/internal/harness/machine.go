package harness

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
)

// WriteMachine writes a Markdown table describing this machine: CPUs,
// CPU model, memory, Go and the kernel.
func WriteMachine(w io.Writer) {
	fmt.Fprintf(w, "## Machine\n\n| | |\n|---|---|\n")
	fmt.Fprintf(w, "| CPUs (nproc) | %d |\n", runtime.NumCPU())
	fmt.Fprintf(w, "| CPU model | %s |\n", procField("/proc/cpuinfo", "model name"))
	fmt.Fprintf(w, "| memory | %s |\n", memTotal())
	fmt.Fprintf(w, "| Go | %s %s/%s |\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	fmt.Fprintf(w, "| kernel | Linux %s |\n\n", strings.TrimSpace(string(kernel)))
}

// memTotal returns MemTotal from /proc/meminfo in GiB.
func memTotal() string {
	v := procField("/proc/meminfo", "MemTotal")
	kb, err := strconv.ParseInt(strings.TrimSuffix(v, " kB"), 10, 64)
	if err != nil {
		return v
	}
	return fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
}

// procField returns the first value of key in a "key: value" /proc file.
func procField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}
