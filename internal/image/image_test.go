package image

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/lastgood/lastgood/internal/image/registrytest"
)

func TestResolvePinsTheTagsDigest(t *testing.T) {
	reg := registrytest.Start(t)
	ctx := context.Background()
	first := registrytest.Push(t, reg+"/web:1.4")
	pin, err := Resolve(ctx, reg+"/web:1.4")
	if err != nil {
		t.Fatal(err)
	}
	if pin.Digest != first || pin.Repository != reg+"/web" || pin.String() != reg+"/web@"+first {
		t.Errorf("pin = %+v, want %s/web@%s", pin, reg, first)
	}
	moved := registrytest.Push(t, reg+"/web:1.4")
	if moved == first {
		t.Fatal("two random images with one digest")
	}
	if pin, err := Resolve(ctx, reg+"/web:1.4"); err != nil || pin.Digest != moved {
		t.Errorf("after the tag moved: %+v, %v; want %s", pin, err, moved)
	}
	// A digest is pinned as written, without asking the registry.
	if pin, err := Resolve(ctx, "127.0.0.1:1/web@"+first); err != nil || pin.Digest != first || pin.Repository != "127.0.0.1:1/web" {
		t.Errorf("by digest: %+v, %v", pin, err)
	}
}

func TestResolveRefuses(t *testing.T) {
	reg := registrytest.Start(t)
	registrytest.Push(t, reg+"/web:1.4")
	ctx := context.Background()
	for _, c := range []struct {
		ref  string
		want error
		text string
	}{
		{"Web:1", ErrReference, "not an image reference"},
		{"web:1.4:5", ErrReference, "not an image reference"},
		{reg + "/web", ErrNoTag, "lastgood does not assume :latest"},
		{reg + "/web:9.9", ErrNotFound, "not found"},
		{reg + "/other:1", ErrNotFound, "not found"},
		{"127.0.0.1:1/web:1.4", ErrUnreachable, "connection refused"},
	} {
		_, err := Resolve(ctx, c.ref)
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.text) || !strings.Contains(err.Error(), c.ref) {
			t.Errorf("Resolve(%q) = %v; want %v saying %q and naming the reference", c.ref, err, c.want, c.text)
		}
	}
}
