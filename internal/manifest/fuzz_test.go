package manifest

import (
	"errors"
	"os"
	"reflect"
	"testing"
)

// FuzzParse checks that Parse never panics, that every error it returns
// matches ErrInvalid and points at a line, and that whatever it accepts
// survives the trip through Canonical and FromJSON unchanged.
func FuzzParse(f *testing.F) {
	design, err := os.ReadFile("testdata/design.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{
		string(design),
		base,
		"",
		"---\n",
		"name: web\nimage: x\n---\nname: b\n",
		"- a\n- b\n",
		doc("replicas: 1e12", "history: 99999999999999999999"),
		doc("strategy: {rolling: {maxSurge: 25%, maxUnavailable: '-5%'}}"),
		doc("probes:", "  readiness: &p {tcp: true}", "  liveness: *p"),
		doc("probes:", "  liveness:", "    <<: *p"),
		doc("analysis: {checks: [{name: a, logs: {match: '(('}}, {name: a, resources: {maxRSS: 9Ti}}]}"),
		doc("strategy: {canary: {steps: [{setWeight: 1}, {analyze: {for: 2562047h}}, {pause: }]}}"),
		"name: web\nimage: caf\xe9\n",
		"a: &a [*a]\n",
		"{name: web, image: x, run: {env: {A: [1]}}}",
		doc("analysis: {alpha: 0.5, checks: [{name: w, webhook: {url: 'http://h', metadata: {a: b}}}, {name: j, journey: {steps: [{path: /, headers: {A: b}}]}}]}",
			"strategy: {canary: {steps: [{setWeight: 1}], match: [{header: {name: x-a, value: b}}, {cookie: {name: c, value: d}}]}}"),
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		app, err := Parse("app.yaml", data)
		if err != nil {
			if app != nil {
				t.Fatal("Parse returned an App and an error")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error does not match ErrInvalid: %v", err)
			}
			var errs Errors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("error is not a non-empty Errors: %#v", err)
			}
			for _, e := range errs {
				if e.Line < 1 && len(data) <= MaxSize {
					t.Fatalf("problem without a line: %v", e)
				}
			}
			return
		}
		canon := app.Canonical()
		back, err := FromJSON(canon)
		if err != nil {
			t.Fatalf("FromJSON(Canonical) of an accepted manifest: %v\n%s", err, canon)
		}
		if !reflect.DeepEqual(app, back) {
			t.Fatalf("round trip changed the App:\n%s\n%s", canon, back.Canonical())
		}
		if d := Diff(app, back); d != nil {
			t.Fatalf("Diff after round trip: %v", d)
		}
	})
}
