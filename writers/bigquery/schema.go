package bigquery

import (
	"fmt"
	"strconv"
	"strings"

	"cloud.google.com/go/bigquery"

	"github.com/tenantlake/tenantlake/lake"
)

// tableSchema builds the BigQuery schema of a table from its manifest: names,
// types (Column.BigQueryType) and modes. It is never inferred from the data.
func tableSchema(t *lake.Table) (bigquery.Schema, error) {
	s := make(bigquery.Schema, 0, len(t.Columns))
	for _, c := range t.Columns {
		f, err := fieldSchema(c)
		if err != nil {
			return nil, fmt.Errorf("table %s: %w", t.Name, err)
		}
		s = append(s, f)
	}
	return s, nil
}

// fieldSchema maps one manifest column to a BigQuery field. Accepted types:
// INT64, FLOAT64, NUMERIC[(p[,s])], BIGNUMERIC[(p[,s])], STRING, BYTES, JSON,
// BOOL, DATE, DATETIME, TIMESTAMP, TIME, GEOGRAPHY, INTERVAL and ARRAY<T> of
// those (a REPEATED field; arrays cannot be NULL in BigQuery).
func fieldSchema(c lake.Column) (*bigquery.FieldSchema, error) {
	f := &bigquery.FieldSchema{Name: c.Name, Required: !c.Nullable}
	typ := strings.ToUpper(strings.TrimSpace(c.BigQueryType))
	if inner, ok := strings.CutPrefix(typ, "ARRAY<"); ok && strings.HasSuffix(inner, ">") {
		typ = strings.TrimSuffix(inner, ">")
		f.Repeated, f.Required = true, false
	}
	base, params, _ := strings.Cut(typ, "(")
	base = strings.TrimSpace(base)
	switch base {
	case "INT64":
		f.Type = bigquery.IntegerFieldType
	case "FLOAT64":
		f.Type = bigquery.FloatFieldType
	case "NUMERIC", "BIGNUMERIC":
		f.Type = bigquery.NumericFieldType
		if base == "BIGNUMERIC" {
			f.Type = bigquery.BigNumericFieldType
		}
		if params != "" {
			p, s, err := precisionScale(params)
			if err != nil {
				return nil, fmt.Errorf("column %s: type %q: %w", c.Name, c.BigQueryType, err)
			}
			f.Precision, f.Scale = p, s
		}
		return f, nil
	case "STRING":
		f.Type = bigquery.StringFieldType
	case "BYTES":
		f.Type = bigquery.BytesFieldType
	case "JSON":
		f.Type = bigquery.JSONFieldType
	case "BOOL":
		f.Type = bigquery.BooleanFieldType
	case "DATE":
		f.Type = bigquery.DateFieldType
	case "DATETIME":
		f.Type = bigquery.DateTimeFieldType
	case "TIMESTAMP":
		f.Type = bigquery.TimestampFieldType
	case "TIME":
		f.Type = bigquery.TimeFieldType
	case "GEOGRAPHY":
		f.Type = bigquery.GeographyFieldType
	case "INTERVAL":
		f.Type = bigquery.IntervalFieldType
	default:
		return nil, fmt.Errorf("column %s: BigQuery type %q is not supported", c.Name, c.BigQueryType)
	}
	if params != "" {
		return nil, fmt.Errorf("column %s: type %q takes no parameters", c.Name, c.BigQueryType)
	}
	if f.Repeated && f.Type == bigquery.JSONFieldType {
		// JSON is staged as STRING and parsed at promotion, one value per
		// column; arrays are carried as one JSON value, never REPEATED.
		return nil, fmt.Errorf("column %s: type %q is not supported (carry the array as one JSON value)", c.Name, c.BigQueryType)
	}
	return f, nil
}

// precisionScale parses "p)" or "p,s)".
func precisionScale(params string) (p, s int64, err error) {
	inner, ok := strings.CutSuffix(strings.TrimSpace(params), ")")
	if !ok {
		return 0, 0, fmt.Errorf("unbalanced parentheses")
	}
	ps, ss, hasScale := strings.Cut(inner, ",")
	if p, err = strconv.ParseInt(strings.TrimSpace(ps), 10, 64); err != nil {
		return 0, 0, fmt.Errorf("precision: %w", err)
	}
	if hasScale {
		if s, err = strconv.ParseInt(strings.TrimSpace(ss), 10, 64); err != nil {
			return 0, 0, fmt.Errorf("scale: %w", err)
		}
	}
	return p, s, nil
}

// schemaDiff compares a staged table's schema with the manifest's and
// describes the first differences, or returns "" when they match: the same
// columns in the same order, with the same types, precision, scale and modes.
func schemaDiff(want, got bigquery.Schema) string {
	var diffs []string
	if len(want) != len(got) {
		diffs = append(diffs, fmt.Sprintf("%d columns, want %d", len(got), len(want)))
	}
	for i := 0; i < len(want) && i < len(got); i++ {
		if w, g := fieldString(want[i]), fieldString(got[i]); w != g {
			diffs = append(diffs, fmt.Sprintf("column %d is %s, want %s", i+1, g, w))
		}
	}
	return strings.Join(diffs, "; ")
}

// fieldString renders a field as "name TYPE(p,s) MODE" for comparisons and
// messages.
func fieldString(f *bigquery.FieldSchema) string {
	typ := string(f.Type)
	if f.Precision != 0 || f.Scale != 0 {
		typ += fmt.Sprintf("(%d,%d)", f.Precision, f.Scale)
	}
	mode := "NULLABLE"
	switch {
	case f.Repeated:
		mode = "REPEATED"
	case f.Required:
		mode = "REQUIRED"
	}
	return f.Name + " " + typ + " " + mode
}

// sqlType is the GoogleSQL type name of a field, for CAST in views.
func sqlType(f *bigquery.FieldSchema) string {
	var t string
	switch f.Type {
	case bigquery.IntegerFieldType:
		t = "INT64"
	case bigquery.FloatFieldType:
		t = "FLOAT64"
	case bigquery.BooleanFieldType:
		t = "BOOL"
	case bigquery.NumericFieldType:
		t = "NUMERIC"
	case bigquery.BigNumericFieldType:
		t = "BIGNUMERIC"
	default:
		t = string(f.Type)
	}
	if f.Repeated {
		return "ARRAY<" + t + ">"
	}
	return t
}

// quoteIdent quotes a BigQuery identifier (a column, or a dotted table path
// part) with backquotes. Names reaching SQL have been checked by the lake
// (letters, digits, _) or by tenant.ValidateID; quoting also covers reserved
// words such as `at`.
func quoteIdent(name string) string {
	return "`" + strings.ReplaceAll(name, "`", "") + "`"
}

// tablePath is `project.dataset.table`, quoted.
func tablePath(t *bigquery.Table) string {
	return quoteIdent(t.ProjectID + "." + t.DatasetID + "." + t.TableID)
}

// stagedSchema is the schema of a staging table: the live schema with every
// JSON field as STRING. BigQuery cannot load Parquet (or take a streamed
// value) into a JSON field ("Unsupported field type: JSON"), so JSON values
// are staged as their text and parsed by the promotion (promoteSelect).
func stagedSchema(live bigquery.Schema) bigquery.Schema {
	out := make(bigquery.Schema, len(live))
	for i, f := range live {
		c := *f
		if c.Type == bigquery.JSONFieldType {
			c.Type = bigquery.StringFieldType
		}
		out[i] = &c
	}
	return out
}

// hasJSON says whether a schema has a JSON field.
func hasJSON(s bigquery.Schema) bool {
	for _, f := range s {
		if f.Type == bigquery.JSONFieldType {
			return true
		}
	}
	return false
}

// columnDefs renders a schema as the column list of a CREATE TABLE
// statement: "`name` TYPE[(p, s)] [NOT NULL]", so a table made by a query
// keeps the manifest's types, precision, scale and modes.
func columnDefs(s bigquery.Schema) string {
	defs := make([]string, len(s))
	for i, f := range s {
		d := quoteIdent(f.Name) + " " + sqlTypeParams(f)
		if f.Required {
			d += " NOT NULL"
		}
		defs[i] = d
	}
	return strings.Join(defs, ", ")
}

// sqlTypeParams is sqlType with a decimal's precision and scale.
func sqlTypeParams(f *bigquery.FieldSchema) string {
	t := sqlType(&bigquery.FieldSchema{Type: f.Type})
	if f.Precision != 0 || f.Scale != 0 {
		t += fmt.Sprintf("(%d, %d)", f.Precision, f.Scale)
	}
	if f.Repeated {
		return "ARRAY<" + t + ">"
	}
	return t
}
