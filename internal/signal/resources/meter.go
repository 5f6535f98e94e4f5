package resources

import "time"

// Rates is one observation of a process group turned into figures a check
// can compare with a bound.
type Rates struct {
	// RSS is resident memory in bytes at this observation.
	RSS int64
	// CPU is the CPU used over Interval, in cores (1.0 = one core busy the
	// whole time). It is 0 when Interval is 0.
	CPU float64
	// FDs is the number of open file descriptors at this observation.
	FDs int
	// Interval is the time since the previous observation that CPU is
	// measured over; 0 on the first observation, when there is no rate yet.
	Interval time.Duration
}

// Meter turns successive samples of one process group into rates. It holds
// only the previous observation and reads no clock, so it is a pure function
// of the samples and times it is given. Use one Meter per process group: a
// restarted replica is a new group and needs a new Meter. The zero value is
// ready to use; a Meter is not safe for concurrent use.
type Meter struct {
	prevAt  time.Time
	prevCPU time.Duration
	has     bool
}

// Observe records the sample u taken at at and returns its rates. CPU is
// the growth of u.CPU since the previous observation divided by the time
// between them. An observation not after the previous one yields no rate
// (Interval 0) and does not replace it. When u.CPU shrank (a process of the
// group exited and its time left the sum) the rate is clamped at 0 for that
// interval.
func (m *Meter) Observe(at time.Time, u Usage) Rates {
	r := Rates{RSS: u.RSS, FDs: u.FDs}
	if m.has && !at.After(m.prevAt) {
		return r
	}
	if m.has {
		r.Interval = at.Sub(m.prevAt)
		if d := u.CPU - m.prevCPU; d > 0 {
			r.CPU = d.Seconds() / r.Interval.Seconds()
		}
	}
	m.prevAt, m.prevCPU, m.has = at, u.CPU, true
	return r
}
