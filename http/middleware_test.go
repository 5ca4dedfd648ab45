package http_test

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/latchdev/latch"
	latchhttp "github.com/latchdev/latch/http"
	at "github.com/latchdev/latch/internal/accesstest"
)

// The OpenAPI document describes exactly the routes the server has.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	data, err := os.ReadFile("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	var documented []string
	for path, ops := range doc.Paths {
		for method := range ops {
			if method != "parameters" {
				documented = append(documented, strings.ToUpper(method)+" "+path)
			}
		}
	}
	s := latchhttp.NewServer(at.New(t).Access, people, latchhttp.Options{})
	served := []string{"GET /v1/health", "GET /v1/ready"}
	for route := range s.Routes() {
		served = append(served, route)
	}
	sort.Strings(documented)
	sort.Strings(served)
	if strings.Join(documented, "\n") != strings.Join(served, "\n") {
		t.Fatalf("openapi.yaml documents:\n%s\n\nthe server serves:\n%s", strings.Join(documented, "\n"), strings.Join(served, "\n"))
	}
}

func TestEveryResponseHasARequestID(t *testing.T) {
	s := newServer(t, latchhttp.Options{})
	for _, path := range []string{"/v1/health", "/v1/whoami", "/v1/nothing"} {
		resp, err := http.Get(s.url + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if !strings.HasPrefix(resp.Header.Get("X-Request-Id"), "req-") {
			t.Errorf("%s: no X-Request-Id", path)
		}
	}
}

// panicky panics for the token "boom", as a buggy handler would.
type panicky struct{ tokens }

func (p panicky) Authenticate(r *http.Request) (latch.Identity, error) {
	if r.Header.Get("Authorization") == "Bearer boom" {
		panic("boom")
	}
	return p.tokens.Authenticate(r)
}

func TestPanicBecomesA500AndTheServerLives(t *testing.T) {
	f := at.New(t)
	srv := httptest.NewServer(latchhttp.NewServer(f.Access, panicky{people}, latchhttp.Options{}).Handler())
	defer srv.Close()
	s := &server{Fixture: f, url: srv.URL}
	st, body := s.call(t, "boom", "GET", "/v1/whoami", nil)
	if st != 500 || !strings.Contains(string(body), `"code": "internal"`) || strings.Contains(string(body), "boom") {
		t.Fatalf("panic answered %d %s; want a 500 that does not leak the panic", st, body)
	}
	if st, _ := s.call(t, "alice", "GET", "/v1/whoami", nil); st != 200 {
		t.Fatalf("after a panic the server answers %d", st)
	}
}

func TestBadBodies(t *testing.T) {
	s := newServer(t, latchhttp.Options{MaxBody: 1024})
	tests := []struct {
		name   string
		body   any
		status int
		field  string
	}{
		{"too large", latchhttp.RequestBody{Target: s.Fleet.Web1, Port: "22", Reason: strings.Repeat("x", 2000)}, 413, ""},
		{"unknown field", map[string]any{"target": s.Fleet.Web1, "port": "22", "cidr": "0.0.0.0/0"}, 400, "body"},
		{"whole internet", latchhttp.RequestBody{Target: s.Fleet.Web1, Port: "22", Source: "0.0.0.0/0"}, 400, "source"},
		{"bad port", latchhttp.RequestBody{Target: s.Fleet.Web1, Port: "ssh"}, 400, "port"},
		{"bad duration", latchhttp.RequestBody{Target: s.Fleet.Web1, Port: "22", Duration: "forever"}, 400, "duration"},
		{"no target", latchhttp.RequestBody{Port: "22"}, 400, "target"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, body := s.call(t, "alice", "POST", "/v1/requests", tt.body)
			if st != tt.status {
				t.Fatalf("status %d, want %d: %s", st, tt.status, body)
			}
			if eb := decodeAs[latchhttp.ErrorBody](t, body); eb.Field != tt.field {
				t.Errorf("field %q, want %q (%s)", eb.Field, tt.field, body)
			}
		})
	}
	if rs, _ := s.Store.Requests(t.Context(), latch.RequestFilter{}); len(rs) != 0 {
		t.Errorf("bad bodies recorded %d requests", len(rs))
	}
}

func TestRateLimitPerIdentity(t *testing.T) {
	s := newServer(t, latchhttp.Options{RateLimit: 0.001, Burst: 3})
	for i := range 3 {
		if st, _ := s.call(t, "alice", "GET", "/v1/whoami", nil); st != 200 {
			t.Fatalf("call %d: %d", i, st)
		}
	}
	if st, body := s.call(t, "alice", "GET", "/v1/whoami", nil); st != 429 || !strings.Contains(string(body), "rate_limited") {
		t.Fatalf("fourth call: %d %s, want 429", st, body)
	}
	if st, _ := s.call(t, "bob", "GET", "/v1/whoami", nil); st != 200 {
		t.Fatalf("another identity is limited too: %d", st)
	}
}

func TestClientAddress(t *testing.T) {
	tests := []struct {
		name    string
		trusted []string
		xff     string
		want    string
	}{
		{"peer, no proxies trusted", nil, "203.0.113.9", "127.0.0.1"},
		{"trusted proxy: right-most untrusted hop", []string{"127.0.0.0/8"}, "198.51.100.1, 203.0.113.9", "203.0.113.9"},
		{"trusted proxy chain", []string{"127.0.0.0/8", "10.0.0.0/8"}, "203.0.113.9, 10.1.2.3", "203.0.113.9"},
		{"trusted proxy, no header", []string{"127.0.0.0/8"}, "", "127.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var trusted []netip.Prefix
			for _, p := range tt.trusted {
				trusted = append(trusted, netip.MustParsePrefix(p))
			}
			s := newServer(t, latchhttp.Options{TrustedProxies: trusted})
			req, _ := http.NewRequest("GET", s.url+"/v1/whoami", nil)
			req.Header.Set("Authorization", "Bearer alice")
			if tt.xff != "" {
				req.Header.Set("X-Forwarded-For", tt.xff)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var who latchhttp.WhoAmIJSON
			if err := jsonDecode(resp, &who); err != nil {
				t.Fatal(err)
			}
			if who.Address != tt.want {
				t.Errorf("address %s, want %s", who.Address, tt.want)
			}
		})
	}
}

func FuzzDecodeRequest(f *testing.F) {
	f.Add([]byte(`{"target":"i-0a0b0c0d0e0f00001","port":"22","duration":"30m","reason":"x"}`))
	f.Add([]byte(`{"target":"sg-0123456789abcdef0","protocol":"icmp","port":"8-0","source":"198.51.100.0/24"}`))
	f.Add([]byte(`{"target":"x","port":"1-65535","source":"::/0"}`))
	f.Add([]byte(`[1,2,3]`))
	f.Add([]byte(`{"target":1}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		in, err := latchhttp.DecodeRequest(body, netip.MustParseAddr("203.0.113.9"))
		if err != nil {
			if latch.ErrorCode(err) == latch.EINTERNAL {
				t.Fatalf("bad input gave an internal error: %v", err)
			}
			return
		}
		if in.Target == "" || in.Asked.IsValid() && in.Asked.Bits() == 0 {
			t.Fatalf("accepted %q as %+v", body, in)
		}
	})
}
