package revdiff

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/lastgood/lastgood/internal/artifact"
	"github.com/lastgood/lastgood/internal/manifest"
	"github.com/lastgood/lastgood/internal/redact"
	"github.com/lastgood/lastgood/internal/store"
)

func put(t *testing.T, s *artifact.Store, content string) string {
	t.Helper()
	d, err := s.Put(strings.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func revision(t *testing.T, n int, yaml string, arts map[string]string) *store.Revision {
	t.Helper()
	m, err := manifest.Parse("app.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return &store.Revision{App: "web", Number: n, Manifest: raw, Artifacts: arts}
}

const app = `name: web
listen: 127.0.0.1:8080
run:
  command: ["./bin/web"]
  artifacts: ["./bin/web", "./web.conf"]
  env: {MODE: %s, DB_PASSWORD: %s}
`

func TestCompareShowsArtifactsAndRedacts(t *testing.T) {
	blobs, err := artifact.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	conf1 := "listen = 8080\ndb_password = hunter2\nworkers = 4\n"
	conf2 := "listen = 8080\ndb_password = hunter3\nworkers = 8\n"
	bin1, bin2 := put(t, blobs, "\x7fELF\x00one"), put(t, blobs, "\x7fELF\x00two")
	big1, big2 := put(t, blobs, strings.Repeat("a\n", MaxText)), put(t, blobs, "small\n")
	a := revision(t, 3, strings.NewReplacer("%s", "fast").Replace(app), map[string]string{
		"./bin/web": bin1, "./web.conf": put(t, blobs, conf1), "./big.txt": big1, "./gone.txt": put(t, blobs, "bye\n")})
	b := revision(t, 4, strings.Replace(strings.Replace(app, "%s", "fast", 1), "%s", "s3cr3t", 1), map[string]string{
		"./bin/web": bin2, "./web.conf": put(t, blobs, conf2), "./big.txt": big2, "./new.txt": put(t, blobs, "hello\napi_key: k-9\n")})
	d, err := Compare(a, b, blobs)
	if err != nil {
		t.Fatal(err)
	}
	if d.From != 3 || d.To != 4 {
		t.Errorf("from %d to %d", d.From, d.To)
	}
	// The manifest: only the secret changed, and it shows as changed.
	if len(d.Changes) != 1 || d.Changes[0].Field != "run.env.DB_PASSWORD" || d.Changes[0].Old != redact.Marker || d.Changes[0].New != redact.Changed {
		t.Errorf("changes = %+v", d.Changes)
	}
	byPath := map[string]Artifact{}
	var paths []string
	for _, art := range d.Artifacts {
		byPath[art.Path] = art
		paths = append(paths, art.Path)
	}
	if strings.Join(paths, " ") != "./big.txt ./bin/web ./gone.txt ./new.txt ./web.conf" {
		t.Fatalf("artifacts %v", paths)
	}
	wantConf := "--- ./web.conf (revision 3)\n+++ ./web.conf (revision 4)\n@@ -1,3 +1,3 @@\n listen = 8080\n" +
		"-db_password = [redacted]\n-workers = 4\n+db_password = [redacted]\n+workers = 8\n"
	if got := byPath["./web.conf"]; got.Diff != wantConf || got.Note != "" || got.Old == got.New {
		t.Errorf("web.conf:\n%s\nnote %q; want\n%s", got.Diff, got.Note, wantConf)
	}
	if got := byPath["./bin/web"]; got.Diff != "" || got.Note != "binary" {
		t.Errorf("binary: %+v", got)
	}
	if got := byPath["./big.txt"]; got.Diff != "" || !strings.Contains(got.Note, "over 256 KiB: not shown") {
		t.Errorf("big: %+v", got)
	}
	if got := byPath["./gone.txt"]; got.New != "" || !strings.Contains(got.Diff, "@@ -1 +0,0 @@\n-bye\n") {
		t.Errorf("removed: %+v", got)
	}
	if got := byPath["./new.txt"]; got.Old != "" || !strings.Contains(got.Diff, "+hello\n+api_key: [redacted]\n") {
		t.Errorf("added: %+v", got)
	}
	for _, art := range d.Artifacts {
		for _, secret := range []string{"hunter", "k-9", "s3cr3t"} {
			if strings.Contains(art.Diff+art.Note, secret) {
				t.Errorf("%s shows %q:\n%s", art.Path, secret, art.Diff)
			}
		}
	}

	// A copy that is no longer stored, and no artifact store at all.
	p, _ := blobs.Path(byPath["./web.conf"].New)
	os.Remove(p)
	d, _ = Compare(a, b, blobs)
	for _, art := range d.Artifacts {
		if art.Path == "./web.conf" && !strings.Contains(art.Note, "no longer stored") {
			t.Errorf("missing copy: %+v", art)
		}
	}
	d, _ = Compare(a, b, nil)
	if len(d.Artifacts) != 5 || d.Artifacts[0].Note != "compared by digest only" {
		t.Errorf("without blobs: %+v", d.Artifacts)
	}
}

// TestCompareFirstRelease: nothing before the first revision.
func TestCompareFirstRelease(t *testing.T) {
	b := revision(t, 1, strings.Replace(strings.Replace(app, "%s", "fast", 1), "%s", "pw1", 1), nil)
	d, err := Compare(nil, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.From != 0 || d.To != 1 || len(d.Changes) == 0 {
		t.Fatalf("%+v", d)
	}
	raw, _ := json.Marshal(d)
	if strings.Contains(string(raw), "pw1") {
		t.Errorf("a first release's diff shows the secret: %s", raw)
	}
}

func TestChanges(t *testing.T) {
	in := []manifest.Change{
		{Field: "run.env.API_TOKEN", Old: "a", New: "b"},
		{Field: "run.env.NEW_SECRET", Old: "", New: "x"},
		{Field: "run.env.GREETING", Old: "hi", New: "password=hunter2"},
		{Field: "notifications[0].secret", Old: "${HOOK_KEY}", New: "raw-key"},
		{Field: "analysis.checks[1]", Old: "", New: `{"name":"judge","webhook":{"url":"https://u:pw@judge.example/v","headers":{"Authorization":"Bearer z"}}}`},
		{Field: "replicas", Old: "1", New: "2"},
	}
	got := Changes(in)
	want := []manifest.Change{
		{Field: "run.env.API_TOKEN", Old: redact.Marker, New: redact.Changed},
		{Field: "run.env.NEW_SECRET", Old: "", New: redact.Marker},
		{Field: "run.env.GREETING", Old: "hi", New: "password=" + redact.Marker},
		{Field: "notifications[0].secret", Old: "${HOOK_KEY}", New: redact.Marker},
		{Field: "analysis.checks[1]", Old: "", New: `{"name":"judge","webhook":{"headers":{"Authorization":"[redacted]"},"url":"https://u:[redacted]@judge.example/v"}}`},
		{Field: "replicas", Old: "1", New: "2"},
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("Changes[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
}
