package journey

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// shop is a tiny real app with a login that sets a session cookie and a
// profile that needs it.
func shop(t *testing.T) string {
	t.Helper()
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if string(b) != "user=ann&password=secret" || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
			http.Error(w, "wrong user or password", http.StatusForbidden)
			return
		}
		http.SetCookie(w, &http.Cookie{Name: "session", Value: "s-ann", Path: "/"})
		io.WriteString(w, "welcome ann")
	})
	mux.HandleFunc("GET /profile", func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie("session")
		if err != nil || c.Value != "s-ann" {
			http.Error(w, "log in first", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"user": "ann", "orders": 3}`)
	})
	mux.HandleFunc("GET /whoami", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "host="+r.Host+" tenant="+r.Header.Get("X-Tenant"))
	})
	mux.HandleFunc("GET /old", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/profile", http.StatusFound)
	})
	mux.HandleFunc("GET /hang", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // before Close: no handler outlives the test
	return srv.Listener.Addr().String()
}

var (
	login = Step{Name: "login", Method: "POST", Path: "/login", Body: "user=ann&password=secret",
		Headers: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, ExpectBody: "^welcome"}
	profile = Step{Name: "profile", Path: "/profile", ExpectBody: `"user":\s*"ann"`}
)

func TestLoginThenProfilePasses(t *testing.T) {
	addr := shop(t)
	for _, a := range []string{addr, "http://" + addr, "http://" + addr + "/"} {
		res := Run(context.Background(), a, []Step{login, profile}, 0)
		if !res.Passed || res.FailedStep != -1 || len(res.Steps) != 2 {
			t.Fatalf("%s: got %+v, want both steps passed", a, res)
		}
		for i, want := range []string{"login", "profile"} {
			s := res.Steps[i]
			if s.Name != want || s.Status != 200 || s.Err != "" || s.Duration <= 0 {
				t.Errorf("step %d: %+v, want %s passed with 200 and a duration", i, s, want)
			}
		}
	}
}

func TestFailingStepStopsTheJourney(t *testing.T) {
	addr := shop(t)
	wrong := login
	wrong.Body = "user=ann&password=guess"
	cases := []struct {
		name   string
		steps  []Step
		failed int
		status int
		err    string
	}{
		{"wrong password", []Step{wrong, profile}, 0, 403, `status 403, want 200; body: "wrong user or password"`},
		{"no cookie without login", []Step{profile}, 0, 401, "status 401, want 200"},
		{"body does not match", []Step{login, {Name: "orders", Path: "/profile", ExpectBody: `"orders":\s*[1-9]\d`}}, 1, 200,
			`body does not match "\"orders\":\\s*[1-9]\\d"; body: "{\"user\": \"ann\", \"orders\": 3}"`},
		{"redirects are answers", []Step{login, {Name: "old", Path: "/old"}}, 1, 302, "status 302, want 200"},
		{"unknown path", []Step{{Path: "/nope"}}, 0, 404, "GET /nope: status 404"},
		{"invalid step fails in its turn", []Step{login, {Name: "bad", Path: "profile"}, profile}, 1, 0, "path \"profile\""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := Run(context.Background(), addr, tc.steps, 0)
			if res.Passed || res.FailedStep != tc.failed || len(res.Steps) != tc.failed+1 {
				t.Fatalf("got %+v, want a failure at step index %d with nothing run after it", res, tc.failed)
			}
			last := res.Steps[tc.failed]
			if last.Status != tc.status || !strings.Contains(last.Err, tc.err) {
				t.Errorf("failed step %+v, want status %d and an error containing %q", last, tc.status, tc.err)
			}
		})
	}
}

func TestExpectedErrorStatusPasses(t *testing.T) {
	addr := shop(t)
	res := Run(context.Background(), addr, []Step{{Name: "locked", Path: "/profile", ExpectStatus: 401, ExpectBody: "log in"}}, 0)
	if !res.Passed {
		t.Errorf("got %+v, want a pass on the expected 401", res)
	}
}

func TestHeadersAndHost(t *testing.T) {
	addr := shop(t)
	step := Step{Path: "/whoami", Headers: map[string]string{"Host": "shop.example", "X-Tenant": "acme"},
		ExpectBody: `^host=shop\.example tenant=acme$`}
	res := Run(context.Background(), addr, []Step{step}, 0)
	if !res.Passed || res.Steps[0].Name != "step 1" {
		t.Errorf("got %+v, want a pass named \"step 1\"", res)
	}
}

func TestTimeoutAndUnreachable(t *testing.T) {
	addr := shop(t)
	start := time.Now()
	res := Run(context.Background(), addr, []Step{login, {Name: "hang", Path: "/hang"}, profile}, 300*time.Millisecond)
	if took := time.Since(start); took > time.Minute { // generous: a busy machine delays timers
		t.Errorf("took %s with a 300ms timeout", took)
	}
	if res.Passed || res.FailedStep != 1 || !strings.Contains(res.Steps[1].Err, "no answer before the journey's timeout (300ms)") {
		t.Errorf("got %+v, want a timeout at the hang step", res)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	res = Run(context.Background(), closed, []Step{profile}, 0)
	if res.Passed || res.FailedStep != 0 || res.Steps[0].Status != 0 || !strings.Contains(res.Steps[0].Err, "connection refused") {
		t.Errorf("got %+v, want connection refused at the first step", res)
	}

	if res := Run(context.Background(), addr, nil, 0); res.Passed || res.FailedStep != 0 {
		t.Errorf("no steps: got %+v, want a failure", res)
	}
}

func TestValidate(t *testing.T) {
	if err := Validate([]Step{login, profile, {Path: "/search?q=x", Method: "HEAD", ExpectStatus: 204}}); err != nil {
		t.Errorf("valid journey: %v", err)
	}
	err := Validate([]Step{
		{Name: "a", Path: "/ok"},
		{Name: "b", Method: "FETCH", Path: "/x"},
		{Name: "c", Path: "x"},
		{Name: "d", Path: "/x", ExpectBody: "("},
		{Path: "/x", ExpectStatus: 99},
		{Path: "/x", Headers: map[string]string{"Bad Name": "v"}},
		{Path: "/x", Headers: map[string]string{"X-Split": "a\r\nInjected: 1"}},
	})
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("got %v, want ErrInvalid", err)
	}
	for _, want := range []string{
		`step 2 (b): invalid journey: method "FETCH"`,
		`step 3 (c): invalid journey: path "x"`,
		`step 4 (d): invalid journey: expectBody: error parsing regexp`,
		`step 5: invalid journey: expectStatus 99`,
		`step 6: invalid journey: header "Bad Name"`,
		`step 7: invalid journey: header "X-Split"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%v\ndoes not contain %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "step 1") {
		t.Errorf("the valid first step is reported: %v", err)
	}
	if err := Validate(nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("no steps: got %v, want ErrInvalid", err)
	}
}
