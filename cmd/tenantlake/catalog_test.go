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
