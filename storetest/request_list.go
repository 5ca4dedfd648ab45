package storetest

import (
	"slices"
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
