package leader_test

import (
	"testing"
	"time"

	"github.com/latchdev/latch/internal/pgtest"
	"github.com/latchdev/latch/leader"
	"github.com/latchdev/latch/mock"
)

// A clock that jumps past the lease (a process paused for a minute) ends
// the term; the process then campaigns again and, the lease being free,
// leads again in a new term.
func TestLeaderLeadsAgainAfterAJump(t *testing.T) {
	dsn := pgtest.Start(t)
	clock := mock.NewClock(t0)
	a := leader.New(open(t, dsn, clock), leader.Options{Holder: "a", TTL: ttl, Clock: clock})
	run(t, a, idle)
	waitFor(t, "a to lead", func() bool { return leading(a) })
	first, _ := a.Leading()
	clock.Advance(time.Minute)
	waitFor(t, "a to lead again", func() bool { l, ok := a.Leading(); return ok && l.Until.After(t0.Add(time.Minute)) })
	if l, _ := a.Leading(); l.Token <= first.Token {
		t.Errorf("after its lease lapsed a leads in term %d; want a later one than %d", l.Token, first.Token)
	}
}
