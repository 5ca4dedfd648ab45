package latch_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencyRules keeps the layering of docs/ARCHITECTURE.md: the root
// imports only the standard library, the engine packages only the root, the
// simulator nothing of latch or the SDK, and the domain packages the CLI
// wires (reconcile, sshclient) neither the SDK nor the CLI's libraries.
func TestDependencyRules(t *testing.T) {
	const mod = "github.com/latchdev/latch"
	rules := []struct {
		pkg     string
		allowed []string // prefixes of non-standard-library imports allowed
	}{
		{pkg: mod, allowed: nil},
		{pkg: mod + "/broker", allowed: []string{mod, mod + "/policy", "gopkg.in/yaml.v3"}},
		{pkg: mod + "/policy", allowed: []string{mod, "gopkg.in/yaml.v3"}},
		{pkg: mod + "/revoker", allowed: []string{mod}},
		{pkg: mod + "/notify", allowed: []string{mod}},
		{pkg: mod + "/webhook", allowed: []string{mod}},
		{pkg: mod + "/slack", allowed: []string{mod, "github.com/slack-go/slack", "github.com/slack-go/slack/", "github.com/gorilla/websocket"}},
		{pkg: mod + "/ec2sim", allowed: []string{"gopkg.in/yaml.v3", mod + "/ec2sim/datachannel", "github.com/gorilla/websocket", "github.com/xtaci/smux", "github.com/creack/pty"}},
		{pkg: mod + "/aws", allowed: []string{mod, "github.com/aws/", "golang.org/x/crypto/", "golang.org/x/time/rate", "golang.org/x/sync/errgroup"}},
		// leader elects and fences through the root's ports alone.
		{pkg: mod + "/leader", allowed: []string{mod}},
		{pkg: mod + "/mock", allowed: []string{mod}},
		{pkg: mod + "/iampolicy", allowed: []string{mod}},
		// scan judges what was read: no SDK, no calls (its tests use a JSON-schema validator).
		{pkg: mod + "/scan", allowed: []string{mod}},
		{pkg: mod + "/sshca", allowed: []string{mod, mod + "/internal/atomicfile", "golang.org/x/crypto/", "golang.org/x/sys/"}},
		{pkg: mod + "/lambda", allowed: []string{mod, mod + "/broker", mod + "/policy", mod + "/awsauth", mod + "/http",
			"github.com/aws/", "gopkg.in/yaml.v3", "golang.org/x/time/"}},
		{pkg: mod + "/metrics", allowed: []string{mod, "github.com/prometheus/", "github.com/aws/", "github.com/beorn7/perks/",
			"github.com/cespare/xxhash/", "github.com/munnerz/goautoneg", "github.com/pandatix/go-abnf", "go.yaml.in/", "google.golang.org/protobuf/", "golang.org/x/sys/"}},
		// reconcile is pure: no SDK, no store driver, no CLI; the engine for broker's notes and audit line.
		{pkg: mod + "/reconcile", allowed: []string{mod, mod + "/broker", mod + "/policy", "gopkg.in/yaml.v3"}},
		// sshclient runs the system ssh: no SDK, no HTTP client, no broker.
		{pkg: mod + "/sshclient", allowed: []string{mod, mod + "/internal/atomicfile", "golang.org/x/crypto/"}},
		// ssmclient runs AWS's session-manager-plugin: no SDK, no broker.
		{pkg: mod + "/ssmclient", allowed: []string{mod}},
		// ipecho asks one web service a question: the standard library is enough.
		{pkg: mod + "/ipecho", allowed: []string{mod}},
		// adopt plans, applies and undoes through the root's ports alone.
		{pkg: mod + "/adopt", allowed: []string{mod}},
		{pkg: mod + "/postgres", allowed: []string{mod, mod + "/internal/migrations", "github.com/jackc/", "golang.org/x/text/", "golang.org/x/sync/semaphore"}},
		{pkg: mod + "/sqlite", allowed: []string{mod, mod + "/internal/migrations", "modernc.org/", "github.com/dustin/go-humanize", "github.com/google/uuid",
			"github.com/mattn/go-isatty", "github.com/ncruces/go-strftime", "github.com/remyoudompheng/bigfft", "golang.org/x/sys/", "golang.org/x/exp/"}},
	}
	for _, r := range rules {
		out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", r.pkg).Output()
		if err != nil {
			t.Fatalf("go list %s: %v", r.pkg, err)
		}
		for _, dep := range strings.Fields(string(out)) {
			if dep == r.pkg || allowed(dep, r.allowed) {
				continue
			}
			t.Errorf("%s depends on %s, which its layer does not allow", r.pkg, dep)
		}
	}
}

func allowed(dep string, prefixes []string) bool {
	for _, p := range prefixes {
		// A prefix ending in "/" allows a whole tree; anything else, one package.
		if dep == p || (strings.HasSuffix(p, "/") && strings.HasPrefix(dep, p)) {
			return true
		}
	}
	return false
}

// TestPackagesAreDocumented checks that every package says what it is for.
func TestPackagesAreDocumented(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}\t{{.Doc}}", "./...").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, doc, _ := strings.Cut(line, "\t")
		if strings.TrimSpace(doc) == "" {
			t.Errorf("package %s has no doc comment", pkg)
		}
	}
}
