package sshdtest

import (
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// readmeUserData is the user-data script in the README's "The CA"
// section: the fenced sh block that starts with #!/bin/sh.
func readmeUserData(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "```sh\n#!/bin/sh\n")
	if !ok {
		t.Fatal("README.md has no ```sh block starting with #!/bin/sh")
	}
	script, _, ok := strings.Cut(rest, "```")
	if !ok {
		t.Fatal("README.md's user-data block does not end")
	}
	return "#!/bin/sh\n" + script
}

// The README's user data, run against a fake IMDSv2 with /etc/ssh moved to
// a temporary directory, writes the configuration Options.Instance gives
// the test sshd: AuthorizedPrincipalsFile DIR/%u, and for the login a file
// holding only LOGIN@INSTANCE_ID. Without an IMDSv2 token it configures
// nothing.
func TestREADMEUserDataWritesWhatInstanceConfigures(t *testing.T) {
	if findCurl() == "" {
		t.Skip("the user data needs curl; install curl to run this test")
	}
	const instance, token = "i-0a0b0c0d0e0f0000a", "imds-token"
	imds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPut && r.URL.Path == "/latest/api/token" && r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds") != "":
			_, _ = w.Write([]byte(token))
		case r.Method == http.MethodGet && r.URL.Path == "/latest/meta-data/instance-id" && r.Header.Get("X-aws-ec2-metadata-token") == token:
			_, _ = w.Write([]byte(instance))
		default:
			http.Error(w, "IMDSv2 only", http.StatusUnauthorized)
		}
	}))
	t.Cleanup(imds.Close)

	script := readmeUserData(t)
	for _, must := range []string{"http://169.254.169.254/latest", "/etc/ssh", "systemctl reload sshd 2>/dev/null || systemctl reload ssh"} {
		if !strings.Contains(script, must) {
			t.Fatalf("the README's user data no longer contains %q; update this test\n%s", must, script)
		}
	}
	run := func(imdsURL string) (etc string, out []byte, err error) {
		etc = filepath.Join(t.TempDir(), "etc", "ssh")
		if err := os.MkdirAll(filepath.Join(etc, "sshd_config.d"), 0o755); err != nil {
			t.Fatal(err)
		}
		s := strings.ReplaceAll(script, "http://169.254.169.254/latest", imdsURL)
		s = strings.ReplaceAll(s, "/etc/ssh", etc)
		s = strings.ReplaceAll(s, "systemctl reload sshd 2>/dev/null || systemctl reload ssh", "echo reloaded")
		out, err = exec.Command("/bin/sh", "-c", s).CombinedOutput()
		return etc, out, err
	}

	etc, out, err := run(imds.URL + "/latest")
	if err != nil || strings.TrimSpace(string(out)) != "reloaded" {
		t.Fatalf("user data: %v\n%s", err, out)
	}
	conf, err := os.ReadFile(filepath.Join(etc, "sshd_config.d", "50-latch.conf"))
	if err != nil {
		t.Fatal(err)
	}
	// What Options.Instance writes for the same user and instance, in a
	// directory of its own, with that directory read as the script's etc.
	harness := t.TempDir()
	setting, err := (&Server{User: "ec2-user"}).principalsFile(harness, instance)
	if err != nil {
		t.Fatal(err)
	}
	want := "TrustedUserCAKeys " + filepath.Join(etc, "latch_user_ca.pub") + "\nAuthorizedPrincipalsFile " + strings.Replace(setting, harness, etc, 1) + "\n"
	if string(conf) != want {
		t.Errorf("50-latch.conf =\n%s\nwant\n%s", conf, want)
	}
	entries, err := os.ReadDir(filepath.Join(etc, "latch_principals"))
	if err != nil || len(entries) != 1 || entries[0].Name() != "ec2-user" {
		t.Fatalf("latch_principals holds %v, %v; want only ec2-user's file", entries, err)
	}
	got, _ := os.ReadFile(filepath.Join(etc, "latch_principals", "ec2-user"))
	harnessFile, _ := os.ReadFile(filepath.Join(harness, "latch_principals", "ec2-user"))
	if string(got) != "ec2-user@"+instance+"\n" || string(got) != string(harnessFile) {
		t.Errorf("ec2-user's principals = %q (the harness writes %q); want ec2-user@%s", got, harnessFile, instance)
	}

	// IMDSv1 only, or no IMDS: the script stops before sshd is configured.
	etc, out, err = run(imds.URL + "/v1-only")
	if err == nil {
		t.Errorf("user data without an IMDSv2 token succeeded:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(etc, "sshd_config.d", "50-latch.conf")); err == nil {
		t.Error("sshd was configured without the instance's ID")
	}
}
