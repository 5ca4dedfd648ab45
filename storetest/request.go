package storetest

import (
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"
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
		ApproverGroups:  []string{"sre", "oncall"},
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

func testCreateRequest(t *testing.T, open func(t *testing.T) latch.Store) {
	t.Run("RoundTripsEveryField", func(t *testing.T) {
		s := open(t)
		r := fullRequest(epoch())
		r.Version = 42 // ignored: a new request is at version 1
		mustCreateRequest(t, s, r)
	})

	t.Run("RoundTripsOtherValues", func(t *testing.T) {
		s := open(t)
		r := NewRequest(epoch())
		r.State = latch.RequestFailed
		r.Requester = latch.Identity{Kind: latch.KindIAM, Subject: "arn:aws:iam::123456789012:role/deploy",
			Issuer: "123456789012"}
		r.Target.InstanceID = ""
		r.Protocol = latch.ICMP
		r.Ports = latch.PortRange{From: -1, To: -1}
		r.Source = netip.MustParsePrefix("2001:db8::1/128")
		r.BreakGlass = true
		r.ApprovalsNeeded = 0
		r.Reviews = []latch.Review{{By: reviewer("dave@example.com"), Approve: false, Reason: "no",
			At: epoch().Add(time.Second)}}
		r.Note = "UnauthorizedOperation: you are not authorized"
		mustCreateRequest(t, s, r)
	})

	t.Run("RoundTripsZeroValuesNilOrEmpty", func(t *testing.T) {
		s := open(t)
		zero := mustCreateRequest(t, s, latch.Request{ID: latch.NewRequestID()})
		empty := latch.Request{ID: latch.NewRequestID(),
			Requester: latch.Identity{Groups: []string{}}, Target: latch.Target{Tags: map[string]string{}},
			ApproverGroups: []string{}, Reviews: []latch.Review{}}
		empty = mustCreateRequest(t, s, empty)
		// However the store keeps empty, it keeps it the same for nil and
		// for empty, so that callers see one kind of request.
		empty.ID = zero.ID
		if d := diffRequest(empty, zero, true); d != "" {
			t.Fatalf("a request of empty lists and maps reads back other than one of nils:\n%s", d)
		}
	})

	t.Run("ReturnsTimesInUTC", func(t *testing.T) {
		s := open(t)
		east, west := time.FixedZone("UTC+5:30", 5*3600+1800), time.FixedZone("UTC-8", -8*3600)
		r := fullRequest(epoch().In(east))
		r.PendingUntil = r.PendingUntil.In(west)
		r.DecidedAt = r.DecidedAt.In(west)
		r.Reviews[0].At = r.Reviews[0].At.In(east)
		r.Reviews[1].At = r.Reviews[1].At.In(west)
		mustCreateRequest(t, s, r) // checks the same instants, in UTC
	})

	t.Run("KeepsTimesAndDurationToTheSecondAtLeast", func(t *testing.T) {
		s := open(t)
		r := fullRequest(epoch().Add(123456789 * time.Nanosecond))
		r.PendingUntil = r.PendingUntil.Add(987654321 * time.Nanosecond)
		r.Reviews[0].At = r.Reviews[0].At.Add(555555555 * time.Nanosecond)
		r.Duration += 250 * time.Millisecond
		created, err := s.CreateRequest(t.Context(), r)
		if err != nil {
			t.Fatal(err)
		}
		mustGetRequest(t, s, created)
		for _, c := range []struct {
			name      string
			got, want time.Time
		}{
			{"CreatedAt", created.CreatedAt, r.CreatedAt},
			{"PendingUntil", created.PendingUntil, r.PendingUntil},
			{"DecidedAt", created.DecidedAt, r.DecidedAt},
			{"Reviews[0].At", created.Reviews[0].At, r.Reviews[0].At},
		} {
			if !c.got.Truncate(time.Second).Equal(c.want.Truncate(time.Second)) {
				t.Errorf("%s = %v, want %v to the second", c.name, c.got, c.want)
			}
		}
		if created.Duration.Truncate(time.Second) != r.Duration.Truncate(time.Second) {
			t.Errorf("Duration = %v, want %v to the second", created.Duration, r.Duration)
		}
		// The reviews as returned are the stored ones: an update that
		// extends them is not refused for rewriting them.
		created.Note = "again"
		mustUpdateRequest(t, s, created)
	})

	t.Run("DoesNotModifyItsArgument", func(t *testing.T) {
		s := open(t)
		r := fullRequest(epoch().In(time.FixedZone("UTC+1", 3600)))
		r.Reviews[0].By.Groups = []string{}
		before := r.Reviews[0]
		mustCreateRequest(t, s, r)
		if r.Reviews[0].By.Groups == nil || r.Reviews[0].At != before.At {
			t.Fatalf("CreateRequest changed the caller's review from %+v to %+v", before, r.Reviews[0])
		}
	})

	t.Run("DuplicateIDConflictsAndChangesNothing", func(t *testing.T) {
		s := open(t)
		r := mustCreateRequest(t, s, fullRequest(epoch()))
		dup := NewRequest(epoch().Add(time.Minute))
		dup.ID = r.ID
		dup.Requester.Subject = "mallory@example.com"
		dup.Reviews = []latch.Review{{By: reviewer("mallory@example.com", "sre"), Approve: true, At: epoch()}}
		_, err := s.CreateRequest(t.Context(), dup)
		wantCode(t, "CreateRequest with a taken ID", err, latch.ECONFLICT)
		mustGetRequest(t, s, r)
	})

	t.Run("UnknownIDNotFound", func(t *testing.T) {
		s := open(t)
		mustCreateRequest(t, s, NewRequest(epoch()))
		_, err := s.Request(t.Context(), latch.NewRequestID())
		wantCode(t, "Request of an unknown ID", err, latch.ENOTFOUND)
	})
}

func testUpdateRequest(t *testing.T, open func(t *testing.T) latch.Store) {
	t.Run("AdvancesVersionAndWritesEveryField", func(t *testing.T) {
		s := open(t)
		r := mustCreateRequest(t, s, NewRequest(epoch()))
		r.State = latch.RequestApproved
		r.Requester = latch.Identity{Kind: latch.KindIAM, Subject: "arn:aws:iam::123456789012:role/ops",
			Issuer: "123456789012", Groups: []string{"ops"}}
		r.Target = latch.Target{Region: "us-east-1", GroupID: "sg-0fedcba9876543210", Tags: map[string]string{"k": "v"}}
		r.Protocol = latch.ICMP
		r.Ports = latch.PortRange{From: 8, To: -1}
		r.Source = netip.MustParsePrefix("2001:db8::/64")
		r.Duration = 2 * time.Hour
		r.Reason = "changed"
		r.BreakGlass = true
		r.Rule = "break-glass"
		r.ApprovalsNeeded = 1
		r.ApproverGroups = []string{"security"}
		r.CreatedAt = epoch().Add(-time.Hour)
		r.PendingUntil = epoch().Add(2 * time.Hour)
		r.DecidedAt = epoch().Add(3 * time.Hour)
		r.GrantID = latch.NewGrantID()
		r.Note = "a note"
		r = mustUpdateRequest(t, s, r)
		if r.Version != 2 {
			t.Fatalf("after one update Version = %d, want 2", r.Version)
		}

		// And back to zero values.
		r.Requester.Groups, r.Target.Tags, r.ApproverGroups = nil, nil, nil
		r.Source, r.Duration, r.BreakGlass, r.ApprovalsNeeded = netip.Prefix{}, 0, false, 0
		r.DecidedAt, r.PendingUntil, r.GrantID, r.Note = time.Time{}, time.Time{}, "", ""
		r = mustUpdateRequest(t, s, r)
		if r.Version != 3 {
			t.Fatalf("after two updates Version = %d, want 3", r.Version)
		}
	})

	t.Run("AppendsReviewsInOrder", func(t *testing.T) {
		s := open(t)
		r := NewRequest(epoch())
		r.ApprovalsNeeded = 3
		r = mustCreateRequest(t, s, r)
		bob, carol, dave := reviewer("bob@example.com", "sre"), reviewer("carol@example.com", "oncall"),
			reviewer("dave@example.com", "sre", "oncall")

		if err := r.Review(bob, true, "ok", epoch().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		r = mustUpdateRequest(t, s, r)
		// Two at once, and a write that adds none.
		if err := r.Review(carol, true, "", epoch().Add(2*time.Minute)); err != nil {
			t.Fatal(err)
		}
		if err := r.Review(dave, true, "fine by me", epoch().Add(3*time.Minute)); err != nil {
			t.Fatal(err)
		}
		r = mustUpdateRequest(t, s, r)
		r.State, r.GrantID = latch.RequestActive, latch.NewGrantID()
		r = mustUpdateRequest(t, s, r)

		var by []string
		for _, rv := range r.Reviews {
			by = append(by, rv.By.Subject)
		}
		if want := []string{"bob@example.com", "carol@example.com", "dave@example.com"}; !slices.Equal(by, want) {
			t.Fatalf("reviews by %v, want %v", by, want)
		}
		if r.State != latch.RequestActive || r.Version != 4 {
			t.Fatalf("State = %s, Version = %d; want active at 4", r.State, r.Version)
		}
	})

	t.Run("RefusesRewritingReviewsAndChangesNothing", func(t *testing.T) {
		s := open(t)
		r := fullRequest(epoch())
		r.State = latch.RequestPending
		r = mustCreateRequest(t, s, r)
		for name, rewrite := range map[string]func(rvs []latch.Review) []latch.Review{
			"dropped":   func(rvs []latch.Review) []latch.Review { return rvs[1:] },
			"all gone":  func([]latch.Review) []latch.Review { return nil },
			"reordered": func(rvs []latch.Review) []latch.Review { return []latch.Review{rvs[1], rvs[0]} },
			"reason":    func(rvs []latch.Review) []latch.Review { rvs[0].Reason = "edited"; return rvs },
			"verdict":   func(rvs []latch.Review) []latch.Review { rvs[1].Approve = false; return rvs },
			"reviewer":  func(rvs []latch.Review) []latch.Review { rvs[0].By.Subject = "eve@example.com"; return rvs },
			"groups":    func(rvs []latch.Review) []latch.Review { rvs[0].By.Groups = []string{"admin"}; return rvs },
			"time":      func(rvs []latch.Review) []latch.Review { rvs[1].At = rvs[1].At.Add(time.Hour); return rvs },
			"changed and one added": func(rvs []latch.Review) []latch.Review {
				rvs[0].Reason = "edited"
				return append(rvs, latch.Review{By: reviewer("dave@example.com", "sre"), Approve: true, At: epoch()})
			},
		} {
			bad := r
			bad.Reviews = rewrite(slices.Clone(r.Reviews))
			bad.State = latch.RequestDenied
			_, err := s.UpdateRequest(t.Context(), bad)
			wantCode(t, "UpdateRequest with reviews "+name, err, latch.EINVALID)
			mustGetRequest(t, s, r)
		}
	})

	t.Run("StaleVersionConflictsAndChangesNothing", func(t *testing.T) {
		s := open(t)
		stale := mustCreateRequest(t, s, NewRequest(epoch()))
		fresh := stale
		if err := fresh.Review(reviewer("bob@example.com", "sre"), true, "", epoch().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		fresh = mustUpdateRequest(t, s, fresh)

		if err := stale.Review(reviewer("carol@example.com", "sre"), false, "not now", epoch().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		_, err := s.UpdateRequest(t.Context(), stale)
		wantCode(t, "UpdateRequest with a stale version", err, latch.ECONFLICT)
		mustGetRequest(t, s, fresh)
	})

	t.Run("FutureVersionConflicts", func(t *testing.T) {
		s := open(t)
		r := mustCreateRequest(t, s, NewRequest(epoch()))
		r.Version = 5
		_, err := s.UpdateRequest(t.Context(), r)
		wantCode(t, "UpdateRequest with a version never stored", err, latch.ECONFLICT)
	})

	t.Run("UnknownIDNotFound", func(t *testing.T) {
		s := open(t)
		r := NewRequest(epoch())
		r.Version = 1
		_, err := s.UpdateRequest(t.Context(), r)
		wantCode(t, "UpdateRequest of an unknown ID", err, latch.ENOTFOUND)
		_, err = s.Request(t.Context(), r.ID)
		wantCode(t, "Request after UpdateRequest of an unknown ID", err, latch.ENOTFOUND)
	})

	t.Run("OneOfRacingReviewsWins", func(t *testing.T) {
		s := open(t)
		r := mustCreateRequest(t, s, NewRequest(epoch()))
		const n = 16
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				mine := r
				mine.Reviews = slices.Clone(r.Reviews)
				by := reviewer(fmt.Sprintf("reviewer%d@example.com", i), "sre")
				if errs[i] = mine.Review(by, true, "", epoch().Add(time.Minute)); errs[i] == nil {
					_, errs[i] = s.UpdateRequest(t.Context(), mine)
				}
			})
		}
		wg.Wait()
		winner := OneWins(t, "reviewer", errs)
		got, err := s.Request(t.Context(), r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("reviewer%d@example.com", winner); len(got.Reviews) != 1 || got.Reviews[0].By.Subject != want {
			t.Fatalf("Reviews = %+v, want only %s's", got.Reviews, want)
		}
	})
}

func testRequests(t *testing.T, open func(t *testing.T) latch.Store) {
	t.Run("AllNewestFirstThenByIDDescending", func(t *testing.T) {
		s := open(t)
		old := mustCreateRequest(t, s, withRequestID(NewRequest(epoch()), 'f'))
		tieLow := mustCreateRequest(t, s, withRequestID(NewRequest(epoch().Add(time.Minute)), 'a'))
		newest := mustCreateRequest(t, s, withRequestID(NewRequest(epoch().Add(time.Hour)), '0'))
		tieHigh := mustCreateRequest(t, s, withRequestID(NewRequest(epoch().Add(time.Minute)), 'b'))
		mustListRequests(t, s, latch.RequestFilter{}, newest, tieHigh, tieLow, old)
	})

	t.Run("EmptyStoreListsNothing", func(t *testing.T) {
		s := open(t)
		mustListRequests(t, s, latch.RequestFilter{})
	})

	t.Run("ListsEachRequestWithItsOwnReviews", func(t *testing.T) {
		s := open(t)
		a := fullRequest(epoch())
		b := NewRequest(epoch().Add(time.Minute)) // no reviews, between two with
		c := fullRequest(epoch().Add(2 * time.Minute))
		c.Reviews = append(c.Reviews, latch.Review{By: reviewer("dave@example.com"), Approve: true,
			At: epoch().Add(3 * time.Minute)})
		c.Reviews[0].Reason = "c's"
		a, b, c = mustCreateRequest(t, s, a), mustCreateRequest(t, s, b), mustCreateRequest(t, s, c)
		mustListRequests(t, s, latch.RequestFilter{}, c, b, a)
		mustListRequests(t, s, latch.RequestFilter{Limit: 2}, c, b)
	})

	t.Run("ByStates", func(t *testing.T) {
		s := open(t)
		byState := map[latch.RequestState]latch.Request{}
		for i, st := range []latch.RequestState{latch.RequestPending, latch.RequestApproved, latch.RequestActive,
			latch.RequestDenied, latch.RequestWithdrawn, latch.RequestTimedOut, latch.RequestFailed} {
			r := NewRequest(epoch().Add(time.Duration(i) * time.Minute))
			r.State = st
			byState[st] = mustCreateRequest(t, s, r)
		}
		mustListRequests(t, s, latch.RequestFilter{States: []latch.RequestState{latch.RequestPending}},
			byState[latch.RequestPending])
		mustListRequests(t, s, latch.RequestFilter{States: []latch.RequestState{latch.RequestTimedOut,
			latch.RequestPending, latch.RequestApproved}},
			byState[latch.RequestTimedOut], byState[latch.RequestApproved], byState[latch.RequestPending])
	})

	t.Run("ByRequesterExactSubject", func(t *testing.T) {
		s := open(t)
		mk := func(i int, subject, issuer string) latch.Request {
			r := NewRequest(epoch().Add(time.Duration(i) * time.Minute))
			r.Requester.Subject, r.Requester.Issuer = subject, issuer
			return mustCreateRequest(t, s, r)
		}
		a1 := mk(0, "alice@example.com", "https://idp.example.com")
		mk(1, "bob@example.com", "https://idp.example.com")
		a2 := mk(2, "alice@example.com", "https://other.example.com") // the subject is what is matched
		mk(3, "Alice@example.com", "https://idp.example.com")         // exactly
		mk(4, "alice@example.co", "https://idp.example.com")
		mustListRequests(t, s, latch.RequestFilter{Requester: "alice@example.com"}, a2, a1)
		mustListRequests(t, s, latch.RequestFilter{Requester: "carol@example.com"})
	})

	t.Run("ByGrantID", func(t *testing.T) {
		s := open(t)
		mk := func(i int, g latch.GrantID) latch.Request {
			r := NewRequest(epoch().Add(time.Duration(i) * time.Minute))
			r.GrantID = g
			return mustCreateRequest(t, s, r)
		}
		opened := mk(0, "g-00000000000000a1")
		mk(1, "g-00000000000000a2")
		mk(2, "")
		mustListRequests(t, s, latch.RequestFilter{GrantID: "g-00000000000000a1"}, opened)
		mustListRequests(t, s, latch.RequestFilter{GrantID: "g-00000000000000ff"})
	})

	t.Run("LimitKeepsTheNewest", func(t *testing.T) {
		s := open(t)
		var rs []latch.Request
		for i := range 5 {
			rs = append(rs, mustCreateRequest(t, s, NewRequest(epoch().Add(time.Duration(i)*time.Minute))))
		}
		slices.Reverse(rs)
		mustListRequests(t, s, latch.RequestFilter{Limit: 2}, rs[:2]...)
		mustListRequests(t, s, latch.RequestFilter{Limit: 5}, rs...)
		mustListRequests(t, s, latch.RequestFilter{Limit: 50}, rs...)
	})

	t.Run("FiltersCombine", func(t *testing.T) {
		s := open(t)
		older := mustCreateRequest(t, s, NewRequest(epoch()))
		want := mustCreateRequest(t, s, NewRequest(epoch().Add(time.Minute)))
		otherState := NewRequest(epoch().Add(2 * time.Minute))
		otherState.State = latch.RequestDenied
		mustCreateRequest(t, s, otherState)
		otherRequester := NewRequest(epoch().Add(3 * time.Minute))
		otherRequester.Requester.Subject = "bob@example.com"
		mustCreateRequest(t, s, otherRequester)

		f := latch.RequestFilter{States: []latch.RequestState{latch.RequestPending}, Requester: "alice@example.com"}
		mustListRequests(t, s, f, want, older)
		f.Limit = 1
		mustListRequests(t, s, f, want)
	})

	t.Run("SeesUpdates", func(t *testing.T) {
		s := open(t)
		r := mustCreateRequest(t, s, NewRequest(epoch()))
		if err := r.Review(reviewer("bob@example.com", "sre"), false, "no ticket", epoch().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		r = mustUpdateRequest(t, s, r)
		mustListRequests(t, s, latch.RequestFilter{States: []latch.RequestState{latch.RequestPending}})
		mustListRequests(t, s, latch.RequestFilter{States: []latch.RequestState{latch.RequestDenied}}, r)
	})
}

func testRequestChanged(t *testing.T, open func(t *testing.T) latch.Store) {
	t.Run("OpenAfterReads", func(t *testing.T) {
		s := open(t)
		ch := s.Changed()
		_, _ = s.Request(t.Context(), latch.NewRequestID())
		_, _ = s.Requests(t.Context(), latch.RequestFilter{})
		if isClosed(ch) {
			t.Fatal("Changed is closed after reads only")
		}
	})

	t.Run("ClosedAfterCreate", func(t *testing.T) {
		s := open(t)
		ch := s.Changed()
		mustCreateRequest(t, s, NewRequest(epoch()))
		if !isClosed(ch) {
			t.Fatal("Changed is still open after CreateRequest returned")
		}
		if isClosed(s.Changed()) {
			t.Fatal("Changed after CreateRequest returned a closed channel; want a fresh one")
		}
	})

	t.Run("ClosedAfterUpdate", func(t *testing.T) {
		s := open(t)
		r := mustCreateRequest(t, s, NewRequest(epoch()))
		ch := s.Changed()
		if isClosed(ch) {
			t.Fatal("Changed is closed before the update")
		}
		if err := r.Review(reviewer("bob@example.com", "sre"), true, "", epoch().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		r = mustUpdateRequest(t, s, r)
		if !isClosed(ch) {
			t.Fatal("Changed is still open after UpdateRequest returned")
		}
		ch = s.Changed()
		if isClosed(ch) {
			t.Fatal("Changed after UpdateRequest returned a closed channel; want a fresh one")
		}
		r.Note = "noted"
		mustUpdateRequest(t, s, r)
		if !isClosed(ch) {
			t.Fatal("the fresh channel is still open after a second UpdateRequest")
		}
	})
}
