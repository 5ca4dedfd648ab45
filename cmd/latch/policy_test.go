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
