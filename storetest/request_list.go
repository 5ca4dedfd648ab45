package storetest

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latchdev/latch"
)

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

	t.Run("ByRequesterKey", func(t *testing.T) {
		s := open(t)
		mk := func(i int, kind latch.IdentityKind, subject, issuer string) latch.Request {
			r := NewRequest(epoch().Add(time.Duration(i) * time.Minute))
			r.Requester.Kind, r.Requester.Subject, r.Requester.Issuer = kind, subject, issuer
			return mustCreateRequest(t, s, r)
		}
		alice := latch.Identity{Kind: latch.KindOIDC, Subject: "u-alice", Issuer: "https://idp.example.com"}
		a1 := mk(0, latch.KindOIDC, "u-alice", "https://idp.example.com")
		mk(1, latch.KindOIDC, "u-bob", "https://idp.example.com")
		mk(2, latch.KindOIDC, "u-alice", "https://other.example.com")     // another issuer's u-alice is someone else
		mk(3, latch.KindLocal, "u-alice", "https://idp.example.com")      // and so is another kind's
		a2 := mk(4, latch.KindOIDC, "U-Alice", "https://idp.example.com") // case does not make another person
		mk(5, latch.KindOIDC, "u-alic", "https://idp.example.com")
		mustListRequests(t, s, latch.RequestFilter{Requesters: []string{alice.Key()}}, a2, a1)
		mustListRequests(t, s, latch.RequestFilter{Requesters: []string{"oidc|https://idp.example.com|u-carol"}})
	})

	t.Run("VisibleTo", func(t *testing.T) {
		s := open(t)
		mk := func(i int, requester string, approvers latch.Selector) latch.Request {
			r := NewRequest(epoch().Add(time.Duration(i) * time.Minute))
			r.Requester.Subject, r.Approvers = requester, approvers
			return mustCreateRequest(t, s, r)
		}
		key := func(sub string) string {
			return latch.Identity{Kind: latch.KindOIDC, Subject: sub, Issuer: "https://idp.example.com"}.Key()
		}
		own := mk(0, "u-alice", latch.Selector{Groups: []string{"sre"}})
		bySRE := mk(1, "u-bob", latch.Selector{Groups: []string{"sre"}})
		byUser := mk(2, "u-bob", latch.Selector{Users: []string{"Alice@Example.com"}})
		byRole := mk(3, "u-bob", latch.Selector{AWSPrincipals: []string{"arn:aws:sts::111122223333:assumed-role/approver/*"}})
		mk(4, "u-bob", latch.Selector{Groups: []string{"security"}, Users: []string{"carol@example.com"},
			AWSPrincipals: []string{"arn:aws:iam::111122223333:user/carol"}})

		mustListRequests(t, s, latch.RequestFilter{VisibleTo: &latch.Viewer{Keys: []string{key("u-alice")}}}, own)
		mustListRequests(t, s, latch.RequestFilter{VisibleTo: &latch.Viewer{Groups: []string{"sre", "dev"}}}, bySRE, own)
		mustListRequests(t, s, latch.RequestFilter{VisibleTo: &latch.Viewer{Users: []string{"alice@example.com"}}}, byUser)
		mustListRequests(t, s, latch.RequestFilter{VisibleTo: &latch.Viewer{Principal: func(p string) bool {
			return latch.Glob(p, "arn:aws:sts::111122223333:assumed-role/approver/erin")
		}}}, byRole)
		mustListRequests(t, s, latch.RequestFilter{VisibleTo: &latch.Viewer{Keys: []string{key("u-dave")}, Groups: []string{"dev"},
			Users: []string{"dave@example.com", "u-dave"}}})
		mustListRequests(t, s, latch.RequestFilter{VisibleTo: &latch.Viewer{}})
		// With other filters and a page.
		mustListRequests(t, s, latch.RequestFilter{Limit: 1, VisibleTo: &latch.Viewer{Keys: []string{key("u-alice")},
			Groups: []string{"sre"}, Users: []string{"alice@example.com"}}}, byUser)
	})

	t.Run("PagesWithBefore", func(t *testing.T) {
		s := open(t)
		var rs []latch.Request
		for i := range 5 {
			rs = append(rs, mustCreateRequest(t, s, NewRequest(epoch().Add(time.Duration(i/2)*time.Minute)))) // pairs share a time
		}
		slices.SortFunc(rs, func(a, b latch.Request) int {
			if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
				return c
			}
			return strings.Compare(string(b.ID), string(a.ID))
		})
		var got []latch.Request
		var before *latch.RequestCursor
		for range 5 {
			page, err := s.Requests(t.Context(), latch.RequestFilter{Limit: 2, Before: before})
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			got = append(got, page...)
			last := page[len(page)-1]
			before = &latch.RequestCursor{CreatedAt: last.CreatedAt, ID: last.ID}
		}
		if len(got) != len(rs) {
			t.Fatalf("paged through %d requests, want %d", len(got), len(rs))
		}
		for i := range rs {
			if got[i].ID != rs[i].ID {
				t.Fatalf("page order: %s at %d, want %s", got[i].ID, i, rs[i].ID)
			}
		}
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

		f := latch.RequestFilter{States: []latch.RequestState{latch.RequestPending}, Requesters: []string{NewRequest(epoch()).Requester.Key()}}
		mustListRequests(t, s, f, want, older)
		f.Limit = 1
		mustListRequests(t, s, f, want)
	})

	t.Run("SeesUpdates", func(t *testing.T) {
		s := open(t)
		r := mustCreateRequest(t, s, NewRequest(epoch()))
		if err := r.Review(reviewer("bob@example.com", "sre"), false, "no ticket", epoch().Add(time.Minute), latch.NoPeople{}); err != nil {
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
		if err := r.Review(reviewer("bob@example.com", "sre"), true, "", epoch().Add(time.Minute), latch.NoPeople{}); err != nil {
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
