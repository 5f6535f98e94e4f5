// Package artifact keeps content-addressed, read-only copies of the files a
// revision runs with (binaries, config files), so that a revision always
// runs the exact bytes it was applied with, however the originals change.
//
// Copies live at <dir>/sha256/<hex>, where hex is the SHA-256 of the
// content, with mode 0555. Digests are written "sha256:<64 lowercase hex>".
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
	"strings"
)

// Errors callers branch on.
var (
	// ErrBadDigest means a digest string is not "sha256:" followed by 64
	// lowercase hex digits.
	ErrBadDigest = errors.New("bad digest")
	// ErrNotFile means a path names a directory or another non-regular file.
	ErrNotFile = errors.New("not a regular file")
	// ErrCorrupt means a stored copy no longer hashes to its digest.
	ErrCorrupt = errors.New("stored copy is corrupt")
)

const (
	algo       = "sha256"
	prefix     = algo + ":"
	hexLen     = sha256.Size * 2
	copyMode   = 0o555 // readable and executable by all, writable by none
	tempPrefix = ".put-"
)

// Store is a directory of content-addressed artifact copies. It is safe for
// concurrent use, including by several processes sharing the directory.
type Store struct {
	dir string
}

// Open returns the store in dir, creating the directory if needed.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(filepath.Join(dir, algo), 0o755); err != nil {
		return nil, fmt.Errorf("open artifact store: %w", err)
	}
	return &Store{dir: dir}, nil
}

// Dir is the directory the store was opened on.
func (s *Store) Dir() string { return s.dir }

// Has reports whether a copy with this digest is stored. A malformed digest
// is never stored.
func (s *Store) Has(digest string) bool {
	p, err := s.location(digest)
	if err != nil {
		return false
	}
	info, err := os.Lstat(p)
	return err == nil && info.Mode().IsRegular()
}

// Path returns the path of the stored copy with this digest. It fails with
// ErrBadDigest for a malformed digest and with an error wrapping
// fs.ErrNotExist when no such copy is stored.
func (s *Store) Path(digest string) (string, error) {
	p, err := s.location(digest)
	if err != nil {
		return "", err
	}
	if _, err := os.Lstat(p); err != nil {
		return "", fmt.Errorf("artifact %s: %w", digest, err)
	}
	return p, nil
}

// location maps a digest to its path without touching the disk.
func (s *Store) location(digest string) (string, error) {
	hexPart, err := parseDigest(digest)
	if err != nil {
		return "", err
	}
	return filepath.Join(s.dir, algo, hexPart), nil
}

// parseDigest returns the hex part of a well-formed digest.
func parseDigest(digest string) (string, error) {
	hexPart, ok := strings.CutPrefix(digest, prefix)
	if !ok || len(hexPart) != hexLen || !isLowerHex(hexPart) {
		return "", fmt.Errorf("%w: %q (want %s<%d lowercase hex digits>)", ErrBadDigest, digest, prefix, hexLen)
	}
	return hexPart, nil
}

func isLowerHex(s string) bool {
	for _, c := range []byte(s) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Digest hashes the regular file at path the way the store names copies.
func Digest(path string) (string, error) {
	f, err := openRegular(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	d, err := DigestReader(f)
	if err != nil {
		return "", fmt.Errorf("digest %s: %w", path, err)
	}
	return d, nil
}

// DigestReader hashes everything r yields the way the store names copies.
func DigestReader(r io.Reader) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", fmt.Errorf("hash: %w", err)
	}
	return prefix + hex.EncodeToString(h.Sum(nil)), nil
}

// openRegular opens path for reading and fails, naming the path, unless it
// is a regular file (symbolic links are followed).
func openRegular(path string) (*os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("artifact: %w", err)
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("artifact: %w", err)
	}
	if !info.Mode().IsRegular() {
		f.Close()
		kind := "it is a directory"
		if !info.IsDir() {
			kind = "mode " + info.Mode().Type().String()
		}
		return nil, fmt.Errorf("artifact %s: %w (%s)", path, ErrNotFile, kind)
	}
	return f, nil
}

// errNotExist reports whether err means a file is missing.
func errNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
