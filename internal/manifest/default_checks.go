package manifest

// Route counting: router.routes.
const (
	// DefaultRoutes is how many path templates the router counts apart
	// when router.routes is not written.
	DefaultRoutes = 20
	// MaxRoutes bounds router.routes.
	MaxRoutes = 100
)

// The default checks' tolerances (docs/manifest.md, "Default checks").
const (
	DefaultErrorIncrease     = "0.01" // errors: pooled error rate, one percentage point
	DefaultStatusMixIncrease = "0.02" // status-mix: each of 3xx, 4xx, 5xx, two points of share
	DefaultLatencyIncrease   = "50ms" // latency: p99
	DefaultRouteIncrease     = "0.05" // routes: each route's error rate, five points
)

// DefaultChecks are the checks a canary or blue-green rollout of the
// local engine gets when its manifest has no analysis section: the
// router's own signal, compared live with the stable revision, one α
// shared among them.
func DefaultChecks() []Check {
	return []Check{
		{Name: "errors", Compare: &Compare{Metric: "errorRate", MaxIncrease: DefaultErrorIncrease}},
		{Name: "status-mix", Compare: &Compare{Metric: "statusMix", MaxIncrease: DefaultStatusMixIncrease}},
		{Name: "latency", Compare: &Compare{Metric: "latencyP99", MaxIncrease: DefaultLatencyIncrease}},
		{Name: "routes", Compare: &Compare{Metric: "errorRate", MaxIncrease: DefaultRouteIncrease, PerRoute: true}},
	}
}

// setDefaultChecks gives a canary or blue-green manifest of the local
// engine DefaultChecks when it has no analysis section, or one with
// `default: true` and no checks. `analysis: {checks: []}` keeps none.
// The Kubernetes engine has no router counters to compare, and a rolling
// update has no canary to compare them with.
func (a *App) setDefaultChecks(w written) {
	if a.Strategy.Rolling != nil || a.Kubernetes != nil || a.Image != "" {
		return
	}
	switch {
	case a.Analysis == nil:
		a.Analysis = &Analysis{Default: true}
	case a.Analysis.Default && !w("analysis.checks"):
	default:
		return
	}
	a.Analysis.Checks = DefaultChecks()
}
