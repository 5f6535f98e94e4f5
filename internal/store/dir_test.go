package store

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func openDirT(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := OpenDir(dir, DirOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// closeDir closes s, failing the test on error (the anchor's last write
// included).
func closeDir(t *testing.T, s *Store) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func wantStartError(t *testing.T, err error, kind error, says ...string) *StartError {
	t.Helper()
	se, ok := errors.AsType[*StartError](err)
	if !ok || !errors.Is(err, kind) {
		t.Fatalf("got %v, want a StartError of kind %v", err, kind)
	}
	for _, s := range says {
		if !strings.Contains(err.Error(), s) {
			t.Fatalf("error does not say %q:\n%v", s, err)
		}
	}
	return se
}

// sqlExec changes a closed store's database behind its back.
func sqlExec(t *testing.T, path string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

func TestOpenDirGivesANewDirectoryAnIdentity(t *testing.T) {
	dir := t.TempDir()
	s := openDirT(t, dir)
	m, err := readMarker(dir)
	if err != nil {
		t.Fatal(err)
	}
	evs, err := s.Events(context.Background(), EventQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Type != typeCreated || !strings.Contains(string(evs[0].Data), m.ID) {
		t.Fatalf("events of a new store %+v, marker %+v", evs, m)
	}
	appendEvents(t, s, "web", 5)
	closeDir(t, s)
	a, err := readAnchor(filepath.Join(dir, AnchorFile))
	if err != nil || a.Seq != 6 || a.Store != m.ID {
		t.Fatalf("anchor %+v (%v), want event 6 of store %s", a, err, m.ID)
	}
	s2 := openDirT(t, dir)
	if n, _ := s2.LastSeq(context.Background()); n != 6 {
		t.Fatalf("reopened with %d events", n)
	}
}

func TestOpenDirRefusesAnEmptyDatabaseWhereAStoreWas(t *testing.T) {
	t.Run("marker", func(t *testing.T) {
		dir := t.TempDir()
		s := openDirT(t, dir)
		appendEvents(t, s, "web", 3)
		closeDir(t, s)
		os.Truncate(filepath.Join(dir, DBFile), 0)
		_, err := OpenDir(dir, DirOptions{})
		wantStartError(t, err, ErrMismatch, "state.db is missing or empty", "its state was lost",
			"lastgood restore --data "+dir+" BACKUP.db", "--fresh")
		if fi, _ := os.Stat(filepath.Join(dir, DBFile)); fi.Size() != 0 {
			t.Fatal("the refusal changed state.db")
		}
	})
	t.Run("artifacts", func(t *testing.T) {
		dir := t.TempDir() // a directory from before identities
		os.MkdirAll(filepath.Join(dir, "artifacts", "sha256"), 0o755)
		os.WriteFile(filepath.Join(dir, "artifacts", "sha256", strings.Repeat("a", 64)), []byte("x"), 0o555)
		os.MkdirAll(filepath.Join(dir, "incidents", "web-2"), 0o755)
		os.WriteFile(filepath.Join(dir, DBFile), nil, 0o644)
		_, err := OpenDir(dir, DirOptions{})
		wantStartError(t, err, ErrMismatch, "holds 1 artifacts and 1 incidents from an earlier store")
	})
}

func TestOpenDirRefusesAnotherDirectorysDatabase(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	sa, sb := openDirT(t, a), openDirT(t, b)
	closeDir(t, sa)
	closeDir(t, sb)
	db, _ := os.ReadFile(filepath.Join(a, DBFile))
	os.WriteFile(filepath.Join(b, DBFile), db, 0o644)
	ma, _ := readMarker(a)
	mb, _ := readMarker(b)
	_, err := OpenDir(b, DirOptions{})
	wantStartError(t, err, ErrMismatch, "belongs to data directory "+ma.ID+", but this one is "+mb.ID)
}

// rewind deletes the newest n events and moves the chain head back to the
// event before them, as a restored old copy or a careful intruder would.
func rewind(t *testing.T, dir string, n int) {
	t.Helper()
	path := filepath.Join(dir, DBFile)
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var last int64
	db.QueryRow(`SELECT MAX(seq) FROM events`).Scan(&last)
	keep := last - int64(n)
	var hash string
	if err := db.QueryRow(`SELECT hash FROM events WHERE seq = ?`, keep).Scan(&hash); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`DELETE FROM events WHERE seq > ?`, keep); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE chain_head SET seq = ?, hash = ?`, keep, hash); err != nil {
		t.Fatal(err)
	}
}

func TestARewoundTailIsRefusedAtStartAndFoundByAudit(t *testing.T) {
	dir := t.TempDir()
	s := openDirT(t, dir)
	appendEvents(t, s, "web", 10)
	closeDir(t, s)
	rewind(t, dir, 4)
	// The database alone verifies clean: that is the attack.
	if a, err := VerifyFile(context.Background(), filepath.Join(dir, DBFile)); err != nil || !a.OK() {
		t.Fatalf("the rewound database alone: %+v %v", a, err)
	}
	_, err := OpenDir(dir, DirOptions{})
	wantStartError(t, err, ErrRewound, "the log ends at event 7", "names event 11", "the newest 4 events are gone",
		"lastgood restore --data "+dir+" --accept")

	ro, err := OpenDirReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	a, err := ro.Verify(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if a.OK() || a.Witnesses != 1 || a.Problems[0].Kind != ProblemWitness || a.Problems[0].Seq != 11 ||
		!strings.Contains(a.Problems[0].Message, "chain-head.json names event 11, but the log ends at event 7") {
		t.Fatalf("audit of the rewound directory: %+v", a)
	}
}

func TestARewrittenEventAtTheAnchorIsFound(t *testing.T) {
	dir := t.TempDir()
	s := openDirT(t, dir)
	appendEvents(t, s, "web", 4)
	closeDir(t, s)
	// Rewrite the newest event and its hash consistently: alone, the
	// database still verifies; the anchor remembers the old hash.
	sqlExec(t, filepath.Join(dir, DBFile),
		`UPDATE events SET hash = '`+strings.Repeat("b", 64)+`' WHERE seq = 5`,
		`UPDATE chain_head SET hash = '`+strings.Repeat("b", 64)+`'`)
	_, err := OpenDir(dir, DirOptions{})
	wantStartError(t, err, ErrRewound, "event 5 has hash "+strings.Repeat("b", 64))
}

func TestWitnessesFromOutsideAreChecked(t *testing.T) {
	s := openTemp(t)
	evs := appendEvents(t, s, "web", 5)
	a, err := s.Verify(context.Background(),
		Witness{Name: "incident web-1", Head: Head{Seq: 3, Hash: evs[2].Hash}},
		Witness{Name: "incident web-2", Head: Head{Seq: 4, Hash: evs[2].Hash}},
		Witness{Name: "incident web-3", Head: Head{Seq: 9, Hash: evs[2].Hash}})
	if err != nil {
		t.Fatal(err)
	}
	if a.Witnesses != 3 || len(a.Problems) != 2 ||
		!strings.Contains(a.Problems[0].Message, "incident web-2 recorded event 4 with hash") ||
		!strings.Contains(a.Problems[1].Message, "incident web-3 names event 9, but the log ends at event 5") {
		t.Fatalf("audit %+v", a)
	}
}

// corruptTable overwrites the root page of a table with garbage.
func corruptTable(t *testing.T, path, table string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	var page, size int64
	db.QueryRow(`SELECT rootpage FROM sqlite_schema WHERE name = ?`, table).Scan(&page)
	db.QueryRow(`PRAGMA page_size`).Scan(&size)
	db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
	db.Close()
	if page == 0 {
		t.Fatalf("no table %s", table)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte(strings.Repeat("\xde\xad\xbe\xef", int(size/4))), (page-1)*size); err != nil {
		t.Fatal(err)
	}
}

func TestADamagedDatabaseOpensReadOnly(t *testing.T) {
	dir := t.TempDir()
	s := openDirT(t, dir)
	seedApp(t, s, "web", 2)
	appendEvents(t, s, "web", 3)
	closeDir(t, s)
	corruptTable(t, filepath.Join(dir, DBFile), "rollouts")
	s2, err := OpenDir(dir, DirOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	h := s2.Health()
	if h.ReadOnly == "" || len(h.Damage) == 0 || !strings.Contains(h.ReadOnly, "quick_check") {
		t.Fatalf("health of a damaged store %+v", h)
	}
	err = s2.Update(context.Background(), func(tx *Tx) error { return nil })
	if !errors.Is(err, ErrReadOnly) {
		t.Fatalf("update of a damaged store: %v", err)
	}
	// What is intact still reads.
	if a, err := s2.App(context.Background(), "web"); err != nil || a.Latest != 2 {
		t.Fatalf("app of a damaged store: %+v %v", a, err)
	}
	a, err := s2.Verify(context.Background())
	if err != nil || a.OK() || a.Problems[0].Kind != ProblemDamaged {
		t.Fatalf("audit of a damaged store %+v %v", a, err)
	}
}

func TestOpenDirTakesTheDirectoryLock(t *testing.T) {
	dir := t.TempDir()
	s := openDirT(t, dir)
	if _, err := OpenDir(dir, DirOptions{}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: %v", err)
	}
	if _, err := Fresh(context.Background(), dir); !errors.Is(err, ErrLocked) {
		t.Fatalf("fresh while open: %v", err)
	}
	closeDir(t, s)
	openDirT(t, dir)
}

func TestADirectoryFromBeforeIdentitiesIsAdopted(t *testing.T) {
	dir := t.TempDir()
	old := openAt(t, filepath.Join(dir, DBFile))
	appendEvents(t, old, "web", 3)
	old.Close()
	s := openDirT(t, dir)
	m, err := readMarker(dir)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := s.identity(context.Background())
	if id != m.ID {
		t.Fatalf("identity %q, marker %q", id, m.ID)
	}
	closeDir(t, s)
	openDirT(t, dir)
}

func TestBackupWhileWritingThenRestore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openDirT(t, dir)
	seedApp(t, s, "web", 1)
	appendEvents(t, s, "web", 20)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // a writer the backup must not stop nor tear
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			s.Update(ctx, func(tx *Tx) error {
				_, err := tx.AppendEvent(Event{App: "web", Type: "tick", Message: "tick"})
				return err
			})
		}
	}()
	out := filepath.Join(t.TempDir(), "backup.db")
	err := s.Backup(ctx, out)
	close(stop)
	<-done
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Backup(ctx, out); !errors.Is(err, os.ErrExist) {
		t.Fatalf("backup over an existing file: %v", err)
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the backup's mode: %v %v, want 0600 (it holds what state.db holds)", fi.Mode(), err)
	}
	a, err := VerifyFile(ctx, out)
	if err != nil || !a.OK() || a.Events < 21 {
		t.Fatalf("the backup verifies: %+v %v", a, err)
	}
	appendEvents(t, s, "web", 5)
	closeDir(t, s)
	os.Truncate(filepath.Join(dir, DBFile), 0)
	os.Remove(filepath.Join(dir, DBFile+"-wal"))

	res, err := Restore(ctx, dir, out)
	if err != nil {
		t.Fatal(err)
	}
	if res.Lost < 5 || res.Kept == "" || !strings.Contains(res.Message, "are lost") {
		t.Fatalf("restore said %+v", res)
	}
	if _, err := os.Stat(res.Kept); err != nil {
		t.Fatalf("the replaced database was not kept: %v", err)
	}
	s2 := openDirT(t, dir)
	evs, _ := s2.Events(ctx, EventQuery{AfterSeq: int64(a.Events)})
	if len(evs) != 1 || evs[0].Type != "store.restored" {
		t.Fatalf("events after the restored log: %+v", evs)
	}
	if app, err := s2.App(ctx, "web"); err != nil || app.Latest != 1 {
		t.Fatalf("restored app %+v %v", app, err)
	}
}

func TestRestoreRefusesABackupOfAnotherDirectory(t *testing.T) {
	ctx := context.Background()
	a, b := t.TempDir(), t.TempDir()
	sa := openDirT(t, a)
	out := filepath.Join(t.TempDir(), "a.db")
	if err := sa.Backup(ctx, out); err != nil {
		t.Fatal(err)
	}
	closeDir(t, openDirT(t, b))
	if _, err := Restore(ctx, b, out); !errors.Is(err, ErrMismatch) {
		t.Fatalf("restore of another directory's backup: %v", err)
	}
}

func TestAcceptAndFreshRecover(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openDirT(t, dir)
	appendEvents(t, s, "web", 6)
	closeDir(t, s)
	rewind(t, dir, 2)
	res, err := Accept(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if res.Lost != 2 {
		t.Fatalf("accept said %+v", res)
	}
	s2 := openDirT(t, dir)
	if a, err := s2.Verify(ctx); err != nil || !a.OK() {
		t.Fatalf("after accept: %+v %v", a, err)
	}
	closeDir(t, s2)

	corruptTable(t, filepath.Join(dir, DBFile), "events")
	if _, err := Accept(ctx, dir); !errors.Is(err, ErrDamaged) {
		t.Fatalf("accept of a damaged database: %v", err)
	}
	m, _ := readMarker(dir)
	res, err = Fresh(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	s3 := openDirT(t, dir)
	evs, _ := s3.Events(ctx, EventQuery{})
	if len(evs) != 2 || evs[0].Type != typeCreated || evs[1].Type != "store.fresh" || !strings.Contains(string(evs[0].Data), m.ID) {
		t.Fatalf("a fresh store's events %+v", evs)
	}
	if _, err := os.Stat(res.Kept); err != nil {
		t.Fatalf("the damaged database was not kept: %v", err)
	}
}

func TestTheAnchorIsWrittenAfterCommits(t *testing.T) {
	dir := t.TempDir()
	s := openDirT(t, dir)
	evs := appendEvents(t, s, "web", 3)
	if err := s.anchor.flush(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	a, err := readAnchor(filepath.Join(dir, AnchorFile))
	if err != nil || a.Head != (Head{Seq: evs[2].Seq, Hash: evs[2].Hash}) {
		t.Fatalf("anchor %+v %v, want event %d", a, err, evs[2].Seq)
	}
}

func TestWitnessesOfALogARecoveryReplacedAreNotHeldAgainstIt(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openDirT(t, dir)
	appendEvents(t, s, "web", 4)
	out := filepath.Join(t.TempDir(), "b.db")
	if err := s.Backup(ctx, out); err != nil {
		t.Fatal(err)
	}
	evs := appendEvents(t, s, "web", 4)
	closeDir(t, s)
	old := Witness{Name: "incident web-1", Head: Head{Seq: evs[3].Seq, Hash: evs[3].Hash}, Written: time.Now()}
	// At start, a witness beyond the log is refused like the anchor is.
	rewind(t, dir, 4)
	writeAnchor(filepath.Join(dir, AnchorFile), Anchor{Store: mustMarker(t, dir).ID, Head: Head{Seq: 5, Hash: evs[0].PrevHash}, Written: time.Now()})
	_, err := OpenDir(dir, DirOptions{Witnesses: []Witness{old}})
	wantStartError(t, err, ErrRewound, "incident web-1 names event 9")

	time.Sleep(2 * time.Millisecond) // the restore comes after the witness
	if _, err := Restore(ctx, dir, out); err != nil {
		t.Fatal(err)
	}
	s2, err := OpenDir(dir, DirOptions{Witnesses: []Witness{old}})
	if err != nil {
		t.Fatalf("start after a restore, with a witness of the replaced log: %v", err)
	}
	defer s2.Close()
	later := appendEvents(t, s2, "web", 1)
	a, err := s2.Verify(ctx, old, Witness{Name: "incident web-2", Head: Head{Seq: later[0].Seq, Hash: strings.Repeat("c", 64)}, Written: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if a.Superseded != 1 || a.Witnesses != 2 || len(a.Problems) != 1 || !strings.Contains(a.Problems[0].Message, "incident web-2 recorded event") {
		t.Fatalf("audit after a restore: %+v", a)
	}
}

func mustMarker(t *testing.T, dir string) Marker {
	t.Helper()
	m, err := readMarker(dir)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
