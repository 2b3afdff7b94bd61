package postgres_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantlake/tenantlake/internal/pgtest"
	"github.com/tenantlake/tenantlake/lake"
	readerpg "github.com/tenantlake/tenantlake/readers/postgres"
	"github.com/tenantlake/tenantlake/tenant"
	"github.com/tenantlake/tenantlake/writers"
	"github.com/tenantlake/tenantlake/writers/postgres"
	"github.com/tenantlake/tenantlake/writers/writertest"
)

// fixture is a file lake, a warehouse database and helpers to make tenants.
type fixture struct {
	t         *testing.T
	ctx       context.Context
	lk        *lake.Lake
	lakeDir   string // the file lake's folder
	warehouse string
}

func newFixture(t *testing.T) *fixture {
	ctx := t.Context()
	dir := t.TempDir()
	lk, err := lake.Open(ctx, "file://"+dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := lk.Close(); err != nil {
			t.Error(err)
		}
	})
	return &fixture{t: t, ctx: ctx, lk: lk, lakeDir: dir, warehouse: pgtest.NewDatabase(t)}
}

// snapshot creates tenant id's source database with stmts and reads it.
func (f *fixture) snapshot(id string, stmts ...string) *lake.Manifest {
	f.t.Helper()
	src := pgtest.NewDatabase(f.t)
	f.exec(src, stmts...)
	m, err := readerpg.New(readerpg.Options{}).Read(f.ctx, f.lk, tenant.Tenant{ID: id, Connection: src})
	if err != nil {
		f.t.Fatalf("read %s: %v", id, err)
	}
	time.Sleep(2 * time.Millisecond)
	return m
}

func (f *fixture) exec(url string, stmts ...string) {
	f.t.Helper()
	conn, err := pgx.Connect(f.ctx, url)
	if err != nil {
		f.t.Fatal(err)
	}
	defer conn.Close(f.ctx)
	for _, s := range stmts {
		if _, err := conn.Exec(f.ctx, s); err != nil {
			f.t.Fatalf("%s: %v", s, err)
		}
	}
}

// query returns the rows of q on the warehouse, each row's values joined by "|".
func (f *fixture) query(q string) []string {
	f.t.Helper()
	conn, err := pgx.Connect(f.ctx, f.warehouse)
	if err != nil {
		f.t.Fatal(err)
	}
	defer conn.Close(f.ctx)
	rows, err := conn.Query(f.ctx, q, pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		f.t.Fatalf("%s: %v", q, err)
	}
	var out []string
	for rows.Next() {
		var cells []string
		for _, raw := range rows.RawValues() {
			if raw == nil {
				cells = append(cells, "NULL")
			} else {
				cells = append(cells, string(raw))
			}
		}
		out = append(out, strings.Join(cells, "|"))
	}
	if err := rows.Err(); err != nil {
		f.t.Fatalf("%s: %v", q, err)
	}
	return out
}

func (f *fixture) writer(cfg postgres.Config) *postgres.Writer {
	f.t.Helper()
	cfg.URL = f.warehouse
	w, err := postgres.New(f.ctx, cfg)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() {
		if err := w.Close(); err != nil {
			f.t.Error(err)
		}
	})
	return w
}

func (f *fixture) load(w *postgres.Writer, m *lake.Manifest, want string) *writers.Outcome {
	f.t.Helper()
	out, err := w.Load(f.ctx, f.lk, writers.Request{Tenant: m.Tenant, SnapshotID: m.SnapshotID, Reason: writers.ReasonScheduled})
	if err != nil {
		f.t.Fatalf("load %s/%s: %v", m.Tenant, m.SnapshotID, err)
	}
	if out.Outcome != want {
		f.t.Fatalf("load %s/%s: %s (%s), want %s", m.Tenant, m.SnapshotID, out.Outcome, out.Message, want)
	}
	return out
}

func equal(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\ngot:\n%s\nwant:\n%s", what, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestQuarantineKeepsStaging: a snapshot whose profile does not match its
// data is quarantined, its staged tables stay for inspection, the ledger
// table says so; with profile checks off the same snapshot loads.
func TestQuarantineKeepsStaging(t *testing.T) {
	f := newFixture(t)
	w := f.writer(postgres.Config{})
	good := f.snapshot("acme", `CREATE TABLE items (id bigint PRIMARY KEY, price numeric(10,2))`, `INSERT INTO items VALUES (1, 1.25), (2, 2.50)`)
	f.load(w, good, writers.OutcomeLoaded)
	bad, err := writertest.CommitCopy(f.ctx, f.lk, good, func(m *lake.Manifest) {
		wrong := "99.99"
		m.Tables[0].Columns[1].Profile.Sum = &wrong
	})
	if err != nil {
		t.Fatal(err)
	}
	out := f.load(w, bad, writers.OutcomeQuarantined)
	if !strings.Contains(out.Message, "profile:price:sum") || !strings.Contains(out.Message, "tenantlake_staging_acme") {
		t.Errorf("quarantine message %q names neither the failed check nor the staging schema", out.Message)
	}
	equal(t, "staged rows kept", f.query(`SELECT id, price FROM tenantlake_staging_acme.items ORDER BY id`), []string{"1|1.25", "2|2.50"})
	equal(t, "live rows", f.query(`SELECT id, price FROM tenant_acme.items ORDER BY id`), []string{"1|1.25", "2|2.50"})
	equal(t, "ledger table", f.query(`SELECT snapshot_id, outcome, coalesce(live, '-') FROM tenantlake.loads ORDER BY started_at`), []string{
		good.SnapshotID + "|loaded|" + good.SnapshotID,
		bad.SnapshotID + "|quarantined|" + good.SnapshotID,
	})

	lax := f.writer(postgres.Config{SkipProfile: true})
	out = f.load(lax, bad, writers.OutcomeLoaded)
	for _, c := range out.Tables[0].Checks {
		if strings.HasPrefix(c.Name, "profile:") {
			t.Errorf("profile check %s ran with SkipProfile", c.Name)
		}
	}
	equal(t, "live snapshot", f.query(`SELECT snapshot_id FROM tenantlake.live`), []string{bad.SnapshotID})
	equal(t, "staging schemas left", f.query(`SELECT nspname FROM pg_namespace WHERE nspname LIKE 'tenantlake_staging_%'`), nil)
}

func TestRequestChecks(t *testing.T) {
	f := newFixture(t)
	w := f.writer(postgres.Config{})
	m := f.snapshot("acme", `CREATE TABLE items (id bigint)`)
	for _, req := range []writers.Request{
		{Tenant: "Acme", SnapshotID: m.SnapshotID, Reason: writers.ReasonManual},
		{Tenant: "acme", SnapshotID: "yesterday", Reason: writers.ReasonManual},
		{Tenant: "acme", SnapshotID: m.SnapshotID, Reason: "because"},
		{Tenant: "acme", SnapshotID: m.SnapshotID, Reason: writers.ReasonManual, Tables: []string{"items"}},
	} {
		if out, err := w.Load(f.ctx, f.lk, req); err == nil {
			t.Errorf("load %+v: no error, outcome %+v", req, out)
		}
	}
	long := strings.Repeat("a", 60)
	if out, err := w.Load(f.ctx, f.lk, writers.Request{Tenant: long, SnapshotID: m.SnapshotID, Reason: writers.ReasonManual}); err == nil || !strings.Contains(err.Error(), "63 bytes") {
		t.Errorf("load of a tenant whose schema name is too long: %v, %+v", err, out)
	}
}

// TestSameTenantConcurrently: loads of one tenant queue on its lock; the
// newer snapshot ends live whatever the order, and nothing fails.
func TestSameTenantConcurrently(t *testing.T) {
	f := newFixture(t)
	w := f.writer(postgres.Config{})
	src := pgtest.NewDatabase(t)
	f.exec(src, `CREATE TABLE items (id bigint PRIMARY KEY)`, `INSERT INTO items SELECT generate_series(1, 1000)`)
	read := func() *lake.Manifest {
		m, err := readerpg.New(readerpg.Options{}).Read(f.ctx, f.lk, tenant.Tenant{ID: "acme", Connection: src})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond)
		return m
	}
	older := read()
	f.exec(src, `DELETE FROM items WHERE id > 10`)
	newer := read()

	outs := make([]*writers.Outcome, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, m := range []*lake.Manifest{older, newer} {
		wg.Go(func() {
			outs[i], errs[i] = w.Load(f.ctx, f.lk, writers.Request{Tenant: "acme", SnapshotID: m.SnapshotID, Reason: writers.ReasonScheduled})
		})
	}
	wg.Wait()
	for i := range outs {
		if errs[i] != nil {
			t.Fatalf("load %d: %v", i, errs[i])
		}
	}
	if outs[1].Outcome != writers.OutcomeLoaded || (outs[0].Outcome != writers.OutcomeLoaded && outs[0].Outcome != writers.OutcomeStale) {
		t.Errorf("outcomes: older %s, newer %s", outs[0].Outcome, outs[1].Outcome)
	}
	equal(t, "live", f.query(`SELECT snapshot_id FROM tenantlake.live`), []string{newer.SnapshotID})
	equal(t, "live rows", f.query(`SELECT count(*) FROM tenant_acme.items`), []string{"10"})
}
