package ec2sim_test

import (
	"os/exec"
	"strings"
	"testing"
)

// The simulator doubles AWS, not latch: outside its tests it may use the
// standard library and the YAML parser only. Importing the SDK would let
// it share the SDK's mistakes instead of catching them.
func TestDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	// The data channel speaks Session Manager's WebSocket protocol with
	// the libraries the real plugin and agent use.
	allowed := map[string]bool{"github.com/latchdev/latch/ec2sim": true, "gopkg.in/yaml.v3": true,
		"github.com/latchdev/latch/ec2sim/datachannel": true, "github.com/gorilla/websocket": true,
		"github.com/xtaci/smux": true, "github.com/creack/pty": true}
	for _, dep := range strings.Fields(string(out)) {
		if !allowed[dep] {
			t.Errorf("ec2sim imports %s; it may use only the standard library, gopkg.in/yaml.v3 and its data channel's libraries", dep)
		}
	}
}
