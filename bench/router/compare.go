package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// target is one way to reach the backend.
type target struct {
	name string
	url  string
	pid  int // the process that serves url (0: unknown), for CPU per request
}

// comparison is everything one compare run measured.
type comparison struct {
	Throughput map[string][]float64       // wrk requests/s per round
	Fractions  []float64                  // offered loads as fractions of nginx's max
	Latency    map[string][]loadResult    // per target, one per fraction
	CPU        map[string][]time.Duration // CPU per request of the target process, per fraction
	Config     map[string]string          // how it was measured
}

func runCompare(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	direct := fs.String("direct", "http://127.0.0.1:18081/", "backend URL")
	routerURL := fs.String("router", "http://127.0.0.1:18082/", "lastgood router URL")
	nginx := fs.String("nginx", "http://127.0.0.1:18083/", "nginx URL")
	rounds := fs.Int("rounds", 2, "wrk rounds per target (interleaved)")
	wrkFor := fs.Duration("wrk-d", 10*time.Second, "duration of each wrk run")
	threads := fs.Int("wrk-t", 2, "wrk threads")
	conns := fs.Int("wrk-c", 64, "wrk connections")
	loadFor := fs.Duration("load-d", 10*time.Second, "measured duration of each fixed-rate run")
	loadConns := fs.Int("load-c", 32, "connections of the fixed-rate generator")
	directPID := fs.Int("direct-pid", 0, "pid of the backend, to measure its CPU per request")
	routerPID := fs.Int("router-pid", 0, "pid of lastgood's router")
	nginxPID := fs.Int("nginx-pid", 0, "pid of nginx's master (its workers are counted)")
	fractions := fs.String("fractions", "0.25,0.5", "offered loads for the latency runs, as fractions of nginx's max")
	jsonOut := fs.String("json", "", "also write the raw results to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	fracs, err := parseFractions(*fractions)
	if err != nil {
		return err
	}
	targets := []target{{"direct", *direct, *directPID}, {"router", *routerURL, *routerPID}, {"nginx", *nginx, *nginxPID}}
	cmp := comparison{
		Throughput: map[string][]float64{},
		Fractions:  fracs,
		Latency:    map[string][]loadResult{},
		CPU:        map[string][]time.Duration{},
		Config: map[string]string{
			"throughput": fmt.Sprintf("wrk -t%d -c%d -d%s, %d interleaved rounds, best round", *threads, *conns, *wrkFor, *rounds),
			"latency":    fmt.Sprintf("open loop, %d keep-alive connections, %s measured after 1s warm-up, latency from each request's due time", *loadConns, *loadFor),
		},
	}
	for round := range *rounds {
		for _, t := range targets {
			rps, err := wrk(ctx, t.url, *threads, *conns, *wrkFor)
			if err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "round %d: %s max %.0f req/s\n", round+1, t.name, rps)
			cmp.Throughput[t.name] = append(cmp.Throughput[t.name], rps)
		}
	}
	nginxMax := best(cmp.Throughput["nginx"])
	for _, f := range cmp.Fractions {
		for _, t := range targets {
			before, err := processCPU(t.pid)
			if err != nil {
				return err
			}
			res, err := openLoop(ctx, loadSpec{URL: t.url, Rate: f * nginxMax, Conns: *loadConns, Duration: *loadFor, Warmup: time.Second})
			if err != nil {
				return err
			}
			after, err := processCPU(t.pid)
			if err != nil {
				return err
			}
			// The warm-up's requests are not in res.Requests: count them.
			sent := float64(res.Requests) * (loadFor.Seconds() + 1) / loadFor.Seconds()
			cmp.CPU[t.name] = append(cmp.CPU[t.name], time.Duration(float64(after-before)/sent))
			fmt.Fprintf(os.Stderr, "%.0f%% of nginx max (%.0f req/s): %s p50 %v p99 %v errors %d cpu/req %v\n",
				100*f, f*nginxMax, t.name, res.P50, res.P99, res.Errors, cmp.CPU[t.name][len(cmp.CPU[t.name])-1])
			cmp.Latency[t.name] = append(cmp.Latency[t.name], res)
		}
	}
	if *jsonOut != "" {
		data, err := json.MarshalIndent(cmp, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(*jsonOut, data, 0o644); err != nil {
			return fmt.Errorf("compare: %w", err)
		}
	}
	writeReport(os.Stdout, targets, cmp)
	return nil
}

func parseFractions(s string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		x, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || x <= 0 {
			return nil, fmt.Errorf("-fractions: %q is not a positive number", f)
		}
		out = append(out, x)
	}
	return out, nil
}

var requestsPerSec = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)

// wrk runs wrk against url and returns its requests per second.
func wrk(ctx context.Context, url string, threads, conns int, d time.Duration) (float64, error) {
	out, err := exec.CommandContext(ctx, "wrk", "-t"+strconv.Itoa(threads), "-c"+strconv.Itoa(conns),
		"-d"+strconv.Itoa(int(d.Seconds()))+"s", url).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("wrk %s: %w\n%s", url, err, out)
	}
	m := requestsPerSec.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("wrk %s: no Requests/sec in output:\n%s", url, out)
	}
	return strconv.ParseFloat(string(m[1]), 64)
}

func best(xs []float64) float64 {
	m := 0.0
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}

// writeReport prints the comparison as Markdown, with the goals checked.
func writeReport(w io.Writer, targets []target, cmp comparison) {
	fmt.Fprintf(w, "Throughput: %s. Latency: %s.\n\n", cmp.Config["throughput"], cmp.Config["latency"])
	fmt.Fprint(w, "| target | max req/s | rounds |")
	for _, f := range cmp.Fractions {
		fmt.Fprintf(w, " p50 @%.0f%% | p99 @%.0f%% |", 100*f, 100*f)
	}
	fmt.Fprint(w, " CPU/req |")
	fmt.Fprint(w, " errors |\n|---|---:|---|")
	for range cmp.Fractions {
		fmt.Fprint(w, "---:|---:|")
	}
	fmt.Fprint(w, "---:|---:|\n")
	for _, t := range targets {
		fmt.Fprintf(w, "| %s | %.0f | %s |", t.name, best(cmp.Throughput[t.name]), roundList(cmp.Throughput[t.name]))
		errs := 0
		for _, r := range cmp.Latency[t.name] {
			fmt.Fprintf(w, " %s | %s |", micros(r.P50), micros(r.P99))
			errs += r.Errors
		}
		fmt.Fprintf(w, " %s | %d |\n", cpuList(cmp.CPU[t.name]), errs)
	}
	fmt.Fprint(w, "\nOffered loads: ")
	for i, f := range cmp.Fractions {
		if i > 0 {
			fmt.Fprint(w, ", ")
		}
		fmt.Fprintf(w, "%.0f%% = %.0f req/s", 100*f, cmp.Latency["nginx"][i].Offered)
	}
	fmt.Fprint(w, ".\n\n| goal | measured | met |\n|---|---:|---|\n")
	ratio := best(cmp.Throughput["router"]) / best(cmp.Throughput["nginx"])
	goal(w, "throughput router/nginx ≥ 0.9", fmt.Sprintf("%.2f", ratio), ratio >= 0.9)
	last := len(cmp.Fractions) - 1
	p99 := float64(cmp.Latency["router"][last].P99) / float64(cmp.Latency["nginx"][last].P99)
	goal(w, fmt.Sprintf("p99 router/nginx ≤ 1.5 at %.0f%%", 100*cmp.Fractions[last]), fmt.Sprintf("%.2f", p99), p99 <= 1.5)
	for i, f := range cmp.Fractions {
		added := cmp.Latency["router"][i].P50 - cmp.Latency["direct"][i].P50
		goal(w, fmt.Sprintf("added p50 router−direct < 200µs at %.0f%%", 100*f), micros(added), added < 200*time.Microsecond)
		nginxAdded := cmp.Latency["nginx"][i].P50 - cmp.Latency["direct"][i].P50
		fmt.Fprintf(w, "| (for reference: nginx−direct p50 at %.0f%%) | %s | |\n", 100*f, micros(nginxAdded))
	}
}

// cpuList renders CPU per request at each offered load.
func cpuList(ds []time.Duration) string {
	s := ""
	for i, d := range ds {
		if i > 0 {
			s += " / "
		}
		s += micros(d)
	}
	return s
}

func goal(w io.Writer, what, measured string, met bool) {
	mark := "yes"
	if !met {
		mark = "**no**"
	}
	fmt.Fprintf(w, "| %s | %s | %s |\n", what, measured, mark)
}

func micros(d time.Duration) string {
	return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond))
}

func roundList(xs []float64) string {
	s := ""
	for i, x := range xs {
		if i > 0 {
			s += ", "
		}
		s += strconv.FormatFloat(x, 'f', 0, 64)
	}
	return s
}
