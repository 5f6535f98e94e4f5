package server

import (
	"errors"
	"fmt"

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
func kubernetesBackend(cfg Config, k *kubernetesSetup) (*backend, error) {
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
		announce:  func(ev store.Event) { eng.Announce(ev.App, ev.Revision, ev.Type, ev.Message, ev.Time) },
		evidence:  eng.Evidence,
	}, nil
}
