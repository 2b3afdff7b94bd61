package diff_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/tenantlake/tenantlake/diff"
	"github.com/tenantlake/tenantlake/internal/pgtest"
	"github.com/tenantlake/tenantlake/lake"
	"github.com/tenantlake/tenantlake/readers/postgres"
	"github.com/tenantlake/tenantlake/tenant"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// The source before: snapshot 1.
var setup = []string{
	`CREATE TABLE customers (id bigint PRIMARY KEY, name text NOT NULL, note text, amount numeric(12,2), score double precision, born date, seen timestamptz)`,
	`INSERT INTO customers SELECT i, 'name ' || i, CASE WHEN i % 4 = 0 THEN NULL ELSE 'note ' || i END,
	   i / 100.0, CASE WHEN i % 9 = 0 THEN NULL ELSE i * 0.5 END, date '2020-01-01' + i, timestamptz '2024-01-01 00:00:00Z' + i * interval '1 minute'
	 FROM generate_series(1, 3000) i`,
	// keyless, with duplicate rows
	`CREATE TABLE audit (who text, what text)`,
	`INSERT INTO audit VALUES ('a','x'), ('a','x'), ('a','x'), ('b','y'), ('c', NULL), ('c', NULL)`,
	`CREATE TABLE retyped (id int PRIMARY KEY, n integer, v numeric(10,2), old text)`,
	`INSERT INTO retyped SELECT i, i * 10, i + 0.5, 'old' FROM generate_series(1, 50) i`,
	`CREATE TABLE gone (id int PRIMARY KEY)`,
	`INSERT INTO gone VALUES (1), (2)`,
	`CREATE TABLE rekeyed (a int NOT NULL, b int NOT NULL, PRIMARY KEY (a))`,
	`INSERT INTO rekeyed VALUES (1, 1), (2, 2)`,
}

// The changes: snapshot 2. Each comment says what the diff must count.
var mutate = []string{
	// customers: 10 updates of name
	`UPDATE customers SET name = name || ' changed' WHERE id BETWEEN 101 AND 110`,
	// 5 updates from a value to NULL (ids 201..205 are not multiples of 4)
	`UPDATE customers SET note = NULL WHERE id IN (201, 202, 203, 205, 206)`,
	// 3 updates from NULL to the empty string
	`UPDATE customers SET note = '' WHERE id IN (300, 304, 308)`,
	// an update that changes nothing is no update
	`UPDATE customers SET name = name WHERE id BETWEEN 400 AND 404`,
	// a float's change in its last bit is an update
	`UPDATE customers SET score = score + 1e-12 WHERE id = 500`,
	// 7 deletes
	`DELETE FROM customers WHERE id BETWEEN 1001 AND 1007`,
	// 4 inserts
	`INSERT INTO customers (id, name) SELECT i, 'new ' || i FROM generate_series(5001, 5004) i`,
	// 2 key changes: 2 deletes and 2 inserts
	`UPDATE customers SET id = id + 100000 WHERE id IN (2001, 2002)`,
	// audit: one ('a','x') fewer, one ('b','y') more, a new ('d','z')
	`DELETE FROM audit WHERE ctid = (SELECT min(ctid) FROM audit WHERE who = 'a')`,
	`INSERT INTO audit VALUES ('b','y'), ('d','z')`,
	// retyped: types widened (values equal), a column added and one dropped, 1 update
	`ALTER TABLE retyped ALTER n TYPE bigint, ALTER v TYPE numeric(12,3), ADD extra text DEFAULT 'e', DROP old`,
	`UPDATE retyped SET v = 99 WHERE id = 7`,
	`DROP TABLE gone`,
	`CREATE TABLE fresh (id int PRIMARY KEY, t text)`,
	`INSERT INTO fresh VALUES (1, 'one'), (2, 'two'), (3, NULL)`,
	// rekeyed: the primary key changes, so whole rows are compared
	`ALTER TABLE rekeyed DROP CONSTRAINT rekeyed_pkey, ADD PRIMARY KEY (a, b)`,
	`UPDATE rekeyed SET b = 20 WHERE a = 2`,
}

type want struct {
	status, compare            string
	inserted, deleted, updated int64
	added, dropped, retyped    []string
	rowsFrom, rowsTo           int64
	notePrefix                 string
}

var wants = map[string]want{
	"customers": {status: "changed", compare: "key", inserted: 6, deleted: 9, updated: 19, rowsFrom: 3000, rowsTo: 2997},
	"audit":     {status: "changed", compare: "rows", inserted: 2, deleted: 1, rowsFrom: 6, rowsTo: 7},
	"retyped": {status: "changed", compare: "key", updated: 1, rowsFrom: 50, rowsTo: 50,
		added: []string{"extra"}, dropped: []string{"old"}, retyped: []string{"n", "v"}},
	"gone":    {status: "dropped", deleted: 2, rowsFrom: 2},
	"fresh":   {status: "added", inserted: 3, rowsTo: 3},
	"rekeyed": {status: "changed", compare: "rows", inserted: 1, deleted: 1, rowsFrom: 2, rowsTo: 2, notePrefix: "primary key changed from (a) to (a, b)"},
}

// twoSnapshots reads the tenant before and after mutate with the real
// PostgreSQL reader, in small row groups and parts.
func twoSnapshots(t *testing.T) (*lake.Lake, *lake.Manifest, *lake.Manifest) {
	t.Helper()
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	conn := pgtest.Connect(t, dsn)
	exec := func(stmts []string) {
		for _, s := range stmts {
			if _, err := conn.Exec(ctx, s); err != nil {
				t.Fatalf("%s: %v", s, err)
			}
		}
	}
	lk, err := lake.Open(ctx, "file://"+t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := lk.Close(); err != nil {
			t.Error(err)
		}
	})
	r := postgres.New(postgres.Options{RowGroupBytes: 8 << 10, PartBytes: 32 << 10, SplitBytes: 64 << 10})
	tn := tenant.Tenant{ID: "acme", Connection: dsn, Active: true}
	exec(setup)
	m1, err := r.Read(ctx, lk, tn)
	if err != nil {
		t.Fatal(err)
	}
	exec(mutate)
	m2, err := r.Read(ctx, lk, tn)
	if err != nil {
		t.Fatal(err)
	}
	if len(m1.Table("customers").Files) < 2 {
		t.Fatalf("customers has %d part(s); the test wants several", len(m1.Table("customers").Files))
	}
	return lk, m1, m2
}

func names[T any](xs []T, name func(T) string) []string {
	var out []string
	for _, x := range xs {
		out = append(out, name(x))
	}
	return out
}

func check(t *testing.T, res *diff.Result) {
	t.Helper()
	if len(res.Tables) != len(wants) {
		t.Errorf("%d tables compared, want %d: %+v", len(res.Tables), len(wants), res.Tables)
	}
	for _, tb := range res.Tables {
		w, ok := wants[tb.Table]
		if !ok {
			t.Errorf("unexpected table %s", tb.Table)
			continue
		}
		got := want{status: tb.Status, compare: tb.Compare, inserted: tb.Inserted, deleted: tb.Deleted, updated: tb.Updated,
			added:    names(tb.ColumnsAdded, func(c diff.Column) string { return c.Name }),
			dropped:  names(tb.ColumnsDropped, func(c diff.Column) string { return c.Name }),
			retyped:  names(tb.ColumnsRetyped, func(c diff.Retype) string { return c.Name }),
			rowsFrom: tb.RowsFrom, rowsTo: tb.RowsTo, notePrefix: w.notePrefix}
		if w.notePrefix != "" && !strings.HasPrefix(tb.Note, w.notePrefix) {
			t.Errorf("%s: note %q, want it to start with %q", tb.Table, tb.Note, w.notePrefix)
		}
		if fmt.Sprint(got) != fmt.Sprint(w) {
			t.Errorf("%s:\n got %+v\nwant %+v", tb.Table, got, w)
		}
	}
}

// changes runs a diff that collects every changed row, as JSON lines, sorted.
func changes(t *testing.T, lk *lake.Lake, from, to *lake.Manifest, mem int64) (*diff.Result, []string) {
	t.Helper()
	var lines []string
	res, err := diff.Snapshots(context.Background(), lk, from, to, diff.Options{MemoryBytes: mem, TempDir: t.TempDir(),
		Rows: func(c diff.Change) error {
			b, err := json.Marshal(c)
			lines = append(lines, string(b))
			return err
		}})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return res, lines
}

func TestDiffKnownChanges(t *testing.T) {
	lk, m1, m2 := twoSnapshots(t)
	ctx := context.Background()

	// Counts only, in memory.
	res, err := diff.Snapshots(ctx, lk, m1, m2, diff.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.From != m1.SnapshotID || res.To != m2.SnapshotID || res.Tenant != "acme" || !res.Changed() {
		t.Errorf("result header %s %s → %s changed=%v", res.Tenant, res.From, res.To, res.Changed())
	}
	check(t, res)

	// With rows, in memory and spilled to partitions (a tiny budget forces
	// partitioning and repartitioning): the same counts and the same rows.
	memRes, memRows := changes(t, lk, m1, m2, 0)
	check(t, memRes)
	spillRes, spillRows := changes(t, lk, m1, m2, 2<<10)
	check(t, spillRes)
	if strings.Join(memRows, "\n") != strings.Join(spillRows, "\n") {
		t.Errorf("rows differ between in-memory and spilled diffs:\n%s\n---\n%s", strings.Join(memRows, "\n"), strings.Join(spillRows, "\n"))
	}
	var total int64
	for _, tb := range memRes.Tables {
		total += tb.Inserted + tb.Deleted + tb.Updated
	}
	if int64(len(memRows)) != total {
		t.Errorf("%d changed rows reported, the counts add up to %d", len(memRows), total)
	}
	has := func(sub string) {
		t.Helper()
		for _, l := range memRows {
			if strings.Contains(l, sub) {
				return
			}
		}
		t.Errorf("no changed row contains %s", sub)
	}
	// A value that became NULL, NULL that became '', a key change, exact values.
	has(`{"table":"customers","op":"update","key":{"id":201},"before":{"id":201,"name":"name 201","note":"note 201","amount":"2.01","score":100.5,"born":"2020-07-20","seen":"2024-01-01T03:21:00.000000Z"},"after":{"id":201,"name":"name 201","note":null,`)
	has(`"op":"update","key":{"id":300},"before":{"id":300,"name":"name 300","note":null,`)
	has(`"after":{"id":300,"name":"name 300","note":"",`)
	has(`{"table":"customers","op":"delete","key":{"id":2001},`)
	has(`{"table":"customers","op":"insert","key":{"id":102001},"after":{"id":102001,"name":"name 2001",`)
	has(`{"table":"customers","op":"insert","key":{"id":5001},"after":{"id":5001,"name":"new 5001","note":null,"amount":null,`)
	has(`{"table":"audit","op":"delete","before":{"who":"a","what":"x"}}`)
	has(`{"table":"audit","op":"insert","after":{"who":"d","what":"z"}}`)
	has(`{"table":"retyped","op":"update","key":{"id":7},"before":{"id":7,"n":70,"v":"7.50","old":"old"},"after":{"id":7,"n":70,"v":"99.000","extra":"e"}}`)
	has(`{"table":"gone","op":"delete","key":{"id":1},"before":{"id":1}}`)
	has(`{"table":"fresh","op":"insert","key":{"id":3},"after":{"id":3,"t":null}}`)
	has(`{"table":"rekeyed","op":"insert","key":{"a":2,"b":20},"after":{"a":2,"b":20}}`)
	has(`{"table":"rekeyed","op":"delete","key":{"a":2},"before":{"a":2,"b":2}}`)

	// The other way round, inserts and deletes swap.
	back, err := diff.Snapshots(ctx, lk, m2, m1, diff.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range back.Tables {
		w := wants[tb.Table]
		if tb.Inserted != w.deleted || tb.Deleted != w.inserted || tb.Updated != w.updated {
			t.Errorf("%s backwards: +%d -%d ~%d, want +%d -%d ~%d", tb.Table, tb.Inserted, tb.Deleted, tb.Updated, w.deleted, w.inserted, w.updated)
		}
	}

	// One table only; a table neither snapshot has is an error.
	one, err := diff.Snapshots(ctx, lk, m1, m2, diff.Options{Tables: []string{"audit"}})
	if err != nil || len(one.Tables) != 1 || one.Tables[0].Table != "audit" {
		t.Errorf("--table audit: %+v, %v", one, err)
	}
	if _, err := diff.Snapshots(ctx, lk, m1, m2, diff.Options{Tables: []string{"nosuch"}}); !errors.Is(err, diff.ErrNoTable) {
		t.Errorf("unknown table: %v, want ErrNoTable", err)
	}
}

func TestDiffWithItselfIsEmpty(t *testing.T) {
	lk, m1, m2 := twoSnapshots(t)
	for _, m := range []*lake.Manifest{m1, m2} {
		for _, mem := range []int64{0, 2 << 10} {
			res, rows := changes(t, lk, m, m, mem)
			if res.Changed() || len(rows) != 0 {
				t.Errorf("diff of %s with itself (memory %d): %d changed rows, %+v", m.SnapshotID, mem, len(rows), res.Tables)
			}
			for _, tb := range res.Tables {
				if tb.Status != diff.StatusUnchanged || tb.RowsFrom != tb.RowsTo {
					t.Errorf("%s: %+v", tb.Table, tb)
				}
			}
		}
	}
}

// A part that differs from its manifest fails the diff, naming it.
func TestDiffCorruptPart(t *testing.T) {
	lk, m1, m2 := twoSnapshots(t)
	bad := *m2
	bad.Tables = append([]lake.Table(nil), m2.Tables...)
	for i := range bad.Tables {
		if bad.Tables[i].Name == "customers" {
			tb := bad.Tables[i]
			tb.Files = append([]lake.File(nil), tb.Files...)
			tb.Files[0].SHA256 = strings.Repeat("0", 64)
			bad.Tables[i] = tb
		}
	}
	_, err := diff.Snapshots(context.Background(), lk, m1, &bad, diff.Options{})
	if !errors.Is(err, lake.ErrCorrupt) || !strings.Contains(err.Error(), "customers") {
		t.Errorf("corrupt part: %v, want ErrCorrupt naming the table", err)
	}
}

// Every Parquet type of docs/types.md is compared exactly and rendered by
// the documented rules: an update of each column is seen, and the rows read
// back as JSON are the values written.
func TestDiffEveryType(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	conn := pgtest.Connect(t, dsn)
	exec := func(stmts ...string) {
		t.Helper()
		for _, s := range stmts {
			if _, err := conn.Exec(ctx, s); err != nil {
				t.Fatalf("%s: %v", s, err)
			}
		}
	}
	lk, err := lake.Open(ctx, "file://"+t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := lk.Close(); err != nil {
			t.Error(err)
		}
	}()
	exec(`CREATE TABLE kinds (id smallint PRIMARY KEY, i int, b bigint, r real, d double precision, n numeric(12,3), big numeric(40,20),
	  free numeric, m money, ok boolean, t text, by bytea, j jsonb, arr int[], dt date, ts timestamp, tz timestamptz, tm time, u uuid)`,
		`INSERT INTO kinds VALUES (1, -7, 9007199254740993, 1.5, -0.25, -12.345, -1.00000000000000000001, 'NaN', 12.34, true, 'tab	"q"', '\x00ff',
		  '{"a": [1, null]}', '{1,NULL}', '0001-01-01', '2024-02-29 23:59:59.999999', '1999-12-31 23:00:00-01', '12:34:56.5', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11')`,
		`INSERT INTO kinds (id) VALUES (2)`)
	r := postgres.New(postgres.Options{})
	tn := tenant.Tenant{ID: "acme", Connection: dsn, Active: true}
	m1, err := r.Read(ctx, lk, tn)
	if err != nil {
		t.Fatal(err)
	}
	// Row 2 gets every column once; row 1 keeps its values, r bit for bit.
	exec(`UPDATE kinds SET i = 0, b = 0, r = 0, d = '-0', n = 0, big = 0, free = 'Infinity', m = 0, ok = false, t = '', by = '', j = 'null',
	  arr = '{}', dt = '9999-12-31', ts = '1970-01-01', tz = '1970-01-01Z', tm = '00:00', u = '00000000-0000-0000-0000-000000000000' WHERE id = 2`)
	m2, err := r.Read(ctx, lk, tn)
	if err != nil {
		t.Fatal(err)
	}
	_, rows := changes(t, lk, m1, m2, 0)
	want := `{"table":"kinds","op":"update","key":{"id":2},` +
		`"before":{"id":2,"i":null,"b":null,"r":null,"d":null,"n":null,"big":null,"free":null,"m":null,"ok":null,"t":null,"by":null,"j":null,"arr":null,"dt":null,"ts":null,"tz":null,"tm":null,"u":null},` +
		`"after":{"id":2,"i":0,"b":0,"r":0,"d":-0,"n":"0.000","big":"0.00000000000000000000","free":"Infinity","m":"0.00","ok":false,"t":"","by":"\\x","j":null,"arr":[],` +
		`"dt":"9999-12-31","ts":"1970-01-01T00:00:00.000000","tz":"1970-01-01T00:00:00.000000Z","tm":"00:00:00.000000","u":"00000000-0000-0000-0000-000000000000"}}`
	if len(rows) != 1 || rows[0] != want {
		t.Fatalf("changes:\n%s\nwant\n%s", strings.Join(rows, "\n"), want)
	}
	// Row 1 as a whole (compared with an empty snapshot of the table: all inserts).
	var got string
	empty := *m1
	empty.Tables = nil
	_, err = diff.Snapshots(ctx, lk, &empty, m1, diff.Options{Rows: func(c diff.Change) error {
		b, err := json.Marshal(c.After)
		if c.After.Get("id") != nil && string(c.After.Get("id")) == "1" {
			got = string(b)
		}
		return err
	}})
	if err != nil {
		t.Fatal(err)
	}
	wantRow := `{"id":1,"i":-7,"b":9007199254740993,"r":1.5,"d":-0.25,"n":"-12.345","big":"-1.00000000000000000001","free":"NaN","m":"12.34","ok":true,` +
		`"t":"tab\t\"q\"","by":"\\x00ff","j":{"a":[1,null]},"arr":[1,null],"dt":"0001-01-01","ts":"2024-02-29T23:59:59.999999","tz":"2000-01-01T00:00:00.000000Z",` +
		`"tm":"12:34:56.500000","u":"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"}`
	if got != wantRow {
		t.Errorf("row 1:\n%s\nwant\n%s", got, wantRow)
	}
}
