// Package manifest parses, defaults and validates the YAML manifest that
// describes an app, and gives it a canonical form that revisions are built
// from.
package manifest

import (
	"strconv"
	"time"

	"github.com/lastgood/lastgood/internal/flags"
	"github.com/lastgood/lastgood/internal/signal/journey"
)

// App is one app's manifest after parsing and defaulting. Field names follow
// the YAML keys (see DESIGN.md); the JSON form, produced by Canonical, is the
// content a revision's digest is computed over.
type App struct {
	Name            string           `json:"name"`
	Listen          string           `json:"listen,omitempty"`
	Replicas        int              `json:"replicas"`
	Run             *Run             `json:"run,omitempty"`
	Image           string           `json:"image,omitempty"`
	Kubernetes      *Kubernetes      `json:"kubernetes,omitempty"`
	Probes          Probes           `json:"probes"`
	SessionAffinity *SessionAffinity `json:"sessionAffinity,omitempty"`
	Router          *Router          `json:"router,omitempty"` // nil: the router's defaults
	Strategy        Strategy         `json:"strategy"`
	Analysis        *Analysis        `json:"analysis,omitempty"`
	Rollback        Rollback         `json:"rollback"`
	History         int              `json:"history"`
	// Notifications are the receivers told about the rollout's events.
	Notifications []Notification `json:"notifications,omitempty"`
	// Database is the app's database, whose migrations ride the rollout.
	Database *Database `json:"database,omitempty"`
	// Flags are the app's feature flags (docs/flags.md). They are not part
	// of a release revision: the controller takes them out before the
	// digest, and each flag has revisions of its own.
	Flags []flags.Flag `json:"flags,omitempty"`
}

// Run says how the local engine starts one replica.
type Run struct {
	// Command is exec'd directly, never through a shell. ${VAR} is expanded
	// from the replica's environment. Arguments naming an artifact are
	// replaced by the path of its stored copy.
	Command []string          `json:"command"`
	Env     map[string]string `json:"env,omitempty"`
	// Artifacts are paths as written: absolute, or relative to the
	// manifest's folder.
	Artifacts []string `json:"artifacts,omitempty"`
}

// Probes are the replica health checks. A nil Readiness is defaulted to a
// TCP probe on the replica's port; a nil Liveness means no liveness probe.
type Probes struct {
	Readiness *Probe `json:"readiness,omitempty"`
	Liveness  *Probe `json:"liveness,omitempty"`
}

// Probe is one health check against a replica. Exactly one of HTTP and TCP
// is set.
type Probe struct {
	HTTP             string   `json:"http,omitempty"` // path, e.g. /healthz; 2xx and 3xx pass
	TCP              bool     `json:"tcp,omitempty"`  // connect to the replica's port
	InitialDelay     Duration `json:"initialDelay,omitempty"`
	Period           Duration `json:"period"`
	Timeout          Duration `json:"timeout"`
	FailureThreshold int      `json:"failureThreshold"`
	SuccessThreshold int      `json:"successThreshold"`
}

// SessionAffinity keeps a client on one revision with a cookie.
type SessionAffinity struct {
	CookieName string   `json:"cookieName"`
	MaxAge     Duration `json:"maxAge"`
}

// Router bounds what the app's clients and replicas may hold of its
// router (local engine). Absent, the router's defaults apply, which are
// the defaults of these fields. docs/router.md explains each limit.
type Router struct {
	// ResponseTimeout is how long the router waits, once a request has
	// reached a replica whole, for the response to start; 0 waits for
	// ever. After it the client gets 504, and the revision a failure.
	ResponseTimeout Duration `json:"responseTimeout"`
	// MaxConnections caps the client connections open at once; beyond it
	// a connection is answered 503.
	MaxConnections int `json:"maxConnections"`
	// HeaderTimeout bounds the reading of a request head; BodyTimeout of a
	// whole request body, BodyIdleTimeout each wait for its next bytes;
	// IdleTimeout a keep-alive connection's wait for its next request.
	HeaderTimeout   Duration `json:"headerTimeout"`
	BodyTimeout     Duration `json:"bodyTimeout"`
	BodyIdleTimeout Duration `json:"bodyIdleTimeout"`
	IdleTimeout     Duration `json:"idleTimeout"`
	// Routes is how many path templates the router counts apart (the
	// busiest ones; the rest count as "other"), for perRoute compare
	// checks. 0 counts none apart; nil (not written) is DefaultRoutes,
	// and leaves the canonical form as it was before the field existed.
	// At most MaxRoutes.
	Routes *int `json:"routes,omitempty"`
}

// RouteLimit is router.routes, or its default when it is not written.
func (a *App) RouteLimit() int {
	if a.Router == nil || a.Router.Routes == nil {
		return DefaultRoutes
	}
	return *a.Router.Routes
}

// Strategy holds exactly one of its fields after defaulting.
type Strategy struct {
	BlueGreen *BlueGreen `json:"blueGreen,omitempty"`
	Canary    *Canary    `json:"canary,omitempty"`
	Rolling   *Rolling   `json:"rolling,omitempty"`
}

// Kind names the strategy in use: "blueGreen", "canary" or "rolling".
func (s Strategy) Kind() string {
	switch {
	case s.BlueGreen != nil:
		return "blueGreen"
	case s.Canary != nil:
		return "canary"
	default:
		return "rolling"
	}
}

// BlueGreen starts the new revision beside the stable one and switches all
// traffic at once.
type BlueGreen struct {
	// AutoPromote switches traffic as soon as the new revision is ready and
	// its checks pass. Defaults to true; false waits for `lastgood promote`.
	AutoPromote *bool `json:"autoPromote"`
	// Preview is an address where the new revision answers before promotion.
	Preview string `json:"preview,omitempty"`
}

// AutoPromotes reports whether the rollout switches traffic without a
// manual promote.
func (b *BlueGreen) AutoPromotes() bool { return b.AutoPromote == nil || *b.AutoPromote }

// Canary moves traffic to the new revision step by step.
type Canary struct {
	Steps []Step `json:"steps"`
	// Match sends every request that matches any of its rules to the new
	// revision for the whole rollout, whatever the step's weight, so that
	// testers can reach it on purpose. Such requests are not part of the
	// weighted split.
	Match []Match `json:"match,omitempty"`
}

// Match is one rule of Canary.Match; exactly one field is set. A request
// matches when it carries the header (or cookie) with exactly this value.
type Match struct {
	Header *NameValue `json:"header,omitempty"`
	Cookie *NameValue `json:"cookie,omitempty"`
}

// NameValue is a header or cookie and the exact value it must have. Header
// names are kept in canonical form (X-Canary); cookie names as written.
type NameValue struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Step is one canary step; exactly one field is set.
type Step struct {
	SetWeight *int     `json:"setWeight,omitempty"`
	Analyze   *Analyze `json:"analyze,omitempty"`
	Pause     *Pause   `json:"pause,omitempty"`
}

// Analyze runs the analysis checks for For; without enough data it keeps
// going until MaxWait (default 3×For), then rollback.onNoData decides.
type Analyze struct {
	For     Duration `json:"for"`
	MaxWait Duration `json:"maxWait"`
}

// Pause waits For, or for `lastgood promote` when For is zero.
type Pause struct {
	For Duration `json:"for,omitempty"`
}

// Rolling replaces replicas a few at a time.
type Rolling struct {
	MaxSurge       IntOrPercent `json:"maxSurge"`
	MaxUnavailable IntOrPercent `json:"maxUnavailable"`
}

// IntOrPercent is a replica count (1) or a share of replicas ("25%").
type IntOrPercent struct {
	Value   int
	Percent bool
}

// Analysis lists the checks that judge a new revision.
type Analysis struct {
	// Interval is how often checks look at signals outside lastgood:
	// prometheus, webhook, journey, logs and resources. Default 1s.
	Interval Duration `json:"interval"`
	// RouterInterval is how often compare and threshold checks look at
	// lastgood's own router counters. A look costs microseconds and their
	// sequential tests stay valid however often they look. Default 100ms.
	RouterInterval Duration `json:"routerInterval"`
	// Alpha is the false-rollback budget the checks share: the chance,
	// over a whole rollout, that a revision as good as stable is rolled
	// back anyway. In (0, 0.5]; default 0.01.
	Alpha  float64 `json:"alpha"`
	Checks []Check `json:"checks"`
	// Traces says what incident bundles keep of the traces replicas send.
	Traces *Traces `json:"traces,omitempty"`
	// Default marks lastgood's default checks (DefaultChecks), filled in
	// for a canary or blue-green manifest of the local engine that has no
	// analysis section, or that sets `default: true` and no checks.
	Default bool `json:"default,omitempty"`
}

// Traces configures the trace samples of incident bundles.
type Traces struct {
	// KeepContent keeps prompt and response contents (gen_ai.input.messages,
	// tool arguments, …) in the bundle's trace samples; by default they
	// are left out. Secrets are redacted either way.
	KeepContent bool `json:"keepContent,omitempty"`
}

// Check is one rule over a signal; exactly one source field is set.
type Check struct {
	Name       string      `json:"name"`
	Compare    *Compare    `json:"compare,omitempty"`
	Threshold  *Threshold  `json:"threshold,omitempty"`
	Prometheus *Prometheus `json:"prometheus,omitempty"`
	Logs       *Logs       `json:"logs,omitempty"`
	Resources  *Resources  `json:"resources,omitempty"`
	Webhook    *Webhook    `json:"webhook,omitempty"`
	Journey    *Journey    `json:"journey,omitempty"`
	FailIf     string      `json:"failIf,omitempty"`
	PassIf     string      `json:"passIf,omitempty"`
}

// Compare compares canary with stable on a router metric.
type Compare struct {
	// Metric is a router metric, or statusMix: the shares of 3xx, 4xx
	// and 5xx responses, each compared on its own. Empty when
	// LatencyQuantile is set.
	Metric string `json:"metric,omitempty"`
	// LatencyQuantile compares this quantile of the latency (0.999 for
	// p99.9), in place of Metric.
	LatencyQuantile float64 `json:"latencyQuantile,omitempty"`
	// MaxIncrease is a number for rates ("0.01") or a duration for
	// latencies ("50ms"), kept as written. For the agent metrics it may
	// be relative to the stable's value: "20%" (docs/agents.md).
	MaxIncrease string `json:"maxIncrease"`
	// MaxDecrease is evalScore's tolerance, how much lower than the
	// stable's the canary's score may be: "0.05" or "5%".
	MaxDecrease string `json:"maxDecrease,omitempty"`
	// Name is the evaluation evalScore compares (gen_ai.evaluation.name).
	Name string `json:"name,omitempty"`
	// PerRoute runs the comparison on each path template the router
	// counts apart (router.routes) and on the rest, sharing the check's α.
	PerRoute bool `json:"perRoute,omitempty"`
	// Errors names the statuses errorRate counts; nil counts 5xx (and
	// requests that got no whole answer).
	Errors *ErrorStatuses `json:"errors,omitempty"`
}

// MetricName is the metric as Evidence names it: Metric, or
// latencyQuantile=Q.
func (c *Compare) MetricName() string {
	if c.LatencyQuantile != 0 {
		return "latencyQuantile=" + strconv.FormatFloat(c.LatencyQuantile, 'g', -1, 64)
	}
	return c.Metric
}

// ErrorStatuses are the response statuses an error rate counts: classes
// ("5xx") and codes ("404"). Requests that got no whole answer (the
// replica could not be reached, its answer was cut short) always count.
type ErrorStatuses struct {
	Status []string `json:"status"`
}

// Threshold compares a metric of the new revision with bounds.
type Threshold struct {
	Metric string `json:"metric"`
	Max    string `json:"max,omitempty"`
	Min    string `json:"min,omitempty"`
	// Errors names the statuses errorRate counts, as in Compare.
	Errors *ErrorStatuses `json:"errors,omitempty"`
}

// Prometheus runs a PromQL query; FailIf/PassIf on the check judge result.
type Prometheus struct {
	Address string `json:"address"`
	Query   string `json:"query"`
}

// Logs counts replica log lines matching a regular expression.
type Logs struct {
	Match string `json:"match"`
	Max   int    `json:"max"`
}

// Resources bounds per-revision process resources.
type Resources struct {
	MaxRSS Size    `json:"maxRSS,omitempty"`
	MaxCPU float64 `json:"maxCPU,omitempty"` // cores
	MaxFDs int     `json:"maxFDs,omitempty"`
}

// Webhook asks an external judge for the verdict: lastgood POSTs the
// rollout's context (with Metadata) to URL and takes the answer.
type Webhook struct {
	URL     string   `json:"url"`
	Timeout Duration `json:"timeout"` // per call; default 10s, at most 1m
	// Metadata is passed to the judge as written.
	Metadata map[string]string `json:"metadata,omitempty"`
}

// Journey sends a synthetic journey, a short sequence of HTTP requests,
// straight to the new revision's replicas; the check fails when a step's
// answer is not the expected one.
type Journey struct {
	// Steps run in order; the first failing step ends the journey.
	// Defaulted: method GET, expectStatus 200.
	Steps   []journey.Step `json:"steps"`
	Timeout Duration       `json:"timeout"` // the whole journey; default 10s
}

// Rollback says when lastgood returns to the stable revision by itself.
type Rollback struct {
	ProgressDeadline Duration `json:"progressDeadline"`
	Window           Duration `json:"window"`
	OnNoData         string   `json:"onNoData"` // wait | pass | fail
	// Holdback is the share of traffic kept on the warm previous revision
	// through the window after a promotion, so that compare checks go on
	// measuring both revisions at the same moments. nil when it does not
	// apply (no compare check and none written); defaulted to
	// DefaultHoldback when compare checks exist. See HoldbackPercent.
	Holdback *Share `json:"holdback,omitempty"`
	// SLO bounds how long detecting and undoing a bad revision may take;
	// nil means no objective.
	SLO *SLO `json:"slo,omitempty"`
}

// HoldbackPercent is rollback.holdback in percent of traffic, 0 for none.
func (r Rollback) HoldbackPercent() int {
	if r.Holdback == nil {
		return 0
	}
	return int(*r.Holdback)
}

// Share is a whole percentage of traffic, written "2%" (or 0 for none).
type Share int

// SLO is the objective for a rollback: a failure is to be detected within
// TimeToDetect of the new revision taking traffic, and traffic back on the
// stable revision within TimeToRollback of the detection.
type SLO struct {
	TimeToDetect   Duration `json:"timeToDetect"`
	TimeToRollback Duration `json:"timeToRollback"`
}

// Notification formats.
const (
	FormatCloudEvents = "cloudevents"
	FormatSlack       = "slack"
)

// Notification is a receiver that lastgood POSTs the app's events to.
type Notification struct {
	// URL is an http:// or https:// address.
	URL string `json:"url"`
	// Events are the event types sent, like rollout.rolled-back.
	Events []string `json:"events"`
	// Format is FormatCloudEvents (structured JSON) or FormatSlack
	// ({"text": …}).
	Format string `json:"format"`
	// Secret, when set, is the HMAC-SHA256 key of the
	// X-Lastgood-Signature header, taken as written.
	Secret string `json:"secret,omitempty"`
}

// Duration is a Go duration written as a string ("1m30s") in YAML and JSON.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Size is a byte count written as an integer or with a Ki/Mi/Gi suffix.
type Size int64
