package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
)

// permission is one verb on one resource that the engine uses.
type permission struct {
	Group, Resource, Verb string
}

func (p permission) String() string {
	r := p.Resource
	if p.Group != "" {
		r += "." + p.Group
	}
	return p.Verb + " " + r
}

// Needs are the verbs the engine uses in a namespace it runs apps in,
// each for what (deploy/kubernetes/rbac.yaml grants exactly these, and
// get on namespaces cluster-wide). Keep the three in step.
var Needs = []permission{
	{"apps", "replicasets", "list"}, {"apps", "replicasets", "watch"}, {"apps", "replicasets", "create"},
	{"apps", "replicasets", "patch"}, {"apps", "replicasets", "delete"},
	{"apps", "statefulsets", "get"}, {"apps", "statefulsets", "create"}, {"apps", "statefulsets", "update"},
	{"apps", "statefulsets", "delete"},
	{"apps", "deployments", "get"}, {"apps", "deployments", "patch"},
	{"", "pods", "list"}, {"", "pods", "watch"}, {"", "pods", "patch"}, {"", "pods", "delete"},
	{"", "pods/log", "get"},
	{"", "configmaps", "get"}, {"", "configmaps", "list"}, {"", "configmaps", "create"}, {"", "configmaps", "delete"},
	{"", "secrets", "get"}, {"", "secrets", "list"}, {"", "secrets", "create"}, {"", "secrets", "delete"},
	{"", "services", "list"}, {"", "services", "watch"}, {"", "services", "create"},
	{"", "services", "update"}, {"", "services", "delete"},
	{"", "events", "create"}, {"", "events", "list"},
	{"gateway.networking.k8s.io", "httproutes", "get"}, {"gateway.networking.k8s.io", "httproutes", "update"},
	{"lastgood.dev", "apps", "get"}, {"lastgood.dev", "apps", "list"}, {"lastgood.dev", "apps", "watch"},
	{"lastgood.dev", "apps", "create"}, {"lastgood.dev", "apps", "update"}, {"lastgood.dev", "apps", "delete"},
	{"lastgood.dev", "apps/status", "patch"},
}

// denied asks the API server (SelfSubjectAccessReview, which every
// authenticated user may) which of Needs lastgood may not do in ns; nil
// when it may do them all.
func (e *Engine) denied(ctx context.Context, ns string) ([]string, error) {
	var out []string
	for _, p := range Needs {
		res, sub, _ := strings.Cut(p.Resource, "/")
		review := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
			ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: ns, Group: p.Group, Resource: res, Subresource: sub, Verb: p.Verb},
		}}
		var got authorizationv1.SelfSubjectAccessReview
		if err := e.kube.create(ctx, e.kube.accessReviews(), "", review, &got); err != nil {
			return nil, fmt.Errorf("kubernetes: ask the API server what lastgood may do: %w", err)
		}
		if !got.Status.Allowed {
			out = append(out, p.String())
		}
	}
	return out, nil
}

// deniedError says what RBAC forbids lastgood in ns, and how to grant it.
func deniedError(ns string, missing []string) string {
	return fmt.Sprintf("RBAC forbids lastgood in namespace %s: %s; grant them (the ClusterRole lastgood of deploy/kubernetes/rbac.yaml, bound in %s)",
		ns, strings.Join(missing, ", "), ns)
}

// mayWork fails, naming each verb and resource, when RBAC forbids
// lastgood something it needs in ns.
func (e *Engine) mayWork(ctx context.Context, ns string) error {
	missing, err := e.missing(ctx, ns)
	if err != nil {
		return err
	}
	if len(missing) > 0 {
		return errors.New("kubernetes: " + deniedError(ns, missing))
	}
	return nil
}

// missing is denied, remembering for a minute that ns allowed everything.
func (e *Engine) missing(ctx context.Context, ns string) ([]string, error) {
	e.mu.Lock()
	at, ok := e.allowed[ns]
	e.mu.Unlock()
	if ok && time.Since(at) < time.Minute {
		return nil, nil
	}
	missing, err := e.denied(ctx, ns)
	if err == nil && len(missing) == 0 {
		e.mu.Lock()
		e.allowed[ns] = time.Now()
		e.mu.Unlock()
	}
	return missing, err
}
