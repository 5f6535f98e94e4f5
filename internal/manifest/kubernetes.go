package manifest

import (
	"maps"
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
	// revision, managed by lastgood) is the only one built.
	Workload string `json:"workload"`
	// Port is the container port the app serves HTTP on (the container gets
	// it as PORT); the Services forward their port 80 to it. Default 8080.
	Port int `json:"port"`
	// Env is given to the app's container, beside PORT, LASTGOOD_APP and
	// LASTGOOD_REVISION.
	Env map[string]string `json:"env,omitempty"`
	// PodAnnotations are copied onto every pod of every revision.
	PodAnnotations map[string]string  `json:"podAnnotations,omitempty"`
	Traffic        *KubernetesTraffic `json:"traffic,omitempty"`
}

// KubernetesTraffic says how canary weights reach the pods.
type KubernetesTraffic struct {
	// HTTPRoute names a Gateway API HTTPRoute in the app's namespace whose
	// backendRefs name the Services <app> and <app>-canary; lastgood sets
	// their weights. Without it, a canary's share is its share of the
	// ready pods (approximate).
	HTTPRoute string `json:"httpRoute,omitempty"`
}

// Workloads the kubernetes engine can run.
const WorkloadReplicaSet = "ReplicaSet"

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
}

var (
	// dnsLabel is an RFC 1123 label: a namespace name.
	dnsLabel = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)
	// dnsSubdomain is an RFC 1123 subdomain: most object names.
	dnsSubdomain = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$`)
	// qualifiedName is the name part of an annotation key.
	qualifiedName = regexp.MustCompile(`^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$`)
)

func (v *validator) kubernetes(k *Kubernetes) {
	if k.Namespace != "" && (len(k.Namespace) > 63 || !dnsLabel.MatchString(k.Namespace)) {
		v.fail("kubernetes.namespace", "must be a namespace name: at most 63 lowercase letters, digits and '-', got %q", k.Namespace)
	}
	switch k.Workload {
	case WorkloadReplicaSet:
	case "StatefulSet", "Deployment":
		v.fail("kubernetes.workload", "%s is not built yet; lastgood runs each revision as its own ReplicaSet (workload: ReplicaSet)", k.Workload)
	default:
		v.fail("kubernetes.workload", "must be ReplicaSet, got %q", k.Workload)
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
