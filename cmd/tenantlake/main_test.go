package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tenantlake/tenantlake/internal/pgtest"
	"github.com/tenantlake/tenantlake/lake"
	"github.com/tenantlake/tenantlake/tenant"
)

// asCLI makes the test binary run as tenantlake itself (see runCLI).
const asCLI = "TENANTLAKE_TEST_AS_CLI"

// TestMain doubles as the tenantlake command for runCLI.
func TestMain(m *testing.M) {
	if os.Getenv(asCLI) == "1" {
		main()
		os.Exit(0)
	}
	pgtest.Main(m)
}

// cliRun is what one run of the tenantlake process did.
type cliRun struct {
	stdout, stderr string
	code           int
}

// runCLI runs the tenantlake command line with args as a process of its
// own (this test binary, see TestMain), so that everything it writes to
// stdout and stderr is seen, logs included. env is added to an environment
// without TENANTLAKE_* and PG* variables.
func runCLI(t *testing.T, env []string, args ...string) cliRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TENANTLAKE_") && !strings.HasPrefix(kv, "PG") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(append(cmd.Env, asCLI+"=1"), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	r := cliRun{stdout: out.String(), stderr: errOut.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("run tenantlake %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// TestEmptyFlagValues: a flag given with an empty value is an error naming
// the flag, for every command, before anything is read or written.
func TestEmptyFlagValues(t *testing.T) {
	f := newFixture(t)
	reg := filepath.Join(t.TempDir(), "tenants.yaml")
	if err := os.WriteFile(reg, []byte("tenants:\n  - tenant_id: acme\n    connection: env:NOPE\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"show", "--tenant", "acme", "--at", ""},
		{"show", "--tenant", "acme", "--snapshot", ""},
		{"show", "--tenant", ""},
		{"snapshots", "--tenant", ""},
		{"load", "--tenant", "acme", "--at", "", "--target", "postgres://x/y"},
		{"load", "--tenant", "acme", "--snapshot", "", "--target", "postgres://x/y"},
		{"load", "--tenant", "", "--latest", "--target", "postgres://x/y"},
		{"load", "--tenant", "acme", "--latest", "--target", ""},
		{"read", "--registry", reg, "--tenant", ""},
		{"gc", "--tenant", "", "--keep-last", "1"},
		{"tenants", "--registry", ""},
		{"snapshots", "--tenant", "acme", "--lake", ""},
	} {
		flag := ""
		for i, a := range args {
			if i+1 < len(args) && args[i+1] == "" {
				flag = a
			}
		}
		if flag != "--lake" {
			args = append([]string{"--lake", f.url}, args...)
		}
		_, err := execute(t, args...)
		if err == nil || !strings.HasPrefix(err.Error(), flag+": empty value") {
			t.Errorf("tenantlake %q: error %v, want one starting %q", args, err, flag+": empty value")
		}
	}
	// Nothing was loaded or deleted: the fixture is as it was.
	if out := mustExecute(t, "snapshots", "--lake", f.url, "--tenant", "acme"); strings.Count(out, "\n") != 4 {
		t.Errorf("after the runs with empty values, snapshots:\n%s", out)
	}
}

// TestOnlyReadCreatesALake: every command but read refuses a file:// lake
// whose folder is missing, naming it, and creates nothing; read creates it.
func TestOnlyReadCreatesALake(t *testing.T) {
	base := t.TempDir()
	missing := filepath.Join(base, "typo", "lake")
	lakeURL := "file://" + missing
	dsn := pgtest.NewDatabase(t)
	reg := filepath.Join(base, "tenants.yaml")
	if err := os.WriteFile(reg, []byte(fmt.Sprintf("tenants:\n  - tenant_id: acme\n    connection: %q\n", dsn)), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"tenants", "--registry", reg},
		{"tenants", "--registry", reg, "--json"},
		{"snapshots", "--tenant", "acme"},
		{"show", "--tenant", "acme"},
		{"gc", "--all", "--dry-run"},
		{"gc", "--tenant", "acme", "--keep-last", "1"},
		{"load", "--tenant", "acme", "--latest", "--target", dsn},
		{"replay", "--tenant", "acme", "--at", "2026-11-20", "--dry-run"},
	} {
		t.Setenv("TENANTLAKE_TARGETS", dsn) // for replay
		_, err := execute(t, append([]string{"--lake", lakeURL}, args...)...)
		if !errors.Is(err, lake.ErrNotFound) || !strings.Contains(err.Error(), "folder "+missing+" does not exist") {
			t.Errorf("tenantlake %s on a missing lake: %v, want ErrNotFound naming %s", strings.Join(args, " "), err, missing)
		}
		if _, err := os.Stat(filepath.Join(base, "typo")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("tenantlake %s created %s", strings.Join(args, " "), filepath.Join(base, "typo"))
		}
	}
	mustExecute(t, "--lake", lakeURL, "read", "--registry", reg, "--tenant", "acme")
	out := mustExecute(t, "--lake", lakeURL, "snapshots", "--tenant", "acme")
	if strings.Count(out, "\n") != 2 {
		t.Errorf("after read: snapshots:\n%s\nwant the one snapshot read", out)
	}
}

// TestTenantFlagIsBlamed: a bad --tenant is reported as the flag's fault,
// with the code point and position of the offending character, by every
// command; the registry is not named.
func TestTenantFlagIsBlamed(t *testing.T) {
	f := newFixture(t)
	reg := filepath.Join(t.TempDir(), "tenants.yaml")
	if err := os.WriteFile(reg, []byte("tenants:\n  - tenant_id: acme\n    connection: env:NOPE\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for id, reason := range map[string]string{
		"ACME":        `invalid tenant id "ACME": must start with a lower-case letter a-z, not 'A' (U+0041)`,
		"acme\u200b":  `invalid tenant id "acme\u200b": character U+200B at position 5 is not one of a-z, 0-9 or _`,
		"../acme":     `invalid tenant id "../acme": must start with a lower-case letter a-z, not '.' (U+002E)`,
		"acme_" + "é": `invalid tenant id "acme_\u00e9": character U+00E9 at position 6 is not one of a-z, 0-9 or _`,
	} {
		for cmd, args := range map[string][]string{
			"read":      {"read", "--registry", reg, "--tenant", id},
			"load":      {"load", "--tenant", id, "--latest", "--target", "postgres://x/y"},
			"snapshots": {"snapshots", "--tenant", id},
			"show":      {"show", "--tenant", id},
			"gc":        {"gc", "--tenant", id, "--dry-run"},
			"replay":    {"replay", "--tenant", id, "--at", "2026-11-20", "--dry-run", "--url", "http://127.0.0.1:1"},
		} {
			_, err := execute(t, append([]string{"--lake", f.url}, args...)...)
			want := cmd + ": --tenant: " + reason
			if !errors.Is(err, tenant.ErrInvalidID) || err.Error() != want {
				t.Errorf("tenantlake %s --tenant %q: %v\nwant %s", cmd, id, err, want)
			}
		}
	}
}

// TestRegistriesRejectAlike: a registry holding a bad tenant id fails every
// read, including one of another, good tenant, whether it is a YAML file or
// a PostgreSQL table.
func TestRegistriesRejectAlike(t *testing.T) {
	f := newFixture(t)
	yamlReg := filepath.Join(t.TempDir(), "tenants.yaml")
	if err := os.WriteFile(yamlReg, []byte("tenants:\n  - tenant_id: acme\n    connection: env:NOPE\n  - tenant_id: Bad-Id\n    connection: env:NOPE\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pgReg := pgRegistry(t, [][]any{{"acme", "env:NOPE"}, {"Bad-Id", "env:NOPE"}})
	for _, reg := range []string{yamlReg, pgReg} {
		for _, args := range [][]string{
			{"read", "--tenant", "acme"},
			{"read", "--all"},
			{"tenants"},
		} {
			_, err := execute(t, append([]string{"--lake", f.url, "--registry", reg}, args...)...)
			if !errors.Is(err, tenant.ErrInvalidID) || !strings.Contains(err.Error(), `"Bad-Id"`) || !strings.Contains(err.Error(), "tenant registry") {
				t.Errorf("registry %s: tenantlake %s: %v, want the registry's bad id", tenant.Redact(reg), strings.Join(args, " "), err)
			}
		}
	}
}
