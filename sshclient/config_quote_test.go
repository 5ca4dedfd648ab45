package sshclient_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/latchdev/latch/sshclient"
)

// Render once escaped a '"' in a value as \" inside the Match exec
// argument, but OpenSSH's ssh_config parser (9.2's strdelim) ends the
// quoted argument at the first '"', backslash or not; and an OpenSSH
// whose parser does honour backslashes (argv_split) turns the shell's
// '\” into ”' instead. Either way a value that Render accepts (a reason,
// a server URL, a CA path) yields a block ssh either rejects (and with it
// the whole ~/.ssh/config, for every host) or runs with different
// arguments. Render must refuse what it cannot carry, or carry it intact.
// This runs the block through the ssh on PATH (ssh -G evaluates Match
// exec) and compares the argv latch would get.
func TestConfigBlockValuesReachLatchIntact(t *testing.T) {
	if _, err := exec.LookPath("ssh"); err != nil {
		t.Skip("no ssh on PATH to read the block")
	}
	for _, tt := range []struct{ name, reason, ca string }{
		{"plain values", "deploy: INC-42 (web)", "/etc/latch/ca.pem"},
		{"a double quote in the reason", `ticket "OPS-1" is down`, "/etc/latch/ca.pem"},
		{"a double quote in the CA path", "deploy", `/srv/"prod"/ca.pem`},
		{"a single quote in the reason", "it's down", "/etc/latch/ca.pem"},
		{"a single quote in the CA path", "deploy", "/home/o'brien/ca.pem"},
		{"a backslash before a quote", `C:\'x`, "/etc/latch/ca.pem"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			log := filepath.Join(dir, "argv")
			rec := filepath.Join(dir, "rec.sh")
			script := "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done > " + log + "\nexit 1\n"
			if err := os.WriteFile(rec, []byte(script), 0o700); err != nil {
				t.Fatal(err)
			}
			b := sshclient.ConfigBlock{Latch: rec, Args: []string{"--server", "https://latch.example.com", "--server-ca", tt.ca},
				Suffix: ".latch", Reason: tt.reason, CacheDir: filepath.Join(dir, "cache"), KnownHosts: filepath.Join(dir, "kh")}
			text, err := b.Render()
			if err != nil {
				if !strings.ContainsAny(tt.reason+tt.ca, `"'\`) {
					t.Fatalf("Render refused plain values: %v", err)
				}
				return // refused, naming the value: fine
			}
			cfg := filepath.Join(dir, "config")
			if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
			ssh := exec.Command("ssh", "-F", cfg, "-G", "web-1.latch")
			ssh.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "SHELL=/bin/sh"}
			out, err := ssh.CombinedOutput()
			if err != nil && strings.Contains(string(out), "terminating") {
				t.Fatalf("ssh rejects the whole config Render produced (every ssh would fail):\n%s\n%s", out, text)
			}
			got, rerr := os.ReadFile(log)
			if rerr != nil {
				t.Fatalf("ssh never ran the Match exec (%v):\n%s\n%s", rerr, out, text)
			}
			argv := strings.Split(strings.TrimSuffix(string(got), "\n"), "\n")
			want := []string{"ssh-config", "prepare", "--server", "https://latch.example.com", "--server-ca", tt.ca,
				"--suffix", ".latch", "--reason", tt.reason, "web-1.latch", "22"}
			if len(argv) < len(want) || !slices.Equal(argv[:len(want)], want) {
				t.Errorf("latch would get\n  %q\nwant\n  %q", argv, want)
			}
		})
	}
}
