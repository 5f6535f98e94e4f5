package incident

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lastgood/lastgood/internal/manifest"
	"github.com/lastgood/lastgood/internal/revdiff"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// sample is a fixed incident, as the recorder writes one.
func sample() *Incident {
	at := func(ms int) Millis {
		return Millis{time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC).Add(time.Duration(ms) * time.Millisecond)}
	}
	n := func(v int64) *int64 { return &v }
	first, look := at(200), at(3100)
	return &Incident{
		Schema: SchemaVersion, ID: "web-4", App: "web", Rollout: 4, From: 2, To: 4, Strategy: "canary",
		Kind: KindRolledBack, Trigger: "analysis", Reason: "check errors failed: canary error rate 12.1% (8/66) exceeds stable's 0% (0/109) by more than 1%",
		Started: at(0), Decided: at(3400), Written: at(3410), Complete: true,
		Timeline: []Entry{
			{Seq: 10, At: at(0), Type: "rollout.started", Revision: 4, Message: "rollout #4 started: revision 2 → 4 (canary)"},
			{Seq: 11, At: at(200), OffsetMs: 200, Type: "traffic.weight", Revision: 4, Message: "step 1: 40% of traffic on revision 4"},
			{Seq: 12, At: at(3400), OffsetMs: 3400, Type: "analysis.verdict", Revision: 4, Message: "check errors: fail: canary error rate 12.1% | e-value 112"},
			{Seq: 13, At: at(3400), OffsetMs: 3400, Type: "rollout.rolled-back", Revision: 4, Message: "rolled back to revision 2: check errors failed"},
		},
		Verdicts: []Verdict{{Seq: 12, At: look, Check: "errors", Verdict: "fail", Reason: "canary error rate 12.1% (8/66) exceeds stable's 0% (0/109) by more than 1%",
			Deciding: true, Result: []byte(`{"check":"errors","verdict":"fail","evidence":{"method":{"name":"two-sample e-process"},"canarySamples":66,"stableSamples":109,"logEValue":4.72}}`)}},
		Series: []Point{
			{At: at(1000), Revision: 2, Requests: 30, TotalRequests: 900, P50Ms: 1.1, P99Ms: 3.5},
			{At: at(1000), Revision: 4, Requests: 20, Errors: 2, TotalRequests: 20, TotalErrors: 2, P50Ms: 1.2, P99Ms: 4},
			{At: at(2000), Revision: 2, Requests: 30, TotalRequests: 930, P50Ms: 1.0, P99Ms: 3.1},
			{At: at(2000), Revision: 4, Requests: 20, Errors: 3, TotalRequests: 40, TotalErrors: 5, P50Ms: 1.3, P99Ms: 5},
			{At: at(4000), Revision: 2, Requests: 50, TotalRequests: 980, P50Ms: 1.0, P99Ms: 3.0, Recovery: true},
			{At: at(4000), Revision: 4, TotalRequests: 66, TotalErrors: 8, Recovery: true},
		},
		Resources: []Usage{
			{At: at(1000), Revision: 2, Replicas: 2, RSSBytes: 20 << 20, CPUCores: 0.05, FDs: 16},
			{At: at(1000), Revision: 4, Replicas: 1, RSSBytes: 11 << 20, CPUCores: 0.02, FDs: 8},
			{At: at(2000), Revision: 4, Replicas: 1, RSSBytes: 48 << 20, CPUCores: 0.4, FDs: 9},
		},
		Logs: []Log{{Revision: 4, File: "web-4-0.log", Lines: []string{"listening on 127.0.0.1:40843", "token=[redacted]"}, Truncated: true}},
		Diff: []manifest.Change{{Field: "run.env.FAULT_ERROR_RATE", Old: "", New: "0.08"}, {Field: "run.command[0]", Old: "./bin/web-v2", New: "./bin/web-v4"}},
		ArtifactChanges: []revdiff.Artifact{
			{Path: "./bin/web-v2", Old: "sha256:9b1e0c27d4aa", Note: "binary"},
			{Path: "./bin/web-v4", New: "sha256:5f2a66c1d0e3", Note: "binary"},
			{Path: "./web.conf", Old: "sha256:0d6e4079e36d", New: "sha256:7a1c9e2b4f80",
				Diff: "--- ./web.conf (revision 2)\n+++ ./web.conf (revision 4)\n@@ -1,3 +1,3 @@\n workers = 4\n-timeout = 5s\n+timeout = 50ms\n api_key = [redacted]\n"},
		},
		Artifacts: Artifacts{
			From: &RevisionDigests{Revision: 2, Digest: "sha256:471bf2fbb28a"},
			To:   &RevisionDigests{Revision: 4, Digest: "sha256:02c12a6cda43"},
		},
		Figures: Figures{FirstTraffic: &first, DecidingLook: &look, TimeToDetectMs: n(2900), TimeToRollbackMs: n(300), TimeToRecoverMs: n(800),
			BlastRadius: &BlastRadius{Revision: 4, Requests: 66, Errors: 8}},
	}
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it):\n%s", name, got)
	}
}

func TestMarkdownGolden(t *testing.T) {
	var b bytes.Buffer
	if err := Markdown(&b, sample()); err != nil {
		t.Fatal(err)
	}
	golden(t, "postmortem.md", b.Bytes())
	for _, want := range []string{"| time to detect (first traffic → decision) | 2.9s |", `12.1% \| e-value 112`, "66 requests served by revision 4, 8 failed", "| 4 | 48.0 MiB | 0.40 cores | 9 |",
		"| ./web.conf | `sha256:0d6e4079e36d` | `sha256:7a1c9e2b4f80` | text diff below |", "| ./bin/web-v2 | `sha256:9b1e0c27d4aa` | (none) | binary |",
		"```diff\n--- ./web.conf (revision 2)\n+++ ./web.conf (revision 4)\n@@ -1,3 +1,3 @@\n workers = 4\n-timeout = 5s\n+timeout = 50ms\n"} {
		if !bytes.Contains(b.Bytes(), []byte(want)) {
			t.Errorf("markdown lacks %q", want)
		}
	}
}

func TestJSONGolden(t *testing.T) {
	b, err := json.MarshalIndent(sample(), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "incident.json", append(b, '\n'))
	var back Incident
	if err := json.Unmarshal(b, &back); err != nil || !back.Decided.Equal(sample().Decided.Time) || *back.Figures.TimeToDetectMs != 2900 {
		t.Fatalf("round trip: %v %+v", err, back.Figures)
	}
}

func TestHTMLGolden(t *testing.T) {
	var b bytes.Buffer
	if err := HTML(&b, sample()); err != nil {
		t.Fatal(err)
	}
	golden(t, "postmortem.html", b.Bytes())
	page := b.String()
	if n := strings.Count(page, "<svg "); n != 3 {
		t.Errorf("%d charts, want 3", n)
	}
	for _, banned := range []string{"<script", "http://", "https://", "src="} {
		if strings.Contains(strings.ReplaceAll(page, `xmlns="http://www.w3.org/2000/svg"`, ""), banned) {
			t.Errorf("the page is not self-contained: it has %q", banned)
		}
	}
	if !strings.Contains(page, `12.1% | e-value 112`) || !strings.Contains(page, "<b>fail (deciding)</b>") {
		t.Error("the page lacks the timeline or the deciding verdict")
	}
}
