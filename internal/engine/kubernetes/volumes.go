package kubernetes

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/lastgood/lastgood/internal/controller"
	"github.com/lastgood/lastgood/internal/manifest"
)

// A revision's config files and secrets are copied into immutable objects
// of its own, web-<rev>-<hash>, so that the revision (and an undo to it)
// mounts the exact content it was applied with. Config files are the
// revision's artifacts, in lastgood's artifact store; a Secret's values
// never leave the cluster: lastgood keeps only their digest (a pin, like
// an image's), and copies a Secret from the original while it still has
// that digest, or from an earlier copy with the same content.

const (
	// LabelContent is the content hash of a config or secret copy.
	LabelContent = "lastgood.dev/content-hash"
	// AnnotationSource names what a copy was made from: "config" or
	// "secret/<name>".
	AnnotationSource = "lastgood.dev/source"
	// pinSecret prefixes the artifact key of a Secret's digest.
	pinSecret = "secret/"
)

// secretPin is the artifact key of a secretRef's digest.
func secretPin(name string) string { return pinSecret + name }

// secretDigest is the digest of a Secret's type and data: a changed value
// makes a new revision, as a moved image tag does.
func secretDigest(s *corev1.Secret) string {
	h := sha256.New()
	h.Write([]byte("lastgood secret v1\x00" + string(s.Type) + "\x00"))
	var n [8]byte
	for _, k := range slices.Sorted(maps.Keys(s.Data)) {
		binary.BigEndian.PutUint64(n[:], uint64(len(k)))
		h.Write(n[:])
		h.Write([]byte(k))
		binary.BigEndian.PutUint64(n[:], uint64(len(s.Data[k])))
		h.Write(n[:])
		h.Write(s.Data[k])
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// shortHash is the first 10 hex digits of the SHA-256 of parts.
func shortHash(parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(sum[:5])
}

// copyName is the name of a revision's copy with content hash h.
func copyName(app string, rev int, h string) string {
	return app + "-" + strconv.Itoa(rev) + "-" + h
}

// configCopy is what a revision's ConfigMap holds: its file names and
// the artifacts they come from.
type configCopy struct {
	name, hash string
	files      map[string]string // key (base name) → artifact digest
}

func configOf(w controller.Workload) (*configCopy, error) {
	k := kubernetesOf(w.Manifest)
	if k.Config == nil {
		return nil, nil
	}
	c := &configCopy{files: map[string]string{}}
	var parts []string
	for _, f := range k.Config.Files {
		d := w.Artifacts[f]
		if d == "" {
			return nil, fmt.Errorf("revision %d of %s has no artifact for config file %s", w.Revision, w.App, f)
		}
		key := filepath.Base(f)
		c.files[key] = d
		parts = append(parts, key, d)
	}
	c.hash = shortHash(append([]string{"config"}, parts...)...)
	c.name = copyName(w.App, w.Revision, c.hash)
	return c, nil
}

// secretCopy is one of a revision's Secret copies.
type secretCopy struct {
	name, hash string
	ref        manifest.SecretRef
	digest     string
}

func secretsOf(w controller.Workload) ([]secretCopy, error) {
	var out []secretCopy
	for _, r := range kubernetesOf(w.Manifest).SecretRefs {
		d := w.Artifacts[secretPin(r.Name)]
		if d == "" {
			return nil, fmt.Errorf("revision %d of %s has no digest of secret %s", w.Revision, w.App, r.Name)
		}
		h := shortHash("secret", r.Name, d)
		out = append(out, secretCopy{name: copyName(w.App, w.Revision, h), hash: h, ref: r, digest: d})
	}
	return out, nil
}

// podVolumes are the volumes and mounts of a revision's copies.
func podVolumes(w controller.Workload) ([]corev1.Volume, []corev1.VolumeMount, error) {
	cfg, err := configOf(w)
	if err != nil {
		return nil, nil, err
	}
	secrets, err := secretsOf(w)
	if err != nil {
		return nil, nil, err
	}
	var vols []corev1.Volume
	var mounts []corev1.VolumeMount
	if cfg != nil {
		vols = append(vols, corev1.Volume{Name: "lastgood-config", VolumeSource: corev1.VolumeSource{
			ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: cfg.name}}}})
		mounts = append(mounts, corev1.VolumeMount{Name: "lastgood-config", MountPath: kubernetesOf(w.Manifest).Config.MountPath, ReadOnly: true})
	}
	for i, s := range secrets {
		name := "lastgood-secret-" + strconv.Itoa(i)
		vols = append(vols, corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{
			Secret: &corev1.SecretVolumeSource{SecretName: s.name}}})
		mounts = append(mounts, corev1.VolumeMount{Name: name, MountPath: s.ref.MountPath, ReadOnly: true})
	}
	return vols, mounts, nil
}

func copyLabels(app string, rev int, hash string) map[string]string {
	return map[string]string{LabelManagedBy: managedBy, LabelApp: app, LabelRevision: strconv.Itoa(rev), LabelContent: hash}
}

// ensureCopies creates a revision's ConfigMap and Secret copies, before
// its pods that mount them. An existing copy of lastgood's with the same
// name has the same content (the name carries its hash).
func (e *Engine) ensureCopies(ctx context.Context, ns string, w controller.Workload) error {
	cfg, err := configOf(w)
	if err != nil {
		return err
	}
	if cfg != nil {
		cm := &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: cfg.name, Labels: copyLabels(w.App, w.Revision, cfg.hash),
				Annotations: map[string]string{AnnotationSource: "config"}},
			Immutable: new(true),
		}
		for key, d := range cfg.files {
			if e.cfg.Artifact == nil {
				return fmt.Errorf("config file %s of %s: this engine has no artifact store", key, w.App)
			}
			b, err := e.cfg.Artifact(d)
			if err != nil {
				return fmt.Errorf("config file %s of %s revision %d: %w", key, w.App, w.Revision, err)
			}
			if utf8.Valid(b) {
				if cm.Data == nil {
					cm.Data = map[string]string{}
				}
				cm.Data[key] = string(b)
			} else {
				if cm.BinaryData == nil {
					cm.BinaryData = map[string][]byte{}
				}
				cm.BinaryData[key] = b
			}
		}
		if err := e.createCopy(ctx, e.kube.configMaps(), ns, cm, &corev1.ConfigMap{}); err != nil {
			return err
		}
	}
	secrets, err := secretsOf(w)
	if err != nil {
		return err
	}
	for _, s := range secrets {
		if err := e.kube.get(ctx, e.kube.secrets(), ns, s.name, &corev1.Secret{}); err == nil {
			continue // made before (its name is its content)
		} else if !apierrors.IsNotFound(err) {
			return fmt.Errorf("secret %s/%s: %w", ns, s.name, err)
		}
		src, err := e.secretSource(ctx, ns, w.App, s)
		if err != nil {
			return err
		}
		cp := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: s.name, Labels: copyLabels(w.App, w.Revision, s.hash),
				Annotations: map[string]string{AnnotationSource: secretPin(s.ref.Name)}},
			Immutable: new(true),
			Type:      src.Type,
			Data:      src.Data,
		}
		if err := e.createCopy(ctx, e.kube.secrets(), ns, cp, &corev1.Secret{}); err != nil {
			return err
		}
	}
	return nil
}

// createCopy creates a copy; one that exists must be lastgood's.
func (e *Engine) createCopy(ctx context.Context, r resource, ns string, obj interface {
	metav1.Object
	runtime.Object
}, into runtime.Object) error {
	err := e.kube.create(ctx, r, ns, obj, into)
	if !apierrors.IsAlreadyExists(err) {
		return err
	}
	if err := e.kube.get(ctx, r, ns, obj.GetName(), into); err != nil {
		return err
	}
	have := into.(metav1.Object).GetLabels()
	if have[LabelManagedBy] != managedBy || have[LabelContent] != obj.GetLabels()[LabelContent] {
		return fmt.Errorf("%s %s/%s exists but is not lastgood's copy (labels %s=%s, %s=%s); lastgood leaves it alone",
			strings.TrimSuffix(r.name, "s"), ns, obj.GetName(), LabelManagedBy, managedBy, LabelContent, obj.GetLabels()[LabelContent])
	}
	return nil
}

// secretSource finds the content a Secret copy is made from: an earlier
// copy with the same content, else the named Secret while it still has
// the digest pinned at apply.
func (e *Engine) secretSource(ctx context.Context, ns, app string, s secretCopy) (*corev1.Secret, error) {
	var copies corev1.SecretList
	sel := labels.Set{LabelManagedBy: managedBy, LabelApp: app, LabelContent: s.hash}.String()
	if err := e.kube.list(ctx, e.kube.secrets(), ns, metav1.ListOptions{LabelSelector: sel}, &copies); err != nil {
		return nil, fmt.Errorf("list secret copies of %s: %w", app, err)
	}
	for i := range copies.Items {
		if c := &copies.Items[i]; secretDigest(c) == s.digest {
			return c, nil
		}
	}
	var orig corev1.Secret
	err := e.kube.get(ctx, e.kube.secrets(), ns, s.ref.Name, &orig)
	switch {
	case apierrors.IsNotFound(err):
		return nil, fmt.Errorf("secret %s/%s is gone and no copy of the content pinned for %s is left", ns, s.ref.Name, app)
	case err != nil:
		return nil, fmt.Errorf("secret %s/%s: %w", ns, s.ref.Name, err)
	case secretDigest(&orig) != s.digest:
		return nil, fmt.Errorf("secret %s/%s changed since it was pinned (%s) and no copy of that content is left; apply the manifest again to release the new content", ns, s.ref.Name, s.digest)
	}
	return &orig, nil
}

// resolveSecrets pins the digest of every Secret the manifest names; a
// missing one is a field error.
func (e *Engine) resolveSecrets(ctx context.Context, ns string, m *manifest.App, pins map[string]string, add func(field, format string, args ...any)) error {
	for i, r := range kubernetesOf(m).SecretRefs {
		var s corev1.Secret
		err := e.kube.get(ctx, e.kube.secrets(), ns, r.Name, &s)
		field := fmt.Sprintf("kubernetes.secretRefs[%d].name", i)
		switch {
		case apierrors.IsNotFound(err):
			add(field, "secret %s does not exist in namespace %s; create it (kubectl create secret generic %s -n %s …) or name another", r.Name, ns, r.Name, ns)
		case apierrors.IsForbidden(err):
			add(field, "lastgood may not get secret %s: %v", r.Name, forbidden(err))
		case err != nil:
			return fmt.Errorf("kubernetes: get secret %s/%s: %w", ns, r.Name, err)
		default:
			pins[secretPin(r.Name)] = secretDigest(&s)
		}
	}
	return nil
}

// Prune deletes the config and secret copies of revisions that history
// pruned, except those a pod or ReplicaSet of the app still mounts (an
// undo handed the warm ReplicaSet on); those go with a later prune.
func (e *Engine) Prune(app string, revs []int) {
	e.mu.Lock()
	a := e.state[app]
	ns := e.cfg.Namespace
	if a != nil {
		ns = a.namespace
	}
	w := e.watches[ns]
	e.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e.pruneCopies(ctx, w, ns, app, func(rev int) bool { return slices.Contains(revs, rev) })
}

// pruneCopies deletes the copies of app's revisions for which gone holds
// and which nothing of the app still mounts.
func (e *Engine) pruneCopies(ctx context.Context, w *namespaceWatch, ns, app string, gone func(rev int) bool) {
	used := map[string]bool{}
	if w != nil {
		sel := labels.SelectorFromSet(labels.Set{LabelApp: app})
		pods, _ := w.podList.Pods(ns).List(sel)
		for _, p := range pods {
			mountedBy(p.Spec, used)
		}
		sets, _ := w.setList.ReplicaSets(ns).List(sel)
		for _, rs := range sets {
			mountedBy(rs.Spec.Template.Spec, used)
		}
	}
	if spec, ok := e.statefulTemplate(ctx, ns, app); ok && w != nil {
		mountedBy(spec, used)
	}
	sel := labels.Set{LabelManagedBy: managedBy, LabelApp: app}.String()
	var cms corev1.ConfigMapList
	var secrets corev1.SecretList
	var objs []metav1.Object
	var kinds []resource
	if err := e.kube.list(ctx, e.kube.configMaps(), ns, metav1.ListOptions{LabelSelector: sel}, &cms); err == nil {
		for i := range cms.Items {
			objs, kinds = append(objs, &cms.Items[i]), append(kinds, e.kube.configMaps())
		}
	}
	if err := e.kube.list(ctx, e.kube.secrets(), ns, metav1.ListOptions{LabelSelector: sel}, &secrets); err == nil {
		for i := range secrets.Items {
			objs, kinds = append(objs, &secrets.Items[i]), append(kinds, e.kube.secrets())
		}
	}
	for i, o := range objs {
		rev, err := revisionOf(o)
		if err != nil || o.GetLabels()[LabelContent] == "" || !gone(rev) || used[o.GetName()] {
			continue
		}
		uid := o.GetUID()
		err = e.kube.delete(ctx, kinds[i], ns, o.GetName(), metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
		if err != nil && !apierrors.IsNotFound(err) {
			e.cfg.Log.Warn("kubernetes: delete copy", "namespace", ns, "name", o.GetName(), "err", err)
		}
	}
}

// mountedBy adds the ConfigMaps and Secrets a pod spec mounts to used.
func mountedBy(spec corev1.PodSpec, used map[string]bool) {
	for _, v := range spec.Volumes {
		if v.ConfigMap != nil {
			used[v.ConfigMap.Name] = true
		}
		if v.Secret != nil {
			used[v.Secret.SecretName] = true
		}
	}
}
