package router

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
)

func (v *countingView) session(string) int { v.revisions++; return -1 }

func TestParseAffinity(t *testing.T) {
	for _, tc := range []struct {
		in          string
		rev, bucket int
		ok          bool
	}{
		{"3", 3, -1, true}, {"3.17", 3, 17, true}, {"12.0", 12, 0, true},
		{"3.64", 0, -1, false}, {"3.", 0, -1, false}, {".1", 0, -1, false}, {"0.1", 0, -1, false},
		{"3.1.2", 0, -1, false}, {"3.x", 0, -1, false}, {"1234567890", 0, -1, false},
	} {
		rev, b, ok := parseAffinity(tc.in)
		if rev != tc.rev || b != tc.bucket || ok != tc.ok {
			t.Errorf("parseAffinity(%q) = %d, %d, %v; want %d, %d, %v", tc.in, rev, b, ok, tc.rev, tc.bucket, tc.ok)
		}
	}
}

// TestSessionBuckets: with affinity, each client's requests are counted
// in the one bucket its cookie names, on both serving paths, and an old
// cookie without a bucket keeps its revision and counts in none.
func TestSessionBuckets(t *testing.T) {
	forEachPath(t, func(t *testing.T, serve serveFunc) {
		be := startHandler(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if req.Header.Get("X-Bad") != "" {
				w.WriteHeader(500)
			}
		}))
		r := New("web")
		r.Set(Table{Routes: []Route{{Revision: 1, Weight: 1, Backends: []string{hostport(be)}}}, Affinity: &Affinity{Cookie: "lg"}})
		base := serve(t, r)
		const clients, each = 5, 7
		for i := range clients {
			jar, _ := cookiejar.New(nil)
			c := newClient(t)
			c.Jar = jar
			for range each {
				req, _ := http.NewRequest(http.MethodGet, base+"/", nil)
				if i == 0 {
					req.Header.Set("X-Bad", "1")
				}
				resp, err := c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if sc := resp.Header.Get("Set-Cookie"); sc != "" && !strings.HasPrefix(sc, "lg=1.") {
					t.Fatalf("Set-Cookie %q, want lg=1.<bucket>", sc)
				}
			}
		}
		old, _ := http.NewRequest(http.MethodGet, base+"/", nil)
		old.AddCookie(&http.Cookie{Name: "lg", Value: "1"})
		resp, err := newClient(t).Do(old)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.Header.Get("Set-Cookie") != "" {
			t.Errorf("an old cookie naming a live revision got a new one: %q", resp.Header.Get("Set-Cookie"))
		}
		st := r.Stats()[0]
		if st.Requests != clients*each+1 || len(st.Sessions) != clients {
			t.Fatalf("%d requests in %d buckets %+v; want %d in %d", st.Requests, len(st.Sessions), st.Sessions, clients*each+1, clients)
		}
		bad := 0
		for _, s := range st.Sessions {
			if s.Requests != each {
				t.Errorf("bucket %d has %d requests; want one whole session of %d", s.Bucket, s.Requests, each)
			}
			if s.Errors > 0 {
				bad++
				if s.Errors != each {
					t.Errorf("bucket %d: %d errors; want the bad client's %d", s.Bucket, s.Errors, each)
				}
			}
		}
		if bad != 1 {
			t.Errorf("%d buckets with errors, want the bad client's one", bad)
		}
	})
}
