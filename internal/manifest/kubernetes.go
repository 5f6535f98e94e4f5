package manifest

import (
	"fmt"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// Kubernetes says how the kubernetes engine runs an app; the local engine
// does not read it. It is defaulted whenever the manifest names an image.
type Kubernetes struct {
	// Namespace overrides the namespace `lastgood serve --namespace` gives.
	Namespace string `json:"namespace,omitempty"`
	// Workload is what runs the revisions: ReplicaSet (one per live
	// revision, managed by lastgood) or StatefulSet (one per app, whose
	// rolling-update partition is the canary).
	Workload string `json:"workload"`
	// WorkloadRef names an existing Deployment that lastgood takes over:
	// its pod template is the app's first revision.
	WorkloadRef *WorkloadRef `json:"workloadRef,omitempty"`
	// Port is the container port the app serves HTTP on (the container gets
	// it as PORT); the Services forward their port 80 to it. Default 8080.
	Port int `json:"port"`
	// Env is given to the app's container, beside PORT, LASTGOOD_APP and
	// LASTGOOD_REVISION.
	Env map[string]string `json:"env,omitempty"`
	// PodAnnotations are copied onto every pod of every revision.
	PodAnnotations map[string]string  `json:"podAnnotations,omitempty"`
	Traffic        *KubernetesTraffic `json:"traffic,omitempty"`
	// Config is files from the manifest's folder that every pod of a
	// revision mounts, copied into an immutable ConfigMap per revision.
	Config *KubernetesConfig `json:"config,omitempty"`
	// SecretRefs are Secrets of the app's namespace that every pod of a
	// revision mounts, copied into an immutable Secret per revision.
	SecretRefs []SecretRef `json:"secretRefs,omitempty"`
	// VolumeClaims are the PersistentVolumeClaims of a StatefulSet's pods
	// (volumeClaimTemplates), kept across rollouts and rollbacks.
	VolumeClaims []VolumeClaim `json:"volumeClaims,omitempty"`
}

// KubernetesConfig is the config files of a revision.
type KubernetesConfig struct {
	// Files are paths as written: absolute, or relative to the manifest's
	// folder. They are the revision's artifacts; each is mounted under its
	// base name.
	Files []string `json:"files"`
	// MountPath is the folder the pods see them in (default
	// /etc/lastgood/config).
	MountPath string `json:"mountPath"`
}

// SecretRef names a Secret a revision mounts.
type SecretRef struct {
	Name string `json:"name"`
	// MountPath is where the pods see its keys as files (default
	// /etc/lastgood/secrets/<name>).
	MountPath string `json:"mountPath"`
}

// VolumeClaim is one PersistentVolumeClaim per StatefulSet pod.
type VolumeClaim struct {
	Name             string `json:"name"`
	Size             string `json:"size"`
	MountPath        string `json:"mountPath"`
	StorageClassName string `json:"storageClassName,omitempty"`
}

// WorkloadRef names the workload an app adopts.
type WorkloadRef struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
}

// Default mount paths of config files and secrets.
const (
	DefaultConfigMountPath = "/etc/lastgood/config"
	DefaultSecretMountDir  = "/etc/lastgood/secrets"
)

// KubernetesTraffic says how canary weights reach the pods.
type KubernetesTraffic struct {
	// HTTPRoute names a Gateway API HTTPRoute in the app's namespace whose
	// backendRefs name the Services <app> and <app>-canary; lastgood sets
	// their weights. Without it, a canary's share is its share of the
	// ready pods (approximate).
	HTTPRoute string `json:"httpRoute,omitempty"`
}

// Workloads the kubernetes engine can run.
const (
	WorkloadReplicaSet  = "ReplicaSet"
	WorkloadStatefulSet = "StatefulSet"
)

const defaultKubernetesPort = 8080

func (k *Kubernetes) setDefaults(w written) {
	if k.Workload == "" && !w("kubernetes.workload") {
		k.Workload = WorkloadReplicaSet
	}
	setInt(w, "kubernetes.port", &k.Port, defaultKubernetesPort)
	if len(k.Env) == 0 {
		k.Env = nil
	}
	if len(k.PodAnnotations) == 0 {
		k.PodAnnotations = nil
	}
	if k.Traffic != nil && *k.Traffic == (KubernetesTraffic{}) {
		k.Traffic = nil
	}
	if c := k.Config; c != nil {
		if len(c.Files) == 0 {
			k.Config = nil
		} else if c.MountPath == "" {
			c.MountPath = DefaultConfigMountPath
		}
	}
	for i := range k.SecretRefs {
		if r := &k.SecretRefs[i]; r.MountPath == "" && r.Name != "" {
			r.MountPath = DefaultSecretMountDir + "/" + r.Name
		}
	}
	if len(k.SecretRefs) == 0 {
		k.SecretRefs = nil
	}
	if len(k.VolumeClaims) == 0 {
		k.VolumeClaims = nil
	}
}

var (
	// dnsLabel is an RFC 1123 label: a namespace name.
	dnsLabel = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)
	// dnsSubdomain is an RFC 1123 subdomain: most object names.
	dnsSubdomain = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$`)
	// qualifiedName is the name part of an annotation key.
	qualifiedName = regexp.MustCompile(`^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$`)
	// configKey is a ConfigMap key.
	configKey = regexp.MustCompile(`^[-._a-zA-Z0-9]+$`)
	// quantity is a storage size.
	quantity = regexp.MustCompile(`^[1-9][0-9]*(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$`)
)

func (v *validator) kubernetes(k *Kubernetes) {
	if k.Namespace != "" && (len(k.Namespace) > 63 || !dnsLabel.MatchString(k.Namespace)) {
		v.fail("kubernetes.namespace", "must be a namespace name: at most 63 lowercase letters, digits and '-', got %q", k.Namespace)
	}
	switch k.Workload {
	case WorkloadReplicaSet, WorkloadStatefulSet:
	case "Deployment":
		v.fail("kubernetes.workload", "Deployment is not a workload lastgood runs (it runs ReplicaSets itself); to take over an existing Deployment, name it in kubernetes.workloadRef")
	default:
		v.fail("kubernetes.workload", "must be ReplicaSet or StatefulSet, got %q", k.Workload)
	}
	if r := k.WorkloadRef; r != nil {
		if r.Kind != "Deployment" {
			v.fail("kubernetes.workloadRef.kind", "must be Deployment (the only kind lastgood adopts), got %q", r.Kind)
		}
		if len(r.Name) > 253 || !dnsSubdomain.MatchString(r.Name) {
			v.fail("kubernetes.workloadRef.name", "must be the name of a Deployment: lowercase letters, digits, '-' and '.', got %q", r.Name)
		}
		if k.Workload == WorkloadStatefulSet {
			v.fail("kubernetes.workloadRef", "adopts a Deployment into ReplicaSets; it cannot be used with workload: StatefulSet")
		}
	}
	if len(k.VolumeClaims) > 0 && k.Workload != WorkloadStatefulSet {
		v.fail("kubernetes.volumeClaims", "are for workload: StatefulSet (a ReplicaSet's pods share no per-pod volumes)")
	}
	mounts := map[string]string{}
	mount := func(path, p string) {
		switch {
		case !strings.HasPrefix(p, "/"):
			v.fail(path, "must be an absolute path, got %q", p)
		case mounts[filepath.Clean(p)] != "":
			v.fail(path, "%s is already the mount path of %s", p, mounts[filepath.Clean(p)])
		default:
			mounts[filepath.Clean(p)] = path
		}
	}
	if c := k.Config; c != nil {
		keys := map[string]int{}
		for i, f := range c.Files {
			path := fmt.Sprintf("kubernetes.config.files[%d]", i)
			base := filepath.Base(f)
			switch {
			case f == "" || strings.HasSuffix(f, "/"):
				v.fail(path, "must be the path of a file, got %q", f)
			case !configKey.MatchString(base) || len(base) > 253:
				v.fail(path, "%s: a config file's name is letters, digits, '-', '_' and '.' (it becomes a ConfigMap key)", base)
			default:
				if j, dup := keys[base]; dup {
					v.fail(path, "%s has the same file name as kubernetes.config.files[%d]; both would be mounted as %s", f, j, base)
				}
				keys[base] = i
			}
		}
		mount("kubernetes.config.mountPath", c.MountPath)
	}
	names := map[string]bool{}
	for i, r := range k.SecretRefs {
		path := fmt.Sprintf("kubernetes.secretRefs[%d]", i)
		switch {
		case len(r.Name) > 253 || !dnsSubdomain.MatchString(r.Name):
			v.fail(path+".name", "must be the name of a Secret in the app's namespace, got %q", r.Name)
		case names[r.Name]:
			v.fail(path+".name", "secret %s is named twice", r.Name)
		}
		names[r.Name] = true
		if r.Name != "" {
			mount(path+".mountPath", r.MountPath)
		}
	}
	claims := map[string]bool{}
	for i, c := range k.VolumeClaims {
		path := fmt.Sprintf("kubernetes.volumeClaims[%d]", i)
		if len(c.Name) > 63 || !dnsLabel.MatchString(c.Name) || claims[c.Name] {
			v.fail(path+".name", "must be a unique name of lowercase letters, digits and '-', got %q", c.Name)
		}
		claims[c.Name] = true
		if !quantity.MatchString(c.Size) {
			v.fail(path+".size", "must be a storage size like 1Gi or 500Mi, got %q", c.Size)
		}
		mount(path+".mountPath", c.MountPath)
	}
	v.between("kubernetes.port", k.Port, 1, 65535)
	for _, name := range slices.Sorted(maps.Keys(k.Env)) {
		path := child("kubernetes.env", name)
		switch {
		case !envPattern.MatchString(name):
			v.fail(path, "variable names are letters, digits and _, not starting with a digit")
		case slices.Contains(reservedEnv, name):
			v.fail(path, "is set by lastgood for every replica (%s); choose another name", strings.Join(reservedEnv, ", "))
		}
	}
	for _, key := range slices.Sorted(maps.Keys(k.PodAnnotations)) {
		if msg := annotationKeyProblem(key); msg != "" {
			v.fail(child("kubernetes.podAnnotations", key), "%s", msg)
		}
	}
	if t := k.Traffic; t != nil && t.HTTPRoute != "" && (len(t.HTTPRoute) > 253 || !dnsSubdomain.MatchString(t.HTTPRoute)) {
		v.fail("kubernetes.traffic.httpRoute", "must be the name of an HTTPRoute: lowercase letters, digits, '-' and '.', got %q", t.HTTPRoute)
	}
}

// annotationKeyProblem says what is wrong with an annotation key, or "".
// A key is an optional DNS subdomain prefix and "/", then a name of at most
// 63 characters.
func annotationKeyProblem(key string) string {
	prefix, name, ok := strings.Cut(key, "/")
	if !ok {
		prefix, name = "", key
	}
	switch {
	case ok && (prefix == "" || len(prefix) > 253 || !dnsSubdomain.MatchString(prefix)):
		return "the prefix before '/' must be a DNS subdomain, like example.com"
	case name == "" || len(name) > 63 || !qualifiedName.MatchString(name):
		return "annotation names are at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit"
	}
	return ""
}
