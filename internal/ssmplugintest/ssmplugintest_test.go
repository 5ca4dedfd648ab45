package ssmplugintest

import (
	"os/exec"
	"strings"
	"testing"
)

// The pinned plugin builds and runs: with no arguments it says it is
// installed, and it reports its version.
func TestPathRunsThePlugin(t *testing.T) {
	p := Path(t)
	out, err := exec.Command(p).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "The Session Manager plugin was installed successfully") {
		t.Fatalf("%s: %v\n%s", p, err, out)
	}
	out, err = exec.Command(p, "--version").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) == "" {
		t.Fatalf("%s --version: %v\n%s", p, err, out)
	}
	if again := Path(t); again != p {
		t.Errorf("second Path = %s, first %s", again, p)
	}
}
