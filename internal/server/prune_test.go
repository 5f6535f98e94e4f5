package server

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"
)

// TestPrunedRevisionsTakeTheirLogsAndMetricsAlong applies more revisions
// than `history` keeps, each serving requests: only the kept revisions
// keep a log folder and /metrics series, the counters of the live ones
// never go back, and a restart removes the folders of revisions the store
// no longer has (left by an older lastgood, or by a crash).
func TestPrunedRevisionsTakeTheirLogsAndMetricsAlong(t *testing.T) {
	data := t.TempDir()
	in := start(t, data)
	a := newApp(t, "pruned")
	const applies = 8
	var before float64
	for i := 1; i <= applies; i++ {
		p := a.manifestWith(t, 1, blueGreen, fmt.Sprintf("V: %q", strconv.Itoa(i)), "history: 2\n")
		if i == applies {
			before = metricsOf(t, in)[7]
		}
		in.applyWait(t, p)
		// The router switches right after the promotion is recorded; then
		// the revision serves three requests.
		served := 0
		waitFor(t, 10*time.Second, fmt.Sprintf("revision %d to serve 3 requests", i), func() bool {
			if rev, _ := get(t, a.listen); rev == i {
				served++
			}
			return served == 3
		})
	}
	// history: 2 keeps 7 and 8, and 6, the warm previous revision.
	kept := []int{6, 7, 8}
	// A pruned revision's replicas may still be stopping: its folder goes
	// once they have stopped.
	waitFor(t, 20*time.Second, "the log folders of the kept revisions only", func() bool {
		return slices.Equal(logFolders(t, filepath.Join(data, "logs", "pruned")), kept)
	})
	series := metricsOf(t, in)
	var revs []int
	for rev := range series {
		revs = append(revs, rev)
	}
	slices.Sort(revs)
	if !slices.Equal(revs, kept) {
		t.Errorf("/metrics has request series of revisions %v, want %v", revs, kept)
	}
	if series[7] < before || series[7] < 3 || before < 3 {
		t.Errorf("revision 7 counted %v requests after the prune, %v before: a live revision's counter went back", series[7], before)
	}

	// Folders of revisions the store does not have, left behind: a pruned
	// revision of a known app, an unknown app. A restart removes them and
	// nothing else.
	in.stop()
	for _, dir := range []string{"logs/pruned/2", "logs/ghost/1"} {
		if err := os.MkdirAll(filepath.Join(data, dir), 0o755); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(data, dir, "x-0.log"), []byte("old\n"), 0o644)
	}
	os.WriteFile(filepath.Join(data, "logs", "pruned", "notes.txt"), []byte("mine\n"), 0o644)
	in = start(t, data)
	if got := logFolders(t, filepath.Join(data, "logs", "pruned")); !slices.Equal(got, kept) {
		t.Errorf("after a restart: log folders %v, want %v", got, kept)
	}
	if got := logFolders(t, filepath.Join(data, "logs", "ghost")); len(got) != 0 {
		t.Errorf("after a restart: the unknown app keeps log folders %v", got)
	}
	if _, err := os.Stat(filepath.Join(data, "logs", "pruned", "notes.txt")); err != nil {
		t.Errorf("a file that is no revision's folder was removed: %v", err)
	}
}

// logFolders lists the revision folders in dir.
func logFolders(t *testing.T, dir string) []int {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []int
	for _, e := range entries {
		if n, err := strconv.Atoi(e.Name()); err == nil && e.IsDir() {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

var requestSeries = regexp.MustCompile(`^lastgood_requests_total\{app="pruned",code="2xx",revision="(\d+)"\} (\S+)$`)

// metricsOf scrapes /metrics and returns the 2xx requests per revision.
func metricsOf(t *testing.T, in *instance) map[int]float64 {
	t.Helper()
	res, err := http.Get(in.c.Base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	out := map[int]float64{}
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		if m := requestSeries.FindStringSubmatch(sc.Text()); m != nil {
			rev, _ := strconv.Atoi(m[1])
			out[rev], _ = strconv.ParseFloat(m[2], 64)
		}
	}
	return out
}

// TestStateDatabaseIsPrivate: state.db holds the real env values of every
// revision, so lastgood keeps it (and its WAL files) to its own user, also
// when an older one left it readable by all.
func TestStateDatabaseIsPrivate(t *testing.T) {
	data := t.TempDir()
	in := start(t, data)
	a := newApp(t, "private")
	in.applyWait(t, a.manifest(t, 1, blueGreen, "DB_PASSWORD: hunter2"))
	check := func(when string) {
		for _, name := range []string{"state.db", "state.db-wal"} {
			fi, err := os.Stat(filepath.Join(data, name))
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("%s: %s has mode %v, want 0600", when, name, fi.Mode().Perm())
			}
		}
	}
	check("first start")
	in.stop()
	os.Chmod(filepath.Join(data, "state.db"), 0o644)
	os.Chmod(filepath.Join(data, "state.db-wal"), 0o644)
	start(t, data)
	check("restart after a chmod 0644")
}
