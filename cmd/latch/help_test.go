package main

import (
	"bytes"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// commandFlags is, for every command people run, the shared flag groups
// it reads, from reading its code: a.broker reads the AWS, backstop and
// audit-key groups; a.client the server group and, for --auth aws, the
// AWS group; a.store the database. A command that reads a field of app
// without registering its flag silently ignores the flag's LATCH_
// variable, so TestCommandFlagGroups holds every command to this table,
// and a new command must be added to it.
var commandFlags = map[string][]flagGroup{
	"latch grant":              {serverFlags, awsFlags, dbFlags, backstopFlags, auditKeyFlags, ssmFlags}, // direct: the broker; else the server
	"latch revoke":             {serverFlags, awsFlags, dbFlags, backstopFlags, auditKeyFlags, ssmFlags},
	"latch ssh":                {serverFlags, awsFlags, dbFlags, backstopFlags, auditKeyFlags, ssmFlags},
	"latch ls":                 {serverFlags, awsFlags, dbFlags}, // no broker: the store, or the server
	"latch session":            {serverFlags},
	"latch sweep":              {awsFlags, dbFlags, backstopFlags, auditKeyFlags, ssmFlags},
	"latch run":                {awsFlags, dbFlags, backstopFlags, auditKeyFlags, ssmFlags},
	"latch server":             {awsFlags, dbFlags, backstopFlags, auditKeyFlags, ssmFlags}, // it is the server: no client flags
	"latch lambda":             {awsFlags, dbFlags, backstopFlags, auditKeyFlags, ssmFlags},
	"latch doctor":             {awsFlags, dbFlags, backstopFlags, auditKeyFlags, ssmFlags},
	"latch demo":               nil, // its own simulator, database and server
	"latch bench":              nil, // its own simulator; its --db is its own, a scratch database
	"latch request":            {serverFlags, awsFlags},
	"latch approve":            {serverFlags, awsFlags},
	"latch deny":               {serverFlags, awsFlags},
	"latch withdraw":           {serverFlags, awsFlags},
	"latch whoami":             {serverFlags, awsFlags},
	"latch login":              {{"Server", []string{"server", "server-ca"}}}, // asks the server with the new token
	"latch policy check":       nil,
	"latch policy test":        nil,
	"latch policy explain":     {serverFlags, awsFlags},
	"latch audit ls":           {dbFlags},
	"latch audit export":       {dbFlags},
	"latch audit verify":       {dbFlags},
	"latch audit keygen":       nil,
	"latch audit proof":        {awsFlags, dbFlags},
	"latch audit reconcile":    {awsFlags, dbFlags, auditKeyFlags},
	"latch iam-policy":         {backstopFlags}, // its own --region names a region in the policy
	"latch scan":               {awsFlags},
	"latch adopt":              {awsFlags, dbFlags, auditKeyFlags}, // the plan and its changes go to the audit log
	"latch ssh-ca keygen":      nil,
	"latch ssh-ca pubkey":      nil,
	"latch ssh-config":         {serverFlags}, // written into the block
	"latch ssh-config prepare": {serverFlags, awsFlags},
	"latch ssh-config proxy":   {serverFlags, awsFlags},
}

// sharedFlagNames are every flag a flagGroup holds.
var sharedFlagNames = slices.Concat(awsFlags.names, dbFlags.names, serverFlags.names, backstopFlags.names, auditKeyFlags.names, ssmFlags.names)

// commands is every command under root that does something: not a group,
// which only lists its subcommands.
func commands(root *cobra.Command) []*cobra.Command {
	var out []*cobra.Command
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Runnable() && !isGroup(c) {
			out = append(out, c)
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	return out
}

func newRoot() (*app, *cobra.Command) {
	a := &app{getenv: func(string) string { return "" }, stdin: strings.NewReader(""), stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}
	return a, a.rootCommand()
}

// Every command registers exactly the shared flags it reads: the table's.
func TestCommandFlagGroups(t *testing.T) {
	_, root := newRoot()
	seen := map[string]bool{}
	for _, c := range commands(root) {
		path := c.CommandPath()
		seen[path] = true
		groups, ok := commandFlags[path]
		if !ok {
			t.Errorf("%s is not in commandFlags: add it, with the shared flag groups it reads", path)
			continue
		}
		var want []string
		for _, g := range groups {
			want = append(want, g.names...)
		}
		var got []string
		for _, name := range sharedFlagNames {
			// demo's --server and iam-policy's --region are their own flags.
			if f := c.Flags().Lookup(name); f != nil && len(f.Annotations[groupAnnotationKey]) > 0 {
				got = append(got, name)
			}
		}
		sort.Strings(want)
		sort.Strings(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s has shared flags %v; want %v", path, got, want)
		}
	}
	for path := range commandFlags {
		if !seen[path] {
			t.Errorf("commandFlags lists %s, which is no command", path)
		}
	}
}

// envValues are a valid LATCH_ value for each shared flag, and how to read
// back what the command got.
var envValues = map[string]struct {
	value string
	got   func(*app) string
}{
	"region":            {"eu-west-1", func(a *app) string { return strings.Join(a.regions, ",") }},
	"profile":           {"ops", func(a *app) string { return a.profile }},
	"endpoint":          {"http://127.0.0.1:4566", func(a *app) string { return a.endpoint }},
	"aws-mutating-rate": {"20/100", func(a *app) string { return a.mutatingRate.String() }},
	"db":                {"/srv/latch/grants.db", func(a *app) string { return a.dbPath }},
	"server":            {"https://latch.example.com:8443", func(a *app) string { return a.server }},
	"auth":              {"oidc", func(a *app) string { return a.authMethod }},
	"server-id":         {"https://latch.internal", func(a *app) string { return a.serverID }},
	"server-ca":         {"/etc/latch/ca.pem", func(a *app) string { return a.serverCA }},
	"backstop-role-arn": {"arn:aws:iam::123456789012:role/latch-scheduler", func(a *app) string { return a.backstop.RoleARN }},
	"backstop-group":    {"latch-prod", func(a *app) string { return a.backstop.Group }},
	"backstop-dlq-arn":  {"arn:aws:sqs:us-east-1:123456789012:dlq", func(a *app) string { return a.backstop.DeadLetterARN }},
	"audit-key":         {"/etc/latch/audit.pem", func(a *app) string { return a.auditKey }},
	"ssm-session-role":  {"arn:aws:iam::123456789012:role/latch-session", func(a *app) string { return a.ssmRole }},
}

// Every LATCH_ variable of a shared flag still reaches every command that
// reads it, now that the flags are the commands' own rather than global;
// and LATCH_DIRECT is still never read.
func TestSharedFlagEnvironmentReachesEachCommand(t *testing.T) {
	if len(envValues) != len(sharedFlagNames) {
		t.Fatalf("envValues has %d flags, the groups %d: give each shared flag a value", len(envValues), len(sharedFlagNames))
	}
	_, probe := newRoot()
	for _, c := range commands(probe) {
		path := c.CommandPath()
		for _, g := range commandFlags[path] {
			for _, name := range g.names {
				v := envValues[name]
				env := map[string]string{envName(name): v.value, "LATCH_DIRECT": "true"}
				a, cmd, err := withEnv(t, env, strings.Fields(path)[1:]...)
				if err != nil {
					t.Errorf("%s with %s=%s: %v", path, envName(name), v.value, err)
					continue
				}
				if got := v.got(a); got != v.value {
					t.Errorf("%s with %s=%s: got %q; the variable no longer reaches the command", path, envName(name), v.value, got)
				}
				if d := cmd.Flags().Lookup("direct"); d != nil && d.Changed {
					t.Errorf("%s: LATCH_DIRECT set --direct; it must come from the command line only", path)
				}
			}
		}
	}
}

// Every command people run shows an example in its help. Hidden commands
// (ssh-config prepare and proxy, which ssh runs) are exempt.
func TestEveryCommandHasAnExample(t *testing.T) {
	_, root := newRoot()
	for _, c := range commands(root) {
		if !c.Hidden && strings.TrimSpace(c.Example) == "" {
			t.Errorf("%s has no Example", c.CommandPath())
		}
	}
}

// policy check reads a file: its help lists no AWS, server, database,
// backstop or audit-key flag.
func TestPolicyCheckHelpListsOnlyItsFlags(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), []string{"policy", "check", "--help"}, func(string) string { return "" }, strings.NewReader(""), &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d %s", code, stderr.String())
	}
	for _, name := range sharedFlagNames {
		if strings.Contains(stdout.String(), "--"+name+" ") {
			t.Errorf("policy check --help lists --%s:\n%s", name, stdout.String())
		}
	}
	if n := strings.Count(stdout.String(), "\n"); n > 20 {
		t.Errorf("policy check --help is %d lines:\n%s", n, stdout.String())
	}
}

// A command's help shows the shared flags under their groups' titles.
func TestGrantHelpGroupsItsFlags(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), []string{"grant", "--help"}, func(string) string { return "" }, strings.NewReader(""), &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d %s", code, stderr.String())
	}
	help := stdout.String()
	last := -1
	for _, heading := range []string{"\nFlags:\n", "\nServer flags:\n", "\nAWS flags:\n", "\nDatabase flags:\n", "\nBackstop flags:\n", "\nAudit signing flags:\n", "\nGlobal Flags:\n"} {
		i := strings.Index(help, heading)
		if i < last {
			t.Errorf("grant --help: %q missing or out of order:\n%s", heading, help)
		}
		last = i
	}
	aws := help[strings.Index(help, "AWS flags:"):strings.Index(help, "Database flags:")]
	for _, name := range awsFlags.names {
		if !strings.Contains(aws, "--"+name+" ") {
			t.Errorf("grant --help: --%s not under AWS flags:\n%s", name, help)
		}
	}
}
