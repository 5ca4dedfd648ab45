// Package storetest is the conformance suite every [latch.Store] must pass,
// so that the SQLite and PostgreSQL stores cannot drift apart. A store's own
// tests call [Run]; it is an ordinary package so that any store can import
// it.
package storetest

import (
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/latchdev/latch"
)

// Run runs the suite against the stores open returns. open is called once
// per subtest and must return a new, empty store, closed by t.Cleanup. The
// store must stamp history events with the wall clock: the suite checks them
// against time.Now.
//
// Beyond what [latch.Store] documents, the suite expects:
//   - times come back in UTC, and at least to the second;
//   - Due returns the earliest-due grants first;
//   - Changed is closed by the time CreateGrant, UpdateGrant, CreateRequest
//     or UpdateRequest returns;
//   - a request's reviews are append-only: UpdateRequest, at the current
//     version, refuses with EINVALID (and changes nothing) reviews that do
//     not begin with the stored ones unchanged; a stale update is ECONFLICT
//     whatever its reviews;
//   - an empty list or map in a request (groups, tags, approver groups,
//     reviews) may come back nil or empty, but the same way whether it was
//     written nil or empty, and CreateRequest and UpdateRequest return
//     requests exactly as Request and Requests then do;
//   - a request's Duration is kept to the second at least, like times;
//   - UseOnce prunes by the wall clock, like history stamps;
//   - events are stamped, and a grant.ending is judged still in the
//     future, by the wall clock too.
//
// Stores that several processes share also pass [RunShared].
func Run(t *testing.T, open func(t *testing.T) latch.Store) {
	t.Run("CreateGrant", func(t *testing.T) { testCreateGrant(t, open) })
	t.Run("UpdateGrant", func(t *testing.T) { testUpdateGrant(t, open) })
	t.Run("UpdateGrants", func(t *testing.T) { testUpdateGrants(t, open) })
	t.Run("History", func(t *testing.T) { testHistory(t, open) })
	t.Run("Grants", func(t *testing.T) { testGrants(t, open) })
	t.Run("Due", func(t *testing.T) { testDue(t, open) })
	t.Run("NextDue", func(t *testing.T) { testNextDue(t, open) })
	t.Run("Changed", func(t *testing.T) { testChanged(t, open) })
	t.Run("Concurrency", func(t *testing.T) { testConcurrency(t, open) })
	t.Run("CreateRequest", func(t *testing.T) { testCreateRequest(t, open) })
	t.Run("UpdateRequest", func(t *testing.T) { testUpdateRequest(t, open) })
	t.Run("Requests", func(t *testing.T) { testRequests(t, open) })
	t.Run("RequestChanged", func(t *testing.T) { testRequestChanged(t, open) })
	t.Run("Audit", func(t *testing.T) { testAudit(t, open) })
	t.Run("UseOnce", func(t *testing.T) { testUseOnce(t, open) })
	t.Run("Outbox", func(t *testing.T) { testOutbox(t, open) })
	t.Run("MessageRefs", func(t *testing.T) { testMessageRefs(t, open) })
	t.Run("Sessions", func(t *testing.T) { testSessions(t, open) })
}

// epoch is the suite's reference time: whole seconds, UTC, in the future so
// that nothing the suite creates is accidentally due by the wall clock.
func epoch() time.Time { return time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC) }

// NewGrant returns an active grant with every field but EndedAt and the
// revoke-attempt fields set, and a fresh ID. It expires an hour after it was
// created, at created.
func NewGrant(created time.Time) latch.Grant {
	return latch.Grant{
		ID:        latch.NewGrantID(),
		State:     latch.StateActive,
		Region:    "eu-west-1",
		GroupID:   "sg-0123456789abcdef0",
		Protocol:  latch.TCP,
		Ports:     latch.PortRange{From: 22, To: 22},
		Source:    netip.MustParsePrefix("203.0.113.7/32"),
		RuleID:    "sgr-0123456789abcdef0",
		Requester: "alice@example.com",
		Reason:    "INC-1234: look at the stuck queue",
		CreatedAt: created,
		ExpiresAt: created.Add(time.Hour),
	}
}

// mustCreate records g with note and checks what CreateGrant returns.
func mustCreate(t *testing.T, s latch.Store, g latch.Grant, note string) latch.Grant {
	t.Helper()
	got, err := s.CreateGrant(t.Context(), g, note)
	if err != nil {
		t.Fatalf("CreateGrant(%s): %v", g.ID, err)
	}
	g.Version = 1
	if d := diffGrant(got, g); d != "" {
		t.Fatalf("CreateGrant(%s) returned a different grant:\n%s", g.ID, d)
	}
	return got
}

// mustUpdate writes g with note and checks the version advanced.
func mustUpdate(t *testing.T, s latch.Store, g latch.Grant, note string) latch.Grant {
	t.Helper()
	got, err := s.UpdateGrant(t.Context(), g, note)
	if err != nil {
		t.Fatalf("UpdateGrant(%s, version %d): %v", g.ID, g.Version, err)
	}
	g.Version++
	if d := diffGrant(got, g); d != "" {
		t.Fatalf("UpdateGrant(%s) returned a different grant:\n%s", g.ID, d)
	}
	return got
}

// mustGet checks that the stored grant is want, field for field.
func mustGet(t *testing.T, s latch.Store, want latch.Grant) {
	t.Helper()
	got, err := s.Grant(t.Context(), want.ID)
	if err != nil {
		t.Fatalf("Grant(%s): %v", want.ID, err)
	}
	if d := diffGrant(got, want); d != "" {
		t.Fatalf("Grant(%s) differs from what was written:\n%s", want.ID, d)
	}
}

func mustHistory(t *testing.T, s latch.Store, id latch.GrantID) []latch.GrantEvent {
	t.Helper()
	evs, err := s.History(t.Context(), id)
	if err != nil {
		t.Fatalf("History(%s): %v", id, err)
	}
	return evs
}

// wantCode fails t unless err carries the latch error code.
func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if got := latch.ErrorCode(err); got != code {
		t.Fatalf("%s: error %v has code %q, want %q", what, err, got, code)
	}
}

// diffGrant lists the fields in which got and want differ. Times must be
// equal instants and in UTC.
func diffGrant(got, want latch.Grant) string {
	var b strings.Builder
	gv, wv := reflect.ValueOf(got), reflect.ValueOf(want)
	for i := range gv.NumField() {
		name := gv.Type().Field(i).Name
		g, w := gv.Field(i).Interface(), wv.Field(i).Interface()
		if gt, ok := g.(time.Time); ok {
			wt := w.(time.Time)
			if !gt.Equal(wt) || gt.Location() != time.UTC {
				fmt.Fprintf(&b, "  %s: got %v, want %v (UTC)\n", name, gt, wt)
			}
			continue
		}
		if g != w {
			fmt.Fprintf(&b, "  %s: got %#v, want %#v\n", name, g, w)
		}
	}
	return b.String()
}

// window is the span of wall-clock time an operation ran in, widened to
// whole seconds since stores need only keep seconds.
type window struct{ from, to time.Time }

func during(fn func()) window {
	from := time.Now()
	fn()
	to := time.Now()
	return window{from.Truncate(time.Second), to.Truncate(time.Second).Add(time.Second)}
}

func (w window) contains(t time.Time) bool { return !t.Before(w.from) && !t.After(w.to) }

// ids returns the IDs of gs, in order.
func ids(gs []latch.Grant) []latch.GrantID {
	out := make([]latch.GrantID, len(gs))
	for i, g := range gs {
		out[i] = g.ID
	}
	return out
}
