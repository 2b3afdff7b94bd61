package postgres

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/apache/arrow-go/v18/parquet/schema"
	"github.com/jackc/pgx/v5"

	"github.com/tenantlake/tenantlake/internal/pgtest"
	"github.com/tenantlake/tenantlake/lake"
	"github.com/tenantlake/tenantlake/tenant"
)

func TestMain(m *testing.M) {
	if os.Getenv(envTask) != "" { // a task process of distributed_test.go
		os.Exit(distTaskMain())
	}
	pgtest.Main(m)
}

// newTenant creates a database, runs setup in it and returns a tenant for it
// and a connection string.
func newTenant(t *testing.T, id string, setup ...string) (tenant.Tenant, string) {
	t.Helper()
	dsn := pgtest.NewDatabase(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, s := range setup {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("setup %q: %v", s, err)
		}
	}
	return tenant.Tenant{ID: id, Connection: dsn, Active: true}, dsn
}

func openLake(t *testing.T) *lake.Lake {
	t.Helper()
	lk, err := lake.Open(context.Background(), "file://"+t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := lk.Close(); err != nil {
			t.Error(err)
		}
	})
	return lk
}

// readTable reads every part of a manifest table with arrow-go (an
// independent Parquet reader) and returns its rows as canonical strings, one
// map per row keyed by destination column name (NULL as "NULL"), and the
// arrow schema of the first part.
func readTable(t *testing.T, lk *lake.Lake, tb *lake.Table) ([]map[string]string, *arrow.Schema) {
	t.Helper()
	ctx := context.Background()
	var out []map[string]string
	var schema *arrow.Schema
	for _, f := range tb.Files {
		if err := lk.Verify(ctx, f); err != nil {
			t.Fatal(err)
		}
		pr, err := lk.OpenPart(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(pr)
		if err != nil {
			t.Fatal(err)
		}
		checkLogicalTypes(t, data, tb)
		tbl, err := pqarrow.ReadTable(ctx, bytes.NewReader(data), parquet.NewReaderProperties(memory.DefaultAllocator),
			pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
		if err != nil {
			t.Fatalf("arrow read %s: %v", f.Path, err)
		}
		if schema == nil {
			schema = tbl.Schema()
		}
		if int64(tbl.NumRows()) != f.Rows {
			t.Errorf("%s: arrow reads %d rows, manifest says %d", f.Path, tbl.NumRows(), f.Rows)
		}
		tr := array.NewTableReader(tbl, 1024)
		for tr.Next() {
			rec := tr.RecordBatch()
			for r := 0; r < int(rec.NumRows()); r++ {
				row := map[string]string{}
				for c := 0; c < int(rec.NumCols()); c++ {
					v := arrowString(t, rec.Column(c), r)
					if b, ok := rec.Column(c).(*array.Binary); ok && tb.Columns[c].BigQueryType == "JSON" && !b.IsNull(r) {
						v = string(b.Value(r)) // arrow-go reads the JSON logical type as binary
					}
					row[rec.ColumnName(c)] = v
				}
				out = append(out, row)
			}
		}
		tr.Release()
		tbl.Release()
	}
	return out, schema
}

// checkLogicalTypes checks with arrow-go's Parquet reader that JSON and
// STRING columns carry their logical types.
func checkLogicalTypes(t *testing.T, data []byte, tb *lake.Table) {
	t.Helper()
	rdr, err := file.NewParquetReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	defer rdr.Close()
	sc := rdr.MetaData().Schema
	for i, c := range tb.Columns {
		lt := sc.Column(i).LogicalType()
		switch c.BigQueryType {
		case "JSON":
			if _, ok := lt.(schema.JSONLogicalType); !ok {
				t.Errorf("column %s: logical type %s, want JSON", c.Name, lt)
			}
		case "STRING":
			if _, ok := lt.(schema.StringLogicalType); !ok {
				t.Errorf("column %s: logical type %s, want STRING", c.Name, lt)
			}
		}
	}
}

// arrowString renders one arrow value canonically, the way expectedSQL
// renders PostgreSQL's.
func arrowString(t *testing.T, col arrow.Array, i int) string {
	if col.IsNull(i) {
		return "NULL"
	}
	switch a := col.(type) {
	case *array.Int16:
		return strconv.Itoa(int(a.Value(i)))
	case *array.Int32:
		return strconv.Itoa(int(a.Value(i)))
	case *array.Int64:
		return strconv.FormatInt(a.Value(i), 10)
	case *array.Float32:
		return pgFloat(float64(a.Value(i)), 32)
	case *array.Float64:
		return pgFloat(a.Value(i), 64)
	case *array.Decimal128:
		return a.Value(i).ToString(a.DataType().(*arrow.Decimal128Type).Scale)
	case *array.Decimal256:
		return a.Value(i).ToString(a.DataType().(*arrow.Decimal256Type).Scale)
	case *array.Boolean:
		return strconv.FormatBool(a.Value(i))
	case *array.String:
		return a.Value(i)
	case *array.Binary:
		return fmt.Sprintf("%x", a.Value(i))
	case *array.Date32:
		return a.Value(i).ToTime().Format("2006-01-02")
	case *array.Timestamp:
		return time.UnixMicro(int64(a.Value(i))).UTC().Format("2006-01-02 15:04:05.000000")
	case *array.Time64:
		return time.UnixMicro(int64(a.Value(i))).UTC().Format("15:04:05.000000")
	case array.ExtensionArray:
		return arrowString(t, a.Storage(), i)
	}
	t.Fatalf("arrow type %s (%T) not handled", col.DataType(), col)
	return ""
}

func pgFloat(v float64, bits int) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "Infinity"
	case math.IsInf(v, -1):
		return "-Infinity"
	}
	return strconv.FormatFloat(v, 'g', -1, bits)
}

// expectedSQL is a SQL expression rendering column col, of expected-value
// kind, the way arrowString renders what the reader wrote, computed by
// PostgreSQL itself.
func expectedSQL(col, kind string) string {
	q := quoteIdent(col)
	switch kind {
	case "int", "bool", "float4", "float8":
		return q + "::text"
	case "json":
		return "to_json(" + q + ")::text"
	case "bytea":
		return "encode(" + q + ", 'hex')"
	case "timestamptz":
		return "to_char(" + q + " AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')"
	case "timestamp":
		return "to_char(" + q + ", 'YYYY-MM-DD HH24:MI:SS.US')"
	case "time":
		return "to_char('2000-01-01'::date + " + q + ", 'HH24:MI:SS.US')"
	case "money":
		return "(" + q + "::numeric)::text"
	}
	// The type's own text output (a cast to text would trim char(n)).
	return "CASE WHEN " + q + " IS NULL THEN NULL ELSE format('%s', " + q + ") END"
}

// expectedRows asks PostgreSQL for every row of table, each column rendered
// by expectedSQL, keyed by destination name (NULL as "NULL").
func expectedRows(t *testing.T, dsn, table string, cols [][3]string) []map[string]string {
	t.Helper()
	ctx := context.Background()
	conn := pgtest.Connect(t, dsn)
	// SET overrides PGTZ and PGOPTIONS, which tests set on purpose.
	mustExec(t, conn, "SET TimeZone = 'UTC'; SET extra_float_digits = 1; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'")
	exprs := make([]string, len(cols))
	for i, c := range cols {
		exprs[i] = expectedSQL(c[0], c[1])
	}
	rows, err := conn.Query(ctx, "SELECT "+strings.Join(exprs, ", ")+" FROM "+table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []map[string]string
	for rows.Next() {
		vals := make([]*string, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		row := map[string]string{}
		for i, c := range cols {
			if vals[i] == nil {
				row[c[2]] = "NULL"
			} else {
				row[c[2]] = *vals[i]
			}
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// byKey indexes rows by the value of column key.
func byKey(t *testing.T, rows []map[string]string, key string) map[string]map[string]string {
	t.Helper()
	out := map[string]map[string]string{}
	for _, r := range rows {
		if _, dup := out[r[key]]; dup {
			t.Fatalf("key %s=%s repeated", key, r[key])
		}
		out[r[key]] = r
	}
	return out
}

func mustExec(t *testing.T, conn *pgx.Conn, sql string, args ...any) {
	t.Helper()
	if _, err := conn.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// checkProfiles compares every column's profile in the manifest with figures
// PostgreSQL computes (text compared in byte order with COLLATE "C").
func checkProfiles(t *testing.T, dsn, table string, tb *lake.Table) {
	t.Helper()
	ctx := context.Background()
	conn := pgtest.Connect(t, dsn)
	mustExec(t, conn, "SET TimeZone = 'UTC'")
	for _, c := range tb.Columns {
		q := quoteIdent(c.Source)
		var lo, hi, sum string
		switch {
		case c.BigQueryType == "INT64":
			lo, hi, sum = "min(%s)::text", "max(%s)::text", "sum(%s)::text"
		case strings.HasPrefix(c.BigQueryType, "NUMERIC"), strings.HasPrefix(c.BigQueryType, "BIGNUMERIC"):
			if c.SourceType == "money" {
				q += "::numeric"
			}
			lo, hi, sum = "min(%s)::text", "max(%s)::text", "sum(%s)::text"
		case c.BigQueryType == "FLOAT64":
			lo = "min(%s::float8) FILTER (WHERE %[1]s <> 'NaN')::text"
			hi = "max(%s::float8) FILTER (WHERE %[1]s <> 'NaN')::text"
			sum = "sum(%s::float8)::text"
		case c.BigQueryType == "STRING":
			lo = `min(CASE WHEN %s IS NULL THEN NULL ELSE format('%%s', %[1]s) END COLLATE "C")`
			hi = `max(CASE WHEN %s IS NULL THEN NULL ELSE format('%%s', %[1]s) END COLLATE "C")`
		case c.BigQueryType == "BOOL":
			lo, hi = "bool_and(%s)::text", "bool_or(%s)::text"
		case c.BigQueryType == "DATE":
			lo, hi = "min(%s)::text", "max(%s)::text"
		case c.BigQueryType == "DATETIME":
			lo, hi = `to_char(min(%s), 'YYYY-MM-DD"T"HH24:MI:SS.US')`, `to_char(max(%s), 'YYYY-MM-DD"T"HH24:MI:SS.US')`
		case c.BigQueryType == "TIMESTAMP":
			lo, hi = `to_char(min(%s) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`, `to_char(max(%s) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`
		case c.BigQueryType == "TIME":
			lo, hi = `to_char('2000-01-01'::date + min(%s), 'HH24:MI:SS.US')`, `to_char('2000-01-01'::date + max(%s), 'HH24:MI:SS.US')`
		}
		exprs := []string{fmt.Sprintf("count(*) - count(%s)", q)}
		for _, e := range []string{lo, hi, sum} {
			if e == "" {
				exprs = append(exprs, "NULL::text")
			} else {
				exprs = append(exprs, fmt.Sprintf(e, q))
			}
		}
		var nulls int64
		var figs [3]*string
		sql := "SELECT " + strings.Join(exprs, ", ") + " FROM " + table
		if err := conn.QueryRow(ctx, sql).Scan(&nulls, &figs[0], &figs[1], &figs[2]); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		if nulls != c.Profile.Nulls {
			t.Errorf("column %s: manifest nulls %d, PostgreSQL %d", c.Name, c.Profile.Nulls, nulls)
		}
		for i, got := range []*string{c.Profile.Min, c.Profile.Max, c.Profile.Sum} {
			want := figs[i]
			if c.BigQueryType == "FLOAT64" {
				if !sameFloat(got, want, i == 2) {
					t.Errorf("column %s figure %d: manifest %v, PostgreSQL %v", c.Name, i, deref(got), deref(want))
				}
				continue
			}
			if deref(got) != deref(want) {
				t.Errorf("column %s figure %d: manifest %v, PostgreSQL %v", c.Name, i, deref(got), deref(want))
			}
		}
	}
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

// sameFloat compares float figures; sums with a relative tolerance.
func sameFloat(got, want *string, tolerant bool) bool {
	if got == nil || want == nil {
		return got == nil && want == nil
	}
	g, err1 := strconv.ParseFloat(*got, 64)
	w, err2 := strconv.ParseFloat(*want, 64)
	if err1 != nil || err2 != nil {
		return false
	}
	switch {
	case math.IsNaN(g) || math.IsNaN(w):
		return math.IsNaN(g) && math.IsNaN(w)
	case g == w:
		return true
	case tolerant:
		return math.Abs(g-w) <= 1e-9*math.Max(math.Abs(g), math.Abs(w))
	}
	return false
}
