package manifest

import (
	"reflect"
	"slices"
	"testing"
	"time"
)

func TestValidationRulesForNotifications(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"valid", doc("notifications:",
			"  - url: http://127.0.0.1:9000/hook",
			"    events: [rollout.rolled-back, rollout.promoted]",
			"    format: cloudevents",
			"    secret: ${HOOK_SECRET}",
			"  - {url: 'https://hooks.slack.example/T1/B2', format: slack}"), nil},
		{"url", doc("notifications:",
			"  - {}",
			"  - url: ftp://hooks.example/x",
			"  - url: 'http://'",
			"  - url: '127.0.0.1:9000/hook'"),
			[]string{
				"app.yaml:6: notifications[0].url: is required: the receiver's http:// or https:// URL, like http://127.0.0.1:9000/hook",
				`app.yaml:7: notifications[1].url: must be an http:// or https:// URL, like http://127.0.0.1:9000/hook, got "ftp://hooks.example/x"`,
				`app.yaml:8: notifications[2].url: must name a host, like http://127.0.0.1:9000/hook, got "http://"`,
				`app.yaml:9: notifications[3].url: must be an http:// or https:// URL, like http://127.0.0.1:9000/hook, got "127.0.0.1:9000/hook"`,
			}},
		{"events", doc("notifications:",
			"  - url: http://127.0.0.1:9000/a",
			"    events: []",
			"  - url: http://127.0.0.1:9000/b",
			"    events:",
			"      - Rollout.Promoted",
			"      - rollout.promoted",
			"      - rollout.promoted",
			"      - notification.failed",
			"      - ''"),
			[]string{
				"app.yaml:7: notifications[0].events: must list at least one event type, like [rollout.rolled-back]; leave it out for the default (rollout.rolled-back, rollout.aborted, rollout.slo-breached, rollout.target-unhealthy)",
				`app.yaml:10: notifications[1].events[0]: must be an event type: lowercase words joined by '.', like rollout.rolled-back, got "Rollout.Promoted"`,
				`app.yaml:12: notifications[1].events[2]: "rollout.promoted" is listed twice (also events[1])`,
				`app.yaml:13: notifications[1].events[3]: "notification.failed" cannot be sent: lastgood never notifies about its own notifications`,
				`app.yaml:14: notifications[1].events[4]: must be an event type: lowercase words joined by '.', like rollout.rolled-back, got ""`,
			}},
		{"events not a list", doc("notifications:", "  - url: http://127.0.0.1:9000/a", "    events: rollout.promoted"),
			[]string{`app.yaml:7: notifications[0].events: expected a list, got string "rollout.promoted"`}},
		{"format", doc("notifications:", "  - {url: http://127.0.0.1:9000/a, format: CloudEvents}", "  - url: http://127.0.0.1:9000/b", "    format: ''"),
			[]string{
				`app.yaml:6: notifications[0].format: must be cloudevents or slack, got "CloudEvents"`,
				`app.yaml:8: notifications[1].format: must be cloudevents or slack, got ""`,
			}},
		{"same receiver twice", doc("notifications:", "  - {url: http://127.0.0.1:9000/a}", "  - {url: http://127.0.0.1:9000/a, events: [rollout.promoted]}",
			"  - {url: http://127.0.0.1:9000/a, format: slack}"),
			[]string{"app.yaml:7: notifications[1]: sends to the same url in the same format as notifications[0]; list every event type there"}},
		{"unknown field", doc("notifications:", "  - {url: http://127.0.0.1:9000/a, secrets: x}"),
			[]string{`app.yaml:6: notifications[0].secrets: unknown field; did you mean "secret"?`}},
		{"not a list", doc("notifications: {url: http://127.0.0.1:9000/a}"),
			[]string{"app.yaml:5: notifications: expected a list, got a mapping"}},
		{"slo valid", doc("rollback:", "  slo: {timeToDetect: 30s, timeToRollback: 1s}"), nil},
		{"slo empty", doc("rollback:", "  slo: {}"),
			[]string{
				"app.yaml:6: rollback.slo.timeToDetect: must be a duration greater than 0: how soon after the new revision takes traffic a failure must be detected, like 30s; got 0s",
				"app.yaml:6: rollback.slo.timeToRollback: must be a duration greater than 0: how soon after detection traffic must be back on the stable revision, like 1s; got 0s",
			}},
		{"slo negative", doc("rollback:", "  slo:", "    timeToDetect: -1s", "    timeToRollback: 1s"),
			[]string{"app.yaml:7: rollback.slo.timeToDetect: must be a duration greater than 0: how soon after the new revision takes traffic a failure must be detected, like 30s; got -1s"}},
		{"slo not a duration", doc("rollback: {slo: {timeToDetect: soon, timeToRollback: 1s}}"),
			[]string{`app.yaml:5: rollback.slo.timeToDetect: expected a duration like "30s" or "1m30s", got string "soon"`}},
		{"slo unknown field", doc("rollback: {slo: {timeToDetect: 1s, timeToRollback: 1s, timeToDetec: 1m}}"),
			[]string{`app.yaml:5: rollback.slo.timeToDetec: unknown field; did you mean "timeToDetect"?`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkProblems(t, tt.src, tt.want) })
	}
}

func TestNotificationDefaults(t *testing.T) {
	app := mustParse(t, doc("notifications:", "  - url: http://127.0.0.1:9000/hook", "  - {url: http://127.0.0.1:9000/s, format: slack, events: [rollout.promoted]}"))
	n := app.Notifications
	if want := []string{"rollout.rolled-back", "rollout.aborted", "rollout.slo-breached", "rollout.target-unhealthy"}; !slices.Equal(n[0].Events, want) {
		t.Errorf("events = %v, want %v", n[0].Events, want)
	}
	if n[0].Format != FormatCloudEvents || n[0].Secret != "" {
		t.Errorf("notifications[0] = %+v, want format cloudevents and no secret", n[0])
	}
	if n[1].Format != FormatSlack || !slices.Equal(n[1].Events, []string{"rollout.promoted"}) {
		t.Errorf("notifications[1] = %+v, want as written", n[1])
	}
	// The default list is a copy: changing one app's does not change another's.
	n[0].Events[0] = "x.y"
	if again := mustParse(t, doc("notifications: [{url: http://127.0.0.1:9000/hook}]")); again.Notifications[0].Events[0] != "rollout.rolled-back" {
		t.Error("the default event list is shared between manifests")
	}
	if app := mustParse(t, doc("notifications: []")); app.Notifications != nil {
		t.Errorf("notifications: [] = %#v, want nil (the same as none)", app.Notifications)
	}
	app = mustParse(t, doc("notifications: [{url: http://127.0.0.1:9000/hook, secret: '${HOOK_SECRET}'}]",
		"rollback: {slo: {timeToDetect: 30s, timeToRollback: 1s}}"))
	if got := app.Notifications[0].Secret; got != "${HOOK_SECRET}" {
		t.Errorf("secret = %q, want it as written", got)
	}
	if s := app.Rollback.SLO; s == nil || s.TimeToDetect.D() != 30*time.Second || s.TimeToRollback.D() != time.Second {
		t.Errorf("rollback.slo = %+v", s)
	}
	if app := mustParse(t, base); app.Rollback.SLO != nil || app.Notifications != nil {
		t.Errorf("a manifest without them has slo %+v and notifications %+v", app.Rollback.SLO, app.Notifications)
	}
}

// TestNotificationsCanonical: the new fields survive the canonical round
// trip, their formatting does not matter, and manifests without them keep
// the canonical bytes (and so the digests) they had before.
func TestNotificationsCanonical(t *testing.T) {
	a := mustParse(t, doc(
		"rollback:",
		"  slo: {timeToDetect: 30s, timeToRollback: 1s}",
		"notifications:",
		"  - url: http://127.0.0.1:9000/hook",
		"    secret: s3cret",
		"  - url: https://hooks.slack.example/x",
		"    format: slack",
		"    events: [rollout.promoted, rollout.rolled-back]",
	))
	want := `{"name":"web","listen":"127.0.0.1:8080","replicas":1,"run":{"command":["./web"]},` +
		`"probes":{"readiness":{"tcp":true,"period":"1s","timeout":"1s","failureThreshold":3,"successThreshold":1}},` +
		`"strategy":{"rolling":{"maxSurge":1,"maxUnavailable":0}},` +
		`"rollback":{"progressDeadline":"2m0s","window":"10m0s","onNoData":"wait","slo":{"timeToDetect":"30s","timeToRollback":"1s"}},"history":10,` +
		`"notifications":[{"url":"http://127.0.0.1:9000/hook","events":["rollout.rolled-back","rollout.aborted","rollout.slo-breached","rollout.target-unhealthy"],"format":"cloudevents","secret":"s3cret"},` +
		`{"url":"https://hooks.slack.example/x","events":["rollout.promoted","rollout.rolled-back"],"format":"slack"}]}`
	if got := string(a.Canonical()); got != want {
		t.Errorf("Canonical =\n%s\nwant\n%s", got, want)
	}
	back, err := FromJSON(a.Canonical())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, back) {
		t.Errorf("round trip changed the App:\n%s\n%s", a.Canonical(), back.Canonical())
	}
	b := mustParse(t, doc(
		"notifications: [{secret: s3cret, format: cloudevents, url: 'http://127.0.0.1:9000/hook',",
		"  events: [rollout.rolled-back, rollout.aborted, rollout.slo-breached, rollout.target-unhealthy]},",
		"  {events: [rollout.promoted, rollout.rolled-back], format: slack, url: 'https://hooks.slack.example/x'}]",
		"rollback: {slo: {timeToRollback: 1000ms, timeToDetect: 0.5m}}",
	))
	if ca, cb := a.Canonical(), b.Canonical(); string(ca) != string(cb) {
		t.Errorf("canonical forms differ:\n%s\n%s", ca, cb)
	}
	c := mustParse(t, doc(
		"rollback: {slo: {timeToDetect: 1m, timeToRollback: 1s}}",
		"notifications: [{url: http://127.0.0.1:9000/hook, secret: s3cret, events: [rollout.rolled-back]}]",
	))
	wantDiff := []Change{
		{Field: "rollback.slo.timeToDetect", Old: "30s", New: "1m0s"},
		{Field: "notifications[0].events[1]", Old: "rollout.aborted", New: ""},
		{Field: "notifications[0].events[2]", Old: "rollout.slo-breached", New: ""},
		{Field: "notifications[0].events[3]", Old: "rollout.target-unhealthy", New: ""},
		{Field: "notifications[1]", Old: `{"url":"https://hooks.slack.example/x","events":["rollout.promoted","rollout.rolled-back"],"format":"slack"}`, New: ""},
	}
	if got := Diff(a, c); !slices.Equal(got, wantDiff) {
		t.Errorf("Diff =\n%v\nwant\n%v", got, wantDiff)
	}
	if _, err := FromJSON([]byte(`{"name":"web","image":"x","notifications":[{"url":"gopher://x"}]}`)); err == nil ||
		err.Error() != `notifications[0].url: must be an http:// or https:// URL, like http://127.0.0.1:9000/hook, got "gopher://x"` {
		t.Errorf("FromJSON with a bad url: %v", err)
	}
	if got := string(mustParse(t, base).Canonical()); got != minimalCanonical {
		t.Errorf("a manifest without the new fields changed its canonical form:\n%s", got)
	}
}
