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
