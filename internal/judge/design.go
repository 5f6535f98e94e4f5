package judge

import "math"

// Clustered requests. With session affinity every request of a client
// goes to the revision the client was given, so requests are not
// independent: clients differ, and a revision's error count varies more
// than a binomial count of its requests would. The two-sample tests here
// assume independent requests; fed clustered counts they fail identical
// revisions more often than α.
//
// The correction is Rao & Scott's (1981, JASA 76(374)): measure the
// design effect φ — the ratio of the count's actual variance to the
// binomial one — and divide the counts by it, so that the test sees the
// effective sample size (Kish 1965). The router counts each revision's
// requests in session buckets (whole sessions per bucket), and φ is
// Pearson's dispersion of the buckets' error counts around their
// revision's rate (McCullagh & Nelder 1989, §4.5): X²/df, pooled over
// both revisions. It is a plug-in estimate, raised to an upper
// confidence bound so that a noisy estimate errs on the side of fewer
// false rollbacks; bench/affinity measures the result.

// minDesignDF is how many degrees of freedom (buckets beyond one per
// revision) the estimate needs; with fewer, DesignEffect returns 1.
const minDesignDF = 8

// DesignEffect returns the design effect of the buckets of each
// revision: Pearson's X²/df over every bucket, each compared with its own
// revision's rate, raised to the 90% upper confidence bound of X²/df
// (Wilson–Hilferty), and never below 1. It returns 1 when the buckets
// cannot tell (fewer than minDesignDF degrees of freedom, or no
// revision with both errors and successes).
func DesignEffect(revisions ...[]Counts) float64 {
	var x2 float64
	df := 0
	for _, buckets := range revisions {
		var n, e uint64
		used := 0
		for _, b := range buckets {
			if b.Requests > 0 {
				n += b.Requests
				e += min(b.Errors, b.Requests)
				used++
			}
		}
		if n == 0 || e == 0 || e == n || used < 2 {
			continue
		}
		p := float64(e) / float64(n)
		for _, b := range buckets {
			if b.Requests == 0 {
				continue
			}
			exp := float64(b.Requests) * p
			d := float64(min(b.Errors, b.Requests)) - exp
			x2 += d * d / (exp * (1 - p))
		}
		df += used - 1
	}
	if df < minDesignDF {
		return 1
	}
	k := float64(df)
	// The 10% quantile of χ²(k), Wilson–Hilferty: X²/q10 bounds φ from
	// above with 90% confidence.
	const z10 = -1.2815515655446004
	c := 2 / (9 * k)
	q10 := k * math.Pow(1-c+z10*math.Sqrt(c), 3)
	return max(1, x2/q10)
}

// Deflated turns cumulative counts of clustered requests into cumulative
// effective counts: each look's new requests and errors are divided by
// the design effect of that look and added up. The result never goes
// backwards, as the tests need; a count that did go backwards (a reset)
// is taken as new from zero.
type Deflated struct {
	last       Counts
	effN, effX float64
}

// Step adds the counts since the previous Step at design effect phi (≥ 1)
// and returns the effective cumulative counts.
func (d *Deflated) Step(cum Counts, phi float64) Counts {
	phi = max(phi, 1)
	dn, dx := cum.Requests, cum.Errors
	if d.last.before(cum) {
		dn, dx = cum.Requests-d.last.Requests, cum.Errors-d.last.Errors
	}
	d.last = cum
	d.effN += float64(dn) / phi
	d.effX += float64(dx) / phi
	return Counts{Requests: uint64(d.effN), Errors: min(uint64(d.effX), uint64(d.effN))}
}
