package bigquery

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/parquet-go/parquet-go"

	"github.com/tenantlake/tenantlake/lake"
	"github.com/tenantlake/tenantlake/writers"
)

// Stream formats (Config.StreamFormat): how a part of a lake that is not on
// GCS is sent through the load API.
const (
	// StreamParquet sends the part's Parquet bytes as they are. The default,
	// for BigQuery.
	StreamParquet = "parquet"
	// StreamJSON decodes the part and sends newline-delimited JSON, each
	// value encoded for its column's BigQuery type (jsonEncoderFor). For the
	// emulator, whose Parquet import corrupts dates, times, timestamps and
	// decimals while its JSON import decodes values by the table's types.
	StreamJSON = "json"
)

// jsonEncoder appends one non-null Parquet value as the JSON value that a
// BigQuery NEWLINE_DELIMITED_JSON load reads into the column's type.
type jsonEncoder func(buf []byte, v parquet.Value) ([]byte, error)

// jsonEncoderFor returns the encoder for a manifest column, by its BigQuery
// type:
//
//	INT64                a string of the decimal integer (JSON numbers beyond
//	                     2^53 are not exact in BigQuery's JSON reader)
//	FLOAT64              a number in Go's shortest form; NaN, +Inf, -Inf as
//	                     the strings "NaN", "Infinity", "-Infinity"
//	NUMERIC, BIGNUMERIC  a string of the exact decimal, scale digits after
//	                     the point
//	STRING               a string
//	BYTES                a string, base64 (standard, padded)
//	JSON                 a string holding the value's exact JSON text (JSON
//	                     columns are staged as STRING, see stagedSchema)
//	BOOL                 true or false
//	DATE                 "YYYY-MM-DD"
//	DATETIME             "YYYY-MM-DD HH:MM:SS.ffffff"
//	TIMESTAMP            "YYYY-MM-DD HH:MM:SS.ffffff+00:00"
//	TIME                 "HH:MM:SS.ffffff"
func jsonEncoderFor(c lake.Column) (jsonEncoder, error) {
	base, _, _ := strings.Cut(c.BigQueryType, "(")
	switch base {
	case "INT64":
		return func(buf []byte, v parquet.Value) ([]byte, error) {
			var x int64
			switch v.Kind() {
			case parquet.Int32:
				x = int64(v.Int32())
			case parquet.Int64:
				x = v.Int64()
			default:
				return nil, fmt.Errorf("INT64 column holds Parquet %s", v.Kind())
			}
			buf = append(buf, '"')
			buf = strconv.AppendInt(buf, x, 10)
			return append(buf, '"'), nil
		}, nil
	case "FLOAT64":
		return func(buf []byte, v parquet.Value) ([]byte, error) {
			var f float64
			switch v.Kind() {
			case parquet.Float:
				f = float64(v.Float())
			case parquet.Double:
				f = v.Double()
			default:
				return nil, fmt.Errorf("FLOAT64 column holds Parquet %s", v.Kind())
			}
			switch {
			case math.IsNaN(f):
				return append(buf, `"NaN"`...), nil
			case math.IsInf(f, 1):
				return append(buf, `"Infinity"`...), nil
			case math.IsInf(f, -1):
				return append(buf, `"-Infinity"`...), nil
			}
			return strconv.AppendFloat(buf, f, 'g', -1, 64), nil
		}, nil
	case "NUMERIC", "BIGNUMERIC":
		scale, err := numericScale(c.BigQueryType)
		if err != nil {
			return nil, err
		}
		return func(buf []byte, v parquet.Value) ([]byte, error) {
			var i *big.Int
			switch v.Kind() {
			case parquet.Int32:
				i = big.NewInt(int64(v.Int32()))
			case parquet.Int64:
				i = big.NewInt(v.Int64())
			case parquet.FixedLenByteArray, parquet.ByteArray:
				i = twosComplement(v.ByteArray())
			default:
				return nil, fmt.Errorf("%s column holds Parquet %s", c.BigQueryType, v.Kind())
			}
			buf = append(buf, '"')
			buf = appendDecimal(buf, i, scale)
			return append(buf, '"'), nil
		}, nil
	case "STRING":
		return func(buf []byte, v parquet.Value) ([]byte, error) { return appendJSONString(buf, v.ByteArray()) }, nil
	case "BYTES":
		return func(buf []byte, v parquet.Value) ([]byte, error) {
			buf = append(buf, '"')
			buf = base64.StdEncoding.AppendEncode(buf, v.ByteArray())
			return append(buf, '"'), nil
		}, nil
	case "JSON":
		return func(buf []byte, v parquet.Value) ([]byte, error) {
			if !json.Valid(v.ByteArray()) {
				return nil, errors.New("JSON value is not valid JSON")
			}
			return appendJSONString(buf, v.ByteArray())
		}, nil
	case "BOOL":
		return func(buf []byte, v parquet.Value) ([]byte, error) { return strconv.AppendBool(buf, v.Boolean()), nil }, nil
	case "DATE":
		return func(buf []byte, v parquet.Value) ([]byte, error) {
			return appendTime(buf, time.Unix(int64(v.Int32())*86400, 0), "2006-01-02"), nil
		}, nil
	case "DATETIME":
		return func(buf []byte, v parquet.Value) ([]byte, error) {
			return appendTime(buf, time.UnixMicro(v.Int64()), "2006-01-02 15:04:05.000000"), nil
		}, nil
	case "TIMESTAMP":
		return func(buf []byte, v parquet.Value) ([]byte, error) {
			return appendTime(buf, time.UnixMicro(v.Int64()), "2006-01-02 15:04:05.000000+00:00"), nil
		}, nil
	case "TIME":
		return func(buf []byte, v parquet.Value) ([]byte, error) {
			us := v.Int64()
			if us < 0 || us >= 24*3600e6 {
				return nil, fmt.Errorf("TIME value %d µs is outside a day", us)
			}
			return appendTime(buf, time.UnixMicro(us), "15:04:05.000000"), nil
		}, nil
	}
	return nil, fmt.Errorf("BigQuery type %q is not supported", c.BigQueryType)
}

// appendTime appends t, in UTC, quoted in layout.
func appendTime(buf []byte, t time.Time, layout string) []byte {
	buf = append(buf, '"')
	buf = t.UTC().AppendFormat(buf, layout)
	return append(buf, '"')
}

// numericScale returns s of "NUMERIC(p,s)" or "BIGNUMERIC(p,s)".
func numericScale(bqType string) (int, error) {
	_, params, _ := strings.Cut(bqType, "(")
	params, ok := strings.CutSuffix(params, ")")
	_, s, ok2 := strings.Cut(params, ",")
	scale, err := strconv.Atoi(strings.TrimSpace(s))
	if !ok || !ok2 || err != nil || scale < 0 {
		return 0, fmt.Errorf("BigQuery type %q: want NUMERIC(p,s)", bqType)
	}
	return scale, nil
}

// twosComplement decodes a big-endian two's complement integer.
func twosComplement(b []byte) *big.Int {
	i := new(big.Int).SetBytes(b)
	if len(b) > 0 && b[0]&0x80 != 0 {
		i.Sub(i, new(big.Int).Lsh(big.NewInt(1), uint(len(b))*8))
	}
	return i
}

// appendDecimal appends the unscaled integer i times 10^-scale as a plain
// decimal with exactly scale fraction digits.
func appendDecimal(buf []byte, i *big.Int, scale int) []byte {
	if i.Sign() < 0 {
		buf = append(buf, '-')
	}
	digits := new(big.Int).Abs(i).Text(10)
	if scale == 0 {
		return append(buf, digits...)
	}
	if len(digits) <= scale {
		digits = strings.Repeat("0", scale+1-len(digits)) + digits
	}
	buf = append(buf, digits[:len(digits)-scale]...)
	buf = append(buf, '.')
	return append(buf, digits[len(digits)-scale:]...)
}

// appendJSONString appends s as a JSON string. s must be UTF-8: a string
// that is not would change on its way into BigQuery.
func appendJSONString(buf, s []byte) ([]byte, error) {
	if !utf8.Valid(s) {
		return nil, errors.New("STRING value is not valid UTF-8")
	}
	const hex = "0123456789abcdef"
	buf = append(buf, '"')
	for _, c := range s {
		switch {
		case c == '"' || c == '\\':
			buf = append(buf, '\\', c)
		case c == '\n':
			buf = append(buf, '\\', 'n')
		case c == '\r':
			buf = append(buf, '\\', 'r')
		case c == '\t':
			buf = append(buf, '\\', 't')
		case c < 0x20:
			buf = append(buf, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			buf = append(buf, c)
		}
	}
	return append(buf, '"'), nil
}

// ndjsonPart streams the rows of one Parquet part as newline-delimited JSON
// objects, one per row, keyed by the manifest's column names: an io.Reader
// that encodes a batch of rows each time its buffer runs dry. Memory is
// bounded by one batch and the Parquet reader's page buffers, whatever the
// part's size.
type ndjsonPart struct {
	path  string
	table *lake.Table
	enc   []jsonEncoder
	keys  [][]byte // `{"name":` for the first column, `,"name":` for the others
	rows  *writers.PartRows

	out  []byte // encoded bytes not yet read
	done bool
	err  error
}

// ndjsonBatchRows and ndjsonBufferSize bound what one fill encodes.
const (
	ndjsonBatchRows  = 256
	ndjsonBufferSize = 256 << 10
)

// openNDJSONPart opens part f of table t for streaming as NDJSON. The
// caller closes it.
func openNDJSONPart(ctx context.Context, lk *lake.Lake, t *lake.Table, f lake.File) (*ndjsonPart, error) {
	p := &ndjsonPart{path: f.Path, table: t, rows: writers.NewPartRows(ctx, lk, t, []lake.File{f}, ndjsonBatchRows)}
	for i, c := range t.Columns {
		enc, err := jsonEncoderFor(c)
		if err != nil {
			return nil, fmt.Errorf("table %s column %s: %w", t.Name, c.Name, err)
		}
		p.enc = append(p.enc, enc)
		key, err := appendJSONString([]byte{','}, []byte(c.Name))
		if err != nil {
			return nil, fmt.Errorf("table %s column %s: %w", t.Name, c.Name, err)
		}
		if i == 0 {
			key[0] = '{'
		}
		p.keys = append(p.keys, append(key, ':'))
	}
	return p, nil
}

// Read implements io.Reader.
func (p *ndjsonPart) Read(b []byte) (int, error) {
	for len(p.out) == 0 {
		if p.err != nil {
			return 0, p.err
		}
		if p.done {
			return 0, io.EOF
		}
		if err := p.fill(); err != nil {
			p.err = fmt.Errorf("part %s: %w", p.path, err)
		}
	}
	n := copy(b, p.out)
	p.out = p.out[n:]
	return n, nil
}

// fill encodes rows until the buffer holds ndjsonBufferSize bytes or the
// rows end.
func (p *ndjsonPart) fill() error {
	buf := p.out[:0]
	for len(buf) < ndjsonBufferSize {
		ok, err := p.rows.Next()
		if err != nil {
			return err
		}
		if !ok {
			p.done = true
			break
		}
		if buf, err = p.appendRow(buf, p.rows.Row()); err != nil {
			return err
		}
	}
	p.out = buf
	return nil
}

// appendRow appends one row as a JSON object and a newline; NULL is null.
func (p *ndjsonPart) appendRow(buf []byte, row parquet.Row) ([]byte, error) {
	leaves := p.rows.Leaf()
	for j, leaf := range leaves {
		if leaf >= len(row) {
			return nil, fmt.Errorf("column %s: row has %d values", p.table.Columns[j].Name, len(row))
		}
		buf = append(buf, p.keys[j]...)
		v := row[leaf]
		if v.IsNull() {
			buf = append(buf, "null"...)
			continue
		}
		var err error
		if buf, err = p.enc[j](buf, v); err != nil {
			return nil, fmt.Errorf("column %s: %w", p.table.Columns[j].Name, err)
		}
	}
	if len(leaves) == 0 {
		buf = append(buf, '{')
	}
	return append(buf, '}', '\n'), nil
}

// Close releases any open row group.
func (p *ndjsonPart) Close() error { return p.rows.Close() }
