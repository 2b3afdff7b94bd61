package bigquery

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"cloud.google.com/go/bigquery"
	"github.com/jackc/pgx/v5"
	"google.golang.org/api/iterator"

	"github.com/tenantlake/tenantlake/internal/pgtest"
	"github.com/tenantlake/tenantlake/lake"
	rpg "github.com/tenantlake/tenantlake/readers/postgres"
	"github.com/tenantlake/tenantlake/tenant"
	"github.com/tenantlake/tenantlake/writers"
)

// corpusSQL creates a source table with a column of every kind the reader
// produces, NULLs, extremes and a reserved word for a column name, and an
// empty table.
const corpusSQL = `
CREATE TABLE corpus (
	id bigint PRIMARY KEY,
	i2 smallint, i4 integer, f4 real, f8 double precision,
	n numeric(12,2), nbig numeric(50,20), m money,
	b boolean, t text, "at" text, raw bytea, j jsonb,
	d date, ts timestamp, tstz timestamptz, tm time,
	arr integer[], u uuid
);
INSERT INTO corpus VALUES
 (1, -32768, 2147483647, 1.5, 'NaN', 123456789.12, 12345678901234567890.12345678901234567890, 12.34,
  true, 'héllo', 'at noon', '\x00ff', '{"a": [1, 2, {"b": null}]}',
  '2026-11-21', '2026-11-21 02:03:04.123456', '2026-11-21 02:03:04.123456+00', '23:59:59.999999',
  '{1,2,3}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'),
 (2, 32767, -2147483648, -0.25, 1e300, -0.01, -1.00000000000000000001, -5.00,
  false, 'Zebra', '', '', '[]',
  '0001-01-01', '1970-01-01 00:00:00', '1999-12-31 23:59:59.999999+00', '00:00:00',
  '{}', NULL),
 (3, NULL, NULL, NULL, 'Infinity', NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL,
  NULL, NULL);
CREATE TABLE empty_table (id integer PRIMARY KEY, note text);
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
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := conn.Close(ctx); err != nil {
			t.Error(err)
		}
	}()
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
	out, err := w.Load(context.Background(), lk, writers.Request{Tenant: tenantID, SnapshotID: snapshotID, Reason: reason, RequestID: "test"})
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
	ctx := context.Background()
	q := w.client.Query("SELECT * FROM " + tablePath(w.client.Dataset(w.datasetName(tenantID)).Table(table)) + " ORDER BY id")
	it, err := q.Read(ctx)
	if err != nil {
		t.Fatalf("query %s.%s: %v", tenantID, table, err)
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
	got := liveRows(t, w, "acme", "corpus")
	if len(got) != 3 {
		t.Fatalf("live corpus has %d rows, want 3: %v", len(got), got)
	}
	t.Logf("corpus rows: %v", got)
	if live, err := w.Live(context.Background(), "acme"); err != nil || live != m.SnapshotID {
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
	if got := liveRows(t, w, "acme", "corpus"); len(got) != 3 {
		t.Fatalf("live corpus has %d rows, want 3: %v", len(got), got)
	}
	if got := liveRows(t, w, "acme", "empty_table"); len(got) != 0 {
		t.Fatalf("empty_table has rows: %v", got)
	}
}
