package artifact

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Put copies everything r yields into the store and returns its digest.
// The content is streamed to a temporary file beside the copies while it is
// hashed, synced, made read-only and then linked into place, so a copy is
// either complete or absent, even across a crash. Putting content that is
// already stored is a no-op, except that a stored copy found corrupt is
// replaced by the fresh one. Concurrent Puts of the same content are safe.
func (s *Store) Put(r io.Reader) (string, error) {
	tmp, digest, err := s.writeTemp(r)
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp) // after a successful link this removes only the temporary name
	if err := s.install(tmp, digest); err != nil {
		return "", err
	}
	return digest, nil
}

// PutFile stores a copy of the regular file at path. It fails with an error
// wrapping fs.ErrNotExist when path is missing and ErrNotFile when it is a
// directory; both name the path.
func (s *Store) PutFile(path string) (string, error) {
	f, err := openRegular(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	d, err := s.Put(f)
	if err != nil {
		return "", fmt.Errorf("store %s: %w", path, err)
	}
	return d, nil
}

// writeTemp streams r into a new synced, read-only temporary file and
// returns its name and the content's digest.
func (s *Store) writeTemp(r io.Reader) (name, digest string, err error) {
	f, err := os.CreateTemp(s.dir, tempPrefix+"*")
	if err != nil {
		return "", "", fmt.Errorf("put artifact: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(f, h), r); err != nil {
		return "", "", fmt.Errorf("put artifact: copy: %w", err)
	}
	if err := f.Chmod(copyMode); err != nil {
		return "", "", fmt.Errorf("put artifact: %w", err)
	}
	if err := f.Sync(); err != nil {
		return "", "", fmt.Errorf("put artifact: sync: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", "", fmt.Errorf("put artifact: %w", err)
	}
	return f.Name(), prefix + hex.EncodeToString(h.Sum(nil)), nil
}

// install gives the temporary file tmp its content-addressed name. A hard
// link never replaces an existing copy, so concurrent installs of the same
// content cannot disturb a copy someone is already running; only a copy
// that fails verification is replaced.
func (s *Store) install(tmp, digest string) error {
	final, err := s.location(digest)
	if err != nil {
		return err
	}
	err = os.Link(tmp, final)
	switch {
	case err == nil:
	case errors.Is(err, fs.ErrExist):
		verr := s.Verify(digest)
		if verr == nil {
			return nil
		}
		if !errors.Is(verr, ErrCorrupt) && !errNotExist(verr) {
			return fmt.Errorf("put artifact: check existing copy: %w", verr)
		}
		if err := os.Rename(tmp, final); err != nil {
			return fmt.Errorf("put artifact: replace corrupt copy: %w", err)
		}
	default:
		return fmt.Errorf("put artifact: %w", err)
	}
	return syncDir(filepath.Dir(final))
}

// syncDir makes a new directory entry durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// Verify re-hashes the stored copy with this digest. It returns an error
// wrapping ErrCorrupt when the content changed, fs.ErrNotExist when the
// copy is missing and ErrBadDigest for a malformed digest.
func (s *Store) Verify(digest string) error {
	p, err := s.location(digest)
	if err != nil {
		return err
	}
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("verify artifact %s: %w", digest, err)
	}
	defer f.Close()
	got, err := DigestReader(f)
	if err != nil {
		return fmt.Errorf("verify artifact %s: %w", digest, err)
	}
	if got != digest {
		return fmt.Errorf("verify artifact %s: %w: its content now hashes to %s", digest, ErrCorrupt, got)
	}
	return nil
}
