// Package image pins a container image reference to the digest of what
// its registry serves for it now, so that a revision runs exactly the
// image it was applied with (github.com/google/go-containerregistry).
package image

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Errors callers branch on; each Resolve error matches one of them.
var (
	ErrReference   = errors.New("not an image reference")
	ErrNoTag       = errors.New("no tag or digest")
	ErrNotFound    = errors.New("not found in its registry")
	ErrDenied      = errors.New("access denied by its registry")
	ErrUnreachable = errors.New("registry unreachable")
)

// Pin is an image reference fixed to one manifest digest.
type Pin struct {
	Repository string // registry and repository, like 127.0.0.1:5000/web
	Digest     string // sha256:…
}

// String is the reference a pod runs: repository@digest.
func (p Pin) String() string { return p.Repository + "@" + p.Digest }

// Resolve asks ref's registry for the digest of the manifest ref names.
// A reference must name a tag or a digest: lastgood never assumes :latest.
// A reference by digest is pinned as written, without asking. Registries
// on loopback addresses are spoken to over plain HTTP; credentials come
// from the Docker config (~/.docker/config.json), as with docker pull.
func Resolve(ctx context.Context, ref string) (Pin, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return Pin{}, fmt.Errorf("%q: %w: %v", ref, ErrReference, err)
	}
	if !explicit(ref) {
		return Pin{}, fmt.Errorf("%q: %w; write %s:TAG or %s@sha256:… (lastgood does not assume :latest)", ref, ErrNoTag, ref, ref)
	}
	repo := r.Context().String()
	if d, ok := r.(name.Digest); ok {
		return Pin{Repository: repo, Digest: d.DigestStr()}, nil
	}
	desc, err := remote.Head(r, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain))
	if err != nil {
		return Pin{}, classify(ref, r.Context().RegistryStr(), err)
	}
	return Pin{Repository: repo, Digest: desc.Digest.String()}, nil
}

// explicit reports whether a reference names its tag or digest, rather
// than leaving the registry's "latest" to be assumed.
func explicit(ref string) bool {
	if strings.Contains(ref, "@") {
		return true
	}
	last := ref[strings.LastIndex(ref, "/")+1:]
	return strings.Contains(last, ":")
}

func classify(ref, registry string, err error) error {
	var te *transport.Error
	if errors.As(err, &te) {
		switch te.StatusCode {
		case http.StatusNotFound:
			return fmt.Errorf("%q: %w (%s answered %d)", ref, ErrNotFound, registry, te.StatusCode)
		case http.StatusUnauthorized, http.StatusForbidden:
			return fmt.Errorf("%q: %w (%s answered %d; log in with docker login)", ref, ErrDenied, registry, te.StatusCode)
		}
		return fmt.Errorf("%q: %s answered %d: %v", ref, registry, te.StatusCode, te)
	}
	var ue *url.Error
	var ne net.Error
	if errors.As(err, &ue) || errors.As(err, &ne) {
		return fmt.Errorf("%q: %w: %s: %v", ref, ErrUnreachable, registry, innermost(err))
	}
	return fmt.Errorf("%q: %s: %w", ref, registry, err)
}

// innermost is the system's own words for a network failure ("connect:
// connection refused").
func innermost(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) {
		return oe
	}
	return err
}
