// Sampleapp is a tiny HTTP service that lastgood's tests, benchmarks and
// `lastgood demo` deliver. It uses only the standard library and listens on
// 127.0.0.1:$PORT.
//
// Endpoints:
//
//	GET /         200 "hello from <LASTGOOD_APP> revision <LASTGOOD_REVISION> version <version>\n"
//	GET /healthz  200 "ok" once listening, 503 while starting, shutting down or never ready
//	GET /livez    200 "alive", 503 once FAULT_UNHEALTHY_AFTER has passed
//	GET /stream   five chunks, each flushed, 50ms apart
//	GET /slow     sleeps for ?d= (a Go duration, default 1s, at most 1m), then answers 200
//	POST /upload  reads the whole request body, then answers 200 "<n> bytes\n"
//
// The version is set at build time: go build -ldflags "-X main.version=v2".
//
// Faults are switched on by environment variables, so that a "bad release"
// is the same binary with a different environment:
//
//	FAULT_ERROR_RATE     0..1: share of GET / answered 500. The draws come from
//	                     a generator seeded with FAULT_SEED (default 1), so a run
//	                     is repeatable given the same request order.
//	FAULT_LATENCY        Go duration added to every request except /healthz.
//	FAULT_CRASH_AFTER    Go duration; after it the process exits with status 1.
//	FAULT_NEVER_READY=1  /healthz always answers 503.
//	FAULT_UNREADY_FILE   a path: /healthz answers 503 while a file exists there
//	                     (a test makes a replica unready from outside).
//	FAULT_UNHEALTHY_AFTER Go duration; after it /livez answers 503 (a liveness
//	                     probe on /livez then fails while the process runs).
//	FAULT_START_DELAY    Go duration slept before listening.
//	FAULT_PANIC_EVERY    Go duration; at this period the line
//	                     "panic: simulated failure" is written to stderr.
//	FAULT_MEMORY_GROWTH  bytes per second allocated and kept (an integer with an
//	                     optional Ki, Mi or Gi suffix).
//	FAULT_EXIT_ON_START=1 exit with status 3 before doing anything else.
//	FAULT_DEPENDENCY     a path; while a file is there, GET / answers 503
//	                     "dependency down": a shared dependency that fails every
//	                     revision reading the same path at once.
//	FAULT_FAIL_PATH      a path prefix: every request whose path starts with it
//	                     answers 500 (the probes' paths excepted).
//	FAULT_NOT_FOUND=1    every page answers 404 (the probes' paths excepted).
//
// Database mode, when DB_TABLE is set: GET / inserts a row into a table
// and reads one back through the columns this release expects, so that a
// release running on a schema it cannot use (a column renamed or dropped
// under it) answers 500 "database: …" with the database's error.
//
//	DATABASE_URL  postgres://user:pass@host:port/db (pgx), or the path of a
//	              SQLite file (modernc.org/sqlite; the app switches it to
//	              WAL, so that lastgood reads it while the app writes). Not
//	              connected at start: the first request connects.
//	DB_TABLE      the table; without it DATABASE_URL alone changes nothing
//	              (lastgood runs a release's migrations with it).
//	DB_COLUMNS    the columns, separated by commas (default message); each
//	              is written "revision <LASTGOOD_REVISION>" and read back.
//	              GET / then answers 200 with the greeting and a line
//	              "row: <column>=<value> …".
//
// A malformed fault variable, table or column name is a usage error: the process exits with status 2.
// On SIGTERM or SIGINT the server shuts down gracefully (in-flight requests
// finish) and the process exits 0.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"
)

// version is overwritten at link time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if os.Getenv("FAULT_EXIT_ON_START") == "1" {
		fmt.Fprintln(os.Stderr, "sampleapp: FAULT_EXIT_ON_START=1, exiting")
		os.Exit(3)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "sampleapp:", err)
		var usage usageError
		if errors.As(err, &usage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// usageError marks a bad environment, which exits with status 2.
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

// errCrash is returned when FAULT_CRASH_AFTER fires.
var errCrash = errors.New("simulated crash (FAULT_CRASH_AFTER)")

// run serves until ctx ends or a crash fault fires.
func run(ctx context.Context, getenv func(string) string, stderr io.Writer) error {
	port := getenv("PORT")
	if port == "" {
		return usageError{errors.New("PORT is not set")}
	}
	f, err := parseFaults(getenv)
	if err != nil {
		return usageError{err}
	}
	st, err := openStore(getenv)
	if err != nil {
		return usageError{err}
	}
	if st != nil {
		defer st.db.Close()
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	startBackground(ctx, f, stderr, cancel)

	if f.startDelay > 0 {
		select {
		case <-time.After(f.startDelay):
		case <-ctx.Done():
			return crashOrNil(ctx)
		}
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", port))
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	var ready atomic.Bool
	a := &app{
		faults:   f,
		ready:    &ready,
		greeting: fmt.Sprintf("hello from %s revision %s version %s\n", getenv("LASTGOOD_APP"), getenv("LASTGOOD_REVISION"), version),
		rng:      newDrawer(f.seed),
		started:  time.Now(),
		store:    st,
		revision: getenv("LASTGOOD_REVISION"),
	}
	srv := &http.Server{Handler: parsePathFaults(getenv).wrap(a.routes()), ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	ready.Store(true)

	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	ready.Store(false)
	if errors.Is(context.Cause(ctx), errCrash) {
		srv.Close() // a crash drops in-flight requests
		return errCrash
	}
	shutdownCtx, done := context.WithTimeout(context.Background(), 30*time.Second)
	defer done()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	<-serveErr
	return nil
}

// crashOrNil reports a simulated crash if that is why ctx ended.
func crashOrNil(ctx context.Context) error {
	if errors.Is(context.Cause(ctx), errCrash) {
		return errCrash
	}
	return nil
}
