package database

import (
	"bufio"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lastgood/lastgood/internal/manifest"
)

// writerEnv makes this test binary a writer process (see runWriter).
const writerEnv = "LASTGOOD_TEST_SQLITE_WRITER"

// runWriter is an app writing to a SQLite file in the default journal
// mode (rollback journal, not WAL) as fast as it can, as the sample app
// does but without pause: four connections, each in a loop inserting a
// pair of rows in one transaction (so a copy that saw half of one has an
// odd count) and reading one back. It prints "ready" once it has written,
// then one line per error, and stops when its stdin closes.
func runWriter(path string) {
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	db.SetMaxOpenConns(4)
	stop := make(chan struct{})
	go func() { bufio.NewReader(os.Stdin).ReadString('\n'); close(stop) }()
	var out sync.Mutex
	say := func(s string) { out.Lock(); fmt.Println(s); out.Unlock() }
	var wg sync.WaitGroup
	var ready sync.Once
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				_, err := db.Exec(`INSERT INTO users (name) VALUES ('a'), ('b')`)
				if err == nil {
					var name string
					err = db.QueryRow(`SELECT name FROM users ORDER BY id DESC LIMIT 1`).Scan(&name)
				}
				if err != nil {
					say("write: " + err.Error())
				}
				if n == 10 {
					ready.Do(func() { say("ready") })
				}
			}
		}()
	}
	wg.Wait()
	db.Close()
	os.Exit(0)
}

// Lint of a live SQLite file in the default journal mode while a real
// writer process commits as fast as it can: the copy is consistent (one
// committed state: an even number of rows, integrity ok), lint never gets
// SQLITE_BUSY, and the writer never fails because of it.
func TestLintSQLiteWhileAnAppWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.db")
	b := blobs{}
	d := New(Config{Read: b.read})
	set := b.folder(t, map[string]string{
		"001_init.up.sql":  "CREATE TABLE users (id integer PRIMARY KEY, name text NOT NULL);",
		"002_email.up.sql": "ALTER TABLE users ADD COLUMN email text;",
		"003_plan.up.sql":  "ALTER TABLE users ADD COLUMN plan text NOT NULL DEFAULT 'free';",
	})
	tg := target{cfg: &manifest.Database{Driver: manifest.DriverSQLite, URL: path}}
	own, err := sql.Open("sqlite", dsn(path))
	if err != nil {
		t.Fatal(err)
	}
	defer own.Close()
	if _, err := d.Migrate(ctx(t), tg.cfg, set, 0, 1); err != nil {
		t.Fatal(err)
	}
	var mode string
	if err := own.QueryRow(`PRAGMA journal_mode`).Scan(&mode); mode != "delete" {
		t.Fatalf("journal mode %q (%v), want the default, delete", mode, err)
	}

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), writerEnv+"="+path)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1000)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var writerErrors []string
	defer func() {
		stdin.Close()
		cmd.Wait()
	}()
	select {
	case l := <-lines:
		if l != "ready" {
			t.Fatalf("writer: %s", l)
		}
	case <-time.After(time.Minute):
		t.Fatal("the writer did not start writing in a minute")
	}

	for i := 0; i < 20; i++ {
		lint, err := d.Lint(ctx(t), tg.cfg, set)
		if err != nil {
			t.Fatalf("lint %d while the app writes: %v", i, err)
		}
		if lint.From != 1 || lint.To != 3 || len(lint.Findings) != 2 {
			t.Fatalf("lint %d: from %d to %d, %d findings", i, lint.From, lint.To, len(lint.Findings))
		}
		// the copy lint works on, made the same way
		cp, drop, err := sqlite{}.copy(ctx(t), own, path)
		if err != nil {
			t.Fatalf("copy %d while the app writes: %v", i, err)
		}
		var n int
		var check string
		if err := cp.QueryRow(`SELECT count(*) FROM users`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if err := cp.QueryRow(`PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
			t.Errorf("copy %d: integrity %q, %v", i, check, err)
		}
		drop()
		if n%2 != 0 {
			t.Errorf("copy %d has %d rows: half a transaction", i, n)
		}
	}
	stdin.Close()
	for l := range lines {
		writerErrors = append(writerErrors, l)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("writer: %v", err)
	}
	if len(writerErrors) > 0 {
		t.Errorf("the writer failed while lint ran: %s", strings.Join(writerErrors, "; "))
	}
	// the writer did write throughout
	var n int
	if err := own.QueryRow(`SELECT count(*) FROM users`).Scan(&n); err != nil || n < 22 {
		t.Errorf("the writer wrote %d rows, %v", n, err)
	}
}
