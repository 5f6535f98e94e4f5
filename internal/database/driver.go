package database

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"syscall"

	"github.com/lastgood/lastgood/internal/manifest"
)

// querier runs SQL: a *sql.Conn or a *sql.Tx.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// driver is what differs between PostgreSQL and SQLite.
type driver interface {
	// open connects to the database at url and checks that it answers.
	open(ctx context.Context, url string) (*sql.DB, error)
	// split parses a migration file into its statements.
	split(file, sql string) ([]stmt, error)
	// empty makes an empty scratch database beside the live one, where
	// the migrations are replayed; drop removes it.
	empty(ctx context.Context, live *sql.DB, url string) (db *sql.DB, drop func(), err error)
	// copy makes a scratch copy of the live database with its data, or
	// returns nil when the driver cannot (PostgreSQL: the replayed empty
	// one stands for it).
	copy(ctx context.Context, live *sql.DB, url string) (db *sql.DB, drop func(), err error)
	snapshot(ctx context.Context, q querier) (*Schema, error)
	// hasVersionTable tells whether schema_migrations exists.
	hasVersionTable(ctx context.Context, q querier) (bool, error)
	// lock serializes migrations of one database inside tx.
	lock(ctx context.Context, tx *sql.Tx) error
	// where names the database for people, without a password.
	where(url string) string
}

func driverFor(name string) (driver, error) {
	switch name {
	case manifest.DriverPostgres:
		return postgres{}, nil
	case manifest.DriverSQLite:
		return sqlite{}, nil
	}
	return nil, fmt.Errorf("unknown database driver %q", name)
}

// ErrUnreachable marks a database that could not be connected to.
var ErrUnreachable = errors.New("database unreachable")

// unreachable wraps a connection error so that it names the host and port
// and what went wrong, never the URL's password.
func unreachable(where string, err error) error {
	return fmt.Errorf("%w: cannot connect to %s: %s", ErrUnreachable, where, cause(err))
}

// cause is the root of a connection error in words: "connection refused",
// "password authentication failed for user app".
func cause(err error) string {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		var se *os.SyscallError
		if errors.As(op.Err, &se) {
			return se.Err.Error()
		}
		return op.Err.Error()
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return dns.Err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "no answer in time"
	}
	return err.Error()
}

// hostPort is "host:port" of a postgres URL, with the default port.
func hostPort(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "the database"
	}
	port := u.Port()
	if port == "" {
		port = "5432"
	}
	return net.JoinHostPort(u.Hostname(), port)
}
