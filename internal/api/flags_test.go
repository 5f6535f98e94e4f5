package api_test

import (
	"context"
	"net/http"
	"os"
	"testing"

	"github.com/lastgood/lastgood/internal/api"
)

// TestFlagRolesForgeryAndAudit: changing a flag needs the deployer role
// and a request no browser sends across sites; a viewer reads flags; the
// change is recorded with the token's name.
func TestFlagRolesForgeryAndAudit(t *testing.T) {
	base := teamServer(t, "")
	ctx := context.Background()
	viewer := &api.Client{Base: base, Token: viewerSecret}
	deployer := &api.Client{Base: base, Token: deployerSecret}
	p := manifest(t, "one", freeAddr(t), "a")
	text, _ := os.ReadFile(p)
	text = append(text, "flags:\n  - {key: kill-me, variants: {on: true, off: false}, default: off}\n"...)
	os.WriteFile(p, text, 0o644)
	res, err := deployer.ApplyFile(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Flags) != 1 || res.Flags[0].Revision != 1 {
		t.Fatalf("apply made flag revisions %+v", res.Flags)
	}
	if _, err := viewer.Flag(ctx, "one", "kill-me", "set", api.FlagRequest{Variant: "on"}); !isStatus(err, 403) {
		t.Fatalf("viewer sets a flag: %v", err)
	}
	for name, header := range map[string]map[string]string{
		"text/plain": {"Content-Type": "text/plain", "Authorization": "Bearer " + deployerSecret, "Sec-Fetch-Site": "cross-site"},
		"form":       {"Content-Type": "application/x-www-form-urlencoded", "Origin": "null"},
	} {
		if code, body := send(t, http.MethodPost, base+"/api/v1/apps/one/flags/kill-me/set", `{"variant": "on"}`, header); code != http.StatusForbidden && code != http.StatusUnauthorized {
			t.Errorf("forged %s: %d %s", name, code, body)
		}
	}
	if hist, err := viewer.FlagHistory(ctx, "one", "kill-me"); err != nil || len(hist) != 1 {
		t.Fatalf("after refused changes: %+v %v", hist, err)
	}
	if _, err := deployer.Flag(ctx, "one", "kill-me", "set", api.FlagRequest{Variant: "on"}); err != nil {
		t.Fatal(err)
	}
	hist, err := viewer.FlagHistory(ctx, "one", "kill-me")
	if err != nil || len(hist) != 2 || hist[1].Actor != "dan" || hist[1].Origin != "set" {
		t.Fatalf("history: %+v %v", hist, err)
	}
	evs, _ := viewer.Events(ctx, "one", 0)
	found := false
	for _, e := range evs {
		if e.Type == "flag" && e.Actor == "dan" {
			found = true
		}
	}
	if !found {
		t.Errorf("no flag event by dan in %+v", evs)
	}
	if a, err := viewer.Audit(ctx); err != nil || !a.OK() {
		t.Fatalf("audit: %+v %v", a, err)
	}
}
