package manifest

import (
	"slices"
	"testing"
)

func TestKubernetesSection(t *testing.T) {
	const head = "name: web\nimage: registry.example/web:1.4\n"
	for _, c := range []struct {
		name, src string
		want      []string
	}{
		{"defaults", head, nil},
		{"everything", head + "kubernetes:\n  namespace: shop\n  port: 9000\n  env: {GREETING: hi}\n  podAnnotations: {lastgood.dev/test-fault: never-ready, team: web}\n  traffic: {httpRoute: web-route}\n", nil},
		{"namespace", head + "kubernetes: {namespace: Shop_1}\n",
			[]string{`app.yaml:3: kubernetes.namespace: must be a namespace name: at most 63 lowercase letters, digits and '-', got "Shop_1"`}},
		{"statefulset", head + "kubernetes:\n  workload: StatefulSet\n  volumeClaims: [{name: data, size: 1Gi, mountPath: /data}]\n", nil},
		{"workload deployment", head + "kubernetes:\n  workload: Deployment\n",
			[]string{"app.yaml:4: kubernetes.workload: Deployment is not a workload lastgood runs (it runs ReplicaSets itself); to take over an existing Deployment, name it in kubernetes.workloadRef"}},
		{"workload unknown", head + "kubernetes: {workload: Pod}\n",
			[]string{`app.yaml:3: kubernetes.workload: must be ReplicaSet or StatefulSet, got "Pod"`}},
		{"claims need a statefulset", head + "kubernetes:\n  volumeClaims: [{name: data, size: 1G, mountPath: /data}]\n",
			[]string{"app.yaml:4: kubernetes.volumeClaims: are for workload: StatefulSet (a ReplicaSet's pods share no per-pod volumes)"}},
		{"claim size", head + "kubernetes:\n  workload: StatefulSet\n  volumeClaims: [{name: data, size: lots, mountPath: /data}]\n",
			[]string{`app.yaml:5: kubernetes.volumeClaims[0].size: must be a storage size like 1Gi or 500Mi, got "lots"`}},
		{"config and secrets", head + "kubernetes:\n  config: {files: [conf/app.conf, b.json]}\n  secretRefs: [{name: db}, {name: api, mountPath: /etc/api}]\n", nil},
		{"config file names", head + "kubernetes:\n  config: {files: [a/app.conf, b/app.conf], mountPath: etc}\n",
			[]string{
				"app.yaml:4: kubernetes.config.files[1]: b/app.conf has the same file name as kubernetes.config.files[0]; both would be mounted as app.conf",
				`app.yaml:4: kubernetes.config.mountPath: must be an absolute path, got "etc"`,
			}},
		{"secret refs", head + "kubernetes:\n  config: {files: [a.conf], mountPath: /etc/x}\n  secretRefs: [{name: Db}, {name: api, mountPath: /etc/x}]\n",
			[]string{
				`app.yaml:5: kubernetes.secretRefs[0].name: must be the name of a Secret in the app's namespace, got "Db"`,
				"app.yaml:5: kubernetes.secretRefs[1].mountPath: /etc/x is already the mount path of kubernetes.config.mountPath",
			}},
		{"workload ref", "name: web\nkubernetes:\n  workloadRef: {kind: Deployment, name: web}\n", nil},
		{"workload ref kind", "name: web\nkubernetes:\n  workloadRef: {kind: StatefulSet, name: web}\n",
			[]string{`app.yaml:3: kubernetes.workloadRef.kind: must be Deployment (the only kind lastgood adopts), got "StatefulSet"`}},
		{"port", head + "kubernetes:\n  port: 70000\n",
			[]string{"app.yaml:4: kubernetes.port: must be between 1 and 65535, got 70000"}},
		{"env reserved", head + "kubernetes:\n  env:\n    PORT: '1'\n",
			[]string{"app.yaml:5: kubernetes.env.PORT: is set by lastgood for every replica (PORT, LASTGOOD_APP, LASTGOOD_REVISION); choose another name"}},
		{"annotation key", head + "kubernetes:\n  podAnnotations:\n    'bad key': x\n    /x: y\n",
			[]string{
				"app.yaml:5: kubernetes.podAnnotations.bad key: annotation names are at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit",
				"app.yaml:6: kubernetes.podAnnotations./x: the prefix before '/' must be a DNS subdomain, like example.com",
			}},
		{"route name", head + "kubernetes:\n  traffic:\n    httpRoute: Web\n",
			[]string{`app.yaml:5: kubernetes.traffic.httpRoute: must be the name of an HTTPRoute: lowercase letters, digits, '-' and '.', got "Web"`}},
		{"unknown field", head + "kubernetes:\n  replicas: 3\n",
			[]string{`app.yaml:4: kubernetes.replicas: unknown field`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := problems(t, c.src)
			if len(got) == 1 && len(c.want) == 1 && c.name == "unknown field" {
				got[0] = got[0][:len(c.want[0])]
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("got\n%q\nwant\n%q", got, c.want)
			}
		})
	}
	app, err := Parse("app.yaml", []byte(head))
	if err != nil {
		t.Fatal(err)
	}
	if k := app.Kubernetes; k == nil || k.Workload != WorkloadReplicaSet || k.Port != 8080 {
		t.Errorf("defaults: %+v", k)
	}
	run, err := Parse("app.yaml", []byte(base))
	if err != nil || run.Kubernetes != nil {
		t.Errorf("a local manifest gets a kubernetes section: %+v %v", run.Kubernetes, err)
	}
}
