package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"regexp"
	"strings"
	"testing"
)

// The walkthrough: the request waits for the other person's approval, the
// approval opens the rule, and the requester's revoke closes it.
func TestDemoServerWalkthrough(t *testing.T) {
	var stdout, stderr bytes.Buffer
	home := t.TempDir()
	code := run(t.Context(), []string{"demo", "--server"}, func(k string) string { return map[string]string{"HOME": home}[k] },
		strings.NewReader(""), &stdout, &stderr)
	out := stdout.String()
	if code != 0 {
		t.Fatalf("demo --server: exit %d\n%s\n%s", code, out, stderr.String())
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`demo-requester\$ latch request i-\S+ --port 22 .*\n`),
		regexp.MustCompile(`request r-[0-9a-f]+ is pending: it needs 1 approval from arn:aws:iam::123456789012:user/demo-approver; 0 latch rule\(s\) open`),
		regexp.MustCompile(`demo-approver\$ latch approve r-[0-9a-f]+`),
		regexp.MustCompile(`approved by arn:aws:iam::123456789012:user/demo-approver: grant g-[0-9a-f]+ opened rule sgr-[0-9a-f]+, tcp 22 from 127\.0\.0\.1/32`),
		regexp.MustCompile(`evidence \{[^\n]*"msg":"granted"`),
		regexp.MustCompile(`demo-requester\$ latch revoke g-[0-9a-f]+`),
		regexp.MustCompile(`evidence \{[^\n]*"msg":"revoked"`),
		regexp.MustCompile(`revoked: grant g-[0-9a-f]+ is over and EC2 lists no latch rule`),
	} {
		if !want.MatchString(out) {
			t.Errorf("the walkthrough does not show %s:\n%s", want, out)
		}
	}
}

// demoSession is one person's part of the printed instructions.
type demoSession struct {
	env      map[string]string
	commands [][]string
}

// The printed instructions work as printed: each person pastes their
// export line and runs their commands, and the request waits for the
// approver, opens on approval and closes on revoke; doctor passes.
func TestDemoServerKeepCommands(t *testing.T) {
	ctx, stop := context.WithCancel(t.Context())
	outR, outW := io.Pipe()
	done := make(chan int, 1)
	home := t.TempDir()
	go func() {
		code := run(ctx, []string{"demo", "--server", "--keep"}, func(k string) string { return map[string]string{"HOME": home}[k] },
			strings.NewReader(""), outW, io.Discard)
		outW.Close()
		done <- code
	}()
	t.Cleanup(func() {
		stop()
		if code := <-done; code != 0 {
			t.Errorf("demo --server --keep exited %d after Ctrl-C", code)
		}
	})

	sessions := map[string]*demoSession{}
	var cur *demoSession
	lines := bufio.NewScanner(outR)
	var printed strings.Builder
	for lines.Scan() {
		line := lines.Text()
		printed.WriteString(line + "\n")
		switch {
		case strings.HasPrefix(line, "As the requester"):
			cur = &demoSession{env: map[string]string{}}
			sessions["requester"] = cur
		case strings.HasPrefix(line, "As the approver"):
			cur = &demoSession{env: map[string]string{}}
			sessions["approver"] = cur
		case cur != nil && strings.HasPrefix(line, "  export "):
			for _, kv := range strings.Fields(strings.TrimPrefix(line, "  export ")) {
				k, v, _ := strings.Cut(kv, "=")
				cur.env[k] = v
			}
		case cur != nil && strings.HasPrefix(line, "  latch "):
			cmd, _, _ := strings.Cut(line, "#")
			cur.commands = append(cur.commands, strings.Fields(cmd)[1:])
		}
		if cur != nil && cur == sessions["approver"] && strings.HasPrefix(line, "  latch approve") {
			break
		}
	}
	go io.Copy(io.Discard, outR) //nolint:errcheck // nothing more is printed
	req, appr := sessions["requester"], sessions["approver"]
	if req == nil || appr == nil || len(req.commands) != 5 || len(appr.commands) != 2 {
		t.Fatalf("instructions not as expected:\n%s", printed.String())
	}
	for _, s := range sessions {
		s.env["HOME"] = t.TempDir()
		for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL", "LATCH_SERVER", "LATCH_AUTH"} {
			if s.env[k] == "" {
				t.Fatalf("an export line lacks %s:\n%s", k, printed.String())
			}
		}
	}
	as := func(s *demoSession, args []string, stderr io.Writer) result {
		var stdout, errBuf bytes.Buffer
		if stderr == nil {
			stderr = &errBuf
		}
		code := run(t.Context(), args, func(k string) string { return s.env[k] }, strings.NewReader(""), &stdout, stderr)
		return result{code, stdout.String(), errBuf.String()}
	}
	mustAs := func(s *demoSession, args []string) result {
		t.Helper()
		r := as(s, args, nil)
		if r.code != 0 {
			t.Fatalf("latch %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
		}
		return r
	}
	replace := func(args []string, from, to string) []string {
		out := append([]string(nil), args...)
		for i := range out {
			if out[i] == from {
				out[i] = to
			}
		}
		return out
	}

	// The requester: whoami, doctor, then the waiting request.
	if r := mustAs(req, req.commands[0]); !strings.Contains(r.stdout, "user/demo-requester") {
		t.Errorf("whoami as the requester: %s", r.stdout)
	}
	if r := mustAs(req, req.commands[1]); strings.Contains(r.stdout, "FAIL") || !strings.Contains(r.stdout, "user/demo-requester") {
		t.Errorf("doctor with the requester's environment:\n%s", r.stdout)
	}
	waitErrR, waitErrW := io.Pipe()
	waited := make(chan result, 1)
	go func() {
		r := as(req, req.commands[2], waitErrW)
		waitErrW.Close()
		waited <- r
	}()
	first, err := bufio.NewReader(waitErrR).ReadString('\n')
	if err != nil {
		t.Fatalf("the request printed nothing: %v", err)
	}
	go io.Copy(io.Discard, waitErrR) //nolint:errcheck // the rest is progress
	reqID := regexp.MustCompile(`r-[0-9a-f]{16}`).FindString(first)
	if reqID == "" || !strings.Contains(first, "needs 1 approval") {
		t.Fatalf("the request does not wait for approval: %q", first)
	}

	// The approver sees it and approves it.
	if r := mustAs(appr, appr.commands[0]); !strings.Contains(r.stdout, reqID) {
		t.Errorf("the approver's ls does not show %s:\n%s", reqID, r.stdout)
	}
	mustAs(appr, replace(appr.commands[1], "REQUEST_ID", reqID))

	r := <-waited
	grantID := regexp.MustCompile(`\bg-[0-9a-f]{16}\b`).FindString(r.stdout)
	if r.code != 0 || !strings.Contains(r.stdout, "approved by arn:aws:iam::123456789012:user/demo-approver") || grantID == "" {
		t.Fatalf("the waiting request: exit %d\n%s", r.code, r.stdout)
	}
	if r := mustAs(req, req.commands[3]); !strings.Contains(r.stdout, grantID) {
		t.Errorf("the requester's ls does not show %s:\n%s", grantID, r.stdout)
	}
	if r := mustAs(req, replace(req.commands[4], "GRANT_ID", grantID)); !strings.Contains(r.stdout, "Revoked") {
		t.Errorf("revoke: %s", r.stdout)
	}
	if r := mustAs(req, []string{"ls", "--json"}); strings.Contains(r.stdout, `"state":"active"`) {
		t.Errorf("a grant is still active after revoke:\n%s", r.stdout)
	}
}

// latch doctor, with the environment 'latch demo --keep' prints, finds the
// demo's credentials known to STS and passes.
func TestDemoKeepDoctor(t *testing.T) {
	ctx, stop := context.WithCancel(t.Context())
	outR, outW := io.Pipe()
	done := make(chan int, 1)
	home := t.TempDir()
	go func() {
		done <- run(ctx, []string{"demo", "--keep", "--for", "1s"}, func(k string) string { return map[string]string{"HOME": home}[k] },
			strings.NewReader(""), outW, io.Discard)
		outW.Close()
	}()
	t.Cleanup(func() { stop(); <-done })
	env := map[string]string{"HOME": t.TempDir()}
	lines := bufio.NewScanner(outR)
	for lines.Scan() {
		if rest, ok := strings.CutPrefix(lines.Text(), "  export "); ok {
			for _, kv := range strings.Fields(rest) {
				k, v, _ := strings.Cut(kv, "=")
				env[k] = v
			}
			break
		}
	}
	go io.Copy(io.Discard, outR) //nolint:errcheck // the rest is instructions
	if env["AWS_ENDPOINT_URL"] == "" {
		t.Fatal("the demo printed no export line")
	}
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{"doctor"}, func(k string) string { return env[k] }, strings.NewReader(""), &stdout, &stderr)
	if code != 0 || strings.Contains(stdout.String(), "FAIL") {
		t.Errorf("doctor against the demo: exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
}
