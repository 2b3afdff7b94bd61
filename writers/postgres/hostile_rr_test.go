package postgres_test

import (
	"os"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/tenantlake/tenantlake/internal/pgtest"
	"github.com/tenantlake/tenantlake/writers"
	"github.com/tenantlake/tenantlake/writers/postgres"
)

// TestHostileRepeatableRead: what an analyst's REPEATABLE READ transaction,
// whose snapshot predates a promotion (or a rebuild) but which had not read
// the combined table yet, sees of the tenant afterwards.
func TestHostileRepeatableRead(t *testing.T) {
	f := newFixture(t)
	w := f.writer(postgres.Config{})
	f.load(w, f.snapshot("acme", `CREATE TABLE items (id bigint)`, `INSERT INTO items SELECT generate_series(1, 5)`), writers.OutcomeLoaded)
	f.load(w, f.snapshot("globex", `CREATE TABLE items (id bigint)`, `INSERT INTO items VALUES (1)`), writers.OutcomeLoaded)
	analyst := pgtest.Connect(t, f.warehouse)
	see := func(what string, act func()) {
		tx, err := analyst.BeginTx(f.ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(f.ctx)
		var n, m int
		if err := tx.QueryRow(f.ctx, `SELECT count(*) FROM tenantlake.live`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		act()
		if err := tx.QueryRow(f.ctx, `SELECT count(*) FROM all_tenants.items WHERE tenant_id = 'acme'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if err := tx.QueryRow(f.ctx, `SELECT count(*) FROM tenant_acme.items`).Scan(&m); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: the analyst's snapshot sees acme with %d rows in all_tenants.items, %d in tenant_acme.items", what, n, m)
		if n == 0 {
			t.Errorf("%s: acme has no rows in all_tenants.items for a REPEATABLE READ transaction older than it", what)
		}
	}
	see("promotion (pending slice)", func() {
		f.load(w, f.snapshot("acme", `CREATE TABLE items (id bigint)`, `INSERT INTO items SELECT generate_series(1, 3)`), writers.OutcomeLoaded)
	})
	// Known, not fixed: a slice filled at the promotion (INSERT ... SELECT:
	// RebuildAllTenants, or a promotion without its pending slice) holds
	// rows of the promoting transaction, invisible to older snapshots,
	// while the old partition is gone for them: the tenant has no rows
	// in the combined table for them. (The pending slice's COPY FREEZE
	// rows are visible to every snapshot.) Run with
	// TENANTLAKE_HOSTILE_KNOWN=1 to see it fail.
	if os.Getenv("TENANTLAKE_HOSTILE_KNOWN") == "" {
		t.Skip("known: a slice filled by INSERT ... SELECT is empty for older REPEATABLE READ snapshots")
	}
	see("RebuildAllTenants", func() {
		if err := w.RebuildAllTenants(f.ctx, "acme"); err != nil {
			t.Fatal(err)
		}
	})
}
