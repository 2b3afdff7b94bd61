package writertest

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// Canonical renders one value of a column of BigQuery type bqType in the
// suite's canonical form, so values read back from any target compare with
// the values of the source. It returns ok=false for NULL (nil).
//
// Harnesses return values of these Go types (the suite converts the
// source's values the same way):
//
//	INT64                int64 (int32, int16 accepted)
//	FLOAT64              float64 (float32 accepted)
//	NUMERIC, BIGNUMERIC  *big.Rat or pgtype.Numeric
//	STRING               string
//	BYTES                []byte
//	JSON                 string (JSON text; compared after re-encoding with sorted
//	                     keys, numbers by value: 2.50, 2.5 and 25e-1 are one)
//	BOOL                 bool
//	DATE                 time.Time (its year, month and day)
//	DATETIME             time.Time (its wall clock, whatever its location)
//	TIMESTAMP            time.Time (an instant)
//	TIME                 time.Duration since midnight or pgtype.Time
func Canonical(bqType string, v any) (s string, ok bool, err error) {
	if v == nil {
		return "", false, nil
	}
	base, _, _ := strings.Cut(bqType, "(")
	fail := func() (string, bool, error) {
		return "", false, fmt.Errorf("writertest: %s value of Go type %T", bqType, v)
	}
	switch base {
	case "INT64":
		switch x := v.(type) {
		case int64:
			return strconv.FormatInt(x, 10), true, nil
		case int32:
			return strconv.FormatInt(int64(x), 10), true, nil
		case int16:
			return strconv.FormatInt(int64(x), 10), true, nil
		}
	case "FLOAT64":
		switch x := v.(type) {
		case float64:
			return strconv.FormatFloat(x, 'g', -1, 64), true, nil
		case float32:
			return strconv.FormatFloat(float64(x), 'g', -1, 64), true, nil
		}
	case "NUMERIC", "BIGNUMERIC":
		var r *big.Rat
		switch x := v.(type) {
		case *big.Rat:
			r = x
		case pgtype.Numeric:
			if !x.Valid || x.NaN || x.InfinityModifier != pgtype.Finite {
				return fail()
			}
			r = new(big.Rat).SetInt(x.Int)
			exp := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(abs(x.Exp))), nil)
			if x.Exp < 0 {
				r.Quo(r, new(big.Rat).SetInt(exp))
			} else {
				r.Mul(r, new(big.Rat).SetInt(exp))
			}
		default:
			return fail()
		}
		// Plain decimal, no trailing zeros: "1.50" and "1.5" are one value.
		d := strings.TrimRight(r.FloatString(80), "0")
		return strings.TrimSuffix(d, "."), true, nil
	case "STRING":
		if x, ok := v.(string); ok {
			return x, true, nil
		}
	case "BYTES":
		if x, ok := v.([]byte); ok {
			return hex.EncodeToString(x), true, nil
		}
	case "JSON":
		if x, ok := v.(string); ok {
			d := json.NewDecoder(strings.NewReader(x))
			d.UseNumber()
			var j any
			if err := d.Decode(&j); err != nil {
				return "", false, fmt.Errorf("writertest: JSON value %q: %w", x, err)
			}
			j = jsonNumbersByValue(j)
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			if err := enc.Encode(j); err != nil {
				return "", false, err
			}
			return strings.TrimSpace(buf.String()), true, nil
		}
	case "BOOL":
		if x, ok := v.(bool); ok {
			return strconv.FormatBool(x), true, nil
		}
	case "DATE":
		if x, ok := v.(time.Time); ok {
			return x.Format("2006-01-02"), true, nil
		}
	case "DATETIME":
		if x, ok := v.(time.Time); ok {
			return x.Format("2006-01-02T15:04:05.000000"), true, nil
		}
	case "TIMESTAMP":
		if x, ok := v.(time.Time); ok {
			return x.UTC().Format("2006-01-02T15:04:05.000000Z"), true, nil
		}
	case "TIME":
		var us int64
		switch x := v.(type) {
		case time.Duration:
			us = x.Microseconds()
		case pgtype.Time:
			us = x.Microseconds
		default:
			return fail()
		}
		return fmt.Sprintf("%02d:%02d:%02d.%06d", us/3600e6, us/60e6%60, us/1e6%60, us%1e6), true, nil
	}
	return fail()
}

// jsonNumbersByValue replaces every number in a decoded JSON value by its
// exact value in plain decimal (no exponent, no trailing zeros), so that
// targets that store JSON numbers by value compare by value; a number
// that is not a finite decimal stays as written.
func jsonNumbersByValue(v any) any {
	switch x := v.(type) {
	case json.Number:
		r, ok := new(big.Rat).SetString(string(x))
		if !ok {
			return x
		}
		for n := 0; n <= 1100; n++ {
			if new(big.Rat).Mul(r, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n)), nil))).IsInt() {
				return json.Number(r.FloatString(n))
			}
		}
		return x
	case []any:
		for i := range x {
			x[i] = jsonNumbersByValue(x[i])
		}
	case map[string]any:
		for k := range x {
			x[k] = jsonNumbersByValue(x[k])
		}
	}
	return v
}

func abs(x int32) int32 {
	if x < 0 {
		return -x
	}
	return x
}
