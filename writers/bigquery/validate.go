package bigquery

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"

	"cloud.google.com/go/bigquery"
	"cloud.google.com/go/civil"
	"google.golang.org/api/iterator"

	"github.com/tenantlake/tenantlake/lake"
	"github.com/tenantlake/tenantlake/writers"
)

// floatTolerance is the relative tolerance of float sums: the lake's figure
// and BigQuery's are the same values summed in different orders.
const floatTolerance = 1e-9

// figure is one aggregate of the validation query and the manifest figure it
// is checked against.
type figure struct {
	column string
	name   string // "nulls", "min", "max", "sum"
	typ    bigquery.FieldType
	want   string
	expr   string // SQL aggregate; "" when BigQuery cannot compute it
}

// validate checks a staged table against the manifest: its row count, with
// the jobs' statistics (jobRows, -1 when the jobs reported none) and
// COUNT(*); its column profiles (nulls, min, max, sum) unless SkipProfiles;
// its schema (staged, the live schema with JSON as STRING) unless
// SkipSchema; and, for every JSON column that the live table holds as JSON,
// that every value parses into BigQuery's JSON type exactly (check
// "json:<column>", always run: a value PARSE_JSON refuses would fail the
// promotion, so it quarantines the load instead). A failed check is a
// result, not an error; an error means a check could not run.
func (w *Writer) validate(ctx context.Context, st *bigquery.Table, md *bigquery.TableMetadata, t *lake.Table, live, schema bigquery.Schema, jobRows int64) ([]writers.Check, int64, error) {
	want := strconv.FormatInt(t.Rows, 10)
	var checks []writers.Check
	if jobRows >= 0 {
		got := strconv.FormatInt(jobRows, 10)
		checks = append(checks, writers.Check{Name: "rows:job", OK: got == want, Expected: want, Actual: got})
	}
	var figs []figure
	if !w.cfg.SkipProfiles {
		figs = profileFigures(t, schema)
	}
	if !w.cfg.JSONAsString {
		figs = append(figs, jsonFigures(live)...)
	}
	sel := []string{"COUNT(*)"}
	for _, f := range figs {
		if f.expr != "" {
			sel = append(sel, f.expr)
		}
	}
	row, err := w.queryRow(ctx, "SELECT "+strings.Join(sel, ", ")+" FROM "+tablePath(st))
	if err != nil {
		return nil, 0, fmt.Errorf("validation query on %s.%s: %w", st.DatasetID, st.TableID, err)
	}
	count, ok := row[0].(int64)
	if !ok {
		return nil, 0, fmt.Errorf("validation query on %s.%s: COUNT(*) returned %T", st.DatasetID, st.TableID, row[0])
	}
	got := strconv.FormatInt(count, 10)
	checks = append(checks, writers.Check{Name: "rows", OK: got == want, Expected: want, Actual: got})
	i := 1
	for _, f := range figs {
		c := writers.Check{Name: "profile:" + f.column + ":" + f.name, Expected: f.want}
		if f.name == figureJSON {
			c.Name = "json:" + f.column
		}
		if f.expr == "" {
			c.Actual = "not computable for BigQuery type " + string(f.typ)
		} else {
			c.OK, c.Actual = compareFigure(f, row[i])
			i++
		}
		checks = append(checks, c)
	}
	if !w.cfg.SkipSchema {
		diff := schemaDiff(schema, md.Schema)
		c := writers.Check{Name: "schema", OK: diff == "", Expected: "the manifest's schema", Actual: "as expected"}
		if diff != "" {
			c.Actual = diff
		}
		checks = append(checks, c)
	}
	return checks, count, nil
}

// queryRow runs a query that returns one row.
func (w *Writer) queryRow(ctx context.Context, sql string) ([]bigquery.Value, error) {
	q := w.client.Query(sql)
	q.Location = w.cfg.Location
	q.Labels = w.cfg.Labels
	it, err := q.Read(ctx)
	if err != nil {
		return nil, err
	}
	var row []bigquery.Value
	if err := it.Next(&row); err != nil {
		if errors.Is(err, iterator.Done) {
			return nil, errors.New("query returned no row")
		}
		return nil, err
	}
	return row, nil
}

// figureJSON names the figure that counts a JSON column's values that
// BigQuery's JSON type cannot hold exactly (jsonFigures).
const figureJSON = "unparsable"

// jsonFigures lists, per JSON field of the live schema, the count of staged
// values that SAFE.PARSE_JSON refuses (want 0): text that is not JSON, or a
// number that wide_number_mode 'exact' (the default) cannot store without
// losing precision in INT64, UINT64 or FLOAT64.
func jsonFigures(live bigquery.Schema) []figure {
	var figs []figure
	for _, f := range live {
		if f.Type != bigquery.JSONFieldType {
			continue
		}
		col := quoteIdent(f.Name)
		figs = append(figs, figure{column: f.Name, name: figureJSON, typ: bigquery.IntegerFieldType, want: "0",
			expr: "COUNTIF(" + col + " IS NOT NULL AND SAFE.PARSE_JSON(" + col + ", wide_number_mode => 'exact') IS NULL)"})
	}
	return figs
}

// profileFigures lists the aggregates that check the manifest's profile of
// each column: nulls always (not for REPEATED fields, which are never NULL
// in BigQuery); min, max and sum where the manifest has them. Text min/max
// compare bytes in BigQuery as in the lake; float min/max skip NaN, as the
// lake's figures do; integer and decimal sums are exact (BIGNUMERIC).
func profileFigures(t *lake.Table, schema bigquery.Schema) []figure {
	var figs []figure
	for i, c := range t.Columns {
		f := schema[i]
		col := quoteIdent(c.Name)
		if !f.Repeated {
			figs = append(figs, figure{column: c.Name, name: "nulls", typ: f.Type, want: strconv.FormatInt(c.Profile.Nulls, 10),
				expr: "COUNTIF(" + col + " IS NULL)"})
		}
		orderable, summable := false, false
		switch f.Type {
		case bigquery.IntegerFieldType, bigquery.NumericFieldType, bigquery.BigNumericFieldType, bigquery.FloatFieldType:
			orderable, summable = true, true
		case bigquery.StringFieldType, bigquery.BytesFieldType, bigquery.BooleanFieldType, bigquery.DateFieldType,
			bigquery.DateTimeFieldType, bigquery.TimestampFieldType, bigquery.TimeFieldType:
			orderable = true
		}
		if f.Repeated {
			orderable, summable = false, false
		}
		val := col
		if f.Type == bigquery.FloatFieldType {
			val = "IF(IS_NAN(" + col + "), NULL, " + col + ")"
		}
		add := func(name string, want *string, ok bool, expr string) {
			if want == nil {
				return
			}
			if !ok {
				expr = ""
			}
			figs = append(figs, figure{column: c.Name, name: name, typ: f.Type, want: *want, expr: expr})
		}
		add("min", c.Profile.Min, orderable, "MIN("+val+")")
		add("max", c.Profile.Max, orderable, "MAX("+val+")")
		sum := "SUM(CAST(" + col + " AS BIGNUMERIC))"
		if f.Type == bigquery.FloatFieldType {
			sum = "SUM(" + col + ")"
		}
		add("sum", c.Profile.Sum, summable, sum)
	}
	return figs
}

// compareFigure compares a manifest figure with the value BigQuery computed,
// by meaning rather than by spelling (1.50 = 1.5; timestamps as instants).
// A NULL aggregate (no non-NULL value) matches a manifest figure of an
// empty sum ("0") only for sums.
func compareFigure(f figure, v bigquery.Value) (bool, string) {
	if v == nil {
		return f.name == "sum" && isZero(f.want), "NULL"
	}
	typ := f.typ
	if f.name == "nulls" || f.name == figureJSON {
		typ = bigquery.IntegerFieldType // a count, whatever the column's type
	}
	switch typ {
	case bigquery.IntegerFieldType, bigquery.NumericFieldType, bigquery.BigNumericFieldType:
		got, ok := toRat(v)
		if !ok {
			return false, fmt.Sprintf("%v (%T)", v, v)
		}
		want, ok := new(big.Rat).SetString(f.want)
		return ok && want.Cmp(got) == 0, got.RatString()
	case bigquery.FloatFieldType:
		got, ok := v.(float64)
		if !ok {
			return false, fmt.Sprintf("%v (%T)", v, v)
		}
		want, err := strconv.ParseFloat(f.want, 64)
		if err != nil {
			return false, strconv.FormatFloat(got, 'g', -1, 64)
		}
		return floatsMatch(want, got, f.name == "sum"), strconv.FormatFloat(got, 'g', -1, 64)
	case bigquery.StringFieldType:
		s, _ := v.(string)
		return s == f.want, s
	case bigquery.BooleanFieldType:
		b, _ := v.(bool)
		return strconv.FormatBool(b) == f.want, strconv.FormatBool(b)
	case bigquery.DateFieldType:
		d, ok := v.(civil.Date)
		return ok && d.String() == f.want, fmt.Sprint(v)
	case bigquery.DateTimeFieldType:
		d, ok := v.(civil.DateTime)
		want, err := civil.ParseDateTime(f.want)
		return ok && err == nil && d == want, fmt.Sprint(v)
	case bigquery.TimestampFieldType:
		ts, ok := v.(time.Time)
		want, err := time.Parse(time.RFC3339Nano, f.want)
		return ok && err == nil && ts.Equal(want), ts.UTC().Format("2006-01-02T15:04:05.000000Z")
	case bigquery.TimeFieldType:
		tm, ok := v.(civil.Time)
		want, err := civil.ParseTime(f.want)
		return ok && err == nil && tm == want, fmt.Sprint(v)
	case bigquery.BytesFieldType:
		b, _ := v.([]byte)
		return string(b) == f.want, string(b)
	}
	return false, fmt.Sprint(v)
}

func toRat(v bigquery.Value) (*big.Rat, bool) {
	switch x := v.(type) {
	case int64:
		return new(big.Rat).SetInt64(x), true
	case *big.Rat:
		return x, true
	}
	return nil, false
}

func isZero(s string) bool {
	r, ok := new(big.Rat).SetString(s)
	return ok && r.Sign() == 0
}

// floatsMatch: NaN matches NaN, infinities match themselves; min and max
// are exact, sums match within floatTolerance (relative).
func floatsMatch(want, got float64, sum bool) bool {
	switch {
	case math.IsNaN(want) || math.IsNaN(got):
		return math.IsNaN(want) && math.IsNaN(got)
	case math.IsInf(want, 0) || math.IsInf(got, 0) || !sum:
		return want == got
	}
	return math.Abs(want-got) <= floatTolerance*math.Max(math.Abs(want), math.Abs(got))
}
