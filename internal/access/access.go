// Package access decides who may do what on lastgood's API address: the
// tokens and their roles (viewer, deployer, admin), the dashboard's
// session cookie and its CSRF token, and the rules every request meets
// before a handler runs — an allowed Host (against DNS rebinding), and for
// every request that changes state a body no browser can send across
// sites without asking (against cross-site request forgery). Gate.Wrap is
// the one middleware that enforces them; Require guards a route by role.
package access

import (
	"context"
	"fmt"
)

// Role is what a token may do. Each role may do everything the ones
// below it may.
type Role int

const (
	// NoRole is an unauthenticated caller of a lastgood that has tokens.
	NoRole Role = iota
	// Viewer reads: the API's GETs, the dashboard, the event stream,
	// /metrics.
	Viewer
	// Deployer also changes rollouts: apply, artifact uploads, promote,
	// abort, pause, resume, undo.
	Deployer
	// Admin may do everything.
	Admin
)

var roleNames = map[Role]string{NoRole: "none", Viewer: "viewer", Deployer: "deployer", Admin: "admin"}

func (r Role) String() string {
	if s, ok := roleNames[r]; ok {
		return s
	}
	return fmt.Sprintf("Role(%d)", int(r))
}

// ParseRole reads viewer, deployer or admin.
func ParseRole(s string) (Role, error) {
	for r, name := range roleNames {
		if r != NoRole && name == s {
			return r, nil
		}
	}
	return NoRole, fmt.Errorf("want viewer, deployer or admin, got %q", s)
}

// Anonymous is the caller's name when lastgood has no token: everyone who
// can reach the API may do everything, as on a loopback-only default.
const Anonymous = "anonymous"

// Identity is who made a request.
type Identity struct {
	Name string // the token's name; Anonymous without tokens; "" when unauthenticated
	Role Role
	// Via says how the caller proved it: "token" (bearer header),
	// "cookie" (the dashboard's session), or "" (no tokens, or none sent).
	Via string
}

type identityKey struct{}

// WithIdentity returns ctx carrying id.
func WithIdentity(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// IdentityFrom returns the identity Gate.Wrap put in ctx (the zero
// Identity, with NoRole, when none).
func IdentityFrom(ctx context.Context) Identity {
	id, _ := ctx.Value(identityKey{}).(Identity)
	return id
}
