package tenant

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/tenantlake/tenantlake/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const secret = "s3cretPW"

func writeYAML(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "tenants.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// checkRegistry checks List and Get on a registry holding acme (active, with
// patterns, its connection carrying secret) and globex (inactive).
func checkRegistry(t *testing.T, r Registry) {
	t.Helper()
	ctx := context.Background()
	want := []Tenant{
		{ID: "acme", Connection: "postgres://u:" + secret + "@db/acme", Active: true, Include: []string{"public.*"}, Exclude: []string{"public.audit_log"}},
		{ID: "globex", Connection: "env:GLOBEX_DSN", Active: false},
	}
	got, err := r.List(ctx)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("List = %+v\nwant %+v", got, want)
	}
	one, err := r.Get(ctx, "globex")
	if err != nil || !reflect.DeepEqual(one, want[1]) {
		t.Fatalf("Get(globex) = %+v, %v", one, err)
	}
	if _, err := r.Get(ctx, "initech"); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "initech") {
		t.Errorf("Get(initech) = %v, want ErrNotFound naming initech", err)
	}
	if _, err := r.Get(ctx, "../x"); !errors.Is(err, ErrInvalidID) {
		t.Errorf("Get(../x) = %v, want ErrInvalidID", err)
	}
}

func TestFileRegistry(t *testing.T) {
	p := writeYAML(t, `
tenants:
  - tenant_id: globex
    connection: env:GLOBEX_DSN
    is_active: false
  - tenant_id: acme
    connection: postgres://u:`+secret+`@db/acme
    include: ["public.*"]
    exclude: [public.audit_log]
`)
	r, err := OpenRegistry(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	checkRegistry(t, r)
}

func TestFileRegistryEmpty(t *testing.T) {
	r, err := OpenRegistry(context.Background(), writeYAML(t, "tenants: []\n"))
	if err != nil {
		t.Fatal(err)
	}
	ts, err := r.List(context.Background())
	if err != nil || len(ts) != 0 {
		t.Fatalf("List = %v, %v; want no tenants", ts, err)
	}
}

func TestFileRegistryRejects(t *testing.T) {
	conn := "connection: postgres://u:" + secret + "@db/x\n"
	for name, tc := range map[string]struct{ yaml, mention string }{
		"bad id":        {"tenants:\n  - tenant_id: Acme\n    " + conn, `"Acme"`},
		"path id":       {"tenants:\n  - tenant_id: ../etc\n    " + conn, `"../etc"`},
		"unicode id":    {"tenants:\n  - tenant_id: аcme\n    " + conn, `"\u0430cme": must start with a lower-case letter a-z, not U+0430`},
		"empty id":      {"tenants:\n  - " + conn, "entry 1"},
		"duplicate":     {"tenants:\n  - tenant_id: acme\n    " + conn + "  - tenant_id: acme\n    " + conn, "acme is listed more than once"},
		"bad pattern":   {"tenants:\n  - tenant_id: acme\n    " + conn + "    include: ['public.[']\n", `"public.["`},
		"unknown field": {"tenants:\n  - tenant_id: acme\n    " + conn + "    is_activ: true\n", "is_activ"},
		"wrong type":    {"tenants:\n  - tenant_id: acme\n    is_active: " + "postgres://u:" + secret + "@db/x\n", "bool"},
		"not yaml":      {"tenants: [\n" + conn, "yaml"},
		"empty file":    {"", "no tenants list"},
		"comments only": {"# tenants: to come\n", "no tenants list"},
		"null tenants":  {"tenants:\n", "no tenants list"},
		"two documents": {"tenants: []\n---\ntenants:\n  - tenant_id: acme\n    " + conn, "more than one YAML document"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := OpenRegistry(context.Background(), writeYAML(t, tc.yaml))
			if err == nil {
				t.Fatal("OpenRegistry succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("error %q does not mention %q", err, tc.mention)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
	if _, err := OpenRegistry(context.Background(), filepath.Join(t.TempDir(), "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v, want os.ErrNotExist", err)
	}
	if _, err := OpenRegistry(context.Background(), ""); err == nil {
		t.Error("empty ref: no error")
	}
	// A connection string given as a registry by mistake is a file name
	// that does not exist; its password is not shown.
	for _, ref := range []string{"postgress://app:" + pwHead + pwTail + "@h/db", "host=h password=" + pwHead + pwTail} {
		_, err := OpenRegistry(context.Background(), ref)
		if !errors.Is(err, os.ErrNotExist) || len(leaks(err.Error())) > 0 || !strings.Contains(err.Error(), "xxxxx") {
			t.Errorf("OpenRegistry(%q) = %v, want os.ErrNotExist naming the ref redacted", ref, err)
		}
	}
}

// pgRegistryDB creates a database with a tenant_registry table holding rows
// and returns its URL with a password added (trust authentication ignores it).
func pgRegistryDB(t *testing.T, rows [][]any) string {
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
		if _, err := conn.Exec(ctx, `INSERT INTO tenant_registry VALUES ($1, $2, $3, $4, $5)`, r...); err != nil {
			t.Fatal(err)
		}
	}
	return strings.Replace(dsn, "postgres@", "postgres:"+secret+"@", 1)
}

func TestPostgresRegistry(t *testing.T) {
	url := pgRegistryDB(t, [][]any{
		{"globex", "env:GLOBEX_DSN", false, nil, nil},
		{"acme", "postgres://u:" + secret + "@db/acme", true, []string{"public.*"}, []string{"public.audit_log"}},
	})
	r, err := OpenRegistry(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	checkRegistry(t, r)
}

func TestPostgresRegistryRejects(t *testing.T) {
	ctx := context.Background()
	for name, rows := range map[string][][]any{
		"bad id":      {{"acme", "x", true, nil, nil}, {"Bad-Id", "x", true, nil, nil}},
		"bad pattern": {{"acme", "x", true, []string{"["}, nil}},
	} {
		t.Run(name, func(t *testing.T) {
			r, err := OpenRegistry(ctx, pgRegistryDB(t, rows))
			if err != nil {
				t.Fatal(err)
			}
			_, err = r.List(ctx)
			if err == nil {
				t.Fatal("List succeeded, want an error")
			}
			if strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), "xxxxx") {
				t.Errorf("error %q: want the registry URL redacted", err)
			}
			if name == "bad id" && !errors.Is(err, ErrInvalidID) {
				t.Errorf("error %q does not wrap ErrInvalidID", err)
			}
			// Get checks the whole registry too, as the YAML registry does:
			// a lookup of a good tenant fails with the same error.
			_, gerr := r.Get(ctx, "acme")
			if gerr == nil || gerr.Error() != err.Error() {
				t.Errorf("Get(acme) = %v, want List's error %v", gerr, err)
			}
		})
	}
}

// TestRegistryGetBlamesTheID: Get with an invalid id says the id is invalid
// and does not name the registry, which is not at fault.
func TestRegistryGetBlamesTheID(t *testing.T) {
	ctx := context.Background()
	p := writeYAML(t, "tenants:\n  - tenant_id: acme\n    connection: env:X\n")
	url := pgRegistryDB(t, [][]any{{"acme", "env:X", true, nil, nil}})
	for _, ref := range []string{p, url} {
		r, err := OpenRegistry(ctx, ref)
		if err != nil {
			t.Fatal(err)
		}
		_, err = r.Get(ctx, "ACME")
		want := `invalid tenant id "ACME": must start with a lower-case letter a-z, not 'A' (U+0041)`
		if !errors.Is(err, ErrInvalidID) || err.Error() != want {
			t.Errorf("registry %s: Get(ACME) = %v, want %q", Redact(ref), err, want)
		}
	}
}

// TestPostgresRegistryUnparsableURL: a registry URL that does not parse
// fails without showing its password.
func TestPostgresRegistryUnparsableURL(t *testing.T) {
	for _, raw := range []string{
		"postgres://app:" + pwHead + pwTail + "@127.0.0.1:notaport/db",
		"postgres://app:" + pwHead + "%zz" + pwTail + "@127.0.0.1/db",
		"postgres://app:" + pwHead + pwTail + "@[::1/db",
		"postgres://app:" + pwHead + "@" + pwTail + "@127.0.0.1/db",
	} {
		_, err := OpenRegistry(context.Background(), raw)
		if !errors.Is(err, ErrBadConnString) || !strings.Contains(err.Error(), "tenant registry postgres://app:xxxxx@") {
			t.Errorf("OpenRegistry(%q) = %v, want ErrBadConnString naming the registry redacted", raw, err)
		}
		if err != nil && len(leaks(err.Error())) > 0 {
			t.Errorf("OpenRegistry(%q): error %q shows the password", raw, err)
		}
	}
}

func TestPostgresRegistryUnreachable(t *testing.T) {
	ctx := context.Background()
	// No tenant_registry table.
	url := strings.Replace(pgtest.NewDatabase(t), "postgres@", "postgres:"+secret+"@", 1)
	_, err := OpenRegistry(ctx, url)
	if err == nil || !strings.Contains(err.Error(), "tenant_registry") || strings.Contains(err.Error(), secret) {
		t.Errorf("no table: error %v, want one naming tenant_registry without the password", err)
	}
	// No database.
	gone := url[:strings.LastIndex(url, "/")] + "/no_such_db?sslmode=disable"
	_, err = OpenRegistry(ctx, gone)
	if err == nil || !strings.Contains(err.Error(), "no_such_db") || strings.Contains(err.Error(), secret) {
		t.Errorf("no database: error %v, want one naming no_such_db without the password", err)
	}
}

func TestSelects(t *testing.T) {
	all := Tenant{ID: "a"}
	some := Tenant{ID: "b", Include: []string{"public.*", "billing.tax_rates"}, Exclude: []string{"public.audit_*"}}
	for _, tc := range []struct {
		t             Tenant
		schema, table string
		want          bool
	}{
		{all, "public", "orders", true},
		{all, "billing", "anything", true},
		{some, "public", "orders", true},
		{some, "public", "audit_log", false},
		{some, "billing", "tax_rates", true},
		{some, "billing", "invoices", false},
		{some, "other", "orders", false},
		{Tenant{Exclude: []string{"*.tmp_*"}}, "public", "tmp_x", false},
		{Tenant{Exclude: []string{"*.tmp_*"}}, "public", "orders", true},
	} {
		if got := tc.t.Selects(tc.schema, tc.table); got != tc.want {
			t.Errorf("%+v.Selects(%s, %s) = %v, want %v", tc.t, tc.schema, tc.table, got, tc.want)
		}
	}
}
