package incident

import (
	"bytes"
	"context"
	"html"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lastgood/lastgood/internal/artifact"
	"github.com/lastgood/lastgood/internal/manifest"
	"github.com/lastgood/lastgood/internal/store"
)

// TestConfigOnlyChangeShowsTheArtifactDiff: a release whose manifest is
// the same and whose config file changed is rolled back; the bundle says
// which artifact changed and shows its text diff, secrets redacted.
func TestConfigOnlyChangeShowsTheArtifactDiff(t *testing.T) {
	tmp := t.TempDir()
	st, err := store.Open(filepath.Join(tmp, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	arts, err := artifact.Open(filepath.Join(tmp, "artifacts"))
	if err != nil {
		t.Fatal(err)
	}
	bin, _ := arts.Put(strings.NewReader("\x7fELF\x00binary"))
	conf1, _ := arts.Put(strings.NewReader("workers = 4\ndb_url = postgres://app:pw-one@db/app\n"))
	conf2, _ := arts.Put(strings.NewReader("workers = 8\ndb_url = postgres://app:pw-two@db/app\n"))
	yaml := "name: web\nlisten: 127.0.0.1:8080\nrun:\n  command: [\"./web\", \"--config\", \"./web.conf\"]\n  artifacts: [\"./web\", \"./web.conf\"]\n"
	app, err := manifest.Parse("app.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	base := time.Now().UTC()
	var ro store.Rollout
	err = st.Update(t.Context(), func(tx *store.Tx) error {
		if err := tx.PutApp(store.App{Name: "web", Listen: "127.0.0.1:8080"}); err != nil {
			return err
		}
		for i, conf := range []string{conf1, conf2} {
			if _, err := tx.CreateRevision(store.Revision{App: "web", Digest: "sha256:" + strings.Repeat(string(rune('a'+i)), 64),
				Manifest: app.Canonical(), Source: yaml, Origin: store.OriginApply,
				Artifacts: map[string]string{"./web": bin, "./web.conf": conf}}); err != nil {
				return err
			}
		}
		if err := tx.PutApp(store.App{Name: "web", Listen: "127.0.0.1:8080", Stable: 1}); err != nil {
			return err
		}
		if ro, err = tx.CreateRollout(store.Rollout{App: "web", From: 1, To: 2, Strategy: "canary", Phase: store.PhaseRolledBack,
			Trigger: "abort", Reason: "aborted", Started: base}); err != nil {
			return err
		}
		_, err := tx.AppendEvent(store.Event{Time: base.Add(time.Second), App: "web", Rollout: ro.ID, Revision: 2,
			Type: "rollout.rolled-back", Message: "rolled back to revision 1"})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(tmp, "incidents")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- New(Config{Store: st, Dir: dir, Artifacts: arts, Recovery: -1}).Run(ctx) }()
	defer func() { cancel(); <-done }()
	inc := loadWhen(t, dir, ID("web", ro.Number), func(*Incident) bool { return true })

	if len(inc.Diff) != 0 {
		t.Errorf("manifest diff %+v, want none", inc.Diff)
	}
	if len(inc.ArtifactChanges) != 1 {
		t.Fatalf("artifact changes %+v, want ./web.conf", inc.ArtifactChanges)
	}
	c := inc.ArtifactChanges[0]
	want := "--- ./web.conf (revision 1)\n+++ ./web.conf (revision 2)\n@@ -1,2 +1,2 @@\n" +
		"-workers = 4\n-db_url = postgres://app:[redacted]@db/app\n+workers = 8\n+db_url = postgres://app:[redacted]@db/app\n"
	if c.Path != "./web.conf" || c.Old != conf1 || c.New != conf2 || c.Diff != want {
		t.Errorf("artifact change %+v\ndiff:\n%s\nwant:\n%s", c, c.Diff, want)
	}
	var md, page bytes.Buffer
	if err := Markdown(&md, inc); err != nil {
		t.Fatal(err)
	}
	if err := HTML(&page, inc); err != nil {
		t.Fatal(err)
	}
	for name, out := range map[string]string{"markdown": md.String(), "html": html.UnescapeString(page.String())} {
		if !strings.Contains(out, "No manifest field changed; the artifacts below did.") || !strings.Contains(out, "+workers = 8") ||
			!strings.Contains(out, "./web.conf") || strings.Contains(out, "pw-one") || strings.Contains(out, "pw-two") {
			t.Errorf("%s does not show the config change, or shows its secret:\n%s", name, out)
		}
	}
	if !strings.Contains(md.String(), "```diff\n--- ./web.conf (revision 1)\n") {
		t.Errorf("markdown has no diff block:\n%s", md.String())
	}
}
