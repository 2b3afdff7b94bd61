package bigquery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
	"google.golang.org/api/iterator"

	"github.com/tenantlake/tenantlake/internal/pgtest"
	"github.com/tenantlake/tenantlake/lake"
	rpg "github.com/tenantlake/tenantlake/readers/postgres"
	"github.com/tenantlake/tenantlake/tenant"
	"github.com/tenantlake/tenantlake/writers"
)

// corpusSQL creates the source tables of the emulator tests: a column of
// every type the emulator (goccy/bigquery-emulator v0.6.6) stores faithfully
// from Parquet, NULLs, extremes, unicode and a reserved word for a column
// name; and an empty table whose columns have the types it does not (their
// schema is still created and checked). The emulator's Parquet import
// corrupts DATE, TIMESTAMP, DATETIME, TIME and DECIMAL values and cannot
// hold NaN, so the shared conformance suite's corpus cannot round-trip
// through it (see doc.go).
const corpusSQL = `
CREATE TABLE corpus (
	id bigint PRIMARY KEY,
	i2 smallint, i4 integer, i8 bigint, f4 real, f8 double precision,
	b boolean, t text, "at" text, raw bytea, j jsonb, u uuid
);
INSERT INTO corpus VALUES
 (1, -32768, 2147483647, -9223372036854775808, 1.5, 1e300,
  true, 'héllo ✓', 'at noon', '\x00ff', '{"a": [1, 2, {"b": null}]}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'),
 (2, 32767, -2147483648, 9223372036854775807, -0.25, '-Infinity',
  false, 'Zebra', '', '\x', '[]', NULL),
 (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
CREATE TABLE empty_table (id integer PRIMARY KEY, amount numeric(12,2), big numeric(50,20),
	d date, ts timestamp, tstz timestamptz NOT NULL, tm time, note text);
`

// source is a tenant's source database.
type source struct {
	tenant string
	dsn    string
}

func newSource(t *testing.T, tenantID, sql string) source {
	t.Helper()
	dsn := pgtest.NewDatabase(t)
	execSQL(t, dsn, sql)
	return source{tenant: tenantID, dsn: dsn}
}

func execSQL(t *testing.T, dsn, sql string) {
	t.Helper()
	ctx := context.Background()
	conn := pgtest.Connect(t, dsn)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("source SQL: %v", err)
	}
}

// read takes a snapshot of s into lk.
func (s source) read(t *testing.T, lk *lake.Lake) *lake.Manifest {
	t.Helper()
	m, err := rpg.New(rpg.Options{}).Read(context.Background(), lk, tenant.Tenant{ID: s.tenant, Connection: s.dsn, Active: true})
	if err != nil {
		t.Fatalf("read %s: %v", s.tenant, err)
	}
	return m
}

// gcsLake opens a fresh gs:// lake on the fake-gcs-server; fileLake a
// local one (parts are then streamed through the load API).
func gcsLake(t *testing.T) *lake.Lake {
	return openLake(t, fmt.Sprintf("gs://%s/%s", lakeBucket, strings.ToLower(strings.ReplaceAll(t.Name(), "/", "_"))))
}

func fileLake(t *testing.T) *lake.Lake {
	return openLake(t, "file://"+t.TempDir())
}

func openLake(t *testing.T, u string) *lake.Lake {
	t.Helper()
	lk, err := lake.Open(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := lk.Close(); err != nil {
			t.Errorf("close lake: %v", err)
		}
	})
	return lk
}

func load(t *testing.T, w *Writer, lk *lake.Lake, tenantID, snapshotID, reason string) *writers.Outcome {
	t.Helper()
	out, err := w.Load(testContext(t), lk, writers.Request{Tenant: tenantID, SnapshotID: snapshotID, Reason: reason, RequestID: "test"})
	if err != nil {
		t.Fatalf("load %s/%s: %v", tenantID, snapshotID, err)
	}
	return out
}

func wantOutcome(t *testing.T, out *writers.Outcome, want string) {
	t.Helper()
	if out.Outcome != want {
		t.Fatalf("outcome %s (%s), want %s; tables: %+v", out.Outcome, out.Message, want, out.Tables)
	}
}

// liveRows returns the rows of a live table as strings, ordered by id.
func liveRows(t *testing.T, w *Writer, tenantID, table string) []string {
	t.Helper()
	return queryRows(t, w, "SELECT * FROM "+tablePath(w.client.Dataset(w.datasetName(tenantID)).Table(table))+" ORDER BY id")
}

// queryRows runs sql and returns its rows as strings.
func queryRows(t *testing.T, w *Writer, sql string) []string {
	t.Helper()
	it, err := w.client.Query(sql).Read(testContext(t))
	if err != nil {
		t.Fatalf("query %s: %v", sql, err)
	}
	var rows []string
	for {
		var row []bigquery.Value
		err := it.Next(&row)
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, fmt.Sprint(row))
	}
	return rows
}

func checkAllOK(t *testing.T, out *writers.Outcome, tables int) {
	t.Helper()
	if len(out.Tables) != tables {
		t.Fatalf("%d table results, want %d", len(out.Tables), tables)
	}
	for _, tr := range out.Tables {
		if tr.SourceRows != tr.LakeRows || tr.LakeRows != tr.TargetRows {
			t.Errorf("table %s: rows source %d, lake %d, target %d", tr.Table, tr.SourceRows, tr.LakeRows, tr.TargetRows)
		}
		names := map[string]bool{}
		for _, c := range tr.Checks {
			names[strings.SplitN(c.Name, ":", 2)[0]] = true
			if !c.OK {
				t.Errorf("table %s: check %s failed: expected %s, got %s", tr.Table, c.Name, c.Expected, c.Actual)
			}
		}
		for _, n := range []string{"rows", "schema", "profile"} {
			if !names[n] {
				t.Errorf("table %s: no %s check ran", tr.Table, n)
			}
		}
	}
}

func TestLoadCorpusFromGCS(t *testing.T) {
	w := newEmulatorWriter(t, emulatorConfig(t))
	lk := gcsLake(t)
	src := newSource(t, "acme", corpusSQL)
	m := src.read(t, lk)
	out := load(t, w, lk, "acme", m.SnapshotID, writers.ReasonScheduled)
	wantOutcome(t, out, writers.OutcomeLoaded)
	checkAllOK(t, out, 2)
	// The source's values as the client returns them (JSON text as
	// BigQuery's JSON type prints it: compact).
	want := []string{
		`[1 -32768 2147483647 -9223372036854775808 1.5 1e+300 true héllo ✓ at noon [0 255] {"a":[1,2,{"b":null}]} a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11]`,
		`[2 32767 -2147483648 9223372036854775807 -0.25 -Inf false Zebra  [] [] <nil>]`,
		`[3 <nil> <nil> <nil> <nil> <nil> <nil> <nil> <nil> <nil> <nil> <nil>]`,
	}
	if got := liveRows(t, w, "acme", "corpus"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("live corpus:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if live, err := w.Live(testContext(t), "acme"); err != nil || live != m.SnapshotID {
		t.Fatalf("Live = %q, %v; want %s", live, err, m.SnapshotID)
	}
}

func TestLoadStreamedFromLocalLake(t *testing.T) {
	w := newEmulatorWriter(t, emulatorConfig(t))
	lk := fileLake(t)
	src := newSource(t, "acme", corpusSQL)
	m := src.read(t, lk)
	out := load(t, w, lk, "acme", m.SnapshotID, writers.ReasonScheduled)
	wantOutcome(t, out, writers.OutcomeLoaded)
	checkAllOK(t, out, 2)
	gcs := newEmulatorWriter(t, emulatorConfig(t))
	lkGCS := gcsLake(t)
	mGCS := src.read(t, lkGCS)
	wantOutcome(t, load(t, gcs, lkGCS, "acme", mGCS.SnapshotID, writers.ReasonScheduled), writers.OutcomeLoaded)
	streamed, fromGCS := liveRows(t, w, "acme", "corpus"), liveRows(t, gcs, "acme", "corpus")
	if len(streamed) != 3 || strings.Join(streamed, "\n") != strings.Join(fromGCS, "\n") {
		t.Fatalf("streamed parts loaded\n%s\nparts from GCS loaded\n%s", strings.Join(streamed, "\n"), strings.Join(fromGCS, "\n"))
	}
	if got := liveRows(t, w, "acme", "empty_table"); len(got) != 0 {
		t.Fatalf("empty_table has rows: %v", got)
	}
}

// Two tenants whose "orders" differ: the combined all-tenants table has
// both, with tenant_id and tenant_num, a NULL where a tenant lacks a
// column (a column only the second tenant has is added), and a source
// column named tenant_id carried as source_tenant_id. A new snapshot of one
// tenant replaces its slice only; a table it no longer has loses its
// slice; a column whose type clashes leaves its slice stale, said in the
// outcome, with the snapshot live. The ledger table has a row per load and
// each tenant its own live record.
func TestAllTenantsTables(t *testing.T) {
	w := newEmulatorWriter(t, emulatorConfig(t))
	lk := gcsLake(t)
	a := newSource(t, "alpha", `CREATE TABLE orders (id bigint PRIMARY KEY, qty integer, tenant_id text); INSERT INTO orders VALUES (1, 9, 'src');
		CREATE TABLE extra (k text PRIMARY KEY); INSERT INTO extra VALUES ('x')`)
	b := newSource(t, "beta", `CREATE TABLE orders (id bigint PRIMARY KEY, note text); INSERT INTO orders VALUES (2, 'hi'), (3, NULL)`)
	var loadIDs []string
	for _, s := range []source{a, b} {
		m := s.read(t, lk)
		out := load(t, w, lk, s.tenant, m.SnapshotID, writers.ReasonScheduled)
		wantOutcome(t, out, writers.OutcomeLoaded)
		if len(out.AllTenantsStale) > 0 {
			t.Fatalf("load %s: all-tenants stale: %v", s.tenant, out.AllTenantsStale)
		}
		loadIDs = append(loadIDs, out.LoadID)
	}
	orders := tablePath(w.client.Dataset(w.cfg.AllTenantsDataset).Table("orders"))
	extra := tablePath(w.client.Dataset(w.cfg.AllTenantsDataset).Table("extra"))
	wantRows := func(sql string, want ...string) {
		t.Helper()
		if got := queryRows(t, w, sql); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s:\n%s\nwant:\n%s", sql, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	q := "SELECT tenant_id, tenant_num, id, qty, source_tenant_id, note FROM " + orders + " ORDER BY tenant_id, id"
	wantRows(q, "[alpha 0 1 9 src <nil>]", "[beta 1 2 <nil> <nil> hi]", "[beta 1 3 <nil> <nil> <nil>]")
	wantRows("SELECT tenant_id, k FROM "+extra, "[alpha x]")

	// alpha's next snapshot: orders changed, extra gone.
	execSQL(t, a.dsn, `UPDATE orders SET qty = 10; INSERT INTO orders VALUES (4, 1, NULL); DROP TABLE extra`)
	m := a.read(t, lk)
	out := load(t, w, lk, "alpha", m.SnapshotID, writers.ReasonScheduled)
	wantOutcome(t, out, writers.OutcomeLoaded)
	wantRows(q, "[alpha 0 1 10 src <nil>]", "[alpha 0 4 1 <nil> <nil>]", "[beta 1 2 <nil> <nil> hi]", "[beta 1 3 <nil> <nil> <nil>]")
	wantRows("SELECT COUNT(*) FROM "+extra, "[0]")

	// beta's qty is text: its orders slice cannot be replaced, and says so.
	execSQL(t, b.dsn, `ALTER TABLE orders ADD COLUMN qty text; UPDATE orders SET note = 'changed'`)
	m = b.read(t, lk)
	out = load(t, w, lk, "beta", m.SnapshotID, writers.ReasonScheduled)
	wantOutcome(t, out, writers.OutcomeLoaded)
	if out.Live != m.SnapshotID || len(out.AllTenantsStale) != 1 || !strings.Contains(out.AllTenantsStale[0], "column qty is STRING in this tenant and INT64") ||
		!strings.Contains(out.Message, "is live") {
		t.Errorf("type clash: live %s, stale %v, message %q", out.Live, out.AllTenantsStale, out.Message)
	}
	wantRows(q, "[alpha 0 1 10 src <nil>]", "[alpha 0 4 1 <nil> <nil>]", "[beta 1 2 <nil> <nil> hi]", "[beta 1 3 <nil> <nil> <nil>]")
	if got := liveRows(t, w, "beta", "orders"); !strings.Contains(strings.Join(got, ""), "changed") {
		t.Errorf("beta's live table is not its new snapshot: %v", got)
	}
	recs, err := lk.Ledger(testContext(t), "beta", w.Target())
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range recs {
		var o writers.Outcome
		if err := json.Unmarshal(r, &o); err != nil {
			t.Fatal(err)
		}
		found = found || o.LoadID == out.LoadID && o.Outcome == writers.OutcomeLoaded && len(o.AllTenantsStale) == 1
	}
	if !found {
		t.Errorf("the lake's ledger does not record load %s as loaded with a stale all-tenants table", out.LoadID)
	}

	ledger := w.client.Dataset(w.cfg.LedgerDataset).Table(ledgerTable)
	got := queryRows(t, w, "SELECT load_id, outcome FROM "+tablePath(ledger)+" WHERE load_id IN ('"+loadIDs[0]+"', '"+loadIDs[1]+"') ORDER BY load_id")
	want := []string{fmt.Sprintf("[%s loaded]", loadIDs[0]), fmt.Sprintf("[%s loaded]", loadIDs[1])}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("ledger table:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, ten := range []string{"alpha", "beta"} {
		if _, err := w.liveTable(ten).Metadata(testContext(t)); err != nil {
			t.Errorf("live record table of %s: %v", ten, err)
		}
	}
}

// TestLiveRecordCompareAndSwap: a tenant's live record is created once (a
// second creation, as by a racing first load, fails and leaves the first)
// and changes only from the load id it holds.
func TestLiveRecordCompareAndSwap(t *testing.T) {
	ctx := testContext(t)
	w := newEmulatorWriter(t, emulatorConfig(t))
	if err := w.ensureLedger(ctx); err != nil {
		t.Fatal(err)
	}
	r1 := liveRecord{Snapshot: "20261121T020304.123Z", State: statePromoting, LoadID: "l1", TenantNum: 3}
	if err := w.swapLive(ctx, "acme", "", r1); err != nil {
		t.Fatal(err)
	}
	r2 := liveRecord{Snapshot: "20261122T020304.123Z", State: statePromoting, LoadID: "l2", TenantNum: 3}
	if err := w.swapLive(ctx, "acme", "", r2); !errors.Is(err, errLiveChanged) {
		t.Errorf("second creation: %v, want errLiveChanged", err)
	}
	if err := w.swapLive(ctx, "acme", "l0", r2); !errors.Is(err, errLiveChanged) {
		t.Errorf("swap from a load id not in the record: %v, want errLiveChanged", err)
	}
	if got, err := w.readLive(ctx, "acme"); err != nil || got != r1 {
		t.Errorf("record %+v, %v; want %+v", got, err, r1)
	}
	r3 := r2
	r3.State = stateLive
	if err := w.swapLive(ctx, "acme", "l1", r3); err != nil {
		t.Fatal(err)
	}
	if got, err := w.readLive(ctx, "acme"); err != nil || got != r3 {
		t.Errorf("record %+v, %v; want %+v", got, err, r3)
	}
	if got, err := w.readLive(ctx, "globex"); err != nil || got != (liveRecord{}) {
		t.Errorf("another tenant's record %+v, %v; want none", got, err)
	}

	// The shared live table of earlier versions: a tenant without a record
	// of its own reads its row there (without a load id, so its next load
	// creates its record); two rows fail, naming the table.
	if err := w.exec(ctx, "CREATE TABLE "+tablePath(w.client.Dataset(w.cfg.LedgerDataset).Table(legacyLiveTable))+
		" AS SELECT 'initech' AS tenant, '20261120T010203.456Z' AS snapshot_id, 'live' AS state, 'old1' AS load_id, CURRENT_TIMESTAMP() AS updated_at"+
		" UNION ALL SELECT 'hooli', '20261120T010203.456Z', 'live', 'old2', CURRENT_TIMESTAMP()"+
		" UNION ALL SELECT 'hooli', '20261120T020203.456Z', 'live', 'old3', CURRENT_TIMESTAMP()"); err != nil {
		t.Fatal(err)
	}
	if got, err := w.Live(ctx, "initech"); err != nil || got != "20261120T010203.456Z" {
		t.Errorf("legacy record of initech: %q, %v", got, err)
	}
	if got, err := w.readLive(ctx, "initech"); err != nil || got != (liveRecord{Snapshot: "20261120T010203.456Z", State: stateLive}) {
		t.Errorf("legacy record of initech: %+v, %v", got, err)
	}
	if _, err := w.readLive(ctx, "hooli"); err == nil || !strings.Contains(err.Error(), "2 rows for tenant hooli") {
		t.Errorf("two legacy rows: %v; want an error naming them", err)
	}
	if got, err := w.readLive(ctx, "acme"); err != nil || got != r3 {
		t.Errorf("acme's own record %+v, %v; want %+v (its own record wins)", got, err, r3)
	}
	// Tenant numbers are claimed in order, each once.
	for want := int64(0); want < 3; want++ {
		if n, err := w.claimTenantNum(ctx, fmt.Sprintf("t%d", want)); err != nil || n != want {
			t.Errorf("claim %d: got %d, %v", want, n, err)
		}
	}
}

// mutateSQL changes the corpus between two snapshots.
const mutateSQL = `UPDATE corpus SET t = 'changed', i4 = i4 + 1 WHERE id = 2;
INSERT INTO corpus (id, t, f8) VALUES (4, 'new row', 2.25);
DELETE FROM corpus WHERE id = 1;`

// tamper commits a copy of m under a new snapshot id whose manifest says
// table corpus has one row more than its parts hold.
func tamper(t *testing.T, lk *lake.Lake, m *lake.Manifest) *lake.Manifest {
	t.Helper()
	ctx := context.Background()
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var bad lake.Manifest
	if err := json.Unmarshal(data, &bad); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Millisecond)
	bad.SnapshotID = lake.SnapshotID(time.Now())
	s, err := lk.NewSnapshot(ctx, bad.Tenant, bad.SnapshotID)
	if err != nil {
		t.Fatal(err)
	}
	for ti := range bad.Tables {
		tb := &bad.Tables[ti]
		for fi, f := range tb.Files {
			r, err := lk.OpenPart(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(r)
			if err != nil {
				t.Fatal(err)
			}
			p, err := s.CreatePart(ctx, tb.Name, fi)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := p.Write(body); err != nil {
				t.Fatal(err)
			}
			p.SetRows(f.Rows)
			if err := p.Close(); err != nil {
				t.Fatal(err)
			}
			tb.Files[fi] = p.File()
		}
	}
	c := bad.Table("corpus")
	c.Rows++
	c.Files[0].Rows++
	if err := s.Commit(ctx, &bad); err != nil {
		t.Fatal(err)
	}
	return &bad
}

// One tenant through every outcome, on a gs:// lake: loaded, a redelivery
// (already-live, nothing loaded again), a newer snapshot, the older one
// skipped as stale (scheduled and manual), replayed on purpose (its rows
// restored exactly), and a tampered manifest quarantined with the live
// tables untouched. Every load is in the lake's ledger.
func TestLifecycle(t *testing.T) {
	ctx := testContext(t)
	w := newEmulatorWriter(t, emulatorConfig(t))
	lk := gcsLake(t)
	src := newSource(t, "acme", corpusSQL)
	s1 := src.read(t, lk)
	time.Sleep(2 * time.Millisecond)
	var outs []*writers.Outcome
	step := func(snapshotID, reason, want string) *writers.Outcome {
		t.Helper()
		out := load(t, w, lk, "acme", snapshotID, reason)
		wantOutcome(t, out, want)
		outs = append(outs, out)
		return out
	}
	wantLive := func(id string) {
		t.Helper()
		if live, err := w.Live(ctx, "acme"); err != nil || live != id {
			t.Fatalf("Live = %q, %v; want %s", live, err, id)
		}
	}

	step(s1.SnapshotID, writers.ReasonScheduled, writers.OutcomeLoaded)
	rows1 := liveRows(t, w, "acme", "corpus")
	// An analyst's own table in the tenant's dataset: no load drops it.
	mine := w.client.Dataset(w.datasetName("acme")).Table("analyst_notes")
	if err := mine.Create(ctx, &bigquery.TableMetadata{Schema: bigquery.Schema{{Name: "note", Type: bigquery.StringFieldType}}}); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if _, err := mine.Metadata(ctx); err != nil {
			t.Errorf("the analyst's table after the loads: %v", err)
		}
	}()
	again := step(s1.SnapshotID, writers.ReasonScheduled, writers.OutcomeAlreadyLive)
	if len(again.Tables) != 0 || again.Live != s1.SnapshotID {
		t.Errorf("redelivery loaded tables %+v, live %q", again.Tables, again.Live)
	}

	execSQL(t, src.dsn, mutateSQL)
	s2 := src.read(t, lk)
	step(s2.SnapshotID, writers.ReasonScheduled, writers.OutcomeLoaded)
	rows2 := liveRows(t, w, "acme", "corpus")
	if strings.Join(rows1, "\n") == strings.Join(rows2, "\n") || !strings.Contains(strings.Join(rows2, "\n"), "changed") {
		t.Fatalf("second snapshot not live: %v", rows2)
	}
	for _, reason := range []string{writers.ReasonScheduled, writers.ReasonManual} {
		out := step(s1.SnapshotID, reason, writers.OutcomeStale)
		if out.Live != s2.SnapshotID {
			t.Errorf("stale outcome says live %q", out.Live)
		}
	}
	wantLive(s2.SnapshotID)

	replay := step(s1.SnapshotID, writers.ReasonReplay, writers.OutcomeLoaded)
	if replay.PreviousLive != s2.SnapshotID || !strings.Contains(replay.Message, "replay") {
		t.Errorf("replay: previous live %q, message %q", replay.PreviousLive, replay.Message)
	}
	wantLive(s1.SnapshotID)
	if got := liveRows(t, w, "acme", "corpus"); strings.Join(got, "\n") != strings.Join(rows1, "\n") {
		t.Errorf("replay did not restore the rows:\n%v\nwant\n%v", got, rows1)
	}

	bad := tamper(t, lk, s2)
	q := step(bad.SnapshotID, writers.ReasonScheduled, writers.OutcomeQuarantined)
	failed := false
	for _, tr := range q.Tables {
		for _, c := range tr.Checks {
			if tr.Table == "corpus" && c.Name == "rows" && !c.OK && c.Expected == fmt.Sprint(bad.Table("corpus").Rows) {
				failed = true
			}
		}
	}
	if !failed || q.Live != s1.SnapshotID {
		t.Errorf("quarantine: live %q, no failed rows check on corpus: %+v", q.Live, q.Tables)
	}
	wantLive(s1.SnapshotID)
	if got := liveRows(t, w, "acme", "corpus"); strings.Join(got, "\n") != strings.Join(rows1, "\n") {
		t.Errorf("a quarantined load changed the live rows:\n%v", got)
	}

	recs, err := lk.Ledger(ctx, "acme", w.Target())
	if err != nil {
		t.Fatal(err)
	}
	recorded := map[string]string{}
	for _, r := range recs {
		var o writers.Outcome
		if err := json.Unmarshal(r, &o); err != nil {
			t.Fatal(err)
		}
		recorded[o.LoadID] = o.Outcome
	}
	for _, o := range outs {
		if recorded[o.LoadID] != o.Outcome {
			t.Errorf("lake ledger: load %s recorded as %q, want %q", o.LoadID, recorded[o.LoadID], o.Outcome)
		}
	}
}

// Two tenants loaded at once by one writer stay isolated, and both are in
// the combined all-tenants table.
func TestConcurrentTenants(t *testing.T) {
	w := newEmulatorWriter(t, emulatorConfig(t))
	lk := fileLake(t)
	srcs := []source{newSource(t, "acme", corpusSQL), newSource(t, "globex", corpusSQL+mutateSQL)}
	var ms []*lake.Manifest
	for _, s := range srcs {
		ms = append(ms, s.read(t, lk))
	}
	var wg sync.WaitGroup
	outs := make([]*writers.Outcome, len(srcs))
	errs := make([]error, len(srcs))
	for i, s := range srcs {
		wg.Go(func() {
			outs[i], errs[i] = w.Load(testContext(t), lk, writers.Request{Tenant: s.tenant, SnapshotID: ms[i].SnapshotID, Reason: writers.ReasonScheduled})
		})
	}
	wg.Wait()
	for i, s := range srcs {
		if errs[i] != nil {
			t.Fatalf("load %s: %v", s.tenant, errs[i])
		}
		wantOutcome(t, outs[i], writers.OutcomeLoaded)
		if len(outs[i].AllTenantsStale) > 0 {
			t.Errorf("load %s: all-tenants stale: %v", s.tenant, outs[i].AllTenantsStale)
		}
		if live, err := w.Live(testContext(t), s.tenant); err != nil || live != ms[i].SnapshotID {
			t.Errorf("Live(%s) = %q, %v; want %s", s.tenant, live, err, ms[i].SnapshotID)
		}
	}
	acme, globex := liveRows(t, w, "acme", "corpus"), liveRows(t, w, "globex", "corpus")
	if len(acme) != 3 || len(globex) != 3 || strings.Contains(strings.Join(acme, ""), "changed") || !strings.Contains(strings.Join(globex, ""), "changed") {
		t.Errorf("tenants mixed up:\nacme %v\nglobex %v", acme, globex)
	}
	combined := w.client.Dataset(w.cfg.AllTenantsDataset).Table("corpus")
	row, err := w.queryRow(testContext(t), "SELECT COUNTIF(tenant_id = 'acme'), COUNTIF(tenant_id = 'globex') FROM "+tablePath(combined))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(row) != "[3 3]" {
		t.Errorf("all-tenants table holds %v rows of acme and globex, want 3 and 3", row)
	}
}

// A load that fails midway (a part of its last table missing from the
// lake, after the first table is staged) leaves the previous snapshot live;
// once the part is back, a retry attaches to the first table's finished job
// and completes.
func TestFailedLoadLeavesLiveThenRetryCompletes(t *testing.T) {
	ctx := testContext(t)
	cfg := emulatorConfig(t)
	cfg.Parallel = 1 // tables in manifest order
	w := newEmulatorWriter(t, cfg)
	root := t.TempDir()
	lk := openLake(t, "file://"+root)
	src := newSource(t, "acme", corpusSQL)
	s1 := src.read(t, lk)
	wantOutcome(t, load(t, w, lk, "acme", s1.SnapshotID, writers.ReasonScheduled), writers.OutcomeLoaded)
	rows1 := liveRows(t, w, "acme", "corpus")
	execSQL(t, src.dsn, mutateSQL)
	s2 := src.read(t, lk)

	last := s2.Tables[len(s2.Tables)-1]
	path := filepath.Join(root, filepath.FromSlash(last.Files[0].Path))
	part, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	out, err := w.Load(ctx, lk, writers.Request{Tenant: "acme", SnapshotID: s2.SnapshotID, Reason: writers.ReasonScheduled})
	if err == nil || out == nil || out.Outcome != writers.OutcomeFailed || !errors.Is(err, lake.ErrNotFound) {
		t.Fatalf("load with a missing part: outcome %+v, error %v; want failed, not found", out, err)
	}
	if live, err := w.Live(ctx, "acme"); err != nil || live != s1.SnapshotID {
		t.Fatalf("after a failed load Live = %q, %v; want %s", live, err, s1.SnapshotID)
	}
	if got := liveRows(t, w, "acme", "corpus"); strings.Join(got, "\n") != strings.Join(rows1, "\n") {
		t.Errorf("a failed load changed the live rows: %v", got)
	}

	if err := os.WriteFile(path, part, 0o644); err != nil {
		t.Fatal(err)
	}
	retry := load(t, w, lk, "acme", s2.SnapshotID, writers.ReasonScheduled)
	wantOutcome(t, retry, writers.OutcomeLoaded)
	if first := retry.Tables[0]; first.Jobs[0] != out.Tables[0].Jobs[0] {
		t.Errorf("retry did not reuse the first table's job: %v, then %v", out.Tables[0].Jobs, first.Jobs)
	}
	if got := liveRows(t, w, "acme", "corpus"); !strings.Contains(strings.Join(got, "\n"), "changed") || len(got) != 3 {
		t.Errorf("retry did not make the new snapshot live: %v", got)
	}
}

// testContext bounds a test's calls: a broken emulator makes the client
// retry for ever.
func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}
