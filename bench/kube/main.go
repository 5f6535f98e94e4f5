// Command kube measures the Kubernetes engine on the project's test
// cluster (scripts/kube-cluster.sh: a real kube-apiserver with kwok, which
// it starts and stops itself):
//
//   - rollback time, over -rollbacks rounds: a blue-green release of web
//     (2 replicas) is promoted, then `lastgood undo` returns to the
//     previous revision, still warm. Measured from the undo request (the
//     decision: lastgood decides and records it while answering) to the
//     Service web selecting the restored revision on the API server (a
//     watch), and to every ready endpoint of web's EndpointSlices being a
//     pod of the restored revision;
//
//   - cost with -apps apps (1 replica each, one blue-green first release,
//     no analysis) on a fresh `lastgood serve` each: CPU seconds and time
//     to bring them all up, CPU seconds over an idle minute after (the
//     steady reconcile cost), and lastgood's RSS.
//
//     go run ./bench/kube [-rollbacks 50] [-apps 100,1000] [-idle 60s] [-out FILE]
//
// lastgood runs as its own process (`lastgood serve --engine kubernetes`),
// so its CPU and memory are its own.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	coreclient "k8s.io/client-go/kubernetes/typed/core/v1"
	discoveryclient "k8s.io/client-go/kubernetes/typed/discovery/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/lastgood/lastgood/bench/internal/harness"
	"github.com/lastgood/lastgood/bench/internal/stats"
	"github.com/lastgood/lastgood/internal/api"
	"github.com/lastgood/lastgood/internal/controller"
	"github.com/lastgood/lastgood/internal/strategy"
)

const digest = "registry.test/web@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func main() {
	rollbacks := flag.Int("rollbacks", 50, "rollbacks to time")
	appsFlag := flag.String("apps", "100,1000", "app counts for the cost runs, comma-separated")
	idle := flag.Duration("idle", time.Minute, "idle period measured after the apps are up")
	out := flag.String("out", "", "write the report here too")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var counts []int
	for _, s := range strings.Split(*appsFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "kube bench: -apps %q: want counts like 100,1000\n", *appsFlag)
			os.Exit(2)
		}
		counts = append(counts, n)
	}
	report, err := run(ctx, *rollbacks, counts, *idle)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kube bench:", err)
		os.Exit(1)
	}
	fmt.Print(report)
	if *out != "" {
		if err := os.WriteFile(*out, []byte(report), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "kube bench:", err)
			os.Exit(1)
		}
	}
}

type bench struct {
	root, kubeconfig, script string
	bins                     harness.Binaries
	core                     coreclient.CoreV1Interface
	disc                     discoveryclient.DiscoveryV1Interface
}

func run(ctx context.Context, rollbacks int, counts []int, idle time.Duration) (string, error) {
	root, err := os.MkdirTemp("", "lastgood-kube-bench-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(root)
	b := &bench{root: root}
	b.script, _ = filepath.Abs("scripts/kube-cluster.sh")
	env := append(os.Environ(), "LASTGOOD_KUBE_RUN="+filepath.Join(root, "cluster"))
	started := time.Now()
	fmt.Fprintln(os.Stderr, "kube bench: starting the test cluster")
	up := exec.CommandContext(ctx, b.script, "up")
	up.Env, up.Stdout, up.Stderr = env, os.Stderr, os.Stderr
	if err := up.Run(); err != nil {
		return "", fmt.Errorf("%s up: %w", b.script, err)
	}
	clusterUp := time.Since(started)
	defer func() {
		down := exec.Command(b.script, "down")
		down.Env, down.Stdout, down.Stderr = env, os.Stderr, os.Stderr
		down.Run()
	}()
	b.kubeconfig = filepath.Join(root, "cluster", "admin.kubeconfig")
	rc, err := clientcmd.BuildConfigFromFlags("", b.kubeconfig)
	if err != nil {
		return "", err
	}
	rc.QPS, rc.Burst = 200, 400
	if b.core, err = coreclient.NewForConfig(rc); err != nil {
		return "", err
	}
	if b.disc, err = discoveryclient.NewForConfig(rc); err != nil {
		return "", err
	}
	fmt.Fprintln(os.Stderr, "kube bench: building lastgood")
	if b.bins, err = harness.Build(ctx, root); err != nil {
		return "", err
	}

	var r strings.Builder
	fmt.Fprintf(&r, "## bench/kube (%s UTC)\n\n", time.Now().UTC().Format("2006-01-02 15:04"))
	fmt.Fprintf(&r, "Machine: %d CPUs (runtime.NumCPU), %s; load average at start %s; cluster up in %s.\n\n", runtime.NumCPU(), runtime.Version(), harness.LoadAverage(), clusterUp.Round(time.Second))
	if rollbacks > 0 {
		obj, eps, err := b.rollbacks(ctx, rollbacks)
		if err != nil {
			return r.String(), err
		}
		ms := func(xs []float64, p float64) string { return fmt.Sprintf("%.0f ms", stats.Percentile(xs, p/100)) }
		fmt.Fprintf(&r, "Rollback (undo to the warm previous revision, blue-green, 2 replicas), %d rounds:\n\n| from the undo request to | p50 | p99 | max |\n|---|---|---|---|\n", len(obj))
		fmt.Fprintf(&r, "| Service web selects the restored revision (API server, watch) | %s | %s | %s |\n", ms(obj, 50), ms(obj, 99), ms(obj, 100))
		fmt.Fprintf(&r, "| every ready endpoint of web's EndpointSlices on the restored revision | %s | %s | %s |\n\n", ms(eps, 50), ms(eps, 99), ms(eps, 100))
	}
	if len(counts) > 0 {
		fmt.Fprintf(&r, "Cost (1 replica per app, one blue-green first release each, no analysis; a fresh lastgood per row):\n\n| apps | all up in | lastgood CPU to bring up | CPU per idle minute | RSS after | peak RSS |\n|---|---|---|---|---|---|\n")
		for _, n := range counts {
			c, err := b.cost(ctx, n, idle)
			if err != nil {
				return r.String(), err
			}
			fmt.Fprintf(&r, "| %d | %s | %.1f s | %.2f s | %.1f MiB | %.1f MiB |\n", n, c.up.Round(time.Second), c.upCPU.Seconds(),
				c.idleCPU.Seconds()*float64(time.Minute)/float64(idle), float64(c.mem.RSS)/(1<<20), float64(c.mem.HWM)/(1<<20))
		}
		fmt.Fprintf(&r, "\nLoad average at the end %s.\n", harness.LoadAverage())
	}
	return r.String(), nil
}

// serve starts lastgood on namespace ns.
func (b *bench) serve(ctx context.Context, ns string) (*harness.Server, *api.Client, error) {
	if _, err := b.core.Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return nil, nil, err
	}
	dir := filepath.Join(b.root, ns)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, err
	}
	s, err := harness.StartServeArgs(ctx, b.bins.Lastgood, filepath.Join(dir, "data"), filepath.Join(dir, "serve.log"),
		"--engine", "kubernetes", "--kubeconfig", b.kubeconfig, "--namespace", ns)
	if err != nil {
		return nil, nil, fmt.Errorf("%w\n%s", err, harness.Tail(filepath.Join(dir, "serve.log"), 20))
	}
	return s, &api.Client{Base: s.Base}, nil
}

func (b *bench) apply(ctx context.Context, c *api.Client, name, manifest string) (controller.ApplyResult, error) {
	p := filepath.Join(b.root, name+".yaml")
	if err := os.WriteFile(p, []byte(manifest), 0o644); err != nil {
		return controller.ApplyResult{}, err
	}
	return c.ApplyFile(ctx, p)
}

// webManifest is a blue-green app; the progress deadline is long, since
// on a loaded machine kwok may take minutes to mark a thousand pods ready.
func webManifest(name string, replicas, round int) string {
	return fmt.Sprintf("name: %s\nimage: %s\nreplicas: %d\nstrategy: {blueGreen: {}}\nrollback: {window: 30m, progressDeadline: 15m}\nkubernetes: {env: {ROUND: %q}}\n",
		name, digest, replicas, strconv.Itoa(round))
}

// rollbacks times n undos to the warm previous revision.
func (b *bench) rollbacks(ctx context.Context, n int) (obj, eps []float64, err error) {
	const ns = "rollback"
	s, c, err := b.serve(ctx, ns)
	if err != nil {
		return nil, nil, err
	}
	defer s.Stop()
	for round := 1; round <= n+1; round++ {
		res, err := b.apply(ctx, c, "web", webManifest("web", 2, round))
		if err != nil {
			return nil, nil, err
		}
		if err := harness.WaitPromoted(ctx, c, "web", res.Rollout); err != nil {
			return nil, nil, err
		}
		if round == 1 {
			continue
		}
		st, err := c.App(ctx, "web")
		if err != nil {
			return nil, nil, err
		}
		// The warm previous revision: the newest other one with pods.
		warm := map[string]bool{}
		prev := 0
		for _, r := range st.Replicas {
			if r.Revision != st.Stable && !r.Stopping && r.Revision > prev {
				prev = r.Revision
			}
		}
		for _, r := range st.Replicas {
			if r.Revision == prev && !r.Stopping {
				warm[r.ID] = true
			}
		}
		if len(warm) == 0 {
			return nil, nil, fmt.Errorf("round %d: no warm revision beside %d", round, st.Stable)
		}
		o, e, err := b.undo(ctx, c, ns, st.Stable, warm)
		if err != nil {
			return nil, nil, fmt.Errorf("round %d: %w", round, err)
		}
		obj, eps = append(obj, o), append(eps, e)
		fmt.Fprintf(os.Stderr, "kube bench: rollback %d/%d: service %.0f ms, endpoints %.0f ms\n", round-1, n, o, e)
	}
	return obj, eps, nil
}

// undo asks for an undo and times, from the request, the Service web
// selecting the restored revision and web's ready endpoints all being the
// warm pods.
func (b *bench) undo(ctx context.Context, c *api.Client, ns string, stable int, warm map[string]bool) (svcMs, epsMs float64, err error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	// Start from a settled promotion: web selects the stable revision and
	// none of its ready endpoints is a warm pod any more.
	var svc *corev1.Service
	var slices *discoveryv1.EndpointSliceList
	for {
		if svc, err = b.core.Services(ns).Get(ctx, "web", metav1.GetOptions{}); err != nil {
			return 0, 0, err
		}
		if slices, err = b.disc.EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=web"}); err != nil {
			return 0, 0, err
		}
		ready, onWarm := 0, 0
		for _, s := range slices.Items {
			for _, ep := range s.Endpoints {
				if ep.Conditions.Ready != nil && *ep.Conditions.Ready && ep.TargetRef != nil {
					ready++
					if warm[ep.TargetRef.Name] {
						onWarm++
					}
				}
			}
		}
		if svc.Spec.Selector["lastgood.dev/revision"] == strconv.Itoa(stable) && ready > 0 && onWarm == 0 {
			break
		}
		if err := harness.Sleep(ctx, 50*time.Millisecond); err != nil {
			return 0, 0, fmt.Errorf("revision %d's promotion did not settle: %w", stable, err)
		}
	}
	sw, err := b.core.Services(ns).Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=web", ResourceVersion: svc.ResourceVersion})
	if err != nil {
		return 0, 0, err
	}
	defer sw.Stop()
	ew, err := b.disc.EndpointSlices(ns).Watch(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=web", ResourceVersion: slices.ResourceVersion})
	if err != nil {
		return 0, 0, err
	}
	defer ew.Stop()
	var restored int
	var mu sync.Mutex
	var svcAt, epsAt time.Time
	var wg sync.WaitGroup
	before := svc.Spec.Selector["lastgood.dev/revision"]
	wg.Go(func() {
		for ev := range sw.ResultChan() {
			s, ok := ev.Object.(*corev1.Service)
			if !ok || ev.Type != watch.Modified {
				continue
			}
			if s.Spec.Selector["lastgood.dev/revision"] != before {
				mu.Lock()
				svcAt = time.Now()
				mu.Unlock()
				return
			}
		}
	})
	wg.Go(func() {
		cur := map[string]*discoveryv1.EndpointSlice{}
		for i := range slices.Items {
			cur[slices.Items[i].Name] = &slices.Items[i]
		}
		for ev := range ew.ResultChan() {
			es, ok := ev.Object.(*discoveryv1.EndpointSlice)
			if !ok {
				continue
			}
			if ev.Type == watch.Deleted {
				delete(cur, es.Name)
			} else {
				cur[es.Name] = es
			}
			ready, all := 0, true
			for _, s := range cur {
				for _, ep := range s.Endpoints {
					if ep.Conditions.Ready == nil || !*ep.Conditions.Ready || ep.TargetRef == nil {
						continue
					}
					ready++
					all = all && warm[ep.TargetRef.Name]
				}
			}
			if ready > 0 && all {
				mu.Lock()
				epsAt = time.Now()
				mu.Unlock()
				return
			}
		}
	})
	t0 := time.Now()
	res, err := c.Action(ctx, "web", "undo", api.ActionRequest{})
	if err != nil {
		cancel()
		wg.Wait()
		return 0, 0, err
	}
	restored = res.Revision
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if svcAt.IsZero() || epsAt.IsZero() {
		return 0, 0, fmt.Errorf("undo to revision %d: service switched %v, endpoints %v (timed out)", restored, !svcAt.IsZero(), !epsAt.IsZero())
	}
	if err := harness.WaitPromoted(ctx, c, "web", res.Rollout); err != nil {
		return 0, 0, err
	}
	return float64(svcAt.Sub(t0).Microseconds()) / 1000, float64(epsAt.Sub(t0).Microseconds()) / 1000, nil
}

type cost struct {
	up             time.Duration
	upCPU, idleCPU time.Duration
	mem            harness.Memory
}

// cost brings n apps up on a fresh lastgood and measures it.
func (b *bench) cost(ctx context.Context, n int, idle time.Duration) (cost, error) {
	ns := fmt.Sprintf("scale-%d", n)
	s, c, err := b.serve(ctx, ns)
	if err != nil {
		return cost{}, err
	}
	defer s.Stop()
	var out cost
	cpu, err := harness.StartCPU(s.PID())
	if err != nil {
		return out, err
	}
	start := time.Now()
	names := make(chan string)
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for name := range names {
				if _, err := b.apply(ctx, c, name, webManifest(name, 1, 1)); err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		})
	}
	for i := range n {
		names <- fmt.Sprintf("a%04d", i)
	}
	close(names)
	wg.Wait()
	select {
	case err := <-errs:
		return out, err
	default:
	}
	fmt.Fprintf(os.Stderr, "kube bench: %d apps applied in %s\n", n, time.Since(start).Round(time.Second))
	for {
		apps, err := c.Apps(ctx)
		if err != nil {
			return out, err
		}
		done, ended := 0, 0
		for _, a := range apps {
			if a.Rollout != nil && strategy.Phase(a.Rollout.Phase).Final() {
				ended++
			}
			if a.Stable == 1 && a.Rollout != nil && a.Rollout.Phase == string(strategy.Promoted) {
				ready := 0
				for _, r := range a.Replicas {
					if r.Ready {
						ready++
					}
				}
				if ready == 1 {
					done++
				}
			}
		}
		if done == n {
			break
		}
		if ended == n {
			return out, fmt.Errorf("%d apps: every first release ended, but only %d are up (the others rolled back)", n, done)
		}
		if time.Since(start) > 30*time.Minute {
			return out, fmt.Errorf("%d apps: %d up after 30 minutes", n, done)
		}
		if err := harness.Sleep(ctx, 2*time.Second); err != nil {
			return out, err
		}
	}
	out.up = time.Since(start)
	if err := cpu.Stop(); err != nil {
		return out, err
	}
	out.upCPU = cpu.Lastgood
	fmt.Fprintf(os.Stderr, "kube bench: %d apps up in %s, lastgood CPU %s\n", n, out.up.Round(time.Second), out.upCPU)
	if cpu, err = harness.StartCPU(s.PID()); err != nil {
		return out, err
	}
	if err := harness.Sleep(ctx, idle); err != nil {
		return out, err
	}
	if err := cpu.Stop(); err != nil {
		return out, err
	}
	out.idleCPU = cpu.Lastgood
	if out.mem, err = harness.ReadMemory(s.PID()); err != nil {
		return out, err
	}
	s.Stop()
	// The namespace goes with everything in it.
	bg := metav1.DeletePropagationBackground
	if err := b.core.Namespaces().Delete(ctx, ns, metav1.DeleteOptions{PropagationPolicy: &bg}); err != nil && !errors.Is(err, context.Canceled) {
		return out, err
	}
	return out, nil
}
