package api

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"

	"github.com/lastgood/lastgood/internal/artifact"
	"github.com/lastgood/lastgood/internal/controller"
	"github.com/lastgood/lastgood/internal/manifest"
	"github.com/lastgood/lastgood/internal/migrate"
)

// ApplyFile applies a manifest file: it reads and validates it, hashes its
// artifacts, uploads those the server lacks, and applies it. Problems found
// before anything is sent are manifest.Errors (errors.Is ErrInvalid).
func (c *Client) ApplyFile(ctx context.Context, file string) (controller.ApplyResult, error) {
	req, paths, err := prepare(file)
	if err != nil {
		return controller.ApplyResult{}, err
	}
	for written, digest := range req.Artifacts {
		if err := c.Upload(ctx, digest, paths[written]); err != nil {
			return controller.ApplyResult{}, fmt.Errorf("upload %s: %w", written, err)
		}
	}
	return c.Apply(ctx, req)
}

// prepare reads a manifest and hashes its artifacts, refusing what the
// server would refuse anyway while the files are at hand: an artifact that
// is missing or a directory, a command artifact that is not executable.
func prepare(file string) (controller.ApplyRequest, map[string]string, error) {
	m, data, err := manifest.Load(file)
	if err != nil {
		return controller.ApplyRequest{}, nil, err
	}
	req := controller.ApplyRequest{File: file, Manifest: string(data), Artifacts: map[string]string{}}
	paths := map[string]string{}
	dir := filepath.Dir(file)
	errs := migrations(file, data, m, dir, req.Artifacts, paths)
	errs = append(errs, configFiles(file, data, m, dir, req.Artifacts, paths)...)
	if m.Run == nil {
		if len(errs) > 0 {
			return req, nil, errs
		}
		return req, paths, nil
	}
	for i, written := range m.Run.Artifacts {
		field := fmt.Sprintf("run.artifacts[%d]", i)
		path := m.ArtifactPath(dir, written)
		if abs, err := filepath.Abs(path); err == nil {
			path = abs
		}
		d, err := artifact.Digest(path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			errs = append(errs, manifest.At(file, data, field, fmt.Sprintf("%s: no such file (looked at %s)", written, path)))
			continue
		case errors.Is(err, artifact.ErrNotFile):
			errs = append(errs, manifest.At(file, data, field, fmt.Sprintf("%s is a directory, not a file; list the files it holds", written)))
			continue
		case err != nil:
			errs = append(errs, manifest.At(file, data, field, err.Error()))
			continue
		}
		req.Artifacts[written], paths[written] = d, path
		if filepath.Clean(written) == filepath.Clean(m.Run.Command[0]) {
			if st, err := os.Stat(path); err == nil && st.Mode()&0o111 == 0 {
				errs = append(errs, manifest.At(file, data, "run.command[0]",
					fmt.Sprintf("%s is not executable (mode %v); chmod +x it", written, st.Mode().Perm())))
			}
		}
	}
	if len(errs) > 0 {
		return req, nil, errs
	}
	return req, paths, nil
}

// configFiles hashes the files of kubernetes.config into artifacts (keyed
// as written), refusing one that is missing or a directory.
func configFiles(file string, data []byte, m *manifest.App, dir string, artifacts, paths map[string]string) manifest.Errors {
	if m.Kubernetes == nil || m.Kubernetes.Config == nil {
		return nil
	}
	var errs manifest.Errors
	var total int64
	for i, written := range m.Kubernetes.Config.Files {
		field := fmt.Sprintf("kubernetes.config.files[%d]", i)
		path := m.ArtifactPath(dir, written)
		if abs, err := filepath.Abs(path); err == nil {
			path = abs
		}
		d, err := artifact.Digest(path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			errs = append(errs, manifest.At(file, data, field, fmt.Sprintf("%s: no such file (looked at %s)", written, path)))
		case errors.Is(err, artifact.ErrNotFile):
			errs = append(errs, manifest.At(file, data, field, fmt.Sprintf("%s is a directory, not a file; list the files it holds", written)))
		case err != nil:
			errs = append(errs, manifest.At(file, data, field, err.Error()))
		default:
			artifacts[written], paths[written] = d, path
			if st, err := os.Stat(path); err == nil {
				total += st.Size()
			}
		}
	}
	// A ConfigMap holds at most 1 MiB (etcd's limit on an object, less
	// its metadata).
	const maxConfig = 1<<20 - 16<<10
	if total > maxConfig {
		errs = append(errs, manifest.At(file, data, "kubernetes.config.files",
			fmt.Sprintf("the files hold %d bytes; a revision's ConfigMap holds at most %d (mount larger files from a volume)", total, maxConfig)))
	}
	return errs
}

// migrations hashes the .sql files of the manifest's migrations folder into
// artifacts (keyed by migrate.FilePath) and checks the folder's layout:
// a missing folder, a gap or a duplicate in the numbering, a down file
// without its up file are refused here, each naming its file.
func migrations(file string, data []byte, m *manifest.App, dir string, artifacts, paths map[string]string) manifest.Errors {
	if m.Database == nil {
		return nil
	}
	written := m.Database.Migrations
	folder := m.ArtifactPath(dir, written)
	if abs, err := filepath.Abs(folder); err == nil {
		folder = abs
	}
	fail := func(format string, args ...any) manifest.Errors {
		return manifest.Errors{manifest.At(file, data, "database.migrations", fmt.Sprintf(format, args...))}
	}
	entries, err := os.ReadDir(folder)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fail("%s: no such folder (looked at %s)", written, folder)
	case err != nil:
		if st, serr := os.Stat(folder); serr == nil && !st.IsDir() {
			return fail("%s is a file, not the folder of migration files", written)
		}
		return fail("%s: %v", written, err)
	}
	found := map[string]string{}
	var errs manifest.Errors
	for _, e := range entries {
		if !e.Type().IsRegular() || !strings.HasSuffix(e.Name(), ".sql") {
			continue // a README beside the migrations is no migration
		}
		key := migrate.FilePath(written, e.Name())
		path := filepath.Join(folder, e.Name())
		d, err := artifact.Digest(path)
		if err != nil {
			errs = append(errs, fail("%s: %v", key, err)...)
			continue
		}
		found[key], paths[key] = d, path
	}
	_, problems := migrate.Layout(written, found)
	for _, p := range problems {
		errs = append(errs, fail("%s", p.Error())...)
	}
	maps.Copy(artifacts, found)
	return errs
}
