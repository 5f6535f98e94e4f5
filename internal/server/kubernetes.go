package server

import (
	"errors"
	"fmt"
	"os"

	"github.com/lastgood/lastgood/internal/artifact"
	"github.com/lastgood/lastgood/internal/controller"
	"github.com/lastgood/lastgood/internal/engine/kubernetes"
	"github.com/lastgood/lastgood/internal/incident"
	"github.com/lastgood/lastgood/internal/judge"
	"github.com/lastgood/lastgood/internal/router"
	"github.com/lastgood/lastgood/internal/store"
)

// ErrEngineConfig marks an engine that cannot be set up from what serve
// was given (a kubeconfig that cannot be read): usage, exit code 2.
var ErrEngineConfig = errors.New("engine configuration")

// kubernetesSetup is how to reach the cluster.
type kubernetesSetup struct{ cfg kubernetes.Config }

func loadKubernetes(cfg Config) (*kubernetesSetup, error) {
	kc, err := kubernetes.LoadConfig(cfg.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrEngineConfig, err)
	}
	if cfg.Namespace != "" {
		kc.Namespace = cfg.Namespace
	}
	kc.Log = cfg.Log
	return &kubernetesSetup{cfg: kc}, nil
}

// kubernetesBackend runs revisions as ReplicaSets on the cluster the
// kubeconfig (or the pod's service account) names. There is no router:
// compare and threshold checks are refused at apply, and the router's
// counters are empty.
func kubernetesBackend(cfg Config, k *kubernetesSetup, arts *artifact.Store) (*backend, error) {
	k.cfg.Artifact = func(d string) ([]byte, error) {
		p, err := arts.Path(d)
		if err != nil {
			return nil, err
		}
		return os.ReadFile(p)
	}
	eng, err := kubernetes.New(k.cfg)
	if err != nil {
		return nil, err
	}
	cfg.Log.Info("kubernetes engine", "server", k.cfg.Rest.Host, "namespace", k.cfg.Namespace)
	return &backend{
		engine:    eng,
		traffic:   eng,
		run:       eng.Run,
		changed:   eng.Changed(),
		stats:     func(string) []router.RevisionStats { return []router.RevisionStats{} },
		samples:   func(string) map[int]judge.Sample { return map[int]judge.Sample{} },
		logs:      func(string, int) []string { return nil },
		processes: func(string) []incident.Process { return nil },
		wait:      func() {},
		pruned:    eng.Prune,
		announce:  func(ev store.Event) { eng.Announce(ev.App, ev.Revision, ev.Type, ev.Message, ev.Time) },
		gitops:    func(ctl *controller.Controller) *kubernetes.GitOps { return eng.GitOps(ctl) },
		evidence:  eng.Evidence,
	}, nil
}
