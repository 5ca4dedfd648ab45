package datachannel

import (
	"os/exec"
	"strings"
	"testing"
)

// Outside its tests the data channel uses the standard library, a
// WebSocket server, smux (the multiplexer the plugin speaks) and a pty
// for the shell: no SDK, and none of the plugin's own packages.
func TestDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	allowed := map[string]bool{
		"github.com/latchdev/latch/ec2sim/datachannel": true,
		"github.com/gorilla/websocket":                 true,
		"github.com/xtaci/smux":                        true,
		"github.com/creack/pty":                        true,
	}
	for _, dep := range strings.Fields(string(out)) {
		if !allowed[dep] {
			t.Errorf("ec2sim/datachannel imports %s", dep)
		}
	}
}
