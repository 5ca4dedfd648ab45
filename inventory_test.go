package latch_test

import (
	"slices"
	"testing"

	"github.com/latchdev/latch"
)

func TestManagedGroups(t *testing.T) {
	tagged := map[string]string{latch.TagManaged: "true"}
	a := latch.Group{ID: "sg-0000000000000001", Tags: tagged}
	b := latch.Group{ID: "sg-0000000000000003", Tags: tagged}
	other := latch.Group{ID: "sg-0000000000000002", Tags: map[string]string{latch.TagManaged: "yes"}}
	tests := []struct {
		name   string
		groups []latch.Group
		want   []latch.GroupID // ManagedGroups, in order; ManagedGroup is the first
		code   string          // ManagedGroup's error
	}{
		{"exactly one", []latch.Group{other, a}, []latch.GroupID{a.ID}, ""},
		{"none", []latch.Group{other}, nil, latch.ECONFLICT},
		// Several are allowed, in the order of their IDs whatever order
		// EC2 lists them in, so every reader opens the same one first.
		{"several, by ID", []latch.Group{b, other, a}, []latch.GroupID{a.ID, b.ID}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := latch.Instance{ID: "i-00000001", Groups: tt.groups}
			var got []latch.GroupID
			for _, g := range in.ManagedGroups() {
				got = append(got, g.ID)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("ManagedGroups() = %v, want %v", got, tt.want)
			}
			g, err := in.ManagedGroup()
			if latch.ErrorCode(err) != tt.code || (err == nil && g.ID != tt.want[0]) {
				t.Fatalf("ManagedGroup() = %s, %v; want the first, code %q", g.ID, err, tt.code)
			}
		})
	}
}
