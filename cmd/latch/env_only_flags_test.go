package main

import (
	"strings"
	"testing"
)

// request's --source became --ip, so LATCH_IP, which people set for
// direct grants (`latch grant --ip`), would reach `latch request` and ask
// the server for that address instead of the one it sees. Before issue
// 11, request read only LATCH_SOURCE; an address other than the one the
// server sees is an explicit choice, made on the command line.
func TestLatchIPDoesNotReachRequest(t *testing.T) {
	env := map[string]string{"LATCH_IP": "203.0.113.5", "LATCH_SERVER": "https://latch.example.com"}
	_, cmd, err := withEnv(t, env, "request")
	if err != nil {
		t.Fatal(err)
	}
	if f := cmd.Flags().Lookup("ip"); f.Changed {
		t.Errorf("LATCH_IP=%s set request's --ip to %q: the request asks the server for a source the user never typed", env["LATCH_IP"], f.Value)
	}
}

// LATCH_OUT, set for one command's --out (a cron job's audit export),
// reaches no other: ssh-ca keygen would write the CA's key there.
func TestLatchOutReachesNoCommand(t *testing.T) {
	env := map[string]string{"LATCH_OUT": "/var/backups/audit.jsonl"}
	for _, path := range [][]string{{"ssh-ca", "keygen"}, {"audit", "keygen"}, {"audit", "export"}} {
		_, cmd, err := withEnv(t, env, path...)
		if err != nil {
			t.Fatal(err)
		}
		if f := cmd.Flags().Lookup("out"); f.Changed {
			t.Errorf("latch %s: LATCH_OUT set --out to %q", strings.Join(path, " "), f.Value)
		}
	}
}
