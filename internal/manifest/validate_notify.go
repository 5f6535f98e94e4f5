package manifest

import (
	"net/url"
	"regexp"
	"strings"
)

// eventPattern is what an event type looks like: dotted lowercase words,
// like rollout.rolled-back.
var eventPattern = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*(\.[a-z0-9]+(-[a-z0-9]+)*)+$`)

// maxNotifications bounds the receivers of one app.
const maxNotifications = 32

func (v *validator) slo(s *SLO) {
	if s.TimeToDetect <= 0 {
		v.fail("rollback.slo.timeToDetect", "must be a duration greater than 0: how soon after the new revision takes traffic a failure must be detected, like 30s; got %s", s.TimeToDetect)
	}
	if s.TimeToRollback <= 0 {
		v.fail("rollback.slo.timeToRollback", "must be a duration greater than 0: how soon after detection traffic must be back on the stable revision, like 1s; got %s", s.TimeToRollback)
	}
}

func (v *validator) notifications(ns []Notification) {
	if len(ns) > maxNotifications {
		v.fail("notifications", "must list at most %d receivers, got %d", maxNotifications, len(ns))
	}
	first := map[string]int{}
	for i, n := range ns {
		path := index("notifications", i)
		v.notificationURL(path+".url", n.URL)
		if len(n.Events) == 0 {
			v.fail(path+".events", "must list at least one event type, like [rollout.rolled-back]; leave it out for the default (%s)", strings.Join(defaultEvents, ", "))
		}
		seen := map[string]int{}
		for j, e := range n.Events {
			p := index(path+".events", j)
			switch k, dup := seen[e]; {
			case strings.HasPrefix(e, "notification."):
				v.fail(p, "%q cannot be sent: lastgood never notifies about its own notifications", e)
			case !eventPattern.MatchString(e):
				v.fail(p, "must be an event type: lowercase words joined by '.', like rollout.rolled-back, got %q", e)
			case dup:
				v.fail(p, "%q is listed twice (also events[%d])", e, k)
			default:
				seen[e] = j
			}
		}
		switch n.Format {
		case FormatCloudEvents, FormatSlack:
		default:
			v.fail(path+".format", "must be cloudevents or slack, got %q", n.Format)
		}
		if strings.ContainsRune(n.Secret, 0) {
			v.fail(path+".secret", "must not contain a NUL character")
		}
		key := n.Format + " " + n.URL
		if j, dup := first[key]; dup && n.URL != "" {
			v.fail(path, "sends to the same url in the same format as notifications[%d]; list every event type there", j)
			continue
		}
		first[key] = i
	}
}

// notificationURL checks a receiver's address: an absolute http or https
// URL with a host.
func (v *validator) notificationURL(path, raw string) {
	if raw == "" {
		v.fail(path, "is required: the receiver's http:// or https:// URL, like http://127.0.0.1:9000/hook")
		return
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https"):
		v.fail(path, "must be an http:// or https:// URL, like http://127.0.0.1:9000/hook, got %q", raw)
	case u.Hostname() == "":
		v.fail(path, "must name a host, like http://127.0.0.1:9000/hook, got %q", raw)
	}
}
