package manifest

import "net"

func (v *validator) strategy(a *App) {
	s := a.Strategy
	if set := setNames([]string{"blueGreen", "canary", "rolling"},
		[]bool{s.BlueGreen != nil, s.Canary != nil, s.Rolling != nil}); len(set) > 1 {
		v.fail("strategy", "set only one of blueGreen, canary and rolling; got %s", list(set))
	}
	if b := s.BlueGreen; b != nil && b.Preview != "" {
		v.hostPort("strategy.blueGreen.preview", b.Preview)
		if sameAddress(b.Preview, a.Listen) {
			v.fail("strategy.blueGreen.preview", "must differ from listen (%s): the new revision answers here before promotion", a.Listen)
		}
	}
	if c := s.Canary; c != nil {
		v.canary(c)
		v.match(c.Match, a.SessionAffinity)
	}
	if r := s.Rolling; r != nil {
		v.replicaCount("strategy.rolling.maxSurge", r.MaxSurge)
		v.replicaCount("strategy.rolling.maxUnavailable", r.MaxUnavailable)
		if r.MaxSurge.Value == 0 && r.MaxUnavailable.Value == 0 {
			v.fail("strategy.rolling", "maxSurge and maxUnavailable cannot both be 0: no replica could ever be replaced")
		}
	}
}

// sameAddress reports whether two listen addresses would collide.
func sameAddress(a, b string) bool {
	ha, pa, errA := net.SplitHostPort(a)
	hb, pb, errB := net.SplitHostPort(b)
	if errA != nil || errB != nil || pa != pb {
		return false
	}
	ip := func(h string) net.IP {
		if h == "localhost" {
			return net.IPv4(127, 0, 0, 1)
		}
		return net.ParseIP(h)
	}
	ia, ib := ip(ha), ip(hb)
	if ia == nil || ib == nil {
		return ha == hb
	}
	return ia.Equal(ib) || ia.IsUnspecified() || ib.IsUnspecified()
}

func (v *validator) replicaCount(path string, n IntOrPercent) {
	switch {
	case n.Percent && (n.Value < 0 || n.Value > 100):
		v.fail(path, "must be between 0%% and 100%%, got %s", n)
	case !n.Percent:
		v.between(path, n.Value, 0, maxReplicas)
	}
}

func (v *validator) canary(c *Canary) {
	if len(c.Steps) == 0 {
		v.fail("strategy.canary.steps", "at least one step is required, like - setWeight: 10")
	}
	lastWeight, lastStep := -1, -1
	for i, step := range c.Steps {
		path := index("strategy.canary.steps", i)
		switch set := setNames([]string{"setWeight", "analyze", "pause"},
			[]bool{step.SetWeight != nil, step.Analyze != nil, step.Pause != nil}); len(set) {
		case 0:
			v.fail(path, "set one of setWeight, analyze and pause")
		case 1:
		default:
			v.fail(path, "set only one of setWeight, analyze and pause in a step; got %s", list(set))
		}
		if w := step.SetWeight; w != nil {
			switch {
			case *w < 0 || *w > 100:
				v.between(path+".setWeight", *w, 0, 100)
			case *w <= lastWeight:
				v.fail(path+".setWeight", "must be greater than %d, the weight set by steps[%d]; weights only go up", lastWeight, lastStep)
			default:
				lastWeight, lastStep = *w, i
			}
		}
		if an := step.Analyze; an != nil {
			v.positive(path+".analyze.for", an.For)
			if an.MaxWait < an.For {
				v.fail(path+".analyze.maxWait", "must be at least for (%s), got %s", an.For, an.MaxWait)
			}
		}
		if p := step.Pause; p != nil {
			v.notNegative(path+".pause.for", p.For)
		}
	}
}
