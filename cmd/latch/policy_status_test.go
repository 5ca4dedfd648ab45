package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latchdev/latch/internal/accesstest"
)

func TestPolicyHolderReportsLoadsAndFailedReloads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(path, []byte(accesstest.Policy), 0o600); err != nil {
		t.Fatal(err)
	}
	h := &policyHolder{}
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	if _, err := h.load(path, t0, nil); err != nil {
		t.Fatal(err)
	}
	st := h.PolicyStatus()
	if st.Path != path || !st.LoadedAt.Equal(t0) || st.Rules != 3 || len(st.SHA256) != 64 || st.LastError != "" {
		t.Fatalf("status after the first load = %+v", st)
	}
	if err := os.WriteFile(path, []byte("version: 1\nrules: [{name: x}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := h.load(path, t0.Add(time.Hour), nil); err == nil {
		t.Fatal("a bad policy loaded")
	}
	got := h.PolicyStatus()
	if h.Policy() == nil || len(h.Policy().Rules()) != 3 || got.SHA256 != st.SHA256 || !got.LoadedAt.Equal(t0) ||
		!strings.Contains(got.LastError, "policy.yaml") || !got.LastErrorAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("status after a bad reload = %+v; want the old policy in force and the error", got)
	}
}
