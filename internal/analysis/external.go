package analysis

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/lastgood/lastgood/internal/judge"
	"github.com/lastgood/lastgood/internal/manifest"
	"github.com/lastgood/lastgood/internal/signal/journey"
	"github.com/lastgood/lastgood/internal/signal/logs"
	"github.com/lastgood/lastgood/internal/signal/prometheus"
	"github.com/lastgood/lastgood/internal/signal/resources"
	"github.com/lastgood/lastgood/internal/signal/webhook"
)

// promCheck runs a PromQL query and judges its number with failIf/passIf.
type promCheck struct {
	name   string
	target Target
	check  *prometheus.Check
}

func (c *promCheck) look(ctx context.Context, at time.Time) Result {
	out := c.check.Evaluate(ctx, prometheus.TemplateData{App: c.target.App, Revision: c.target.Canary, StableRevision: c.target.Stable})
	ev := judge.Evidence{Method: judge.Method{Name: "PromQL query " + out.Query}, Metric: "prometheus",
		Canary: out.Value, Effect: out.Value, PValue: 1, Warnings: out.Warnings}
	r := result(c.name, at, verdict(out.Verdict), fmt.Sprintf("result = %g", out.Value), ev)
	if out.Err != nil {
		r.Reason = fmt.Sprintf("no verdict: %v", out.Err)
		return r
	}
	r.Data = true
	return r
}

func (c *promCheck) close() { c.check.Close() }

// webhookCheck asks an external judge.
type webhookCheck struct {
	name     string
	target   Target
	hook     *webhook.Webhook
	metadata map[string]string
}

func (c *webhookCheck) look(ctx context.Context, at time.Time) Result {
	out := c.hook.Judge(ctx, webhook.Request{App: c.target.App, Revision: c.target.Canary, StableRevision: c.target.Stable,
		Rollout: c.target.Rollout, Check: c.name, Metadata: c.metadata})
	ev := judge.Evidence{Method: judge.Method{Name: "webhook " + c.hook.URL()}, Metric: "webhook", PValue: 1, Warnings: out.Warnings}
	reason := out.Reason
	if reason == "" {
		reason = fmt.Sprintf("the judge answered %s (status %d) in %s", out.Verdict, out.Status, out.Duration.Round(time.Millisecond))
	}
	r := result(c.name, at, verdict(out.Verdict), reason, ev)
	if out.Err != nil {
		r.Reason = fmt.Sprintf("no verdict: %v", out.Err)
		return r
	}
	r.Data = r.Verdict != judge.Inconclusive
	return r
}

func (c *webhookCheck) close() { c.hook.Close() }

// journeyCheck sends a synthetic journey to each ready replica of the new
// revision; one failed journey fails the check.
type journeyCheck struct {
	name    string
	src     Sources
	target  Target
	steps   []journey.Step
	timeout time.Duration
}

func (c *journeyCheck) look(ctx context.Context, at time.Time) Result {
	ev := judge.Evidence{Method: judge.Method{Name: "synthetic journey"}, Metric: "journey", PValue: 1}
	ran := 0
	for _, rep := range canaryReplicas(c.src, c.target) {
		if !rep.Ready {
			continue
		}
		ran++
		res := journey.Run(ctx, rep.Addr, c.steps, c.timeout)
		if ctx.Err() != nil {
			break
		}
		if !res.Passed && len(res.Steps) > 0 {
			st := res.Steps[len(res.Steps)-1]
			ev.CanarySamples = uint64(ran)
			r := result(c.name, at, judge.Fail, fmt.Sprintf("step %d (%s) on replica %s: %s", res.FailedStep+1, st.Name, rep.Addr, st.Err), ev)
			r.Data = true
			return r
		}
	}
	ev.CanarySamples = uint64(ran)
	if ran == 0 {
		return result(c.name, at, judge.Inconclusive, fmt.Sprintf("no ready replica of revision %d yet", c.target.Canary), ev)
	}
	r := result(c.name, at, judge.Pass, fmt.Sprintf("%d steps passed on %d replicas", len(c.steps), ran), ev)
	r.Data = true
	return r
}

func (c *journeyCheck) close() {}

// verdict reads the verdict of a Prometheus or webhook outcome; both
// packages spell them as the judge does.
func verdict(s string) judge.Verdict {
	switch s {
	case prometheus.Pass:
		return judge.Pass
	case prometheus.Fail:
		return judge.Fail
	}
	return judge.Inconclusive
}

// compile turns one manifest check into a checker. share is this check's
// part of the false-rollback budget if it is statistical.
func compile(t Target, src Sources, c manifest.Check, share float64, start time.Time) (checker, error) {
	switch {
	case c.Compare != nil && TraceMetric(c.Compare.Metric):
		return compileTrace(t, src, c.Name, c.Compare, share)
	case c.Compare != nil:
		return compileCompare(t, src, c, share)
	case c.Threshold != nil:
		j, err := thresholdOf(c.Name, c.Threshold)
		if err != nil {
			return nil, err
		}
		errs, err := compileErrorStatuses(c.Threshold.Errors)
		if err != nil {
			return nil, err
		}
		if errs != nil {
			all := src.Samples
			src.Samples = func(app string) map[int]judge.Sample {
				out := all(app)
				for rev, s := range out {
					out[rev] = errs.count(s)
				}
				return out
			}
		}
		return &thresholdCheck{src: src, target: t, judge: j, alpha: share}, nil
	case c.Prometheus != nil:
		pc, err := prometheus.Compile(*c.Prometheus, c.FailIf, c.PassIf)
		if err != nil {
			return nil, err
		}
		return &promCheck{name: c.Name, target: t, check: pc}, nil
	case c.Logs != nil:
		re, err := compileRegexp(c.Logs.Match)
		if err != nil {
			return nil, err
		}
		return &logsCheck{name: c.Name, src: src, target: t, re: re, max: c.Logs.Max, started: start, counters: map[string]*logs.Counter{}, seen: map[string]int64{}}, nil
	case c.Resources != nil:
		return &resourcesCheck{name: c.Name, src: src, target: t, limits: *c.Resources, meters: map[int]*resources.Meter{}, over: map[int]int{}}, nil
	case c.Webhook != nil:
		h, err := webhook.New(c.Webhook.URL, c.Webhook.Timeout.D())
		if err != nil {
			return nil, err
		}
		return &webhookCheck{name: c.Name, target: t, hook: h, metadata: c.Webhook.Metadata}, nil
	case c.Journey != nil:
		if err := journey.Validate(c.Journey.Steps); err != nil {
			return nil, err
		}
		return &journeyCheck{name: c.Name, src: src, target: t, steps: c.Journey.Steps, timeout: c.Journey.Timeout.D()}, nil
	}
	return nil, fmt.Errorf("no signal set (one of %s)", strings.Join(sources, ", "))
}

var sources = []string{"compare", "threshold", "prometheus", "logs", "resources", "webhook", "journey"}

func thresholdOf(name string, t *manifest.Threshold) (judge.Threshold, error) {
	m, err := judge.ParseMetric(t.Metric)
	if err != nil {
		return judge.Threshold{}, err
	}
	j := judge.Threshold{Check: name, Metric: m}
	for _, b := range []struct {
		s   string
		dst **float64
	}{{t.Max, &j.Max}, {t.Min, &j.Min}} {
		if b.s == "" {
			continue
		}
		v, err := judge.ParseValue(m, b.s)
		if err != nil {
			return judge.Threshold{}, err
		}
		*b.dst = &v
	}
	return j, j.Validate()
}
