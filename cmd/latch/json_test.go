package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// The --json conventions (docs/JSON.md), checked on what a command printed.
var (
	snakeKey   = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	goDuration = regexp.MustCompile(`^-?([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`)
	protoPorts = regexp.MustCompile(`(?i)^(tcp|udp|icmp|icmpv6)\s`) // "tcp 22", "icmp all types"
	timeKey    = regexp.MustCompile(`(^|_)(at|until|before)$`)
)

// jsonStyleErrors returns how stdout, printed by a command run with --json,
// breaks the conventions: every line exactly one JSON object; keys in
// snake_case; a person (requester, by) an object with key and display;
// no Go duration strings, durations a number of seconds in a
// key ending _seconds; protocol and ports never one string, nor a "ports"
// string (protocol, from_port, to_port); times RFC 3339 in UTC.
func jsonStyleErrors(stdout string) []string {
	var errs []string
	if stdout != "" && !strings.HasSuffix(stdout, "\n") {
		errs = append(errs, "the last line does not end in a newline")
	}
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	if stdout == "" {
		lines = nil
	}
	for n, line := range lines {
		dec := json.NewDecoder(strings.NewReader(line))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			errs = append(errs, fmt.Sprintf("line %d is not a whole JSON value: %v: %.80s", n+1, err, line))
			return append(errs, streamStyleErrors(stdout)...)
		}
		if _, ok := v.(map[string]any); !ok {
			errs = append(errs, fmt.Sprintf("line %d is not one object: %.80s", n+1, line))
		}
		if dec.More() || strings.TrimSpace(line[dec.InputOffset():]) != "" {
			errs = append(errs, fmt.Sprintf("line %d holds more than one value: %.80s", n+1, line))
		}
		walkJSON(fmt.Sprintf("line %d", n+1), "", v, &errs)
	}
	return errs
}

// streamStyleErrors checks the values of output that is not one a line
// (pretty-printed, say), so that its keys and values are checked too.
func streamStyleErrors(stdout string) []string {
	var errs []string
	dec := json.NewDecoder(strings.NewReader(stdout))
	dec.UseNumber()
	for n := 1; dec.More(); n++ {
		var v any
		if err := dec.Decode(&v); err != nil {
			return append(errs, fmt.Sprintf("not a JSON stream: %v", err))
		}
		walkJSON(fmt.Sprintf("value %d", n), "", v, &errs)
	}
	return errs
}

func walkJSON(path, key string, v any, errs *[]string) {
	bad := func(format string, args ...any) { *errs = append(*errs, path+": "+fmt.Sprintf(format, args...)) }
	switch v := v.(type) {
	case map[string]any:
		for k, child := range v {
			if !snakeKey.MatchString(k) {
				bad("key %q is not snake_case", k)
			}
			if k == "ports" || k == "port" {
				bad("%q: protocol and ports are protocol, from_port and to_port", k)
			}
			if strings.Contains(k, "duration") && !strings.HasSuffix(k, "_seconds") {
				bad("%q: a duration is a number of seconds named …_seconds", k)
			}
			if k == "requester" || k == "by" {
				if m, ok := child.(map[string]any); !ok || m["key"] == nil || m["display"] == nil {
					bad("%q: a person is one shape, an object with key and display", k)
				}
			}
			if k == "tags" {
				// AWS's tags: their keys are AWS's data (latch:managed,
				// Name), not ours.
				continue
			}
			if k == "details" {
				// An audit entry's details are the strings it recorded and
				// signed, printed as recorded: only their keys are ours.
				if m, ok := child.(map[string]any); ok {
					for dk := range m {
						if !snakeKey.MatchString(dk) {
							bad("details key %q is not snake_case", dk)
						}
					}
				}
				continue
			}
			walkJSON(path+"."+k, k, child, errs)
		}
	case []any:
		for i, child := range v {
			walkJSON(fmt.Sprintf("%s[%d]", path, i), key, child, errs)
		}
	case json.Number:
		if timeKey.MatchString(key) {
			bad("a time is an RFC 3339 string, not %s", v)
		}
	case string:
		if goDuration.MatchString(v) {
			bad("%q is a Go duration; want a number of seconds", v)
		}
		if protoPorts.MatchString(v) {
			bad("%q combines protocol and ports", v)
		}
		if strings.HasSuffix(key, "_seconds") {
			bad("%q is a string; want a number of seconds", v)
		}
		if timeKey.MatchString(key) {
			if t, err := time.Parse(time.RFC3339, v); err != nil || !strings.HasSuffix(v, "Z") || t.Location() != time.UTC {
				bad("time %q is not RFC 3339 in UTC", v)
			}
		}
	case bool, nil:
		if strings.HasSuffix(key, "_seconds") {
			bad("%v; want a number of seconds", v)
		}
	}
}

// checkJSONStyle fails t when a command run with --json broke the
// conventions. Every test's --json run is checked (see [world.latchCtx]).
func checkJSONStyle(t *testing.T, args []string, stdout string) {
	t.Helper()
	for _, e := range jsonStyleErrors(stdout) {
		t.Errorf("latch %s: %s", strings.Join(args, " "), e)
	}
}

// wantsJSON reports whether args (or LATCH_JSON) ask for --json.
func wantsJSON(args []string, getenv func(string) string) bool {
	return slices.Contains(args, "--json") || slices.Contains(args, "--json=true") || getenv("LATCH_JSON") == "true"
}

// The checker itself: what the old shapes printed fails it.
func TestJSONStyleCheckerCatchesTheOldShapes(t *testing.T) {
	bad := map[string]string{
		"audit verify problems": `{"problems":[{"Seq":3,"Kind":"removed","Message":"x"}]}` + "\n",
		"sweep ports":           `[{"rule_id":"sgr-1","ports":"tcp 22"}]` + "\n",
		"a wire ports string":   `{"protocol":"tcp","ports":"22"}` + "\n",
		"a duration string":     `{"request":{"duration":"30m0s"}}` + "\n",
		"seconds as a string":   `{"duration_seconds":"1800"}` + "\n",
		"two pretty objects":    "{\n  \"grant_id\": \"g-1\"\n}\n{\n  \"grant_id\": \"g-1\"\n}\n",
		"an array":              `[{"grant_id":"g-1"}]` + "\n",
		"two on a line":         `{"a":1}{"b":2}` + "\n",
		"a local time":          `{"expires_at":"2026-11-23T12:00:00+02:00"}` + "\n",
		"no final newline":      `{"a":1}`,
		"a requester string":    `{"grant_id":"g-1","requester":"alice@example.com"}` + "\n",
	}
	for name, out := range bad {
		if len(jsonStyleErrors(out)) == 0 {
			t.Errorf("%s: %q passes", name, out)
		}
	}
	good := `{"event":"opened","grant":{"grant_id":"g-1","protocol":"icmp","from_port":8,"to_port":-1,"expires_at":"2026-11-23T10:30:00Z","requester":{"key":"k","display":"d"}}}` + "\n" +
		`{"duration_seconds":1800,"details":{"duration":"30m0s","ports":"22"}}` + "\n"
	if errs := jsonStyleErrors(good); len(errs) != 0 {
		t.Errorf("the conventions' own shape fails: %v", errs)
	}
}

// Every direct command with --json, in one world: each line one object in
// the one style.
func TestJSONOneStyleDirect(t *testing.T) {
	w := newWorld(t)
	sg := string(w.group)
	var runs [][]string
	latchJSON := func(args ...string) result {
		t.Helper()
		args = append(args, "--json")
		runs = append(runs, args)
		r := w.latch(t, args...) // checked by latchCtx
		t.Logf("latch %s:\n%s", strings.Join(args, " "), r.stdout)
		if r.stdout == "" {
			t.Errorf("latch %s printed nothing (exit %d): %s", strings.Join(args, " "), r.code, r.stderr)
		}
		return r
	}
	g := grantOut(t, latchJSON("grant", "--sg", sg, "--ip", "203.0.113.7", "--for", "30m", "--reason", "x", "--detach").stdout)
	if g.Protocol != "tcp" || g.FromPort != 22 || g.ToPort != 22 || g.Requester.Display == "" {
		t.Errorf("grant = %+v, want tcp 22 as protocol, from_port, to_port and a requester", g)
	}
	latchJSON("grant", "--sg", sg, "--ip", "203.0.113.8", "--for", "5m", "--reason", "ping", "--protocol", "icmp", "--type", "8", "--detach")
	latchJSON("ls")
	latchJSON("ls", "--all")
	latchJSON("revoke", string(g.ID))
	latchJSON("sweep")
	w.setClock(t, start.Add(5*time.Minute))
	latchJSON("sweep", "--dry-run")
	latchJSON("sweep")

	// Held in the foreground: an opened line, then an ended one.
	done := w.runAsync(t.Context(), t, "grant", "--sg", sg, "--ip", "203.0.113.9", "--for", "1m", "--reason", "hold", "--json")
	w.waitForRules(t, 1)
	w.setClock(t, start.Add(6*time.Minute))
	r := <-done
	t.Logf("latch grant (held) --json:\n%s", r.stdout)
	if n := strings.Count(r.stdout, "\n"); r.code != 0 || n != 2 || !strings.Contains(r.stdout, `"event":"opened"`) || !strings.Contains(r.stdout, `"event":"ended"`) {
		t.Errorf("held grant --json: exit %d, %d lines, want opened then ended:\n%s", r.code, n, r.stdout)
	}

	if r := latchJSON("audit", "ls"); strings.Count(r.stdout, "\n") < 4 {
		t.Errorf("audit ls --json: want one entry a line:\n%s", r.stdout)
	}
	latchJSON("audit", "verify")
	latchJSON("doctor")
	pf := filepath.Join(w.dir, "policy.yaml")
	if err := os.WriteFile(pf, []byte(e2ePolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	fleet := w.env.DemoFleet(t)
	latchJSON("policy", "explain", "--policy", pf, "--as", "arn:aws:sts::123456789012:assumed-role/dev/alice", "--target", fleet.Web1)
	t.Logf("checked: %d commands", len(runs))
}

// The commands that ask a server, with --json: requests, reviews, whoami,
// ls, withdraw, revoke, a grant through the server.
func TestJSONOneStyleServer(t *testing.T) {
	w := startApprovalServer(t)
	latchJSON := func(args ...string) result {
		t.Helper()
		r := w.latch(t, append(args, "--json")...) // checked by latchCtx
		t.Logf("latch %s --json:\n%s", strings.Join(args, " "), r.stdout)
		if r.stdout == "" {
			t.Errorf("latch %s --json printed nothing (exit %d): %s", strings.Join(args, " "), r.code, r.stderr)
		}
		return r
	}
	ask := []string{"request", w.fleet.Web1, "--port", "22", "--for", "20m", "--reason", "deploy"}
	w.as("AKIDAL", "al-secret")
	latchJSON("whoami")
	first := decode[requestOut](t, latchJSON(ask...).stdout).Request
	if first.DurationSeconds != 1200 || first.FromPort != 22 || first.ToPort != 22 || first.Requester.Key == "" || first.Requester.Display == "" {
		t.Errorf("request = %+v, want duration_seconds 1200, tcp 22 and a requester with key and display", first)
	}
	second := decode[requestOut](t, latchJSON(ask...).stdout).Request
	third := decode[requestOut](t, latchJSON(ask...).stdout).Request
	latchJSON("ls")
	latchJSON("withdraw", string(third.ID))

	w.as("AKIDBOBIAM", "bob-iam-secret")
	out := decode[requestOut](t, latchJSON("approve", string(first.ID), "--reason", "ok").stdout)
	if len(out.Request.Reviews) != 1 || out.Request.Reviews[0].By.Key == "" || out.Request.Reviews[0].By.Display == "" {
		t.Errorf("approved request's reviews = %+v, want the reviewer as key and display", out.Request.Reviews)
	}
	latchJSON("deny", string(second.ID), "--reason", "no")
	latchJSON("ls")

	w.as("AKIDAL", "al-secret")
	r := latchJSON("ls")
	l := decode[lsJSON](t, r.stdout)
	if len(l.Grants) != 1 || l.Grants[0].Requester.Key != first.Requester.Key || l.Grants[0].Requester.Display != first.Requester.Display {
		t.Fatalf("ls --json = %s; want the grant, its requester in the request's shape", r.stdout)
	}
	latchJSON("revoke", string(l.Grants[0].ID))
}
