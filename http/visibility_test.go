package http_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	latchhttp "github.com/latchdev/latch/http"
)

// ids returns the request IDs in a list body.
func requestIDs(t *testing.T, body []byte) []string {
	t.Helper()
	var out []string
	for _, r := range decodeAs[[]latchhttp.RequestJSON](t, body) {
		out = append(out, string(r.ID))
	}
	slices.Sort(out)
	return out
}

func grantIDs(t *testing.T, body []byte) []string {
	t.Helper()
	var out []string
	for _, g := range decodeAs[[]latchhttp.GrantJSON](t, body) {
		out = append(out, string(g.ID))
	}
	slices.Sort(out)
	return out
}

func sorted(ids ...string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	return out
}

// Who sees what: each identity's lists hold exactly what it may see, and
// a request or grant it may not see is refused without its data.
func TestWhoSeesWhat(t *testing.T) {
	s := newServer(t, latchhttp.Options{RateLimit: 1000, Burst: 1000})
	pending := s.pendingRequest(t) // alice's, for sre to approve
	st, body := s.call(t, "alice", "POST", "/v1/requests", latchhttp.RequestBody{Target: s.Fleet.Web1, Port: "22", Reason: "deploy"})
	if st != http.StatusCreated {
		t.Fatalf("auto-approved request: %d %s", st, body)
	}
	opened := decodeAs[latchhttp.RequestJSON](t, body)
	grant := string(opened.GrantID)

	lists := []struct {
		who, path string
		want      []string
		ids       func(*testing.T, []byte) []string
	}{
		{"alice", "/v1/requests", sorted(pending, string(opened.ID)), requestIDs},
		{"alice", "/v1/requests?mine=true", sorted(pending, string(opened.ID)), requestIDs},
		{"alice", "/v1/requests?state=pending", sorted(pending), requestIDs},
		{"bob", "/v1/requests", sorted(pending), requestIDs}, // an approver of prod-ssh, not of dev-ssh
		{"bob", "/v1/requests?mine=true", nil, requestIDs},
		{"erin", "/v1/requests?state=pending", sorted(pending), requestIDs},
		{"carol", "/v1/requests", sorted(pending, string(opened.ID)), requestIDs}, // admin
		{"carol", "/v1/requests?mine=true", nil, requestIDs},
		{"dave", "/v1/requests", nil, requestIDs},
		{"alice", "/v1/grants", sorted(grant), grantIDs},
		{"bob", "/v1/grants", nil, grantIDs},
		{"carol", "/v1/grants", nil, grantIDs}, // her own: none
		{"carol", "/v1/grants?all=true", sorted(grant), grantIDs},
		{"dave", "/v1/grants", nil, grantIDs},
	}
	for _, l := range lists {
		st, body := s.call(t, l.who, "GET", l.path, nil)
		if st != http.StatusOK {
			t.Errorf("%s GET %s = %d %s", l.who, l.path, st, body)
			continue
		}
		if got := l.ids(t, body); !slices.Equal(got, l.want) {
			t.Errorf("%s GET %s lists %v, want %v", l.who, l.path, got, l.want)
		}
	}

	gets := []struct {
		who, path string
		want      int
	}{
		{"alice", "/v1/requests/" + pending, 200},
		{"bob", "/v1/requests/" + pending, 200},
		{"carol", "/v1/requests/" + pending, 200},
		{"dave", "/v1/requests/" + pending, 403},
		{"bob", "/v1/requests/" + string(opened.ID), 403}, // dev-ssh needs no sre
		{"alice", "/v1/grants/" + grant, 200},
		{"carol", "/v1/grants/" + grant, 200},
		{"bob", "/v1/grants/" + grant, 403},
		{"dave", "/v1/grants/" + grant, 403},
	}
	for _, g := range gets {
		st, body := s.call(t, g.who, "GET", g.path, nil)
		if st != g.want {
			t.Errorf("%s GET %s = %d, want %d: %s", g.who, g.path, st, g.want, body)
		}
		if st == 403 && (strings.Contains(string(body), "alice@example.com") || strings.Contains(string(body), "127.0.0.1") ||
			strings.Contains(string(body), "deploy")) {
			t.Errorf("%s GET %s refused, but the body tells of the request: %s", g.who, g.path, body)
		}
		if st == 200 && !strings.Contains(string(body), "alice@example.com") {
			t.Errorf("%s GET %s: the body does not name the requester: %s", g.who, g.path, body)
		}
	}
}

// A list is paged: each page is at most limit long, a Link header names
// the next page, and the pages together are the whole list, once each.
func TestListRequestsPages(t *testing.T) {
	s := newServer(t, latchhttp.Options{RateLimit: 1000, Burst: 1000})
	var want []string
	for range 5 {
		want = append(want, s.pendingRequest(t))
	}
	slices.Sort(want)
	var got []string
	path := "/v1/requests?limit=2"
	for pages := 0; path != ""; pages++ {
		if pages > 5 {
			t.Fatal("more pages than requests")
		}
		req, _ := http.NewRequest("GET", s.url+path, nil)
		req.Header.Set("Authorization", "Bearer bob")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var page []latchhttp.RequestJSON
		if err := jsonDecode(resp, &page); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if len(page) > 2 {
			t.Fatalf("a page of %d, want at most 2", len(page))
		}
		for _, r := range page {
			got = append(got, string(r.ID))
		}
		path = ""
		if link := resp.Header.Get("Link"); link != "" {
			path = strings.TrimSuffix(strings.TrimPrefix(link, "<"), `>; rel="next"`)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("pages hold %v, want %v", got, want)
	}
	if st, body := s.call(t, "dave", "GET", "/v1/requests?before="+want[0], nil); st != http.StatusBadRequest || strings.Contains(string(body), "alice") {
		t.Errorf("dave paging from alice's request = %d %s, want 400 saying nothing of it", st, body)
	}
}
