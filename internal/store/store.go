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
	"strings"
	"sync"

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
)

// Store is lastgood's state database. It is safe for concurrent use.
type Store struct {
	db     *sql.DB
	reader // read methods straight on the database

	writeMu sync.Mutex // serializes Update; held while committed events are published
	subs    subscribers
}

// Open opens, creating if needed, the database at path and brings its
// schema up to date.
func Open(path string) (*Store, error) {
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
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open state database %s: %w", path, err)
	}
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	if err := migrate(context.Background(), db); err != nil {
		db.Close()
		return nil, fmt.Errorf("open state database %s: %w", path, err)
	}
	return &Store{db: db, reader: reader{q: db}}, nil
}

// Close closes every subscription and the database.
func (s *Store) Close() error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.subs.closeAll()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close state database: %w", err)
	}
	return nil
}

// Update runs fn in one transaction: if fn returns an error (or panics)
// nothing it wrote is kept; otherwise everything is committed durably and
// the events it appended are then published to subscribers. Updates run one
// at a time; fn must not call Update (it would wait for itself).
func (s *Store) Update(ctx context.Context, fn func(tx *Tx) error) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	sqlTx, err := s.db.BeginTx(ctx, nil) // BEGIN IMMEDIATE, see Open
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
	if err := fn(tx); err != nil {
		return err
	}
	if err := sqlTx.Commit(); err != nil {
		return fmt.Errorf("commit update: %w", err)
	}
	committed = true
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
