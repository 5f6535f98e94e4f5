// Package incident writes the evidence bundle of every rollback and abort:
// the rollout's timeline, the analysis verdicts with the deciding one
// marked, per-revision router metric series, the tail of the failed
// revision's replica logs, the semantic manifest diff of the two revisions,
// and the figures people ask first — time to detect, time to roll back,
// blast radius, time to recover. Secrets are redacted before anything is
// written.
//
// A Recorder follows the store's event log and writes
// <data>/incidents/<id>/incident.json the moment a rollout is rolled back
// or aborted, because the failed replicas' logs may rotate away soon after.
// List and Load read the bundles back for the CLI and the API. The schema
// is documented in docs/incidents.md.
package incident

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/lastgood/lastgood/internal/manifest"
	"github.com/lastgood/lastgood/internal/revdiff"
	"github.com/lastgood/lastgood/internal/router"
	"github.com/lastgood/lastgood/internal/store"
)

// ErrNotFound means no incident has the id asked for.
var ErrNotFound = errors.New("incident not found")

// SchemaVersion is the version of incident.json this package writes.
const SchemaVersion = 1

// FileName is the bundle file inside an incident's folder.
const FileName = "incident.json"

// Kinds of incident: how the rollout ended.
const (
	KindRolledBack = "rolled-back"
	KindAborted    = "aborted"
	// KindUndone is `lastgood undo`: a manual rollback made as a new
	// rollout. Its From is the restored revision and To the one undone.
	KindUndone = "undone"
)

// Incident is the content of incident.json.
type Incident struct {
	Schema int    `json:"schema"`
	ID     string `json:"id"`
	// Aliases are earlier ids of the bundle: lastgood once named
	// incidents by the global rollout id (lt-10); they are now named by
	// the app's rollout number (lt-2), and Load finds a bundle by either.
	Aliases []string `json:"aliases,omitempty"`
	App     string   `json:"app"`
	// Rollout is the rollout's global id (GET /api/v1/rollouts/{id}).
	Rollout  int64  `json:"rollout"`
	From     int    `json:"from"`
	To       int    `json:"to"`
	Strategy string `json:"strategy"`
	// Kind is KindRolledBack or KindAborted.
	Kind    string `json:"kind"`
	Trigger string `json:"trigger"`
	Reason  string `json:"reason"`
	// Target holds what lastgood found wrong with the revision a rollback
	// returns (or returned) to: the messages of the rollout's
	// rollout.target-unhealthy events ("both revisions degraded together …").
	Target []string `json:"target,omitempty"`
	// Manual is true for `lastgood abort` and `undo`, false when lastgood
	// decided by itself.
	Manual   bool   `json:"manual"`
	Started  Millis `json:"started"`
	Decided  Millis `json:"decided"` // time of the rollback or abort event
	Written  Millis `json:"written"`
	Complete bool   `json:"complete"` // the recovery series has been added

	Timeline []Entry   `json:"timeline"`
	Verdicts []Verdict `json:"verdicts"`
	Series   []Point   `json:"series"`
	// Resources are the replicas' memory, CPU and open files per revision,
	// sampled with Series.
	Resources []Usage           `json:"resources"`
	Logs      []Log             `json:"logs"`
	Diff      []manifest.Change `json:"diff"`
	Artifacts Artifacts         `json:"artifacts"`
	// ArtifactChanges are the artifact paths whose digests differ between
	// the two revisions, with a redacted text diff of text artifacts.
	ArtifactChanges []revdiff.Artifact `json:"artifactChanges"`
	Figures         Figures            `json:"figures"`
	// ProxyErrors are the router's samples of the requests it failed
	// itself (no connection, no valid response, a response timeout, a
	// client that gave up waiting), for the two revisions.
	ProxyErrors []ProxyErrors `json:"proxyErrors,omitempty"`
	Warnings    []string      `json:"warnings,omitempty"`
	// Traces are a few whole traces of the failing revision (its
	// slowest, failed, and least stable-like tasks), redacted
	// (traces.go).
	Traces []Trace `json:"traces,omitempty"`
	// Database is what the rollout did to the app's schema, when it ran
	// migrations.
	Database *Schema `json:"database,omitempty"`
	// Chain is the event log's head when the bundle was written: a
	// witness, outside the database, that `lastgood audit verify` checks
	// the log against (a log cut back before it no longer holds it).
	Chain *store.Head `json:"chain,omitempty"`
}

// ProxyErrors is one revision's proxy errors as the router counted them
// when the bundle was written.
type ProxyErrors struct {
	Revision int `json:"revision"`
	// Count is every proxy error since the router first saw the
	// revision; Samples are the last of them, oldest first.
	Count   uint64              `json:"count"`
	Samples []router.ProxyError `json:"samples"`
}

// Entry is one event of the rollout.
type Entry struct {
	Seq      int64  `json:"seq"`
	At       Millis `json:"at"`
	OffsetMs int64  `json:"offsetMs"` // since the rollout started
	Type     string `json:"type"`
	Revision int    `json:"revision,omitempty"`
	Message  string `json:"message"`
}

// Verdict is one analysis.verdict event.
type Verdict struct {
	Seq     int64  `json:"seq"`
	At      Millis `json:"at"`
	Check   string `json:"check"`
	Verdict string `json:"verdict"`
	Reason  string `json:"reason"`
	// Deciding marks the failed look that made lastgood roll back.
	Deciding bool `json:"deciding"`
	// Result is the event's data: an analysis.Result with its evidence.
	Result json.RawMessage `json:"result,omitempty"`
}

// Point is one revision's router figures over one sampling interval.
type Point struct {
	At       Millis `json:"at"`
	Revision int    `json:"revision"`
	// Requests and Errors count the interval; the Total ones since the
	// router first saw the revision.
	Requests      uint64  `json:"requests"`
	Errors        uint64  `json:"errors"`
	TotalRequests uint64  `json:"totalRequests"`
	TotalErrors   uint64  `json:"totalErrors"`
	InFlight      int64   `json:"inFlight"`
	P50Ms         float64 `json:"p50Ms"`
	P99Ms         float64 `json:"p99Ms"`
	// Recovery marks points taken after the decision.
	Recovery bool `json:"recovery,omitempty"`
}

// Log is the tail of one replica log of the failed revision.
type Log struct {
	Revision  int      `json:"revision"`
	File      string   `json:"file"`
	Lines     []string `json:"lines"`
	Truncated bool     `json:"truncated"` // earlier lines were left out
	Error     string   `json:"error,omitempty"`
}

// Artifacts are the digests of the two revisions.
type Artifacts struct {
	From *RevisionDigests `json:"from,omitempty"`
	To   *RevisionDigests `json:"to,omitempty"`
}

// RevisionDigests is a revision's content digest and its artifacts'.
type RevisionDigests struct {
	Revision  int               `json:"revision"`
	Digest    string            `json:"digest"`
	Artifacts map[string]string `json:"artifacts,omitempty"`
}

// Figures are the incident's headline numbers. A figure that cannot be
// known is left out.
type Figures struct {
	// FirstTraffic is the failed revision's first traffic.weight or
	// rollout.promoted event.
	FirstTraffic *Millis `json:"firstTraffic,omitempty"`
	// DecidingLook is the `at` of the failed look that decided.
	DecidingLook *Millis `json:"decidingLook,omitempty"`
	// TimeToDetectMs: first traffic → the deciding look (or the rollback
	// event when no look decided).
	TimeToDetectMs *int64 `json:"timeToDetectMs,omitempty"`
	// TimeToRollbackMs: the deciding look → the rollback event.
	TimeToRollbackMs *int64 `json:"timeToRollbackMs,omitempty"`
	// TimeToRecoverMs: the rollback event → the first sample in which the
	// failed revision served nothing and had nothing in flight.
	TimeToRecoverMs *int64       `json:"timeToRecoverMs,omitempty"`
	BlastRadius     *BlastRadius `json:"blastRadius,omitempty"`
	// RecordDelayMs: the decision → the store recording it, when the store
	// could not at once (a full disk) and traffic moved back first. Time
	// to detect and to roll back do not include it.
	RecordDelayMs *int64 `json:"recordDelayMs,omitempty"`
}

// BlastRadius is what the failed revision served, from the router.
type BlastRadius struct {
	Revision int    `json:"revision"`
	Requests uint64 `json:"requests"`
	Errors   uint64 `json:"errors"`
}

// Summary is an incident in a list.
type Summary struct {
	ID             string `json:"id"`
	App            string `json:"app"`
	Rollout        int64  `json:"rollout"`
	From           int    `json:"from"`
	To             int    `json:"to"`
	Kind           string `json:"kind"`
	Trigger        string `json:"trigger"`
	Reason         string `json:"reason"`
	Manual         bool   `json:"manual"`
	Decided        Millis `json:"decided"`
	TimeToDetectMs *int64 `json:"timeToDetectMs,omitempty"`
}

// Millis is a time written in UTC with millisecond precision.
type Millis struct{ time.Time }

const millisLayout = "2006-01-02T15:04:05.000Z07:00"

// ms makes a Millis.
func ms(t time.Time) Millis { return Millis{t.UTC().Truncate(time.Millisecond)} }

// MarshalJSON writes the time with exactly three fractional digits.
func (m Millis) MarshalJSON() ([]byte, error) {
	return json.Marshal(m.UTC().Format(millisLayout))
}

// UnmarshalJSON reads any RFC 3339 time.
func (m *Millis) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return err
	}
	m.Time = t
	return nil
}

// ID is the deterministic id of the incident of one rollout: the app and
// the rollout's number among the app's rollouts (store.Rollout.Number), so
// web-2 is the incident of web's second rollout.
func ID(app string, number int) string { return fmt.Sprintf("%s-%d", app, number) }

// Load reads the incident id from the incidents folder dir; an id the
// bundle had before it was renamed (Aliases) finds it too.
func Load(dir, id string) (*Incident, error) {
	inc, err := load(dir, id)
	if errors.Is(err, ErrNotFound) && validID(id) {
		if found := byAlias(dir, id); found != nil {
			return found, nil
		}
	}
	return inc, err
}

func validID(id string) bool {
	return id != "" && id == filepath.Base(id) && !strings.HasPrefix(id, ".")
}

// load reads the bundle in folder id.
func load(dir, id string) (*Incident, error) {
	if !validID(id) {
		return nil, fmt.Errorf("load incident %q: %w", id, ErrNotFound)
	}
	b, err := os.ReadFile(filepath.Join(dir, id, FileName))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("load incident %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("load incident %q: %w", id, err)
	}
	var inc Incident
	if err := json.Unmarshal(b, &inc); err != nil {
		return nil, fmt.Errorf("load incident %q: %s: %w", id, FileName, err)
	}
	return &inc, nil
}

// List summarizes every incident in dir, newest decision first. A missing
// dir holds no incidents; a bundle that cannot be read is skipped and
// reported in the joined error alongside the rest.
func List(dir string) ([]Summary, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list incidents: %w", err)
	}
	var out []Summary
	var errs []error
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		inc, err := load(dir, e.Name())
		if errors.Is(err, ErrNotFound) {
			continue // a folder being written, or not ours
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, inc.Summary())
	}
	slices.SortFunc(out, func(a, b Summary) int {
		if c := b.Decided.Compare(a.Decided.Time); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, errors.Join(errs...)
}

// byAlias finds the bundle that once had id, or nil.
func byAlias(dir, id string) *Incident {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if inc, err := load(dir, e.Name()); err == nil && slices.Contains(inc.Aliases, id) {
			return inc
		}
	}
	return nil
}

// Arrow is the rollout's revisions as every listing and report writes
// them: "from → to", the revision the rollout started from and the one it
// moved to. A rollback of 2 → 3 reads "2 → 3"; an undo that took revision
// 4 out by restoring its predecessor's content as revision 5 reads "4 → 5".
func Arrow(kind string, from, to int) string {
	if kind == KindUndone {
		// the bundle's from is the restored revision, the rollout's to
		from, to = to, from
	}
	return fmt.Sprintf("%d → %d", from, to)
}

// Arrow is the summary's rollout as "from → to" (see the function Arrow).
func (s Summary) Arrow() string { return Arrow(s.Kind, s.From, s.To) }

// Arrow is the incident's rollout as "from → to" (see the function Arrow).
func (inc *Incident) Arrow() string { return Arrow(inc.Kind, inc.From, inc.To) }

// Summary returns the incident's headline.
func (inc *Incident) Summary() Summary {
	return Summary{
		ID: inc.ID, App: inc.App, Rollout: inc.Rollout, From: inc.From, To: inc.To,
		Kind: inc.Kind, Trigger: inc.Trigger, Reason: inc.Reason, Manual: inc.Manual,
		Decided: inc.Decided, TimeToDetectMs: inc.Figures.TimeToDetectMs,
	}
}

// write stores the bundle — incident.json, report.md and report.html —
// each file atomically: a reader sees the old file or the new one, never
// half of one.
func write(dir string, inc *Incident) error {
	folder := filepath.Join(dir, inc.ID)
	if err := os.MkdirAll(folder, 0o755); err != nil {
		return fmt.Errorf("write incident %s: %w", inc.ID, err)
	}
	b, err := json.MarshalIndent(inc, "", "  ")
	if err != nil {
		return fmt.Errorf("write incident %s: %w", inc.ID, err)
	}
	var md, page bytes.Buffer
	if err := Markdown(&md, inc); err != nil {
		return fmt.Errorf("write incident %s: %w", inc.ID, err)
	}
	if err := HTML(&page, inc); err != nil {
		return fmt.Errorf("write incident %s: %w", inc.ID, err)
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{ReportMarkdown, md.Bytes()}, {ReportHTML, page.Bytes()}, {FileName, append(b, '\n')}} {
		if err := writeFile(folder, f.name, f.data); err != nil {
			return fmt.Errorf("write incident %s: %w", inc.ID, err)
		}
	}
	return nil
}

// The reports written beside incident.json.
const (
	ReportMarkdown = "report.md"
	ReportHTML     = "report.html"
)

// writeFile replaces folder/name with data through a rename.
func writeFile(folder, name string, data []byte) error {
	tmp, err := os.CreateTemp(folder, "."+name+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a successful rename, a no-op
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(folder, name))
}

// Witnesses returns the event-log heads the bundles in dir were written
// at, for `lastgood audit verify`: each must still be in the log as
// recorded. Bundles from before heads were recorded, and unreadable ones,
// give none.
func Witnesses(dir string) []store.Witness {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []store.Witness
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name(), FileName))
		if err != nil {
			continue
		}
		var inc struct {
			Chain   *store.Head `json:"chain"`
			Written Millis      `json:"written"`
		}
		if json.Unmarshal(b, &inc) == nil && inc.Chain != nil {
			out = append(out, store.Witness{Name: "incident " + e.Name(), Head: *inc.Chain, Written: inc.Written.Time})
		}
	}
	return out
}
