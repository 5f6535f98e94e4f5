// Command reserve measures what the store's reserve buys on a full disk:
// how many rollback-shaped transactions it records once the disk is full,
// and how long the first write on the full disk takes (it fails, gives the
// reserve up and runs again), against an ordinary write and against a
// write that simply fails — the wait before the controller moves traffic
// back without the record (docs/decisions.md). It mounts a tmpfs for each
// case (run it as root) and prints a Markdown report
// (bench/reserve/RESULTS.md holds one):
//
//	go run ./bench/reserve [-worn 3000] [-rounds 5] [-rate 200]
//
// With -rounds above 0 it also rolls a failing canary back on a full disk
// with a real `lastgood serve`, with and without the reserve, and reports
// how soon traffic left the canary.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/lastgood/lastgood/bench/internal/harness"
	"github.com/lastgood/lastgood/internal/store"
)

func main() {
	worn := flag.Int("worn", 3000, "rollback-shaped writes before the disk fills, for the worn database")
	rounds := flag.Int("rounds", 5, "end-to-end rounds with and without the reserve (0: none)")
	rate := flag.Float64("rate", 200, "requests per second of the end-to-end load")
	flag.Parse()
	if err := run(*worn); err != nil {
		fmt.Fprintln(os.Stderr, "reserve:", err)
		os.Exit(1)
	}
	if *rounds > 0 {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		rs, err := e2e(ctx, *rounds, *rate)
		if err != nil {
			fmt.Fprintln(os.Stderr, "reserve:", err)
			os.Exit(1)
		}
		reportE2E(rs, *rate)
	}
}

// result is one case.
type result struct {
	reserve    int64
	worn       bool
	recorded   int           // rollbacks recorded after the disk filled
	first      time.Duration // the first write on the full disk (release and retry)
	ordinary   time.Duration // median ordinary write before the disk filled
	failed     time.Duration // median failed write once nothing is left
	walBytes   int64         // state.db-wal when the disk filled
	stateBytes int64
}

func run(worn int) error {
	var results []result
	for _, w := range []bool{false, true} {
		for _, r := range []int64{1 << 20, 4 << 20, 8 << 20, 16 << 20} {
			res, err := measure(r, w, worn)
			if err != nil {
				return err
			}
			results = append(results, res)
			fmt.Fprintf(os.Stderr, "reserve %d MiB worn=%v: %d recorded\n", r>>20, w, res.recorded)
		}
	}
	report(results, worn)
	return nil
}

func measure(reserve int64, worn bool, wornWrites int) (result, error) {
	res := result{reserve: reserve, worn: worn}
	disk, err := os.MkdirTemp("", "lastgood-reserve-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(disk)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=96m", "tmpfs", disk).CombinedOutput(); err != nil {
		return res, fmt.Errorf("mount a tmpfs (run as root): %v: %s", err, out)
	}
	defer exec.Command("umount", "-l", disk).Run()
	dir := filepath.Join(disk, "data")
	s, err := store.OpenDir(dir, store.DirOptions{Reserve: reserve})
	if err != nil {
		return res, err
	}
	defer s.Close()
	ctx := context.Background()
	ro, err := seed(ctx, s)
	if err != nil {
		return res, err
	}
	n := 0
	write := func() error { n++; return s.Update(ctx, rollbackShaped(ro, n)) }
	writes := 50
	if worn {
		writes = wornWrites
	}
	var times []time.Duration
	for range writes {
		t0 := time.Now()
		if err := write(); err != nil {
			return res, err
		}
		times = append(times, time.Since(t0))
	}
	res.ordinary = median(times[len(times)-50:])
	res.walBytes = size(filepath.Join(dir, store.DBFile+"-wal"))
	res.stateBytes = size(filepath.Join(dir, store.DBFile))
	if err := fill(filepath.Join(disk, "fill")); err != nil {
		return res, err
	}
	t0 := time.Now()
	if err := write(); err != nil {
		return res, fmt.Errorf("the first write on the full disk, with a %d-byte reserve: %w", reserve, err)
	}
	res.first = time.Since(t0)
	res.recorded = 1
	for {
		err := write()
		if err == nil {
			res.recorded++
			continue
		}
		if !store.IsFull(err) {
			return res, err
		}
		break
	}
	times = times[:0]
	for range 20 {
		t0 := time.Now()
		if err := write(); err == nil || !store.IsFull(err) {
			return res, fmt.Errorf("want the disk full, got %v", err)
		}
		times = append(times, time.Since(t0))
	}
	res.failed = median(times)
	return res, nil
}

// seed makes an app with two revisions and a promoted rollout that the
// writes keep rolling back (the store allows a promoted rollout to be
// rolled back; it does not judge how often).
func seed(ctx context.Context, s *store.Store) (store.Rollout, error) {
	var ro store.Rollout
	err := s.Update(ctx, func(tx *store.Tx) error {
		if err := tx.PutApp(store.App{Name: "web", Listen: "127.0.0.1:8080"}); err != nil {
			return err
		}
		for i := range 2 {
			if _, err := tx.CreateRevision(store.Revision{App: "web", Digest: fmt.Sprintf("sha256:%064x", i+1),
				Manifest: json.RawMessage(`{"name":"web"}`), Source: "name: web\n", Origin: store.OriginApply}); err != nil {
				return err
			}
		}
		var err error
		ro, err = tx.CreateRollout(store.Rollout{App: "web", From: 1, To: 2, Strategy: "canary", Phase: store.PhasePromoted, Trigger: "apply"})
		return err
	})
	return ro, err
}

// rollbackShaped writes what the controller writes to roll a rollout
// back: the rollout's state (1.5 KB), the app, and three events with 1.2
// KB of evidence each.
func rollbackShaped(ro store.Rollout, i int) func(tx *store.Tx) error {
	return func(tx *store.Tx) error {
		ro.Phase, ro.Trigger, ro.Reason = store.PhaseRolledBack, "analysis", fmt.Sprintf("check errors failed (%d)", i)
		ro.State = json.RawMessage(fmt.Sprintf(`{"phase":"rolled-back","i":%d,"pad":%q}`, i, strings.Repeat("s", 1500)))
		if err := tx.UpdateRollout(ro); err != nil {
			return err
		}
		if err := tx.PutApp(store.App{Name: ro.App, Listen: "127.0.0.1:8080", Stable: 1}); err != nil {
			return err
		}
		for _, typ := range []string{"analysis.verdict", "rollout.rolled-back", "traffic.weight"} {
			if _, err := tx.AppendEvent(store.Event{App: ro.App, Rollout: ro.ID, Revision: 2, Type: typ,
				Message: fmt.Sprintf("%s %d", typ, i), Data: json.RawMessage(fmt.Sprintf(`{"evidence":%q}`, strings.Repeat("e", 1200)))}); err != nil {
				return err
			}
		}
		return nil
	}
}

func fill(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for _, n := range []int{64 << 10, 4096, 1} {
		for {
			if _, err := f.Write(buf[:n]); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					return err
				}
				break
			}
		}
	}
	return nil
}

func size(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func report(rs []result, worn int) {
	fmt.Printf("# The store's reserve on a full disk\n\n")
	fmt.Printf("Run %s with `go run ./bench/reserve` (as root: each case mounts a 96 MiB tmpfs).\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	harness.WriteMachine(os.Stdout)
	fmt.Printf("A rollback-shaped transaction is what the controller writes when it rolls a rollout back: the rollout's state (1.5 KB), the app, and three events with 1.2 KB of evidence each. *Young*: a new database with 50 of them written; *worn*: %d written, so that the write-ahead log has reached its working size and been checkpointed many times. Then the disk is filled, and the store writes rollbacks until it fails.\n\n", worn)
	fmt.Println("| reserve | database | rollbacks recorded after the disk filled | first write on the full disk (fails, gives the reserve up, runs again) | ordinary write, median | failed write once nothing is left, median | WAL / state.db when the disk filled |")
	fmt.Println("|---|---|---|---|---|---|---|")
	for _, r := range rs {
		state := "young"
		if r.worn {
			state = "worn"
		}
		fmt.Printf("| %d MiB | %s | %d | %s | %s | %s | %s / %s |\n", r.reserve>>20, state, r.recorded,
			r.first.Round(time.Microsecond), r.ordinary.Round(time.Microsecond), r.failed.Round(time.Microsecond),
			mib(r.walBytes), mib(r.stateBytes))
	}
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
