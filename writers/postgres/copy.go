package postgres

import (
	"context"
	"encoding/binary"
	"errors"
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
				return appendNumericInt(buf, int64(v.Int32()), scale), nil
			case parquet.Int64:
				return appendNumericInt(buf, v.Int64(), scale), nil
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

// pow10 holds 10^0 to 10^19 (the largest power of ten below 2^64).
var pow10 = func() (p [20]uint64) {
	p[0] = 1
	for i := 1; i < len(p); i++ {
		p[i] = p[i-1] * 10
	}
	return p
}()

// appendNumericInt appends x times 10^-scale as appendNumeric does, with no
// allocation (the COPY of a numeric column makes one such call per value):
// the base-10000 digits are computed from the integer itself.
func appendNumericInt(buf []byte, x int64, scale int) []byte {
	neg := x < 0
	abs := uint64(x)
	if neg {
		abs = -abs // two's complement: right for math.MinInt64 too
	}
	pad := (4 - scale%4) % 4
	if scale+pad >= len(pow10) {
		// The padded fraction would not fit in a uint64: rare, use the
		// general path.
		_, digits := absDigits(x)
		return appendNumeric(buf, neg, digits, scale)
	}
	intPart, frac := abs, uint64(0)
	if scale > 0 {
		intPart, frac = abs/pow10[scale], abs%pow10[scale]*pow10[pad]
	}
	// groups[n:] are the digits, most significant first.
	var groups [12]uint16
	n := len(groups)
	for i := 0; i < (scale+pad)/4; i++ {
		n--
		groups[n] = uint16(frac % 10000)
		frac /= 10000
	}
	fracGroups := len(groups) - n
	for intPart > 0 {
		n--
		groups[n] = uint16(intPart % 10000)
		intPart /= 10000
	}
	weight := len(groups) - n - fracGroups - 1
	end := len(groups)
	for n < end && groups[n] == 0 {
		n, weight = n+1, weight-1
	}
	for end > n && groups[end-1] == 0 {
		end--
	}
	var sign uint16
	if n == end {
		weight = 0
	} else if neg {
		sign = 0x4000
	}
	buf = binary.BigEndian.AppendUint16(buf, uint16(end-n))
	buf = binary.BigEndian.AppendUint16(buf, uint16(int16(weight)))
	buf = binary.BigEndian.AppendUint16(buf, sign)
	buf = binary.BigEndian.AppendUint16(buf, uint16(scale))
	for _, g := range groups[n:end] {
		buf = binary.BigEndian.AppendUint16(buf, g)
	}
	return buf
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

// partSource encodes the rows of one table's Parquet parts as PostgreSQL's
// binary COPY format, a chunk of about bufferSize bytes at a time. Memory is
// bounded by the chunks in flight (see copyTee) and the Parquet reader's
// page buffers, whatever the table's size.
type partSource struct {
	table *lake.Table
	enc   []encoder
	rows  *writers.PartRows

	started bool // the COPY header is written
	done    bool // the trailer is written
}

const (
	batchRows  = 512
	bufferSize = 256 << 10
	// teeDepth is how many chunks each COPY may lag behind the encoder.
	teeDepth = 4
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

// chunk encodes rows into a new buffer until it holds bufferSize bytes or
// the rows end; after the trailer it returns io.EOF.
func (s *partSource) chunk() ([]byte, error) {
	if s.done {
		return nil, io.EOF
	}
	buf := make([]byte, 0, bufferSize+bufferSize/4)
	if !s.started {
		buf, s.started = append(buf, copyHeader...), true
	}
	for len(buf) < bufferSize {
		ok, err := s.rows.Next()
		if err != nil {
			return nil, err
		}
		if !ok {
			buf, s.done = append(buf, 0xff, 0xff), true // trailer
			break
		}
		if buf, err = s.appendRow(buf, s.rows.Row()); err != nil {
			return nil, err
		}
	}
	return buf, nil
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

// copyTee runs a partSource in a goroutine of its own (decoding Parquet
// and encoding COPY data while the connections send the chunks before)
// and hands every chunk to each of its readers, one per COPY. A reader
// that stops (its COPY failed) is skipped from then on; the others go on.
// Chunks are never written after they are handed out.
type copyTee struct {
	src  *partSource
	outs []*teeReader
	done chan struct{} // closed when the encoding goroutine has ended
	err  error         // the source's error; read after done, or after a reader's channel closes
}

// teeReader is one COPY's io.Reader of a copyTee.
type teeReader struct {
	tee      *copyTee
	ch       chan []byte   // closed by the encoder after the last chunk
	quit     chan struct{} // closed by stop
	quitOnce sync.Once
	cur      []byte
}

// newCopyTee starts encoding src for n readers. The caller stops every
// reader (stop) once its COPY has returned, then calls wait.
func newCopyTee(src *partSource, n int) *copyTee {
	t := &copyTee{src: src, done: make(chan struct{})}
	for range n {
		t.outs = append(t.outs, &teeReader{tee: t, ch: make(chan []byte, teeDepth), quit: make(chan struct{})})
	}
	go t.run()
	return t
}

func (t *copyTee) run() {
	defer close(t.done)
	defer func() {
		for _, o := range t.outs {
			close(o.ch)
		}
	}()
	for {
		buf, err := t.src.chunk()
		if err != nil {
			if err != io.EOF {
				t.err = err
			}
			return
		}
		alive := 0
		for _, o := range t.outs {
			select {
			case <-o.quit:
				continue
			default:
			}
			select {
			case o.ch <- buf:
				alive++
			case <-o.quit:
			}
		}
		if alive == 0 {
			t.err = errPendingStopped
			return
		}
	}
}

// wait waits for the encoding goroutine, once every reader is stopped, and
// returns the source's error (nil at the end of the rows).
func (t *copyTee) wait() error {
	<-t.done
	if errors.Is(t.err, errPendingStopped) {
		return nil
	}
	return t.err
}

// Read implements io.Reader.
func (r *teeReader) Read(p []byte) (int, error) {
	for len(r.cur) == 0 {
		buf, ok := <-r.ch
		if !ok {
			if r.tee.err != nil {
				return 0, r.tee.err
			}
			select {
			case <-r.quit:
				// Stopped before the end: never let a COPY see the
				// end of data it did not get whole.
				return 0, errPendingStopped
			default:
			}
			return 0, io.EOF
		}
		r.cur = buf
	}
	n := copy(p, r.cur)
	r.cur = r.cur[n:]
	return n, nil
}

// stop says the reader's COPY has returned (or must end): the encoder
// hands it nothing more.
func (r *teeReader) stop() { r.quitOnce.Do(func() { close(r.quit) }) }

// finish releases the open row group, if an error left one open. It is
// called once the tee's goroutine has ended.
func (s *partSource) finish() error { return s.rows.Close() }
