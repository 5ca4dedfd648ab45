package http_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	latchhttp "github.com/latchdev/latch/http"
	at "github.com/latchdev/latch/internal/accesstest"
)

// A mounted handler needs no identity, but spends the address budget and
// reads at most MaxBody, like every route.
func TestMountedHandlers(t *testing.T) {
	var got []int
	mounted := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "too large", http.StatusRequestEntityTooLarge)
			return
		}
		got = append(got, len(b))
		w.WriteHeader(http.StatusNoContent)
	})
	srv := httptest.NewServer(latchhttp.NewServer(at.New(t).Access, people, latchhttp.Options{
		MaxBody: 100, AddrRateLimit: 0.001, AddrBurst: 2,
		Mount: map[string]http.Handler{"POST /slack/interactions": mounted},
	}).Handler())
	t.Cleanup(srv.Close)
	post := func(body string) int {
		resp, err := http.Post(srv.URL+"/slack/interactions", "application/x-www-form-urlencoded", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := post("payload=x"); st != http.StatusNoContent {
		t.Fatalf("a mounted handler without credentials: %d; want it reached (204)", st)
	}
	if st := post(strings.Repeat("x", 101)); st != http.StatusRequestEntityTooLarge {
		t.Errorf("a body over MaxBody: %d; want 413", st)
	}
	if st := post("payload=x"); st != http.StatusTooManyRequests {
		t.Errorf("past the address budget: %d; want 429", st)
	}
	if len(got) != 1 {
		t.Errorf("handler read %d bodies; want 1", len(got))
	}
}
