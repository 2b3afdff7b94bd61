package postgres_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tenantlake/tenantlake/internal/pgtest"
	"github.com/tenantlake/tenantlake/writers"
	"github.com/tenantlake/tenantlake/writers/postgres"
)

// sameAsLive checks that all_tenants.<table> holds exactly each tenant's
// live rows of table (columns cols).
func (f *fixture) sameAsLive(table, cols string, tenants ...string) {
	f.t.Helper()
	var want []string
	for _, tn := range tenants {
		want = append(want, f.query(fmt.Sprintf(`SELECT '%s', %s FROM tenant_%s.%q ORDER BY 1, 2`, tn, cols, tn, table))...)
	}
	got := f.query(fmt.Sprintf(`SELECT tenant_id, %s FROM all_tenants.%q ORDER BY 1, 2`, cols, table))
	equal(f.t, "all_tenants."+table+" vs live", got, want)
}

// TestHostileIndexOnCombined: a user's index on the combined table must not
// make every later slice stale.
func TestHostileIndexOnCombined(t *testing.T) { bothPaths(t, testHostileIndexOnCombined) }

func testHostileIndexOnCombined(t *testing.T) {
	f := newFixture(t)
	w := f.writer(postgres.Config{})
	f.load(w, f.snapshot("acme", `CREATE TABLE items (id bigint, name text)`, `INSERT INTO items VALUES (1, 'a')`), writers.OutcomeLoaded)
	f.load(w, f.snapshot("globex", `CREATE TABLE items (id bigint, name text)`, `INSERT INTO items VALUES (2, 'g')`), writers.OutcomeLoaded)
	f.exec(f.warehouse, `CREATE INDEX items_by_id ON all_tenants.items (id)`)
	out := f.load(w, f.snapshot("acme", `CREATE TABLE items (id bigint, name text)`, `INSERT INTO items VALUES (3, 'b')`), writers.OutcomeLoaded)
	if len(out.AllTenantsStale) > 0 {
		t.Errorf("stale after a user's index on the combined table: %q", out.AllTenantsStale)
	}
	f.sameAsLive("items", "id, name", "acme", "globex")
	equal(t, "index still there", f.query(`SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = 'all_tenants.items'::regclass`), []string{"all_tenants.items_by_id"})
}

// TestHostileRebuildDropped: a combined table dropped by hand is rebuilt by
// RebuildAllTenants, and later loads go on.
func TestHostileRebuildDropped(t *testing.T) {
	f := newFixture(t)
	w := f.writer(postgres.Config{})
	f.load(w, f.snapshot("acme", `CREATE TABLE items (id bigint, name text)`, `INSERT INTO items VALUES (1, 'a')`), writers.OutcomeLoaded)
	f.load(w, f.snapshot("globex", `CREATE TABLE items (id bigint, name text)`, `INSERT INTO items VALUES (2, 'g')`), writers.OutcomeLoaded)
	f.exec(f.warehouse, `DROP TABLE all_tenants.items`)
	for _, tn := range []string{"acme", "globex"} {
		if err := w.RebuildAllTenants(f.ctx, tn); err != nil {
			t.Fatalf("rebuild %s: %v", tn, err)
		}
	}
	f.sameAsLive("items", "id, name", "acme", "globex")
	out := f.load(w, f.snapshot("acme", `CREATE TABLE items (id bigint, name text)`, `INSERT INTO items VALUES (3, 'b')`), writers.OutcomeLoaded)
	if len(out.AllTenantsStale) > 0 {
		t.Errorf("stale: %q", out.AllTenantsStale)
	}
	f.sameAsLive("items", "id, name", "acme", "globex")
	equal(t, "catalog rows without a relation", f.query(`SELECT schema_name||'.'||table_name FROM tenantlake.tables t
WHERE NOT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = t.schema_name AND c.relname = t.table_name)`), nil)
}

// TestHostileOddNames: source tables named like pending slices, with quotes,
// capitals and long names (the reader maps them to lake names).
func TestHostileOddNames(t *testing.T) {
	f := newFixture(t)
	w := f.writer(postgres.Config{})
	long := strings.Repeat("x", 63)
	snap := func(v int) {
		m := f.snapshot("acme", `CREATE TABLE "tenantlake$slice$0" (id bigint)`, fmt.Sprintf(`INSERT INTO "tenantlake$slice$0" VALUES (%d)`, v),
			`CREATE TABLE "We""ird" (id bigint)`, fmt.Sprintf(`INSERT INTO "We""ird" VALUES (%d)`, v+1),
			`CREATE TABLE "Items" (id bigint)`, fmt.Sprintf(`INSERT INTO "Items" VALUES (%d)`, v+2),
			`CREATE TABLE items (id bigint)`, fmt.Sprintf(`INSERT INTO items VALUES (%d)`, v+3),
			`CREATE TABLE `+long+` (id bigint)`, fmt.Sprintf(`INSERT INTO `+long+` VALUES (%d)`, v+4))
		out := f.load(w, m, writers.OutcomeLoaded)
		if len(out.AllTenantsStale) > 0 {
			t.Errorf("stale: %q", out.AllTenantsStale)
		}
		names := f.query(`SELECT table_name FROM tenantlake.tables WHERE schema_name = 'tenant_acme' ORDER BY 1`)
		if len(names) != 5 {
			t.Fatalf("live tables %q", names)
		}
		for _, n := range names {
			f.sameAsLive(n, "id", "acme")
		}
	}
	snap(1)
	snap(10)
}

// TestHostileConcurrentTenants: two tenants loading into the same combined
// table at once, many times, then the same tenant twice at once.
func TestHostileConcurrentTenants(t *testing.T) {
	f := newFixture(t)
	w := f.writer(postgres.Config{})
	tenants := []string{"acme", "globex"}
	for round := 0; round < 4; round++ {
		var wg sync.WaitGroup
		snaps := make(map[string]any)
		var mu sync.Mutex
		for _, tn := range tenants {
			m := f.snapshot(tn, fmt.Sprintf(`CREATE TABLE items (id bigint, c%d text)`, round),
				fmt.Sprintf(`INSERT INTO items SELECT g, 'r%d' FROM generate_series(1, %d) g`, round, 100*(round+1)))
			mu.Lock()
			snaps[tn] = m
			mu.Unlock()
			wg.Go(func() {
				out, err := w.Load(f.ctx, f.lk, writers.Request{Tenant: m.Tenant, SnapshotID: m.SnapshotID, Reason: writers.ReasonScheduled})
				if err != nil {
					t.Errorf("round %d %s: %v", round, m.Tenant, err)
					return
				}
				if out.Outcome != writers.OutcomeLoaded || len(out.AllTenantsStale) > 0 {
					t.Errorf("round %d %s: %s %q %s", round, m.Tenant, out.Outcome, out.AllTenantsStale, out.Message)
				}
			})
		}
		wg.Wait()
		f.sameAsLive("items", fmt.Sprintf("id, c%d", round), tenants...)
	}
}

// TestHostileLockTimeoutAllTables: an analyst's transaction that has read
// two combined tables holds the promotion about 10 s in all, not 10 s per
// table (the tenant's live tables stay locked all that time).
func TestHostileLockTimeoutAllTables(t *testing.T) {
	postgres.SetInPlaceRows(t, -1)
	f := newFixture(t)
	w := f.writer(postgres.Config{})
	f.load(w, f.snapshot("acme", `CREATE TABLE a (id bigint)`, `INSERT INTO a VALUES (1)`, `CREATE TABLE b (id bigint)`, `INSERT INTO b VALUES (1)`,
		`CREATE TABLE c (id bigint)`, `INSERT INTO c VALUES (1)`), writers.OutcomeLoaded)
	analyst := pgtest.Connect(t, f.warehouse)
	tx, err := analyst.Begin(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(f.ctx)
	if _, err := tx.Exec(f.ctx, `SELECT (SELECT count(*) FROM all_tenants.a) + (SELECT count(*) FROM all_tenants.b) + (SELECT count(*) FROM all_tenants.c)`); err != nil {
		t.Fatal(err)
	}
	m := f.snapshot("acme", `CREATE TABLE a (id bigint)`, `INSERT INTO a VALUES (2)`, `CREATE TABLE b (id bigint)`, `INSERT INTO b VALUES (2)`,
		`CREATE TABLE c (id bigint)`, `INSERT INTO c VALUES (2)`)
	start := time.Now()
	out := f.load(w, m, writers.OutcomeLoaded)
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("the promotion waited %s for three combined tables", d.Round(time.Second))
	}
	if len(out.AllTenantsStale) != 3 {
		t.Errorf("stale %q; want a, b and c", out.AllTenantsStale)
	}
	if err := tx.Rollback(f.ctx); err != nil {
		t.Fatal(err)
	}
}

// TestHostileLongTenantIDs: tenant ids long enough for hashed partition
// names, sharing a long prefix; the combined table dropped by hand leaves
// no catalog rows behind.
func TestHostileLongTenantIDs(t *testing.T) {
	f := newFixture(t)
	w := f.writer(postgres.Config{SchemaTemplate: "t_{tenant}", StagingTemplate: "s_{tenant}"})
	a, b := strings.Repeat("a", 50)+strings.Repeat("x", 10), strings.Repeat("a", 50)+strings.Repeat("y", 10)
	for round := 0; round < 2; round++ {
		for i, tn := range []string{a, b} {
			f.load(w, f.snapshot(tn, `CREATE TABLE items (id bigint)`, fmt.Sprintf(`INSERT INTO items VALUES (%d)`, 10*round+i)), writers.OutcomeLoaded)
		}
		equal(t, "all_tenants.items", f.query(`SELECT tenant_id, id FROM all_tenants.items ORDER BY 1`), []string{
			a + "|" + fmt.Sprint(10*round), b + "|" + fmt.Sprint(10*round+1)})
		equal(t, "partitions", f.query(`SELECT count(*) FROM pg_inherits WHERE inhparent = 'all_tenants.items'::regclass`), []string{"2"})
	}
	f.exec(f.warehouse, `DROP TABLE all_tenants.items`)
	f.load(w, f.snapshot(a, `CREATE TABLE items (id bigint)`, `INSERT INTO items VALUES (7)`), writers.OutcomeLoaded)
	f.load(w, f.snapshot(b, `CREATE TABLE items (id bigint)`, `INSERT INTO items VALUES (8)`), writers.OutcomeLoaded)
	equal(t, "catalog rows of dropped partitions", f.query(`SELECT table_name FROM tenantlake.tables t WHERE schema_name = 'tenantlake'
AND NOT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = t.schema_name AND c.relname = t.table_name)`), nil)
	equal(t, "all_tenants.items after the drop", f.query(`SELECT tenant_id, id FROM all_tenants.items ORDER BY 1`), []string{a + "|7", b + "|8"})
}

// TestHostileLiveTableAttachedByHand: a tenant table a user attached as a
// partition of their own partitioned table (with an index, whose clone on
// the tenant table is no user object of its own) is kept, its rows
// replaced, so the user's table still sees the tenant's rows.
func TestHostileLiveTableAttachedByHand(t *testing.T) {
	f := newFixture(t)
	w := f.writer(postgres.Config{})
	f.load(w, f.snapshot("acme", `CREATE TABLE items (id bigint, name text)`, `INSERT INTO items VALUES (1, 'a')`), writers.OutcomeLoaded)
	f.exec(f.warehouse, `CREATE TABLE public.mine (id bigint, name text) PARTITION BY RANGE (id)`,
		`CREATE INDEX ON public.mine (id)`,
		`ALTER TABLE public.mine ATTACH PARTITION tenant_acme.items FOR VALUES FROM (0) TO (100)`)
	f.load(w, f.snapshot("acme", `CREATE TABLE items (id bigint, name text)`, `INSERT INTO items VALUES (2, 'b')`), writers.OutcomeLoaded)
	equal(t, "public.mine", f.query(`SELECT id, name FROM public.mine`), []string{"2|b"})
}

// TestHostileUserObjectsOnCombined: a user's trigger, unique index,
// primary key, CHECK, publication or statistics on a combined table must
// not make later slices stale (a primary key's NOT NULL and a CHECK must be
// on the new partition before ATTACH; the inherited ones must not count as
// a user's objects on the old one).
func TestHostileUserObjectsOnCombined(t *testing.T) { bothPaths(t, testHostileUserObjectsOnCombined) }

func testHostileUserObjectsOnCombined(t *testing.T) {
	for name, stmts := range map[string][]string{
		"row trigger":  {`CREATE FUNCTION public.noop() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$`, `CREATE TRIGGER tr AFTER INSERT ON all_tenants.items FOR EACH ROW EXECUTE FUNCTION public.noop()`},
		"unique index": {`CREATE UNIQUE INDEX ON all_tenants.items (tenant_id, id)`},
		"pk":           {`ALTER TABLE all_tenants.items ADD PRIMARY KEY (tenant_id, id)`},
		"check":        {`ALTER TABLE all_tenants.items ADD CONSTRAINT pos CHECK (id > 0)`},
		"publication":  {`CREATE PUBLICATION pub FOR TABLE all_tenants.items`},
		"statistics":   {`CREATE STATISTICS st ON id, name FROM all_tenants.items`},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			w := f.writer(postgres.Config{})
			f.load(w, f.snapshot("acme", `CREATE TABLE items (id bigint, name text)`, `INSERT INTO items VALUES (1, 'a')`), writers.OutcomeLoaded)
			f.load(w, f.snapshot("globex", `CREATE TABLE items (id bigint, name text)`, `INSERT INTO items VALUES (2, 'g')`), writers.OutcomeLoaded)
			f.exec(f.warehouse, stmts...)
			out := f.load(w, f.snapshot("acme", `CREATE TABLE items (id bigint, name text)`, `INSERT INTO items VALUES (3, 'b')`), writers.OutcomeLoaded)
			if len(out.AllTenantsStale) > 0 {
				t.Errorf("stale: %q", out.AllTenantsStale)
			}
			f.sameAsLive("items", "id, name", "acme", "globex")
		})
	}
}
