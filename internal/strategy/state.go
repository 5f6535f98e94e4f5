// Package strategy is the pure core of a rollout: blue-green, canary and
// rolling as functions of (spec, state, observation) → new state. It does no
// I/O, reads no clock and starts no goroutine; the controller persists each
// new State before it carries out what Desired says.
package strategy

import (
	"errors"
	"time"

	"github.com/lastgood/lastgood/internal/manifest"
)

// Phase is where a rollout stands.
type Phase string

// The phases of a rollout. Promoted, RolledBack and Aborted are final.
const (
	Progressing Phase = "progressing"
	Paused      Phase = "paused"
	Promoted    Phase = "promoted"
	RolledBack  Phase = "rolled-back"
	Aborted     Phase = "aborted"
)

// Final reports whether the rollout has ended.
func (p Phase) Final() bool { return p == Promoted || p == RolledBack || p == Aborted }

// Kinds of rollout. Initial is the first release of an app (nothing to
// return to); Undo is a return to earlier content, switched like an
// auto-promoting blue-green and judged like one (see State.Instant).
const (
	Initial   = "initial"
	BlueGreen = "blueGreen"
	Canary    = "canary"
	Rolling   = "rolling"
	Undo      = "undo"
)

// Why a rollout paused.
const (
	PauseManual  = "manual"  // lastgood pause
	PausePromote = "promote" // waiting for lastgood promote
	// PauseUnhealthy holds a rollout whose stable revision, the one a
	// rollback would return to, is itself unhealthy (target.go).
	PauseUnhealthy = "target-unhealthy"
)

// Triggers of a rollback or abort.
const (
	TriggerProgressDeadline = "progressDeadline"
	TriggerAbort            = "abort"
	TriggerRestart          = "restart"
	TriggerAnalysis         = "analysis"  // a check failed
	TriggerNoData           = "noData"    // checks lacked data at maxWait and onNoData is fail
	TriggerCrashLoop        = "crashLoop" // the new revision's replicas keep exiting
	TriggerLiveness         = "liveness"  // … because they fail their liveness probe
	TriggerReadiness        = "readiness" // no replica of the promoted revision is ready
	// TriggerUnrunnable: a replica of the new revision can never start,
	// whatever one waits (its image cannot be pulled).
	TriggerUnrunnable = "unrunnable"
)

// CrashLoopRestarts is how many restarts of the new revision's replicas,
// summed over its replicas during the rollout and its rollback window (and
// across restarts of lastgood), make a crash loop. Inside the window fewer
// do: as many as the revision has replicas (see WindowRestarts).
const CrashLoopRestarts = 3

// StartAllowance is the part of the readiness grace after a restart of
// lastgood that is not the readiness probe's own: the time a replica may
// take to start before its probe can pass.
const StartAllowance = 10 * time.Second

// What rollback.onNoData says to do when checks still lack data at an
// analyze step's maxWait.
const (
	NoDataWait = "wait" // keep analyzing until every check has data
	NoDataPass = "pass" // go on as if they had passed
	NoDataFail = "fail" // roll back
)

// Errors returned by the actions.
var (
	ErrFinished  = errors.New("rollout has already ended")
	ErrNoPromote = errors.New("nothing to promote")
	ErrNotPaused = errors.New("rollout is not paused")
)

// Spec is what a rollout needs from the new revision's manifest.
type Spec struct {
	Replicas         int
	Strategy         manifest.Strategy
	ProgressDeadline time.Duration
	Window           time.Duration
	// Checks is the number of analysis checks; OnNoData is rollback.onNoData.
	Checks   int
	OnNoData string
	// Holdback is rollback.holdback: the percent of traffic kept on the
	// warm previous revision through the window after a promotion.
	Holdback int
	// ReadinessGrace is how long the promoted revision's replicas may take
	// to become ready again after a restart of lastgood inside the rollback
	// window before the window's readiness rule applies; SpecOf takes it
	// from the manifest with the function of the same name.
	ReadinessGrace time.Duration
}

// SpecOf takes a Spec from a defaulted manifest.
func SpecOf(a *manifest.App) Spec {
	return Spec{
		Replicas:         a.Replicas,
		Strategy:         a.Strategy,
		ProgressDeadline: a.Rollback.ProgressDeadline.D(),
		Window:           a.Rollback.Window.D(),
		Checks:           checks(a),
		OnNoData:         a.Rollback.OnNoData,
		Holdback:         a.Rollback.HoldbackPercent(),
		ReadinessGrace:   ReadinessGrace(a),
	}
}

// ReadinessGrace is how long a replica of a may take to become ready once
// started: the readiness probe's initial delay, then a period for each
// pass it needs (successThreshold) and each failure it forgives
// (failureThreshold), plus StartAllowance; never more than the progress
// deadline, which bounds the same wait during a rollout.
func ReadinessGrace(a *manifest.App) time.Duration {
	g := StartAllowance
	if p := a.Probes.Readiness; p != nil {
		g += p.InitialDelay.D() + time.Duration(p.SuccessThreshold+p.FailureThreshold)*p.Period.D()
	}
	if d := a.Rollback.ProgressDeadline.D(); d > 0 && g > d {
		g = d
	}
	return g
}

func checks(a *manifest.App) int {
	if a.Analysis == nil {
		return 0
	}
	return len(a.Analysis.Checks)
}

// State is the persisted state of one rollout from revision From to To.
type State struct {
	Kind  string `json:"kind"`
	From  int    `json:"from"` // 0 for the first release
	To    int    `json:"to"`
	Phase Phase  `json:"phase"`
	// PauseReason says why Phase is Paused: PauseManual or PausePromote.
	PauseReason string `json:"pauseReason,omitempty"`
	// PhaseBeforePause is restored by Resume.
	PausedAt time.Time `json:"pausedAt,omitempty"`
	// Step is the index of the current canary step; len(steps) is the final
	// scale-up to full weight.
	Step        int       `json:"step"`
	StepStarted time.Time `json:"stepStarted"`
	// FromReplicas and ToReplicas are the desired replica counts.
	FromReplicas int `json:"fromReplicas"`
	ToReplicas   int `json:"toReplicas"`
	// Weight is the percent of traffic on To (blue-green, canary, undo).
	// Rolling and initial rollouts route by ready replicas instead.
	Weight int `json:"weight"`
	// PromoteRequested makes a blue-green rollout switch once ready.
	PromoteRequested bool `json:"promoteRequested,omitempty"`
	// Progressed is the last time the rollout made progress; the progress
	// deadline counts from it while replicas are awaited.
	Progressed time.Time `json:"progressed"`
	// LastReady is To's ready count when Progressed was last set.
	LastReady int       `json:"lastReady"`
	Started   time.Time `json:"started"`
	Ended     time.Time `json:"ended,omitempty"`
	// WarmUntil is when the previous revision stops after promotion.
	WarmUntil time.Time `json:"warmUntil,omitempty"`
	// Holdback is the percent of traffic that stays on the warm previous
	// revision through the window after a promotion (rollback.holdback),
	// set at promotion; 0 for none.
	Holdback int    `json:"holdback,omitempty"`
	Trigger  string `json:"trigger,omitempty"`
	Reason   string `json:"reason,omitempty"`
	// NoDataWait is set while an analyze step waits past its maxWait for
	// checks that lack data (onNoData: wait).
	NoDataWait bool `json:"noDataWait,omitempty"`
	// InWindow is set on a rollback decided during the rollback window,
	// after the rollout had been promoted.
	InWindow bool `json:"inWindow,omitempty"`
	// Restarts counts the restarts of To's replicas during the rollout and
	// its window, kept across restarts of lastgood (whose engine starts
	// counting from 0 again); RestartsSeen is the engine's count at the
	// last observation, from which the next one's new restarts are told.
	// PromotedRestarts is Restarts at promotion.
	Restarts         int `json:"restarts,omitempty"`
	RestartsSeen     int `json:"restartsSeen,omitempty"`
	PromotedRestarts int `json:"promotedRestarts,omitempty"`
	// Recovered is when lastgood restarted inside this rollout's rollback
	// window, until a replica of To is ready again: until then, and for at
	// most Spec.ReadinessGrace, no ready replica is not a failure.
	Recovered time.Time `json:"recovered,omitempty"`

	// Instant marks an undo to the warm previous stable revision: the
	// classic return to the last known good, switched at once; its checks
	// judge it in the window after the switch. Any other undo waits, like
	// a blue-green switch, for every check to look at the ready revision.
	Instant bool `json:"instant,omitempty"`
	// FromRestartsBefore is the restarts of From's replicas when the
	// rollout started: only restarts since count against it. (An undo
	// that adopts running replicas starts RestartsSeen at theirs.)
	FromRestartsBefore int `json:"fromRestartsBefore,omitempty"`
	// TargetTrouble is what was found wrong with From, the revision a
	// rollback returns to, when a rollout.target-unhealthy event was
	// raised (once per rollout).
	TargetTrouble string `json:"targetTrouble,omitempty"`
	// TargetBoth says the new revision was found degraded too: both
	// revisions degraded together.
	TargetBoth bool `json:"targetBoth,omitempty"`
	// HoldOverridden is set when a person resumed or promoted a rollout
	// held for an unhealthy target: it is not held again.
	HoldOverridden bool `json:"holdOverridden,omitempty"`
	// TrafficSeen is To's router request count at TrafficAt, the last
	// look at which it had grown; NoTraffic is set while an analyze step
	// waits with no request to To (reported once).
	TrafficSeen uint64    `json:"trafficSeen,omitempty"`
	TrafficAt   time.Time `json:"trafficAt,omitzero"`
	NoTraffic   bool      `json:"noTraffic,omitempty"`
}

// Count is what the controller observed of one revision's replicas.
type Count struct {
	Running int // started and not being stopped
	Ready   int
	// Restarts sums the restarts of the revision's replicas that this
	// engine runs (a restart of lastgood starts again from 0); LastExit is
	// how the latest one to exit ended ("exit status 1", "killed after
	// failing its liveness probe").
	Restarts int
	LastExit string
	// Unrunnable, when set, says why a replica of the revision can never
	// start ("ImagePullBackOff: …"); it rolls the rollout back at once.
	Unrunnable string
	// Requests is the router's request count of the revision since it
	// first took traffic (0 when not known).
	Requests uint64
}

// Observation is what the controller saw at Now.
type Observation struct {
	Now  time.Time
	From Count
	To   Count
	// Checks are the latest verdicts of the rollout's analysis checks, one
	// per check that has been looked at (none before the first look).
	Checks []Check
	// Health is what the error rates of both revisions say against the
	// stable's own history.
	Health Health
	// Watching is when the controller began to observe (its last start):
	// after a restart every replica starts again, so a wait for readiness
	// counts from then at the earliest.
	Watching time.Time
}

// Health is the outcome of the one-sample tests of both revisions' error
// rates since the rollout began against the stable revision's rate before
// it (internal/analysis.Degraded). Each is empty when the revision is not
// shown degraded, and says why in words when it is.
type Health struct {
	From, To string
}

// Check is the latest verdict of one analysis check.
type Check struct {
	Name    string
	Verdict string // pass, fail or inconclusive
	// Data reports whether the check saw enough to count at the end of an
	// analyze step (a pass, a failure, or an inconclusive test with a
	// reasonable sample).
	Data   bool
	Reason string
	// At is when the look was taken.
	At time.Time
}

// The verdicts of a check.
const (
	Pass         = "pass"
	Fail         = "fail"
	Inconclusive = "inconclusive"
)

// Event is a transition worth recording in the event log. Data, when set,
// is stored with it.
type Event struct {
	Type    string
	Message string
	Data    any
}

// Plan is the world a State asks for.
type Plan struct {
	Replicas map[int]int // desired replicas per revision
	// Weights are traffic shares per revision. When ByReady is set, traffic
	// is split per ready replica instead and Weights is nil.
	Weights map[int]int
	ByReady bool
	// Preview is the revision served on the blue-green preview address, 0
	// for none.
	Preview int
	// Holdback is the revision that keeps a holdback share of the traffic
	// through the window after a promotion, 0 for none. Its share is a
	// sample of requests, not of clients: the router sends it requests
	// by weight alone, whatever their affinity cookie, and pins no client
	// to it.
	Holdback int
}

// Desired returns the world that s asks for.
func Desired(s State) Plan {
	p := Plan{Replicas: map[int]int{}}
	if s.From > 0 {
		p.Replicas[s.From] = s.FromReplicas
	}
	if s.To > 0 && s.To != s.From {
		p.Replicas[s.To] = s.ToReplicas
	}
	switch {
	case s.Phase == RolledBack || s.Phase == Aborted:
		if s.Kind == Rolling {
			p.ByReady = true
		} else if s.From > 0 {
			p.Weights = map[int]int{s.From: 100}
		}
	case s.Phase == Promoted && s.Holdback > 0 && s.From > 0 && s.FromReplicas > 0:
		// Inside the window: a concurrent baseline for the checks.
		p.Weights = map[int]int{s.To: 100 - s.Holdback, s.From: s.Holdback}
		p.Holdback = s.From
	case s.Phase == Promoted:
		p.Weights = map[int]int{s.To: 100}
	case s.Kind == Rolling || s.Kind == Initial:
		p.ByReady = true
	default:
		p.Weights = map[int]int{s.To: s.Weight}
		if s.From > 0 && s.Weight < 100 {
			p.Weights[s.From] = 100 - s.Weight
		}
	}
	if s.Kind == BlueGreen && !s.Phase.Final() {
		p.Preview = s.To
	}
	return p
}
