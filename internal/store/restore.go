package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The recovery commands: each takes the data directory's lock (lastgood
// must be stopped), changes state.db, records what it did in the event
// log, and writes the anchor and the marker again. None deletes data: a
// state.db it replaces is renamed beside it.

// Recovered says what a recovery command did.
type Recovered struct {
	// Kept is where the state.db that was replaced now is; empty when
	// there was none.
	Kept string `json:"kept,omitempty"`
	Head Head   `json:"head"`
	// Lost is how many events the anchor named beyond the new log's end.
	Lost    int64  `json:"lost,omitempty"`
	Message string `json:"message"`
}

// Restore puts a backup in place of dir's state.db. The backup must pass
// its integrity check and audit, and be a copy of this directory's store
// (or of one from before stores had identities).
func Restore(ctx context.Context, dir, backup string) (Recovered, error) {
	dir, unlock, err := lockForRecovery(dir)
	if err != nil {
		return Recovered{}, err
	}
	defer unlock()
	// The backup is checked as a copy beside state.db, brought to this
	// lastgood's schema first (it may come from an older one).
	staging := filepath.Join(dir, DBFile+".restoring")
	os.Remove(staging)
	defer os.Remove(staging)
	if err := copyFile(backup, staging); err != nil {
		return Recovered{}, fmt.Errorf("restore: %w", err)
	}
	a, id, err := checkCopy(ctx, staging)
	if err != nil {
		return Recovered{}, fmt.Errorf("restore: %s: %w", backup, err)
	}
	if !a.OK() {
		return Recovered{}, fmt.Errorf("restore: %w: %s does not verify (%d problems; first: %s); see `lastgood audit verify --data %s`",
			ErrDamaged, backup, len(a.Problems), a.Problems[0].Message, backup)
	}
	m, err := markerFor(dir, id)
	if errors.Is(err, ErrMismatch) {
		return Recovered{}, fmt.Errorf("restore: %w: %s is a backup of data directory %s, but %s is %s",
			ErrMismatch, backup, id, dir, m.ID)
	}
	if err != nil {
		return Recovered{}, fmt.Errorf("restore: %w", err)
	}
	kept, err := setAside(dir, "before-restore")
	if err != nil {
		return Recovered{}, err
	}
	if err := os.Rename(staging, filepath.Join(dir, DBFile)); err != nil {
		return Recovered{}, fmt.Errorf("restore: %w", err)
	}
	msg := fmt.Sprintf("state.db restored from the backup %s", backup)
	return finishRecovery(ctx, dir, m, id == "", kept, "store.restored", msg)
}

// migrateFile brings the database at path to this lastgood's schema.
func migrateFile(path string) error {
	s, err := Open(path)
	if err != nil {
		return err
	}
	return s.Close()
}

// checkCopy brings a copy of a database to this lastgood's schema, then
// verifies it and reads its identity. The copy is lastgood's own, so it is
// opened for writing: closing it leaves no write-ahead log beside it.
func checkCopy(ctx context.Context, path string) (Audit, string, error) {
	db, err := openDB(path, false)
	if err != nil {
		return Audit{}, "", err
	}
	if damage := quickCheck(ctx, db); len(damage) > 0 {
		db.Close()
		return Audit{Problems: []Problem{{Kind: ProblemDamaged, Message: "integrity check: " + damage[0]}}}, "", nil
	}
	db.Close()
	s, err := Open(path)
	if err != nil {
		return Audit{}, "", err
	}
	defer s.Close()
	a, err := s.Verify(ctx)
	if err != nil {
		return Audit{}, "", err
	}
	id, err := s.identity(ctx)
	return a, id, err
}

// Fresh starts dir over with an empty store under the directory's
// identity; artifacts and incidents stay.
func Fresh(ctx context.Context, dir string) (Recovered, error) {
	dir, unlock, err := lockForRecovery(dir)
	if err != nil {
		return Recovered{}, err
	}
	defer unlock()
	m, err := readMarker(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, ErrDamaged):
		m = Marker{ID: newID(), Created: now()}
	case err != nil:
		return Recovered{}, fmt.Errorf("fresh store: %w", err)
	}
	kept, err := setAside(dir, "replaced")
	if err != nil {
		return Recovered{}, err
	}
	return finishRecovery(ctx, dir, m, true, kept, "store.fresh", "a fresh, empty store: apps, revisions and rollouts are gone, and the event log starts over")
}

// Accept takes dir's state.db as it is: the anchor is moved to its log's
// end, and what the anchor named beyond it is recorded as lost. The
// database must pass its integrity check and be the directory's own.
func Accept(ctx context.Context, dir string) (Recovered, error) {
	dir, unlock, err := lockForRecovery(dir)
	if err != nil {
		return Recovered{}, err
	}
	defer unlock()
	path := filepath.Join(dir, DBFile)
	if isEmptyDB(path) {
		return Recovered{}, fmt.Errorf("accept: %w: state.db is missing or empty; restore a backup or start --fresh", ErrMismatch)
	}
	db, err := openDB(path, true)
	if err != nil {
		return Recovered{}, fmt.Errorf("accept: %w", err)
	}
	damage := quickCheck(ctx, db)
	db.Close()
	if len(damage) > 0 {
		return Recovered{}, fmt.Errorf("accept: %w: state.db fails its integrity check (%s); restore a backup or start --fresh", ErrDamaged, damage[0])
	}
	if err := migrateFile(path); err != nil {
		return Recovered{}, fmt.Errorf("accept: %w", err)
	}
	id, err := fileIdentity(ctx, path)
	if err != nil {
		return Recovered{}, fmt.Errorf("accept: %w", err)
	}
	m, err := markerFor(dir, id)
	if errors.Is(err, ErrMismatch) {
		return Recovered{}, fmt.Errorf("accept: %w: state.db belongs to data directory %s, but %s is %s; restore a backup or start --fresh",
			ErrMismatch, id, dir, m.ID)
	}
	if err != nil {
		return Recovered{}, fmt.Errorf("accept: %w", err)
	}
	return finishRecovery(ctx, dir, m, id == "", "", "store.accepted", "state.db accepted as it is")
}

// finishRecovery opens the new state.db, records the recovery (and the
// identity, when the database has none) with what the old anchor named
// beyond the log's end, and writes the anchor and the marker.
func finishRecovery(ctx context.Context, dir string, m Marker, needsID bool, kept, typ, msg string) (Recovered, error) {
	s, err := Open(filepath.Join(dir, DBFile))
	if err != nil {
		return Recovered{}, err
	}
	s.dir = dir
	defer s.Close()
	if needsID {
		if err := s.recordIdentity(ctx, m.ID, "a recovered store"); err != nil {
			return Recovered{}, err
		}
	}
	head, err := s.Head(ctx)
	if err != nil {
		return Recovered{}, err
	}
	res := Recovered{Kept: kept}
	data := map[string]any{"headSeq": head.Seq, "head": head.Hash}
	if old, err := readAnchor(filepath.Join(dir, AnchorFile)); err == nil {
		data["anchorSeq"], data["anchor"] = old.Seq, old.Hash
		if typ == "store.fresh" {
			msg += fmt.Sprintf("; the log it replaces ended at event %d (hash %s)", old.Seq, old.Hash)
		} else if old.Seq > head.Seq {
			res.Lost = old.Seq - head.Seq
			msg += fmt.Sprintf("; the anchor named event %d, so events %d to %d are lost", old.Seq, head.Seq+1, old.Seq)
		}
	}
	if kept != "" {
		data["kept"] = kept
		msg += fmt.Sprintf("; the database it replaced is kept as %s", kept)
	}
	err = s.Update(ctx, func(tx *Tx) error {
		_, err := tx.AppendEvent(Event{Type: typ, Message: msg, Data: mustData(data)})
		return err
	})
	if err != nil {
		return Recovered{}, err
	}
	if res.Head, err = s.Head(ctx); err != nil {
		return Recovered{}, err
	}
	if err := writeAnchor(filepath.Join(dir, AnchorFile), Anchor{Store: m.ID, Head: res.Head, Written: now()}); err != nil {
		return Recovered{}, err
	}
	if err := writeMarker(dir, m); err != nil {
		return Recovered{}, err
	}
	res.Message = msg
	return res, nil
}

// lockForRecovery takes the data directory's lock: a recovery runs only
// while no lastgood serves the directory.
func lockForRecovery(dir string) (string, func(), error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", nil, err
	}
	if fi, err := os.Stat(abs); err != nil || !fi.IsDir() {
		return "", nil, fmt.Errorf("data directory %s: not a directory", dir)
	}
	unlock, err := lockDir(abs)
	if err != nil {
		return "", nil, err
	}
	return abs, unlock, nil
}

// setAside renames state.db and its write-ahead log files to
// state.db.<why>-<time>, and returns the new name of state.db ("" when
// there was none).
func setAside(dir, why string) (string, error) {
	base := filepath.Join(dir, DBFile)
	kept := fmt.Sprintf("%s.%s-%s", base, why, time.Now().UTC().Format("20060102T150405Z"))
	moved := ""
	for _, suffix := range []string{"", "-wal", "-shm"} {
		err := os.Rename(base+suffix, kept+suffix)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return "", fmt.Errorf("set %s aside: %w", base+suffix, err)
		case suffix == "":
			moved = kept
		}
	}
	return moved, syncDir(dir)
}

// copyFile copies src to dst whole: a temporary file beside dst, synced,
// then renamed.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := dst + ".tmp"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, dst)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(filepath.Dir(dst))
}

// fileIdentity is the identity a database file records, "" for none.
func fileIdentity(ctx context.Context, path string) (string, error) {
	s, err := OpenReadOnly(path)
	if err != nil {
		return "", err
	}
	defer s.Close()
	id, err := s.identity(ctx)
	if err != nil && strings.Contains(err.Error(), "no such table") {
		return "", fmt.Errorf("%s is not a lastgood state database: %w", path, err)
	}
	return id, err
}

// markerFor is the identity dir keeps for a store whose own identity is id
// ("" for a store from before identities): dir's marker, or a new one when
// dir has none. It is ErrMismatch, with dir's marker, when the two differ.
func markerFor(dir, id string) (Marker, error) {
	m, err := readMarker(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		m = Marker{ID: id, Created: now()}
		if id == "" {
			m.ID = newID()
		}
		return m, nil
	case err != nil:
		return m, err
	case id != "" && id != m.ID:
		return m, ErrMismatch
	}
	return m, nil
}
