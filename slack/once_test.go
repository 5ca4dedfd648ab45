package slack

import (
	"testing"
	"time"

	"github.com/latchdev/latch/mock"
)

// memOnce forgets a key once its time has passed by the clock, and, full
// of live keys, refuses new ones rather than forget one.
func TestMemOnce(t *testing.T) {
	c := mock.NewClock(time.Unix(1700000000, 0))
	m := newMemOnce(c, 2)
	use := func(key string, until time.Duration, want bool) {
		t.Helper()
		fresh, err := m.UseOnce(t.Context(), key, c.Now().Add(until))
		if fresh != want {
			t.Fatalf("UseOnce(%q) = %v, %v; want %v", key, fresh, err, want)
		}
	}
	use("a", time.Minute, true)
	use("a", time.Minute, false)
	use("b", 5*time.Minute, true)
	use("c", time.Minute, false) // full of live keys
	c.Advance(2 * time.Minute)   // a expires
	use("a", time.Minute, true)
	use("b", time.Minute, false)
	use("c", time.Minute, false) // full again: a and b are live
}
