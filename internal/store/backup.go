package store

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Backup writes a consistent copy of the database to out, a file that
// must not exist yet, while writers go on (SQLite's VACUUM INTO reads one
// snapshot). The copy is written beside out, synced and renamed into
// place, so out is whole or absent.
func (s *Store) Backup(ctx context.Context, out string) error {
	if _, err := os.Lstat(out); err == nil {
		return fmt.Errorf("backup: %s: %w", out, fs.ErrExist)
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".*.tmp")
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	name := tmp.Name()
	tmp.Close()
	os.Remove(name) // VACUUM INTO wants a file that does not exist (or is empty)
	defer os.Remove(name)
	if _, err := s.db.ExecContext(ctx, `VACUUM INTO ?`, name); err != nil {
		return fmt.Errorf("backup to %s: %w", out, err)
	}
	// A copy holds what state.db holds (the real environment values of
	// every revision): readable by its owner only, as state.db is.
	if err := os.Chmod(name, 0o600); err != nil {
		return fmt.Errorf("backup to %s: %w", out, err)
	}
	if err := syncFile(name); err != nil {
		return fmt.Errorf("backup to %s: %w", out, err)
	}
	if err := os.Link(name, out); err != nil { // never replaces a file that appeared meanwhile
		return fmt.Errorf("backup to %s: %w", out, err)
	}
	return syncDir(filepath.Dir(out))
}

func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// VerifyFile opens a database file read-only (a backup, say) and verifies
// it as Verify does, without any witness.
func VerifyFile(ctx context.Context, path string) (Audit, error) {
	s, err := OpenReadOnly(path)
	if err != nil {
		return Audit{}, err
	}
	defer s.Close()
	if _, err := s.db.ExecContext(ctx, "SELECT 1 FROM chain_head"); err != nil {
		if isDamage(err) {
			return Audit{Problems: []Problem{{Kind: ProblemDamaged, Message: fmt.Sprintf("%s: %v", path, err)}}}, nil
		}
		return Audit{}, fmt.Errorf("%s is not a lastgood state database: %w", path, err)
	}
	return s.Verify(ctx)
}
