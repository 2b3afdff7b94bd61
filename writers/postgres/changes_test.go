package postgres_test

import (
	"errors"
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
