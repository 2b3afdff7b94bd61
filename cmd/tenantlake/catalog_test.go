package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tenantlake/tenantlake/internal/pgtest"
	"github.com/tenantlake/tenantlake/lake"
	"github.com/tenantlake/tenantlake/ops"
)

// TestCatalogOnReadSnapshots runs snapshots, show --at and gc on snapshots
// written by `tenantlake read` from a real PostgreSQL database.
func TestCatalogOnReadSnapshots(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	conn := pgtest.Connect(t, dsn)
	exec := func(sql string) {
		t.Helper()
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	exec(`CREATE TABLE invoices (id bigint PRIMARY KEY, amount numeric(12,2) NOT NULL, issued timestamptz)`)
	exec(`CREATE TABLE coupons (code text PRIMARY KEY)`)
	exec(`INSERT INTO invoices SELECT g, g * 1.25, '2026-01-01'::timestamptz + g * interval '1 hour' FROM generate_series(1, 40) g`)

	dir := t.TempDir()
	reg := filepath.Join(dir, "tenants.yaml")
	if err := os.WriteFile(reg, []byte(fmt.Sprintf("tenants:\n  - tenant_id: acme\n    connection: %q\n", dsn)), 0o600); err != nil {
		t.Fatal(err)
	}
	lakeURL := "file://" + filepath.Join(dir, "lake")
	mustExecute(t, "read", "--registry", reg, "--lake", lakeURL, "--tenant", "acme")
	exec(`INSERT INTO invoices SELECT g, g * 1.25, NULL FROM generate_series(41, 50) g`)
	mustExecute(t, "read", "--registry", reg, "--lake", lakeURL, "--tenant", "acme")

	var snaps []ops.Summary
	if err := json.Unmarshal([]byte(mustExecute(t, "snapshots", "--lake", lakeURL, "--tenant", "acme", "--json")), &snaps); err != nil {
		t.Fatal(err)
	}
	if len(snaps) != 2 || snaps[0].SnapshotID <= snaps[1].SnapshotID || snaps[0].Rows != 50 || snaps[1].Rows != 40 || snaps[0].Tables != 2 {
		t.Fatalf("snapshots: %+v, want the 50-row snapshot then the 40-row one, 2 tables each", snaps)
	}
	newer, older := snaps[0].SnapshotID, snaps[1].SnapshotID

	// As of the older snapshot's own time: the older one; as of its id: the same.
	for _, at := range []string{snaps[1].Time.Format("2006-01-02T15:04:05.000Z07:00"), older} {
		var m lake.Manifest
		if err := json.Unmarshal([]byte(mustExecute(t, "show", "--lake", lakeURL, "--tenant", "acme", "--at", at, "--json")), &m); err != nil {
			t.Fatal(err)
		}
		if m.SnapshotID != older || m.Table("invoices") == nil || m.Table("invoices").Rows != 40 {
			t.Errorf("show --at %s: snapshot %s, want %s with 40 invoices", at, m.SnapshotID, older)
		}
	}
	out := mustExecute(t, "show", "--lake", lakeURL, "--tenant", "acme", "--columns")
	for _, want := range []string{"snapshot     " + newer, "postgres database", "2 tables, 50 rows"} {
		if !strings.Contains(out, want) {
			t.Errorf("show: output lacks %q:\n%s", want, out)
		}
	}
	if !containsFields(out, "invoices", "public.invoices", "50") || !containsFields(out, "amount", "numeric(12,2)") || !containsFields(out, "coupons", "public.coupons", "0") {
		t.Errorf("show --columns: table or column lines wrong:\n%s", out)
	}

	mustExecute(t, "gc", "--lake", lakeURL, "--tenant", "acme", "--keep-last", "1")
	if err := json.Unmarshal([]byte(mustExecute(t, "snapshots", "--lake", lakeURL, "--tenant", "acme", "--json")), &snaps); err != nil {
		t.Fatal(err)
	}
	if len(snaps) != 1 || snaps[0].SnapshotID != newer {
		t.Errorf("after gc --keep-last 1: %+v, want only %s", snaps, newer)
	}
}

// TestControlCharactersEscaped: names and values from a tenant's database
// that hold terminal control sequences (a valid PostgreSQL table name can)
// are printed with their control characters escaped, never raw, by the
// human-readable output of show, diff and read.
func TestControlCharactersEscaped(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	conn := pgtest.Connect(t, dsn)
	for _, sql := range []string{
		"CREATE TABLE \"esc\x1b[31mred\x1b]0;pwned\x07\" (id int PRIMARY KEY, \"col\x1b[2J\" text)",
		"INSERT INTO \"esc\x1b[31mred\x1b]0;pwned\x07\" VALUES (1, E'\\x1b[2Jvalue\\x7f')",
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	dir := t.TempDir()
	reg := filepath.Join(dir, "tenants.yaml")
	if err := os.WriteFile(reg, []byte(fmt.Sprintf("tenants:\n  - tenant_id: acme\n    connection: %q\n", dsn)), 0o600); err != nil {
		t.Fatal(err)
	}
	lakeURL := "file://" + filepath.Join(dir, "lake")
	outs := map[string]string{"read": mustExecute(t, "read", "--registry", reg, "--lake", lakeURL, "--tenant", "acme")}
	if _, err := conn.Exec(ctx, "ALTER TABLE \"esc\x1b[31mred\x1b]0;pwned\x07\" ADD \"new\x1b[5m\" int"); err != nil {
		t.Fatal(err)
	}
	mustExecute(t, "read", "--registry", reg, "--lake", lakeURL, "--tenant", "acme")
	var snaps []ops.Summary
	if err := json.Unmarshal([]byte(mustExecute(t, "snapshots", "--lake", lakeURL, "--tenant", "acme", "--json")), &snaps); err != nil || len(snaps) != 2 {
		t.Fatalf("snapshots: %+v, %v", snaps, err)
	}
	outs["show --columns"] = mustExecute(t, "show", "--lake", lakeURL, "--tenant", "acme", "--snapshot", snaps[1].SnapshotID, "--columns")
	outs["diff"] = mustExecute(t, "diff", "--lake", lakeURL, "--tenant", "acme", "--from", snaps[1].SnapshotID, "--to", snaps[0].SnapshotID)
	for cmd, out := range outs {
		if strings.ContainsAny(out, "\x1b\x07\x7f") {
			t.Errorf("%s printed a raw control character:\n%q", cmd, out)
		}
	}
	if !strings.Contains(outs["show --columns"], `public."esc\x1b[31mred\x1b]0;pwned\x07"`) || !strings.Contains(outs["show --columns"], `\x1b[2Jvalue\x7f`) {
		t.Errorf("show --columns: the table's source name or its value, escaped, is missing:\n%s", outs["show --columns"])
	}
}
