package postgres_test

import (
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/tenantlake/tenantlake/internal/pgtest"
	"github.com/tenantlake/tenantlake/writers"
	"github.com/tenantlake/tenantlake/writers/postgres"
)

// TestHostileRepeatableRead: an analyst's REPEATABLE READ transaction,
// whose snapshot predates a promotion (or a rebuild) but which had not
// read the combined table yet, still sees the tenant's rows there
// afterwards: the pending slice's COPY FREEZE rows are visible to every
// snapshot, and a slice without a pending one (RebuildAllTenants, or a
// promotion whose second connection failed) has its rows replaced in
// place, so the old ones stay visible to older snapshots.
func TestHostileRepeatableRead(t *testing.T) { bothPaths(t, testHostileRepeatableRead) }

func testHostileRepeatableRead(t *testing.T) {
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
	see("rebuild (no pending slice)", func() {
		if err := w.RebuildAllTenants(f.ctx, "acme"); err != nil {
			t.Fatal(err)
		}
	})
}
