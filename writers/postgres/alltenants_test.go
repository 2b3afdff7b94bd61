package postgres_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantlake/tenantlake/internal/pgtest"
	"github.com/tenantlake/tenantlake/lake"
	"github.com/tenantlake/tenantlake/writers"
	"github.com/tenantlake/tenantlake/writers/postgres"
)

// TestAllTenantsTables: tenants whose tables differ in columns share one
// combined table per table name with tenant_id first; missing columns are
// NULL, new ones are added, a tenant's own tenant_id is source_tenant_id,
// decimals lose their modifiers; a type clash leaves the tenant's slice as
// it was and is reported, the snapshot live; a table the tenant no longer
// has loses its slice; RebuildAllTenants puts a lost slice back.
func TestAllTenantsTables(t *testing.T) {
	f := newFixture(t)
	w := f.writer(postgres.Config{})
	acme := f.snapshot("acme",
		`CREATE TABLE items (id bigint PRIMARY KEY, name text, price numeric(10,2), tenant_id int, code text)`,
		`INSERT INTO items VALUES (1, 'anvil', 9.50, 7, 'A1'), (2, 'rocket', NULL, 7, 'B2')`)
	globex := f.snapshot("globex",
		`CREATE TABLE items (id bigint PRIMARY KEY, name text, color text, price numeric(12,4))`,
		`INSERT INTO items VALUES (1, 'lamp', 'red', 1.5)`,
		`CREATE TABLE extra (x int)`, `INSERT INTO extra VALUES (5)`)
	f.load(w, acme, writers.OutcomeLoaded)
	if out := f.load(w, globex, writers.OutcomeLoaded); len(out.AllTenantsStale) > 0 {
		t.Fatalf("globex: all-tenants stale %v", out.AllTenantsStale)
	}
	equal(t, "all-tenants tables", f.query(`
SELECT c.relname, c.relkind, o.kind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN tenantlake.tables o ON o.schema_name = n.nspname AND o.table_name = c.relname
WHERE n.nspname = 'all_tenants' AND c.relkind <> 'i' ORDER BY 1`), []string{"extra|p|table", "items|p|table"})
	equal(t, "columns of all_tenants.items", f.query(`
SELECT column_name, data_type, is_nullable FROM information_schema.columns
WHERE table_schema = 'all_tenants' AND table_name = 'items' ORDER BY ordinal_position`), []string{
		"tenant_id|text|NO", "id|bigint|YES", "name|text|YES", "price|numeric|YES", "source_tenant_id|bigint|YES", "code|text|YES", "color|text|YES",
	})
	equal(t, "all_tenants.items", f.query(`SELECT * FROM all_tenants.items ORDER BY tenant_id, id`), []string{
		"acme|1|anvil|9.50|7|A1|NULL",
		"acme|2|rocket|NULL|7|B2|NULL",
		"globex|1|lamp|1.5000|NULL|NULL|red",
	})
	equal(t, "all_tenants.extra", f.query(`SELECT * FROM all_tenants.extra`), []string{"globex|5"})

	// code is bigint in globex's next snapshot, text in the combined
	// table: the snapshot goes live, globex's slice of items stays as it
	// was, and the outcome (and the ledger row) say so; extra, which the
	// snapshot no longer has, loses globex's slice.
	clash := f.snapshot("globex", `CREATE TABLE items (id bigint PRIMARY KEY, name text, code bigint)`, `INSERT INTO items VALUES (3, 'new', 42)`)
	out := f.load(w, clash, writers.OutcomeLoaded)
	if len(out.AllTenantsStale) != 1 || !strings.Contains(out.AllTenantsStale[0], "items (column code is bigint in this tenant and text in all_tenants.items)") ||
		!strings.Contains(out.Message, "is live") {
		t.Errorf("type clash: stale %q, message %q", out.AllTenantsStale, out.Message)
	}
	equal(t, "live after the clash", f.query(`SELECT snapshot_id FROM tenantlake.live WHERE tenant = 'globex'`), []string{clash.SnapshotID})
	equal(t, "tenant_globex.items after the clash", f.query(`SELECT id, name, code FROM tenant_globex.items`), []string{"3|new|42"})
	equal(t, "all_tenants.items after the clash", f.query(`SELECT tenant_id, id, name FROM all_tenants.items ORDER BY tenant_id, id`), []string{
		"acme|1|anvil", "acme|2|rocket", "globex|1|lamp",
	})
	equal(t, "all_tenants.extra after the clash", f.query(`SELECT count(*) FROM all_tenants.extra`), []string{"0"})
	equal(t, "ledger row of the clash", f.query(`SELECT outcome, jsonb_array_length(record->'all_tenants_stale') FROM tenantlake.loads WHERE load_id = '`+out.LoadID+`'`), []string{"loaded|1"})

	// Without the clash the slice is replaced again.
	fixed := f.snapshot("globex", `CREATE TABLE items (id bigint PRIMARY KEY, name text)`, `INSERT INTO items VALUES (4, 'four')`)
	if out := f.load(w, fixed, writers.OutcomeLoaded); len(out.AllTenantsStale) > 0 {
		t.Errorf("after the clash: stale %v", out.AllTenantsStale)
	}
	equal(t, "all_tenants.items after the fix", f.query(`SELECT tenant_id, id, name FROM all_tenants.items ORDER BY tenant_id, id`), []string{
		"acme|1|anvil", "acme|2|rocket", "globex|4|four",
	})

	// Rebuild: a slice lost by hand, and a combined table dropped by hand.
	f.exec(f.warehouse, `DELETE FROM all_tenants.items WHERE tenant_id = 'acme'`, `DROP TABLE all_tenants.extra`)
	if err := w.RebuildAllTenants(f.ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	equal(t, "all_tenants.items after the rebuild", f.query(`SELECT tenant_id, id, name, code FROM all_tenants.items ORDER BY tenant_id, id`), []string{
		"acme|1|anvil|A1", "acme|2|rocket|B2", "globex|4|four|NULL",
	})
	equal(t, "catalog after the rebuild", f.query(`SELECT table_name FROM tenantlake.tables WHERE schema_name = 'all_tenants' ORDER BY 1`), []string{"items"})
	if err := w.RebuildAllTenants(f.ctx, "nobody"); err == nil || !strings.Contains(err.Error(), "no snapshot is live") {
		t.Errorf("rebuild of a tenant with nothing live: %v", err)
	}
	// A clash the rebuild cannot resolve is named.
	f.exec(f.warehouse, `ALTER TABLE all_tenants.items ALTER COLUMN code TYPE bigint USING NULL`)
	if err := w.RebuildAllTenants(f.ctx, "acme"); err == nil || !strings.Contains(err.Error(), "column code is text in this tenant and bigint") {
		t.Errorf("rebuild with a clash: %v", err)
	}
}

// TestAllTenantsFromViews: an all-tenants view of an earlier tenantlake is
// replaced by the combined table at the next load; one that a user's view
// depends on stays, its table reported stale, naming the user's view.
func TestAllTenantsFromViews(t *testing.T) {
	f := newFixture(t)
	w := f.writer(postgres.Config{})
	f.load(w, f.snapshot("acme", `CREATE TABLE items (id bigint)`, `INSERT INTO items VALUES (1)`,
		`CREATE TABLE other (id bigint)`, `INSERT INTO other VALUES (2)`), writers.OutcomeLoaded)
	// As an earlier tenantlake left it.
	f.exec(f.warehouse,
		`DROP TABLE all_tenants.items`, `DROP TABLE all_tenants.other`,
		`CREATE VIEW all_tenants.items AS SELECT 'acme'::text AS tenant_id, id FROM tenant_acme.items`,
		`CREATE VIEW all_tenants.other AS SELECT 'acme'::text AS tenant_id, id FROM tenant_acme.other`,
		`UPDATE tenantlake.tables SET kind = 'view' WHERE schema_name = 'all_tenants'`,
		`CREATE VIEW public.mine AS SELECT * FROM all_tenants.other`)
	out := f.load(w, f.snapshot("acme", `CREATE TABLE items (id bigint)`, `INSERT INTO items VALUES (3)`,
		`CREATE TABLE other (id bigint)`, `INSERT INTO other VALUES (4)`), writers.OutcomeLoaded)
	if len(out.AllTenantsStale) != 1 || !strings.Contains(out.AllTenantsStale[0], "other (") || !strings.Contains(out.AllTenantsStale[0], "view public.mine") {
		t.Errorf("stale %q; want other, naming public.mine", out.AllTenantsStale)
	}
	equal(t, "all_tenants relations", f.query(`
SELECT c.relname, c.relkind, o.kind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN tenantlake.tables o ON o.schema_name = n.nspname AND o.table_name = c.relname
WHERE n.nspname = 'all_tenants' ORDER BY 1`), []string{"items|p|table", "other|v|view"})
	equal(t, "all_tenants.items", f.query(`SELECT * FROM all_tenants.items`), []string{"acme|3"})
	equal(t, "public.mine", f.query(`SELECT * FROM public.mine`), []string{"acme|4"})
}

// TestAllTenantsConcurrentColumns: tenants loading side by side, each
// adding its own column to the same combined table, all get their slice.
func TestAllTenantsConcurrentColumns(t *testing.T) {
	f := newFixture(t)
	w := f.writer(postgres.Config{})
	const n = 4
	snaps := make([]*lake.Manifest, n)
	for i := range snaps {
		snaps[i] = f.snapshot(fmt.Sprintf("t%d", i), fmt.Sprintf(`CREATE TABLE items (id bigint, c%d text)`, i), fmt.Sprintf(`INSERT INTO items VALUES (%d, 'v%d')`, i, i))
	}
	outs := make([]*writers.Outcome, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, m := range snaps {
		wg.Go(func() {
			outs[i], errs[i] = w.Load(f.ctx, f.lk, writers.Request{Tenant: m.Tenant, SnapshotID: m.SnapshotID, Reason: writers.ReasonScheduled})
		})
	}
	wg.Wait()
	for i := range outs {
		if errs[i] != nil {
			t.Fatalf("load %d: %v", i, errs[i])
		}
		if outs[i].Outcome != writers.OutcomeLoaded || len(outs[i].AllTenantsStale) > 0 {
			t.Errorf("load %d: %s, stale %v (%s)", i, outs[i].Outcome, outs[i].AllTenantsStale, outs[i].Message)
		}
	}
	equal(t, "all_tenants.items", f.query(`SELECT tenant_id, id, coalesce(c0, c1, c2, c3) FROM all_tenants.items ORDER BY 1`), []string{
		"t0|0|v0", "t1|1|v1", "t2|2|v2", "t3|3|v3",
	})
}

// TestAllTenantsPartitions: a combined table has one partition per tenant,
// in the control schema and tenantlake's; a load swaps the tenant's
// partition, a user's view over the combined table sees the new rows, no
// pending slice is left behind; a partition that a user's view depends on
// is never dropped: its rows are replaced in place, and the view shows
// them.
func TestAllTenantsPartitions(t *testing.T) { bothPaths(t, testAllTenantsPartitions) }

func testAllTenantsPartitions(t *testing.T) {
	f := newFixture(t)
	w := f.writer(postgres.Config{})
	f.load(w, f.snapshot("acme", `CREATE TABLE items (id bigint, name text)`, `INSERT INTO items VALUES (1, 'a')`), writers.OutcomeLoaded)
	f.load(w, f.snapshot("globex", `CREATE TABLE items (id bigint, name text)`, `INSERT INTO items VALUES (2, 'g')`), writers.OutcomeLoaded)
	parts := `
SELECT n.nspname, pg_get_expr(c.relpartbound, c.oid), o.kind FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN tenantlake.tables o ON o.schema_name = n.nspname AND o.table_name = c.relname
WHERE i.inhparent = 'all_tenants.items'::regclass ORDER BY 2`
	equal(t, "partitions", f.query(parts), []string{"tenantlake|FOR VALUES IN ('acme')|table", "tenantlake|FOR VALUES IN ('globex')|table"})
	f.exec(f.warehouse, `CREATE VIEW public.everyone AS SELECT tenant_id, id FROM all_tenants.items`)
	f.load(w, f.snapshot("acme", `CREATE TABLE items (id bigint, name text, extra text)`, `INSERT INTO items VALUES (3, 'b', 'x'), (4, 'c', NULL)`), writers.OutcomeLoaded)
	equal(t, "public.everyone", f.query(`SELECT * FROM public.everyone ORDER BY 1, 2`), []string{"acme|3", "acme|4", "globex|2"})
	equal(t, "all_tenants.items", f.query(`SELECT * FROM all_tenants.items ORDER BY 1, 2`), []string{"acme|3|b|x", "acme|4|c|NULL", "globex|2|g|NULL"})
	equal(t, "partitions after the swap", f.query(parts), []string{"tenantlake|FOR VALUES IN ('acme')|table", "tenantlake|FOR VALUES IN ('globex')|table"})
	equal(t, "staging schemas and pending slices left", f.query(`
SELECT schema_name || '.' || table_name FROM tenantlake.tables WHERE table_name LIKE 'tenantlake$slice$%'
UNION ALL SELECT nspname FROM pg_namespace WHERE nspname LIKE 'tenantlake_staging_%'`), nil)

	// A user's view over globex's partition itself.
	part := f.query(`SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'all_tenants.items'::regclass AND pg_get_expr(c.relpartbound, c.oid) = 'FOR VALUES IN (''globex'')'`)
	f.exec(f.warehouse, `CREATE VIEW public.globex_only AS SELECT id FROM tenantlake.`+part[0])
	snap := f.snapshot("globex", `CREATE TABLE items (id bigint, name text)`, `INSERT INTO items VALUES (5, 'h')`)
	out := f.load(w, snap, writers.OutcomeLoaded)
	if len(out.AllTenantsStale) != 0 {
		t.Errorf("stale %q; want none", out.AllTenantsStale)
	}
	equal(t, "tenant_globex.items", f.query(`SELECT id FROM tenant_globex.items`), []string{"5"})
	equal(t, "public.globex_only", f.query(`SELECT * FROM public.globex_only`), []string{"5"})
	equal(t, "partitions after the in-place refill", f.query(parts), []string{"tenantlake|FOR VALUES IN ('acme')|table", "tenantlake|FOR VALUES IN ('globex')|table"})
	equal(t, "pending slices left", f.query(`SELECT table_name FROM tenantlake.tables WHERE table_name LIKE 'tenantlake$slice$%'`), nil)
}

// TestAllTenantsUnpartitioned: a combined table of an earlier version (not
// partitioned, a tenant_id index), with a user's view over it, keeps its
// kind, and its slices are still replaced in place.
func TestAllTenantsUnpartitioned(t *testing.T) {
	f := newFixture(t)
	w := f.writer(postgres.Config{})
	f.load(w, f.snapshot("acme", `CREATE TABLE items (id bigint, name text)`, `INSERT INTO items VALUES (1, 'a')`), writers.OutcomeLoaded)
	// As the earlier version left it.
	f.exec(f.warehouse,
		`DROP TABLE all_tenants.items`,
		`CREATE TABLE all_tenants.items (tenant_id text NOT NULL, id bigint, name text)`,
		`CREATE INDEX ON all_tenants.items (tenant_id)`,
		`INSERT INTO all_tenants.items VALUES ('acme', 1, 'a'), ('globex', 9, 'z')`,
		`CREATE VIEW public.mine AS SELECT * FROM all_tenants.items`)
	f.load(w, f.snapshot("acme", `CREATE TABLE items (id bigint, name text, color text)`, `INSERT INTO items VALUES (2, 'b', 'red')`), writers.OutcomeLoaded)
	equal(t, "kind", f.query(`SELECT relkind FROM pg_class WHERE oid = 'all_tenants.items'::regclass`), []string{"r"})
	equal(t, "public.mine", f.query(`SELECT * FROM public.mine ORDER BY 1, 2`), []string{"acme|2|b", "globex|9|z"})
	equal(t, "all_tenants.items", f.query(`SELECT * FROM all_tenants.items ORDER BY 1, 2`), []string{"acme|2|b|red", "globex|9|z|NULL"})
	equal(t, "pending slices and partitions left", f.query(`SELECT schema_name || '.' || table_name FROM tenantlake.tables
WHERE table_name LIKE 'tenantlake$slice$%' OR schema_name = 'tenantlake'`), nil)
}

// TestAllTenantsInPlace: a small table's slice is replaced in place: an
// analyst's open transaction that has read the combined table does not
// hold the promotion, the slice is not stale, the partition keeps its
// place, and the analyst's next query (READ COMMITTED) sees the new rows.
// (A load that adds a column still waits for the analyst: ADD COLUMN locks
// the combined table.)
func TestAllTenantsInPlace(t *testing.T) {
	f := newFixture(t)
	w := f.writer(postgres.Config{})
	f.load(w, f.snapshot("acme", `CREATE TABLE items (id bigint)`, `INSERT INTO items VALUES (1)`), writers.OutcomeLoaded)
	f.load(w, f.snapshot("globex", `CREATE TABLE items (id bigint)`, `INSERT INTO items VALUES (7)`), writers.OutcomeLoaded)
	partition := `SELECT c.oid::bigint FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'all_tenants.items'::regclass AND pg_get_expr(c.relpartbound, c.oid) = 'FOR VALUES IN (''acme'')'`
	before := f.query(partition)
	tx := analystReading(t, f, 2)
	start := time.Now()
	out := f.load(w, f.snapshot("acme", `CREATE TABLE items (id bigint)`, `INSERT INTO items VALUES (2), (3)`), writers.OutcomeLoaded)
	if len(out.AllTenantsStale) != 0 {
		t.Errorf("stale %q; want none", out.AllTenantsStale)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the load waited %s for the combined table", d)
	}
	equal(t, "acme's partition", f.query(partition), before)
	equal(t, "analyst's next query", queryTx(t, f, tx, `SELECT tenant_id || '|' || id FROM all_tenants.items ORDER BY 1`),
		[]string{"acme|2", "acme|3", "globex|7"})
	if err := tx.Rollback(f.ctx); err != nil {
		t.Fatal(err)
	}
	// A new tenant: its partition is made before the promotion, which then
	// replaces its rows in place like any other.
	f.load(w, f.snapshot("initech", `CREATE TABLE items (id bigint)`, `INSERT INTO items VALUES (9)`), writers.OutcomeLoaded)
	equal(t, "all_tenants.items", f.query(`SELECT tenant_id || '|' || id FROM all_tenants.items ORDER BY 1`), []string{"acme|2", "acme|3", "globex|7", "initech|9"})
}

// bothPaths runs test as two subtests: with small tables' slices replaced
// in place (the default) and with every slice filled while staging and
// swapped whole.
func bothPaths(t *testing.T, test func(t *testing.T)) {
	t.Run("in_place", test)
	t.Run("swap", func(t *testing.T) {
		postgres.SetInPlaceRows(t, -1)
		test(t)
	})
}

// analystReading opens an analyst's transaction that has read
// all_tenants.items (want rows), rolled back at the end of the test.
func analystReading(t *testing.T, f *fixture, want int) pgx.Tx {
	t.Helper()
	tx, err := pgtest.Connect(t, f.warehouse).Begin(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Rollback(f.ctx) })
	var n int
	if err := tx.QueryRow(f.ctx, `SELECT count(*) FROM all_tenants.items`).Scan(&n); err != nil || n != want {
		t.Fatalf("analyst's query: %d rows, %v", n, err)
	}
	return tx
}

// queryTx runs sql in tx, one string per row (its first column).
func queryTx(t *testing.T, f *fixture, tx pgx.Tx, sql string) []string {
	t.Helper()
	rows, err := tx.Query(f.ctx, sql)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestAllTenantsLockTimeout: an analyst's open transaction that has read a
// combined table holds the swap of a tenant's slice (a table with a
// pending slice) at most allTenantsLockTimeout (10 s): the snapshot goes
// live, the slice is reported stale, saying why, and the analyst's
// transaction is untouched.
func TestAllTenantsLockTimeout(t *testing.T) {
	postgres.SetInPlaceRows(t, -1)
	f := newFixture(t)
	w := f.writer(postgres.Config{})
	f.load(w, f.snapshot("acme", `CREATE TABLE items (id bigint)`, `INSERT INTO items VALUES (1)`), writers.OutcomeLoaded)
	tx := analystReading(t, f, 1)
	start := time.Now()
	out := f.load(w, f.snapshot("acme", `CREATE TABLE items (id bigint)`, `INSERT INTO items VALUES (2)`), writers.OutcomeLoaded)
	if len(out.AllTenantsStale) != 1 || !strings.Contains(out.AllTenantsStale[0], "in use") {
		t.Errorf("stale %q; want items, in use", out.AllTenantsStale)
	}
	if d := time.Since(start); d > time.Minute {
		t.Errorf("the load waited %s for the combined table", d)
	}
	equal(t, "tenant_acme.items", f.query(`SELECT id FROM tenant_acme.items`), []string{"2"})
	var n int
	if err := tx.QueryRow(f.ctx, `SELECT count(*) FROM all_tenants.items`).Scan(&n); err != nil || n != 1 {
		t.Errorf("analyst's second query: %d rows, %v", n, err)
	}
}
