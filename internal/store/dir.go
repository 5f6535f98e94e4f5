package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// The files of a data directory that guard its database; see
// docs/store.md.
const (
	DBFile      = "state.db"
	MarkerFile  = "store.id"        // the directory's identity
	AnchorFile  = "chain-head.json" // the newest event, outside the database
	ReserveFile = "reserve"         // preallocated space for a full disk
	LockFile    = "store.lock"      // held by the one process that writes
)

// typeCreated is the event that records a data directory's identity in
// its database: the first event a new store appends.
const typeCreated = "store.created"

// Errors OpenDir and the recovery commands refuse a data directory with.
var (
	// ErrMismatch: state.db is not the database of this data directory
	// (empty or missing beside what an earlier one left, or another
	// directory's).
	ErrMismatch = errors.New("state.db does not belong to this data directory")
	// ErrRewound: the log ends before the event the anchor names, or that
	// event differs: state.db was cut back or rewritten.
	ErrRewound = errors.New("state.db is behind its anchor")
	// ErrDamaged: a file is unreadable or fails its integrity check.
	ErrDamaged = errors.New("damaged")
	// ErrLocked: another lastgood has the data directory open.
	ErrLocked = errors.New("the data directory is in use")
)

// StartError is a refusal to open a data directory: what is wrong and
// the commands that recover from it.
type StartError struct {
	Dir      string
	Err      error
	Recovery []string
}

func (e *StartError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "refusing to start on %s: %v", e.Dir, e.Err)
	if len(e.Recovery) > 0 {
		b.WriteString("\nto recover (with lastgood stopped):")
		for _, r := range e.Recovery {
			b.WriteString("\n  " + r)
		}
	}
	return b.String()
}

func (e *StartError) Unwrap() error { return e.Err }

// Marker is the content of store.id: the identity a data directory was
// given when its store was created, also recorded in the database by the
// store.created event.
type Marker struct {
	ID      string    `json:"id"`
	Created time.Time `json:"created"`
}

// DirOptions tune OpenDir.
type DirOptions struct {
	// Reserve is how many bytes to keep preallocated beside state.db for a
	// full disk; 0 keeps none.
	Reserve int64
	// Witnesses are heads of the log recorded elsewhere (the incident
	// bundles'), checked at start like the anchor.
	Witnesses []Witness
}

// OpenDir opens the store of data directory dir for lastgood serve. It
// refuses (a *StartError) a state.db that does not belong to the
// directory — missing or empty while the directory has an identity,
// artifacts or incidents; another directory's — and one that is behind
// its anchor. A state.db that fails PRAGMA quick_check opens read-only,
// with the damage in Health, so that lastgood can serve what it can still
// prove. A new directory is given an identity.
func OpenDir(dir string, opt DirOptions) (*Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("data directory %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	unlock, err := lockDir(abs)
	if err != nil {
		return nil, err
	}
	s, err := openDir(abs, opt)
	if err != nil {
		unlock()
		return nil, err
	}
	s.unlock = unlock
	return s, nil
}

func openDir(dir string, opt DirOptions) (*Store, error) {
	ctx := context.Background()
	marker, err := readMarker(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, &StartError{Dir: dir, Err: err, Recovery: recoverLost(dir)}
	}
	hasMarker := err == nil
	dbPath := filepath.Join(dir, DBFile)
	if isEmptyDB(dbPath) {
		if hasMarker {
			return nil, &StartError{Dir: dir, Err: fmt.Errorf("%w: state.db is missing or empty, but this data directory was created %s (identity %s): its state was lost",
				ErrMismatch, marker.Created.UTC().Format(time.RFC3339), marker.ID), Recovery: recoverLost(dir)}
		}
		if left := leftovers(dir); left != "" {
			return nil, &StartError{Dir: dir, Err: fmt.Errorf("%w: state.db is missing or empty, but the data directory holds %s from an earlier store: its state was lost",
				ErrMismatch, left), Recovery: recoverLost(dir)}
		}
		return createDir(ctx, dir, opt)
	}
	db, err := openDB(dbPath, false)
	if err != nil {
		return nil, err
	}
	s := &Store{db: db, reader: reader{q: db}, dir: dir}
	if damage := quickCheck(ctx, db); len(damage) > 0 {
		why := fmt.Sprintf("state.db failed its integrity check (PRAGMA quick_check): %s", damage[0])
		s.readOnly = fmt.Errorf("%w: %s", ErrReadOnly, why)
		s.health.setReadOnly(why, damage)
		return s, nil
	}
	if err := migrate(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("open state database %s: %w", dbPath, err)
	}
	id, err := s.identity(ctx)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open state database %s: %w", dbPath, err)
	}
	switch {
	case hasMarker && id == "":
		db.Close()
		return nil, &StartError{Dir: dir, Err: fmt.Errorf("%w: state.db records no identity, but this data directory is %s: it is a database from elsewhere",
			ErrMismatch, marker.ID), Recovery: recoverLost(dir)}
	case hasMarker && id != marker.ID:
		db.Close()
		return nil, &StartError{Dir: dir, Err: fmt.Errorf("%w: state.db belongs to data directory %s, but this one is %s",
			ErrMismatch, id, marker.ID), Recovery: recoverLost(dir)}
	case !hasMarker:
		// A directory from before identities (or a first start cut short
		// between the database and the marker): it adopts what it holds.
		if id, err = adopt(ctx, s, dir, id); err != nil {
			db.Close()
			return nil, err
		}
	}
	anchored, err := s.checkAnchorFile(ctx, id, opt.Witnesses)
	if err != nil {
		db.Close()
		return nil, err
	}
	head, err := s.Head(ctx)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open state database %s: %w", dbPath, err)
	}
	s.anchor = startAnchor(filepath.Join(dir, AnchorFile), id, anchored)
	s.anchor.set(head) // a database ahead of its anchor (a crash between the two) catches it up
	if opt.Reserve > 0 {
		s.reserve = openReserve(filepath.Join(dir, ReserveFile), opt.Reserve, &s.health)
	}
	return s, nil
}

// createDir makes a new store: the database with its store.created event,
// the anchor, then the marker — so that a start cut short anywhere leaves
// a directory the next start accepts.
func createDir(ctx context.Context, dir string, opt DirOptions) (*Store, error) {
	s, err := Open(filepath.Join(dir, DBFile))
	if err != nil {
		return nil, err
	}
	s.dir = dir
	m := Marker{ID: newID(), Created: now()}
	if err := s.recordIdentity(ctx, m.ID, "a new store"); err != nil {
		s.Close()
		return nil, err
	}
	head, err := s.Head(ctx)
	if err == nil {
		err = writeAnchor(filepath.Join(dir, AnchorFile), Anchor{Store: m.ID, Head: head, Written: now()})
	}
	if err == nil {
		err = writeMarker(dir, m)
	}
	if err != nil {
		s.Close()
		return nil, err
	}
	s.anchor = startAnchor(filepath.Join(dir, AnchorFile), m.ID, head)
	if opt.Reserve > 0 {
		s.reserve = openReserve(filepath.Join(dir, ReserveFile), opt.Reserve, &s.health)
	}
	return s, nil
}

// adopt gives a directory without a marker the identity its database
// records, or a new one, and writes its marker.
func adopt(ctx context.Context, s *Store, dir, id string) (string, error) {
	if id == "" {
		id = newID()
		if err := s.recordIdentity(ctx, id, "an existing store, from before data directories had one"); err != nil {
			return "", err
		}
	}
	head, err := s.Head(ctx)
	if err != nil {
		return "", err
	}
	if err := writeAnchor(filepath.Join(dir, AnchorFile), Anchor{Store: id, Head: head, Written: now()}); err != nil {
		return "", err
	}
	return id, writeMarker(dir, Marker{ID: id, Created: now()})
}

// checkAnchorFile compares the anchor, and the extra witnesses, with the
// log and returns the head the anchor names. Witnesses written before the
// last recovery are not held against the log.
func (s *Store) checkAnchorFile(ctx context.Context, id string, extra []Witness) (Head, error) {
	path := filepath.Join(s.dir, AnchorFile)
	a, err := readAnchor(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return Head{}, &StartError{Dir: s.dir, Err: fmt.Errorf("%w: %s is missing, so a cut-back state.db cannot be ruled out", ErrRewound, AnchorFile),
			Recovery: recoverRewound(s.dir)}
	case err != nil:
		return Head{}, &StartError{Dir: s.dir, Err: err, Recovery: recoverRewound(s.dir)}
	case a.Store != id:
		return Head{}, &StartError{Dir: s.dir, Err: fmt.Errorf("%w: %s belongs to data directory %s, but this one is %s", ErrMismatch, AnchorFile, a.Store, id),
			Recovery: recoverRewound(s.dir)}
	}
	witnesses := append([]Witness{{Name: "the anchor written after every commit", Head: a.Head, Written: a.Written}}, extra...)
	since, err := s.lastRecovery(ctx)
	if err != nil {
		return Head{}, err
	}
	for _, w := range witnesses {
		if !w.Written.IsZero() && w.Written.Before(since) {
			continue // it names the log a recovery replaced
		}
		if err := compareWitness(ctx, s.reader, w); err != nil {
			if errors.Is(err, ErrRewound) {
				return Head{}, &StartError{Dir: s.dir, Err: err, Recovery: recoverRewound(s.dir)}
			}
			return Head{}, err
		}
	}
	return a.Head, nil
}

// identity returns the identity the database records, "" for none.
func (r reader) identity(ctx context.Context) (string, error) {
	var data sql.NullString
	err := r.q.QueryRowContext(ctx, `SELECT data FROM events WHERE app = '' AND type = ? ORDER BY seq LIMIT 1`, typeCreated).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read the store's identity: %w", err)
	}
	var d struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(data.String), &d); err != nil || d.ID == "" {
		return "", fmt.Errorf("read the store's identity: %w: %s event without an id", ErrDamaged, typeCreated)
	}
	return d.ID, nil
}

func (s *Store) recordIdentity(ctx context.Context, id, what string) error {
	return s.Update(ctx, func(tx *Tx) error {
		_, err := tx.AppendEvent(Event{Type: typeCreated,
			Message: fmt.Sprintf("this data directory's identity is %s (given to %s)", id, what),
			Data:    mustData(map[string]any{"id": id})})
		return err
	})
}

// quickCheck runs PRAGMA quick_check and returns what it found wrong, at
// most 20 lines.
func quickCheck(ctx context.Context, db *sql.DB) []string {
	rows, err := db.QueryContext(ctx, "PRAGMA quick_check(20)")
	if err != nil {
		return []string{err.Error()}
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return append(out, err.Error())
		}
		for _, l := range strings.Split(line, "\n") {
			if l != "ok" && l != "" && !strings.HasPrefix(l, "*** in database") {
				out = append(out, l)
			}
		}
	}
	if err := rows.Err(); err != nil {
		out = append(out, err.Error())
	}
	return out
}

// isEmptyDB reports whether path holds no database: no file, or an empty
// one with no write-ahead log beside it.
func isEmptyDB(path string) bool {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return true
	}
	if err != nil || fi.Size() > 0 {
		return false
	}
	wal, err := os.Stat(path + "-wal")
	return err != nil || wal.Size() == 0
}

// leftovers describes what an earlier store left in dir: artifacts and
// incident bundles; "" for none.
func leftovers(dir string) string {
	var parts []string
	if n := countEntries(filepath.Join(dir, "artifacts", "sha256")); n > 0 {
		parts = append(parts, fmt.Sprintf("%d artifacts", n))
	}
	if n := countEntries(filepath.Join(dir, "incidents")); n > 0 {
		parts = append(parts, fmt.Sprintf("%d incidents", n))
	}
	return strings.Join(parts, " and ")
}

func countEntries(dir string) int {
	es, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range es {
		if !strings.HasPrefix(e.Name(), ".") && !strings.HasSuffix(e.Name(), ".tmp") {
			n++
		}
	}
	return n
}

func readMarker(dir string) (Marker, error) {
	path := filepath.Join(dir, MarkerFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return Marker{}, err
	}
	var m Marker
	if err := json.Unmarshal(b, &m); err != nil || m.ID == "" {
		return Marker{}, fmt.Errorf("%s: %w: not a data directory identity", path, ErrDamaged)
	}
	return m, nil
}

// writeMarker writes store.id whole (temporary file, sync, rename, and the
// directory synced: the marker is written once and must survive).
func writeMarker(dir string, m Marker) error {
	path := filepath.Join(dir, MarkerFile)
	if err := writeJSONFile(path, m, true); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func newID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// lockDir takes the data directory's store lock, refusing when another
// process holds it; the function returned releases it.
func lockDir(dir string) (func(), error) {
	path := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock the data directory: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: another lastgood has %s open (stop it first)", ErrLocked, dir)
		}
		return nil, fmt.Errorf("lock the data directory: %w", err)
	}
	return func() { f.Close() }, nil
}

// recoverLost are the commands that recover a directory whose state.db
// was lost or replaced.
func recoverLost(dir string) []string {
	return []string{
		fmt.Sprintf("lastgood audit verify --data %s              # see what the directory holds", dir),
		fmt.Sprintf("lastgood restore --data %s BACKUP.db         # put back a copy made by `lastgood backup`", dir),
		fmt.Sprintf("lastgood restore --data %s --fresh           # or start over with an empty store (the old state.db is kept beside it; artifacts and incidents stay)", dir),
	}
}

// recoverRewound are the commands that recover a directory whose state.db
// is behind its anchor.
func recoverRewound(dir string) []string {
	return []string{
		fmt.Sprintf("lastgood audit verify --data %s              # see what is missing", dir),
		fmt.Sprintf("lastgood restore --data %s BACKUP.db         # put back a copy made by `lastgood backup`", dir),
		fmt.Sprintf("lastgood restore --data %s --accept          # or accept state.db as it is; the loss is recorded in the event log", dir),
	}
}
