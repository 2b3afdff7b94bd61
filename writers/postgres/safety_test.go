package postgres_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/tenantlake/tenantlake/lake"
	"github.com/tenantlake/tenantlake/writers"
	"github.com/tenantlake/tenantlake/writers/postgres"
)

// TestOptionsRefusedBeforeAnythingIsWritten: every option that could make
// the writer drop or replace a schema it did not create, or that the
// ledger cannot hold, is refused by New, naming the option, before a
// single statement changes the warehouse (issue 8, items 1 and 9).
func TestOptionsRefusedBeforeAnythingIsWritten(t *testing.T) {
	f := newFixture(t)
	f.exec(f.warehouse,
		`CREATE TABLE public.user_table (id int)`, `INSERT INTO public.user_table VALUES (1)`,
		`CREATE SCHEMA analytics`, `CREATE TABLE analytics.report (id int)`, `INSERT INTO analytics.report VALUES (2)`)
	for _, c := range []struct {
		cfg  postgres.Config
		want string
	}{
		{postgres.Config{AllTenantsSchema: "public"}, "option all_tenants_schema=public"},
		{postgres.Config{AllTenantsSchema: "tenantlake"}, "option all_tenants_schema=tenantlake"},
		{postgres.Config{AllTenantsSchema: "information_schema"}, "option all_tenants_schema=information_schema"},
		{postgres.Config{AllTenantsSchema: "pg_views"}, "option all_tenants_schema=pg_views"},
		{postgres.Config{AllTenantsSchema: "analytics"}, "all_tenants_schema=analytics: schema \"analytics\" exists and was not created by tenantlake"},
		{postgres.Config{AllTenantsSchema: "all tenants"}, "option all_tenants_schema=all tenants"},
		{postgres.Config{SchemaTemplate: "{tenant}"}, "option schema_template={tenant}"},   // tenant "public"
		{postgres.Config{SchemaTemplate: "p{tenant}"}, "option schema_template=p{tenant}"}, // tenant g_x: pg_x
		{postgres.Config{SchemaTemplate: "tenant"}, "option schema_template: template \"tenant\" lacks {tenant}"},
		{postgres.Config{SchemaTemplate: "t_{tenant}_{tenant}"}, "option schema_template"},
		{postgres.Config{SchemaTemplate: "tenant-{tenant}"}, "option schema_template=tenant-{tenant}"},
		{postgres.Config{StagingTemplate: "tenant_{tenant}"}, "options schema_template=tenant_{tenant} and staging_template=tenant_{tenant}"},
		{postgres.Config{SchemaTemplate: "t_{tenant}", StagingTemplate: "t_s_{tenant}"}, "options schema_template=t_{tenant} and staging_template=t_s_{tenant}"},
		{postgres.Config{SchemaTemplate: "all_{tenant}"}, "options schema_template=all_{tenant} and all_tenants_schema=all_tenants"},
		{postgres.Config{StagingTemplate: "al{tenant}"}, "options staging_template=al{tenant} and all_tenants_schema=all_tenants"},
		{postgres.Config{Name: "../../x"}, "option name=../../x"},
		{postgres.Config{Name: "my target"}, "option name=my target"},
	} {
		c.cfg.URL = f.warehouse
		w, err := postgres.New(f.ctx, c.cfg)
		if err == nil {
			t.Errorf("New(%+v): no error", c.cfg)
			if cerr := w.Close(); cerr != nil {
				t.Error(cerr)
			}
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%+v): %v; want an error containing %q", c.cfg, err, c.want)
		}
	}
	equal(t, "schemas", f.query(`SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\_%' AND nspname <> 'information_schema' ORDER BY 1`),
		[]string{"analytics", "public"})
	equal(t, "user tables", f.query(`SELECT (SELECT id FROM public.user_table), (SELECT id FROM analytics.report)`), []string{"1|2"})

	// A user's schema in the way of a tenant's schema: the load fails
	// before anything is written, naming the option and the schema.
	f.exec(f.warehouse, `CREATE SCHEMA tenant_acme`, `CREATE TABLE tenant_acme.mine (id int)`)
	w := f.writer(postgres.Config{})
	m := f.snapshot("acme", `CREATE TABLE mine (id bigint)`, `INSERT INTO mine VALUES (7)`)
	out, err := w.Load(f.ctx, f.lk, writers.Request{Tenant: "acme", SnapshotID: m.SnapshotID, Reason: writers.ReasonManual})
	if err == nil || !errors.Is(err, postgres.ErrNotOwned) || !strings.Contains(err.Error(), `schema_template=tenant_{tenant}: schema "tenant_acme" exists and was not created by tenantlake`) {
		t.Fatalf("load into a user's schema tenant_acme: %v", err)
	}
	if out == nil || out.Outcome != writers.OutcomeFailed {
		t.Errorf("outcome %+v, want failed", out)
	}
	equal(t, "schemas after the refused load", f.query(`SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\_%' AND nspname <> 'information_schema' ORDER BY 1`),
		[]string{"analytics", "public", "tenant_acme", "tenantlake"})
	equal(t, "the user's table", f.query(`SELECT count(*) FROM tenant_acme.mine`), []string{"0"})
}

// TestUserObjectsSurvivePromotion: views a user made over tenantlake's
// tables and views (in other schemas and in tenantlake's), a user's index
// and comment on a tenant table and a user's own table in a tenant schema
// all survive the next load and see its rows; a snapshot that would break
// one of them is refused naming it, and the old snapshot stays live
// (issue 8, item 2).
func TestUserObjectsSurvivePromotion(t *testing.T) {
	f := newFixture(t)
	w := f.writer(postgres.Config{})
	first := f.snapshot("acme",
		`CREATE TABLE customers (id bigint PRIMARY KEY, name text, note text)`,
		`INSERT INTO customers VALUES (1, 'anvil', 'x'), (2, 'rocket', 'y')`,
		`CREATE TABLE plain (id bigint)`, `INSERT INTO plain VALUES (1)`)
	globex := f.snapshot("globex", `CREATE TABLE customers (id bigint PRIMARY KEY, name text)`, `INSERT INTO customers VALUES (9, 'lamp')`)
	f.load(w, first, writers.OutcomeLoaded)
	f.load(w, globex, writers.OutcomeLoaded)
	f.exec(f.warehouse,
		`CREATE VIEW public.my_report AS SELECT tenant_id, count(*) AS n FROM all_tenants.customers GROUP BY tenant_id`,
		`CREATE VIEW public.acme_names AS SELECT id, name FROM tenant_acme.customers`,
		`CREATE MATERIALIZED VIEW public.acme_ids AS SELECT id FROM tenant_acme.customers`,
		`CREATE VIEW all_tenants.my_view AS SELECT id FROM tenant_acme.plain`,
		`CREATE INDEX my_index ON tenant_acme.customers (name)`,
		`COMMENT ON TABLE tenant_acme.plain IS 'mine'`,
		`CREATE TABLE tenant_acme.notes (id int)`, `INSERT INTO tenant_acme.notes VALUES (42)`)

	// The next snapshot adds a column, drops one nothing uses, changes rows.
	second := f.snapshot("acme",
		`CREATE TABLE customers (id bigint PRIMARY KEY, name text, email text)`,
		`INSERT INTO customers VALUES (1, 'anvil', 'a@x'), (3, 'magnet', NULL)`,
		`CREATE TABLE plain (id bigint)`, `INSERT INTO plain VALUES (5), (6)`)
	oids := `SELECT 'tenant_acme.customers'::regclass::oid, 'tenant_globex.customers'::regclass::oid`
	before := f.query(oids)
	f.load(w, second, writers.OutcomeLoaded)
	// Another tenant's table that only tenantlake's view uses is swapped
	// for the staged one, with no copy of its rows.
	f.load(w, f.snapshot("globex", `CREATE TABLE customers (id bigint PRIMARY KEY, name text)`, `INSERT INTO customers VALUES (9, 'lamp')`), writers.OutcomeLoaded)
	after := f.query(oids)
	b, a := strings.Split(before[0], "|"), strings.Split(after[0], "|")
	if b[0] != a[0] || b[1] == a[1] {
		t.Errorf("table oids before %v, after %v: want acme's kept (its rows replaced in place), globex's new (swapped)", b, a)
	}
	equal(t, "public.my_report", f.query(`SELECT * FROM public.my_report ORDER BY 1`), []string{"acme|2", "globex|1"})
	equal(t, "public.acme_names", f.query(`SELECT * FROM public.acme_names ORDER BY 1`), []string{"1|anvil", "3|magnet"})
	equal(t, "tenant_acme.customers", f.query(`SELECT id, name, email FROM tenant_acme.customers ORDER BY 1`), []string{"1|anvil|a@x", "3|magnet|NULL"})
	equal(t, "all_tenants.customers", f.query(`SELECT tenant_id, id, name FROM all_tenants.customers ORDER BY 1, 2`),
		[]string{"acme|1|anvil", "acme|3|magnet", "globex|9|lamp"})
	equal(t, "all_tenants.my_view", f.query(`SELECT * FROM all_tenants.my_view ORDER BY 1`), []string{"5", "6"})
	equal(t, "user objects", f.query(`
SELECT (SELECT count(*) FROM pg_indexes WHERE indexname = 'my_index'),
       obj_description('tenant_acme.plain'::regclass, 'pg_class'),
       (SELECT id FROM tenant_acme.notes),
       (SELECT count(*) FROM pg_matviews WHERE matviewname = 'acme_ids')`), []string{"1|mine|42|1"})

	// A snapshot without the column name, which public.acme_names uses:
	// refused, naming the view; the second snapshot stays live, unchanged.
	third := f.snapshot("acme",
		`CREATE TABLE customers (id bigint PRIMARY KEY, email text)`, `INSERT INTO customers VALUES (8, NULL)`,
		`CREATE TABLE plain (id bigint)`)
	out, err := w.Load(f.ctx, f.lk, writers.Request{Tenant: "acme", SnapshotID: third.SnapshotID, Reason: writers.ReasonScheduled})
	if err == nil || !errors.Is(err, postgres.ErrNotOwned) || !strings.Contains(err.Error(), "view public.acme_names") || !strings.Contains(err.Error(), "index tenant_acme.my_index") {
		t.Fatalf("load dropping a column a user's view and index use: %v; want an error naming both", err)
	}
	if out.Outcome != writers.OutcomeFailed || out.PreviousLive != second.SnapshotID || out.Live != second.SnapshotID {
		t.Errorf("outcome %s, live %q (was %q); want failed, %s", out.Outcome, out.Live, out.PreviousLive, second.SnapshotID)
	}
	equal(t, "live after the refused load", f.query(`SELECT snapshot_id FROM tenantlake.live WHERE tenant = 'acme'`), []string{second.SnapshotID})
	equal(t, "tenant_acme.customers after the refused load", f.query(`SELECT id, name FROM tenant_acme.customers ORDER BY 1`), []string{"1|anvil", "3|magnet"})

	// A snapshot without the table plain, which all_tenants.my_view uses.
	fourth := f.snapshot("acme",
		`CREATE TABLE customers (id bigint PRIMARY KEY, name text, email text)`, `INSERT INTO customers VALUES (1, 'anvil', NULL)`)
	if _, err := w.Load(f.ctx, f.lk, writers.Request{Tenant: "acme", SnapshotID: fourth.SnapshotID, Reason: writers.ReasonScheduled}); err == nil || !strings.Contains(err.Error(), "all_tenants.my_view") {
		t.Errorf("load dropping a table a user's view uses: %v; want an error naming all_tenants.my_view", err)
	}

	// A snapshot with a table named like the user's own table notes.
	fifth := f.snapshot("acme",
		`CREATE TABLE customers (id bigint PRIMARY KEY, name text, email text)`, `CREATE TABLE plain (id bigint)`,
		`CREATE TABLE notes (id bigint)`, `INSERT INTO notes VALUES (1)`)
	if _, err := w.Load(f.ctx, f.lk, writers.Request{Tenant: "acme", SnapshotID: fifth.SnapshotID, Reason: writers.ReasonScheduled}); err == nil || !errors.Is(err, postgres.ErrNotOwned) || !strings.Contains(err.Error(), "tenant_acme.notes exists and was not created by tenantlake") {
		t.Errorf("load over a user's table: %v", err)
	}
	equal(t, "the user's table notes", f.query(`SELECT id FROM tenant_acme.notes`), []string{"42"})

	// Once the user drops the view and the index, the column goes.
	f.exec(f.warehouse, `DROP VIEW public.acme_names`, `DROP INDEX tenant_acme.my_index`)
	sixth := f.snapshot("acme",
		`CREATE TABLE customers (id bigint PRIMARY KEY, email text)`, `INSERT INTO customers VALUES (8, 'e')`,
		`CREATE TABLE plain (id bigint)`)
	f.load(w, sixth, writers.OutcomeLoaded)
	equal(t, "public.my_report after the sixth", f.query(`SELECT * FROM public.my_report ORDER BY 1`), []string{"acme|1", "globex|1"})
	equal(t, "all_tenants.customers after the sixth (name kept for the view over it)", f.query(`SELECT tenant_id, id, name, email FROM all_tenants.customers ORDER BY 1, 2`),
		[]string{"acme|8|NULL|e", "globex|9|lamp|NULL"})
}

// TestFailedLoadStatesTrueLive: a load refused for a manifest the lake
// rejects records the live snapshot, before and after, in the outcome and
// in tenantlake.loads (issue 8, item 10).
func TestFailedLoadStatesTrueLive(t *testing.T) {
	f := newFixture(t)
	w := f.writer(postgres.Config{})
	good := f.snapshot("acme", `CREATE TABLE items (id bigint)`, `INSERT INTO items VALUES (1)`)
	f.load(w, good, writers.OutcomeLoaded)
	missing := lake.SnapshotID(good.CommittedAt.Add(1e9))
	out, err := w.Load(f.ctx, f.lk, writers.Request{Tenant: "acme", SnapshotID: missing, Reason: writers.ReasonScheduled})
	if err == nil || !errors.Is(err, lake.ErrNotFound) {
		t.Fatalf("load of a snapshot without a manifest: %v", err)
	}
	if out.Outcome != writers.OutcomeFailed || out.PreviousLive != good.SnapshotID || out.Live != good.SnapshotID {
		t.Errorf("outcome %s, previous live %q, live %q; want failed, %s, %s", out.Outcome, out.PreviousLive, out.Live, good.SnapshotID, good.SnapshotID)
	}
	equal(t, "tenantlake.loads", f.query(`SELECT snapshot_id, outcome, coalesce(previous_live, 'NULL'), coalesce(live, 'NULL') FROM tenantlake.loads ORDER BY started_at`), []string{
		good.SnapshotID + "|loaded|NULL|" + good.SnapshotID,
		missing + "|failed|" + good.SnapshotID + "|" + good.SnapshotID,
	})
}
