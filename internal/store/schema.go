package store

import (
	"context"
	"database/sql"
	"fmt"
)

// migrations bring the schema from version i to i+1 (PRAGMA user_version).
// Append new steps; never edit or reorder existing ones, since databases in
// the field have already run them.
var migrations = []string{
	// 1: apps, revisions, rollouts, the event log and its head.
	`
CREATE TABLE apps (
	name    TEXT PRIMARY KEY,
	listen  TEXT NOT NULL,
	stable  INTEGER NOT NULL DEFAULT 0,
	latest  INTEGER NOT NULL DEFAULT 0,
	created TEXT NOT NULL,
	updated TEXT NOT NULL
) STRICT;

CREATE TABLE revisions (
	app       TEXT NOT NULL REFERENCES apps(name),
	number    INTEGER NOT NULL,
	digest    TEXT NOT NULL,
	manifest  TEXT NOT NULL,
	source    TEXT NOT NULL,
	artifacts TEXT NOT NULL, -- JSON object: path as written -> sha256:…
	origin    TEXT NOT NULL CHECK (origin IN ('apply', 'undo')),
	copy_of   INTEGER NOT NULL DEFAULT 0,
	created   TEXT NOT NULL,
	PRIMARY KEY (app, number)
) STRICT;
CREATE INDEX revisions_by_digest ON revisions(app, digest, number);

CREATE TABLE rollouts (
	id       INTEGER PRIMARY KEY AUTOINCREMENT,
	app      TEXT NOT NULL REFERENCES apps(name),
	from_rev INTEGER NOT NULL,
	to_rev   INTEGER NOT NULL,
	strategy TEXT NOT NULL,
	phase    TEXT NOT NULL CHECK (phase IN ('progressing', 'paused', 'promoted', 'rolled-back', 'aborted')),
	step     INTEGER NOT NULL,
	state    TEXT,
	trigger  TEXT NOT NULL,
	reason   TEXT NOT NULL,
	started  TEXT NOT NULL,
	updated  TEXT NOT NULL,
	ended    TEXT
) STRICT;
CREATE UNIQUE INDEX rollouts_one_unfinished ON rollouts(app) WHERE ended IS NULL;
CREATE INDEX rollouts_by_app ON rollouts(app, id);

CREATE TABLE events (
	seq       INTEGER PRIMARY KEY,
	time      TEXT NOT NULL,
	app       TEXT NOT NULL,
	rollout   INTEGER NOT NULL,
	revision  INTEGER NOT NULL,
	type      TEXT NOT NULL,
	message   TEXT NOT NULL,
	data      TEXT,
	prev_hash TEXT NOT NULL,
	hash      TEXT NOT NULL
) STRICT;
CREATE INDEX events_by_app ON events(app, seq);
CREATE INDEX events_by_rollout ON events(rollout, seq);

CREATE TABLE chain_head (
	id   INTEGER PRIMARY KEY CHECK (id = 1),
	seq  INTEGER NOT NULL,
	hash TEXT NOT NULL
) STRICT;
INSERT INTO chain_head (id, seq, hash) VALUES (1, 0, '` + genesisHash + `');
`,
	// 2: deleted apps (their history is kept), and each rollout's number
	// among its app's rollouts (1, 2, 3 …), which names its incident.
	`
ALTER TABLE apps ADD COLUMN deleted TEXT;
ALTER TABLE rollouts ADD COLUMN number INTEGER NOT NULL DEFAULT 0;
UPDATE rollouts SET number = (SELECT COUNT(*) FROM rollouts AS earlier
	WHERE earlier.app = rollouts.app AND earlier.id <= rollouts.id);
CREATE UNIQUE INDEX rollouts_by_number ON rollouts(app, number);
`,
	// 3: who asked for each event (the API token's name), for the audit.
	`ALTER TABLE events ADD COLUMN actor TEXT NOT NULL DEFAULT '';`,
	// 4: feature flags: each change of a flag is a new, numbered,
	// immutable revision of it (docs/flags.md).
	`
CREATE TABLE flag_revisions (
	app     TEXT NOT NULL,
	key     TEXT NOT NULL,
	number  INTEGER NOT NULL,
	spec    TEXT NOT NULL, -- JSON: flags.Spec
	origin  TEXT NOT NULL CHECK (origin IN ('apply', 'set', 'off', 'on', 'undo')),
	copy_of INTEGER NOT NULL DEFAULT 0,
	actor   TEXT NOT NULL DEFAULT '',
	created TEXT NOT NULL,
	PRIMARY KEY (app, key, number)
) STRICT;
`,
}

// migrate runs the migrations the database has not seen yet, each in its
// own transaction together with the version bump.
func migrate(ctx context.Context, db *sql.DB) error {
	var version int
	if err := db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if version > len(migrations) {
		return fmt.Errorf("database schema version %d is newer than this lastgood understands (%d): upgrade lastgood", version, len(migrations))
	}
	for v := version; v < len(migrations); v++ {
		if err := migrateStep(ctx, db, v); err != nil {
			return err
		}
	}
	return nil
}

func migrateStep(ctx context.Context, db *sql.DB, from int) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate schema to version %d: %w", from+1, err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, migrations[from]); err != nil {
		return fmt.Errorf("migrate schema to version %d: %w", from+1, err)
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", from+1)); err != nil {
		return fmt.Errorf("migrate schema to version %d: %w", from+1, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate schema to version %d: %w", from+1, err)
	}
	return nil
}
