// Package writertest is the conformance suite every write strategy must pass,
// in the style of gocloud.dev's blob/drivertest: a strategy's own tests
// implement Harness and call RunConformance.
//
// The suite builds its snapshots with the real PostgreSQL read strategy
// (readers/postgres) from fresh source databases made by internal/pgtest,
// so the test binary's TestMain must call pgtest.Main. Its lake is an
// in-memory bucket (mem://): a strategy that loads from GCS URIs must stream
// the parts of a lake that is not on GCS, as DESIGN.md requires.
//
// Values read back from the target are compared with the source database's
// values, not with the lake's Parquet values, so a conversion error anywhere
// between source and target shows.
package writertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantlake/tenantlake/internal/pgtest"
	"github.com/tenantlake/tenantlake/lake"
	readerpg "github.com/tenantlake/tenantlake/readers/postgres"
	"github.com/tenantlake/tenantlake/tenant"
	"github.com/tenantlake/tenantlake/writers"
)

// Harness adapts one write strategy to the suite.
type Harness interface {
	// NewWriter returns a writer bound to a fresh, empty target. The suite
	// closes it.
	NewWriter(ctx context.Context, t *testing.T) (writers.Writer, error)
	// LiveRows returns every row of tenant's live table in w's target, in
	// any order, with the values of columns (destination names, in that
	// order) as the Go types listed at Canonical. It fails if the table or
	// a column does not exist.
	LiveRows(ctx context.Context, w writers.Writer, tenant, table string, columns []string) ([][]any, error)
}

// AllTenantsHarness is implemented by a Harness whose target keeps combined
// all-tenants tables; the AllTenants case fails for a Harness without it.
type AllTenantsHarness interface {
	// AllTenantsRows returns every row of the combined all-tenants table
	// of table in w's target, in any order: the row's tenant id (a string)
	// first, then the values of columns as LiveRows gives them.
	AllTenantsRows(ctx context.Context, w writers.Writer, table string, columns []string) ([][]any, error)
}

// Omission is a set of corpus values that a target cannot hold or read back
// faithfully: before each snapshot's source is read, the suite sets Column
// of the corpus rows matching Where to NULL, and logs it with the reason, so
// every other value is still checked exactly.
type Omission struct {
	Column string // a column of the corpus table (source name)
	Where  string // a PostgreSQL condition on the corpus row, e.g. f8 = 'NaN'
	Reason string // why the target cannot hold these values
}

// Omitter is implemented by a Harness whose target cannot hold some corpus
// values. Harnesses without it are checked with the whole corpus.
type Omitter interface {
	Omissions() []Omission
}

// RunRoundTripOn runs the cases that need no hook into the lake,
// TypesRoundTrip and EmptyTable, with snapshots read into lk (for instance a
// gs:// lake, so that a strategy loads the parts from GCS instead of
// streaming them). The caller closes lk. scripts/bigquery-smoke.sh uses it
// against a real BigQuery project.
func RunRoundTripOn(t *testing.T, h Harness, lk *lake.Lake) {
	t.Run("TypesRoundTrip", func(t *testing.T) { testTypesRoundTrip(t, h, lk) })
	t.Run("EmptyTable", func(t *testing.T) { testEmptyTable(t, h, lk) })
}

// caseTimeout bounds each case of the suite.
const caseTimeout = 5 * time.Minute

// RunConformance runs every case of the suite against h.
func RunConformance(t *testing.T, h Harness) {
	t.Run("TypesRoundTrip", func(t *testing.T) { testTypesRoundTrip(t, h, nil) })
	t.Run("EmptyTable", func(t *testing.T) { testEmptyTable(t, h, nil) })
	t.Run("Redelivery", func(t *testing.T) { testRedelivery(t, h) })
	t.Run("ValidationFailure", func(t *testing.T) { testValidationFailure(t, h) })
	t.Run("TamperedPart", func(t *testing.T) { testTamperedPart(t, h) })
	t.Run("StaleScheduledLoad", func(t *testing.T) { testStale(t, h) })
	t.Run("ReplayOlderSnapshot", func(t *testing.T) { testReplay(t, h) })
	t.Run("ConcurrentTenants", func(t *testing.T) { testConcurrentTenants(t, h) })
	t.Run("InterruptedLoad", func(t *testing.T) { testInterrupted(t, h) })
	t.Run("SnapshotDeletedDuringLoad", func(t *testing.T) { testDeletedDuringLoad(t, h) })
	t.Run("FailuresStateTrueLive", func(t *testing.T) { testFailuresStateLive(t, h) })
	t.Run("AllTenants", func(t *testing.T) { testAllTenants(t, h) })
	t.Run("ChangeTables", func(t *testing.T) { testChangeTables(t, h) })
}

// corpusSQL creates the source tables: every type family of docs/types.md,
// extremes, NULLs, and an empty table.
var corpusSQL = []string{`
CREATE TABLE corpus (
	id bigint PRIMARY KEY,
	i2 smallint, i4 integer, i8 bigint,
	f4 real, f8 double precision,
	n numeric(12,2), nbig numeric(40,10), nfree numeric,
	t text, vc varchar(10), b bytea, j jsonb, jt json, bo boolean,
	d date, ts timestamp, tstz timestamptz, tm time, u uuid
)`, `
INSERT INTO corpus VALUES
(1, -32768, -2147483648, -9223372036854775808, -3.5, '-Infinity', -9999999999.99,
 '-123456789012345678901234567890.0123456789', '0.00000000000000000001',
 'héllo wörld ✓', 'abc', '\x00ff10', '{"b": 1, "a": [1, 2.50, "x"]}', '{"z": 1,  "a": 2}', false,
 '0001-01-01', '0001-01-01 00:00:00', '0001-01-01 00:00:00+00', '00:00:00', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'),
(2, 32767, 2147483647, 9223372036854775807, 3.4028235e38, 'NaN', 9999999999.99,
 '123456789012345678901234567890.0123456789', '42',
 '', 'x', '\x', '[]', '"just a string"', true,
 '9999-12-31', '9999-12-31 23:59:59.999999', '9999-12-31 23:59:59.999999+00', '23:59:59.999999', '00000000-0000-0000-0000-000000000000'),
(3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
(4, 0, 0, 0, 0.1, 1.5e-300, 0.00, 0, '-0.5',
 E'quote''s "double" \\ back\nline', E'tab\there', '\xdeadbeef', '{"nested": {"k": null}, "s": "a\"b", "n": 1e3}', 'null', true,
 '2026-11-21', '2026-11-21 02:03:04.123456', '2026-11-21 02:03:04.123456+05:30', '12:34:56.789', 'ffffffff-ffff-ffff-ffff-ffffffffffff')`,
	`CREATE TABLE empty_table (id integer PRIMARY KEY, note text, amount numeric(10,3), at timestamptz NOT NULL)`,
}

// mutateSQL changes the corpus between two snapshots.
var mutateSQL = []string{
	`UPDATE corpus SET t = 'changed', i4 = i4 + 1 WHERE id = 4`,
	`INSERT INTO corpus (id, t, f8) VALUES (5, 'new row', 2.25)`,
	`DELETE FROM corpus WHERE id = 1`,
}

// env is one case's writer, lake and context.
type env struct {
	t    *testing.T
	ctx  context.Context
	h    Harness
	w    writers.Writer
	lk   *lake.Lake
	hook *hookBucket
}

func newEnv(t *testing.T, h Harness) *env { return newEnvOn(t, h, nil) }

// newEnvOn is newEnv with the snapshots in lk, or in a fresh in-memory lake
// (with a hook) when lk is nil.
func newEnvOn(t *testing.T, h Harness, given *lake.Lake) *env {
	t.Helper()
	// A case that hangs (a target that stops answering) fails after
	// caseTimeout instead of holding up the whole test run.
	ctx, cancel := context.WithTimeout(t.Context(), caseTimeout)
	t.Cleanup(cancel)
	w, err := h.NewWriter(ctx, t)
	if err != nil {
		t.Fatalf("new writer: %v", err)
	}
	lk, hook := given, (*hookBucket)(nil)
	if lk == nil {
		lk, hook = newHookLake()
	}
	t.Cleanup(func() {
		if err := w.Close(); err != nil {
			t.Errorf("close writer: %v", err)
		}
		if given == nil {
			if err := lk.Close(); err != nil {
				t.Errorf("close lake: %v", err)
			}
		}
	})
	return &env{t: t, ctx: ctx, h: h, w: w, lk: lk, hook: hook}
}

// source is one tenant's source database.
type source struct {
	tenant tenant.Tenant
	dsn    string
}

// newSource creates tenant id's source database with the corpus, plus extra statements.
func (e *env) newSource(id string, extra ...string) *source {
	e.t.Helper()
	s := &source{dsn: pgtest.NewDatabase(e.t)}
	s.tenant = tenant.Tenant{ID: id, Connection: s.dsn, Active: true}
	e.exec(s, append(append([]string{}, corpusSQL...), extra...)...)
	if o, ok := e.h.(Omitter); ok {
		for _, om := range o.Omissions() {
			e.t.Logf("corpus of %s: %s set to NULL where %s, left out because %s", id, om.Column, om.Where, om.Reason)
			e.exec(s, fmt.Sprintf("UPDATE corpus SET %s = NULL WHERE %s", pgx.Identifier{om.Column}.Sanitize(), om.Where))
		}
	}
	return s
}

func (e *env) exec(s *source, stmts ...string) {
	e.t.Helper()
	conn, err := pgx.Connect(e.ctx, s.dsn)
	if err != nil {
		e.t.Fatalf("connect to source of %s: %v", s.tenant.ID, err)
	}
	defer func() {
		if err := conn.Close(e.ctx); err != nil {
			e.t.Errorf("close source connection: %v", err)
		}
	}()
	for _, q := range stmts {
		if _, err := conn.Exec(e.ctx, q); err != nil {
			e.t.Fatalf("source %s: %s: %v", s.tenant.ID, q, err)
		}
	}
}

// snapshot is a committed snapshot and the source's rows at that moment.
type snapshot struct {
	m    *lake.Manifest
	rows map[string][]string // table → canonical rows, sorted
}

// read reads s into the lake with the real read strategy and captures the
// source's rows.
func (e *env) read(s *source) *snapshot {
	e.t.Helper()
	m, err := readerpg.New(readerpg.Options{}).Read(e.ctx, e.lk, s.tenant)
	if err != nil {
		e.t.Fatalf("read tenant %s: %v", s.tenant.ID, err)
	}
	// Snapshot ids have millisecond resolution: never two in one millisecond.
	time.Sleep(2 * time.Millisecond)
	snap := &snapshot{m: m, rows: map[string][]string{}}
	for _, tbl := range m.Tables {
		snap.rows[tbl.Name] = e.sourceRows(s, &tbl)
	}
	return snap
}

// sourceRows reads a table's rows from the source, in canonical form.
func (e *env) sourceRows(s *source, tbl *lake.Table) []string {
	e.t.Helper()
	exprs := make([]string, len(tbl.Columns))
	for i, c := range tbl.Columns {
		exprs[i] = pgx.Identifier{c.Source}.Sanitize()
		if base, _, _ := strings.Cut(c.BigQueryType, "("); base == "STRING" || base == "JSON" {
			exprs[i] += "::text" // the reader carries these as their text output
		}
	}
	conn, err := pgx.Connect(e.ctx, s.dsn)
	if err != nil {
		e.t.Fatalf("connect to source: %v", err)
	}
	defer func() {
		if err := conn.Close(e.ctx); err != nil {
			e.t.Errorf("close source connection: %v", err)
		}
	}()
	// tbl.Source is already quoted as PostgreSQL spells it.
	rows, err := conn.Query(e.ctx, "SELECT "+strings.Join(exprs, ", ")+" FROM "+tbl.Source)
	if err != nil {
		e.t.Fatalf("source table %s: %v", tbl.Source, err)
	}
	var vals [][]any
	for rows.Next() {
		v, err := rows.Values()
		if err != nil {
			e.t.Fatalf("source table %s: %v", tbl.Source, err)
		}
		vals = append(vals, v)
	}
	if err := rows.Err(); err != nil {
		e.t.Fatalf("source table %s: %v", tbl.Source, err)
	}
	return e.canonicalRows(tbl, vals)
}

// canonicalRows renders rows in canonical form, one string per row
// (values quoted, NULL bare), sorted.
func (e *env) canonicalRows(tbl *lake.Table, vals [][]any) []string {
	e.t.Helper()
	out := make([]string, 0, len(vals))
	for _, row := range vals {
		if len(row) != len(tbl.Columns) {
			e.t.Fatalf("table %s: a row has %d values, want %d", tbl.Name, len(row), len(tbl.Columns))
		}
		cells := make([]string, len(row))
		for i, v := range row {
			s, ok, err := Canonical(tbl.Columns[i].BigQueryType, v)
			if err != nil {
				e.t.Fatalf("table %s column %s: %v", tbl.Name, tbl.Columns[i].Name, err)
			}
			cells[i] = "NULL"
			if ok {
				cells[i] = strconv.Quote(s)
			}
		}
		out = append(out, strings.Join(cells, ", "))
	}
	sort.Strings(out)
	return out
}

func (e *env) load(tenantID string, snap *snapshot, reason string) *writers.Outcome {
	e.t.Helper()
	out, err := e.w.Load(e.ctx, e.lk, writers.Request{Tenant: tenantID, SnapshotID: snap.m.SnapshotID, Reason: reason, RequestID: "writertest"})
	if err != nil {
		e.t.Fatalf("load %s/%s (%s): %v", tenantID, snap.m.SnapshotID, reason, err)
	}
	if out == nil {
		e.t.Fatalf("load %s/%s: nil outcome", tenantID, snap.m.SnapshotID)
	}
	return out
}

// wantOutcome checks the outcome and the live snapshot it reports after
// the load.
func (e *env) wantOutcome(out *writers.Outcome, outcome, live string) {
	e.t.Helper()
	if out.Outcome != outcome || out.Live != live {
		e.t.Fatalf("load %s/%s: outcome %q, live %q; want %q, live %q (message: %s)", out.Tenant, out.SnapshotID, out.Outcome, out.Live, outcome, live, out.Message)
	}
	if out.Outcome != writers.OutcomeLoaded && out.PreviousLive != out.Live {
		e.t.Errorf("load %s/%s: outcome %q changed nothing, yet says the live snapshot was %q and is %q", out.Tenant, out.SnapshotID, out.Outcome, out.PreviousLive, out.Live)
	}
	if out.Target != e.w.Target() || out.LoadID == "" || out.FinishedAt.Before(out.StartedAt) {
		e.t.Errorf("outcome: target %q (writer says %q), load id %q, started %v, finished %v", out.Target, e.w.Target(), out.LoadID, out.StartedAt, out.FinishedAt)
	}
}

// wantLive checks that snap is live for tenantID and that the target's
// tables hold exactly its source rows.
func (e *env) wantLive(tenantID string, snap *snapshot) {
	e.t.Helper()
	live, err := e.w.Live(e.ctx, tenantID)
	if err != nil {
		e.t.Fatalf("live snapshot of %s: %v", tenantID, err)
	}
	if live != snap.m.SnapshotID {
		e.t.Fatalf("live snapshot of %s is %q, want %q", tenantID, live, snap.m.SnapshotID)
	}
	for i := range snap.m.Tables {
		tbl := &snap.m.Tables[i]
		cols := make([]string, len(tbl.Columns))
		for j, c := range tbl.Columns {
			cols[j] = c.Name
		}
		vals, err := e.h.LiveRows(e.ctx, e.w, tenantID, tbl.Name, cols)
		if err != nil {
			e.t.Fatalf("live rows of %s.%s: %v", tenantID, tbl.Name, err)
		}
		got, want := e.canonicalRows(tbl, vals), snap.rows[tbl.Name]
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			e.t.Errorf("table %s.%s (snapshot %s):\ngot rows:\n%s\nwant (source):\n%s", tenantID, tbl.Name, snap.m.SnapshotID,
				strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
}

// wantLedger checks that the lake's ledger has a record of every load in
// outs, stating the same outcome and live snapshots before and after.
func (e *env) wantLedger(tenantID string, outs ...*writers.Outcome) {
	e.t.Helper()
	recs, err := e.lk.Ledger(e.ctx, tenantID, e.w.Target())
	if err != nil {
		e.t.Fatalf("ledger of %s: %v", tenantID, err)
	}
	seen := map[string]writers.Outcome{}
	for _, r := range recs {
		var o writers.Outcome
		if err := json.Unmarshal(r, &o); err != nil {
			e.t.Fatalf("ledger record %s: %v", r, err)
		}
		seen[o.LoadID] = o
	}
	for _, o := range outs {
		r := seen[o.LoadID]
		if r.Outcome != o.Outcome || r.PreviousLive != o.PreviousLive || r.Live != o.Live {
			e.t.Errorf("ledger of %s: load %s recorded as %q, live %q (was %q); want %q, live %q (was %q)", tenantID, o.LoadID,
				r.Outcome, r.Live, r.PreviousLive, o.Outcome, o.Live, o.PreviousLive)
		}
	}
}

func testTypesRoundTrip(t *testing.T, h Harness, lk *lake.Lake) {
	e := newEnvOn(t, h, lk)
	src := e.newSource("acme")
	snap := e.read(src)
	out := e.load("acme", snap, writers.ReasonScheduled)
	e.wantOutcome(out, writers.OutcomeLoaded, snap.m.SnapshotID)
	if len(out.Tables) != len(snap.m.Tables) {
		t.Fatalf("outcome has %d tables, snapshot %d", len(out.Tables), len(snap.m.Tables))
	}
	for i, tr := range out.Tables {
		mt := snap.m.Tables[i]
		if tr.Table != mt.Name || tr.SourceRows != mt.Rows || tr.LakeRows != mt.Rows || tr.TargetRows != mt.Rows {
			t.Errorf("table result %+v; want table %s with %d rows everywhere", tr, mt.Name, mt.Rows)
		}
		names := map[string]bool{}
		for _, c := range tr.Checks {
			names[c.Name] = true
			if !c.OK {
				t.Errorf("table %s check %s failed: expected %s, actual %s", tr.Table, c.Name, c.Expected, c.Actual)
			}
		}
		if !names["rows"] {
			t.Errorf("table %s: no rows check in %+v", tr.Table, tr.Checks)
		}
	}
	e.wantLive("acme", snap)
	e.wantLedger("acme", out)
}

func testEmptyTable(t *testing.T, h Harness, lk *lake.Lake) {
	e := newEnvOn(t, h, lk)
	src := e.newSource("acme", `CREATE TABLE only_empty (a bigint, b text, c date)`)
	snap := e.read(src)
	for _, name := range []string{"empty_table", "only_empty"} {
		if tbl := snap.m.Table(name); tbl == nil || tbl.Rows != 0 {
			t.Fatalf("snapshot has no empty table %s: %+v", name, tbl)
		}
	}
	e.wantOutcome(e.load("acme", snap, writers.ReasonScheduled), writers.OutcomeLoaded, snap.m.SnapshotID)
	// wantLive selects every column of the empty tables: it fails if one is missing.
	e.wantLive("acme", snap)
}

func testRedelivery(t *testing.T, h Harness) {
	e := newEnv(t, h)
	src := e.newSource("acme")
	snap := e.read(src)
	first := e.load("acme", snap, writers.ReasonScheduled)
	e.wantOutcome(first, writers.OutcomeLoaded, snap.m.SnapshotID)
	for _, reason := range []string{writers.ReasonScheduled, writers.ReasonManual} {
		again := e.load("acme", snap, reason)
		e.wantOutcome(again, writers.OutcomeAlreadyLive, snap.m.SnapshotID)
		if again.LoadID == first.LoadID {
			t.Errorf("redelivered load reused load id %s", first.LoadID)
		}
		e.wantLedger("acme", first, again)
	}
	e.wantLive("acme", snap) // no new rows
}

func testValidationFailure(t *testing.T, h Harness) {
	e := newEnv(t, h)
	src := e.newSource("acme")
	good := e.read(src)
	e.wantOutcome(e.load("acme", good, writers.ReasonScheduled), writers.OutcomeLoaded, good.m.SnapshotID)

	bad := e.tamper(good)
	out, err := e.w.Load(e.ctx, e.lk, writers.Request{Tenant: "acme", SnapshotID: bad.m.SnapshotID, Reason: writers.ReasonScheduled})
	if err != nil {
		t.Fatalf("a validation failure must not be an error: %v", err)
	}
	e.wantOutcome(out, writers.OutcomeQuarantined, good.m.SnapshotID)
	failed := false
	for _, tr := range out.Tables {
		for _, c := range tr.Checks {
			if tr.Table == "corpus" && c.Name == "rows" && !c.OK {
				failed = true
			}
		}
	}
	if !failed {
		t.Errorf("quarantined without a failed rows check on corpus: %+v", out.Tables)
	}
	e.wantLive("acme", good) // untouched
	e.wantLedger("acme", out)
}

// testTamperedPart: a committed part replaced behind the lake's back, by
// another snapshot's part of the same size or by itself with one byte of
// its Parquet footer flipped, is quarantined naming the part, whatever the
// other checks would say; the live tables stay as they were.
func testTamperedPart(t *testing.T, h Harness) {
	e := newEnv(t, h)
	src := e.newSource("acme")
	good := e.read(src)
	e.wantOutcome(e.load("acme", good, writers.ReasonScheduled), writers.OutcomeLoaded, good.m.SnapshotID)
	// Two snapshots that differ in one value and whose corpus parts have
	// the same size: the sizes of compressed parts vary with the values
	// (and with a harness's omissions), so values are tried until two
	// probes collide. Matching one fixed size (good's) was flaky: its
	// value at id 4 can be an extreme no small value encodes like.
	var sameSize *snapshot
	var otherPart []byte
	seen := map[int64][]byte{}
	for v := 1; v <= 1000 && sameSize == nil; v++ {
		e.exec(src, fmt.Sprintf(`UPDATE corpus SET i8 = %d WHERE id = 4`, v))
		probe := e.read(src)
		f := probe.m.Table("corpus").Files[0]
		if earlier, ok := seen[f.Bytes]; ok {
			sameSize, otherPart = probe, earlier
		} else {
			seen[f.Bytes] = e.partBytes(f)
		}
	}
	if sameSize == nil {
		t.Fatalf("premise: no two values of corpus.i8 in 1..1000 give corpus parts of the same size")
	}
	for _, c := range []struct {
		name   string
		victim *snapshot // or nil, read after mutate
		mutate string
		bytes  func(own []byte) []byte
	}{
		{"another snapshot's part of the same size", sameSize, "", func(own []byte) []byte {
			if len(own) != len(otherPart) || string(own) == string(otherPart) {
				t.Fatalf("premise: parts of %d and %d bytes, equal %v; want the same size, other bytes", len(own), len(otherPart), string(own) == string(otherPart))
			}
			return otherPart
		}},
		{"a flipped byte in the footer", nil, `UPDATE corpus SET i8 = 100 WHERE id = 4`, func(own []byte) []byte {
			c := append([]byte{}, own...)
			c[len(c)-12] ^= 0x01 // in the footer, before its length and "PAR1"
			return c
		}},
	} {
		victim := c.victim
		if victim == nil {
			e.exec(src, c.mutate)
			victim = e.read(src)
		}
		f := victim.m.Table("corpus").Files[0]
		if err := e.hook.b.WriteAll(e.ctx, f.Path, c.bytes(e.partBytes(f)), nil); err != nil {
			t.Fatal(err)
		}
		out, err := e.w.Load(e.ctx, e.lk, writers.Request{Tenant: "acme", SnapshotID: victim.m.SnapshotID, Reason: writers.ReasonScheduled})
		if err != nil {
			t.Fatalf("%s: a corrupt part must be quarantined, not an error: %v", c.name, err)
		}
		e.wantOutcome(out, writers.OutcomeQuarantined, good.m.SnapshotID)
		if !strings.Contains(out.Message, f.Path) || !strings.Contains(out.Message, "corrupt") {
			t.Errorf("%s: message %q does not say that part %s is corrupt", c.name, out.Message, f.Path)
		}
		e.wantLive("acme", good) // untouched
		e.wantLedger("acme", out)
	}
}

// partBytes returns the stored bytes of part f.
func (e *env) partBytes(f lake.File) []byte {
	e.t.Helper()
	data, err := e.hook.b.ReadAll(e.ctx, f.Path)
	if err != nil {
		e.t.Fatal(err)
	}
	return data
}

// tamper commits a copy of snap under a new snapshot id whose manifest says
// the first table has one row more than its parts hold.
func (e *env) tamper(snap *snapshot) *snapshot {
	e.t.Helper()
	m, err := CommitCopy(e.ctx, e.lk, snap.m, func(m *lake.Manifest) {
		m.Tables[0].Rows++
		m.Tables[0].Files[0].Rows++
	})
	if err != nil {
		e.t.Fatalf("tamper: %v", err)
	}
	time.Sleep(2 * time.Millisecond)
	return &snapshot{m: m, rows: snap.rows}
}

// CommitCopy commits a copy of snapshot m (its parts copied byte for byte)
// under a new snapshot id, the current time, after edit has changed the copy's
// manifest: a way to make a snapshot whose manifest does not match its data.
// Files' paths are set to the copied parts after edit runs.
func CommitCopy(ctx context.Context, lk *lake.Lake, m *lake.Manifest, edit func(*lake.Manifest)) (*lake.Manifest, error) {
	data, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	var c lake.Manifest
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, err
	}
	c.SnapshotID = lake.SnapshotID(time.Now())
	s, err := lk.NewSnapshot(ctx, c.Tenant, c.SnapshotID)
	if err != nil {
		return nil, err
	}
	for ti := range c.Tables {
		tbl := &c.Tables[ti]
		for fi, f := range tbl.Files {
			if tbl.Files[fi], err = copyPart(ctx, lk, s, tbl.Name, fi, f); err != nil {
				return nil, err
			}
		}
	}
	edit(&c)
	if err := s.Commit(ctx, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

func copyPart(ctx context.Context, lk *lake.Lake, s *lake.Snapshot, table string, n int, f lake.File) (lake.File, error) {
	r, err := lk.OpenPart(ctx, f)
	if err != nil {
		return lake.File{}, err
	}
	body, err := io.ReadAll(r)
	if err != nil {
		return lake.File{}, fmt.Errorf("read %s: %w", f.Path, err)
	}
	p, err := s.CreatePart(ctx, table, n)
	if err != nil {
		return lake.File{}, err
	}
	if _, err := p.Write(body); err != nil {
		return lake.File{}, errors.Join(err, p.Close())
	}
	p.SetRows(f.Rows)
	if err := p.Close(); err != nil {
		return lake.File{}, err
	}
	return p.File(), nil
}

func testStale(t *testing.T, h Harness) {
	e := newEnv(t, h)
	src := e.newSource("acme")
	old := e.read(src)
	e.exec(src, mutateSQL...)
	cur := e.read(src)
	e.wantOutcome(e.load("acme", cur, writers.ReasonScheduled), writers.OutcomeLoaded, cur.m.SnapshotID)
	for _, reason := range []string{writers.ReasonScheduled, writers.ReasonManual} {
		out := e.load("acme", old, reason)
		e.wantOutcome(out, writers.OutcomeStale, cur.m.SnapshotID)
		e.wantLedger("acme", out)
	}
	e.wantLive("acme", cur)
}

func testReplay(t *testing.T, h Harness) {
	e := newEnv(t, h)
	src := e.newSource("acme")
	old := e.read(src)
	e.exec(src, mutateSQL...)
	cur := e.read(src)
	if strings.Join(old.rows["corpus"], "\n") == strings.Join(cur.rows["corpus"], "\n") {
		t.Fatal("the mutation changed nothing")
	}
	e.wantOutcome(e.load("acme", old, writers.ReasonScheduled), writers.OutcomeLoaded, old.m.SnapshotID)
	e.wantOutcome(e.load("acme", cur, writers.ReasonScheduled), writers.OutcomeLoaded, cur.m.SnapshotID)
	e.wantLive("acme", cur)
	out := e.load("acme", old, writers.ReasonReplay)
	e.wantOutcome(out, writers.OutcomeLoaded, old.m.SnapshotID)
	if out.PreviousLive != cur.m.SnapshotID || out.Reason != writers.ReasonReplay {
		t.Errorf("replay outcome: previous live %q, reason %q; want %q, replay", out.PreviousLive, out.Reason, cur.m.SnapshotID)
	}
	e.wantLive("acme", old) // restored exactly
	e.wantLedger("acme", out)
}

func testConcurrentTenants(t *testing.T, h Harness) {
	e := newEnv(t, h)
	srcs := map[string]*source{
		"acme":   e.newSource("acme"),
		"globex": e.newSource("globex", `CREATE TABLE globex_only (k text PRIMARY KEY)`, `INSERT INTO globex_only VALUES ('g')`),
	}
	e.exec(srcs["globex"], mutateSQL...)
	snaps := map[string]*snapshot{}
	for id, s := range srcs {
		snaps[id] = e.read(s)
	}
	var wg sync.WaitGroup
	outs := map[string]*writers.Outcome{}
	errs := map[string]error{}
	var mu sync.Mutex
	for id, snap := range snaps {
		wg.Go(func() {
			out, err := e.w.Load(e.ctx, e.lk, writers.Request{Tenant: id, SnapshotID: snap.m.SnapshotID, Reason: writers.ReasonScheduled})
			mu.Lock()
			defer mu.Unlock()
			outs[id], errs[id] = out, err
		})
	}
	wg.Wait()
	for id, snap := range snaps {
		if errs[id] != nil {
			t.Fatalf("load %s: %v", id, errs[id])
		}
		e.wantOutcome(outs[id], writers.OutcomeLoaded, snap.m.SnapshotID)
	}
	for id, snap := range snaps {
		e.wantLive(id, snap)
	}
	if _, err := h.LiveRows(e.ctx, e.w, "acme", "globex_only", []string{"k"}); err == nil {
		t.Error("acme has globex's table globex_only")
	}
}

// newEnvOldLive reads two snapshots of acme, old and cur (mutated), and
// makes old live; prefix is the lake prefix of cur's last table's parts.
func newEnvOldLive(t *testing.T, h Harness) (e *env, old, cur *snapshot, prefix string) {
	e = newEnv(t, h)
	src := e.newSource("acme")
	old = e.read(src)
	e.exec(src, mutateSQL...)
	cur = e.read(src)
	e.wantOutcome(e.load("acme", old, writers.ReasonScheduled), writers.OutcomeLoaded, old.m.SnapshotID)
	last := cur.m.Tables[len(cur.m.Tables)-1].Name
	return e, old, cur, lake.SnapshotPrefix("acme", cur.m.SnapshotID) + "table=" + last + "/"
}

func testInterrupted(t *testing.T, h Harness) {
	e, old, cur, prefix := newEnvOldLive(t, h)
	// Cancel when the writer starts reading the last table of the new
	// snapshot: the tables before it are already on their way in.
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	var reached atomic.Bool
	e.hook.setHook(func(key string) {
		if strings.HasPrefix(key, prefix) {
			reached.Store(true)
			cancel()
		}
	})
	out, err := e.w.Load(ctx, e.lk, writers.Request{Tenant: "acme", SnapshotID: cur.m.SnapshotID, Reason: writers.ReasonScheduled})
	e.hook.setHook(nil)
	if !reached.Load() {
		t.Fatalf("the writer never read %s*; outcome %+v, error %v", prefix, out, err)
	}
	if err == nil {
		t.Fatalf("interrupted load returned no error; outcome %+v", out)
	}
	if !errors.Is(err, context.Canceled) {
		t.Logf("interrupted load error (not context.Canceled): %v", err)
	}
	if out != nil {
		if out.Outcome != writers.OutcomeFailed || out.PreviousLive != old.m.SnapshotID || out.Live != old.m.SnapshotID {
			t.Errorf("interrupted load outcome %q, live %q (was %q); want %q, live %s", out.Outcome, out.Live, out.PreviousLive, writers.OutcomeFailed, old.m.SnapshotID)
		}
		e.wantLedger("acme", out)
	}
	e.wantLive("acme", old)

	retry := e.load("acme", cur, writers.ReasonScheduled)
	e.wantOutcome(retry, writers.OutcomeLoaded, cur.m.SnapshotID)
	e.wantLive("acme", cur)
}

// testDeletedDuringLoad: a snapshot whose manifest is deleted (as gc
// deletes a snapshot, manifest first) while its parts are being loaded is
// not made live: the load fails saying so, the old snapshot stays live.
func testDeletedDuringLoad(t *testing.T, h Harness) {
	e, old, cur, prefix := newEnvOldLive(t, h)
	var deleted atomic.Bool
	e.hook.setHook(func(key string) {
		if strings.HasPrefix(key, prefix) && !deleted.Swap(true) {
			if err := e.hook.b.Delete(e.ctx, lake.ManifestKey("acme", cur.m.SnapshotID)); err != nil {
				t.Errorf("delete the manifest: %v", err)
			}
		}
	})
	out, err := e.w.Load(e.ctx, e.lk, writers.Request{Tenant: "acme", SnapshotID: cur.m.SnapshotID, Reason: writers.ReasonScheduled})
	e.hook.setHook(nil)
	if !deleted.Load() {
		t.Fatalf("the writer never read %s*; outcome %+v, error %v", prefix, out, err)
	}
	if err == nil || !strings.Contains(err.Error(), "deleted from the lake") {
		t.Errorf("load of a snapshot deleted meanwhile: error %v, want one saying it was deleted from the lake", err)
	}
	if out != nil && (out.Outcome == writers.OutcomeLoaded || out.Live != old.m.SnapshotID) {
		t.Errorf("outcome %q, live %q; want live %s", out.Outcome, out.Live, old.m.SnapshotID)
	}
	e.wantLive("acme", old)
}

// testFailuresStateLive: a load that fails before anything is staged (no
// manifest; a manifest the lake rejects) states the live snapshot, before
// and after, as it is, in its outcome and in the lake's ledger.
func testFailuresStateLive(t *testing.T, h Harness) {
	e := newEnv(t, h)
	src := e.newSource("acme")
	good := e.read(src)
	e.wantOutcome(e.load("acme", good, writers.ReasonScheduled), writers.OutcomeLoaded, good.m.SnapshotID)

	missing := lake.SnapshotID(time.Now().Add(time.Second))
	corrupt := lake.SnapshotID(time.Now().Add(2 * time.Second))
	if err := e.hook.b.WriteAll(e.ctx, lake.ManifestKey("acme", corrupt), []byte(`{"format_version": 1, "tenant": "acme", "tables": [`), nil); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{missing, corrupt} {
		out, err := e.w.Load(e.ctx, e.lk, writers.Request{Tenant: "acme", SnapshotID: id, Reason: writers.ReasonScheduled})
		if err == nil {
			t.Fatalf("load of snapshot %s (no valid manifest): no error; outcome %+v", id, out)
		}
		if out == nil {
			t.Fatalf("load of snapshot %s: nil outcome with error %v", id, err)
		}
		if out.Outcome != writers.OutcomeFailed || out.PreviousLive != good.m.SnapshotID || out.Live != good.m.SnapshotID {
			t.Errorf("load of snapshot %s: outcome %q, live %q (was %q); want %q, live %s (was %s); error %v",
				id, out.Outcome, out.Live, out.PreviousLive, writers.OutcomeFailed, good.m.SnapshotID, good.m.SnapshotID, err)
		}
		e.wantLedger("acme", out)
	}
	e.wantLive("acme", good)
}

// testAllTenants: after loads of two tenants, each combined all-tenants
// table holds exactly each tenant's live rows with its tenant id; after a
// replay of one tenant, its slice is the replayed snapshot's and the other
// tenant's slice is unchanged.
func testAllTenants(t *testing.T, h Harness) {
	ah, ok := h.(AllTenantsHarness)
	if !ok {
		t.Fatalf("harness %T does not implement writertest.AllTenantsHarness", h)
	}
	e := newEnv(t, h)
	acme, globex := e.newSource("acme"), e.newSource("globex", mutateSQL...)
	old := e.read(acme)
	e.exec(acme, `UPDATE corpus SET t = 'acme now' WHERE id = 2`, `DELETE FROM corpus WHERE id = 3`)
	cur := e.read(acme)
	other := e.read(globex)
	for _, l := range []struct {
		tenant string
		snap   *snapshot
	}{{"acme", old}, {"globex", other}, {"acme", cur}} {
		out := e.load(l.tenant, l.snap, writers.ReasonScheduled)
		e.wantOutcome(out, writers.OutcomeLoaded, l.snap.m.SnapshotID)
		if len(out.AllTenantsStale) > 0 {
			t.Fatalf("load %s/%s: all-tenants stale: %v", l.tenant, l.snap.m.SnapshotID, out.AllTenantsStale)
		}
	}
	e.wantAllTenants(ah, map[string]*snapshot{"acme": cur, "globex": other})
	out := e.load("acme", old, writers.ReasonReplay)
	e.wantOutcome(out, writers.OutcomeLoaded, old.m.SnapshotID)
	if len(out.AllTenantsStale) > 0 {
		t.Fatalf("replay: all-tenants stale: %v", out.AllTenantsStale)
	}
	e.wantAllTenants(ah, map[string]*snapshot{"acme": old, "globex": other})
}

// wantAllTenants checks that the combined table of every table of the
// snapshots holds exactly each tenant's rows of its snapshot, and no other
// tenant's.
func (e *env) wantAllTenants(ah AllTenantsHarness, snaps map[string]*snapshot) {
	e.t.Helper()
	tables := map[string]*lake.Table{}
	for _, s := range snaps {
		for i := range s.m.Tables {
			tables[s.m.Tables[i].Name] = &s.m.Tables[i]
		}
	}
	for name, tbl := range tables {
		cols := make([]string, len(tbl.Columns))
		for j, c := range tbl.Columns {
			cols[j] = c.Name
		}
		vals, err := ah.AllTenantsRows(e.ctx, e.w, name, cols)
		if err != nil {
			e.t.Fatalf("all-tenants rows of %s: %v", name, err)
		}
		byTenant := map[string][][]any{}
		for _, row := range vals {
			id, ok := row[0].(string)
			if !ok {
				e.t.Fatalf("all-tenants table %s: tenant id %v is a %T, want a string", name, row[0], row[0])
			}
			byTenant[id] = append(byTenant[id], row[1:])
		}
		for id := range byTenant {
			if snaps[id] == nil {
				e.t.Errorf("all-tenants table %s holds rows of tenant %q", name, id)
			}
		}
		for id, s := range snaps {
			got, want := e.canonicalRows(tbl, byTenant[id]), s.rows[name]
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				e.t.Errorf("all-tenants table %s, tenant %s (snapshot %s):\ngot rows:\n%s\nwant (source):\n%s", name, id, s.m.SnapshotID,
					strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		}
	}
}
