// Package store keeps lastgood's durable state in one SQLite file: apps,
// their numbered revisions, rollouts, and the append-only, hash-chained
// event log that `lastgood audit verify` checks.
//
// Reads go straight to the database. Every write happens inside Update, in
// one SQLite transaction; writes are serialized, and events a transaction
// appends reach subscribers only after it commits. See docs/store.md for
// the schema and the hash chain.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// Errors callers branch on.
var (
	ErrNotFound = errors.New("not found")
	// ErrActiveRollout means the app already has an unfinished rollout.
	ErrActiveRollout = errors.New("app already has an unfinished rollout")
	// ErrInUse means a revision cannot be deleted: it is the app's stable
	// revision or part of an unfinished rollout.
	ErrInUse = errors.New("revision in use")
	// ErrInvalid means a value passed to a write is malformed.
	ErrInvalid = errors.New("invalid")
	// ErrReadOnly means the store takes no writes: it was opened read-only,
	// or it is damaged and lastgood serves what it can prove without it.
	ErrReadOnly = errors.New("the state database is read-only")
)

// Store is lastgood's state database. It is safe for concurrent use.
type Store struct {
	db     *sql.DB
	reader // read methods straight on the database

	writeMu sync.Mutex // serializes Update; held while committed events are published
	subs    subscribers

	// readOnly, when set, is returned by every Update: the database is
	// damaged or was opened for reading only.
	readOnly error
	// What guards a data directory's database (OpenDir); zero for Open.
	dir     string
	anchor  *anchorWriter
	reserve *reserve
	unlock  func()
	// notes are events the store itself appends, at the start of the next
	// Update that commits (the reserve given up or taken back).
	notes  []Event
	health health
}

// Open opens, creating if needed, the database at path and brings its
// schema up to date. It guards nothing else: OpenDir opens a data
// directory's database with its identity, anchor and reserve.
func Open(path string) (*Store, error) {
	db, err := openDB(path, false)
	if err != nil {
		return nil, err
	}
	if err := migrate(context.Background(), db); err != nil {
		db.Close()
		return nil, fmt.Errorf("open state database %s: %w", path, err)
	}
	return &Store{db: db, reader: reader{q: db}}, nil
}

// OpenReadOnly opens the database at path for reading only: a missing
// file is an error, nothing is migrated or written, and every Update fails
// with ErrReadOnly. It works while another process has the database open.
func OpenReadOnly(path string) (*Store, error) {
	db, err := openDB(path, true)
	if err != nil {
		return nil, err
	}
	if err := db.Ping(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open state database %s read-only: %w", path, err)
	}
	return &Store{db: db, reader: reader{q: db}, readOnly: fmt.Errorf("%w: %s was opened read-only", ErrReadOnly, path)}, nil
}

// OpenDirReadOnly opens the database of data directory dir for reading
// only, as OpenReadOnly does, with what guards it: Verify then also checks
// the directory's anchor and identity. The server may be running or not.
func OpenDirReadOnly(dir string) (*Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("data directory %s: %w", dir, err)
	}
	if fi, err := os.Stat(abs); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("data directory %s: not a directory", dir)
	}
	s, err := OpenReadOnly(filepath.Join(abs, DBFile))
	if err != nil {
		return nil, err
	}
	s.dir = abs
	return s, nil
}

// openDB opens a connection pool on path without touching the schema.
func openDB(path string, readOnly bool) (*sql.DB, error) {
	if strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("open state database %q: %w: the path must not contain '?' or '#'", path, ErrInvalid)
	}
	// Every connection: WAL (readers never wait for the writer), durable
	// commits, a generous busy timeout, foreign keys enforced. Transactions
	// begin IMMEDIATE so a writer takes the write lock up front instead of
	// failing to upgrade a read lock midway; read-only transactions begin
	// deferred.
	dsn := path + "?_txlock=immediate" +
		"&_pragma=busy_timeout(10000)" +
		"&_pragma=journal_mode(WAL)" +
		"&_pragma=synchronous(FULL)" +
		"&_pragma=foreign_keys(1)"
	if readOnly {
		// SQLite's own mode=ro works only in a file: URI; it never creates
		// the file and refuses every write. The journal mode is left as
		// the file has it (setting it would be a write).
		abs, err := filepath.Abs(path)
		if err != nil {
			return nil, fmt.Errorf("open state database %s: %w", path, err)
		}
		if _, err := os.Stat(abs); err != nil {
			return nil, fmt.Errorf("open state database read-only: %w", err)
		}
		dsn = (&url.URL{Scheme: "file", Path: abs, RawQuery: "mode=ro"}).String() +
			"&_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)"
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open state database %s: %w", path, err)
	}
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	return db, nil
}

// Close closes every subscription and the database; the anchor, when the
// store has one, is written up to the last commit first.
func (s *Store) Close() error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.subs.closeAll()
	var errs []error
	if s.anchor != nil {
		errs = append(errs, s.anchor.close())
	}
	if err := s.db.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close state database: %w", err))
	}
	if s.unlock != nil {
		s.unlock()
		s.unlock = nil
	}
	return errors.Join(errs...)
}

// Update runs fn in one transaction: if fn returns an error (or panics)
// nothing it wrote is kept; otherwise everything is committed durably and
// the events it appended are then published to subscribers. Updates run one
// at a time; fn must not call Update (it would wait for itself).
//
// When the disk is full and the store has a reserve (OpenDir), the reserve
// is given up and fn runs once more, in a new transaction, with an event
// saying so: fn must be safe to run twice.
func (s *Store) Update(ctx context.Context, fn func(tx *Tx) error) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.readOnly != nil {
		return s.readOnly
	}
	err := s.update(ctx, fn)
	if err != nil && IsFull(err) && s.reserve != nil {
		if note, ok := s.reserve.release(err); ok {
			s.notes = append(s.notes, note)
			err = s.update(ctx, fn)
		}
	}
	s.health.observe(err, now())
	return err
}

// Maintain takes the reserve back once the disk has room for it again,
// checking every few seconds, until ctx ends. lastgood serve runs it; a
// store without a reserve has nothing to maintain.
func (s *Store) Maintain(ctx context.Context) error {
	if s.reserve == nil {
		return nil
	}
	tick := time.NewTicker(reserveCheck)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		s.writeMu.Lock()
		note, ok := s.reserve.restore()
		if ok {
			s.notes = append(s.notes, note)
		}
		s.writeMu.Unlock()
		if ok { // record it now: the store may be idle
			s.Update(ctx, func(*Tx) error { return nil })
		}
	}
}

// update is one attempt of Update. s.writeMu is held.
func (s *Store) update(ctx context.Context, fn func(tx *Tx) error) error {
	sqlTx, err := s.db.BeginTx(ctx, nil) // BEGIN IMMEDIATE, see openDB
	if err != nil {
		return fmt.Errorf("begin update: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			sqlTx.Rollback()
		}
	}()
	tx := &Tx{reader: reader{q: sqlTx}, ctx: ctx, tx: sqlTx}
	for _, n := range s.notes {
		if _, err := tx.AppendEvent(n); err != nil {
			return err
		}
	}
	if err := fn(tx); err != nil {
		return err
	}
	if err := sqlTx.Commit(); err != nil {
		return fmt.Errorf("commit update: %w", err)
	}
	committed = true
	s.notes = nil
	if n := len(tx.appended); n > 0 && s.anchor != nil {
		last := tx.appended[n-1]
		s.anchor.set(Head{Seq: last.Seq, Hash: last.Hash})
	}
	s.subs.publish(tx.appended)
	return nil
}

// Tx is one Update's transaction. It reads what the transaction has written
// so far. It must not be used after fn returns.
type Tx struct {
	reader
	ctx      context.Context
	tx       *sql.Tx
	appended []Event
}
