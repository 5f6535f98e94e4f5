package api

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/lastgood/lastgood/internal/controller"
	"github.com/lastgood/lastgood/internal/router"
	"github.com/lastgood/lastgood/internal/store"
)

// Client calls the API.
type Client struct {
	Base  string // e.g. http://127.0.0.1:7070
	Token string
	HTTP  *http.Client // http.DefaultClient when nil; see HTTPClient for a CA
}

// ClientHeader is the header every request of Client carries. Browsers
// cannot send it to another origin without a CORS preflight, which
// lastgood never grants, so the API takes a write that carries it as
// coming from a program, not from a forged page.
const ClientHeader = "X-Lastgood-Client"

// HTTPClient returns an HTTP client that trusts the certificates of the
// PEM file caFile besides the system's (for a lastgood serving TLS with
// its own CA or a self-signed certificate).
func HTTPClient(caFile string) (*http.Client, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", caFile)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: tr}, nil
}

// header sets what every request carries: the client header, the token.
func (c *Client) header(req *http.Request) {
	req.Header.Set(ClientHeader, "1")
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
}

// StatusError is a failed API call with the server's explanation.
type StatusError struct {
	Code int
	Body Error
}

func (e *StatusError) Error() string { return e.Body.Error }

// do sends one request. While lastgood is restoring its state after a
// start it answers 503 "unavailable"; do waits for it (up to 10s) when the
// body can be sent again.
func (c *Client) do(ctx context.Context, method, path string, body io.Reader, out any) error {
	return c.send(ctx, method, path, "application/json", body, out)
}

// send is do with the body's content type.
func (c *Client) send(ctx context.Context, method, path, ctype string, body io.Reader, out any) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := c.once(ctx, method, path, ctype, body, out)
		se, ok := errors.AsType[*StatusError](err)
		if !ok || se.Body.Kind != "unavailable" || time.Now().After(deadline) {
			return err
		}
		if seeker, ok := body.(io.Seeker); ok {
			if _, err := seeker.Seek(0, io.SeekStart); err != nil {
				return err
			}
		} else if body != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (c *Client) once(ctx context.Context, method, path, ctype string, body io.Reader, out any) error {
	res, err := c.request(ctx, method, path, ctype, body)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if out == nil {
		return nil
	}
	if raw, ok := out.(*json.RawMessage); ok {
		*raw, err = io.ReadAll(res.Body)
		return err
	}
	return json.NewDecoder(res.Body).Decode(out)
}

// request makes one request and returns its response when it succeeded;
// a failed call is a *StatusError with the server's explanation.
func (c *Client) request(ctx context.Context, method, path, ctype string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.Base, "/")+path, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", ctype)
	}
	c.header(req)
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	res, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach lastgood at %s (is `lastgood serve` running? set --server or LASTGOOD_SERVER): %w", c.Base, err)
	}
	if res.StatusCode < 300 {
		return res, nil
	}
	defer res.Body.Close()
	se := &StatusError{Code: res.StatusCode}
	b, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if json.Unmarshal(b, &se.Body) != nil || se.Body.Error == "" {
		se.Body.Error = fmt.Sprintf("%s %s: %s: %s", method, path, res.Status, strings.TrimSpace(string(b)))
	}
	if method == http.MethodHead && res.StatusCode == http.StatusServiceUnavailable {
		// A HEAD answer has no body to say why; while lastgood
		// restores its state that is the reason, and do waits.
		se.Body.Kind = "unavailable"
	}
	return nil, se
}

func (c *Client) getJSON(ctx context.Context, path string, out any) error {
	return c.do(ctx, http.MethodGet, path, nil, out)
}

func (c *Client) postJSON(ctx context.Context, path string, in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return c.do(ctx, http.MethodPost, path, bytes.NewReader(b), out)
}

// Upload sends an artifact file unless the server has it already.
func (c *Client) Upload(ctx context.Context, digest, path string) error {
	err := c.do(ctx, http.MethodHead, "/api/v1/artifacts/"+digest, nil, nil)
	if err == nil {
		return nil
	}
	if se, ok := errors.AsType[*StatusError](err); !ok || se.Code != http.StatusNotFound {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return c.send(ctx, http.MethodPut, "/api/v1/artifacts/"+digest, "application/octet-stream", f, nil)
}

// Apply applies a manifest whose artifacts were uploaded.
func (c *Client) Apply(ctx context.Context, req controller.ApplyRequest) (controller.ApplyResult, error) {
	var res controller.ApplyResult
	return res, c.postJSON(ctx, "/api/v1/apply", req, &res)
}

// Action runs promote, abort, pause, resume or undo.
func (c *Client) Action(ctx context.Context, app, verb string, req ActionRequest) (controller.ApplyResult, error) {
	var res controller.ApplyResult
	return res, c.postJSON(ctx, "/api/v1/apps/"+url.PathEscape(app)+"/"+verb, req, &res)
}

// Delete deletes an app (POST /api/v1/apps/{app}/delete); force aborts
// a rollout in progress first.
func (c *Client) Delete(ctx context.Context, app string, force bool) (controller.DeleteResult, error) {
	var res controller.DeleteResult
	return res, c.postJSON(ctx, "/api/v1/apps/"+url.PathEscape(app)+"/delete", ActionRequest{Force: force}, &res)
}

// App returns an app's status.
func (c *Client) App(ctx context.Context, app string) (controller.AppStatus, error) {
	var st controller.AppStatus
	return st, c.getJSON(ctx, "/api/v1/apps/"+url.PathEscape(app), &st)
}

// Apps returns every app's status.
func (c *Client) Apps(ctx context.Context) ([]controller.AppStatus, error) {
	var st []controller.AppStatus
	return st, c.getJSON(ctx, "/api/v1/apps", &st)
}

// Revisions returns an app's revisions, oldest first.
func (c *Client) Revisions(ctx context.Context, app string) ([]store.Revision, error) {
	var revs []store.Revision
	return revs, c.getJSON(ctx, "/api/v1/apps/"+url.PathEscape(app)+"/revisions", &revs)
}

// Revision returns one revision.
func (c *Client) Revision(ctx context.Context, app string, n int) (store.Revision, error) {
	var rev store.Revision
	return rev, c.getJSON(ctx, fmt.Sprintf("/api/v1/apps/%s/revisions/%d", url.PathEscape(app), n), &rev)
}

// Rollouts returns an app's rollouts, newest first.
func (c *Client) Rollouts(ctx context.Context, app string) ([]store.Rollout, error) {
	var rs []store.Rollout
	return rs, c.getJSON(ctx, "/api/v1/apps/"+url.PathEscape(app)+"/rollouts", &rs)
}

// Stats returns the router's per-revision counters of an app.
func (c *Client) Stats(ctx context.Context, app string) ([]router.RevisionStats, error) {
	var rs []router.RevisionStats
	return rs, c.getJSON(ctx, "/api/v1/apps/"+url.PathEscape(app)+"/stats", &rs)
}

// Events returns stored events of an app ("" for all) after seq.
func (c *Client) Events(ctx context.Context, app string, after int64) ([]store.Event, error) {
	var evs []store.Event
	q := url.Values{"after": {strconv.FormatInt(after, 10)}}
	if app != "" {
		q.Set("app", app)
	}
	return evs, c.getJSON(ctx, "/api/v1/events?"+q.Encode(), &evs)
}

// Follow streams events after seq to f until ctx ends or f returns false.
// It reconnects, resuming after the last event seen, when the stream
// breaks.
func (c *Client) Follow(ctx context.Context, app string, after int64, f func(store.Event) bool) error {
	for {
		err := c.follow(ctx, app, &after, f)
		if ctx.Err() != nil || errors.Is(err, errStop) {
			return nil
		}
		if se, ok := errors.AsType[*StatusError](err); ok {
			return se
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(500 * time.Millisecond):
		}
	}
}

var errStop = errors.New("stop following")

func (c *Client) follow(ctx context.Context, app string, after *int64, f func(store.Event) bool) error {
	q := url.Values{"after": {strconv.FormatInt(*after, 10)}, "follow": {"1"}}
	if app != "" {
		q.Set("app", app)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(c.Base, "/")+"/api/v1/events?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	c.header(req)
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	res, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		se := &StatusError{Code: res.StatusCode}
		json.NewDecoder(res.Body).Decode(&se.Body)
		return se
	}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var e store.Event
		if err := json.Unmarshal([]byte(data), &e); err != nil {
			return err
		}
		*after = e.Seq
		if !f(e) {
			return errStop
		}
	}
	return sc.Err()
}

// Backup writes an online copy of the server's state database to out, a
// file that must not exist yet; out is whole or absent.
func (c *Client) Backup(ctx context.Context, out string) error {
	if _, err := os.Lstat(out); err == nil {
		return fmt.Errorf("backup: %s: %w", out, fs.ErrExist)
	}
	res, err := c.request(ctx, http.MethodGet, "/api/v1/backup", "", nil)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".*.tmp")
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer os.Remove(tmp.Name())
	n, err := io.Copy(tmp, res.Body)
	if err == nil && res.ContentLength >= 0 && n != res.ContentLength {
		err = fmt.Errorf("the server sent %d of %d bytes", n, res.ContentLength)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Link(tmp.Name(), out) // never replaces a file that appeared meanwhile
	}
	if err != nil {
		return fmt.Errorf("backup to %s: %w", out, err)
	}
	return nil
}

// Audit verifies the event log's hash chain.
func (c *Client) Audit(ctx context.Context) (store.Audit, error) {
	var a store.Audit
	return a, c.getJSON(ctx, "/api/v1/audit", &a)
}

// Whoami says who the server takes this client's token for.
func (c *Client) Whoami(ctx context.Context) (Whoami, error) {
	var w Whoami
	return w, c.getJSON(ctx, "/api/v1/whoami", &w)
}

// Version returns the server's version.
func (c *Client) Version(ctx context.Context) (string, error) {
	var v map[string]string
	err := c.getJSON(ctx, "/api/v1/version", &v)
	return v["version"], err
}
