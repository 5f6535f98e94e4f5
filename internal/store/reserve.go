package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// IsFull reports whether err is SQLite's "database or disk is full" or a
// write the filesystem refused for lack of space.
func IsFull(err error) bool {
	if se, ok := errors.AsType[*sqlite.Error](err); ok && se.Code()&0xff == sqlite3.SQLITE_FULL {
		return true
	}
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// isStorageError reports whether err says the database file could not be
// written or read (full, I/O error, damaged), as opposed to a write that
// was refused for what it asked (a constraint, a missing row).
func isStorageError(err error) bool {
	if IsFull(err) {
		return true
	}
	se, ok := errors.AsType[*sqlite.Error](err)
	if !ok {
		return false
	}
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CANTOPEN,
		sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PROTOCOL, sqlite3.SQLITE_NOLFS:
		return true
	}
	return false
}

// isDamage reports whether err says the database file is damaged.
func isDamage(err error) bool {
	se, ok := errors.AsType[*sqlite.Error](err)
	if !ok {
		return false
	}
	c := se.Code() & 0xff
	return c == sqlite3.SQLITE_CORRUPT || c == sqlite3.SQLITE_NOTADB
}

// reserve is a file of preallocated space beside state.db, given up the
// moment a write finds the disk full, so that the write — a rollback,
// most urgently — can still be recorded, and taken back (Maintain) once
// the disk has room for it twice over. Its methods run under the store's
// write lock.
type reserve struct {
	path string
	size int64
	// released is when the file was given up; zero while it is in place.
	released time.Time
	health   *health
}

// reserveCheck is how often Maintain looks for room to take the reserve
// back; a variable for the tests.
var reserveCheck = 5 * time.Second

// openReserve makes sure the reserve file holds size bytes. When the disk
// has no room for it, the store starts without one and takes it when room
// returns.
func openReserve(path string, size int64, h *health) *reserve {
	r := &reserve{path: path, size: size, health: h}
	if fi, err := os.Stat(path); err == nil && fi.Size() >= size {
		h.setReserve(fmt.Sprintf("%s in place (%s)", bytesText(size), path))
		return r
	}
	if err := allocate(path, size); err != nil {
		r.released = now()
		h.setReserve(fmt.Sprintf("none: cannot allocate %s at %s: %v", bytesText(size), path, err))
		return r
	}
	h.setReserve(fmt.Sprintf("%s in place (%s)", bytesText(size), path))
	return r
}

// release gives the reserve up after cause (a full disk) and returns the
// event that says so; false when there was no reserve left to give.
func (r *reserve) release(cause error) (Event, bool) {
	if !r.released.IsZero() {
		return Event{}, false
	}
	if err := os.Remove(r.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return Event{}, false
	}
	r.released = now()
	r.health.setReserve(fmt.Sprintf("released at %s: the disk was full", r.released.Format(time.RFC3339)))
	return Event{Time: r.released, Type: "store.reserve-released",
		Message: fmt.Sprintf("the disk holding state.db is full (%v): gave up the %s reserve so that lastgood can go on recording; "+
			"free space on the disk: lastgood takes the reserve back by itself", cause, bytesText(r.size)),
		Data: mustData(map[string]any{"bytes": r.size, "error": cause.Error()})}, true
}

// restore takes the reserve back when it was given up, once the disk has
// room for it twice over; it returns the event that says so.
func (r *reserve) restore() (Event, bool) {
	if r.released.IsZero() {
		return Event{}, false
	}
	free, err := freeSpace(filepath.Dir(r.path))
	if err != nil || free < 2*r.size {
		return Event{}, false
	}
	if err := allocate(r.path, r.size); err != nil {
		return Event{}, false
	}
	was := r.released
	r.released = time.Time{}
	r.health.setReserve(fmt.Sprintf("%s in place (%s)", bytesText(r.size), r.path))
	return Event{Time: now(), Type: "store.reserve-restored",
		Message: fmt.Sprintf("there is room on the disk again: the %s reserve is back in place (it was given up at %s)",
			bytesText(r.size), was.Format(time.RFC3339)),
		Data: mustData(map[string]any{"bytes": r.size, "freeBytes": free})}, true
}

// allocate creates the file at path with size bytes of blocks really
// allocated: fallocate where the filesystem has it, zeros written where
// not. A file it could not complete is removed.
func allocate(path string, size int64) (err error) {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(tmp, path)
		}
		if err != nil {
			os.Remove(tmp)
		}
	}()
	if err := syscall.Fallocate(int(f.Fd()), 0, 0, size); err == nil {
		return f.Sync()
	} else if !errors.Is(err, syscall.EOPNOTSUPP) && !errors.Is(err, syscall.ENOSYS) {
		return err
	}
	zeros := make([]byte, 1<<20)
	for left := size; left > 0; {
		n := min(left, int64(len(zeros)))
		if _, err := f.Write(zeros[:n]); err != nil {
			return err
		}
		left -= n
	}
	return f.Sync()
}

// freeSpace is how many bytes an unprivileged process may still write to
// the filesystem holding dir.
func freeSpace(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * st.Bsize, nil
}

func bytesText(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
