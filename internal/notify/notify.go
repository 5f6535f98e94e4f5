// Package notify tells outside receivers — chat rooms, incident tools, CI —
// about an app's events. A Notifier follows the event log and POSTs each
// event that an app's manifest lists under notifications, as a CloudEvents
// 1.0 JSON body or a Slack-compatible {"text": …}, signed with HMAC-SHA256
// when the receiver has a secret. Every delivery runs on its own, with
// retries, so a slow receiver delays nothing else (up to Config.InFlight
// deliveries at once), and its outcome is
// written back to the event log as notification.delivered or
// notification.failed.
package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/lastgood/lastgood/internal/manifest"
	"github.com/lastgood/lastgood/internal/store"
)

// The event types a Notifier writes. Events of these types (and any
// notification.*) are never sent to receivers.
const (
	TypeDelivered = "notification.delivered"
	TypeFailed    = "notification.failed"
	typePrefix    = "notification."
)

// Defaults for the zero fields of Config.
const (
	DefaultAttempts = 5
	DefaultBackoff  = 200 * time.Millisecond
	DefaultTimeout  = 5 * time.Second
	// DefaultInFlight bounds the deliveries running at once.
	DefaultInFlight = 32
)

// Config configures a Notifier. Store is required.
type Config struct {
	Store *store.Store
	// Client sends the requests; nil means one that does not follow
	// redirects. Each attempt is bounded by Timeout whatever the client.
	Client *http.Client
	// Backoff is the wait before the second attempt; it doubles after
	// each further failure. Default DefaultBackoff.
	Backoff time.Duration
	// Attempts is how many times a delivery is tried in all. Default
	// DefaultAttempts.
	Attempts int
	// Timeout bounds one attempt. Default DefaultTimeout.
	Timeout time.Duration
	// InFlight is how many deliveries may run at once. When that many
	// are running, the Notifier waits for one to end before it reads the
	// next event: the events wait in the log, nothing is dropped, and
	// goroutines and connections stay bounded however many receivers
	// hang. Default DefaultInFlight.
	InFlight int
	Log      *slog.Logger
}

// Notifier sends the events of the log to the receivers the apps' manifests
// name. Create it with New and start it with Run.
type Notifier struct {
	cfg       Config
	wg        sync.WaitGroup // one per delivery in flight
	slots     chan struct{}  // a token per delivery in flight, cfg.InFlight in all
	last      int64          // the Seq of the last event handled
	receivers map[string]receivers
	ready     chan struct{} // closed once Run knows where the log ends
}

// receivers are an app's notifications as its latest revision lists them.
type receivers struct {
	revision int
	list     []manifest.Notification
}

// New returns a Notifier; cfg.Store is required.
func New(cfg Config) *Notifier {
	if cfg.Client == nil {
		cfg.Client = &http.Client{
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = DefaultAttempts
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.InFlight <= 0 {
		cfg.InFlight = DefaultInFlight
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Notifier{cfg: cfg, receivers: map[string]receivers{}, ready: make(chan struct{}), slots: make(chan struct{}, cfg.InFlight)}
}

// Run follows the event log from its current end — history is not sent
// again — and starts a delivery for every event that an app's latest
// revision asks to be told about. It returns nil when ctx ends, after every
// delivery has stopped, and an error only when the store can no longer be
// read.
func (n *Notifier) Run(ctx context.Context) error {
	defer n.wg.Wait()
	end, err := n.cfg.Store.LastSeq(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("notifier: find the end of the event log: %w", err)
	}
	n.last = end
	close(n.ready)
	if err := n.cfg.Store.Follow(ctx, end, func(e store.Event) { n.handle(ctx, e) }); err != nil {
		return fmt.Errorf("notifier: %w", err)
	}
	return nil
}

func (n *Notifier) handle(ctx context.Context, e store.Event) {
	if e.Seq <= n.last {
		return
	}
	n.last = e.Seq
	if e.App == "" || strings.HasPrefix(e.Type, typePrefix) {
		return
	}
	list, err := n.lookup(ctx, e.App)
	if err != nil {
		n.cfg.Log.Warn("notifier: cannot read the app's notifications", "app", e.App, "event", e.Seq, "err", err)
		return
	}
	for _, r := range list {
		if !wants(r, e.Type) {
			continue
		}
		body, contentType, err := encode(r.Format, e)
		if err != nil {
			n.cfg.Log.Error("notifier: encode event", "app", e.App, "event", e.Seq, "err", err)
			continue
		}
		select {
		case n.slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		n.wg.Add(1)
		go func() {
			defer func() { <-n.slots; n.wg.Done() }()
			n.deliver(ctx, r, e, body, contentType)
		}()
	}
}

func wants(r manifest.Notification, typ string) bool {
	for _, t := range r.Events {
		if t == typ {
			return true
		}
	}
	return false
}

// lookup returns the notifications of app's latest revision, read again
// only when a new revision appears.
func (n *Notifier) lookup(ctx context.Context, app string) ([]manifest.Notification, error) {
	a, err := n.cfg.Store.App(ctx, app)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if a.Latest == 0 {
		return nil, nil
	}
	if c, ok := n.receivers[app]; ok && c.revision == a.Latest {
		return c.list, nil
	}
	rev, err := n.cfg.Store.Revision(ctx, app, a.Latest)
	if err != nil {
		return nil, err
	}
	m, err := manifest.FromJSON(rev.Manifest)
	if err != nil {
		return nil, fmt.Errorf("revision %d: %w", a.Latest, err)
	}
	n.receivers[app] = receivers{revision: a.Latest, list: m.Notifications}
	return m.Notifications, nil
}
