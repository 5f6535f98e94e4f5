package controller

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/lastgood/lastgood/internal/flags"
	"github.com/lastgood/lastgood/internal/store"
)

// EventFlag is the type of the event every new flag revision writes; the
// OFREP server reloads its flags when it sees one.
const EventFlag = store.EventFlag

// FlagResult says what a flag command did.
type FlagResult struct {
	App      string `json:"app"`
	Key      string `json:"key"`
	Revision int    `json:"revision"`
	Created  bool   `json:"created"` // a new flag revision was stored
	Message  string `json:"message"`
}

// SpecOf decodes a stored flag revision's content.
func SpecOf(fr store.FlagRevision) (*flags.Spec, error) {
	var s flags.Spec
	if err := json.Unmarshal(fr.Spec, &s); err != nil {
		return nil, fmt.Errorf("flag %s/%s revision %d: %w", fr.App, fr.Key, fr.Number, err)
	}
	return &s, nil
}

// applyFlags stores a new revision of every declared flag that is new or
// whose declaration changed. A changed declaration keeps the flag's state:
// a kill switch stays on, a pin stays while its variant exists, a rollout
// stays on its step while its variant and steps are the same. Flags no
// longer declared are left as they are.
func (c *Controller) applyFlags(ctx context.Context, app string, declared []flags.Flag) ([]FlagResult, error) {
	if len(declared) == 0 {
		return nil, nil
	}
	var out []FlagResult
	err := c.cfg.Store.Update(ctx, func(tx *store.Tx) error {
		out = nil
		latest, err := tx.LatestFlags(ctx, app)
		if err != nil {
			return err
		}
		for _, f := range declared {
			spec := flags.Spec{Flag: f}
			if f.Rollout != nil {
				spec.Step = 1
			}
			i := slices.IndexFunc(latest, func(fr store.FlagRevision) bool { return fr.Key == f.Key })
			if i >= 0 {
				old, err := SpecOf(latest[i])
				if err != nil {
					return err
				}
				if sameJSON(old.Flag, f) {
					continue
				}
				spec.Off = old.Off
				if f.Variants[old.Pin] != nil {
					spec.Pin = old.Pin
				}
				if f.Rollout != nil && old.Flag.Rollout != nil && old.Flag.Rollout.Variant == f.Rollout.Variant &&
					slices.Equal(old.Flag.Rollout.Steps, f.Rollout.Steps) {
					spec.Step = old.Step
				}
			}
			res, err := c.writeFlag(ctx, tx, app, spec, store.FlagApply, 0, "declared by the manifest")
			if err != nil {
				return err
			}
			out = append(out, res)
		}
		return nil
	})
	return out, err
}

func sameJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

// writeFlag stores spec as the next revision of its flag and records it in
// the event log, inside tx.
func (c *Controller) writeFlag(ctx context.Context, tx *store.Tx, app string, spec flags.Spec, origin string, copyOf int, what string) (FlagResult, error) {
	body, err := json.Marshal(spec)
	if err != nil {
		return FlagResult{}, err
	}
	fr, err := tx.CreateFlagRevision(store.FlagRevision{App: app, Key: spec.Flag.Key, Spec: body, Origin: origin, CopyOf: copyOf, Actor: actorOf(ctx)})
	if err != nil {
		return FlagResult{}, err
	}
	msg := fmt.Sprintf("flag %s revision %d: %s; %s", fr.Key, fr.Number, what, describeSpec(&spec))
	if _, err := tx.AppendEvent(store.Event{App: app, Type: EventFlag, Message: msg, Actor: actorOf(ctx),
		Data: mustJSON(map[string]any{"key": fr.Key, "flagRevision": fr.Number, "origin": origin, "copyOf": copyOf, "spec": spec})}); err != nil {
		return FlagResult{}, err
	}
	return FlagResult{App: app, Key: fr.Key, Revision: fr.Number, Created: true, Message: msg}, nil
}

// describeSpec says what a flag serves, in a few words.
func describeSpec(s *flags.Spec) string {
	f := &s.Flag
	switch {
	case s.Off:
		return fmt.Sprintf("off: every evaluation gets the default, %s", f.Default)
	case s.Pin != "":
		return fmt.Sprintf("pinned: every evaluation gets %s", s.Pin)
	case f.Rollout != nil && s.Step > 0 && s.Step <= len(f.Rollout.Steps):
		return fmt.Sprintf("rollout of %s at step %d of %d (%d%% of targeting keys)", f.Rollout.Variant, s.Step, len(f.Rollout.Steps), f.Rollout.Steps[s.Step-1])
	case len(f.Split) > 0:
		return "split by targeting key"
	case len(f.Rules) > 0:
		return fmt.Sprintf("%d rules, else %s", len(f.Rules), f.Default)
	}
	return "serves " + f.Default
}

// changeFlag stores a new revision of a declared flag made by change from
// the latest one, as asked by actor. A change that leaves the flag as it
// is stores nothing.
func (c *Controller) changeFlag(ctx context.Context, app, key, by, origin string,
	change func(fr store.FlagRevision, s *flags.Spec, tx *store.Tx) (copyOf int, what string, err error)) (FlagResult, error) {
	if err := c.writable(); err != nil {
		return FlagResult{}, err
	}
	ctx = withActor(ctx, by)
	var res FlagResult
	err := c.cfg.Store.Update(ctx, func(tx *store.Tx) error {
		a, err := tx.App(ctx, app)
		if err != nil || a.Deleted != nil {
			return fmt.Errorf("app %s: %w", app, ErrNotFound)
		}
		hist, err := tx.FlagHistory(ctx, app, key)
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("%w: app %s has no flag %q (flags are declared in the manifest's flags: section)", ErrNotFound, app, key)
		}
		if err != nil {
			return err
		}
		latest := hist[len(hist)-1]
		spec, err := SpecOf(latest)
		if err != nil {
			return err
		}
		before, _ := json.Marshal(spec)
		copyOf, what, err := change(latest, spec, tx)
		if err != nil {
			return err
		}
		if after, _ := json.Marshal(spec); bytes.Equal(before, after) {
			res = FlagResult{App: app, Key: key, Revision: latest.Number,
				Message: fmt.Sprintf("flag %s: nothing to do: revision %d already %s", key, latest.Number, describeSpec(spec))}
			return nil
		}
		res, err = c.writeFlag(ctx, tx, app, *spec, origin, copyOf, what)
		return err
	})
	return res, err
}

// SetFlag pins a flag to one of its variants: every evaluation gets it
// (reason STATIC) until `flags on`, `off` or `undo`.
func (c *Controller) SetFlag(ctx context.Context, app, key, variant, by string) (FlagResult, error) {
	return c.changeFlag(ctx, app, key, by, store.FlagSet, func(_ store.FlagRevision, s *flags.Spec, _ *store.Tx) (int, string, error) {
		if s.Flag.Variants[variant] == nil {
			names := slices.Sorted(maps.Keys(s.Flag.Variants))
			return 0, "", fmt.Errorf("%w: --variant: flag %s has no variant %q (variants: %v)", ErrInvalid, key, variant, names)
		}
		s.Pin, s.Off = variant, false
		return 0, "set to " + variant, nil
	})
}

// OffFlag is the kill switch: every evaluation gets the default variant
// (reason DISABLED).
func (c *Controller) OffFlag(ctx context.Context, app, key, by string) (FlagResult, error) {
	return c.changeFlag(ctx, app, key, by, store.FlagOff, func(_ store.FlagRevision, s *flags.Spec, _ *store.Tx) (int, string, error) {
		s.Off = true
		return 0, "turned off", nil
	})
}

// OnFlag undoes the kill switch and any pin: the flag evaluates as
// declared again.
func (c *Controller) OnFlag(ctx context.Context, app, key, by string) (FlagResult, error) {
	return c.changeFlag(ctx, app, key, by, store.FlagOn, func(_ store.FlagRevision, s *flags.Spec, _ *store.Tx) (int, string, error) {
		s.Off, s.Pin = false, ""
		return 0, "turned on", nil
	})
}

// UndoFlag stores a new revision of a flag with the content of an earlier
// one: revision to, or, when to is 0, the revision before the latest.
func (c *Controller) UndoFlag(ctx context.Context, app, key string, to int, by string) (FlagResult, error) {
	if to < 0 {
		return FlagResult{}, fmt.Errorf("%w: --to-revision: want a revision number from 1, got %d", ErrInvalid, to)
	}
	return c.changeFlag(ctx, app, key, by, store.FlagUndo, func(latest store.FlagRevision, s *flags.Spec, tx *store.Tx) (int, string, error) {
		if to == 0 {
			to = latest.Number - 1
			if to == 0 {
				return 0, "", fmt.Errorf("%w: flag %s has one revision; there is nothing to undo", ErrConflict, key)
			}
		}
		target, err := tx.FlagRevision(ctx, app, key, to)
		if err != nil {
			return 0, "", err
		}
		old, err := SpecOf(target)
		if err != nil {
			return 0, "", err
		}
		*s = *old
		return to, fmt.Sprintf("undo to the content of revision %d", to), nil
	})
}
