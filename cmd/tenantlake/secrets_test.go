package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tenantlake/tenantlake/internal/pgtest"
	"github.com/tenantlake/tenantlake/tenant"
)

// The hostile password is made of two halves, so that a half shown by a
// parser that split the password is caught too; shadowSecret is in a
// secret file's content.
const (
	pwHead, pwTail = "S3cret", "Tail9x"
	shadowSecret   = "Sh4dowHash"
)

// hostileURLs are postgres:// URLs with a password that pgx or net/url
// cannot parse, or read with a part of the password elsewhere.
var hostileURLs = []string{
	"postgres://app:" + pwHead + pwTail + "@127.0.0.1:notaport/db", // bad port
	"postgres://app:" + pwHead + "%zz" + pwTail + "@127.0.0.1/db",  // bad escape in the password
	"postgres://app:" + pwHead + pwTail + "@127.0.0.1/db%zz",       // bad escape after it
	"postgres://app:" + pwHead + pwTail + "@[::1/db",               // unterminated IPv6 host
	"postgres://app:" + pwHead + "/" + pwTail + "@127.0.0.1/db",    // unescaped '/'
	"postgres://app:" + pwHead + "@" + pwTail + "@127.0.0.1/db",    // unescaped '@'
	"postgres://app:12?" + pwTail + "@127.0.0.1/db",                // unescaped '?'
	"postgresql://app:" + pwHead + pwTail + "@127.0.0.1/db?sslmode=bogus",
	"postgres://app@127.0.0.1/db?password=" + pwHead + "%zz" + pwTail,
}

// hostileKV are key=value connection strings with a password pgx cannot parse.
var hostileKV = []string{
	"host=127.0.0.1 port=notaport user=app password=" + pwHead + pwTail,
	"host=127.0.0.1 user=app password='" + pwHead + " " + pwTail, // unterminated quote
	"host=127.0.0.1 user=app password=" + pwHead + " " + pwTail,  // unquoted space
	"app:" + pwHead + pwTail + "@127.0.0.1/db",                   // a URL without its scheme
}

// TestNoCommandShowsASecret runs every command that takes a connection
// string, a registry, a target or a lake URL with hostile values, as a real
// process, and checks that no password and no secret file's content ever
// appears on stdout or stderr, that each fails (or, for tenants, lists the
// tenant) and that it names what failed.
func TestNoCommandShowsASecret(t *testing.T) {
	dir := t.TempDir()
	lakeURL := "file://" + filepath.Join(dir, "lake")
	if err := os.Mkdir(filepath.Join(dir, "lake"), 0o755); err != nil {
		t.Fatal(err)
	}
	shadow := filepath.Join(dir, "shadow")
	if err := os.WriteFile(shadow, []byte("root:$6$"+shadowSecret+"$"+pwHead+":19000:0:99999:7:::\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"TL_SECRET_DSN=" + hostileURLs[0], "TL_SECRET_SHADOW=root:$6$" + shadowSecret}

	// One tenant per hostile connection, in a YAML and in a PostgreSQL
	// registry.
	conns := append(append([]string{}, hostileURLs...), hostileKV...)
	conns = append(conns, "file:"+shadow, "env:TL_SECRET_DSN", "env:TL_SECRET_SHADOW")
	ids := make([]string, len(conns))
	yaml := "tenants:\n"
	var rows [][]any
	for i, c := range conns {
		ids[i] = fmt.Sprintf("h%02d", i)
		yaml += fmt.Sprintf("  - tenant_id: %s\n    connection: %q\n", ids[i], c)
		rows = append(rows, []any{ids[i], c})
	}
	yamlReg := filepath.Join(dir, "tenants.yaml")
	if err := os.WriteFile(yamlReg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	pgReg := pgRegistry(t, rows)

	type run struct {
		name string
		args []string
		ok   bool     // the command succeeds
		want []string // what stdout or stderr must hold
	}
	var runs []run
	for _, reg := range []string{yamlReg, pgReg} {
		kind := "yaml"
		if reg == pgReg {
			kind = "postgres"
		}
		runs = append(runs,
			run{kind + " tenants", []string{"tenants", "--registry", reg}, true, nil},
			run{kind + " tenants --json", []string{"tenants", "--registry", reg, "--json"}, true, nil},
			run{kind + " read --all", []string{"read", "--registry", reg, "--all"}, false, ids},
			run{kind + " read --all --json", []string{"read", "--registry", reg, "--all", "--json"}, false, ids},
		)
	}
	for i, c := range conns {
		runs = append(runs, run{"read --tenant " + c, []string{"read", "--registry", yamlReg, "--tenant", ids[i]}, false, []string{"tenant " + ids[i]}})
	}
	for _, ref := range append([]string{"postgress://app:" + pwHead + pwTail + "@127.0.0.1/db"}, hostileKV...) {
		// Not a postgres:// URL: taken for a YAML file's name.
		runs = append(runs, run{"--registry " + ref + " tenants", []string{"tenants", "--registry", ref}, false, []string{"tenant registry", "xxxxx"}})
	}
	for _, u := range hostileURLs {
		runs = append(runs,
			run{"--registry " + u + " tenants", []string{"tenants", "--registry", u}, false, []string{"tenant registry"}},
			run{"--registry " + u + " read --tenant", []string{"read", "--registry", u, "--tenant", "acme"}, false, []string{"tenant registry"}},
			run{"--registry " + u + " read --all", []string{"read", "--registry", u, "--all"}, false, []string{"tenant registry"}},
			run{"load --target " + u, []string{"load", "--target", u, "--tenant", "acme", "--latest"}, false, []string{"target"}},
		)
		bq := "bigquery" + strings.TrimPrefix(strings.TrimPrefix(u, "postgresql"), "postgres")
		runs = append(runs, run{"load --target " + bq, []string{"load", "--target", bq, "--tenant", "acme", "--latest"}, false, []string{"target", "bigquery://app"}})
		gs := "gs" + strings.TrimPrefix(strings.TrimPrefix(u, "postgresql"), "postgres")
		runs = append(runs, run{"--lake " + gs, []string{"snapshots", "--lake", gs, "--tenant", "acme"}, false, []string{"lake"}})
	}

	for _, r := range runs {
		args := append([]string{"--lake", lakeURL}, r.args...)
		got := runCLI(t, env, args...)
		both := got.stdout + got.stderr
		for _, s := range []string{pwHead, pwTail, shadowSecret} {
			if strings.Contains(both, s) {
				t.Errorf("%s: the output shows %q:\nstdout:\n%s\nstderr:\n%s", r.name, s, got.stdout, got.stderr)
			}
		}
		if ok := got.code == 0; ok != r.ok {
			t.Errorf("%s: exit code %d, want success %v:\n%s", r.name, got.code, r.ok, both)
		}
		for _, w := range r.want {
			if !strings.Contains(both, w) {
				t.Errorf("%s: the output does not name %q:\n%s", r.name, w, both)
			}
		}
	}

	// tenants shows each connection redacted, whatever the registry.
	for _, reg := range []string{yamlReg, pgReg} {
		human := runCLI(t, env, "--lake", lakeURL, "tenants", "--registry", reg).stdout
		var lines []tenantLine
		if err := json.Unmarshal([]byte(runCLI(t, env, "--lake", lakeURL, "tenants", "--registry", reg, "--json").stdout), &lines); err != nil {
			t.Fatal(err)
		}
		if len(lines) != len(conns) {
			t.Fatalf("tenants --json: %d tenants, want %d", len(lines), len(conns))
		}
		for i, c := range conns {
			want := tenant.Redact(c)
			if lines[i].ID != ids[i] || lines[i].Connection != want || !strings.Contains(human, want) {
				t.Errorf("registry %s: tenant %s: connection %q, want %q in JSON and in:\n%s", tenant.Redact(reg), ids[i], lines[i].Connection, want, human)
			}
		}
	}

	// A secret file's content is never shown; the reference is, with why.
	got := runCLI(t, env, "--lake", lakeURL, "read", "--registry", yamlReg, "--tenant", ids[len(conns)-3])
	if want := "connection file:" + shadow + ": the file's content is not a valid PostgreSQL connection string"; !strings.Contains(got.stdout+got.stderr, want) {
		t.Errorf("read of a tenant whose secret file is not a connection string: output lacks %q:\n%s%s", want, got.stdout, got.stderr)
	}
}

// pgRegistry creates a database holding a tenant_registry table with rows
// (tenant_id, connection) and returns its URL.
func pgRegistry(t *testing.T, rows [][]any) string {
	t.Helper()
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	conn := pgtest.Connect(t, dsn)
	if _, err := conn.Exec(ctx, `CREATE TABLE tenant_registry (
		tenant_id text PRIMARY KEY, connection text, is_active bool NOT NULL DEFAULT true,
		include text[], exclude text[])`); err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if _, err := conn.Exec(ctx, `INSERT INTO tenant_registry (tenant_id, connection) VALUES ($1, $2)`, r...); err != nil {
			t.Fatal(err)
		}
	}
	return dsn
}

// TestHelpAndReplayShowNoSecret: flag defaults taken from environment
// variables (--registry, --lake, load's --target) are shown redacted by
// every command's --help, and `replay --url` never shows the URL's
// password, whether the URL does not parse, cannot be reached or answers
// with an error that is not JSON.
func TestHelpAndReplayShowNoSecret(t *testing.T) {
	secret := func(name string, got cliRun) {
		t.Helper()
		for _, s := range []string{pwHead, pwTail} {
			if strings.Contains(got.stdout+got.stderr, s) {
				t.Errorf("%s: the output shows %q:\nstdout:\n%s\nstderr:\n%s", name, s, got.stdout, got.stderr)
			}
		}
	}
	for i, u := range hostileURLs {
		env := []string{"TENANTLAKE_REGISTRY=" + u, "TENANTLAKE_TARGET=" + u, "TENANTLAKE_TARGETS=" + u,
			"TENANTLAKE_LAKE=" + "gs" + strings.TrimPrefix(strings.TrimPrefix(u, "postgresql"), "postgres")}
		for _, c := range root.Commands() {
			got := runCLI(t, env, c.Name(), "--help")
			secret(fmt.Sprintf("url %d: %s --help", i, c.Name()), got)
			if got.code != 0 || !strings.Contains(got.stdout, "--registry") {
				t.Errorf("url %d: %s --help: exit %d:\n%s%s", i, c.Name(), got.code, got.stdout, got.stderr)
			}
		}
		secret(fmt.Sprintf("url %d: tenantlake --help", i), runCLI(t, env, "--help"))
	}

	// A server that answers 502 with a text body.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "bad gateway", http.StatusBadGateway)
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	for _, u := range []string{
		"http://app:" + pwHead + pwTail + "@" + host,                 // answers 502
		"http://app:" + pwHead + pwTail + "@" + host + "/x%zz",       // does not parse
		"http://app:" + pwHead + "%zz" + pwTail + "@" + host,         // a bad escape in the password
		"http://app:" + pwHead + pwTail + "@127.0.0.1:1",             // refuses connections
		"ftp://app:" + pwHead + pwTail + "@" + host,                  // not http
		"http://app:" + pwHead + "@" + pwTail + "@" + host + "/base", // an unescaped '@'
	} {
		got := runCLI(t, nil, "replay", "--tenant", "acme", "--at", "2026-11-20", "--url", u)
		secret("replay --url "+tenant.Redact(u), got)
		if got.code == 0 || !strings.Contains(got.stderr, "replay") {
			t.Errorf("replay --url %s: exit %d:\n%s", tenant.Redact(u), got.code, got.stderr)
		}
	}
}

// TestRunServeReplayRefuseBadTargetsAtStart: run, serve and replay check
// every target URL when they start, before any tenant is read: a target
// that does not parse or has a bad option fails naming TENANTLAKE_TARGETS
// and the target, without its password.
func TestRunServeReplayRefuseBadTargetsAtStart(t *testing.T) {
	dir := t.TempDir()
	lakeDir := filepath.Join(dir, "lake")
	if err := os.Mkdir(lakeDir, 0o755); err != nil {
		t.Fatal(err)
	}
	reg := filepath.Join(dir, "tenants.yaml")
	if err := os.WriteFile(reg, []byte("tenants:\n  - tenant_id: acme\n    connection: env:TL_NOT_SET\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := append([]string{
		"postgres://app:" + pwHead + pwTail + "@127.0.0.1/db?profile_check=maybe",
		"postgres://app:" + pwHead + pwTail + "@127.0.0.1/db?all_tenants_schema=",
		"postgres://app:" + pwHead + pwTail + "@127.0.0.1/db?schema_check=false&schema_check=true",
	}, hostileURLs...)
	for _, u := range bad {
		env := []string{"TENANTLAKE_LAKE=file://" + lakeDir, "TENANTLAKE_REGISTRY=" + reg, "TENANTLAKE_TARGETS=" + u,
			"TENANTLAKE_PROJECT=tenantlake-test", "PUBSUB_EMULATOR_HOST=127.0.0.1:1"}
		for _, args := range [][]string{
			{"run", "--once", "--listen", "127.0.0.1:0"},
			{"serve", "--listen", "127.0.0.1:0"},
			{"replay", "--tenant", "acme", "--at", "2026-11-20", "--dry-run"},
		} {
			got := runCLI(t, env, args...)
			both := got.stdout + got.stderr
			name := args[0] + " with target " + tenant.Redact(u)
			for _, s := range []string{pwHead, pwTail} {
				if strings.Contains(both, s) {
					t.Errorf("%s: the output shows %q:\n%s", name, s, both)
				}
			}
			if got.code == 0 || !strings.Contains(got.stderr, "TENANTLAKE_TARGETS: target 1 (") {
				t.Errorf("%s: exit %d, want a failure naming TENANTLAKE_TARGETS:\n%s", name, got.code, both)
			}
			if strings.Contains(both, "TL_NOT_SET") {
				t.Errorf("%s: a tenant was read before the target was checked:\n%s", name, both)
			}
		}
	}
	if entries, err := os.ReadDir(lakeDir); err != nil || len(entries) != 0 {
		t.Errorf("the lake was written: %v %v", entries, err)
	}
}
