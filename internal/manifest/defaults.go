package manifest

import (
	"math"
	"net/textproto"
	"slices"
	"time"

	"github.com/lastgood/lastgood/internal/signal/journey"
	"github.com/lastgood/lastgood/internal/signal/webhook"
)

// The defaults applied to fields the manifest leaves out. docs/manifest.md
// lists the same values; keep the two in step. A field that is written is
// never defaulted, even when written as 0: "window: 0s" turns the rollback
// window off, "replicas: 0" is an error.
const (
	defaultReplicas         = 1
	defaultProbePeriod      = Duration(time.Second)
	defaultProbeTimeout     = Duration(time.Second) // but never above the period
	defaultFailureThreshold = 3
	defaultSuccessThreshold = 1
	defaultMaxAge           = Duration(24 * time.Hour)         // sessionAffinity.maxAge
	defaultInterval         = Duration(time.Second)            // analysis.interval
	defaultRouterInterval   = Duration(100 * time.Millisecond) // analysis.routerInterval
	defaultAlpha            = 0.01                             // analysis.alpha
	defaultWebhookTimeout   = Duration(webhook.DefaultTimeout)
	defaultJourneyTimeout   = Duration(journey.DefaultTimeout)
	defaultJourneyMethod    = "GET"
	defaultJourneyStatus    = 200
	defaultProgressDeadline = Duration(2 * time.Minute)
	defaultWindow           = Duration(10 * time.Minute)
	defaultOnNoData         = "wait"
	// DefaultHoldback is rollback.holdback when the manifest has compare
	// checks and does not set it (bench/window measured the choice).
	DefaultHoldback = Share(10)
	defaultHistory  = 10
	defaultFormat   = FormatCloudEvents // notifications[].format
	// router.*: the same as internal/router's Default* constants.
	defaultResponseTimeout = Duration(30 * time.Second)
	defaultMaxConnections  = 4096
	defaultHeaderTimeout   = Duration(10 * time.Second)
	defaultBodyTimeout     = Duration(5 * time.Minute)
	defaultBodyIdleTimeout = Duration(30 * time.Second)
	defaultIdleTimeout     = Duration(2 * time.Minute)
)

// defaultEvents are the event types a notification is sent for when it
// lists none: the rollout went wrong, or the rollback was slower than its
// SLO.
// rollout.target-unhealthy: the revision a rollback returns to, or
// returned to, is failing too (internal/strategy/target.go).
var defaultEvents = []string{"rollout.rolled-back", "rollout.aborted", "rollout.slo-breached", "rollout.target-unhealthy"}

// written reports whether the field at a path (as in FieldError.Field) was
// given in the source.
type written func(path string) bool

// setDefaults fills in the fields that the source left out. It runs before
// validation and copes with any values, valid or not.
func (a *App) setDefaults(w written) {
	setInt(w, "replicas", &a.Replicas, defaultReplicas)
	if a.Run != nil {
		// Empty and absent are the same, so Canonical is the same too.
		if len(a.Run.Env) == 0 {
			a.Run.Env = nil
		}
		if len(a.Run.Artifacts) == 0 {
			a.Run.Artifacts = nil
		}
	}
	// Without a readiness probe, a replica is ready once its port accepts
	// connections. Without a liveness probe, nothing restarts it.
	if a.Probes.Readiness == nil {
		a.Probes.Readiness = &Probe{TCP: true}
	}
	a.Probes.Readiness.setDefaults(w, "probes.readiness")
	if a.Probes.Liveness != nil {
		a.Probes.Liveness.setDefaults(w, "probes.liveness")
	}
	// Session affinity is optional, as in Flagger: written (even as
	// `sessionAffinity: {}`), it keeps a client on one revision.
	if a.SessionAffinity != nil {
		if !w("sessionAffinity.cookieName") {
			a.SessionAffinity.CookieName = "lastgood-" + a.Name
		}
		setDuration(w, "sessionAffinity.maxAge", &a.SessionAffinity.MaxAge, defaultMaxAge)
	}
	if a.Image != "" && a.Kubernetes == nil {
		a.Kubernetes = &Kubernetes{}
	}
	if a.Kubernetes != nil {
		a.Kubernetes.setDefaults(w)
	}
	// The router section is optional: absent, the router's defaults apply
	// and the canonical form does not mention it.
	if r := a.Router; r != nil {
		setDuration(w, "router.responseTimeout", &r.ResponseTimeout, defaultResponseTimeout)
		setInt(w, "router.maxConnections", &r.MaxConnections, defaultMaxConnections)
		setDuration(w, "router.headerTimeout", &r.HeaderTimeout, defaultHeaderTimeout)
		setDuration(w, "router.bodyTimeout", &r.BodyTimeout, defaultBodyTimeout)
		setDuration(w, "router.bodyIdleTimeout", &r.BodyIdleTimeout, defaultBodyIdleTimeout)
		setDuration(w, "router.idleTimeout", &r.IdleTimeout, defaultIdleTimeout)
	}
	a.Strategy.setDefaults(w)
	a.setDefaultChecks(w)
	if a.Analysis != nil {
		a.Analysis.setDefaults(w)
	}
	setDuration(w, "rollback.progressDeadline", &a.Rollback.ProgressDeadline, defaultProgressDeadline)
	setDuration(w, "rollback.window", &a.Rollback.Window, defaultWindow)
	if !w("rollback.onNoData") {
		a.Rollback.OnNoData = defaultOnNoData
	}
	a.setHoldbackDefault(w)
	setInt(w, "history", &a.History, defaultHistory)
	if a.Database != nil {
		a.Database.setDefaults(w)
	}
	if len(a.Notifications) == 0 {
		a.Notifications = nil
	}
	for i := range a.Notifications {
		n := &a.Notifications[i]
		path := index("notifications", i)
		if !w(path + ".events") {
			n.Events = slices.Clone(defaultEvents)
		}
		if len(n.Events) == 0 {
			n.Events = nil // "events: []" is an error, reported as such
		}
		if !w(path + ".format") {
			n.Format = defaultFormat
		}
	}
}

func setInt(w written, path string, v *int, def int) {
	if !w(path) {
		*v = def
	}
}

func setDuration(w written, path string, v *Duration, def Duration) {
	if !w(path) {
		*v = def
	}
}

func (p *Probe) setDefaults(w written, path string) {
	setDuration(w, path+".period", &p.Period, defaultProbePeriod)
	timeout := defaultProbeTimeout
	if p.Period > 0 && p.Period < timeout {
		timeout = p.Period
	}
	setDuration(w, path+".timeout", &p.Timeout, timeout)
	setInt(w, path+".failureThreshold", &p.FailureThreshold, defaultFailureThreshold)
	setInt(w, path+".successThreshold", &p.SuccessThreshold, defaultSuccessThreshold)
}

// setDefaults picks a rolling update of one extra replica at a time when no
// strategy is given, and fills in each strategy's own defaults.
func (s *Strategy) setDefaults(w written) {
	if s.BlueGreen == nil && s.Canary == nil && s.Rolling == nil {
		s.Rolling = &Rolling{}
	}
	if r := s.Rolling; r != nil {
		if !w("strategy.rolling.maxSurge") {
			r.MaxSurge = IntOrPercent{Value: 1}
		}
		if !w("strategy.rolling.maxUnavailable") {
			r.MaxUnavailable = IntOrPercent{}
		}
	}
	if b := s.BlueGreen; b != nil && b.AutoPromote == nil {
		yes := true
		b.AutoPromote = &yes
	}
	if c := s.Canary; c != nil {
		if len(c.Match) == 0 {
			c.Match = nil
		}
		for _, m := range c.Match {
			// Header names are case-insensitive; one spelling keeps
			// Canonical the same however they were written.
			if m.Header != nil {
				m.Header.Name = textproto.CanonicalMIMEHeaderKey(m.Header.Name)
			}
		}
		for i, step := range c.Steps {
			if an := step.Analyze; an != nil && !w(index("strategy.canary.steps", i)+".analyze.maxWait") {
				an.MaxWait = Duration(math.MaxInt64) // 3×for does not fit
				if an.For <= math.MaxInt64/3 {
					an.MaxWait = 3 * an.For
				}
			}
		}
	}
}

func (an *Analysis) setDefaults(w written) {
	setDuration(w, "analysis.interval", &an.Interval, defaultInterval)
	setDuration(w, "analysis.routerInterval", &an.RouterInterval, defaultRouterInterval)
	if !w("analysis.alpha") {
		an.Alpha = defaultAlpha
	}
	for i := range an.Checks {
		path := index("analysis.checks", i)
		if h := an.Checks[i].Webhook; h != nil {
			setDuration(w, path+".webhook.timeout", &h.Timeout, defaultWebhookTimeout)
			if len(h.Metadata) == 0 {
				h.Metadata = nil
			}
		}
		if j := an.Checks[i].Journey; j != nil {
			setDuration(w, path+".journey.timeout", &j.Timeout, defaultJourneyTimeout)
			if len(j.Steps) == 0 {
				j.Steps = nil
			}
			for k := range j.Steps {
				setJourneyStepDefaults(&j.Steps[k])
			}
		}
	}
}

// setJourneyStepDefaults spells out what the journey signal assumes for a
// step that leaves them out, so that Canonical is the same either way. An
// expectStatus written as 0 means the default there too.
func setJourneyStepDefaults(s *journey.Step) {
	if s.Method == "" {
		s.Method = defaultJourneyMethod
	}
	if s.ExpectStatus == 0 {
		s.ExpectStatus = defaultJourneyStatus
	}
	if len(s.Headers) == 0 {
		s.Headers = nil
	}
}

// setHoldbackDefault keeps DefaultHoldback of the traffic on the warm
// previous revision through the window when compare checks would judge
// it: a canary or blue-green rollout with a window and a compare check.
// Where nothing would use it (no compare check) an unwritten or zero
// holdback is left out, so that such manifests' canonical form does not
// carry it.
func (a *App) setHoldbackDefault(w written) {
	compares := false
	if a.Analysis != nil {
		for _, c := range a.Analysis.Checks {
			compares = compares || c.Compare != nil
		}
	}
	switch {
	case w("rollback.holdback") && (compares || a.Rollback.HoldbackPercent() != 0):
	case !compares:
		a.Rollback.Holdback = nil
	case a.Strategy.Rolling != nil || a.Rollback.Window == 0:
		zero := Share(0) // nothing stays warm to hold traffic back on
		a.Rollback.Holdback = &zero
	default:
		h := DefaultHoldback
		a.Rollback.Holdback = &h
	}
}
