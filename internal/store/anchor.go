package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Head is the newest event of the log: its Seq and hash. Seq 0 with the
// genesis hash is an empty log.
type Head struct {
	Seq  int64  `json:"seq"`
	Hash string `json:"hash"`
}

// Head returns the chain head the database records.
func (r reader) Head(ctx context.Context) (Head, error) {
	var h Head
	if err := r.q.QueryRowContext(ctx, `SELECT seq, hash FROM chain_head WHERE id = 1`).Scan(&h.Seq, &h.Hash); err != nil {
		return Head{}, fmt.Errorf("read chain head: %w", notFound(err))
	}
	return h, nil
}

// hashAt returns the stored hash of event seq, or ErrNotFound.
func (r reader) hashAt(ctx context.Context, seq int64) (string, error) {
	var h string
	err := r.q.QueryRowContext(ctx, `SELECT hash FROM events WHERE seq = ?`, seq).Scan(&h)
	if err != nil {
		return "", notFound(err)
	}
	return h, nil
}

// Anchor is the content of <data>/chain-head.json: the newest event of the
// log, written outside the database after every commit that appended
// events, so that a database cut back to an older state (a truncated tail
// with its chain head moved back to match) no longer agrees with it.
type Anchor struct {
	// Store is the data directory's identity (store.id).
	Store string `json:"store"`
	Head
	Written time.Time `json:"written"`
}

// readAnchor reads an anchor file; a missing file is fs.ErrNotExist.
func readAnchor(path string) (Anchor, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Anchor{}, err
	}
	var a Anchor
	if err := json.Unmarshal(b, &a); err != nil {
		return Anchor{}, fmt.Errorf("%s: %w: not an anchor: %v", path, ErrDamaged, err)
	}
	if a.Seq < 0 || len(a.Hash) != len(genesisHash) {
		return Anchor{}, fmt.Errorf("%s: %w: not an anchor: seq %d, hash %q", path, ErrDamaged, a.Seq, a.Hash)
	}
	return a, nil
}

// writeAnchor replaces the anchor file: written to a temporary file,
// synced, then renamed over the old one, so a reader sees one whole anchor
// or the other. The directory is not synced: after a power cut the anchor
// may name an older event than the database holds, which is never an
// error; it is never newer, because it is written after the commit.
func writeAnchor(path string, a Anchor) error {
	if err := writeJSONFile(path, a, false); err != nil {
		return fmt.Errorf("write anchor %s: %w", path, err)
	}
	return nil
}

// writeJSONFile writes v as one line of JSON to path whole: a temporary
// file, synced, renamed over path, and when durable the directory synced
// too. On an error path is as it was and the temporary file is gone.
func writeJSONFile(path string, v any, durable bool) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil && durable {
		err = syncDir(filepath.Dir(path))
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// compareWitness reports how the log in r disagrees with a witness: nil
// when the event it names is in the log with the witnessed hash.
func compareWitness(ctx context.Context, r reader, w Witness) error {
	head, err := r.Head(ctx)
	if err != nil {
		return err
	}
	if w.Seq > head.Seq {
		return fmt.Errorf("%w: the log ends at event %d, but %s names event %d (written %s): "+
			"the newest %d events are gone — state.db was truncated, rolled back to an older copy, or replaced",
			ErrRewound, head.Seq, w.Name, w.Seq, w.Written.UTC().Format(time.RFC3339), w.Seq-head.Seq)
	}
	if w.Seq == 0 {
		return nil
	}
	h, err := r.hashAt(ctx, w.Seq)
	switch {
	case errors.Is(err, ErrNotFound):
		return fmt.Errorf("%w: event %d, which %s names, is not in the log", ErrRewound, w.Seq, w.Name)
	case err != nil:
		return err
	case h != w.Hash:
		return fmt.Errorf("%w: event %d has hash %s, but %s recorded %s: the log was rewritten from there on",
			ErrRewound, w.Seq, h, w.Name, w.Hash)
	}
	return nil
}

// lastRecovery is the time of the log's last recovery event, zero for
// none: witnesses written before it name the log it replaced.
func (r reader) lastRecovery(ctx context.Context) (time.Time, error) {
	var t sql.NullString
	err := r.q.QueryRowContext(ctx, `SELECT MAX(time) FROM events WHERE app = '' AND type IN ('store.restored', 'store.accepted', 'store.fresh')`).Scan(&t)
	if err != nil || !t.Valid {
		return time.Time{}, err
	}
	return parseTime(t.String)
}

// anchorWriter keeps the anchor file up to date from its own goroutine, so
// a commit never waits for a second fsync. It writes the newest head it
// was given, skipping any it had no time for; it stops with close, after
// writing the last one.
type anchorWriter struct {
	path, store string

	mu      sync.Mutex
	want    Head
	written Head  // what the file names
	err     error // the last write's error, nil once one succeeds
	wake    chan struct{}
	stop    chan struct{}
	stopped chan struct{}
	once    sync.Once
}

// anchorRetry is how soon a failed anchor write is tried again when no
// new commit asks for one.
const anchorRetry = time.Second

func startAnchor(path, store string, head Head) *anchorWriter {
	w := &anchorWriter{path: path, store: store, want: head, written: head,
		wake: make(chan struct{}, 1), stop: make(chan struct{}), stopped: make(chan struct{})}
	go w.run()
	return w
}

// set asks for head to be written.
func (w *anchorWriter) set(h Head) {
	w.mu.Lock()
	w.want = h
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *anchorWriter) run() {
	defer close(w.stopped)
	retry := time.NewTimer(anchorRetry)
	defer retry.Stop()
	for {
		stopping := false
		select {
		case <-w.wake:
		case <-retry.C:
		case <-w.stop:
			stopping = true
		}
		w.mu.Lock()
		want, written := w.want, w.written
		w.mu.Unlock()
		if want != written {
			err := writeAnchor(w.path, Anchor{Store: w.store, Head: want, Written: now()})
			w.mu.Lock()
			w.err = err
			if err == nil {
				w.written = want
			}
			w.mu.Unlock()
		}
		if stopping {
			return
		}
		retry.Reset(anchorRetry)
	}
}

// lastError is the error of the last write, nil when it succeeded.
func (w *anchorWriter) lastError() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// close writes the newest head and stops the goroutine.
func (w *anchorWriter) close() error {
	w.once.Do(func() { close(w.stop) })
	<-w.stopped
	return w.lastError()
}

// flush waits until the anchor names the newest committed head, or d has
// passed, and reports the last write error.
func (w *anchorWriter) flush(d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		w.mu.Lock()
		want, written, err := w.want, w.written, w.err
		w.mu.Unlock()
		if want == written {
			return nil
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = fmt.Errorf("anchor %s still names event %d, want %d", w.path, written.Seq, want.Seq)
			}
			return err
		}
		select {
		case w.wake <- struct{}{}:
		default:
		}
		time.Sleep(2 * time.Millisecond)
	}
}
