// Package pgtest gives tests a real PostgreSQL: one throwaway cluster per test
// binary (started with scripts/pg.sh unless TENANTLAKE_TEST_PG names a
// running one), and a fresh database per test.
//
// Use it from TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
// and in a test:
//
//	dsn := pgtest.NewDatabase(t)
//
// A missing server is a failure, never a skip.
package pgtest

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
)

// EnvURL names the environment variable holding a superuser URL of a running
// cluster to use instead of starting one.
const EnvURL = "TENANTLAKE_TEST_PG"

var (
	adminURL string
	counter  atomic.Int64
)

// Main starts a cluster if needed, runs the tests and stops it.
func Main(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pgtest:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	if u := os.Getenv(EnvURL); u != "" {
		adminURL = u
		return m.Run(), nil
	}
	dir, err := os.MkdirTemp("", "tenantlake-pgtest-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	script := filepath.Join(RepoRoot(), "scripts", "pg.sh")
	out, err := exec.Command(script, "start", dir).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return 0, fmt.Errorf("%s start: %v: %s", script, err, ee.Stderr)
		}
		return 0, fmt.Errorf("%s start: %v", script, err)
	}
	defer exec.Command(script, "stop", dir).Run()
	adminURL = strings.TrimSpace(string(out))
	return m.Run(), nil
}

// RepoRoot returns the repository's root folder.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// AdminURL returns the superuser URL of the test cluster.
func AdminURL(t testing.TB) string {
	t.Helper()
	if adminURL == "" {
		t.Fatal("pgtest: no cluster; call pgtest.Main from TestMain")
	}
	return adminURL
}

// NewDatabase creates an empty database for this test and returns its URL.
// The database is dropped when the test ends.
func NewDatabase(t testing.TB) string {
	t.Helper()
	admin := AdminURL(t)
	name := fmt.Sprintf("t_%d_%d", os.Getpid(), counter.Add(1))
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("pgtest: connect %s: %v", admin, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// Connect opens a connection to url for test t, closed (and its Close
// checked) when the test ends.
func Connect(t testing.TB, url string) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	t.Cleanup(func() {
		if err := conn.Close(ctx); err != nil {
			t.Errorf("pgtest: close connection: %v", err)
		}
	})
	return conn
}
