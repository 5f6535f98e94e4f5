package store

import (
	"context"
	"fmt"
	"sync"
)

// subscriberBuffer is how many committed events a subscriber may fall
// behind before its channel is closed.
const subscriberBuffer = 1024

// Subscribe delivers, in log order, every event committed after the call.
// The channel closes when ctx ends, when the store closes, or when the
// subscriber falls more than a buffer's worth of events behind: writers
// never wait for a slow reader. After an unexpected close, a subscriber
// reads what it missed with Events(EventQuery{AfterSeq: lastSeq}) and
// subscribes again.
func (s *Store) Subscribe(ctx context.Context) <-chan Event {
	return s.subs.add(ctx)
}

// subscribers is the set of open subscriptions.
type subscribers struct {
	mu     sync.Mutex
	next   int
	chans  map[int]*subscription
	closed bool
}

type subscription struct {
	ch   chan Event
	stop func() bool // unregisters the context callback
}

func (ss *subscribers) add(ctx context.Context) <-chan Event {
	ch := make(chan Event, subscriberBuffer)
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.closed {
		close(ch)
		return ch
	}
	if ss.chans == nil {
		ss.chans = make(map[int]*subscription)
	}
	id := ss.next
	ss.next++
	sub := &subscription{ch: ch}
	ss.chans[id] = sub
	// context.AfterFunc runs its function on its own goroutine only once
	// ctx is done; no goroutine waits in the meantime.
	sub.stop = context.AfterFunc(ctx, func() { ss.drop(id) })
	return ch
}

// drop closes and forgets one subscription, if it is still open.
func (ss *subscribers) drop(id int) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if sub, ok := ss.chans[id]; ok {
		delete(ss.chans, id)
		close(sub.ch)
	}
}

// publish hands committed events to every subscriber without blocking; a
// subscriber whose buffer is full is closed.
func (ss *subscribers) publish(events []Event) {
	if len(events) == 0 {
		return
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for id, sub := range ss.chans {
		if !deliver(sub.ch, events) {
			delete(ss.chans, id)
			sub.stop()
			close(sub.ch)
		}
	}
}

func deliver(ch chan Event, events []Event) bool {
	for _, e := range events {
		select {
		case ch <- e:
		default:
			return false
		}
	}
	return true
}

// closeAll closes every subscription; later ones start closed.
func (ss *subscribers) closeAll() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.closed = true
	for id, sub := range ss.chans {
		delete(ss.chans, id)
		sub.stop()
		close(sub.ch)
	}
}

// followPage is how many events Follow reads at a time while catching up.
const followPage = 500

// Follow calls f with every event after sequence number after, in log
// order: first those already in the log, then each as it is committed,
// until ctx ends (it then returns nil) or the log cannot be read. It hides
// what Subscribe leaves to its callers: when the subscription falls behind
// and closes, Follow reads what was missed and subscribes again, and it
// never calls f twice for one event. f runs on the caller's goroutine, so
// a slow f delays only this follower.
func (s *Store) Follow(ctx context.Context, after int64, f func(Event)) error {
	last := after
	for {
		// Subscribe before reading, so that nothing committed in between
		// is lost; what both deliver is skipped by its sequence number.
		sub := s.Subscribe(ctx)
		for {
			evs, err := s.Events(ctx, EventQuery{AfterSeq: last, Limit: followPage})
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("follow the event log after event %d: %w", last, err)
			}
			for _, e := range evs {
				f(e)
				last = e.Seq
			}
			if len(evs) < followPage {
				break
			}
		}
		for e := range sub {
			if e.Seq > last {
				f(e)
				last = e.Seq
			}
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}
