package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// FlagRevision is one immutable, numbered revision of a feature flag of an
// app. Numbers count per flag (1, 2, 3 …) and are never reused.
type FlagRevision struct {
	App    string `json:"app"`
	Key    string `json:"key"`
	Number int    `json:"number"`
	// Spec is the flag's content, as JSON (internal/flags.Spec).
	Spec json.RawMessage `json:"spec"`
	// Origin says what made it: FlagApply, FlagSet, FlagOff, FlagOn or
	// FlagUndo.
	Origin string `json:"origin"`
	// CopyOf is the revision an undo copied, 0 otherwise.
	CopyOf  int       `json:"copyOf,omitempty"`
	Actor   string    `json:"actor,omitempty"`
	Created time.Time `json:"created"`
}

// Origins of flag revisions.
const (
	FlagApply = "apply"
	FlagSet   = "set"
	FlagOff   = "off"
	FlagOn    = "on"
	FlagUndo  = "undo"
)

const flagColumns = `app, key, number, spec, origin, copy_of, actor, created`

// CreateFlagRevision stores r as its flag's next revision: Number is one
// more than the flag's latest (any Number passed in is ignored); Created
// is now unless given.
func (t *Tx) CreateFlagRevision(r FlagRevision) (FlagRevision, error) {
	var errs []error
	if r.App == "" || r.Key == "" {
		errs = append(errs, errors.New("empty app or key"))
	}
	if !json.Valid(r.Spec) {
		errs = append(errs, errors.New("spec is not valid JSON"))
	}
	switch r.Origin {
	case FlagApply, FlagSet, FlagOff, FlagOn:
	case FlagUndo:
		if r.CopyOf <= 0 {
			errs = append(errs, errors.New("an undo revision must name the revision it copies (CopyOf)"))
		}
	default:
		errs = append(errs, fmt.Errorf("unknown origin %q", r.Origin))
	}
	if len(errs) > 0 {
		return FlagRevision{}, fmt.Errorf("create revision of flag %s/%s: %w: %w", r.App, r.Key, ErrInvalid, errors.Join(errs...))
	}
	var latest int
	if err := t.tx.QueryRowContext(t.ctx, `SELECT COALESCE(MAX(number), 0) FROM flag_revisions WHERE app = ? AND key = ?`,
		r.App, r.Key).Scan(&latest); err != nil {
		return FlagRevision{}, fmt.Errorf("create revision of flag %s/%s: %w", r.App, r.Key, err)
	}
	r.Number = latest + 1
	r.Created = stamp(r.Created)
	if _, err := t.tx.ExecContext(t.ctx, `INSERT INTO flag_revisions (`+flagColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		r.App, r.Key, r.Number, string(r.Spec), r.Origin, r.CopyOf, r.Actor, timeText(r.Created)); err != nil {
		return FlagRevision{}, fmt.Errorf("create revision %d of flag %s/%s: %w", r.Number, r.App, r.Key, err)
	}
	return r, nil
}

// FlagRevision returns revision n of a flag, or ErrNotFound.
func (r reader) FlagRevision(ctx context.Context, app, key string, n int) (FlagRevision, error) {
	row := r.q.QueryRowContext(ctx, `SELECT `+flagColumns+` FROM flag_revisions WHERE app = ? AND key = ? AND number = ?`, app, key, n)
	fr, err := scanFlag(row)
	if err != nil {
		return FlagRevision{}, fmt.Errorf("flag %s/%s revision %d: %w", app, key, n, notFound(err))
	}
	return fr, nil
}

// FlagHistory returns every revision of a flag, oldest first, or
// ErrNotFound when it has none.
func (r reader) FlagHistory(ctx context.Context, app, key string) ([]FlagRevision, error) {
	rows, err := r.q.QueryContext(ctx, `SELECT `+flagColumns+` FROM flag_revisions WHERE app = ? AND key = ? ORDER BY number`, app, key)
	if err != nil {
		return nil, fmt.Errorf("history of flag %s/%s: %w", app, key, err)
	}
	out, err := collect(rows, scanFlag)
	if err != nil {
		return nil, fmt.Errorf("history of flag %s/%s: %w", app, key, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("flag %s/%s: %w", app, key, ErrNotFound)
	}
	return out, nil
}

// LatestFlags returns the latest revision of every flag of app (of every
// app when app is ""), by app and key.
func (r reader) LatestFlags(ctx context.Context, app string) ([]FlagRevision, error) {
	rows, err := r.q.QueryContext(ctx, `SELECT `+flagColumns+` FROM flag_revisions AS f
		WHERE (? = '' OR app = ?) AND number = (SELECT MAX(number) FROM flag_revisions AS g WHERE g.app = f.app AND g.key = f.key)
		ORDER BY app, key`, app, app)
	if err != nil {
		return nil, fmt.Errorf("list flags: %w", err)
	}
	out, err := collect(rows, scanFlag)
	if err != nil {
		return nil, fmt.Errorf("list flags: %w", err)
	}
	return out, nil
}

func scanFlag(s rowScanner) (FlagRevision, error) {
	var fr FlagRevision
	var spec, created string
	if err := s.Scan(&fr.App, &fr.Key, &fr.Number, &spec, &fr.Origin, &fr.CopyOf, &fr.Actor, &created); err != nil {
		return FlagRevision{}, err
	}
	fr.Spec = json.RawMessage(spec)
	var err error
	fr.Created, err = parseTime(created)
	return fr, err
}

// EventFlag is the type of the event each new flag revision writes; the
// OFREP server reloads its flags when it sees one.
const EventFlag = "flag"
