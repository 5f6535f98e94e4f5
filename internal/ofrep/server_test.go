package ofrep

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lastgood/lastgood/internal/flags"
	"github.com/lastgood/lastgood/internal/store"
)

func openStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// putFlag stores a new revision of a flag of app (creating the app), and
// the event the controller writes with it.
func putFlag(t *testing.T, st *store.Store, app string, spec flags.Spec) {
	t.Helper()
	body, _ := json.Marshal(spec)
	err := st.Update(context.Background(), func(tx *store.Tx) error {
		if _, err := tx.App(context.Background(), app); err != nil {
			if err := tx.PutApp(store.App{Name: app, Listen: "127.0.0.1:1"}); err != nil {
				return err
			}
		}
		if _, err := tx.CreateFlagRevision(store.FlagRevision{App: app, Key: spec.Flag.Key, Spec: body, Origin: store.FlagApply}); err != nil {
			return err
		}
		_, err := tx.AppendEvent(store.Event{App: app, Type: store.EventFlag, Message: "flag " + spec.Flag.Key})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func checkout() flags.Flag {
	return flags.Flag{
		Key:      "new-checkout",
		Variants: map[string]json.RawMessage{"on": json.RawMessage(`true`), "off": json.RawMessage(`false`)},
		Default:  "off",
		Rules:    []flags.Rule{{If: `country == "NL"`, Variant: "on"}},
	}
}

func split() flags.Flag {
	f := checkout()
	f.Key, f.Rules, f.Split = "split", nil, map[string]int{"on": 50, "off": 50}
	return f
}

type fixture struct {
	st  *store.Store
	srv *Server
	url string
}

func start(t *testing.T, cfg Config) *fixture {
	t.Helper()
	if cfg.Store == nil {
		cfg.Store = openStore(t)
	}
	s := New(cfg)
	if err := s.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	return &fixture{st: cfg.Store, srv: s, url: hs.URL}
}

type reply struct {
	code int
	head http.Header
	body map[string]any
	raw  string
}

func post(t *testing.T, url, body string, header ...string) reply {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	r := reply{code: res.StatusCode, head: res.Header, raw: string(b)}
	if len(bytes.TrimSpace(b)) > 0 {
		if err := json.Unmarshal(b, &r.body); err != nil {
			t.Fatalf("%s: body is not a JSON object: %s", url, b)
		}
	}
	return r
}

func TestSingle(t *testing.T) {
	st := openStore(t)
	putFlag(t, st, "web", flags.Spec{Flag: checkout()})
	putFlag(t, st, "web", flags.Spec{Flag: split()})
	f := start(t, Config{Store: st})
	one := f.url + "/ofrep/v1/evaluate/flags/"
	for _, tc := range []struct {
		name, key, body string
		code            int
		want            map[string]any
	}{
		{"match", "web/new-checkout", `{"context": {"country": "NL"}}`, 200,
			map[string]any{"key": "web/new-checkout", "value": true, "variant": "on", "reason": "TARGETING_MATCH"}},
		{"default", "web/new-checkout", `{"context": {"country": "DE"}}`, 200,
			map[string]any{"value": false, "variant": "off", "reason": "DEFAULT"}},
		{"empty body", "web/new-checkout", ``, 200, map[string]any{"reason": "DEFAULT"}},
		{"escaped slash", "web%2Fnew-checkout", `{"context": {}}`, 200, map[string]any{"key": "web/new-checkout"}},
		{"split", "web/split", `{"context": {"targetingKey": "u1"}}`, 200, map[string]any{"reason": "SPLIT"}},
		{"no targeting key", "web/split", `{"context": {}}`, 400,
			map[string]any{"key": "web/split", "errorCode": "TARGETING_KEY_MISSING"}},
		{"not found", "web/nope", `{"context": {}}`, 404, map[string]any{"key": "web/nope", "errorCode": "FLAG_NOT_FOUND"}},
		{"bare key", "new-checkout", `{"context": {}}`, 404, map[string]any{"errorCode": "FLAG_NOT_FOUND"}},
		{"malformed", "web/new-checkout", `{"context": {`, 400, map[string]any{"errorCode": "PARSE_ERROR"}},
		{"trailing data", "web/new-checkout", `{"context": {}} {}`, 400, map[string]any{"errorCode": "PARSE_ERROR"}},
		{"context not an object", "web/new-checkout", `{"context": [1]}`, 400, map[string]any{"errorCode": "INVALID_CONTEXT"}},
		{"targeting key not a string", "web/split", `{"context": {"targetingKey": 7}}`, 400, map[string]any{"errorCode": "INVALID_CONTEXT"}},
		{"1 MB context", "web/new-checkout", `{"context": {"x": "` + strings.Repeat("a", 1<<20) + `"}}`, 400,
			map[string]any{"errorCode": "INVALID_CONTEXT"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := post(t, one+tc.key, tc.body)
			if r.code != tc.code {
				t.Fatalf("status %d, want %d: %s", r.code, tc.code, r.raw)
			}
			for k, v := range tc.want {
				if r.body[k] != v {
					t.Errorf("%s = %v, want %v (%s)", k, r.body[k], v, r.raw)
				}
			}
			if tc.code != 200 && r.body["errorDetails"] == "" {
				t.Errorf("no errorDetails: %s", r.raw)
			}
		})
	}
	if r := post(t, f.url+"/ofrep/v1/evaluate/flags/web/new-checkout", `{}`); r.body["metadata"].(map[string]any)["flagRevision"] != 1.0 {
		t.Errorf("metadata: %s", r.raw)
	}
}

// waitFor polls cond until it holds or a generous deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestBulkETagAndReload(t *testing.T) {
	st := openStore(t)
	putFlag(t, st, "web", flags.Spec{Flag: checkout()})
	putFlag(t, st, "web", flags.Spec{Flag: split()})
	putFlag(t, st, "shop", flags.Spec{Flag: checkout()})
	f := start(t, Config{Store: st})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); f.srv.Run(ctx) }()
	defer wg.Wait()
	defer cancel()

	bulk := f.url + "/ofrep/v1/evaluate/flags"
	r := post(t, bulk, `{"context": {"country": "NL"}}`)
	if r.code != 200 {
		t.Fatalf("bulk: %d %s", r.code, r.raw)
	}
	items := r.body["flags"].([]any)
	if len(items) != 3 {
		t.Fatalf("bulk gave %d flags: %s", len(items), r.raw)
	}
	keys := []string{}
	for _, it := range items {
		keys = append(keys, it.(map[string]any)["key"].(string))
	}
	if strings.Join(keys, ",") != "shop/new-checkout,web/new-checkout,web/split" {
		t.Errorf("keys %v", keys)
	}
	if items[2].(map[string]any)["errorCode"] != "TARGETING_KEY_MISSING" {
		t.Errorf("the split flag without a key: %v", items[2])
	}
	etag := r.head.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	if r := post(t, bulk, `{"context": {"country": "NL"}}`, "If-None-Match", etag); r.code != 304 || r.raw != "" {
		t.Fatalf("same flags, same context: %d %q", r.code, r.raw)
	}
	if r := post(t, bulk, `{"context": {"country": "DE"}}`, "If-None-Match", etag); r.code != 200 || r.head.Get("ETag") == etag {
		t.Fatalf("another context: %d, ETag %s", r.code, r.head.Get("ETag"))
	}
	// The kill switch: a new revision reaches the snapshot through Run.
	putFlag(t, st, "web", flags.Spec{Flag: checkout(), Off: true})
	waitFor(t, "the new revision to be served", func() bool {
		r := post(t, bulk, `{"context": {"country": "NL"}}`, "If-None-Match", etag)
		return r.code == 200
	})
	r = post(t, f.url+"/ofrep/v1/evaluate/flags/web/new-checkout", `{"context": {"country": "NL"}}`)
	if r.body["reason"] != "DISABLED" || r.body["value"] != false {
		t.Errorf("after off: %s", r.raw)
	}
}

func TestTokens(t *testing.T) {
	toks, err := ParseTokens("eval.tokens", []byte("# evaluation tokens\nweb-app web 0123456789abcdef\nall * fedcba9876543210fedc\n"))
	if err != nil {
		t.Fatal(err)
	}
	st := openStore(t)
	putFlag(t, st, "web", flags.Spec{Flag: checkout()})
	putFlag(t, st, "shop", flags.Spec{Flag: checkout()})
	f := start(t, Config{Store: st, Tokens: toks})
	one, bulk := f.url+"/ofrep/v1/evaluate/flags/web/new-checkout", f.url+"/ofrep/v1/evaluate/flags"
	if r := post(t, one, `{}`); r.code != 401 || r.head.Get("WWW-Authenticate") == "" {
		t.Errorf("no token: %d", r.code)
	}
	if r := post(t, one, `{}`, "Authorization", "Bearer not-a-token-at-all"); r.code != 401 {
		t.Errorf("unknown token: %d", r.code)
	}
	if r := post(t, one, `{}`, "Authorization", "Bearer 0123456789abcdef"); r.code != 200 {
		t.Errorf("web's token on web: %d %s", r.code, r.raw)
	}
	if r := post(t, one, `{}`, "X-API-Key", "0123456789abcdef"); r.code != 200 {
		t.Errorf("X-API-Key: %d %s", r.code, r.raw)
	}
	if r := post(t, f.url+"/ofrep/v1/evaluate/flags/shop/new-checkout", `{}`, "Authorization", "Bearer 0123456789abcdef"); r.code != 403 {
		t.Errorf("web's token on shop: %d %s", r.code, r.raw)
	}
	if r := post(t, bulk, `{}`, "Authorization", "Bearer 0123456789abcdef"); len(r.body["flags"].([]any)) != 1 {
		t.Errorf("web's token, bulk: %s", r.raw)
	}
	if r := post(t, bulk, `{}`, "Authorization", "bearer fedcba9876543210fedc"); len(r.body["flags"].([]any)) != 2 {
		t.Errorf("the all-apps token, bulk: %s", r.raw)
	}
}

func TestParseTokensErrors(t *testing.T) {
	_, err := ParseTokens("eval.tokens", []byte("a web short\nb web,Shop 0123456789abcdef0\nc\na * 0123456789abcdef0\n"))
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{
		"eval.tokens:1: token a: the secret is shorter than 16",
		`eval.tokens:2: app "Shop"`,
		"eval.tokens:3: want NAME APPS SECRET",
		"eval.tokens:4: the token name a is used twice",
		"eval.tokens:4: tokens b and a have the same secret",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%v\nlacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "0123456789abcdef0") {
		t.Error("an error shows a secret")
	}
}

func TestRateLimit(t *testing.T) {
	now := time.Unix(1000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	st := openStore(t)
	putFlag(t, st, "web", flags.Spec{Flag: checkout()})
	f := start(t, Config{Store: st, Rate: 0.5, Burst: 2, Now: clock})
	one := f.url + "/ofrep/v1/evaluate/flags/web/new-checkout"
	for i := range 2 {
		if r := post(t, one, `{}`); r.code != 200 {
			t.Fatalf("request %d: %d", i, r.code)
		}
	}
	r := post(t, one, `{}`)
	if r.code != 429 || r.head.Get("Retry-After") != "2" {
		t.Fatalf("over the limit: %d, Retry-After %q", r.code, r.head.Get("Retry-After"))
	}
	mu.Lock()
	now = now.Add(2 * time.Second)
	mu.Unlock()
	if r := post(t, one, `{}`); r.code != 200 {
		t.Fatalf("after Retry-After: %d", r.code)
	}
}
