package kubernetes

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/lastgood/lastgood/internal/controller"
	"github.com/lastgood/lastgood/internal/image"
	"github.com/lastgood/lastgood/internal/manifest"
)

// maxAppName keeps <app>-preview a valid Service name (63 characters).
const maxAppName = 63 - len("-preview")

// unsupportedChecks are the analysis sources that read lastgood's own
// router or the replicas' processes, which the kubernetes engine has not.
var unsupportedChecks = []string{"compare", "threshold", "logs", "resources", "journey"}

// Check refuses, at apply and with nothing created, a manifest the
// kubernetes engine cannot run: the fields of the local engine, and what
// is not built on Kubernetes yet.
func (e *Engine) Check(w controller.Workload) error {
	m := w.Manifest
	var errs manifest.Errors
	add := func(field, format string, args ...any) {
		errs = append(errs, &manifest.FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	if m.Run != nil {
		add("run", "is for the local engine; this server runs the kubernetes engine, which runs image (remove run)")
	}
	if m.Image == "" && workloadRefOf(m) == nil {
		add("image", "is required by the kubernetes engine: the container image, like registry.example/web:1.4 (or kubernetes.workloadRef, to take over a Deployment)")
	}
	if m.Listen != "" {
		add("listen", "is for the local engine's router; on Kubernetes the Service %s serves the app on port %d (remove listen)", stableService(m.Name), ServicePort)
	}
	if len(m.Name) > maxAppName {
		add("name", "must be at most %d characters on the kubernetes engine (the Service %s is at most 63), got %d", maxAppName, previewService(m.Name), len(m.Name))
	}
	if bg := m.Strategy.BlueGreen; bg != nil && bg.Preview != "" {
		add("strategy.blueGreen.preview", "is an address of the local engine; on Kubernetes the new revision answers on the Service %s (remove preview)", previewService(m.Name))
	}
	if c := m.Strategy.Canary; c != nil && len(c.Match) > 0 {
		add("strategy.canary.match", "is not built on the kubernetes engine yet")
	}
	if m.SessionAffinity != nil {
		add("sessionAffinity", "is not built on the kubernetes engine yet")
	}
	if a := m.Analysis; a != nil {
		for i, c := range a.Checks {
			for _, src := range unsupportedChecks {
				if checkUses(c, src) {
					add(fmt.Sprintf("analysis.checks[%d].%s", i, src), "is not available on the kubernetes engine yet (it reads lastgood's router or processes); use a prometheus or webhook check")
				}
			}
		}
	}
	e.mu.Lock()
	a := e.state[m.Name]
	e.mu.Unlock()
	if a != nil && a.manifest != nil && a.namespace != e.namespaceOf(m) {
		add("kubernetes.namespace", "cannot change from %s to %s; an app stays in its namespace", a.namespace, e.namespaceOf(m))
	}
	var prev *manifest.App
	if a != nil {
		prev = a.manifest
	}
	checkStateful(m, prev, add)
	if len(errs) > 0 {
		return errs
	}
	return nil
}

func checkUses(c manifest.Check, src string) bool {
	switch src {
	case "compare":
		return c.Compare != nil
	case "threshold":
		return c.Threshold != nil
	case "logs":
		return c.Logs != nil
	case "resources":
		return c.Resources != nil
	case "journey":
		return c.Journey != nil
	}
	return false
}

// Resolve pins the manifest's image to its digest and checks what only
// the cluster can tell: that the namespace exists and that the HTTPRoute,
// when one is named, exists and names the app's Services. Every problem
// is a field error, so the apply is refused with nothing created.
func (e *Engine) Resolve(ctx context.Context, m *manifest.App) (map[string]string, error) {
	if (m.Image == "" && workloadRefOf(m) == nil) || m.Run != nil {
		return nil, nil // Check says what is wrong
	}
	ctx, cancel := context.WithTimeout(ctx, e.cfg.ResolveTimeout)
	defer cancel()
	var errs manifest.Errors
	add := func(field, format string, args ...any) {
		errs = append(errs, &manifest.FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	ns := e.namespaceOf(m)
	field := "kubernetes.namespace"
	if m.Kubernetes == nil || m.Kubernetes.Namespace == "" {
		field = "name" // the server's --namespace: point at the app
	}
	nsOK := false
	switch err := e.kube.get(ctx, e.kube.namespaces(), "", ns, &corev1.Namespace{}); {
	case apierrors.IsNotFound(err):
		add(field, "namespace %s does not exist on the cluster; create it (kubectl create namespace %s) or name another", ns, ns)
	case apierrors.IsForbidden(err):
		add(field, "lastgood may not get namespace %s: %v", ns, forbidden(err))
	case err != nil:
		return nil, fmt.Errorf("kubernetes: get namespace %s: %w", ns, err)
	default:
		nsOK = true
	}
	if nsOK {
		missing, err := e.missing(ctx, ns)
		switch {
		case err != nil:
			return nil, err
		case len(missing) > 0:
			add(field, "%s", deniedError(ns, missing))
			nsOK = false
		}
	}
	if k := m.Kubernetes; nsOK && k != nil && k.Traffic != nil && k.Traffic.HTTPRoute != "" {
		msg, err := e.routeProblem(ctx, ns, k.Traffic.HTTPRoute, m.Name)
		switch {
		case apierrors.IsForbidden(err):
			add("kubernetes.traffic.httpRoute", "lastgood may not read HTTPRoute %s: %v", k.Traffic.HTTPRoute, forbidden(err))
		case err != nil:
			return nil, fmt.Errorf("kubernetes: get httproute %s/%s: %w", ns, k.Traffic.HTTPRoute, err)
		case msg != "":
			add("kubernetes.traffic.httpRoute", "%s", msg)
		}
	}
	pins := map[string]string{}
	if nsOK {
		if err := e.resolveSecrets(ctx, ns, m, pins, add); err != nil {
			return nil, err
		}
		if err := e.resolveDeployment(ctx, ns, m, pins, add); err != nil {
			return nil, err
		}
	}
	if m.Image != "" {
		pin, err := image.Resolve(ctx, m.Image)
		if err != nil {
			add("image", "%v", err)
		} else {
			pins[PinImage] = pin.Digest
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return pins, nil
}

// forbidden keeps the API server's words for what RBAC refused.
func forbidden(err error) string {
	var se *apierrors.StatusError
	if errors.As(err, &se) {
		return se.ErrStatus.Message
	}
	return err.Error()
}
