package incident

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Markdown writes the post-mortem of an incident for terminals and
// tickets: what happened, the figures, the deciding evidence, the timeline,
// the change that was rolled back, and the failed replicas' last log lines.
// It writes only what the bundle holds, which was redacted when recorded.
func Markdown(w io.Writer, in *Incident) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# Incident %s\n\n", in.ID)
	who := "lastgood rolled it back by itself"
	if in.Manual {
		who = "rolled back by hand"
	}
	fmt.Fprintf(&b, "Rollout #%d of **%s**, revision %s (%s), ended **%s** at %s: %s.\n\n",
		in.Rollout, in.App, in.Arrow(), in.Strategy, in.Kind, stamp(in.Decided.Time), who)
	fmt.Fprintf(&b, "**Why** (%s): %s\n\n", in.Trigger, in.Reason)
	for _, t := range in.Target {
		fmt.Fprintf(&b, "**Target unhealthy**: %s\n\n", t)
	}

	b.WriteString("## Figures\n\n| figure | value |\n|---|---|\n")
	f := in.figureTexts()
	fmt.Fprintf(&b, "| time to detect (first traffic → decision) | %s |\n", f.detect)
	fmt.Fprintf(&b, "| time to roll back (decision → traffic on revision %d) | %s |\n", in.From, f.back)
	fmt.Fprintf(&b, "| time to recover | %s |\n", f.recover)
	if d := in.Figures.RecordDelayMs; d != nil {
		fmt.Fprintf(&b, "| recorded late (decision → in the event log; traffic had moved) | %s |\n", dur(d))
	}
	fmt.Fprintf(&b, "| blast radius | %s |\n", f.blast)

	if i := slices.IndexFunc(in.Verdicts, func(v Verdict) bool { return v.Deciding }); i >= 0 {
		v := in.Verdicts[i]
		fmt.Fprintf(&b, "\n## Deciding evidence\n\nCheck **%s**, %s at %s: %s\n", v.Check, v.Verdict, stamp(v.At.Time), v.Reason)
		if len(v.Result) > 0 {
			fmt.Fprintf(&b, "\n```json\n%s\n```\n", indentJSON(v.Result))
		}
	}
	if len(in.Verdicts) > 0 {
		b.WriteString("\n## Verdicts\n\n| time | check | verdict | reason |\n|---|---|---|---|\n")
		for _, v := range in.Verdicts {
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", stamp(v.At.Time), v.Check, v.Verdict, cell(v.Reason))
		}
	}

	if d := in.Database; d != nil {
		writeSchema(&b, d)
	}

	b.WriteString("\n## Timeline\n\n| +ms | time | event | message |\n|---|---|---|---|\n")
	for _, e := range in.Timeline {
		fmt.Fprintf(&b, "| %d | %s | %s | %s |\n", e.OffsetMs, stamp(e.At.Time), e.Type, cell(e.Message))
	}

	if len(in.Resources) > 0 {
		b.WriteString("\n## Resources (peaks per revision, all replicas)\n\n| revision | memory | CPU | open files |\n|---|---|---|---|\n")
		peaks := map[int]Usage{}
		var revs []int
		for _, u := range in.Resources {
			p, ok := peaks[u.Revision]
			if !ok {
				revs = append(revs, u.Revision)
			}
			p.RSSBytes, p.CPUCores, p.FDs = max(p.RSSBytes, u.RSSBytes), max(p.CPUCores, u.CPUCores), max(p.FDs, u.FDs)
			peaks[u.Revision] = p
		}
		slices.Sort(revs)
		for _, rev := range revs {
			p := peaks[rev]
			fmt.Fprintf(&b, "| %d | %.1f MiB | %.2f cores | %d |\n", rev, float64(p.RSSBytes)/(1<<20), p.CPUCores, p.FDs)
		}
	}

	for _, pe := range in.ProxyErrors {
		fmt.Fprintf(&b, "\n## Requests the router failed on revision %d (%d in all, the last %d)\n\n| time | request | status | error |\n|---|---|---|---|\n",
			pe.Revision, pe.Count, len(pe.Samples))
		for _, e := range pe.Samples {
			fmt.Fprintf(&b, "| %s | %s | %d | %s |\n", stamp(e.Time), cell(e.Request), e.Status, cell(e.Error))
		}
	}

	fmt.Fprintf(&b, "\n## %s\n\n", in.changeHeading())
	switch {
	case len(in.Diff) == 0 && len(in.ArtifactChanges) == 0:
		b.WriteString("Neither the manifest nor any artifact changed.\n")
	case len(in.Diff) == 0:
		b.WriteString("No manifest field changed; the artifacts below did.\n")
	default:
		b.WriteString("| field | before | after |\n|---|---|---|\n")
		for _, c := range in.Diff {
			fmt.Fprintf(&b, "| %s | %s | %s |\n", c.Field, cell(c.Old), cell(c.New))
		}
	}
	if len(in.ArtifactChanges) > 0 {
		b.WriteString("\n| artifact | before | after | content |\n|---|---|---|---|\n")
		for _, a := range in.ArtifactChanges {
			content := "text diff below"
			if a.Diff == "" {
				content = a.Note
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", cell(a.Path), digestCell(a.Old), digestCell(a.New), cell(content))
		}
		for _, a := range in.ArtifactChanges {
			if a.Diff != "" {
				f := fence(a.Diff)
				fmt.Fprintf(&b, "\n%sdiff\n%s%s\n", f, a.Diff, f)
			}
		}
	}
	for _, d := range []*RevisionDigests{in.Artifacts.From, in.Artifacts.To} {
		if d != nil {
			fmt.Fprintf(&b, "\nRevision %d: `%s`\n", d.Revision, d.Digest)
		}
	}

	for _, l := range in.Logs {
		fmt.Fprintf(&b, "\n## Log of revision %d: %s\n\n", l.Revision, l.File)
		if l.Error != "" {
			fmt.Fprintf(&b, "(could not be read: %s)\n", l.Error)
			continue
		}
		if l.Truncated {
			b.WriteString("(earlier lines left out)\n\n")
		}
		fmt.Fprintf(&b, "```\n%s\n```\n", strings.Join(l.Lines, "\n"))
	}
	if len(in.Traces) > 0 {
		fmt.Fprintf(&b, "\n## Traces of revision %d (a sample: the slowest, the failed, and the shapes the stable uses least)\n", in.To)
		for _, t := range in.Traces {
			state := ""
			if t.Failed {
				state = ", failed"
			}
			fmt.Fprintf(&b, "\n### Trace %s (%s): %.3g ms%s, shape %s\n\n", t.TraceID, strings.Join(t.Why, ", "), t.DurationMs, state, cell(t.Shape))
			f := fence(t.Tree)
			fmt.Fprintf(&b, "%stext\n%s\n%s\n", f, t.Tree, f)
		}
	}
	for _, warn := range in.Warnings {
		fmt.Fprintf(&b, "\n> %s\n", warn)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.000Z") }

func dur(v *int64) string {
	if v == nil {
		return "unknown"
	}
	return (time.Duration(*v) * time.Millisecond).String()
}

// figureTexts are the headline figures in words. A figure is "unknown"
// only when it cannot be known; one that is 0 says 0, and one that does
// not apply says why.
type figureTexts struct{ detect, back, recover, blast string }

func (in *Incident) figureTexts() figureTexts {
	f := in.Figures
	t := figureTexts{detect: dur(f.TimeToDetectMs), back: dur(f.TimeToRollbackMs), recover: dur(f.TimeToRecoverMs), blast: "unknown"}
	idle := f.BlastRadius != nil && f.BlastRadius.Requests == 0
	if f.TimeToDetectMs == nil && idle {
		t.detect = fmt.Sprintf("none: revision %d took no traffic", in.To)
	}
	if f.TimeToRecoverMs == nil && !in.Complete {
		t.recover = "not measured yet (the bundle is written again a few seconds after the decision)"
	}
	if br := f.BlastRadius; br != nil {
		t.blast = fmt.Sprintf("%d requests served by revision %d, %d failed", br.Requests, br.Revision, br.Errors)
	}
	return t
}

// changeHeading titles the manifest diff, which always compares the
// revision returned to with the one that failed.
func (in *Incident) changeHeading() string {
	if in.Kind == KindUndone {
		return fmt.Sprintf("What revision %d changed (against revision %d, which restored the earlier content)", in.To, in.From)
	}
	return fmt.Sprintf("What changed (revision %s)", in.Arrow())
}

func digestCell(d string) string {
	if d == "" {
		return "(none)"
	}
	return "`" + d + "`"
}

// fence is a code fence longer than any run of backticks in s.
func fence(s string) string {
	longest, run := 0, 0
	for _, r := range s {
		if r == '`' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	return strings.Repeat("`", max(3, longest+1))
}

// cell makes text safe inside a Markdown table cell.
func cell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.ReplaceAll(s, "\n", " ")
}

func indentJSON(raw []byte) string {
	var b bytes.Buffer
	if json.Indent(&b, raw, "", "  ") != nil {
		return string(raw)
	}
	return b.String()
}

// writeSchema is the Database section: the schema version before and
// after, the rollback policy's decision, the migrations and each run's
// statements with their outcomes.
func writeSchema(b *strings.Builder, d *Schema) {
	fmt.Fprintf(b, "\n## Database: %s\n\n", d.Database)
	fmt.Fprintf(b, "Schema version **%d** before the release's migrations, **%d** now.\n", d.Before, d.After)
	switch {
	case d.Policy != "":
		fmt.Fprintf(b, "\n**Rollback policy**: %s\n", d.Policy)
	default:
		b.WriteString("\n**Rollback policy**: not applied yet when this bundle was written.\n")
	}
	if d.Frozen {
		b.WriteString("\n**The schema is frozen.** To be done by hand:\n\n")
		for _, m := range d.Manual {
			fmt.Fprintf(b, "- %s\n", m)
		}
	}
	for _, a := range d.Acknowledged {
		fmt.Fprintf(b, "\n- %s\n", a)
	}
	if len(d.Migrations) > 0 {
		b.WriteString("\n| migration | class | change | down file |\n|---|---|---|---|\n")
		for _, m := range d.Migrations {
			down := "none"
			if m.Migration.Down != nil {
				down = m.Migration.Down.Path
				if m.Down != "" {
					down += " (" + string(m.Down) + ")"
				}
			}
			fmt.Fprintf(b, "| %s | %s | %s | %s |\n", m.Migration, m.Class, cell(m.Change), cell(down))
		}
	}
	for _, run := range d.Runs {
		fmt.Fprintf(b, "\n### %s: schema version %d → %d\n\n", run.Direction, run.Before, run.After)
		if run.Error != "" {
			fmt.Fprintf(b, "Failed: %s\n\n", run.Error)
		}
		if len(run.Migrations) == 0 {
			continue
		}
		b.WriteString("| statement | SQL | outcome |\n|---|---|---|\n")
		for _, m := range run.Migrations {
			for _, st := range m.Statements {
				out := st.Outcome
				if st.Alone {
					out += " (alone, outside the transaction)"
				}
				if st.Error != "" {
					out += ": " + st.Error
				}
				fmt.Fprintf(b, "| %s:%d | %s | %s |\n", m.File, st.Line, cell(st.SQL), cell(out))
			}
		}
	}
}
