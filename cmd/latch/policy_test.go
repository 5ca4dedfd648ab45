package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPolicyCheck(t *testing.T) {
	w := newWorld(t)
	r := w.latch(t, "policy", "check", "../../policy/testdata/example.yaml")
	if r.code != 0 || !strings.Contains(r.stdout, "ok, 3 rule(s)") || !strings.Contains(r.stdout, "prod-db") {
		t.Fatalf("check example: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	bad := filepath.Join(w.dir, "bad.yaml")
	os.WriteFile(bad, []byte("version: 1\nrules:\n  - name: x\n    targets: {tags: {env: dev}}\n    who: {groups: [dev]}\n    ports: [tcp/22]\n    duration: {default: 30m, max: 3x}\n    approval: auto\n"), 0o600)
	r = w.latch(t, "policy", "check", bad)
	if r.code != exitUsage || !strings.Contains(r.stderr, "bad.yaml:7") || !strings.Contains(r.stderr, "duration.max") {
		t.Fatalf("check bad file: exit %d, %s", r.code, r.stderr)
	}
	lonely := filepath.Join(w.dir, "lonely.yaml")
	os.WriteFile(lonely, []byte("version: 1\nrules:\n  - name: x\n    targets: {tags: {env: dev}}\n    who: {groups: [dev]}\n    ports: [tcp/22]\n"+
		"    duration: {default: 30m, max: 1h}\n    approval: {approvals: 2, from: {users: [alice@example.com]}}\n"), 0o600)
	r = w.latch(t, "policy", "check", lonely)
	if r.code != 0 || !strings.Contains(r.stderr, "lonely.yaml: warning: line 3: rules[\"x\"]: approval needs 2 approval(s) but at most 1 distinct people") {
		t.Fatalf("check a rule nobody could approve: exit %d, %s", r.code, r.stderr)
	}
	if r := w.latch(t, "policy", "check"); r.code != exitUsage {
		t.Errorf("check without a file: exit %d", r.code)
	}
}

func TestPolicyTest(t *testing.T) {
	w := newWorld(t)
	r := w.latch(t, "policy", "test", "../../policy/testdata/example_test.yaml", "--policy", "../../policy/testdata/example.yaml")
	if r.code != 0 || !strings.Contains(r.stdout, "14 passed, 0 failed") {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	failing := filepath.Join(w.dir, "t.yaml")
	os.WriteFile(failing, []byte("tests:\n  - name: stranger gets in\n    who: {user: mallory@example.com}\n    target: {instance: i-0a0b0c0d0e0f00001, tags: {env: dev}}\n    port: 22\n    expect: allowed\n"), 0o600)
	r = w.latch(t, "policy", "test", failing, "--policy", "../../policy/testdata/example.yaml")
	if r.code != exitRuntime || !strings.Contains(r.stdout, "FAIL  stranger gets in") || !strings.Contains(r.stdout, "0 passed, 1 failed") {
		t.Fatalf("failing table: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

func TestPolicyExplainOffline(t *testing.T) {
	w := newWorld(t)
	fleet := w.env.DemoFleet(t)
	r := w.latch(t, "policy", "explain", "--policy", "../../policy/testdata/example.yaml", "--as", "alice@example.com", "--groups", "sre", "--target", fleet.DB1)
	if r.code != 0 || !strings.Contains(r.stdout, "prod-ssh") {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// ssmPolicyFile writes a policy whose one rule gives Session Manager
// port-forward sessions to port 5432 on instance, and nothing else.
func ssmPolicyFile(t *testing.T, dir, instance string) string {
	t.Helper()
	path := filepath.Join(dir, "ssm.yaml")
	if err := os.WriteFile(path, []byte("version: 1\nrules:\n  - name: db-forward\n    targets: {instances: ["+instance+"]}\n"+
		"    who: {groups: [dev]}\n    ssm: {documents: [port-forward], ports: [5432]}\n    duration: {default: 30m, max: 1h}\n    approval: auto\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestPolicyExplainSSM(t *testing.T) {
	w := newWorld(t)
	fleet := w.env.DemoFleet(t)
	pf := ssmPolicyFile(t, w.dir, fleet.DB1)
	explain := func(args ...string) result {
		return w.latch(t, append([]string{"policy", "explain", "--policy", pf, "--as", "alice@example.com", "--groups", "dev", "--target", fleet.DB1}, args...)...)
	}
	if r := explain("--document", "port-forward", "--port", "5432"); r.code != 0 ||
		!strings.Contains(r.stdout, "✓ db-forward: allows a port-forward session to port 5432 for 30m by default") {
		t.Errorf("port-forward to 5432: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := explain("--document", "ssh"); r.code != 0 ||
		!strings.Contains(r.stdout, "- db-forward: skipped: its ssm section does not allow ssh sessions (it allows port-forward)") {
		t.Errorf("ssh: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := explain("--document", "AWS-StartPortForwardingSession", "--port", "5433"); r.code != 0 ||
		!strings.Contains(r.stdout, "skipped: its ssm section does not allow port-forward sessions to port 5433 (it allows ports 5432)") {
		t.Errorf("port-forward to 5433: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, bad := range [][]string{
		{"--document", "port-forward"},
		{"--document", "shell", "--port", "22"},
		{"--document", "rdp"},
		{"--port", "22"},
	} {
		if r := explain(bad...); r.code != exitUsage {
			t.Errorf("%v: exit %d, want %d\n%s%s", bad, r.code, exitUsage, r.stdout, r.stderr)
		}
	}
}

func TestPolicyTestSSM(t *testing.T) {
	w := newWorld(t)
	pf := ssmPolicyFile(t, w.dir, "i-0a0b0c0d0e0f00001")
	tests := filepath.Join(w.dir, "ssm_test.yaml")
	os.WriteFile(tests, []byte("tests:\n  - name: dev forwards to postgres\n    who: {user: alice@example.com, groups: [dev]}\n"+
		"    target: {instance: i-0a0b0c0d0e0f00001}\n    document: port-forward\n    port: 5432\n    expect: allowed\n"+
		"  - name: no shell\n    who: {user: alice@example.com, groups: [dev]}\n    target: {instance: i-0a0b0c0d0e0f00001}\n"+
		"    document: shell\n    expect: denied\n"), 0o600)
	if r := w.latch(t, "policy", "test", tests, "--policy", pf); r.code != 0 || !strings.Contains(r.stdout, "2 passed, 0 failed") {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}
