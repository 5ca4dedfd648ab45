package storetest

import (
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/latchdev/latch"
)

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
			Approvers: latch.Selector{Groups: []string{}}, Reviews: []latch.Review{}}
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
		r.Approvers = latch.Selector{Groups: []string{"security"}, Users: []string{"Alice@Example.com"}, AWSPrincipals: []string{"arn:aws:iam::111122223333:user/*"}}
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
		r.Requester.Groups, r.Target.Tags, r.Approvers = nil, nil, latch.Selector{}
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

		if err := r.Review(bob, true, "ok", epoch().Add(time.Minute), latch.NoPeople{}); err != nil {
			t.Fatal(err)
		}
		r = mustUpdateRequest(t, s, r)
		// Two at once, and a write that adds none.
		if err := r.Review(carol, true, "", epoch().Add(2*time.Minute), latch.NoPeople{}); err != nil {
			t.Fatal(err)
		}
		if err := r.Review(dave, true, "fine by me", epoch().Add(3*time.Minute), latch.NoPeople{}); err != nil {
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
		if err := fresh.Review(reviewer("bob@example.com", "sre"), true, "", epoch().Add(time.Minute), latch.NoPeople{}); err != nil {
			t.Fatal(err)
		}
		fresh = mustUpdateRequest(t, s, fresh)

		if err := stale.Review(reviewer("carol@example.com", "sre"), false, "not now", epoch().Add(time.Minute), latch.NoPeople{}); err != nil {
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
				if errs[i] = mine.Review(by, true, "", epoch().Add(time.Minute), latch.NoPeople{}); errs[i] == nil {
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
