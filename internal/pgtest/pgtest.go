// Package pgtest runs a private PostgreSQL cluster for tests: Debian's
// binaries, initdb into a temporary directory, postgres on 127.0.0.1 and a
// free port, never a system service.
//
// One cluster serves a whole test process. The first [Start] creates it,
// which takes a second or two; every Start then creates a fresh database
// in it (CREATE DATABASE, tens of milliseconds) and returns that
// database's DSN, so tests do not see each other's rows. A package's
// TestMain calls [Main], which stops the cluster and removes its directory
// once the tests are done. If the test process dies instead, a small
// watchdog process started with the cluster stops it within a second
// and removes its directory: a package without a TestMain may use Start.
//
// PostgreSQL refuses to run as root. When the tests run as root (in a
// container, say), initdb and postgres run as the user nobody, by setting
// the child processes' credentials, and the cluster's directory is given
// to that user. Otherwise they run as the current user.
//
// Setting LATCH_TEST_POSTGRES to the DSN of an existing server's
// maintenance database (postgres://user@host:port/postgres) makes Start
// create its databases there instead, and starts nothing.
package pgtest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvDSN names the variable that points Start at an existing server.
const EnvDSN = "LATCH_TEST_POSTGRES"

// install is what a test failure says to do when PostgreSQL is missing.
const install = "PostgreSQL's server binaries were not found in /usr/lib/postgresql/*/bin: " +
	"install them (Debian: apt-get install postgresql; scripts/test does this when run as root), " +
	"or set " + EnvDSN + " to the DSN of a server's postgres database"

var (
	once    sync.Once
	shared  *cluster
	failure error
	dbs     atomic.Int64
)

// Start returns the DSN of a new, empty database on the test process's
// cluster, starting the cluster the first time. It fails t if PostgreSQL
// cannot be started; it never skips.
func Start(t testing.TB) string {
	t.Helper()
	once.Do(func() {
		if dsn := os.Getenv(EnvDSN); dsn != "" {
			shared = &cluster{admin: dsn}
			return
		}
		shared, failure = startCluster()
	})
	if failure != nil {
		t.Fatalf("pgtest: %v", failure)
	}
	name := fmt.Sprintf("latch_test_%d_%d", os.Getpid(), dbs.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, shared.admin)
	if err != nil {
		t.Fatalf("pgtest: connect to %s: %v", redact(shared.admin), err)
	}
	defer func() { _ = conn.Close(ctx) }()
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
	u, err := url.Parse(shared.admin)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// Main runs m's tests and then stops the cluster, if one was started, and
// exits. Call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if shared != nil {
		if err := shared.stop(); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
		}
	}
	os.Exit(code)
}

// cluster is a running postgres, or an existing server (dir == "").
type cluster struct {
	admin    string // DSN of the postgres database, as superuser
	dir      string // temporary directory: data, socket, log
	bin      string // the directory of pg_ctl
	cred     *syscall.Credential
	watchdog *exec.Cmd
}

// Bin returns the newest of Debian's PostgreSQL binary directories,
// /usr/lib/postgresql/VERSION/bin, that has initdb, pg_ctl and postgres.
func Bin() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	version := func(d string) float64 {
		v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(d)), 64)
		return v
	}
	slices.SortFunc(dirs, func(a, b string) int { return cmp.Compare(version(b), version(a)) })
	for _, d := range dirs {
		ok := true
		for _, b := range []string{"initdb", "pg_ctl", "postgres"} {
			if _, err := os.Stat(filepath.Join(d, b)); err != nil {
				ok = false
			}
		}
		if ok {
			return d, nil
		}
	}
	return "", errors.New(install)
}

func startCluster() (*cluster, error) {
	bin, err := Bin()
	if err != nil {
		return nil, err
	}
	c := &cluster{bin: bin}
	if os.Geteuid() == 0 {
		c.cred, err = nobody()
		if err != nil {
			return nil, err
		}
	}
	c.dir, err = os.MkdirTemp("", "latch-pgtest-")
	if err != nil {
		return nil, err
	}
	if c.cred != nil {
		if err := os.Chown(c.dir, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
			_ = os.RemoveAll(c.dir)
			return nil, err
		}
	}
	if err := c.start(); err != nil {
		log, _ := os.ReadFile(filepath.Join(c.dir, "log"))
		_ = c.stop()
		return nil, fmt.Errorf("%w\n%s", err, log)
	}
	return c, nil
}

// nobody returns the credentials of the user nobody, with no
// supplementary groups.
func nobody() (*syscall.Credential, error) {
	u, err := user.Lookup("nobody")
	if err != nil {
		return nil, fmt.Errorf("running as root, and PostgreSQL will not: %w", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, err
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, nil
}

func (c *cluster) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(c.bin, name), args...)
	cmd.Dir = c.dir
	// A clean environment: no PGDATA, PGPORT or locale of the caller's.
	cmd.Env = []string{"PATH=" + c.bin + ":/usr/bin:/bin", "LC_ALL=C", "HOME=" + c.dir}
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	}
	return cmd
}

func (c *cluster) run(name string, args ...string) error {
	out, err := c.command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

func (c *cluster) start() error {
	data := filepath.Join(c.dir, "data")
	if err := c.run("initdb", "--pgdata", data, "--username", "postgres", "--auth", "trust",
		"--encoding", "UTF8", "--locale", "C", "--no-sync"); err != nil {
		return err
	}
	// A port is free when asked, but another process may take it before
	// postgres binds it: try a few.
	var err error
	for range 5 {
		var port int
		if port, err = freePort(); err != nil {
			return err
		}
		// The durability settings are off: the cluster is thrown away.
		opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -k %s -c fsync=off -c synchronous_commit=off "+
			"-c full_page_writes=off -c max_connections=300", port, c.dir)
		if err = c.run("pg_ctl", "--pgdata", data, "--log", filepath.Join(c.dir, "log"), "--wait", "--timeout", "60",
			"-o", opts, "start"); err == nil {
			c.admin = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
			break
		}
	}
	if err != nil {
		return err
	}
	// The watchdog stops the cluster if this process dies without Main
	// stopping it: killed, or a test binary without TestMain. It runs as
	// the cluster's user, who owns the directory it then removes.
	script := fmt.Sprintf(`while [ -d /proc/%d ]; do sleep 1; done; %s --pgdata %s --mode immediate stop >/dev/null 2>&1; rm -rf %s`,
		os.Getpid(), filepath.Join(c.bin, "pg_ctl"), data, c.dir)
	c.watchdog = exec.Command("/bin/sh", "-c", script)
	c.watchdog.Env = []string{"PATH=/usr/bin:/bin"}
	if c.cred != nil {
		c.watchdog.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred, Setpgid: true}
	} else {
		c.watchdog.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	}
	return c.watchdog.Start()
}

// stop stops postgres, ends the watchdog and removes the directory.
func (c *cluster) stop() error {
	if c.dir == "" {
		return nil
	}
	var errs []error
	if c.admin != "" {
		errs = append(errs, c.run("pg_ctl", "--pgdata", filepath.Join(c.dir, "data"), "--mode", "fast", "--wait", "stop"))
	}
	if c.watchdog != nil && c.watchdog.Process != nil {
		_ = c.watchdog.Process.Kill()
		_ = c.watchdog.Wait()
	}
	errs = append(errs, os.RemoveAll(c.dir))
	return errors.Join(errs...)
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// redact hides a DSN's password.
func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(a DSN)"
	}
	return u.Redacted()
}
