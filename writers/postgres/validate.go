package postgres

import (
	"context"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tenantlake/tenantlake/lake"
	"github.com/tenantlake/tenantlake/writers"
)

// floatTolerance is the relative tolerance of float sums (DESIGN.md).
const floatTolerance = 1e-9

// validate checks every staged table against the manifest and appends the
// checks to results (in manifest order). ok is false when any check failed;
// an error means a check could not run.
func (w *Writer) validate(ctx context.Context, conn *pgx.Conn, m *lake.Manifest, staging string, results []writers.TableResult) (ok bool, err error) {
	ok = true
	for i := range m.Tables {
		t, res := &m.Tables[i], &results[i]
		checks, err := w.validateTable(ctx, conn, t, staging, res)
		if err != nil {
			return false, fmt.Errorf("validate table %s: %w", t.Name, err)
		}
		for _, c := range checks {
			ok = ok && c.OK
		}
		res.Checks = checks
	}
	return ok, nil
}

// figure is one profile aggregate: a SQL expression giving text, the
// manifest's figure and how to compare them.
type figure struct {
	name     string
	expr     string
	expected string
	equal    func(expected, actual string) bool
}

func (w *Writer) validateTable(ctx context.Context, conn *pgx.Conn, t *lake.Table, staging string, res *writers.TableResult) ([]writers.Check, error) {
	var figures []figure
	if !w.cfg.SkipProfile {
		for _, c := range t.Columns {
			figures = append(figures, columnFigures(c)...)
		}
	}
	exprs := []string{"count(*)::text"}
	for _, f := range figures {
		exprs = append(exprs, f.expr)
	}
	vals := make([]*string, len(exprs))
	dest := make([]any, len(exprs))
	for i := range vals {
		dest[i] = &vals[i]
	}
	q := "SELECT " + strings.Join(exprs, ", ") + " FROM " + pgx.Identifier{staging, t.Name}.Sanitize()
	if err := conn.QueryRow(ctx, q).Scan(dest...); err != nil {
		return nil, fmt.Errorf("profile query: %w", err)
	}
	count, err := strconv.ParseInt(*vals[0], 10, 64)
	if err != nil {
		return nil, fmt.Errorf("count: %w", err)
	}
	res.TargetRows = count
	checks := []writers.Check{
		{Name: "rows", OK: count == t.Rows, Expected: strconv.FormatInt(t.Rows, 10), Actual: *vals[0]},
		{Name: "lake_rows", OK: res.LakeRows == t.Rows, Expected: strconv.FormatInt(t.Rows, 10), Actual: strconv.FormatInt(res.LakeRows, 10)},
	}
	if !w.cfg.SkipSchema {
		c, err := schemaCheck(ctx, conn, t, staging)
		if err != nil {
			return nil, err
		}
		checks = append(checks, c)
	}
	for i, f := range figures {
		actual := "NULL"
		if v := vals[i+1]; v != nil {
			actual = *v
		}
		checks = append(checks, writers.Check{Name: f.name, OK: vals[i+1] != nil && f.equal(f.expected, actual), Expected: f.expected, Actual: actual})
	}
	return checks, nil
}

// columnFigures returns the aggregates that check c's profile: nulls always,
// min, max and sum where the manifest has them and the type has an order
// (BYTES and JSON columns have nulls only). A sum over no rows is 0.
func columnFigures(c lake.Column) []figure {
	col := pgx.Identifier{c.Name}.Sanitize()
	prefix := "profile:" + c.Name + ":"
	figs := []figure{{name: prefix + "nulls", expr: fmt.Sprintf("(count(*) - count(%s))::text", col),
		expected: strconv.FormatInt(c.Profile.Nulls, 10), equal: equalString}}
	add := func(name string, want *string, expr string, equal func(string, string) bool) {
		if want != nil {
			figs = append(figs, figure{name: prefix + name, expr: expr, expected: *want, equal: equal})
		}
	}
	p := c.Profile
	base, _, _ := strings.Cut(c.BigQueryType, "(")
	switch base {
	case "INT64", "NUMERIC", "BIGNUMERIC":
		add("min", p.Min, "min("+col+")::text", equalDecimal)
		add("max", p.Max, "max("+col+")::text", equalDecimal)
		add("sum", p.Sum, "coalesce(sum("+col+"), 0)::text", equalDecimal)
	case "FLOAT64":
		// min and max over the non-NaN values.
		add("min", p.Min, "(min("+col+") FILTER (WHERE "+col+" <> 'NaN'))::text", equalFloat(0))
		add("max", p.Max, "(max("+col+") FILTER (WHERE "+col+" <> 'NaN'))::text", equalFloat(0))
		add("sum", p.Sum, "coalesce(sum("+col+"), 0)::text", equalFloat(floatTolerance))
	case "STRING":
		add("min", p.Min, "min("+col+` COLLATE "C")`, equalString)
		add("max", p.Max, "max("+col+` COLLATE "C")`, equalString)
	case "BOOL":
		add("min", p.Min, "bool_and("+col+")::text", equalString)
		add("max", p.Max, "bool_or("+col+")::text", equalString)
	case "DATE", "DATETIME", "TIMESTAMP", "TIME":
		add("min", p.Min, "min("+col+")::text", equalTime)
		add("max", p.Max, "max("+col+")::text", equalTime)
	}
	return figs
}

func equalString(expected, actual string) bool { return expected == actual }

// equalDecimal compares integers and decimals exactly, whatever their
// trailing zeros.
func equalDecimal(expected, actual string) bool {
	e, ok1 := new(big.Rat).SetString(expected)
	a, ok2 := new(big.Rat).SetString(actual)
	return ok1 && ok2 && e.Cmp(a) == 0
}

// equalFloat compares floats with a relative tolerance; NaN equals NaN.
func equalFloat(tolerance float64) func(string, string) bool {
	return func(expected, actual string) bool {
		e, err1 := strconv.ParseFloat(expected, 64)
		a, err2 := strconv.ParseFloat(actual, 64)
		switch {
		case err1 != nil || err2 != nil:
			return false
		case math.IsNaN(e) || math.IsNaN(a):
			return math.IsNaN(e) && math.IsNaN(a)
		case e == a:
			return true
		}
		return math.Abs(e-a) <= tolerance*math.Max(math.Abs(e), math.Abs(a))
	}
}

// timeLayouts parse the profile's canonical forms and PostgreSQL's ISO
// output (the writer's sessions run with TimeZone UTC, DateStyle ISO).
var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02",
	"15:04:05.999999999",
}

// equalTime compares dates, timestamps and times as instants (or wall clock
// values), whatever their spelling.
func equalTime(expected, actual string) bool {
	e, ok1 := parseTime(expected)
	a, ok2 := parseTime(actual)
	return ok1 && ok2 && e.Equal(a)
}

func parseTime(s string) (time.Time, bool) {
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// schemaCheck compares the staged table's columns (name, type, nullability,
// in order) with the manifest.
func schemaCheck(ctx context.Context, conn *pgx.Conn, t *lake.Table, staging string) (writers.Check, error) {
	var want []string
	for _, c := range t.Columns {
		typ, err := pgType(c.BigQueryType)
		if err != nil {
			return writers.Check{}, fmt.Errorf("column %s: %w", c.Name, err)
		}
		want = append(want, describeColumn(c.Name, typ, !c.Nullable))
	}
	rows, err := conn.Query(ctx, `
SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull
FROM pg_attribute a
WHERE a.attrelid = (SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2)
  AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum`, staging, t.Name)
	if err != nil {
		return writers.Check{}, fmt.Errorf("read staged schema: %w", err)
	}
	var got []string
	var name, typ string
	var notNull bool
	_, err = pgx.ForEachRow(rows, []any{&name, &typ, &notNull}, func() error {
		got = append(got, describeColumn(name, typ, notNull))
		return nil
	})
	if err != nil {
		return writers.Check{}, fmt.Errorf("read staged schema: %w", err)
	}
	e, a := strings.Join(want, ", "), strings.Join(got, ", ")
	return writers.Check{Name: "schema", OK: e == a, Expected: e, Actual: a}, nil
}

func describeColumn(name, typ string, notNull bool) string {
	s := name + " " + typ
	if notNull {
		s += " not null"
	}
	return s
}
