package main

import (
	"bytes"
	"strings"
	"testing"
)

// benchRun runs latch bench with no environment but a temporary HOME.
func benchRun(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	vars := map[string]string{"HOME": t.TempDir()}
	for k, v := range env {
		vars[k] = v
	}
	code := run(t.Context(), append([]string{"bench"}, args...), func(k string) string { return vars[k] }, strings.NewReader(""), &stdout, &stderr)
	if wantsJSON(args, func(string) string { return "" }) {
		checkJSONStyle(t, args, stdout.String())
	}
	return result{code, stdout.String(), stderr.String()}
}

func TestBenchJSON(t *testing.T) {
	args := []string{"--grants", "100", "--groups", "2", "--spread", "2s", "--json"}
	r := benchRun(t, nil, args...)
	if r.code != 0 {
		t.Fatalf("latch bench %v: exit %d\n%s", args, r.code, r.stderr)
	}
	m := decode[map[string]any](t, r.stdout)
	for _, k := range []string{"grants", "groups", "grants_per_s", "burst_revoke_lag_p50_s", "burst_revoke_lag_p99_s",
		"burst_revoke_lag_max_s", "spread_revoke_lag_p50_s", "spread_revoke_lag_p99_s", "spread_revoke_lag_max_s",
		"revoke_calls", "mutating_calls_per_grant", "shared_mutating_calls_per_sharer", "describe_calls_per_sweep",
		"bytes_per_active_grant", "heap_bytes_per_active_grant", "rss_bytes_per_active_grant", "grant_vs_raw_authorize", "db", "targets"} {
		if _, ok := m[k]; !ok {
			t.Errorf("no %q in %s", k, r.stdout)
		}
	}
	if m["grants"] != 100.0 || m["groups"] != 2.0 || m["db"] != "sqlite" || m["spread_window_s"] != 2.0 {
		t.Errorf("grants %v, groups %v, db %v, spread %v; want 100, 2, sqlite, 2", m["grants"], m["groups"], m["db"], m["spread_window_s"])
	}
	targets, _ := m["targets"].(map[string]any)
	for _, k := range []string{"burst_revoke_lag_p99_s", "revoke_calls", "mutating_calls_per_grant", "grant_vs_raw_authorize", "bytes_per_active_grant"} {
		tg, _ := targets[k].(map[string]any)
		if _, ok := tg["met"].(bool); !ok {
			t.Errorf("targets.%s has no met: %v", k, targets[k])
		}
	}
}

// A person at a terminal sees a table, each target with met or missed,
// and the progress line goes to stderr, never into the figures.
func TestBenchTable(t *testing.T) {
	var stdout bytes.Buffer
	var stderr ttyBuffer
	code := run(t.Context(), []string{"bench", "--grants", "20", "--groups", "2", "--spread", "1s"},
		func(k string) string { return map[string]string{"HOME": t.TempDir()}[k] }, strings.NewReader(""), &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{"20 grants over 2 groups", "grants/s", "burst", "spread", "Revoke calls", "Issue 14's targets", "burst p99 revoke lag ≤ 1 s"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(out, "  met  ") && !strings.Contains(out, "  missed  ") {
		t.Errorf("no target says met or missed:\n%s", out)
	}
	if strings.Contains(out, "\r") || !strings.Contains(stderr.String(), "latch bench: open") {
		t.Errorf("progress: stdout %q, stderr %q; want it on stderr only", out, stderr.String())
	}
}

func TestBenchBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--grants", "0"}, "--grants 0"},
		{[]string{"--grants", "-5"}, "--grants -5"},
		{[]string{"--groups", "0"}, "--groups 0"},
		{[]string{"--grants", "10", "--groups", "11"}, "--groups 11: want at most --grants (10)"},
		{[]string{"--spread", "1500ms"}, "--spread 1500ms: want whole seconds"},
		{[]string{"--spread", "0s"}, "--spread"},
		{[]string{"--grants", "lots"}, "--grants"},
		{[]string{"--db", "/nonexistent-dir/bench.db"}, "directory /nonexistent-dir does not exist"},
	} {
		r := benchRun(t, nil, tc.args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, tc.want) || r.stdout != "" {
			t.Errorf("latch bench %v: exit %d, stdout %q, stderr %q; want exit 2 saying %q", tc.args, r.code, r.stdout, r.stderr, tc.want)
		}
	}
}

// LATCH_DB names the database other commands use: bench must not fill it.
func TestBenchIgnoresLatchDB(t *testing.T) {
	r := benchRun(t, map[string]string{"LATCH_DB": "/nonexistent-dir/latch.db"}, "--grants", "10", "--groups", "1", "--spread", "1s", "--json")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if m := decode[map[string]any](t, r.stdout); m["db"] != "sqlite" {
		t.Errorf("db %v", m["db"])
	}
}
