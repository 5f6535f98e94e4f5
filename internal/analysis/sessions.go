package analysis

import (
	"context"
	"fmt"
	"time"

	"github.com/lastgood/lastgood/internal/judge"
)

// clustered corrects a compare check's error counts for session
// affinity: when the samples carry session buckets (the router counts
// them only with affinity on), it measures the design effect of the two
// revisions' buckets at each look (judge.DesignEffect) and hands the
// check effective counts (judge.Deflated) instead of raw ones. Latency
// histograms are passed as they are: the buckets count errors, not
// latencies, so the latency tests are not corrected (docs/manifest.md).
type clustered struct {
	src    Sources
	target Target
	defl   map[int]*judge.Deflated
	phi    float64
}

func (c *clustered) samples(app string) map[int]judge.Sample {
	all := c.src.Samples(app)
	can, st := all[c.target.Canary], all[c.target.Stable]
	if len(can.Sessions) == 0 && len(st.Sessions) == 0 {
		c.phi = 0
		return all
	}
	c.phi = judge.DesignEffect(bucketCounts(st.Sessions), bucketCounts(can.Sessions))
	if c.defl == nil {
		c.defl = map[int]*judge.Deflated{}
	}
	out := make(map[int]judge.Sample, len(all))
	for rev, s := range all {
		d := c.defl[rev]
		if d == nil {
			d = &judge.Deflated{}
			c.defl[rev] = d
		}
		eff := d.Step(judge.Counts{Requests: s.Requests, Errors: min(s.Errors, s.Requests)}, c.phi)
		s.Requests, s.Errors = eff.Requests, eff.Errors
		out[rev] = s
	}
	return out
}

func bucketCounts(bs []judge.Sample) []judge.Counts {
	out := make([]judge.Counts, len(bs))
	for i, b := range bs {
		out[i] = judge.Counts{Requests: b.Requests, Errors: b.Errors}
	}
	return out
}

// clusteredCheck is a compare check fed by a clustered source; it says
// in its evidence what the correction did.
type clusteredCheck struct {
	checker
	c *clustered
}

func (k *clusteredCheck) look(ctx context.Context, at time.Time) Result {
	r := k.checker.look(ctx, at)
	if k.c.phi > 0 {
		r.Evidence.Warnings = append(r.Evidence.Warnings, fmt.Sprintf(
			"session affinity: requests are clustered by session; error counts divided by the measured design effect %.3g (effective sample sizes; Rao & Scott 1981)", k.c.phi))
	}
	return r
}

// affinityCorrected returns a compare check on src whose error counts are
// corrected for session affinity, built by mk from the corrected source.
func affinityCorrected(src Sources, t Target, m judge.Metric, mk func(Sources) checker) checker {
	if _, latency := m.Quantile(); latency {
		return mk(src)
	}
	c := &clustered{src: src, target: t}
	return &clusteredCheck{checker: mk(Sources{Replicas: src.Replicas, Samples: c.samples}), c: c}
}
