package postgres_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tenantlake/tenantlake/lake"
	"github.com/tenantlake/tenantlake/writers"
	"github.com/tenantlake/tenantlake/writers/postgres"
)

// TestChangeTablesInTheWay: a snapshot holding a table with the name of
// another's change table is refused before anything is written; a user's
// table with a change table's name fails the promotion, naming it, and the
// old snapshot stays live with its change rows as they were; a snapshot
// that drops a table keeps the table's change history; a catalog made
// before change tables takes them.
func TestChangeTablesInTheWay(t *testing.T) {
	f := newFixture(t)
	// A catalog as an older version made it: kinds 'table' and 'view' only.
	f.exec(f.warehouse, `CREATE SCHEMA tenantlake`, `CREATE TABLE tenantlake.schemas (
	schema_name text PRIMARY KEY,
	role        text NOT NULL CHECK (role IN ('control', 'tenant', 'staging', 'all_tenants')),
	tenant      text NOT NULL DEFAULT '',
	created_at  timestamptz NOT NULL DEFAULT now())`, `CREATE TABLE tenantlake.tables (
	schema_name text NOT NULL REFERENCES tenantlake.schemas,
	table_name  text NOT NULL,
	kind        text NOT NULL CHECK (kind IN ('table', 'view')),
	PRIMARY KEY (schema_name, table_name))`)
	w := f.writer(postgres.Config{Changes: true})

	clash := f.snapshot("acme", `CREATE TABLE orders (id int PRIMARY KEY)`, `CREATE TABLE orders_changes (id int PRIMARY KEY)`)
	out, err := w.Load(f.ctx, f.lk, writers.Request{Tenant: "acme", SnapshotID: clash.SnapshotID, Reason: writers.ReasonScheduled})
	if !errors.Is(err, lake.ErrInvalid) || !strings.Contains(err.Error(), "orders_changes") || out == nil || out.Outcome != writers.OutcomeFailed {
		t.Fatalf("load of a snapshot with orders and orders_changes: %v, outcome %+v; want ErrInvalid naming orders_changes, failed", err, out)
	}
	equal(t, "tenant schemas after the refused load", f.query(`SELECT nspname FROM pg_namespace WHERE nspname LIKE 'tenant%' ORDER BY 1`), []string{"tenantlake"})

	v1 := f.snapshot("acme", `CREATE TABLE orders (id int PRIMARY KEY, v text)`, `INSERT INTO orders VALUES (1, 'a')`, `CREATE TABLE items (k text)`, `INSERT INTO items VALUES ('x')`)
	f.load(w, v1, writers.OutcomeLoaded)
	v2 := f.snapshot("acme", `CREATE TABLE orders (id int PRIMARY KEY, v text)`, `INSERT INTO orders VALUES (1, 'b')`)
	out = f.load(w, v2, writers.OutcomeLoaded)
	if out.Changes == nil || out.Changes.Rows["orders_changes"] != 1 || out.Changes.Rows["items_changes"] != 1 {
		t.Fatalf("changes of v2: %+v; want 1 row each in orders_changes and items_changes", out.Changes)
	}
	equal(t, "dropped table's history", f.query(`SELECT operation, row_before::text FROM tenant_acme.items_changes`), []string{`delete|{"k":"x"}`})
	equal(t, "tables of tenant_acme", f.query(`SELECT tablename FROM pg_tables WHERE schemaname = 'tenant_acme' ORDER BY 1`), []string{"items_changes", "orders", "orders_changes"})

	// A user's table named like a change table the next load needs.
	f.exec(f.warehouse, `CREATE TABLE tenant_acme.extra_changes (mine int)`, `INSERT INTO tenant_acme.extra_changes VALUES (42)`)
	v3 := f.snapshot("acme", `CREATE TABLE orders (id int PRIMARY KEY, v text)`, `INSERT INTO orders VALUES (1, 'c')`, `CREATE TABLE extra (k int)`, `INSERT INTO extra VALUES (1)`)
	out, err = w.Load(f.ctx, f.lk, writers.Request{Tenant: "acme", SnapshotID: v3.SnapshotID, Reason: writers.ReasonScheduled})
	if !errors.Is(err, postgres.ErrNotOwned) || !strings.Contains(err.Error(), "tenant_acme.extra_changes") || out.Live != v2.SnapshotID {
		t.Fatalf("load over a user's extra_changes: %v, outcome %+v; want ErrNotOwned naming it, %s still live", err, out, v2.SnapshotID)
	}
	equal(t, "the user's table", f.query(`SELECT mine FROM tenant_acme.extra_changes`), []string{"42"})
	equal(t, "orders after the failed load", f.query(`SELECT v FROM tenant_acme.orders`), []string{"b"})
	equal(t, "orders_changes after the failed load", f.query(`SELECT operation, row_after->>'v' FROM tenant_acme.orders_changes`), []string{"update|b"})
}

// TestChangeTableNameReused: a snapshot whose table has the name of a
// change table (one tenantlake keeps in the tenant's schema, or one the
// load would fill with the rows of a table the snapshot drops) is refused
// before anything is written, with an error that says it is tenantlake's
// change table, with or without change tables switched on; the change
// history stays.
func TestChangeTableNameReused(t *testing.T) {
	f := newFixture(t)
	w := f.writer(postgres.Config{Changes: true})
	v1 := f.snapshot("acme", `CREATE TABLE orders (id int PRIMARY KEY, v text)`, `INSERT INTO orders VALUES (1, 'a')`)
	f.load(w, v1, writers.OutcomeLoaded)
	v2 := f.snapshot("acme", `CREATE TABLE orders (id int PRIMARY KEY, v text)`, `INSERT INTO orders VALUES (1, 'b')`)
	f.load(w, v2, writers.OutcomeLoaded)
	history := []string{`update|{"id":1,"v":"b"}`}
	equal(t, "orders_changes", f.query(`SELECT operation, row_after::text FROM tenant_acme.orders_changes`), history)

	// orders goes, a source table orders_changes comes.
	v3 := f.snapshot("acme", `CREATE TABLE orders_changes (id int)`, `INSERT INTO orders_changes VALUES (7)`)
	for _, cfg := range []postgres.Config{{Changes: true}, {}} {
		w := f.writer(cfg)
		out, err := w.Load(f.ctx, f.lk, writers.Request{Tenant: "acme", SnapshotID: v3.SnapshotID, Reason: writers.ReasonScheduled})
		if !errors.Is(err, lake.ErrInvalid) || !strings.Contains(err.Error(), "change table") || strings.Contains(err.Error(), "already exists") ||
			out == nil || out.Outcome != writers.OutcomeFailed || out.Live != v2.SnapshotID {
			t.Errorf("changes=%v: load of a snapshot with a table orders_changes: %v, outcome %+v; want ErrInvalid saying orders_changes is a change table, %s still live", cfg.Changes, err, out, v2.SnapshotID)
		}
	}
	equal(t, "orders_changes after the refused loads", f.query(`SELECT operation, row_after::text FROM tenant_acme.orders_changes`), history)
	equal(t, "staging schemas", f.query(`SELECT nspname FROM pg_namespace WHERE nspname LIKE 'tenantlake_staging_%'`), nil)

	// A table with no change table yet, whose deletes would go to the
	// change table named like the snapshot's new table.
	f2 := newFixture(t)
	w2 := f2.writer(postgres.Config{Changes: true})
	f2.load(w2, f2.snapshot("acme", `CREATE TABLE items (k int)`, `INSERT INTO items VALUES (1)`), writers.OutcomeLoaded)
	m := f2.snapshot("acme", `CREATE TABLE items_changes (k int)`, `INSERT INTO items_changes VALUES (1)`)
	out, err := w2.Load(f2.ctx, f2.lk, writers.Request{Tenant: "acme", SnapshotID: m.SnapshotID, Reason: writers.ReasonScheduled})
	if !errors.Is(err, lake.ErrInvalid) || !strings.Contains(err.Error(), "items_changes") || strings.Contains(err.Error(), "already exists") || out == nil || out.Outcome != writers.OutcomeFailed {
		t.Errorf("load of a snapshot that drops items and has items_changes: %v, outcome %+v; want ErrInvalid naming items_changes", err, out)
	}
}

// TestChangesCorruptBase: a part of the previous live snapshot that does not
// match its manifest fails the load naming that snapshot; the new snapshot,
// which is sound, is not reported quarantined, and nothing changes.
func TestChangesCorruptBase(t *testing.T) {
	f := newFixture(t)
	w := f.writer(postgres.Config{Changes: true})
	v1 := f.snapshot("acme", `CREATE TABLE orders (id int PRIMARY KEY, v text)`, `INSERT INTO orders VALUES (1, 'a')`)
	f.load(w, v1, writers.OutcomeLoaded)
	v2 := f.snapshot("acme", `CREATE TABLE orders (id int PRIMARY KEY, v text)`, `INSERT INTO orders VALUES (1, 'b')`)
	if err := os.WriteFile(filepath.Join(f.lakeDir, v1.Tables[0].Files[0].Path), []byte("not the part"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := w.Load(f.ctx, f.lk, writers.Request{Tenant: "acme", SnapshotID: v2.SnapshotID, Reason: writers.ReasonScheduled})
	if err == nil || out == nil || out.Outcome != writers.OutcomeFailed || !strings.Contains(out.Message, "previous live snapshot "+v1.SnapshotID) {
		t.Errorf("load over a corrupt previous snapshot: %v, outcome %+v; want failed, naming the previous live snapshot %s", err, out, v1.SnapshotID)
	}
	equal(t, "orders", f.query(`SELECT v FROM tenant_acme.orders`), []string{"a"})
	equal(t, "change tables", f.query(`SELECT tablename FROM pg_tables WHERE tablename LIKE '%changes'`), nil)
}
