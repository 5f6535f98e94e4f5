package ofrep_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/open-feature/go-sdk/openfeature"

	"github.com/lastgood/lastgood/internal/flags"
	serverofrep "github.com/lastgood/lastgood/internal/ofrep"
	"github.com/lastgood/lastgood/internal/store"
	"github.com/lastgood/lastgood/pkg/ofrep"
)

// lastgood is lastgood's own OFREP server over a real store, on a real
// loopback listener, with flags written as the controller writes them.
type lastgood struct {
	st    *store.Store
	url   string
	token string         // an evaluation token, for waitServed
	revs  map[string]int // APP/KEY → the revision last served
}

func startLastgood(t *testing.T, cfg serverofrep.Config, initial ...flags.Spec) *lastgood {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg.Store = st
	pre := &lastgood{st: st, revs: map[string]int{}}
	for _, spec := range initial {
		pre.write(t, "web", spec)
	}
	srv := serverofrep.New(cfg)
	if err := srv.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); srv.Run(ctx) }()
	t.Cleanup(func() { cancel(); wg.Wait() })
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return &lastgood{st: st, url: hs.URL, revs: map[string]int{}}
}

func (l *lastgood) put(t *testing.T, app string, spec flags.Spec) {
	t.Helper()
	l.write(t, app, spec)
	l.waitServed(t, app, spec)
}

func (l *lastgood) write(t *testing.T, app string, spec flags.Spec) {
	t.Helper()
	body, _ := json.Marshal(spec)
	err := l.st.Update(context.Background(), func(tx *store.Tx) error {
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

// waitServed waits until the server evaluates the flag as spec says (the
// server reloads on the event, on its own goroutine).
func (l *lastgood) waitServed(t *testing.T, app string, spec flags.Spec) {
	t.Helper()
	want := flags.Evaluate(app, &spec, map[string]any{"targetingKey": "probe"}).Reason
	deadline := time.Now().Add(20 * time.Second)
	for {
		req, _ := http.NewRequest("POST", l.url+"/ofrep/v1/evaluate/flags/"+app+"/"+spec.Flag.Key, strings.NewReader(`{"context": {"targetingKey": "probe"}}`))
		req.Header.Set("Authorization", "Bearer "+l.token)
		if res, err := http.DefaultClient.Do(req); err == nil {
			var body struct {
				Reason   string         `json:"reason"`
				Metadata map[string]any `json:"metadata"`
			}
			json.NewDecoder(res.Body).Decode(&body)
			res.Body.Close()
			if res.StatusCode == 200 && body.Reason == string(want) && body.Metadata["flagRevision"] == float64(l.revs[app+"/"+spec.Flag.Key]+1) {
				l.revs[app+"/"+spec.Flag.Key]++
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server does not serve the new revision of %s/%s", app, spec.Flag.Key)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func raw(vs map[string]string) map[string]json.RawMessage {
	out := map[string]json.RawMessage{}
	for k, v := range vs {
		out[k] = json.RawMessage(v)
	}
	return out
}

var (
	checkout = flags.Flag{Key: "new-checkout", Variants: raw(map[string]string{"on": "true", "off": "false"}), Default: "off",
		Rules: []flags.Rule{{If: `country == "NL"`, Variant: "on"}}}
	banner = flags.Flag{Key: "banner", Variants: raw(map[string]string{"a": `"hello"`, "b": `"hi"`}), Default: "a"}
	limit  = flags.Flag{Key: "limit", Variants: raw(map[string]string{"low": "10", "high": "2.5"}), Default: "low"}
	theme  = flags.Flag{Key: "theme", Variants: raw(map[string]string{"x": `{"color": "red", "sizes": [1, 2]}`}), Default: "x"}
	cohort = flags.Flag{Key: "cohort", Variants: raw(map[string]string{"on": "true", "off": "false"}), Default: "off",
		Split: map[string]int{"on": 50, "off": 50}}
)

func client(t *testing.T, p *ofrep.Provider) *openfeature.Client {
	t.Helper()
	domain := t.Name()
	if err := openfeature.SetNamedProviderAndWait(domain, p); err != nil {
		t.Fatal(err)
	}
	return openfeature.NewClient(domain)
}

func TestProviderTypesAndReasons(t *testing.T) {
	lg := startLastgood(t, serverofrep.Config{})
	for _, f := range []flags.Flag{checkout, banner, limit, theme, cohort} {
		lg.put(t, "web", flags.Spec{Flag: f})
	}
	c := client(t, ofrep.New(ofrep.Options{BaseURL: lg.url}))
	ctx := context.Background()
	nl := openfeature.NewEvaluationContext("user-1", map[string]any{"country": "NL"})

	b, err := c.BooleanValueDetails(ctx, "web/new-checkout", false, nl)
	if err != nil || !b.Value || b.Reason != openfeature.TargetingMatchReason || b.Variant != "on" || b.FlagMetadata["flagRevision"] == nil {
		t.Errorf("boolean: %+v, %v", b, err)
	}
	b, err = c.BooleanValueDetails(ctx, "web/new-checkout", true, openfeature.NewEvaluationContext("user-1", map[string]any{"country": "DE"}))
	if err != nil || b.Value || b.Reason != openfeature.DefaultReason {
		t.Errorf("boolean default: %+v, %v", b, err)
	}
	s, err := c.StringValueDetails(ctx, "web/banner", "", nl)
	if err != nil || s.Value != "hello" || s.Reason != openfeature.StaticReason {
		t.Errorf("string: %+v, %v", s, err)
	}
	i, err := c.IntValueDetails(ctx, "web/limit", 0, nl)
	if err != nil || i.Value != 10 {
		t.Errorf("int: %+v, %v", i, err)
	}
	fl, err := c.FloatValueDetails(ctx, "web/limit", 0, nl)
	if err != nil || fl.Value != 10 {
		t.Errorf("float: %+v, %v", fl, err)
	}
	o, err := c.ObjectValueDetails(ctx, "web/theme", nil, nl)
	if m, ok := o.Value.(map[string]any); err != nil || !ok || m["color"] != "red" {
		t.Errorf("object: %+v, %v", o, err)
	}
	sp, err := c.BooleanValueDetails(ctx, "web/cohort", false, nl)
	if err != nil || sp.Reason != openfeature.SplitReason {
		t.Errorf("split: %+v, %v", sp, err)
	}

	// Errors come back as OpenFeature's codes, with the default value.
	for _, tc := range []struct {
		name string
		eval func() (openfeature.ErrorCode, any)
		code openfeature.ErrorCode
		def  any
	}{
		{"not found", func() (openfeature.ErrorCode, any) {
			d, _ := c.BooleanValueDetails(ctx, "web/nope", true, nl)
			return d.ErrorCode, d.Value
		}, openfeature.FlagNotFoundCode, true},
		{"type mismatch", func() (openfeature.ErrorCode, any) {
			d, _ := c.StringValueDetails(ctx, "web/new-checkout", "dflt", nl)
			return d.ErrorCode, d.Value
		}, openfeature.TypeMismatchCode, "dflt"},
		{"not an integer", func() (openfeature.ErrorCode, any) {
			lg.put(t, "web", flags.Spec{Flag: limit, Pin: "high"})
			deadline := time.Now().Add(20 * time.Second)
			for {
				d, _ := c.IntValueDetails(ctx, "web/limit", 7, nl)
				if d.ErrorCode != "" || time.Now().After(deadline) {
					return d.ErrorCode, d.Value
				}
				time.Sleep(10 * time.Millisecond)
			}
		}, openfeature.TypeMismatchCode, int64(7)},
		{"targeting key missing", func() (openfeature.ErrorCode, any) {
			d, _ := c.BooleanValueDetails(ctx, "web/cohort", true, openfeature.NewEvaluationContext("", nil))
			return d.ErrorCode, d.Value
		}, openfeature.TargetingKeyMissingCode, true},
	} {
		code, v := tc.eval()
		if code != tc.code || v != tc.def {
			t.Errorf("%s: code %q value %v, want %q %v", tc.name, code, v, tc.code, tc.def)
		}
	}
}

// TestProviderKillSwitch: turning a flag off reaches the next evaluation.
func TestProviderKillSwitch(t *testing.T) {
	lg := startLastgood(t, serverofrep.Config{})
	lg.put(t, "web", flags.Spec{Flag: checkout, Pin: "on"})
	c := client(t, ofrep.New(ofrep.Options{BaseURL: lg.url}))
	ctx := context.Background()
	ec := openfeature.NewEvaluationContext("user-1", nil)
	if v, _ := c.BooleanValue(ctx, "web/new-checkout", false, ec); !v {
		t.Fatal("pinned on, got off")
	}
	lg.put(t, "web", flags.Spec{Flag: checkout, Pin: "on", Off: true})
	deadline := time.Now().Add(20 * time.Second)
	for {
		d, err := c.BooleanValueDetails(ctx, "web/new-checkout", true, ec)
		if err == nil && !d.Value && d.Reason == openfeature.DisabledReason {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the kill switch did not reach the client: %+v", d)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestProviderTokensAndRateLimit(t *testing.T) {
	toks, err := serverofrep.ParseTokens("t", []byte("web web 0123456789abcdef\n"))
	if err != nil {
		t.Fatal(err)
	}
	lg := startLastgood(t, serverofrep.Config{Tokens: toks, Rate: 0.001, Burst: 1}, flags.Spec{Flag: checkout})
	ctx := context.Background()
	ec := openfeature.NewEvaluationContext("user-1", map[string]any{"country": "NL"})

	bad := client(t, ofrep.New(ofrep.Options{BaseURL: lg.url, Token: "wrong-token-xxxxxxxx"}))
	if d, _ := bad.BooleanValueDetails(ctx, "web/new-checkout", false, ec); d.ErrorCode != openfeature.GeneralCode || d.Value {
		t.Errorf("a wrong token: %+v", d)
	}
	good := ofrep.New(ofrep.Options{BaseURL: lg.url, Token: "0123456789abcdef"})
	c := openfeature.NewClient(t.Name() + "-good")
	if err := openfeature.SetNamedProviderAndWait(t.Name()+"-good", good); err != nil {
		t.Fatal(err)
	}
	if d, _ := c.BooleanValueDetails(ctx, "web/new-checkout", false, ec); !d.Value {
		t.Errorf("the right token: %+v", d)
	}
	// The burst of one is spent: 429, and then the provider waits out
	// Retry-After without asking again.
	if d, _ := c.BooleanValueDetails(ctx, "web/new-checkout", false, ec); d.ErrorCode != openfeature.GeneralCode {
		t.Errorf("over the rate: %+v", d)
	}
	if d, _ := c.BooleanValueDetails(ctx, "web/new-checkout", false, ec); d.ErrorCode != openfeature.GeneralCode || d.ErrorMessage == "" {
		t.Errorf("while waiting out Retry-After: %+v", d)
	}
}
