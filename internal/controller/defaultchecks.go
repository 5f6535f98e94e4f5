package controller

import (
	"strings"

	"github.com/lastgood/lastgood/internal/manifest"
)

// defaultChecks names the checks of m when they are lastgood's defaults
// (the manifest had no analysis section), nil otherwise.
func defaultChecks(m *manifest.App) []string {
	if m == nil || m.Analysis == nil || !m.Analysis.Default {
		return nil
	}
	var names []string
	for _, c := range m.Analysis.Checks {
		names = append(names, c.Name)
	}
	return names
}

// defaultChecksNote is what apply says of a rollout judged by the
// default checks: which they are and how to turn them off.
func defaultChecksNote(m *manifest.App) string {
	names := defaultChecks(m)
	if names == nil {
		return ""
	}
	return "; no analysis section: judged by lastgood's default checks (" + strings.Join(names, ", ") +
		", one α) — write `analysis: {checks: []}` to turn them off"
}

// noChecks reports a manifest whose rollouts no analysis check judges:
// no analysis section where there are no default checks (an engine
// without lastgood's router, such as Kubernetes), or an empty list.
func noChecks(m *manifest.App) bool {
	return m != nil && (m.Analysis == nil || len(m.Analysis.Checks) == 0)
}

// noChecksNote is what apply says of a canary or blue-green rollout that
// no check judges: only the replicas' health can roll it back.
func noChecksNote(m *manifest.App) string {
	if !noChecks(m) {
		return ""
	}
	why := "analysis has no checks"
	if m.Analysis == nil {
		why = "no analysis section, and no default checks here (they compare lastgood's router counters, which this engine has not)"
	}
	return "; " + why + ": judged only by the replicas' health (" + HealthRules + "); add prometheus or webhook checks to judge more"
}

// HealthRules are the rules that roll a release back whatever its
// analysis, as status and apply name them.
const HealthRules = "ready within rollback.progressDeadline, no crash loop, an image or command that can run"
