package postgres

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/big"
	"strconv"
	"strings"
	"sync"

	"github.com/parquet-go/parquet-go"
	"github.com/tenantlake/tenantlake/lake"
	"github.com/tenantlake/tenantlake/writers"
)

// pgType returns the warehouse column type for a BigQuery type, following
// docs/types.md: INT64 bigint, FLOAT64 double precision, NUMERIC(p,s) and
// BIGNUMERIC(p,s) numeric(p,s), STRING text, BYTES bytea, JSON jsonb, BOOL
// boolean, DATE date, DATETIME timestamp, TIMESTAMP timestamptz, TIME time.
func pgType(bqType string) (string, error) {
	base, _, _ := strings.Cut(bqType, "(")
	switch base {
	case "INT64":
		return "bigint", nil
	case "FLOAT64":
		return "double precision", nil
	case "NUMERIC", "BIGNUMERIC":
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

// encoder appends one non-null Parquet value in PostgreSQL's binary format
// for the column's warehouse type (the value only, without its length).
type encoder func(buf []byte, v parquet.Value) ([]byte, error)

// PostgreSQL counts dates and timestamps from 2000-01-01, Parquet from 1970-01-01.
const (
	pgEpochDays   = 10957
	pgEpochMicros = 946684800000000
)

// encoderFor returns the encoder for a manifest column.
func encoderFor(c lake.Column) (encoder, error) {
	base, _, _ := strings.Cut(c.BigQueryType, "(")
	switch base {
	case "INT64":
		return func(buf []byte, v parquet.Value) ([]byte, error) {
			switch v.Kind() {
			case parquet.Int32:
				return binary.BigEndian.AppendUint64(buf, uint64(int64(v.Int32()))), nil
			case parquet.Int64:
				return binary.BigEndian.AppendUint64(buf, uint64(v.Int64())), nil
			}
			return nil, fmt.Errorf("INT64 column holds Parquet %s", v.Kind())
		}, nil
	case "FLOAT64":
		return func(buf []byte, v parquet.Value) ([]byte, error) {
			switch v.Kind() {
			case parquet.Float:
				return binary.BigEndian.AppendUint64(buf, math.Float64bits(float64(v.Float()))), nil
			case parquet.Double:
				return binary.BigEndian.AppendUint64(buf, math.Float64bits(v.Double())), nil
			}
			return nil, fmt.Errorf("FLOAT64 column holds Parquet %s", v.Kind())
		}, nil
	case "NUMERIC", "BIGNUMERIC":
		_, scale, err := precisionScale(c.BigQueryType)
		if err != nil {
			return nil, err
		}
		return func(buf []byte, v parquet.Value) ([]byte, error) {
			var neg bool
			var digits string
			switch v.Kind() {
			case parquet.Int32:
				neg, digits = absDigits(int64(v.Int32()))
			case parquet.Int64:
				neg, digits = absDigits(v.Int64())
			case parquet.FixedLenByteArray, parquet.ByteArray:
				neg, digits = twosComplementDigits(v.ByteArray())
			default:
				return nil, fmt.Errorf("%s column holds Parquet %s", c.BigQueryType, v.Kind())
			}
			return appendNumeric(buf, neg, digits, scale), nil
		}, nil
	case "STRING", "BYTES":
		return func(buf []byte, v parquet.Value) ([]byte, error) { return append(buf, v.ByteArray()...), nil }, nil
	case "JSON":
		// jsonb's binary format: version 1, then the JSON text.
		return func(buf []byte, v parquet.Value) ([]byte, error) {
			return append(append(buf, 1), v.ByteArray()...), nil
		}, nil
	case "BOOL":
		return func(buf []byte, v parquet.Value) ([]byte, error) {
			if v.Boolean() {
				return append(buf, 1), nil
			}
			return append(buf, 0), nil
		}, nil
	case "DATE":
		return func(buf []byte, v parquet.Value) ([]byte, error) {
			return binary.BigEndian.AppendUint32(buf, uint32(v.Int32()-pgEpochDays)), nil
		}, nil
	case "DATETIME", "TIMESTAMP":
		return func(buf []byte, v parquet.Value) ([]byte, error) {
			return binary.BigEndian.AppendUint64(buf, uint64(v.Int64()-pgEpochMicros)), nil
		}, nil
	case "TIME":
		return func(buf []byte, v parquet.Value) ([]byte, error) {
			return binary.BigEndian.AppendUint64(buf, uint64(v.Int64())), nil
		}, nil
	}
	return nil, fmt.Errorf("BigQuery type %q is not supported", c.BigQueryType)
}

// absDigits returns whether x is negative and its absolute value in decimal.
func absDigits(x int64) (neg bool, digits string) {
	if x < 0 {
		return true, strconv.FormatUint(uint64(-(x+1))+1, 10)
	}
	return false, strconv.FormatUint(uint64(x), 10)
}

// twosComplementDigits decodes a big-endian two's complement integer.
func twosComplementDigits(b []byte) (neg bool, digits string) {
	if len(b) <= 8 {
		var x int64
		if len(b) > 0 && b[0]&0x80 != 0 {
			x = -1
		}
		for _, c := range b {
			x = x<<8 | int64(c)
		}
		return absDigits(x)
	}
	i := new(big.Int).SetBytes(b)
	if b[0]&0x80 != 0 {
		i.Sub(i, new(big.Int).Lsh(big.NewInt(1), uint(len(b))*8))
	}
	return i.Sign() < 0, new(big.Int).Abs(i).Text(10)
}

// appendNumeric appends PostgreSQL's binary numeric: the value is digits
// (absolute, in decimal) times 10^-scale, negative if neg. The format is
// ndigits, weight, sign and display scale (int16 each), then ndigits
// base-10000 digits, the first of weight 10000^weight.
func appendNumeric(buf []byte, neg bool, digits string, scale int) []byte {
	if len(digits) <= scale {
		digits = strings.Repeat("0", scale+1-len(digits)) + digits
	}
	intPart, frac := digits[:len(digits)-scale], digits[len(digits)-scale:]
	intPart = strings.Repeat("0", (4-len(intPart)%4)%4) + intPart
	frac += strings.Repeat("0", (4-len(frac)%4)%4)
	all := intPart + frac
	groups := make([]uint16, 0, len(all)/4)
	for i := 0; i < len(all); i += 4 {
		g := uint16(all[i]-'0')*1000 + uint16(all[i+1]-'0')*100 + uint16(all[i+2]-'0')*10 + uint16(all[i+3]-'0')
		groups = append(groups, g)
	}
	weight := len(intPart)/4 - 1
	for len(groups) > 0 && groups[0] == 0 {
		groups, weight = groups[1:], weight-1
	}
	for len(groups) > 0 && groups[len(groups)-1] == 0 {
		groups = groups[:len(groups)-1]
	}
	var sign uint16
	if len(groups) == 0 {
		weight = 0
	} else if neg {
		sign = 0x4000
	}
	buf = binary.BigEndian.AppendUint16(buf, uint16(len(groups)))
	buf = binary.BigEndian.AppendUint16(buf, uint16(int16(weight)))
	buf = binary.BigEndian.AppendUint16(buf, sign)
	buf = binary.BigEndian.AppendUint16(buf, uint16(scale))
	for _, g := range groups {
		buf = binary.BigEndian.AppendUint16(buf, g)
	}
	return buf
}

// partSource streams the rows of one table's Parquet parts as PostgreSQL's
// binary COPY format, for pgconn's CopyFrom: an io.Reader that encodes a
// batch of rows each time its buffer runs dry. Memory is bounded by one batch
// and the Parquet reader's page buffers, whatever the table's size.
type partSource struct {
	table *lake.Table
	enc   []encoder
	rows  *writers.PartRows

	// mu guards what pgconn's reading goroutine shares with the caller:
	// pgconn may return before that goroutine ends.
	mu  sync.Mutex
	err error // the error that stopped the rows, kept for the caller

	out     []byte // encoded bytes not yet read
	started bool   // the COPY header is written
	done    bool   // the trailer is written
}

const (
	batchRows  = 512
	bufferSize = 256 << 10
)

// copyHeader starts binary COPY data: signature, flags, header extension length.
var copyHeader = []byte("PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00")

func newPartSource(ctx context.Context, lk *lake.Lake, t *lake.Table) (*partSource, error) {
	s := &partSource{table: t, rows: writers.NewPartRows(ctx, lk, t, t.Files, batchRows)}
	for _, c := range t.Columns {
		enc, err := encoderFor(c)
		if err != nil {
			return nil, fmt.Errorf("table %s column %s: %w", t.Name, c.Name, err)
		}
		s.enc = append(s.enc, enc)
	}
	return s, nil
}

// Read implements io.Reader.
func (s *partSource) Read(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.out) == 0 {
		if s.done {
			return 0, io.EOF
		}
		if err := s.fill(); err != nil {
			s.err = err
			return 0, err
		}
	}
	n := copy(p, s.out)
	s.out = s.out[n:]
	return n, nil
}

// fill encodes rows until the buffer holds bufferSize bytes or the rows end.
func (s *partSource) fill() error {
	buf := s.out[:0]
	if !s.started {
		buf, s.started = append(buf, copyHeader...), true
	}
	for len(buf) < bufferSize {
		ok, err := s.rows.Next()
		if err != nil {
			return err
		}
		if !ok {
			buf, s.done = append(buf, 0xff, 0xff), true // trailer
			break
		}
		if buf, err = s.appendRow(buf, s.rows.Row()); err != nil {
			return err
		}
	}
	s.out = buf
	return nil
}

// appendRow appends one tuple: the field count, then each field's length
// (-1 for NULL) and value.
func (s *partSource) appendRow(buf []byte, row parquet.Row) ([]byte, error) {
	leaves := s.rows.Leaf()
	buf = binary.BigEndian.AppendUint16(buf, uint16(len(leaves)))
	for j, leaf := range leaves {
		if leaf >= len(row) {
			return nil, fmt.Errorf("column %s: row has %d values", s.table.Columns[j].Name, len(row))
		}
		v := row[leaf]
		if v.IsNull() {
			buf = binary.BigEndian.AppendUint32(buf, math.MaxUint32)
			continue
		}
		at := len(buf)
		buf = append(buf, 0, 0, 0, 0)
		var err error
		if buf, err = s.enc[j](buf, v); err != nil {
			return nil, fmt.Errorf("column %s: %w", s.table.Columns[j].Name, err)
		}
		binary.BigEndian.PutUint32(buf[at:], uint32(len(buf)-at-4))
	}
	return buf, nil
}

// finish releases the open row group, if an error left one open, and
// returns the error that stopped the rows, if any.
func (s *partSource) finish() (readErr, closeErr error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err, s.rows.Close()
}
