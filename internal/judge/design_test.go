package judge

import (
	"math/rand/v2"
	"testing"
)

// TestDesignEffect: buckets of independent requests measure no design
// effect; buckets of sessions whose clients differ measure about the
// variance inflation the clustering causes; too few buckets tell nothing.
func TestDesignEffect(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	independent := make([]Counts, 64)
	clustered := make([]Counts, 64)
	for s := range 3000 {
		p := 0.005
		if rng.Float64() < 0.1 {
			p = 0.1
		}
		for range 40 {
			b := &clustered[s%64]
			b.Requests++
			if rng.Float64() < p {
				b.Errors++
			}
			ib := &independent[rng.IntN(64)]
			ib.Requests++
			if rng.Float64() < p {
				ib.Errors++
			}
		}
	}
	if phi := DesignEffect(independent); phi > 1.5 {
		t.Errorf("independent requests: design effect %.3g, want about 1", phi)
	}
	// Sessions of 40 requests with intra-class correlation about 0.057:
	// 1 + 39·0.057 ≈ 3.2, and the estimate is an upper bound.
	if phi := DesignEffect(clustered); phi < 2.5 || phi > 8 {
		t.Errorf("clustered requests: design effect %.3g, want about 3–6", phi)
	}
	if phi := DesignEffect(clustered[:4]); phi != 1 {
		t.Errorf("4 buckets: design effect %.3g, want 1 (too few to tell)", phi)
	}
	if phi := DesignEffect([]Counts{{10, 0}, {10, 0}}, nil); phi != 1 {
		t.Errorf("no errors: %v, want 1", phi)
	}
}

func TestDeflated(t *testing.T) {
	var d Deflated
	if got := d.Step(Counts{100, 10}, 2); got != (Counts{50, 5}) {
		t.Errorf("first step = %+v, want {50 5}", got)
	}
	if got := d.Step(Counts{200, 10}, 4); got != (Counts{75, 5}) {
		t.Errorf("second step = %+v, want {75 5}: new requests at the new design effect", got)
	}
	if got := d.Step(Counts{20, 2}, 1); got != (Counts{95, 7}) {
		t.Errorf("after a reset = %+v, want {95 7}: counted on, never backwards", got)
	}
}
