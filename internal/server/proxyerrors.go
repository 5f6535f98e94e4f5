package server

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/lastgood/lastgood/internal/controller"
	"github.com/lastgood/lastgood/internal/router"
)

// proxyErrorEvent is the event type of the router's proxy errors.
const proxyErrorEvent = "router.proxy-error"

// proxyErrors turns the routers' proxy-error samples into events: at most
// one router.proxy-error per revision (and router: an app's, its
// preview's) every Every, with the number of proxy errors since the last
// event and the samples taken since. The first proxy error of a quiet
// revision is reported at the next look.
type proxyErrors struct {
	traffic *traffic
	record  func(controller.ReplicaEvent)
	// Look is how often the routers' stats are read; Every the least time
	// between two events of one revision.
	Look, Every time.Duration
	last        map[string]reported // by router key and revision
}

type reported struct {
	count  uint64    // the router's count at the last event
	at     time.Time // when it was recorded
	sample time.Time // the newest sample it carried
}

func newProxyErrors(t *traffic, record func(controller.ReplicaEvent)) *proxyErrors {
	return &proxyErrors{traffic: t, record: record, Look: time.Second, Every: 10 * time.Second, last: map[string]reported{}}
}

// Run looks every Look until ctx ends.
func (p *proxyErrors) Run(ctx context.Context) error {
	tick := time.NewTicker(p.Look)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-tick.C:
			p.look(now)
		}
	}
}

func (p *proxyErrors) look(now time.Time) {
	for key, r := range p.traffic.all() {
		app := strings.TrimSuffix(key, "/preview")
		for _, st := range r.Stats() {
			id := fmt.Sprintf("%s#%d", key, st.Revision)
			last := p.last[id]
			if st.ProxyErrors <= last.count || !last.at.IsZero() && now.Sub(last.at) < p.Every {
				continue
			}
			var samples []router.ProxyError
			for _, e := range st.RecentProxyErrors {
				if e.Time.After(last.sample) {
					samples = append(samples, e)
				}
			}
			n := st.ProxyErrors - last.count
			next := reported{count: st.ProxyErrors, at: now, sample: last.sample}
			msg := fmt.Sprintf("the router failed %d request(s) on revision %d", n, st.Revision)
			if len(samples) > 0 {
				e := samples[len(samples)-1]
				next.sample = e.Time
				msg += fmt.Sprintf("; the last: %s → %d: %s", e.Request, e.Status, e.Error)
			}
			p.last[id] = next
			p.record(controller.ReplicaEvent{Time: now, App: app, Revision: st.Revision, Type: proxyErrorEvent,
				Message: msg, Data: map[string]any{"count": n, "samples": samples}})
		}
	}
}
