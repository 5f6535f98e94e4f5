package incident

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lastgood/lastgood/internal/manifest"
	"github.com/lastgood/lastgood/internal/store"
)

// TypeSLOBreached is the event recorded when an automatic rollback was
// slower than the app's rollback.slo; telemetry counts it and
// notifications send it.
const TypeSLOBreached = "rollout.slo-breached"

// breaches compares an incident's figures with a rollback SLO and returns
// the figures over it ("timeToDetect", "timeToRollback") and a sentence.
func breaches(inc *Incident, slo *manifest.SLO) ([]string, string) {
	if slo == nil || inc.Manual {
		return nil, ""
	}
	var names, parts []string
	for _, c := range []struct {
		name  string
		got   *int64
		limit time.Duration
	}{
		{"timeToDetect", inc.Figures.TimeToDetectMs, slo.TimeToDetect.D()},
		{"timeToRollback", inc.Figures.TimeToRollbackMs, slo.TimeToRollback.D()},
	} {
		if c.got == nil || c.limit <= 0 {
			continue
		}
		if got := time.Duration(*c.got) * time.Millisecond; got > c.limit {
			names = append(names, c.name)
			parts = append(parts, fmt.Sprintf("%s %s > %s", c.name, got, c.limit))
		}
	}
	if len(names) == 0 {
		return nil, ""
	}
	return names, fmt.Sprintf("rollback of revision %d breached its SLO: %s (incident %s)", inc.To, strings.Join(parts, ", "), inc.ID)
}

// checkSLO records a TypeSLOBreached event when the incident's rollback
// was slower than the failed revision's rollback.slo.
func (r *Recorder) checkSLO(ctx context.Context, end store.Event, inc *Incident) {
	rev, err := r.cfg.Store.Revision(ctx, inc.App, inc.To)
	if err != nil {
		return
	}
	m, err := manifest.FromJSON(rev.Manifest)
	if err != nil {
		return
	}
	names, msg := breaches(inc, m.Rollback.SLO)
	if len(names) == 0 {
		return
	}
	err = r.cfg.Store.Update(ctx, func(tx *store.Tx) error {
		_, err := tx.AppendEvent(store.Event{Time: r.cfg.Now(), App: end.App, Rollout: end.Rollout, Revision: inc.To,
			Type: TypeSLOBreached, Message: msg, Data: mustJSON(map[string]any{
				"breached": names, "incident": inc.ID,
				"timeToDetectMs": inc.Figures.TimeToDetectMs, "timeToRollbackMs": inc.Figures.TimeToRollbackMs,
			})})
		return err
	})
	if err != nil && !errors.Is(err, context.Canceled) {
		r.cfg.Log.Error("record SLO breach", "id", inc.ID, "err", err)
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only called with maps of plain values
	}
	return b
}
