package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/lastgood/lastgood/bench/internal/harness"
)

// sample is what lastgood held at one moment. A field that could not be
// read is -1.
type sample struct {
	At         time.Duration // since the load started
	RSS        int64         // bytes, VmRSS
	FDs        int           // entries of /proc/PID/fd
	Threads    int           // Threads in /proc/PID/status (OS threads)
	Goroutines int           // go_goroutines on /metrics; -1 when not exposed
	Series     int           // sample lines on /metrics
	Revisions  int           // distinct revision labels on /metrics
	Children   int           // live child processes (the replicas)
	Zombies    int           // children exited and not reaped
	LogDirs    int           // revision log folders of the app
	StoreBytes int64         // state.db with its -wal
	// Done and Failed are the load's answers (and failures) completed in
	// the interval since the previous sample; Rate is Done per second.
	Done, Failed int64
	Rate         float64
}

// sampler reads lastgood's /proc entries, its /metrics and its data
// directory every interval.
type sampler struct {
	pid       int
	base      string
	data, app string
	agg       *aggregate
	start     time.Time
	samples   []sample
}

func (s *sampler) run(ctx context.Context, every time.Duration, progress io.Writer) {
	t := time.NewTicker(every)
	defer t.Stop()
	hc := &http.Client{Timeout: 2 * time.Second}
	var lastDone, lastFailed int64
	last := time.Now()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		x := s.read(ctx, hc)
		done, failed := s.agg.totals()
		x.Done, x.Failed = done-lastDone, failed-lastFailed
		x.Rate = float64(x.Done) / now.Sub(last).Seconds()
		lastDone, lastFailed, last = done, failed, now
		s.samples = append(s.samples, x)
		if n%12 == 11 {
			fmt.Fprintf(progress, "soak bench: %s RSS %.1f MiB, %d fds, %d threads, %d goroutines, %d children, %.0f req/s, %d failed in total\n",
				x.At.Round(time.Second), float64(x.RSS)/(1<<20), x.FDs, x.Threads, x.Goroutines, x.Children, x.Rate, failed)
		}
	}
}

func (s *sampler) read(ctx context.Context, hc *http.Client) sample {
	x := sample{At: time.Since(s.start), RSS: -1, FDs: -1, Threads: -1, Goroutines: -1, Series: -1, Revisions: -1, Children: -1, LogDirs: -1, StoreBytes: -1}
	if m, err := harness.ReadMemory(s.pid); err == nil {
		x.RSS = m.RSS
	}
	if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", s.pid)); err == nil {
		x.FDs = len(ents)
	}
	x.Threads = statusInt(s.pid, "Threads")
	x.Goroutines, x.Series, x.Revisions = scrape(ctx, hc, s.base)
	if kids, err := harness.Children(s.pid); err == nil {
		x.Children = len(harness.Alive(kids))
		x.Zombies = len(kids) - x.Children
	}
	if ents, err := os.ReadDir(filepath.Join(s.data, "logs", s.app)); err == nil {
		x.LogDirs = len(ents)
	}
	var size int64 = -1
	for _, f := range []string{"state.db", "state.db-wal"} {
		if fi, err := os.Stat(filepath.Join(s.data, f)); err == nil {
			size = max(size, 0) + fi.Size()
		}
	}
	x.StoreBytes = size
	return x
}

// statusInt reads an integer field of /proc/PID/status, -1 when it cannot.
func statusInt(pid int, key string) int {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && k == key {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				return -1
			}
			return n
		}
	}
	return -1
}

// scrape reads lastgood's /metrics: go_goroutines (-1 when the series is
// not there: lastgood's registry need not hold the Go collector), the
// number of sample lines and of distinct revision labels; all -1 when the
// scrape fails.
func scrape(ctx context.Context, hc *http.Client, base string) (goroutines, series, revisions int) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return -1, -1, -1
	}
	res, err := hc.Do(req)
	if err != nil {
		return -1, -1, -1
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return -1, -1, -1
	}
	return parseMetrics(res.Body)
}

// parseMetrics reads Prometheus text: the go_goroutines value (-1 when
// absent), the sample lines and the distinct values of revision labels.
func parseMetrics(r io.Reader) (goroutines, series, revisions int) {
	goroutines = -1
	revs := map[string]bool{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		series++
		if v, ok := strings.CutPrefix(line, "go_goroutines "); ok {
			if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
				goroutines = int(f)
			}
		}
		if _, rest, ok := strings.Cut(line, `revision="`); ok {
			if v, _, ok := strings.Cut(rest, `"`); ok {
				revs[v] = true
			}
		}
	}
	return goroutines, series, len(revs)
}
