package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/lastgood/lastgood/internal/artifact"
	"github.com/lastgood/lastgood/internal/controller"
	"github.com/lastgood/lastgood/internal/engine/local"
	"github.com/lastgood/lastgood/internal/manifest"
)

// localEngine adapts the local engine to the controller's Engine: it turns
// a workload into a command line over the stored artifact copies.
type localEngine struct {
	*local.Engine
	artifacts *artifact.Store
	workRoot  string // <data>/work: each app runs in <data>/work/<app>
	// otlp is the URL of lastgood's OTLP/HTTP receiver, given to every
	// replica (otelEnv); empty when the receiver is off.
	otlp string
}

func (e *localEngine) Scale(ctx context.Context, w controller.Workload, n int) error {
	spec, err := e.spec(w)
	if err != nil {
		return err
	}
	return e.Engine.Scale(ctx, spec, n)
}

func (e *localEngine) Replicas(app string) []controller.Replica {
	rs := e.Engine.Replicas(app)
	out := make([]controller.Replica, len(rs))
	for i, r := range rs {
		out[i] = controller.Replica{
			ID: r.ID, Revision: r.Revision, Addr: r.Addr, State: string(r.State), Ready: r.Ready,
			Stopping: r.State == local.StateStopping, Restarts: r.Restarts, PID: r.PID,
			LastExit: r.LastExit, Started: r.Started, Log: r.LogPath,
		}
	}
	return out
}

// Check refuses a workload the local engine cannot run: no run section, or
// a program that is not there or not executable.
func (e *localEngine) Check(w controller.Workload) error {
	if w.Manifest.Run == nil {
		return &manifest.FieldError{Field: "run", Message: "required by the local engine (image is for the kubernetes engine)"}
	}
	if w.Manifest.Image != "" {
		return &manifest.FieldError{Field: "image", Message: "is for the kubernetes engine (lastgood serve --engine kubernetes); this server runs the local engine, which runs run (remove image)"}
	}
	prog := w.Manifest.Run.Command[0]
	if _, ok := artifactOf(w, prog); ok {
		return nil // a stored copy: checked by the client at upload, mode 0555 here
	}
	field := "run.command[0]"
	switch {
	case filepath.IsAbs(prog):
		st, err := os.Stat(prog)
		if err != nil {
			return &manifest.FieldError{Field: field, Message: fmt.Sprintf("%s: %v", prog, errors.Unwrap(err))}
		}
		if st.IsDir() || st.Mode()&0o111 == 0 {
			return &manifest.FieldError{Field: field, Message: fmt.Sprintf("%s is not an executable file (mode %v)", prog, st.Mode())}
		}
	case strings.Contains(prog, "/"):
		return &manifest.FieldError{Field: field, Message: fmt.Sprintf("%s is a relative path but not one of run.artifacts; list it there so lastgood keeps a copy", prog)}
	default:
		path := os.Getenv("PATH")
		if p, ok := w.Manifest.Run.Env["PATH"]; ok {
			path = p
		}
		if _, err := lookPath(prog, path); err != nil {
			return &manifest.FieldError{Field: field, Message: fmt.Sprintf("%s: not found in PATH", prog)}
		}
	}
	return nil
}

func lookPath(prog, path string) (string, error) {
	for _, dir := range filepath.SplitList(path) {
		p := filepath.Join(dir, prog)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", exec.ErrNotFound
}

// spec builds the local engine's spec: every argument naming an artifact —
// whole, or after the "=" of --flag=path — becomes the path of its stored
// copy, so a revision runs the bytes it was applied with.
func (e *localEngine) spec(w controller.Workload) (local.Spec, error) {
	m := w.Manifest
	if m.Run == nil {
		return local.Spec{}, fmt.Errorf("revision %d of %s has no run section", w.Revision, w.App)
	}
	args := make([]string, len(m.Run.Command))
	for i, arg := range m.Run.Command {
		args[i] = arg
		if d, ok := artifactOf(w, arg); ok {
			p, err := e.artifacts.Path(d)
			if err != nil {
				return local.Spec{}, err
			}
			args[i] = p
			continue
		}
		if k, v, ok := strings.Cut(arg, "="); ok {
			if d, ok := artifactOf(w, v); ok {
				p, err := e.artifacts.Path(d)
				if err != nil {
					return local.Spec{}, err
				}
				args[i] = k + "=" + p
			}
		}
	}
	dir := filepath.Join(e.workRoot, w.App)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return local.Spec{}, err
	}
	return local.Spec{
		App: w.App, Revision: w.Revision, Command: args, Env: otelEnv(m.Run.Env, e.otlp, w.App, w.Revision), Dir: dir,
		Readiness: m.Probes.Readiness, Liveness: m.Probes.Liveness,
	}, nil
}

// artifactOf finds the digest of the artifact an argument names.
func artifactOf(w controller.Workload, arg string) (string, bool) {
	if arg == "" {
		return "", false
	}
	if d, ok := w.Artifacts[arg]; ok {
		return d, true
	}
	clean := filepath.Clean(arg)
	for p, d := range w.Artifacts {
		if filepath.Clean(p) == clean {
			return d, true
		}
	}
	return "", false
}

// otelEnv adds to a replica's environment what an OpenTelemetry SDK needs
// to send lastgood its traces with no code change: the receiver's address
// and resource attributes naming the app and revision. What run.env sets
// itself wins — OTEL_EXPORTER_OTLP_ENDPOINT pointing at the user's own
// collector, which forwards to lastgood — except lastgood.app,
// lastgood.revision and service.version, which are lastgood's to say. With
// no receiver (endpoint empty) the environment is returned as it is.
func otelEnv(env map[string]string, endpoint, app string, revision int) map[string]string {
	if endpoint == "" {
		return env
	}
	out := make(map[string]string, len(env)+4)
	for k, v := range env {
		out[k] = v
	}
	set := func(k, v string) {
		if _, ok := out[k]; !ok {
			out[k] = v
		}
	}
	set("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
	set("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
	set("OTEL_SERVICE_NAME", app)
	rev := strconv.Itoa(revision)
	ours := map[string]string{"lastgood.app": app, "lastgood.revision": rev, "service.version": rev}
	var attrs []string
	for _, kv := range strings.Split(env["OTEL_RESOURCE_ATTRIBUTES"], ",") {
		k, _, _ := strings.Cut(kv, "=")
		if _, mine := ours[strings.TrimSpace(k)]; strings.TrimSpace(kv) != "" && !mine {
			attrs = append(attrs, kv)
		}
	}
	attrs = append(attrs, "lastgood.app="+app, "lastgood.revision="+rev, "service.version="+rev)
	out["OTEL_RESOURCE_ATTRIBUTES"] = strings.Join(attrs, ",")
	return out
}
