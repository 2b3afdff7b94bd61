package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/jackc/pgx/v5"

	"github.com/tenantlake/tenantlake/internal/pgtest"
	"github.com/tenantlake/tenantlake/lake"
)

// noSnapshots fails the test if tenant id has any committed snapshot.
func noSnapshots(t *testing.T, lk *lake.Lake, id string) {
	t.Helper()
	snaps, err := lk.Snapshots(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if len(snaps) != 0 {
		t.Errorf("tenant %s has committed snapshots %v after a failed read", id, snaps)
	}
}

// TestEmptyTable: an empty table has one zero-row part carrying the full
// schema; a table without columns is skipped with a reason; a partitioned
// table is one table; include/exclude patterns select tables.
func TestEmptyTable(t *testing.T) {
	tn, _ := newTenant(t, "acme",
		`CREATE TABLE empty (id bigint PRIMARY KEY, name text NOT NULL, amount numeric(10,2), at timestamptz, tags text[], doc jsonb, d date, ok boolean)`,
		`CREATE TABLE nocols ()`,
		`CREATE TABLE events (id int, day date NOT NULL, note text) PARTITION BY RANGE (day)`,
		`CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')`,
		`CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')`,
		`INSERT INTO events SELECT i, DATE '2024-06-01' + i, 'n' || i FROM generate_series(1, 300) i`,
		`CREATE SCHEMA audit`,
		`CREATE TABLE audit.log (id int)`,
		`CREATE TABLE secret_stuff (id int)`,
	)
	tn.Exclude = []string{"public.secret_*", "audit.*"}
	ctx := context.Background()
	lk := openLake(t)
	m, err := New(Options{}).Read(ctx, lk, tn)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tb := range m.Tables {
		names = append(names, tb.Name)
	}
	if strings.Join(names, ",") != "empty,events" {
		t.Errorf("tables %v, want [empty events]", names)
	}
	if len(m.Skipped) != 1 || m.Skipped[0].Source != "public.nocols" || m.Skipped[0].Reason == "" {
		t.Errorf("skipped %+v, want public.nocols with a reason", m.Skipped)
	}

	tb := m.Table("empty")
	if tb.Rows != 0 || len(tb.Files) != 1 || tb.Files[0].Rows != 0 {
		t.Fatalf("empty table: %d rows in %+v, want one zero-row part", tb.Rows, tb.Files)
	}
	rows, schema := readTable(t, lk, tb)
	if len(rows) != 0 || schema.NumFields() != 8 {
		t.Errorf("empty part: %d rows, schema %v", len(rows), schema)
	}
	for i, c := range tb.Columns {
		if schema.Field(i).Name != c.Name || schema.Field(i).Nullable != c.Nullable {
			t.Errorf("empty part field %d: %v, manifest %s nullable %v", i, schema.Field(i), c.Name, c.Nullable)
		}
		if c.Profile.Nulls != 0 || c.Profile.Min != nil || c.Profile.Max != nil {
			t.Errorf("empty column %s profile %+v", c.Name, c.Profile)
		}
	}
	if s := tb.Columns[2].Profile.Sum; s == nil || *s != "0" {
		t.Errorf("empty numeric sum %v, want 0", s)
	}

	ev := m.Table("events")
	if ev.Rows != 300 || ev.Source != "public.events" {
		t.Errorf("partitioned table: %+v", ev)
	}
	got, _ := readTable(t, lk, ev)
	if len(got) != 300 {
		t.Errorf("partitioned table read back %d rows", len(got))
	}
	if p := ev.Columns[1].Profile; deref(p.Min) != "2024-06-02" || deref(p.Max) != "2025-03-28" {
		t.Errorf("events.day profile %+v", p)
	}
}

// TestNames: destination names are deterministic, valid and unique, and
// values land in the right columns.
func TestNames(t *testing.T) {
	tn, _ := newTenant(t, "acme",
		`CREATE TABLE "Order Items" ("Id" int PRIMARY KEY, "ID " int, "id" int, "2nd" text, "a.b" text, "ünï" text, "_TABLE_x" int,
			"a""; DROP TABLE x; --" text, "9`+strings.Repeat("L", 62)+`" int, "9`+strings.Repeat("L", 61)+`M" int, "id_2" int)`,
		`INSERT INTO "Order Items" VALUES (1, 2, 3, 'second', 'dotted', 'accent', 7, 'inj', 8, 9, 10)`,
		`CREATE TABLE order_items (x int)`,
		`CREATE SCHEMA "Sales"`,
		`CREATE TABLE "Sales"."Q1.report" (v int)`,
		`CREATE TABLE "9lives" (v int)`,
	)
	ctx := context.Background()
	lk := openLake(t)
	m, err := New(Options{}).Read(ctx, lk, tn)
	if err != nil {
		t.Fatal(err)
	}
	wantTables := map[string]string{
		`public."9lives"`:      "_9lives",
		`public."Order Items"`: "order_items",
		`public.order_items`:   "order_items_2",
		`"Sales"."Q1.report"`:  "sales_q1_report",
	}
	if len(m.Tables) != len(wantTables) {
		t.Errorf("%d tables, want %d", len(m.Tables), len(wantTables))
	}
	for _, tb := range m.Tables {
		if wantTables[tb.Source] != tb.Name {
			t.Errorf("table %s named %q, want %q", tb.Source, tb.Name, wantTables[tb.Source])
		}
	}
	tb := m.Table("order_items")
	long := "_9" + strings.Repeat("l", 61)
	wantCols := []string{"id", "id_", "id_3", "_2nd", "a_b", "_n_", "x_table_x", "a___drop_table_x____", long, long[:61] + "_2", "id_2"}
	for i, c := range tb.Columns {
		if i >= len(wantCols) || c.Name != wantCols[i] {
			t.Errorf("column %d %q named %q, want %q", i, c.Source, c.Name, wantCols[min(i, len(wantCols)-1)])
		}
	}
	rows, _ := readTable(t, lk, tb)
	if len(rows) != 1 {
		t.Fatalf("%d rows", len(rows))
	}
	want := map[string]string{"id": "1", "id_": "2", "id_3": "3", "_2nd": "second", "a_b": "dotted", "_n_": "accent", "x_table_x": "7", "a___drop_table_x____": "inj", long: "8", long[:61] + "_2": "9", "id_2": "10"}
	for k, v := range want {
		if rows[0][k] != v {
			t.Errorf("column %s = %q, want %q", k, rows[0][k], v)
		}
	}
	if len(tb.PrimaryKey) != 1 || tb.PrimaryKey[0] != "id" {
		t.Errorf("primary key %v", tb.PrimaryKey)
	}
}

// TestBadValues: a value that cannot be carried fails the read loudly,
// naming tenant, table, column and row key (or ctid), and commits nothing;
// the null and string policies let it through and are recorded.
func TestBadValues(t *testing.T) {
	tn, _ := newTenant(t, "acme",
		`CREATE TABLE ts (id int PRIMARY KEY, v timestamptz)`,
		`INSERT INTO ts VALUES (1, now()), (7, '-infinity')`,
		`CREATE TABLE bc (k text, n int, v date, PRIMARY KEY (k, n))`,
		`INSERT INTO bc VALUES ('a', 1, '2000-01-01'), ('b', 2, '0044-03-15 BC')`,
		`CREATE TABLE big (id int PRIMARY KEY, v timestamp)`,
		`INSERT INTO big VALUES (3, '10000-01-01')`,
		`CREATE TABLE nan (id bigint PRIMARY KEY, v numeric(5,2))`,
		`INSERT INTO nan VALUES (5, 'NaN')`,
		`CREATE TABLE midnight (v time)`,
		`INSERT INTO midnight VALUES ('12:00'), ('24:00:00')`,
	)
	ctx := context.Background()
	cases := []struct {
		table, column, key string
	}{
		{"ts", "v", "(id)=(7)"},
		{"bc", "v", `(k, n)=("b", 2)`},
		{"big", "v", "(id)=(3)"},
		{"nan", "v", "(id)=(5)"},
		{"midnight", "v", "ctid=(0,2)"},
	}
	for _, c := range cases {
		t.Run(c.table, func(t *testing.T) {
			one := tn
			one.Include = []string{"public." + c.table}
			lk := openLake(t)
			_, err := New(Options{}).Read(ctx, lk, one)
			if err == nil {
				t.Fatal("read succeeded")
			}
			for _, s := range []string{"tenant acme", "table public." + c.table, "column " + c.column, c.key} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
			noSnapshots(t, lk, "acme")

			for _, p := range []Policy{PolicyNull, PolicyString} {
				lk := openLake(t)
				m, err := New(Options{Policies: map[string]Policy{"public." + c.table + ".v": p}}).Read(ctx, lk, one)
				if err != nil {
					t.Fatalf("policy %s: %v", p, err)
				}
				var col lake.Column
				for _, cc := range m.Tables[0].Columns {
					if cc.Source == "v" {
						col = cc
					}
				}
				if col.Policy != string(p) || (p == PolicyNull && col.Profile.Nulls != 1) || (p == PolicyString && col.BigQueryType != "STRING") {
					t.Errorf("policy %s: column %+v", p, col)
				}
				readTable(t, lk, &m.Tables[0])
			}
		})
	}
}

// TestConsistency moves value between two tables, one transfer each time
// the reader reports progress, i.e. while both tables are being read by
// several workers over several ranges. The snapshot's total never changes,
// though the tables' totals in the database do.
func TestConsistency(t *testing.T) {
	const n, start = 50000, 1000
	tn, dsn := newTenant(t, "acme",
		`CREATE TABLE a (id int PRIMARY KEY, bal bigint NOT NULL, pad text)`,
		`CREATE TABLE b (id int PRIMARY KEY, bal bigint NOT NULL, pad text)`,
		fmt.Sprintf(`INSERT INTO a SELECT i, %d, repeat('x', 50) FROM generate_series(1, %d) i`, start, n),
		fmt.Sprintf(`INSERT INTO b SELECT i, %d, repeat('y', 50) FROM generate_series(1, %d) i`, start, n),
	)
	ctx := context.Background()
	mover := pgtest.Connect(t, dsn)
	var mu sync.Mutex
	var moved atomic.Int64
	var moveErr error
	transfer := func() {
		mu.Lock()
		defer mu.Unlock()
		i := moved.Add(1)
		_, err := mover.Exec(ctx, `BEGIN;
UPDATE a SET bal = bal - 100 WHERE id = `+strconv.FormatInt(i%n+1, 10)+`;
UPDATE b SET bal = bal + 100 WHERE id = `+strconv.FormatInt((i*7)%n+1, 10)+`;
INSERT INTO a VALUES (`+strconv.FormatInt(n+i, 10)+`, 0, 'new');
COMMIT`)
		if err != nil && moveErr == nil {
			moveErr = err
		}
	}
	lk := openLake(t)
	r := New(Options{Parallel: 3, SplitBytes: 256 << 10, Progress: func(rows, bytes int64) { transfer() }})
	m, err := r.Read(ctx, lk, tn)
	if err != nil {
		t.Fatal(err)
	}
	if moveErr != nil {
		t.Fatal(moveErr)
	}
	if moved.Load() < 5 {
		t.Fatalf("only %d transfers during the read", moved.Load())
	}
	sum := func(tb string) string { return deref(m.Table(tb).Columns[1].Profile.Sum) }
	want := strconv.Itoa(n * start)
	if sum("a") != want || sum("b") != want || m.Table("a").Rows != n || m.Table("b").Rows != n {
		t.Errorf("snapshot sums a=%s b=%s rows %d %d, want %s each and %d rows", sum("a"), sum("b"), m.Table("a").Rows, m.Table("b").Rows, want, n)
	}
	if len(m.Table("a").Files) < 2 {
		t.Errorf("table a was read as %d part(s), want several ranges", len(m.Table("a").Files))
	}
	var nowA int64
	if err := mover.QueryRow(ctx, `SELECT sum(bal) FROM a`).Scan(&nowA); err != nil {
		t.Fatal(err)
	}
	if strconv.FormatInt(nowA, 10) == want {
		t.Error("the transfers did not change the database; the test proves nothing")
	}
	// The parts agree with the manifest.
	rows, _ := readTable(t, lk, m.Table("b"))
	var total int64
	for _, r := range rows {
		v, _ := strconv.ParseInt(r["bal"], 10, 64)
		total += v
	}
	if strconv.FormatInt(total, 10) != want || len(rows) != n {
		t.Errorf("parts of b hold %d rows summing to %d", len(rows), total)
	}
}

// TestKillDuringRead: terminating the reader's backends, or cancelling its
// context, mid-read fails the read naming tenant and table and commits no
// manifest.
func TestKillDuringRead(t *testing.T) {
	tn, dsn := newTenant(t, "acme",
		`CREATE TABLE big (id int PRIMARY KEY, pad text)`,
		`INSERT INTO big SELECT i, repeat('z', 100) FROM generate_series(1, 200000) i`,
	)
	admin := pgtest.Connect(t, dsn)
	ctx := context.Background()

	t.Run("terminate", func(t *testing.T) {
		lk := openLake(t)
		var once sync.Once
		var killed int
		kill := func(rows, bytes int64) {
			once.Do(func() {
				err := admin.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name = 'tenantlake'`).Scan(&killed)
				if err != nil {
					t.Error(err)
				}
			})
		}
		_, err := New(Options{Progress: kill}).Read(ctx, lk, tn)
		if err == nil {
			t.Fatal("read succeeded after its backends were terminated")
		}
		if killed == 0 {
			t.Fatal("no backend terminated")
		}
		if !strings.Contains(err.Error(), "tenant acme") || !strings.Contains(err.Error(), "table public.big") {
			t.Errorf("error %q does not name tenant and table", err)
		}
		noSnapshots(t, lk, "acme")
	})
	t.Run("cancel", func(t *testing.T) {
		lk := openLake(t)
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		_, err := New(Options{Progress: func(int64, int64) { cancel() }}).Read(cctx, lk, tn)
		if err == nil {
			t.Fatal("read succeeded after cancel")
		}
		if !errors.Is(err, context.Canceled) && !strings.Contains(err.Error(), "table public.big") {
			t.Errorf("error %q: neither context.Canceled nor naming the table", err)
		}
		if !strings.Contains(err.Error(), "tenant acme") {
			t.Errorf("error %q does not name the tenant", err)
		}
		noSnapshots(t, lk, "acme")
	})
}

// TestBounds: small bounds split a table into ctid ranges, parts and row
// groups, and the result is still every row exactly once with the same
// profile figures as PostgreSQL's.
func TestBounds(t *testing.T) {
	tn, dsn := newTenant(t, "acme",
		`CREATE TABLE t (id int PRIMARY KEY, v numeric(20,4), s text, f float8)`,
		`INSERT INTO t SELECT i, i * 1.2345, md5(i::text), i / 7.0 FROM generate_series(1, 20000) i`,
		`DELETE FROM t WHERE id % 10 = 0`,
	)
	ctx := context.Background()
	lk := openLake(t)
	m, err := New(Options{Parallel: 3, SplitBytes: 200 << 10, PartBytes: 256 << 10, RowGroupBytes: 16 << 10}).Read(ctx, lk, tn)
	if err != nil {
		t.Fatal(err)
	}
	tb := m.Table("t")
	if tb.Rows != 18000 || len(tb.Files) < 4 {
		t.Fatalf("%d rows in %d parts, want 18000 rows in several parts", tb.Rows, len(tb.Files))
	}
	rows, _ := readTable(t, lk, tb)
	if len(byKey(t, rows, "id")) != 18000 {
		t.Errorf("read back %d rows", len(rows))
	}
	checkProfiles(t, dsn, "t", tb)
	// Row groups are bounded too.
	groups := 0
	for _, f := range tb.Files {
		pr, err := lk.OpenPart(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(pr)
		if err != nil {
			t.Fatal(err)
		}
		rdr, err := file.NewParquetReader(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		groups += rdr.NumRowGroups()
		if err := rdr.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if groups < 2*len(tb.Files) {
		t.Errorf("%d parts hold %d row groups, want several per part", len(tb.Files), groups)
	}
}

// TestTimeZone: the same data read under hostile time zone and style
// settings (role, database, PGOPTIONS, PGTZ, TZ, time.Local) gives the same
// parts and profiles as under UTC defaults.
func TestTimeZone(t *testing.T) {
	tn, dsn := newTenant(t, "acme",
		`CREATE TABLE t (id int PRIMARY KEY, tz timestamptz, ts timestamp, d date, tm time, ttz timetz, iv interval, arr timestamptz[], f float8[])`,
		`INSERT INTO t VALUES (1, '2024-03-10 02:30:00+00', '2024-03-10 02:30:00', '2024-03-10', '02:30', '02:30+01', '1 year 2 mons 3 days 04:05:06', '{"2024-03-10 02:30:00+00"}', '{0.1,1e300}'),
		 (2, '1900-01-01 00:00:00.000001+00', '1900-01-01 00:00:00.000001', '1900-01-01', '00:00:00.000001', '00:00-12', '-1 day', '{}', '{}')`,
	)
	ctx := context.Background()
	read := func() (map[string]map[string]string, []lake.Column) {
		t.Helper()
		lk := openLake(t)
		m, err := New(Options{}).Read(ctx, lk, tn)
		if err != nil {
			t.Fatal(err)
		}
		rows, _ := readTable(t, lk, m.Table("t"))
		return byKey(t, rows, "id"), m.Table("t").Columns
	}
	wantRows, wantCols := read()
	if got := wantRows["1"]["tz"]; got != "2024-03-10 02:30:00.000000" {
		t.Errorf("timestamptz read as %s", got)
	}

	admin := pgtest.Connect(t, dsn)
	mustExec(t, admin, "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET TimeZone = %L', current_database(), 'Pacific/Chatham'); END $$")
	mustExec(t, admin, "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET DateStyle = %L', current_database(), 'SQL, DMY'); END $$")
	mustExec(t, admin, "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET IntervalStyle = %L', current_database(), 'sql_standard'); END $$")
	t.Setenv("PGTZ", "Asia/Kathmandu")
	t.Setenv("PGOPTIONS", "-c TimeZone=America/St_Johns -c extra_float_digits=-3")
	t.Setenv("TZ", "Australia/Eucla")
	saved := time.Local
	time.Local = time.FixedZone("eucla", 8*3600+45*60)
	t.Cleanup(func() { time.Local = saved })
	var tz string
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, "SHOW TimeZone").Scan(&tz); err != nil || tz == "UTC" {
		t.Fatalf("the hostile settings did not take: TimeZone %q %v", tz, err)
	}
	conn.Close(ctx)

	gotRows, gotCols := read()
	for id, w := range wantRows {
		for k, v := range w {
			if gotRows[id][k] != v {
				t.Errorf("row %s column %s: %q under hostile settings, %q under defaults", id, k, gotRows[id][k], v)
			}
		}
	}
	for i := range wantCols {
		w, _ := json.Marshal(wantCols[i])
		g, _ := json.Marshal(gotCols[i])
		if !bytes.Equal(w, g) {
			t.Errorf("column %s: %s under hostile settings, %s under defaults", wantCols[i].Name, g, w)
		}
	}
}

// TestViews: views and materialized views are read only with Options.Views;
// a bad value in a view is named by its row number.
func TestViews(t *testing.T) {
	tn, _ := newTenant(t, "acme",
		`CREATE TABLE t (id int PRIMARY KEY, v int)`,
		`INSERT INTO t SELECT i, i * 10 FROM generate_series(1, 100) i`,
		`CREATE VIEW big_v AS SELECT id, v FROM t WHERE v > 500`,
		`CREATE MATERIALIZED VIEW sums AS SELECT count(*) AS n, sum(v) AS total FROM t`,
		`CREATE VIEW bad_v AS SELECT id, CASE WHEN id = 3 THEN 'infinity'::date ELSE DATE '2024-01-01' END AS d FROM t WHERE id < 5 ORDER BY id`,
	)
	ctx := context.Background()
	m, err := New(Options{}).Read(ctx, openLake(t), tn)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Tables) != 1 {
		t.Errorf("without Views: %d tables, want 1", len(m.Tables))
	}
	only := tn
	only.Exclude = []string{"public.bad_v"}
	lk := openLake(t)
	m, err = New(Options{Views: true}).Read(ctx, lk, only)
	if err != nil {
		t.Fatal(err)
	}
	if v := m.Table("big_v"); v == nil || v.Rows != 50 || deref(v.Columns[1].Profile.Min) != "510" {
		t.Errorf("view big_v: %+v", v)
	}
	if s := m.Table("sums"); s == nil || s.Rows != 1 || deref(s.Columns[1].Profile.Sum) != "50500" {
		t.Errorf("materialized view sums: %+v", s)
	}
	rows, _ := readTable(t, lk, m.Table("big_v"))
	if len(rows) != 50 {
		t.Errorf("view read back %d rows", len(rows))
	}
	_, err = New(Options{Views: true}).Read(ctx, openLake(t), tn)
	if err == nil || !strings.Contains(err.Error(), "table public.bad_v: column d: row number 3 of the view") {
		t.Errorf("bad value in a view: %v", err)
	}
}

// TestRowSecurity: a table whose row-level security would hide rows from
// the reading role fails the read, never reads part of the table.
func TestRowSecurity(t *testing.T) {
	role := fmt.Sprintf("reader_%d", time.Now().UnixNano())
	tn, dsn := newTenant(t, "acme",
		`CREATE TABLE t (id int PRIMARY KEY, owner text)`,
		`INSERT INTO t VALUES (1, 'me'), (2, 'you')`,
		`ALTER TABLE t ENABLE ROW LEVEL SECURITY`,
		`CREATE POLICY mine ON t USING (owner = 'me')`,
		`CREATE ROLE `+role+` LOGIN`,
		`GRANT SELECT ON t TO `+role,
	)
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), dsn)
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(context.Background(), `DROP OWNED BY `+role+`; DROP ROLE `+role); err != nil {
			t.Error(err)
		}
	})
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	tn.Connection = strings.Replace(dsn, "//"+cfg.User+"@", "//"+role+"@", 1)
	lk := openLake(t)
	_, err = New(Options{}).Read(context.Background(), lk, tn)
	if err == nil || !strings.Contains(err.Error(), "row-level security") || !strings.Contains(err.Error(), "table public.t") {
		t.Errorf("read under row-level security: %v, want an error naming it and the table", err)
	}
	noSnapshots(t, lk, "acme")
}
