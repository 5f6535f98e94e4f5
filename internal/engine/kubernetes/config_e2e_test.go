package kubernetes_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	appsclient "k8s.io/client-go/kubernetes/typed/apps/v1"

	"github.com/lastgood/lastgood/internal/engine/kubernetes"
	"github.com/lastgood/lastgood/internal/image/registrytest"
)

const configManifest = `name: web
image: %IMAGE%
replicas: 2
strategy:
  blueGreen: {}
rollback: {progressDeadline: 2m, window: 0s}
history: 3
kubernetes:
  config: {files: [conf/app.conf], mountPath: /etc/web}
  secretRefs: [{name: db, mountPath: /etc/db}]
`

// TestConfigAndSecretsPerRevision: each revision mounts immutable copies
// of its config files and Secrets, an undo mounts the old content again
// (the Secret's copy comes from the cluster, never from lastgood's
// store), and copies go with their revisions.
func TestConfigAndSecretsPerRevision(t *testing.T) {
	c := kubernetes.NewTestCluster(t)
	reg := registrytest.Start(t)
	registrytest.Push(t, reg+"/web:1")
	lg := serveKubernetes(t, c)
	apps, err := appsclient.NewForConfig(c.Config.Rest)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const first, second = "s3cr3t-first-7c1f", "s3cr3t-second-2b9e"
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db"}, StringData: map[string]string{"password": first}}
	if _, err := c.Core.Secrets(c.Namespace).Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(lg.dir, "conf"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeConf := func(s string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(lg.dir, "conf", "app.conf"), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	file := lg.manifest("web.yaml", strings.ReplaceAll(configManifest, "%IMAGE%", reg+"/web:1"))

	// mounts returns the config and secret copies revision rev's
	// ReplicaSet mounts, checked to be lastgood's immutable copies.
	mounts := func(rs string) (*corev1.ConfigMap, *corev1.Secret) {
		t.Helper()
		got, err := apps.ReplicaSets(c.Namespace).Get(ctx, rs, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("replicaset %s: %v", rs, err)
		}
		spec := got.Spec.Template.Spec
		paths := map[string]string{}
		for _, m := range spec.Containers[0].VolumeMounts {
			paths[m.Name] = m.MountPath
		}
		var cm *corev1.ConfigMap
		var sec *corev1.Secret
		for _, v := range spec.Volumes {
			switch {
			case v.ConfigMap != nil:
				if paths[v.Name] != "/etc/web" {
					t.Errorf("%s mounts %s at %q, want /etc/web", rs, v.ConfigMap.Name, paths[v.Name])
				}
				if cm, err = c.Core.ConfigMaps(c.Namespace).Get(ctx, v.ConfigMap.Name, metav1.GetOptions{}); err != nil {
					t.Fatalf("configmap of %s: %v", rs, err)
				}
			case v.Secret != nil:
				if paths[v.Name] != "/etc/db" {
					t.Errorf("%s mounts %s at %q, want /etc/db", rs, v.Secret.SecretName, paths[v.Name])
				}
				if sec, err = c.Core.Secrets(c.Namespace).Get(ctx, v.Secret.SecretName, metav1.GetOptions{}); err != nil {
					t.Fatalf("secret of %s: %v", rs, err)
				}
			}
		}
		if cm == nil || sec == nil {
			t.Fatalf("%s mounts configmap %v, secret %v; want both", rs, cm, sec)
		}
		for _, o := range []metav1.Object{cm, sec} {
			l := o.GetLabels()
			if l[kubernetes.LabelApp] != "web" || l[kubernetes.LabelManagedBy] != "lastgood" || l[kubernetes.LabelContent] == "" ||
				!strings.HasPrefix(o.GetName(), "web-"+l[kubernetes.LabelRevision]+"-") || !strings.HasSuffix(o.GetName(), "-"+l[kubernetes.LabelContent]) {
				t.Errorf("copy %s has labels %v, want web-<rev>-<hash> labelled with both", o.GetName(), l)
			}
		}
		if cm.Immutable == nil || !*cm.Immutable || sec.Immutable == nil || !*sec.Immutable {
			t.Errorf("copies %s and %s are not immutable", cm.Name, sec.Name)
		}
		return cm, sec
	}
	selects := func() string {
		return strings.TrimSpace(kubectl(t, c, "get", "svc", "web", "-o", "jsonpath={.spec.selector.lastgood\\.dev/revision}"))
	}

	// Revision 1: blue, and the first password.
	writeConf("color=blue\n")
	lg.must(0, "apply", "-f", file, "--wait")
	cm, sec := mounts("web-1")
	if cm.Data["app.conf"] != "color=blue\n" || string(sec.Data["password"]) != first {
		t.Fatalf("revision 1 mounts %q and password %q", cm.Data["app.conf"], sec.Data["password"])
	}
	if cm.Labels[kubernetes.LabelRevision] != "1" {
		t.Errorf("the config copy of revision 1 is labelled %v", cm.Labels)
	}

	// Re-applying with nothing changed is nothing to do; a new password
	// alone, like a moved image tag, is a new revision.
	if out := lg.must(0, "apply", "-f", file); !strings.Contains(out, "nothing to do") {
		t.Errorf("re-apply: %s", out)
	}
	secret, err = c.Core.Secrets(c.Namespace).Get(ctx, "db", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	secret.Data = map[string][]byte{"password": []byte(second)}
	if _, err := c.Core.Secrets(c.Namespace).Update(ctx, secret, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	lg.must(0, "apply", "-f", file, "--wait")
	cm, sec = mounts("web-2")
	if cm.Data["app.conf"] != "color=blue\n" || string(sec.Data["password"]) != second {
		t.Fatalf("revision 2 mounts %q and password %q", cm.Data["app.conf"], sec.Data["password"])
	}
	gone := func(rev string) {
		t.Helper()
		kubernetes.WaitFor(t, time.Minute, "web-"+rev+" and its pods deleted (no rollback window)", func() bool {
			return strings.TrimSpace(kubectl(t, c, "get", "rs,pods", "-l", "lastgood.dev/app=web,lastgood.dev/revision="+rev, "-o", "name")) == ""
		})
	}
	gone("1")

	// Undo: revision 3 has revision 1's content, its password included,
	// although the Secret db now holds the second one.
	undo := func(rev int) {
		t.Helper()
		lg.must(0, "undo", "web")
		kubernetes.WaitFor(t, time.Minute, "undo promoted", func() bool {
			s := lg.status("web")
			return s.Stable == rev && s.Rollout != nil && s.Rollout.Phase == "promoted"
		})
		kubernetes.WaitFor(t, time.Minute, "web selects the undo's revision", func() bool { return selects() == strconv.Itoa(rev) })
	}
	undo(3)
	cm, sec = mounts("web-3")
	if cm.Data["app.conf"] != "color=blue\n" || string(sec.Data["password"]) != first {
		t.Errorf("after undo, revision 3 mounts %q and password %q; want revision 1's", cm.Data["app.conf"], sec.Data["password"])
	}

	// Revision 4 changes the config file. History keeps 3 revisions, so
	// it prunes revision 1, and revision 1's copies go with it.
	writeConf("color=green\n")
	lg.must(0, "apply", "-f", file, "--wait")
	cm, sec = mounts("web-4")
	if cm.Data["app.conf"] != "color=green\n" || string(sec.Data["password"]) != second {
		t.Fatalf("revision 4 mounts %q and password %q", cm.Data["app.conf"], sec.Data["password"])
	}
	kubernetes.WaitFor(t, time.Minute, "the copies of revision 1 pruned", func() bool {
		return strings.TrimSpace(kubectl(t, c, "get", "cm,secret", "-l", "lastgood.dev/app=web,lastgood.dev/revision=1", "-o", "name")) == ""
	})
	gone("3")

	// Undo again: revision 5 is revision 3's content — the config file
	// from lastgood's store (the one on disk says green now) and the first
	// password from revision 3's copy, revision 1's being gone.
	undo(5)
	cm, sec = mounts("web-5")
	if cm.Data["app.conf"] != "color=blue\n" || string(sec.Data["password"]) != first {
		t.Errorf("after undo, revision 5 mounts %q and password %q; want revision 3's", cm.Data["app.conf"], sec.Data["password"])
	}

	// The Secret's values never entered lastgood's data directory.
	filepath.WalkDir(lg.dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err == nil && (strings.Contains(string(b), first) || strings.Contains(string(b), second)) {
			t.Errorf("%s holds a secret's value", p)
		}
		return nil
	})

	// delete takes the copies along; the Secret db is the user's and stays.
	lg.must(0, "delete", "web")
	kubernetes.WaitFor(t, time.Minute, "no copies left", func() bool {
		return strings.TrimSpace(kubectl(t, c, "get", "cm,secret", "-l", "lastgood.dev/app=web", "-o", "name")) == ""
	})
	if _, err := c.Core.Secrets(c.Namespace).Get(ctx, "db", metav1.GetOptions{}); err != nil {
		t.Errorf("the user's Secret db: %v", err)
	}
}
