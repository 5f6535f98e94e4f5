package analysis

import (
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/lastgood/lastgood/internal/judge"
	"github.com/lastgood/lastgood/internal/manifest"
	"github.com/lastgood/lastgood/internal/signal/prometheus"
)

// Problem is a check that cannot run, named by its manifest field path
// (analysis.checks[2].prometheus.query) so that the caller can point at
// its line.
type Problem struct {
	Field   string
	Message string
}

// Validate compiles every check of an as a rollout would — PromQL and
// failIf/passIf expressions included — and reports each problem, so that a
// manifest whose checks cannot run is refused at apply.
func Validate(an *manifest.Analysis) []Problem {
	if an == nil {
		return nil
	}
	var out []Problem
	for i, c := range an.Checks {
		path := fmt.Sprintf("analysis.checks[%d]", i)
		if c.Prometheus == nil {
			ch, err := compile(Target{}, Sources{}, c, judge.DefaultAlpha, time.Time{})
			if err != nil {
				out = append(out, Problem{path, err.Error()})
			} else {
				ch.close()
			}
			continue
		}
		pc, err := prometheus.Compile(*c.Prometheus, c.FailIf, c.PassIf)
		if err == nil {
			pc.Close()
			continue
		}
		for _, e := range unjoin(err) {
			var ce *prometheus.CompileError
			if !errors.As(e, &ce) {
				out = append(out, Problem{path + ".prometheus", e.Error()})
				continue
			}
			field := map[string]string{
				prometheus.PartAddress: ".prometheus.address", prometheus.PartTemplate: ".prometheus.query",
				prometheus.PartQuery: ".prometheus.query", prometheus.PartFailIf: ".failIf", prometheus.PartPassIf: ".passIf",
			}[ce.Part]
			out = append(out, Problem{path + field, ce.Error()})
		}
	}
	return out
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func compileRegexp(s string) (*regexp.Regexp, error) { return regexp.Compile(s) }
