package diff

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/tenantlake/tenantlake/lake"
)

// kind is how a column's values are stored, from the manifest's Parquet type
// (docs/types.md, the mapping).
type kind int

const (
	kInt32 kind = iota + 1
	kInt64
	kFloat
	kDouble
	kDecimal
	kBool
	kString
	kBytes
	kJSON
	kDate
	kTimestamp   // wall clock
	kTimestamptz // instant
	kTime
)

// colType is one column's storage: its kind and, for decimals, the scale.
type colType struct {
	kind  kind
	scale int
}

// parseType reads a manifest's parquet_type. A type this build does not know
// is an error: a diff never guesses how to compare values.
func parseType(c lake.Column) (colType, error) {
	pt := c.ParquetType
	switch pt {
	case "INT32 INT(16,signed)", "INT32 INT(32,signed)":
		return colType{kind: kInt32}, nil
	case "INT64":
		return colType{kind: kInt64}, nil
	case "FLOAT":
		return colType{kind: kFloat}, nil
	case "DOUBLE":
		return colType{kind: kDouble}, nil
	case "BOOLEAN":
		return colType{kind: kBool}, nil
	case "BYTE_ARRAY STRING":
		return colType{kind: kString}, nil
	case "BYTE_ARRAY":
		return colType{kind: kBytes}, nil
	case "BYTE_ARRAY JSON":
		return colType{kind: kJSON}, nil
	case "INT32 DATE":
		return colType{kind: kDate}, nil
	case "INT64 TIMESTAMP(MICROS,false)":
		return colType{kind: kTimestamp}, nil
	case "INT64 TIMESTAMP(MICROS,true)":
		return colType{kind: kTimestamptz}, nil
	case "INT64 TIME(MICROS,false)":
		return colType{kind: kTime}, nil
	}
	var n, p, s int
	if _, err := fmt.Sscanf(pt, "FIXED_LEN_BYTE_ARRAY(%d) DECIMAL(%d,%d)", &n, &p, &s); err == nil &&
		fmt.Sprintf("FIXED_LEN_BYTE_ARRAY(%d) DECIMAL(%d,%d)", n, p, s) == pt && n > 0 && s >= 0 {
		return colType{kind: kDecimal, scale: s}, nil
	}
	return colType{}, fmt.Errorf("%w: column %s has Parquet type %q, which this build cannot compare", ErrUnsupported, c.Name, pt)
}

// appendRaw appends v's plain encoding (little-endian numbers, the bytes of
// byte arrays): two values are the same value exactly when these bytes are
// equal, for columns of the same type.
func appendRaw(dst []byte, v parquet.Value) []byte { return v.AppendBytes(dst) }

// text renders a raw value (appendRaw's bytes) of type t as text. For
// comparison across types (canon true) decimals drop trailing zeros of their
// fraction, so numeric(10,2) 1.50 and numeric(12,3) 1.500 are one value;
// for display (canon false) they keep their scale.
func text(t colType, raw []byte, canon bool) (string, error) {
	bad := func() (string, error) {
		return "", fmt.Errorf("%w: a value of %d bytes for its type", ErrCorruptValue, len(raw))
	}
	switch t.kind {
	case kInt32, kDate:
		if len(raw) != 4 {
			return bad()
		}
		v := int32(binary.LittleEndian.Uint32(raw))
		if t.kind == kDate {
			return time.Unix(int64(v)*86400, 0).UTC().Format("2006-01-02"), nil
		}
		return strconv.FormatInt(int64(v), 10), nil
	case kInt64, kTimestamp, kTimestamptz, kTime:
		if len(raw) != 8 {
			return bad()
		}
		v := int64(binary.LittleEndian.Uint64(raw))
		switch t.kind {
		case kTimestamp:
			return time.UnixMicro(v).UTC().Format("2006-01-02T15:04:05.000000"), nil
		case kTimestamptz:
			return time.UnixMicro(v).UTC().Format("2006-01-02T15:04:05.000000Z"), nil
		case kTime:
			return fmt.Sprintf("%02d:%02d:%02d.%06d", v/3600e6, v/60e6%60, v/1e6%60, v%1e6), nil
		}
		return strconv.FormatInt(v, 10), nil
	case kFloat:
		if len(raw) != 4 {
			return bad()
		}
		return strconv.FormatFloat(float64(math.Float32frombits(binary.LittleEndian.Uint32(raw))), 'g', -1, 64), nil
	case kDouble:
		if len(raw) != 8 {
			return bad()
		}
		return strconv.FormatFloat(math.Float64frombits(binary.LittleEndian.Uint64(raw)), 'g', -1, 64), nil
	case kBool:
		if len(raw) != 1 {
			return bad()
		}
		return strconv.FormatBool(raw[0] != 0), nil
	case kDecimal:
		if len(raw) == 0 {
			return bad()
		}
		return decimalText(raw, t.scale, canon), nil
	case kBytes:
		return `\x` + hex.EncodeToString(raw), nil
	}
	return string(raw), nil // string, JSON
}

// decimalText renders the big-endian two's complement unscaled integer raw
// with scale digits after the point.
func decimalText(raw []byte, scale int, trim bool) string {
	n := new(big.Int).SetBytes(raw)
	if raw[0]&0x80 != 0 {
		n.Sub(n, new(big.Int).Lsh(big.NewInt(1), uint(8*len(raw))))
	}
	neg := n.Sign() < 0
	digits := new(big.Int).Abs(n).String()
	if scale > 0 {
		if len(digits) <= scale {
			digits = strings.Repeat("0", scale-len(digits)+1) + digits
		}
		ip, fp := digits[:len(digits)-scale], digits[len(digits)-scale:]
		if trim {
			fp = strings.TrimRight(fp, "0")
		}
		digits = ip
		if fp != "" {
			digits += "." + fp
		}
	}
	if neg {
		return "-" + digits
	}
	return digits
}

// jsonValue renders a raw value of type t as JSON: integers and booleans as
// JSON numbers and booleans, finite floats as numbers, JSON columns as the
// JSON they hold, everything else (decimals, which must stay exact, text,
// bytes as \x hex, dates, times, NaN and infinities) as a JSON string of its
// text.
func jsonValue(t colType, raw []byte) (json.RawMessage, error) {
	s, err := text(t, raw, false)
	if err != nil {
		return nil, err
	}
	switch t.kind {
	case kInt32, kInt64, kBool:
		return json.RawMessage(s), nil
	case kFloat, kDouble:
		if f, _ := strconv.ParseFloat(s, 64); !math.IsNaN(f) && !math.IsInf(f, 0) {
			return json.RawMessage(s), nil
		}
	case kJSON:
		if json.Valid(raw) {
			return json.RawMessage(raw), nil
		}
	}
	b, err := json.Marshal(s)
	return b, err
}
