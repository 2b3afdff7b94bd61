package postgres

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/parquet-go/parquet-go"
)

// kind is how one column travels from PostgreSQL to Parquet (docs/types.md).
type kind int

const (
	kInt16       kind = iota // int2, binary
	kInt32                   // int4, binary
	kInt64                   // int8, binary
	kFloat32                 // float4, binary
	kFloat64                 // float8, binary
	kDecimal                 // numeric(p,s) within 38 digits: binary, to DECIMAL(p,s)
	kMoney                   // money, binary int64 minor units, to DECIMAL(19,2)
	kBool                    // bool, binary
	kString                  // any type by its text output
	kUUID                    // uuid, binary, to its canonical lower-case text
	kBytes                   // bytea, binary
	kJSON                    // json, jsonb, and to_json() of arrays and composites, text
	kDate                    // date, binary
	kTimestamp               // timestamp, binary (wall clock)
	kTimestamptz             // timestamptz, binary (instant)
	kTime                    // time, binary
)

// Well-known PostgreSQL type oids.
const (
	oidBool        = 16
	oidBytea       = 17
	oidInt8        = 20
	oidInt2        = 21
	oidInt4        = 23
	oidJSON        = 114
	oidFloat4      = 700
	oidFloat8      = 701
	oidMoney       = 790
	oidDate        = 1082
	oidTime        = 1083
	oidTimestamp   = 1114
	oidTimestamptz = 1184
	oidNumeric     = 1700
	oidUUID        = 2950
	oidJSONB       = 3802
)

// pgEpochDays and pgEpochMicros convert PostgreSQL's binary dates and
// timestamps (counted from 2000-01-01) to the Unix epoch Parquet counts from.
const (
	pgEpochDays   = 10957
	pgEpochMicros = 946684800000000
	// BigQuery's (and Parquet readers' common) range: years 1 to 9999.
	minDays   = -719162 // 0001-01-01
	maxDays   = 2932896 // 9999-12-31
	minMicros = -62135596800000000
	maxMicros = 253402300799999999
	dayMicros = 86400000000
)

// column is one source column of a table as the reader carries it.
type column struct {
	source     string // source column name
	name       string // destination name
	sourceType string // format_type()
	kind       kind
	nullable   bool
	policy     Policy
	prec       int // decimal precision (kDecimal, kMoney)
	scale      int // decimal scale (kDecimal, kMoney)
	flba       int // fixed length of the decimal's bytes
	toJSON     bool
	array      bool   // an array carried as JSON: its bounds are checked
	nested     string // SQL condition: an array inside the value does not start at 1 ("" if none can)
}

// classify decides how a column of base type oid (domains already resolved to
// their base type) with type modifier typmod travels. category and typtype are
// pg_type.typcategory and pg_type.typtype of the base type.
func (c *column) classify(oid uint32, typmod int32, category, typtype byte) {
	switch {
	case c.policy == PolicyString:
		// Every type's text output, arrays (with their bounds) and
		// composites included.
		c.kind = kString
		return
	case category == 'A':
		c.kind, c.toJSON, c.array = kJSON, true, true
		return
	case typtype == 'c':
		c.kind, c.toJSON = kJSON, true
		return
	}
	switch oid {
	case oidInt2:
		c.kind = kInt16
	case oidInt4:
		c.kind = kInt32
	case oidInt8:
		c.kind = kInt64
	case oidFloat4:
		c.kind = kFloat32
	case oidFloat8:
		c.kind = kFloat64
	case oidBool:
		c.kind = kBool
	case oidBytea:
		c.kind = kBytes
	case oidJSON, oidJSONB:
		c.kind = kJSON
	case oidDate:
		c.kind = kDate
	case oidTimestamp:
		c.kind = kTimestamp
	case oidTimestamptz:
		c.kind = kTimestamptz
	case oidTime:
		c.kind = kTime
	case oidUUID:
		c.kind = kUUID
	case oidMoney:
		c.kind, c.prec, c.scale = kMoney, 19, 2
		c.flba = decimalBytes(19)
	case oidNumeric:
		c.kind = kString
		if typmod < 4 {
			return // unconstrained: the exact text
		}
		p, s := int((typmod-4)>>16)&0xffff, int(((typmod-4)&0x7ff)^1024)-1024
		// PostgreSQL 15 allows a negative scale and a scale above the
		// precision; both fit an ordinary DECIMAL(P,S) with S <= P.
		if s < 0 {
			p, s = p-s, 0
		} else if s > p {
			p = s
		}
		if p-s <= 38 && s <= 38 {
			c.kind, c.prec, c.scale = kDecimal, p, s
			c.flba = decimalBytes(p)
		}
	default:
		c.kind = kString
	}
}

// decimalBytes is the smallest n such that n bytes of two's complement hold
// every integer of p decimal digits.
func decimalBytes(p int) int {
	limit := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(p)), nil)
	for n := 1; ; n++ {
		if new(big.Int).Lsh(big.NewInt(1), uint(8*n-1)).Cmp(limit) >= 0 {
			return n
		}
	}
}

// binaryResult says whether the column is fetched in PostgreSQL's binary
// format (else its text output).
func (c *column) binaryResult() bool {
	switch c.kind {
	case kString, kJSON:
		return false
	}
	return true
}

// defaultBounds matches array_dims() of an array whose every dimension
// starts at 1 (bracket classes, not backslashes, so the pattern means the
// same whatever standard_conforming_strings is).
const defaultBounds = `'^([[]1:[0-9]+[]])+$'`

// selectExpr is the column's expression in the SELECT list. An array whose
// bounds JSON cannot carry (a dimension not starting at 1) comes as "!"
// followed by its array_dims(), and a value with such an array inside it (a
// composite's field, an array's composite element) as "!nested"; no JSON
// text starts with "!". convert turns both into bad values.
func (c *column) selectExpr() string {
	id := quoteIdent(c.source)
	var when string
	if c.array {
		when = " WHEN array_dims(" + id + ") !~ " + defaultBounds + " THEN '!' || array_dims(" + id + ")"
	}
	if c.nested != "" {
		when += " WHEN " + c.nested + " THEN '!nested'"
	}
	if when != "" {
		return "CASE" + when + " ELSE to_json(" + id + ")::text END"
	}
	if c.toJSON {
		return "to_json(" + id + ")"
	}
	return id
}

// nestedBounds returns a SQL condition that is true when the column value
// expr, of base type oid (an array or a composite), holds below its top
// level an array with a dimension not starting at 1: in a composite's
// fields, or in the elements of an array, through domains, at any depth.
// It is "" when the type cannot hold such an array. (The column's own
// bounds are checked by selectExpr.) Only the catalog is read.
func nestedBounds(ctx context.Context, conn *pgx.Conn, expr string, oid uint32) (string, error) {
	return typeBounds(ctx, conn, expr, oid, 0, false)
}

// typeBounds is nestedBounds at depth; own says whether an array's own
// bounds count (every level but the column's).
func typeBounds(ctx context.Context, conn *pgx.Conn, expr string, oid uint32, depth int, own bool) (string, error) {
	if depth > 32 {
		return "", fmt.Errorf("type %d nests more than 32 levels", oid)
	}
	var (
		typtype, cat    string
		base, elem, rel uint32
	)
	err := conn.QueryRow(ctx, `SELECT typtype::text, typcategory::text, typbasetype, typelem, typrelid FROM pg_type WHERE oid = $1`, oid).
		Scan(&typtype, &cat, &base, &elem, &rel)
	if err != nil {
		return "", fmt.Errorf("type %d: %w", oid, err)
	}
	switch {
	case typtype == "d":
		return typeBounds(ctx, conn, expr, base, depth+1, own)
	case cat == "A" && elem != 0:
		var conds []string
		if own {
			conds = append(conds, "coalesce(array_dims("+expr+") !~ "+defaultBounds+", false)")
		}
		alias := fmt.Sprintf("e%d", depth)
		inner, err := typeBounds(ctx, conn, alias+".v", elem, depth+1, true)
		if err != nil {
			return "", err
		}
		if inner != "" {
			conds = append(conds, fmt.Sprintf("EXISTS (SELECT FROM (SELECT unnest(%s) AS v) %s WHERE %s)", expr, alias, inner))
		}
		return orConds(conds), nil
	case typtype == "c":
		rows, err := conn.Query(ctx, `SELECT attname, atttypid FROM pg_attribute WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped ORDER BY attnum`, rel)
		if err != nil {
			return "", fmt.Errorf("type %d: %w", oid, err)
		}
		type attr struct {
			name string
			oid  uint32
		}
		var attrs []attr
		for rows.Next() {
			var a attr
			if err := rows.Scan(&a.name, &a.oid); err != nil {
				return "", fmt.Errorf("type %d: %w", oid, err)
			}
			attrs = append(attrs, a)
		}
		if err := rows.Err(); err != nil {
			return "", fmt.Errorf("type %d: %w", oid, err)
		}
		var conds []string
		for _, a := range attrs {
			cond, err := typeBounds(ctx, conn, "("+expr+")."+quoteIdent(a.name), a.oid, depth+1, true)
			if err != nil {
				return "", err
			}
			if cond != "" {
				conds = append(conds, cond)
			}
		}
		return orConds(conds), nil
	}
	return "", nil
}

func orConds(conds []string) string {
	switch len(conds) {
	case 0:
		return ""
	case 1:
		return conds[0]
	}
	return "(" + strings.Join(conds, " OR ") + ")"
}

// node is the column's Parquet schema node.
func (c *column) node() parquet.Node {
	var n parquet.Node
	switch c.kind {
	case kInt16:
		n = parquet.Int(16)
	case kInt32:
		n = parquet.Int(32)
	case kInt64:
		n = parquet.Int(64)
	case kFloat32:
		n = parquet.Leaf(parquet.FloatType)
	case kFloat64:
		n = parquet.Leaf(parquet.DoubleType)
	case kDecimal, kMoney:
		n = parquet.Decimal(c.scale, c.prec, parquet.FixedLenByteArrayType(c.flba))
	case kBool:
		n = parquet.Leaf(parquet.BooleanType)
	case kString, kUUID:
		n = parquet.String()
	case kBytes:
		n = parquet.Leaf(parquet.ByteArrayType)
	case kJSON:
		n = parquet.JSON()
	case kDate:
		n = parquet.Date()
	case kTimestamp:
		n = parquet.TimestampAdjusted(parquet.Microsecond, false)
	case kTimestamptz:
		n = parquet.TimestampAdjusted(parquet.Microsecond, true)
	case kTime:
		n = parquet.TimeAdjusted(parquet.Microsecond, false)
	}
	if c.nullable {
		return parquet.Optional(n)
	}
	return parquet.Required(n)
}

// parquetType is the manifest's spelling of the column's Parquet type.
func (c *column) parquetType() string {
	switch c.kind {
	case kInt16:
		return "INT32 INT(16,signed)"
	case kInt32:
		return "INT32 INT(32,signed)"
	case kInt64:
		return "INT64"
	case kFloat32:
		return "FLOAT"
	case kFloat64:
		return "DOUBLE"
	case kDecimal, kMoney:
		return fmt.Sprintf("FIXED_LEN_BYTE_ARRAY(%d) DECIMAL(%d,%d)", c.flba, c.prec, c.scale)
	case kBool:
		return "BOOLEAN"
	case kString, kUUID:
		return "BYTE_ARRAY STRING"
	case kBytes:
		return "BYTE_ARRAY"
	case kJSON:
		return "BYTE_ARRAY JSON"
	case kDate:
		return "INT32 DATE"
	case kTimestamp:
		return "INT64 TIMESTAMP(MICROS,false)"
	case kTimestamptz:
		return "INT64 TIMESTAMP(MICROS,true)"
	case kTime:
		return "INT64 TIME(MICROS,false)"
	}
	panic("unreachable")
}

// bigQueryType is the column's BigQuery type.
func (c *column) bigQueryType() string {
	switch c.kind {
	case kInt16, kInt32, kInt64:
		return "INT64"
	case kFloat32, kFloat64:
		return "FLOAT64"
	case kDecimal, kMoney:
		if c.scale <= 9 && c.prec-c.scale <= 29 {
			return fmt.Sprintf("NUMERIC(%d,%d)", c.prec, c.scale)
		}
		return fmt.Sprintf("BIGNUMERIC(%d,%d)", c.prec, c.scale)
	case kBool:
		return "BOOL"
	case kString, kUUID:
		return "STRING"
	case kBytes:
		return "BYTES"
	case kJSON:
		return "JSON"
	case kDate:
		return "DATE"
	case kTimestamp:
		return "DATETIME"
	case kTimestamptz:
		return "TIMESTAMP"
	case kTime:
		return "TIME"
	}
	panic("unreachable")
}

// badValue is a value the column's Parquet type cannot carry exactly.
type badValue struct{ msg string }

func (e *badValue) Error() string { return e.msg }

// convert turns one non-NULL raw value into a Parquet value (without levels),
// updating the column's profile. Byte slices are copied into arena, which the
// caller resets once the values are written. A value the type cannot carry
// returns a *badValue.
func (c *column) convert(raw []byte, p *profile, arena *[]byte) (parquet.Value, error) {
	switch c.kind {
	case kInt16:
		if len(raw) != 2 {
			return parquet.Value{}, fmt.Errorf("int2 of %d bytes", len(raw))
		}
		v := int16(binary.BigEndian.Uint16(raw))
		p.addInt(int64(v))
		return parquet.Int32Value(int32(v)), nil
	case kInt32:
		if len(raw) != 4 {
			return parquet.Value{}, fmt.Errorf("int4 of %d bytes", len(raw))
		}
		v := int32(binary.BigEndian.Uint32(raw))
		p.addInt(int64(v))
		return parquet.Int32Value(v), nil
	case kInt64, kMoney:
		if len(raw) != 8 {
			return parquet.Value{}, fmt.Errorf("int8 of %d bytes", len(raw))
		}
		v := int64(binary.BigEndian.Uint64(raw))
		if c.kind == kInt64 {
			p.addInt(v)
			return parquet.Int64Value(v), nil
		}
		p.addDecimal(v, nil)
		return parquet.FixedLenByteArrayValue(appendDecimal(arena, v, nil, c.flba)), nil
	case kFloat32:
		if len(raw) != 4 {
			return parquet.Value{}, fmt.Errorf("float4 of %d bytes", len(raw))
		}
		v := math.Float32frombits(binary.BigEndian.Uint32(raw))
		p.addFloat(float64(v))
		return parquet.FloatValue(v), nil
	case kFloat64:
		if len(raw) != 8 {
			return parquet.Value{}, fmt.Errorf("float8 of %d bytes", len(raw))
		}
		v := math.Float64frombits(binary.BigEndian.Uint64(raw))
		p.addFloat(v)
		return parquet.DoubleValue(v), nil
	case kDecimal:
		small, bigv, err := decodeNumeric(raw, c.scale)
		if err != nil {
			return parquet.Value{}, err
		}
		if bigv != nil && bigv.BitLen() >= 8*c.flba {
			return parquet.Value{}, &badValue{fmt.Sprintf("value %s does not fit DECIMAL(%d,%d)", raw, c.prec, c.scale)}
		}
		p.addDecimal(small, bigv)
		return parquet.FixedLenByteArrayValue(appendDecimal(arena, small, bigv, c.flba)), nil
	case kBool:
		if len(raw) != 1 {
			return parquet.Value{}, fmt.Errorf("bool of %d bytes", len(raw))
		}
		v := raw[0] != 0
		p.addBool(v)
		return parquet.BooleanValue(v), nil
	case kString:
		p.addString(raw)
		return parquet.ByteArrayValue(appendBytes(arena, raw)), nil
	case kUUID:
		if len(raw) != 16 {
			return parquet.Value{}, fmt.Errorf("uuid of %d bytes", len(raw))
		}
		v := appendUUID(arena, raw)
		p.addString(v)
		return parquet.ByteArrayValue(v), nil
	case kBytes, kJSON:
		if c.toJSON && len(raw) > 0 && raw[0] == '!' {
			if string(raw) == "!nested" {
				return parquet.Value{}, &badValue{"an array inside the value has bounds not starting at 1, which JSON cannot carry (policy \"string\" carries the value's text output, bounds included)"}
			}
			return parquet.Value{}, &badValue{fmt.Sprintf("array with bounds %s: a JSON array cannot carry lower bounds other than 1 (policy \"string\" carries the array's text output, bounds included)", raw[1:])}
		}
		return parquet.ByteArrayValue(appendBytes(arena, raw)), nil
	case kDate:
		if len(raw) != 4 {
			return parquet.Value{}, fmt.Errorf("date of %d bytes", len(raw))
		}
		d := int64(int32(binary.BigEndian.Uint32(raw)))
		switch d {
		case math.MaxInt32:
			return parquet.Value{}, &badValue{"date infinity"}
		case math.MinInt32:
			return parquet.Value{}, &badValue{"date -infinity"}
		}
		d += pgEpochDays
		if d < minDays || d > maxDays {
			return parquet.Value{}, &badValue{fmt.Sprintf("date %s is outside years 1 to 9999", formatPGDate(d))}
		}
		p.addInt(d)
		return parquet.Int32Value(int32(d)), nil
	case kTimestamp, kTimestamptz:
		if len(raw) != 8 {
			return parquet.Value{}, fmt.Errorf("timestamp of %d bytes", len(raw))
		}
		us := int64(binary.BigEndian.Uint64(raw))
		switch us {
		case math.MaxInt64:
			return parquet.Value{}, &badValue{"timestamp infinity"}
		case math.MinInt64:
			return parquet.Value{}, &badValue{"timestamp -infinity"}
		}
		if us > math.MaxInt64-pgEpochMicros || us+pgEpochMicros < minMicros || us+pgEpochMicros > maxMicros {
			return parquet.Value{}, &badValue{"timestamp outside years 1 to 9999"}
		}
		us += pgEpochMicros
		p.addInt(us)
		return parquet.Int64Value(us), nil
	case kTime:
		if len(raw) != 8 {
			return parquet.Value{}, fmt.Errorf("time of %d bytes", len(raw))
		}
		us := int64(binary.BigEndian.Uint64(raw))
		if us < 0 || us >= dayMicros {
			return parquet.Value{}, &badValue{"time 24:00:00 is outside 00:00:00 to 23:59:59.999999"}
		}
		p.addInt(us)
		return parquet.Int64Value(us), nil
	}
	panic("unreachable")
}

// display renders a raw value for an error message (row keys).
func (c *column) display(raw []byte) string {
	if raw == nil {
		return "NULL"
	}
	switch c.kind {
	case kInt16:
		if len(raw) == 2 {
			return strconv.Itoa(int(int16(binary.BigEndian.Uint16(raw))))
		}
	case kInt32:
		if len(raw) == 4 {
			return strconv.Itoa(int(int32(binary.BigEndian.Uint32(raw))))
		}
	case kInt64:
		if len(raw) == 8 {
			return strconv.FormatInt(int64(binary.BigEndian.Uint64(raw)), 10)
		}
	case kString, kJSON:
		return strconv.Quote(string(raw))
	case kUUID:
		if len(raw) == 16 {
			var a []byte
			return string(appendUUID(&a, raw))
		}
	case kDecimal:
		if small, bigv, err := decodeNumeric(raw, c.scale); err == nil {
			if bigv == nil {
				bigv = big.NewInt(small)
			}
			return formatDecimal(bigv, c.scale)
		}
	case kDate:
		if len(raw) == 4 {
			return formatPGDate(int64(int32(binary.BigEndian.Uint32(raw))) + pgEpochDays)
		}
	case kTimestamp, kTimestamptz:
		if len(raw) == 8 {
			return time.UnixMicro(int64(binary.BigEndian.Uint64(raw)) + pgEpochMicros).UTC().Format("2006-01-02T15:04:05.999999")
		}
	}
	return fmt.Sprintf("%x", raw)
}

func formatPGDate(days int64) string {
	return time.Unix(days*86400, 0).UTC().Format("2006-01-02")
}

// Signs of PostgreSQL's binary numeric format.
const (
	numericPos  = 0x0000
	numericNeg  = 0x4000
	numericNaN  = 0xC000
	numericPInf = 0xD000
	numericNInf = 0xF000
)

// pow10 holds 10^0 .. 10^18.
var pow10 = func() (p [19]uint64) {
	p[0] = 1
	for i := 1; i < len(p); i++ {
		p[i] = p[i-1] * 10
	}
	return p
}()

// decodeNumeric decodes PostgreSQL's binary numeric (ndigits, weight, sign,
// dscale, then ndigits base-10000 digits) into its unscaled integer at scale:
// small when it fits an int64 (bigv nil), else bigv.
func decodeNumeric(raw []byte, scale int) (small int64, bigv *big.Int, err error) {
	if len(raw) < 8 {
		return 0, nil, fmt.Errorf("numeric of %d bytes", len(raw))
	}
	ndigits := int(int16(binary.BigEndian.Uint16(raw)))
	weight := int(int16(binary.BigEndian.Uint16(raw[2:])))
	sign := binary.BigEndian.Uint16(raw[4:])
	switch sign {
	case numericNaN:
		return 0, nil, &badValue{"numeric NaN has no decimal value"}
	case numericPInf:
		return 0, nil, &badValue{"numeric Infinity has no decimal value"}
	case numericNInf:
		return 0, nil, &badValue{"numeric -Infinity has no decimal value"}
	case numericPos, numericNeg:
	default:
		return 0, nil, fmt.Errorf("numeric sign %#x", sign)
	}
	if ndigits < 0 || len(raw) != 8+2*ndigits {
		return 0, nil, fmt.Errorf("numeric of %d bytes with %d digits", len(raw), ndigits)
	}
	// value = digits (as one integer) * 10^exp
	exp := 4*(weight-ndigits+1) + scale
	var v uint64
	fits := true
	for i := 0; i < ndigits; i++ {
		d := uint64(binary.BigEndian.Uint16(raw[8+2*i:]))
		if v > (math.MaxInt64-d)/10000 {
			fits = false
			break
		}
		v = v*10000 + d
	}
	if fits {
		switch {
		case exp >= 0 && exp < len(pow10) && (v == 0 || v <= math.MaxInt64/pow10[exp]):
			v *= pow10[exp]
		case exp < 0 && -exp < len(pow10) && v%pow10[-exp] == 0:
			v /= pow10[-exp]
		case exp < 0 && -exp >= len(pow10) && v == 0:
		default:
			fits = false
		}
	}
	if fits {
		if sign == numericNeg {
			return -int64(v), nil, nil
		}
		return int64(v), nil, nil
	}
	b := new(big.Int)
	for i := 0; i < ndigits; i++ {
		b.Mul(b, big.NewInt(10000))
		b.Add(b, big.NewInt(int64(binary.BigEndian.Uint16(raw[8+2*i:]))))
	}
	if exp >= 0 {
		b.Mul(b, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(exp)), nil))
	} else {
		q, r := new(big.Int).QuoRem(b, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(-exp)), nil), new(big.Int))
		if r.Sign() != 0 {
			return 0, nil, &badValue{fmt.Sprintf("numeric has more than %d fraction digits", scale)}
		}
		b = q
	}
	if sign == numericNeg {
		b.Neg(b)
	}
	return 0, b, nil
}

// appendUUID appends the canonical lower-case text of a 16-byte uuid.
func appendUUID(arena *[]byte, raw []byte) []byte {
	const hexDigits = "0123456789abcdef"
	start := len(*arena)
	for i, c := range raw {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			*arena = append(*arena, '-')
		}
		*arena = append(*arena, hexDigits[c>>4], hexDigits[c&15])
	}
	return (*arena)[start:len(*arena):len(*arena)]
}

// appendDecimal appends the big-endian two's complement of the unscaled value
// (small, or bigv when not nil) in n bytes to arena and returns them.
func appendDecimal(arena *[]byte, small int64, bigv *big.Int, n int) []byte {
	start := len(*arena)
	var fill byte
	if bigv == nil {
		if small < 0 {
			fill = 0xff
		}
		for i := 0; i < n-8; i++ {
			*arena = append(*arena, fill)
		}
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], uint64(small))
		if n >= 8 {
			*arena = append(*arena, b[:]...)
		} else {
			*arena = append(*arena, b[8-n:]...)
		}
		return (*arena)[start:]
	}
	v := bigv
	if v.Sign() < 0 {
		v = new(big.Int).Add(v, new(big.Int).Lsh(big.NewInt(1), uint(8*n)))
	}
	*arena = append(*arena, make([]byte, n)...)
	v.FillBytes((*arena)[start:])
	return (*arena)[start:]
}

func appendBytes(arena *[]byte, raw []byte) []byte {
	start := len(*arena)
	*arena = append(*arena, raw...)
	return (*arena)[start:len(*arena):len(*arena)]
}
