// Command flags measures lastgood's flag serving over loopback: the kill
// switch (a flag revision turning the flag off committed → the first
// evaluation by the Go OpenFeature provider, pkg/ofrep, that returns the
// default), and evaluations per second with p50/p99 latency of single and
// bulk OFREP evaluation beside a bare net/http JSON handler (the floor;
// flagd cannot be installed here). It uses lastgood's own OFREP server
// over a real SQLite store, written to as the controller writes.
//
//	go run ./bench/flags [-rounds 200] [-for 5s] [-conc 8]
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/open-feature/go-sdk/openfeature"

	"github.com/lastgood/lastgood/internal/flags"
	"github.com/lastgood/lastgood/internal/ofrep"
	"github.com/lastgood/lastgood/internal/store"
	provider "github.com/lastgood/lastgood/pkg/ofrep"
)

func main() {
	rounds := flag.Int("rounds", 200, "kill-switch rounds")
	dur := flag.Duration("for", 5*time.Second, "each throughput run")
	conc := flag.Int("conc", 8, "concurrent clients in the throughput runs")
	flag.Parse()

	dir, err := os.MkdirTemp("", "bench-flags")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	st, err := store.Open(filepath.Join(dir, "state.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	srv := ofrep.New(ofrep.Config{Store: st})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); srv.Run(ctx) }()
	defer wg.Wait()
	defer cancel()
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()

	base := flags.Flag{Key: "f0", Variants: map[string]json.RawMessage{"on": json.RawMessage("true"), "off": json.RawMessage("false")},
		Default: "off", Rules: []flags.Rule{{If: `country == "NL"`, Variant: "on"}}}
	for i := range 10 {
		f := base
		f.Key = fmt.Sprintf("f%d", i)
		put(st, "web", flags.Spec{Flag: f})
	}

	// The kill switch.
	if err := openfeature.SetNamedProviderAndWait("bench", provider.New(provider.Options{BaseURL: hs.URL})); err != nil {
		log.Fatal(err)
	}
	c := openfeature.NewClient("bench")
	ec := openfeature.NewEvaluationContext("user-1", map[string]any{"country": "DE"})
	var lat []time.Duration
	evals := 0
	for range *rounds {
		put(st, "web", flags.Spec{Flag: base, Pin: "on"})
		for {
			if v, _ := c.BooleanValue(ctx, "web/f0", false, ec); v {
				break
			}
		}
		t0 := time.Now()
		put(st, "web", flags.Spec{Flag: base, Pin: "on", Off: true})
		for {
			evals++
			d, _ := c.BooleanValueDetails(ctx, "web/f0", true, ec)
			if !d.Value && d.Reason == openfeature.DisabledReason {
				break
			}
		}
		lat = append(lat, time.Since(t0))
	}
	fmt.Printf("kill switch, commit of the off revision → first DISABLED evaluation (%d rounds, %d evaluations): p50 %v p99 %v max %v\n",
		*rounds, evals, pct(lat, 50), pct(lat, 99), pct(lat, 100))

	floor := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Context map[string]any `json:"context"`
		}
		json.NewDecoder(r.Body).Decode(&req)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"key": "web/f0", "value": false, "reason": "DEFAULT", "variant": "off"})
	}))
	defer floor.Close()
	body := []byte(`{"context": {"targetingKey": "user-1", "country": "DE"}}`)
	for _, run := range []struct{ name, url string }{
		{"net/http JSON handler (floor)", floor.URL + "/"},
		{"OFREP single", hs.URL + "/ofrep/v1/evaluate/flags/web/f0"},
		{"OFREP bulk (10 flags)", hs.URL + "/ofrep/v1/evaluate/flags"},
	} {
		n, l := load(run.url, body, *conc, *dur)
		fmt.Printf("%-30s %8.0f req/s  p50 %v  p99 %v  (%d clients, %v)\n", run.name, float64(n)/dur.Seconds(), pct(l, 50), pct(l, 99), *conc, *dur)
	}
}

func load(url string, body []byte, conc int, dur time.Duration) (int, []time.Duration) {
	tr := &http.Transport{MaxIdleConnsPerHost: conc}
	hc := &http.Client{Transport: tr}
	defer tr.CloseIdleConnections()
	end := time.Now().Add(dur)
	var mu sync.Mutex
	var all []time.Duration
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for time.Now().Before(end) {
				t0 := time.Now()
				res, err := hc.Post(url, "application/json", bytes.NewReader(body))
				if err != nil {
					log.Fatal(err)
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != 200 {
					log.Fatalf("%s: %s", url, res.Status)
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return len(all), all
}

func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(0, min(len(s)-1, i-1))].Round(time.Microsecond)
}

// put writes a flag revision and its event, as the controller does.
func put(st *store.Store, app string, spec flags.Spec) {
	body, _ := json.Marshal(spec)
	err := st.Update(context.Background(), func(tx *store.Tx) error {
		if _, err := tx.App(context.Background(), app); err != nil {
			if err := tx.PutApp(store.App{Name: app, Listen: "127.0.0.1:1"}); err != nil {
				return err
			}
		}
		if _, err := tx.CreateFlagRevision(store.FlagRevision{App: app, Key: spec.Flag.Key, Spec: body, Origin: store.FlagSet}); err != nil {
			return err
		}
		_, err := tx.AppendEvent(store.Event{App: app, Type: store.EventFlag, Message: "flag " + spec.Flag.Key})
		return err
	})
	if err != nil {
		log.Fatal(err)
	}
}
