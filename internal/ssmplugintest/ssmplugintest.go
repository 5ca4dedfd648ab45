// Package ssmplugintest gives tests AWS's real session-manager-plugin,
// built from the version tools/ssmplugin pins.
//
// Path builds the plugin once per test process, into a cache directory
// (os.UserCacheDir()/latch-ssmplugin/HASH, HASH being that of
// tools/ssmplugin's go.mod and go.sum), so later runs reuse the binary. The
// environment variable LATCH_SSM_PLUGIN names a prebuilt plugin to use
// instead. A failed build fails the test: the module proxy is expected to be
// reachable, and a test that skips without the plugin would hide that.
package ssmplugintest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// EnvVar names a prebuilt session-manager-plugin binary to use instead of
// building one.
const EnvVar = "LATCH_SSM_PLUGIN"

// pkg is the plugin's main package in the pinned module.
const pkg = "github.com/aws/session-manager-plugin/src/sessionmanagerplugin-main"

var (
	once     sync.Once
	built    string
	buildErr error
)

// Path returns the path of a session-manager-plugin binary, building it on
// the first call in the process (and only when the cache has none for the
// pinned versions). It fails t if the plugin cannot be had.
func Path(t testing.TB) string {
	t.Helper()
	if p := os.Getenv(EnvVar); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s=%s: %v", EnvVar, p, err)
		}
		return p
	}
	once.Do(func() { built, buildErr = build() })
	if buildErr != nil {
		t.Fatalf("building session-manager-plugin: %v", buildErr)
	}
	return built
}

// Env is the environment the plugin should run with in tests: the
// process's, with client configuration skipped (the plugin then looks for
// no AWS credentials before it opens the data channel) and the EC2
// instance metadata service off.
func Env() []string {
	return append(os.Environ(), "SSM_PLUGIN_SKIP_CLIENT_CONFIGURE=true", "AWS_EC2_METADATA_DISABLED=true")
}

func build() (string, error) {
	dir, err := toolsDir()
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, f := range []string{"go.mod", "go.sum"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s %d\n", f, len(b))
		h.Write(b)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	outDir := filepath.Join(cache, "latch-ssmplugin", hex.EncodeToString(h.Sum(nil))[:16])
	out := filepath.Join(outDir, "session-manager-plugin")
	if fi, err := os.Stat(out); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
		return out, nil
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return "", err
	}
	// Build next to the final name and rename, so a concurrent test process
	// never runs a half-written binary.
	tmp, err := os.CreateTemp(outDir, "build-*")
	if err != nil {
		return "", err
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	cmd := exec.Command("go", "build", "-o", tmp.Name(), pkg)
	cmd.Dir = dir
	// The tools module is its own module: no workspace, and go.sum decides.
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly")
	var output bytes.Buffer
	cmd.Stdout, cmd.Stderr = &output, &output
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build in %s: %v\n%s", dir, err, output.Bytes())
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return "", err
	}
	return out, nil
}

// toolsDir finds tools/ssmplugin from the main module's root: go env GOMOD
// from the working directory, or, failing that, the first parent holding
// tools/ssmplugin/go.mod.
func toolsDir() (string, error) {
	if b, err := exec.Command("go", "env", "GOMOD").Output(); err == nil {
		if gomod := strings.TrimSpace(string(b)); gomod != "" && gomod != os.DevNull {
			d := filepath.Join(filepath.Dir(gomod), "tools", "ssmplugin")
			if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
				return d, nil
			}
		}
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "tools", "ssmplugin", "go.mod")); err == nil {
			return filepath.Join(d, "tools", "ssmplugin"), nil
		}
		if filepath.Dir(d) == d {
			return "", errors.New("no tools/ssmplugin/go.mod in " + wd + " or its parents")
		}
	}
}
