package sshclient_test

import (
	"testing"

	"github.com/latchdev/latch/sshclient"
)

// CheckExecutable once refused any latch with an ancestor directory
// whose name merely starts with "go-build", such as a checkout named
// go-buildkite-plugins or a user's ~/go-builds, though nothing there is
// temporary. `go run` makes go-buildNNN (digits) directories only.
func TestCheckExecutableLooksLikeGoIsNotGo(t *testing.T) {
	for _, exe := range []string{"/home/dev/go-builds/bin/latch", "/opt/go-buildkite-plugins/bin/latch"} {
		if err := sshclient.CheckExecutable(exe, ""); err != nil {
			t.Errorf("CheckExecutable(%q) = %v; want nil: an installed latch", exe, err)
		}
	}
}
