package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/parquet-go/parquet-go"
	"github.com/tenantlake/tenantlake/lake"
)

// pgType returns the warehouse column type for a BigQuery type, following
// docs/types.md: INT64 bigint, FLOAT64 double precision, NUMERIC(p,s) and
// BIGNUMERIC(p,s) numeric(p,s), STRING text, BYTES bytea, JSON jsonb, BOOL
// boolean, DATE date, DATETIME timestamp, TIMESTAMP timestamptz, TIME time.
func pgType(bqType string) (string, error) {
	base, params, _ := strings.Cut(bqType, "(")
	switch base {
	case "INT64":
		return "bigint", nil
	case "FLOAT64":
		return "double precision", nil
	case "NUMERIC", "BIGNUMERIC":
		if params == "" {
			return "numeric", nil
		}
		p, s, err := precisionScale(bqType)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("numeric(%d,%d)", p, s), nil
	case "STRING":
		return "text", nil
	case "BYTES":
		return "bytea", nil
	case "JSON":
		return "jsonb", nil
	case "BOOL":
		return "boolean", nil
	case "DATE":
		return "date", nil
	case "DATETIME":
		return "timestamp without time zone", nil
	case "TIMESTAMP":
		return "timestamp with time zone", nil
	case "TIME":
		return "time without time zone", nil
	}
	return "", fmt.Errorf("BigQuery type %q has no warehouse type", bqType)
}

// precisionScale parses "NUMERIC(p,s)" or "BIGNUMERIC(p,s)".
func precisionScale(bqType string) (p, s int, err error) {
	_, params, ok := strings.Cut(bqType, "(")
	params, ok2 := strings.CutSuffix(params, ")")
	ps, ss, ok3 := strings.Cut(params, ",")
	if !ok || !ok2 || !ok3 {
		return 0, 0, fmt.Errorf("BigQuery type %q: want NUMERIC(p,s)", bqType)
	}
	if p, err = strconv.Atoi(strings.TrimSpace(ps)); err == nil {
		s, err = strconv.Atoi(strings.TrimSpace(ss))
	}
	if err != nil || p < 1 || s < 0 || s > p {
		return 0, 0, fmt.Errorf("BigQuery type %q: bad precision or scale", bqType)
	}
	return p, s, nil
}

// converter turns one non-null Parquet value into a value pgx encodes for the
// column's warehouse type.
type converter func(v parquet.Value) (any, error)

// converterFor returns the converter for a manifest column.
func converterFor(c lake.Column) (converter, error) {
	base, _, _ := strings.Cut(c.BigQueryType, "(")
	switch base {
	case "INT64":
		return func(v parquet.Value) (any, error) {
			switch v.Kind() {
			case parquet.Int32:
				return int64(v.Int32()), nil
			case parquet.Int64:
				return v.Int64(), nil
			}
			return nil, fmt.Errorf("INT64 column holds Parquet %s", v.Kind())
		}, nil
	case "FLOAT64":
		return func(v parquet.Value) (any, error) {
			switch v.Kind() {
			case parquet.Float:
				return float64(v.Float()), nil
			case parquet.Double:
				return v.Double(), nil
			}
			return nil, fmt.Errorf("FLOAT64 column holds Parquet %s", v.Kind())
		}, nil
	case "NUMERIC", "BIGNUMERIC":
		scale := 0
		if strings.Contains(c.BigQueryType, "(") {
			_, s, err := precisionScale(c.BigQueryType)
			if err != nil {
				return nil, err
			}
			scale = s
		}
		return func(v parquet.Value) (any, error) {
			var i big.Int
			switch v.Kind() {
			case parquet.Int32:
				i.SetInt64(int64(v.Int32()))
			case parquet.Int64:
				i.SetInt64(v.Int64())
			case parquet.FixedLenByteArray, parquet.ByteArray:
				twosComplement(&i, v.ByteArray())
			default:
				return nil, fmt.Errorf("%s column holds Parquet %s", c.BigQueryType, v.Kind())
			}
			return pgtype.Numeric{Int: &i, Exp: int32(-scale), Valid: true}, nil
		}, nil
	case "STRING", "JSON":
		return func(v parquet.Value) (any, error) { return string(v.ByteArray()), nil }, nil
	case "BYTES":
		// The bytes stay valid until the next batch of rows is read, after
		// pgx has encoded them.
		return func(v parquet.Value) (any, error) { return v.ByteArray(), nil }, nil
	case "BOOL":
		return func(v parquet.Value) (any, error) { return v.Boolean(), nil }, nil
	case "DATE":
		return func(v parquet.Value) (any, error) {
			return pgtype.Date{Time: time.Unix(int64(v.Int32())*86400, 0).UTC(), Valid: true}, nil
		}, nil
	case "DATETIME":
		return func(v parquet.Value) (any, error) {
			return pgtype.Timestamp{Time: time.UnixMicro(v.Int64()).UTC(), Valid: true}, nil
		}, nil
	case "TIMESTAMP":
		return func(v parquet.Value) (any, error) {
			return pgtype.Timestamptz{Time: time.UnixMicro(v.Int64()).UTC(), Valid: true}, nil
		}, nil
	case "TIME":
		return func(v parquet.Value) (any, error) {
			return pgtype.Time{Microseconds: v.Int64(), Valid: true}, nil
		}, nil
	}
	return nil, fmt.Errorf("BigQuery type %q is not supported", c.BigQueryType)
}

// twosComplement sets i to the big-endian two's complement integer b.
func twosComplement(i *big.Int, b []byte) {
	i.SetBytes(b)
	if len(b) > 0 && b[0]&0x80 != 0 {
		i.Sub(i, new(big.Int).Lsh(big.NewInt(1), uint(len(b))*8))
	}
}

// partSource streams the rows of one table's Parquet parts to pgx's CopyFrom,
// a batch of rows at a time: memory is bounded by one batch and the Parquet
// reader's page buffers, whatever the table's size.
type partSource struct {
	ctx   context.Context
	lk    *lake.Lake
	table *lake.Table
	conv  []converter

	files    []lake.File
	groups   []parquet.RowGroup
	leaf     []int // leaf column index in the current file, per manifest column
	rows     parquet.Rows
	batch    []parquet.Row
	n, i     int
	vals     []any
	lakeRows int64 // rows the parts' footers hold
	err      error
}

const batchRows = 512

func newPartSource(ctx context.Context, lk *lake.Lake, t *lake.Table) (*partSource, error) {
	s := &partSource{ctx: ctx, lk: lk, table: t, files: t.Files, batch: make([]parquet.Row, batchRows), vals: make([]any, len(t.Columns))}
	for _, c := range t.Columns {
		conv, err := converterFor(c)
		if err != nil {
			return nil, fmt.Errorf("table %s column %s: %w", t.Name, c.Name, err)
		}
		s.conv = append(s.conv, conv)
	}
	return s, nil
}

// Next advances to the next row, opening parts and row groups as needed.
func (s *partSource) Next() bool {
	for s.err == nil {
		if s.i < s.n {
			s.err = s.convert(s.batch[s.i])
			s.i++
			return s.err == nil
		}
		switch {
		case s.rows != nil:
			n, err := s.rows.ReadRows(s.batch)
			s.n, s.i = n, 0
			if errors.Is(err, io.EOF) {
				s.err = s.closeRows()
			} else if err != nil {
				s.err = fmt.Errorf("read rows: %w", err)
			}
		case len(s.groups) > 0:
			s.rows = s.groups[0].Rows()
			s.groups = s.groups[1:]
		case len(s.files) > 0:
			s.err = s.openFile(s.files[0])
			s.files = s.files[1:]
		default:
			return false
		}
	}
	return false
}

func (s *partSource) closeRows() error {
	err := s.rows.Close()
	s.rows = nil
	if err != nil {
		return fmt.Errorf("close row group: %w", err)
	}
	return nil
}

func (s *partSource) openFile(f lake.File) error {
	r, err := s.lk.OpenPart(s.ctx, f)
	if err != nil {
		return err
	}
	pf, err := parquet.OpenFile(r, r.Size(), parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true), parquet.ReadBufferSize(1<<20))
	if err != nil {
		return fmt.Errorf("open part %s: %w", f.Path, err)
	}
	s.lakeRows += pf.NumRows()
	s.leaf = s.leaf[:0]
	for _, c := range s.table.Columns {
		lc, ok := pf.Schema().Lookup(c.Name)
		if !ok {
			return fmt.Errorf("part %s has no column %s", f.Path, c.Name)
		}
		s.leaf = append(s.leaf, lc.ColumnIndex)
	}
	s.groups = pf.RowGroups()
	return nil
}

func (s *partSource) convert(row parquet.Row) error {
	for j, leaf := range s.leaf {
		if leaf >= len(row) {
			return fmt.Errorf("column %s: row has %d values", s.table.Columns[j].Name, len(row))
		}
		v := row[leaf]
		if v.IsNull() {
			s.vals[j] = nil
			continue
		}
		x, err := s.conv[j](v)
		if err != nil {
			return fmt.Errorf("column %s: %w", s.table.Columns[j].Name, err)
		}
		s.vals[j] = x
	}
	return nil
}

// Values returns the current row.
func (s *partSource) Values() ([]any, error) { return s.vals, s.err }

// Err returns the error that stopped Next, if any.
func (s *partSource) Err() error {
	if s.err != nil && s.rows != nil {
		s.rows.Close()
		s.rows = nil
	}
	return s.err
}
