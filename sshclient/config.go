package sshclient

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/latchdev/latch"
)

// hostPattern is a name latch takes from ssh's %n: a plain host name, an
// instance ID or a Name tag made of letters, digits, '-', '_' and '.',
// starting with a letter, digit or '_'. Nothing a shell, ssh_config or a
// file path reads specially.
var hostPattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,252}$`)

// CheckHost refuses a HOST from ssh that is not a plain host name, before
// latch uses it for anything: a link or a repository URL can choose it.
func CheckHost(host string) error {
	if !hostPattern.MatchString(host) {
		return latch.Invalidf("host", "%q is not a host name; want up to 253 letters, digits, '-', '_' or '.', starting with a letter, digit or '_'", host)
	}
	return nil
}

// CheckSuffix refuses a suffix that is not the end of a host name.
func CheckSuffix(suffix string) error {
	if !strings.HasPrefix(suffix, ".") || len(suffix) < 2 || !hostPattern.MatchString("x"+suffix) {
		return latch.Invalidf("suffix", "%q is not a host-name suffix; want '.' then letters, digits, '-', '_' or '.', e.g. .latch", suffix)
	}
	return nil
}

// SplitHost reads the HOST and PORT ssh gives the block's Match exec (%n,
// %p): the destination is HOST without suffix.
func SplitHost(host, port, suffix string) (dest string, p int, err error) {
	if err := CheckHost(host); err != nil {
		return "", 0, err
	}
	dest, ok := strings.CutSuffix(host, suffix)
	if !ok || dest == "" {
		return "", 0, latch.Invalidf("host", "%q does not end in %s", host, suffix)
	}
	p, err = strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return "", 0, latch.Invalidf("port", "%q is not a port", port)
	}
	return dest, p, nil
}

// CheckExecutable refuses, as the latch a config block runs, an
// executable that will be gone by the time ssh runs it: `go run` builds
// into a go-build directory (under the temp directory, or the build cache
// gocache, whose default is itself named go-build) and removes it on exit.
// gocache is `go env GOCACHE` when the environment says so, else "".
func CheckExecutable(exe, gocache string) error {
	transient := gocache != "" && strings.HasPrefix(exe, filepath.Clean(gocache)+string(filepath.Separator))
	for dir := filepath.Dir(exe); !transient && dir != filepath.Dir(dir); dir = filepath.Dir(dir) {
		transient = goBuildDir(filepath.Base(dir))
	}
	if transient {
		return latch.Invalidf("executable", "latch is running from %s, a temporary build ('go run' builds in Go's build cache or a go-build directory and removes it), "+
			"so a config block naming it would stop working; run 'go install ./cmd/latch', then the installed latch (e.g. $(go env GOPATH)/bin/latch ssh-config)", exe)
	}
	if !filepath.IsAbs(exe) {
		return latch.Invalidf("executable", "latch is running as %s, not an absolute path, which ssh could not find from another directory", exe)
	}
	return nil
}

// goBuildDir reports whether name is Go's: the build cache (go-build) or
// the directory `go run` builds in (go-build1234567890), not a name that
// merely starts so (go-builds, go-buildkite).
func goBuildDir(name string) bool {
	digits := strings.TrimPrefix(name, "go-build")
	return len(digits) < len(name) && strings.Trim(digits, "0123456789") == ""
}

// ConfigBlock is the ssh_config block after which `ssh NAME.latch`
// reaches the instance NAME through latch: a Match exec that prepares
// access and a key (`latch ssh-config prepare`) and a ProxyCommand that
// carries the connection (`latch ssh-config proxy`).
type ConfigBlock struct {
	Latch string // the latch ssh runs: an absolute path that outlives this process (CheckExecutable)
	// Args come first on both commands: the flags that say which server
	// and how to reach it (--server URL, …). An IDE's ssh runs the block
	// without the user's LATCH_ variables, so the block must carry them.
	Args       []string
	Suffix     string // names ending in it go through latch
	Login      string // the User line; "" leaves it to the user's config
	Reason     string // sent with each request; "" sends none
	CacheDir   string // prepare leaves each host's key in CacheDir/HOST
	KnownHosts string // latch's known_hosts, where prepare pins host keys
}

// Render returns the block's text, or an error naming the field that
// cannot be written safely into ssh_config.
func (b ConfigBlock) Render() (string, error) {
	if err := CheckSuffix(b.Suffix); err != nil {
		return "", err
	}
	if b.Login != "" {
		if err := latch.CheckLogin("login", b.Login); err != nil {
			return "", err
		}
	}
	if b.Reason != "" {
		if err := latch.CheckReason("reason", b.Reason); err != nil {
			return "", err
		}
	}
	// ssh_config is read line by line: a line break in any of these would
	// start a directive of its own.
	for _, s := range append([]string{b.Latch, b.CacheDir, b.KnownHosts, b.Reason}, b.Args...) {
		if strings.ContainsAny(s, "\r\n\x00") {
			return "", latch.Invalidf("ssh-config", "%q holds a line break, which ssh_config cannot carry", s)
		}
	}
	// The Match exec command is one double-quoted ssh_config argument,
	// shell-quoted within. OpenSSH ends that argument at any '"' (a
	// backslash does not escape it), and versions differ on what a
	// backslash or a quote inside means; a block ssh cannot read breaks
	// every host in ~/.ssh/config. So what goes into the command holds
	// none of the three, and single quotes then quote it safely.
	if err := quotable("reason", b.Reason); err != nil {
		return "", err
	}
	for _, s := range append([]string{b.Latch}, b.Args...) {
		if err := quotable("ssh-config", s); err != nil {
			return "", err
		}
	}
	args := ""
	for _, a := range b.Args {
		args += " " + shellQuote(a)
	}
	prepare := shellQuote(b.Latch) + " ssh-config prepare" + args + " --suffix " + shellQuote(b.Suffix)
	if b.Reason != "" {
		prepare += " --reason " + shellQuote(b.Reason)
	}
	var w strings.Builder
	fmt.Fprintf(&w, "# latch: `ssh NAME%s` reaches the instance NAME (ID or Name tag) through latch,\n", b.Suffix)
	fmt.Fprintf(&w, "# with a short-lived credential; access ends with the connection. From `latch ssh-config`.\n")
	// ssh substitutes %n and %r as given (a link or a repository URL can
	// choose them) and runs the command with the shell, so each token is
	// single-quoted, and names holding a single quote, the one character
	// that could end the quoting, never match: ssh then runs nothing.
	// latch itself refuses any name that is not a plain host or user name.
	// Our own '%'s are doubled so ssh leaves them alone.
	fmt.Fprintf(&w, "Match host \"*%s,!*'*\" user \"*,!*'*\" exec \"%s '%%n' '%%p' '%%r'\"\n", b.Suffix, noTokens(prepare))
	if b.Login != "" {
		fmt.Fprintf(&w, "    User %s\n", b.Login)
	}
	fmt.Fprintf(&w, "    IdentityFile %s\n", filepath.Join(noTokens(b.CacheDir), "%n", "id_ed25519"))
	fmt.Fprintf(&w, "    CertificateFile %s\n", filepath.Join(noTokens(b.CacheDir), "%n", "id_ed25519-cert.pub"))
	fmt.Fprintf(&w, "    IdentitiesOnly yes\n")
	fmt.Fprintf(&w, "    UserKnownHostsFile %s ~/.ssh/known_hosts\n", noTokens(b.KnownHosts))
	fmt.Fprintf(&w, "    ProxyCommand %s '%%n' '%%p'\n", noTokens(shellQuote(b.Latch)+" ssh-config proxy"+args))
	return w.String(), nil
}

// quotable refuses a value the block's Match exec cannot carry intact.
func quotable(field, s string) error {
	if i := strings.IndexAny(s, `"'\`); i >= 0 {
		return latch.Invalidf(field, "%q holds %q, which the ssh_config block cannot carry intact; leave quotes and backslashes out", s, s[i:i+1])
	}
	return nil
}

// noTokens escapes s from ssh_config's %-tokens.
func noTokens(s string) string { return strings.ReplaceAll(s, "%", "%%") }

// shellQuote quotes s for the shell ssh runs Match exec and ProxyCommand
// with ($SHELL, else /bin/sh).
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=@%+,", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
