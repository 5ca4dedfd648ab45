package storetest

import (
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latchdev/latch"
)

// NewRequest returns a pending request with every field but Reviews,
// DecidedAt, GrantID and Note set, and a fresh ID. It was made at created
// and stays pending for an hour; it asks for two approvals from "sre" or
// "oncall".
func NewRequest(created time.Time) latch.Request {
	return latch.Request{
		ID:    latch.NewRequestID(),
		State: latch.RequestPending,
		Requester: latch.Identity{
			Kind:    latch.KindOIDC,
			Subject: "alice@example.com",
			Issuer:  "https://idp.example.com",
			Groups:  []string{"dev", "payments"},
		},
		Target: latch.Target{
			Region:     "eu-west-1",
			InstanceID: "i-0123456789abcdef0",
			GroupID:    "sg-0123456789abcdef0",
			Tags:       map[string]string{"Name": "queue-worker-1", "env": "prod"},
		},
		Protocol:        latch.TCP,
		Ports:           latch.PortRange{From: 22, To: 22},
		Source:          netip.MustParsePrefix("203.0.113.7/32"),
		Duration:        30 * time.Minute,
		Reason:          "INC-1234: look at the stuck queue",
		Rule:            "prod-ssh",
		ApprovalsNeeded: 2,
		Approvers:       latch.Selector{Groups: []string{"sre", "oncall"}},
		CreatedAt:       created,
		PendingUntil:    created.Add(time.Hour),
	}
}

// reviewer returns an OIDC identity for subject in groups.
func reviewer(subject string, groups ...string) latch.Identity {
	return latch.Identity{Kind: latch.KindOIDC, Subject: subject, Issuer: "https://idp.example.com", Groups: groups}
}

// mustCreateRequest records r and checks what CreateRequest returns, and
// that it is what the store then returns.
func mustCreateRequest(t *testing.T, s latch.Store, r latch.Request) latch.Request {
	t.Helper()
	got, err := s.CreateRequest(t.Context(), r)
	if err != nil {
		t.Fatalf("CreateRequest(%s): %v", r.ID, err)
	}
	r.Version = 1
	if d := diffRequest(got, r, false); d != "" {
		t.Fatalf("CreateRequest(%s) returned a different request:\n%s", r.ID, d)
	}
	mustGetRequest(t, s, got)
	return got
}

// mustUpdateRequest writes r, checks the version advanced, and that what
// UpdateRequest returns is what the store then returns.
func mustUpdateRequest(t *testing.T, s latch.Store, r latch.Request) latch.Request {
	t.Helper()
	got, err := s.UpdateRequest(t.Context(), r)
	if err != nil {
		t.Fatalf("UpdateRequest(%s, version %d): %v", r.ID, r.Version, err)
	}
	r.Version++
	if d := diffRequest(got, r, false); d != "" {
		t.Fatalf("UpdateRequest(%s) returned a different request:\n%s", r.ID, d)
	}
	mustGetRequest(t, s, got)
	return got
}

// mustGetRequest checks that the stored request is want, field for field.
// want must be what the store returned from a write: empty lists and maps
// must then be nil or empty exactly as in want.
func mustGetRequest(t *testing.T, s latch.Store, want latch.Request) {
	t.Helper()
	got, err := s.Request(t.Context(), want.ID)
	if err != nil {
		t.Fatalf("Request(%s): %v", want.ID, err)
	}
	if d := diffRequest(got, want, true); d != "" {
		t.Fatalf("Request(%s) differs from what was written:\n%s", want.ID, d)
	}
}

// mustListRequests runs Requests(f) and checks it returns exactly want, in
// order, as stored.
func mustListRequests(t *testing.T, s latch.Store, f latch.RequestFilter, want ...latch.Request) {
	t.Helper()
	got, err := s.Requests(t.Context(), f)
	if err != nil {
		t.Fatalf("Requests(%+v): %v", f, err)
	}
	if !slices.Equal(requestIDs(got), requestIDs(want)) {
		t.Fatalf("Requests(%+v) = %v, want %v", f, requestIDs(got), requestIDs(want))
	}
	for i := range got {
		if d := diffRequest(got[i], want[i], true); d != "" {
			t.Fatalf("Requests(%+v)[%d] differs from what was written:\n%s", f, i, d)
		}
	}
}

func requestIDs(rs []latch.Request) []latch.RequestID {
	out := make([]latch.RequestID, len(rs))
	for i, r := range rs {
		out[i] = r.ID
	}
	return out
}

// withRequestID returns r with the ID "r-" followed by 16 copies of hex
// digit c, so that tests can order requests by ID.
func withRequestID(r latch.Request, c byte) latch.Request {
	r.ID = latch.RequestID("r-" + strings.Repeat(string(c), 16))
	return r
}

var (
	timeType     = reflect.TypeFor[time.Time]()
	latchPkgPath = reflect.TypeFor[latch.Request]().PkgPath()
)

// diffRequest lists the fields in which got and want differ, by path
// (Reviews[1].By.Groups). Times must be equal instants and in UTC. A nil
// list or map equals an empty one unless strict, when both must be nil or
// both non-nil: a store may keep empty as either, but must be consistent.
func diffRequest(got, want latch.Request, strict bool) string {
	var b strings.Builder
	diffValue(&b, "", reflect.ValueOf(got), reflect.ValueOf(want), strict)
	return b.String()
}

func diffValue(b *strings.Builder, path string, g, w reflect.Value, strict bool) {
	t := g.Type()
	switch {
	case t == timeType:
		gt, wt := g.Interface().(time.Time), w.Interface().(time.Time)
		if !gt.Equal(wt) || gt.Location() != time.UTC {
			fmt.Fprintf(b, "  %s: got %v, want %v (UTC)\n", path, gt, wt)
		}
	case t.Kind() == reflect.Struct && t.PkgPath() == latchPkgPath:
		for i := range t.NumField() {
			name := t.Field(i).Name
			if path != "" {
				name = path + "." + name
			}
			diffValue(b, name, g.Field(i), w.Field(i), strict)
		}
	case t.Kind() == reflect.Slice:
		if g.Len() != w.Len() || strict && g.IsNil() != w.IsNil() {
			fmt.Fprintf(b, "  %s: got %#v, want %#v\n", path, g.Interface(), w.Interface())
			return
		}
		for i := range g.Len() {
			diffValue(b, fmt.Sprintf("%s[%d]", path, i), g.Index(i), w.Index(i), strict)
		}
	case t.Kind() == reflect.Map:
		if g.Len() != w.Len() || strict && g.IsNil() != w.IsNil() {
			fmt.Fprintf(b, "  %s: got %#v, want %#v\n", path, g.Interface(), w.Interface())
			return
		}
		for _, k := range w.MapKeys() {
			gv := g.MapIndex(k)
			if !gv.IsValid() {
				fmt.Fprintf(b, "  %s: got %#v, want %#v\n", path, g.Interface(), w.Interface())
				return
			}
			diffValue(b, fmt.Sprintf("%s[%#v]", path, k.Interface()), gv, w.MapIndex(k), strict)
		}
	default:
		if g.Interface() != w.Interface() {
			fmt.Fprintf(b, "  %s: got %#v, want %#v\n", path, g.Interface(), w.Interface())
		}
	}
}

// fullRequest returns a request with every field set, reviews included,
// as a request is once it has been approved and its grant opened.
func fullRequest(created time.Time) latch.Request {
	r := NewRequest(created)
	r.State = latch.RequestActive
	r.Target.Tags["Team"] = "payments <&> \"ops\" ✓"
	r.Protocol = latch.UDP
	r.Ports = latch.PortRange{From: 8000, To: 8443}
	r.Source = netip.MustParsePrefix("198.51.100.0/24")
	r.Duration = 90*time.Minute + 15*time.Second
	r.Reviews = []latch.Review{
		{By: reviewer("bob@example.com", "sre"), Approve: true, Reason: "looks fine", At: created.Add(time.Minute)},
		{By: reviewer("carol@example.com", "oncall", "sre"), Approve: true, At: created.Add(2 * time.Minute)},
	}
	r.DecidedAt = created.Add(2 * time.Minute)
	r.GrantID = latch.NewGrantID()
	r.Note = "opened"
	return r
}
