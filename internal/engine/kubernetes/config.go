package kubernetes

import (
	"fmt"
	"os"
	"strings"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// inClusterNamespace is where a pod's service account says it runs.
const inClusterNamespace = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// LoadConfig returns the Config of an engine (Rest and Namespace) from
// how to reach the API server and the namespace to use:
// the kubeconfig file when one is named, else $KUBECONFIG, else the pod's
// service account when run in a pod, else ~/.kube/config. The namespace
// is the kubeconfig context's, the pod's, or "default".
func LoadConfig(kubeconfig string) (Config, error) {
	rc, ns, err := load(kubeconfig)
	return Config{Rest: rc, Namespace: ns}, err
}

func load(kubeconfig string) (*rest.Config, string, error) {
	if kubeconfig == "" && os.Getenv("KUBECONFIG") == "" && os.Getenv("KUBERNETES_SERVICE_HOST") != "" {
		rc, err := rest.InClusterConfig()
		if err != nil {
			return nil, "", fmt.Errorf("kubernetes: in-cluster config: %w", err)
		}
		ns := "default"
		if b, err := os.ReadFile(inClusterNamespace); err == nil && strings.TrimSpace(string(b)) != "" {
			ns = strings.TrimSpace(string(b))
		}
		return rc, ns, nil
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if kubeconfig != "" {
		rules.ExplicitPath = kubeconfig
	}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{})
	rc, err := cc.ClientConfig()
	if err != nil {
		return nil, "", fmt.Errorf("kubernetes: %w", err)
	}
	ns, _, err := cc.Namespace()
	if err != nil {
		return nil, "", fmt.Errorf("kubernetes: namespace of the kubeconfig: %w", err)
	}
	return rc, ns, nil
}
