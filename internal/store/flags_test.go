package store

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
)

func TestFlagRevisions(t *testing.T) {
	path := dbPath(t)
	s := openAt(t, path)
	ctx := context.Background()
	put := func(app, key, spec, origin string, copyOf int) FlagRevision {
		var fr FlagRevision
		update(t, s, func(tx *Tx) error {
			var err error
			fr, err = tx.CreateFlagRevision(FlagRevision{App: app, Key: key, Spec: json.RawMessage(spec), Origin: origin, CopyOf: copyOf, Actor: "ana"})
			return err
		})
		return fr
	}
	if r := put("web", "a", `{"v":1}`, FlagApply, 0); r.Number != 1 {
		t.Fatalf("first revision numbered %d", r.Number)
	}
	put("web", "a", `{"v":2}`, FlagOff, 0)
	put("web", "b", `{"v":1}`, FlagApply, 0)
	put("shop", "a", `{"v":1}`, FlagApply, 0)
	if r := put("web", "a", `{"v":1}`, FlagUndo, 1); r.Number != 3 || r.CopyOf != 1 {
		t.Fatalf("undo revision: %+v", r)
	}
	s.Close()

	s = openAt(t, path) // survives a reopen
	hist, err := s.FlagHistory(ctx, "web", "a")
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 3 || hist[1].Origin != FlagOff || string(hist[1].Spec) != `{"v":2}` || hist[2].Actor != "ana" {
		t.Errorf("history: %+v", hist)
	}
	latest, err := s.LatestFlags(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	if len(latest) != 2 || latest[0].Key != "a" || latest[0].Number != 3 || latest[1].Key != "b" {
		t.Errorf("latest of web: %+v", latest)
	}
	all, err := s.LatestFlags(ctx, "")
	if err != nil || len(all) != 3 || all[0].App != "shop" {
		t.Errorf("latest of all: %+v, %v", all, err)
	}
	if _, err := s.FlagRevision(ctx, "web", "a", 9); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing revision: %v", err)
	}
	if _, err := s.FlagHistory(ctx, "web", "zzz"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing flag: %v", err)
	}
	for _, bad := range []FlagRevision{
		{App: "web", Key: "a", Spec: json.RawMessage(`{`), Origin: FlagApply},
		{App: "web", Key: "a", Spec: json.RawMessage(`{}`), Origin: "edit"},
		{App: "web", Key: "a", Spec: json.RawMessage(`{}`), Origin: FlagUndo},
		{App: "", Key: "a", Spec: json.RawMessage(`{}`), Origin: FlagApply},
	} {
		err := s.Update(ctx, func(tx *Tx) error { _, err := tx.CreateFlagRevision(bad); return err })
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v: got %v, want ErrInvalid", bad, err)
		}
	}
}
