package server

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lastgood/lastgood/internal/api"
	"github.com/lastgood/lastgood/internal/incident"
	"github.com/lastgood/lastgood/internal/store"
)

// damageTable overwrites the root page of a table of a stopped lastgood's
// state.db with garbage, as a lost sector would.
func damageTable(t *testing.T, path, table string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	var page, size int64
	if err := db.QueryRow(`SELECT rootpage FROM sqlite_schema WHERE name = ?`, table).Scan(&page); err != nil {
		t.Fatal(err)
	}
	db.QueryRow(`PRAGMA page_size`).Scan(&size)
	db.Close()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte(strings.Repeat("\xba\xad", int(size/2))), (page-1)*size); err != nil {
		t.Fatal(err)
	}
}

// TestDamagedStoreServesWhatItCanProve: with state.db's rollouts table
// damaged, lastgood serves each app's stable revision whose manifest,
// digest and artifacts verify — not one whose artifact copy was changed —
// refuses changes, and says so in /readyz and the status.
func TestDamagedStoreServesWhatItCanProve(t *testing.T) {
	data := t.TempDir()
	in := start(t, data)
	good, bad := newApp(t, "good"), newApp(t, "bad")
	// bad runs a build of its own, so that its artifact is its own.
	f, _ := os.OpenFile(filepath.Join(bad.dir, "bin", "web"), os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString("\nbuild bad\n")
	f.Close()
	in.applyWait(t, good.manifest(t, 1, blueGreen, "V: one"))
	in.applyWait(t, good.manifest(t, 1, blueGreen, "V: two"))
	in.applyWait(t, bad.manifest(t, 1, blueGreen, ""))
	revs, err := in.c.Revisions(context.Background(), "bad")
	if err != nil {
		t.Fatal(err)
	}
	in.stop()

	damageTable(t, filepath.Join(data, store.DBFile), "rollouts")
	copyPath := filepath.Join(data, "artifacts", "sha256", strings.TrimPrefix(revs[0].Artifacts["./bin/web"], "sha256:"))
	os.Chmod(copyPath, 0o755)
	cf, err := os.OpenFile(copyPath, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	cf.WriteString("tampered")
	cf.Close()

	in2 := start(t, data)
	waitFor(t, 60*time.Second, "good to serve revision 2", func() bool {
		rev, err := revisionAt(good.listen)
		return err == nil && rev == 2
	})
	if _, err := revisionAt(bad.listen); err == nil {
		t.Fatal("bad, whose artifact no longer matches its digest, is served")
	}
	code, body := in2.readyz()
	if code != 503 || !strings.Contains(body, "state.db failed its integrity check") ||
		!strings.Contains(body, "good: serving revision 2 read-only") ||
		!strings.Contains(body, "bad: not served: revision 1: artifact ./bin/web:") {
		t.Fatalf("readyz of a damaged store: %d\n%s", code, body)
	}
	st, err := in2.c.App(context.Background(), "good")
	if err != nil || !strings.HasPrefix(st.ReadOnly, "serving revision 2 read-only") {
		t.Fatalf("status of good: %q %v", st.ReadOnly, err)
	}
	_, err = in2.c.ApplyFile(context.Background(), good.manifest(t, 1, blueGreen, "V: three"))
	if se, ok := errors.AsType[*api.StatusError](err); !ok || se.Code != 503 || se.Body.Kind != "read-only" {
		t.Fatalf("apply to a damaged store: %v", err)
	}
	if _, err := in2.c.Action(context.Background(), "good", "undo", api.ActionRequest{}); !strings.Contains(errString(err), "read-only") {
		t.Fatalf("undo on a damaged store: %v", err)
	}
	a, err := in2.c.Audit(context.Background())
	if err != nil || a.OK() || a.Problems[0].Kind != store.ProblemDamaged {
		t.Fatalf("audit of a damaged store: %+v %v", a, err)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestStartRefusesAStoreThatIsNotTheDirectorys: a zero-length state.db
// beside an earlier store's identity and artifacts is refused by Run with
// the recovery commands, and changes nothing.
func TestStartRefusesAStoreThatIsNotTheDirectorys(t *testing.T) {
	data := t.TempDir()
	in := start(t, data)
	a := newApp(t, "gone")
	in.applyWait(t, a.manifest(t, 1, blueGreen, ""))
	in.stop()
	if err := os.Truncate(filepath.Join(data, store.DBFile), 0); err != nil {
		t.Fatal(err)
	}
	err := Run(context.Background(), Config{DataDir: data, API: "127.0.0.1:0"})
	se, ok := errors.AsType[*store.StartError](err)
	if !ok || !errors.Is(err, store.ErrMismatch) || !strings.Contains(err.Error(), "lastgood restore --data "+data+" --fresh") {
		t.Fatalf("start on an emptied state.db: %v", err)
	}
	if len(se.Recovery) != 3 {
		t.Fatalf("recovery %q", se.Recovery)
	}
	if fi, _ := os.Stat(filepath.Join(data, store.DBFile)); fi.Size() != 0 {
		t.Fatal("the refused start wrote state.db")
	}
	if _, err := revisionAt(a.listen); err == nil {
		t.Fatal("the refused start serves the app")
	}
}

// TestIncidentBundlesWitnessTheLog: a log cut back with its chain head and
// its anchor file both rewritten to match still disagrees with the head
// an incident bundle recorded: lastgood refuses to start, and audit
// verify --data names the bundle.
func TestIncidentBundlesWitnessTheLog(t *testing.T) {
	data := t.TempDir()
	in := start(t, data)
	a := newApp(t, "wit")
	in.applyWait(t, a.manifest(t, 1, blueGreen, "V: one"))
	in.applyWait(t, a.manifest(t, 1, blueGreen, "V: two"))
	res, err := in.c.Action(context.Background(), "wit", "undo", api.ActionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	st := in.waitRollout(t, "wit", res.Rollout)
	id := incident.ID("wit", st.Rollout.Number)
	var inc *incident.Incident
	waitFor(t, 30*time.Second, "the undo's incident", func() bool {
		inc, err = incident.Load(filepath.Join(data, "incidents"), id)
		return err == nil && inc.Chain != nil
	})
	in.stop()

	keep := inc.Chain.Seq - 3
	db, err := sql.Open("sqlite", filepath.Join(data, store.DBFile))
	if err != nil {
		t.Fatal(err)
	}
	var hash string
	db.QueryRow(`SELECT hash FROM events WHERE seq = ?`, keep).Scan(&hash)
	for _, q := range []string{`DELETE FROM events WHERE seq > ?`, `UPDATE chain_head SET seq = ?, hash = (SELECT hash FROM events WHERE seq = ?)`} {
		if _, err := db.Exec(q, keep, keep); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	b, _ := os.ReadFile(filepath.Join(data, store.AnchorFile))
	var anchor store.Anchor
	json.Unmarshal(b, &anchor)
	anchor.Seq, anchor.Hash = keep, hash
	b, _ = json.Marshal(anchor)
	os.WriteFile(filepath.Join(data, store.AnchorFile), b, 0o644)

	err = Run(context.Background(), Config{DataDir: data, API: "127.0.0.1:0"})
	if !errors.Is(err, store.ErrRewound) || !strings.Contains(err.Error(), "incident "+id+" names event") {
		t.Fatalf("start on a log cut back behind an incident: %v", err)
	}
	ro, err := store.OpenDirReadOnly(data)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	au, err := ro.Verify(context.Background(), incident.Witnesses(filepath.Join(data, "incidents"))...)
	if err != nil {
		t.Fatal(err)
	}
	if au.OK() || !strings.Contains(au.Problems[0].Message, "incident "+id+" names event") {
		t.Fatalf("audit of a log cut back behind an incident: %+v", au)
	}
}
