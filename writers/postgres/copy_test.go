package postgres

import (
	"bytes"
	"math"
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/jackc/pgx/v5/pgtype"
)

// TestAppendNumeric decodes appendNumeric's bytes with pgx's own numeric
// decoder (an independent implementation of the format) and compares values.
func TestAppendNumeric(t *testing.T) {
	m := pgtype.NewMap()
	for _, tc := range []struct {
		neg    bool
		digits string
		scale  int
		want   string // the value in decimal
	}{
		{false, "0", 0, "0"},
		{false, "0", 2, "0"},
		{true, "0", 2, "0"},
		{false, "1", 2, "0.01"},
		{true, "5", 1, "-0.5"},
		{false, "125", 2, "1.25"},
		{false, "10000", 0, "10000"},
		{false, "100000000", 4, "10000"},
		{true, "999999999999", 2, "-9999999999.99"},
		{false, "12345678901234567890123456789001234567890", 10, "1234567890123456789012345678900.1234567890"},
		{false, "1", 38, "0.00000000000000000000000000000000000001"},
		{true, "9223372036854775808", 0, "-9223372036854775808"},
	} {
		buf := appendNumeric(nil, tc.neg, tc.digits, tc.scale)
		var n pgtype.Numeric
		if err := m.Scan(pgtype.NumericOID, pgtype.BinaryFormatCode, buf, &n); err != nil {
			t.Errorf("%+v: pgx cannot decode % x: %v", tc, buf, err)
			continue
		}
		got := new(big.Rat).SetInt(n.Int)
		exp := new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(max(n.Exp, -n.Exp))), nil))
		if n.Exp < 0 {
			got.Quo(got, exp)
		} else {
			got.Mul(got, exp)
		}
		want, _ := new(big.Rat).SetString(tc.want)
		if got.Cmp(want) != 0 {
			t.Errorf("%+v: decoded %s, want %s", tc, got.FloatString(tc.scale), tc.want)
		}
	}
}

// TestAppendNumericInt: the integer path writes the same bytes as the
// general one, for every scale and values at the edges of int64.
func TestAppendNumericInt(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	vals := []int64{0, 1, -1, 9, 10, 9999, 10000, -10000, 123456789, math.MaxInt64, math.MinInt64, math.MinInt64 + 1}
	for i := 0; i < 2000; i++ {
		v := r.Int64() >> r.IntN(63)
		if r.IntN(2) == 0 {
			v = -v
		}
		vals = append(vals, v)
	}
	for _, v := range vals {
		for scale := 0; scale <= 38; scale++ {
			neg, digits := absDigits(v)
			want := appendNumeric(nil, neg, digits, scale)
			if got := appendNumericInt(nil, v, scale); !bytes.Equal(got, want) {
				t.Fatalf("%d scale %d: % x, want % x", v, scale, got, want)
			}
		}
	}
	if n := testing.AllocsPerRun(100, func() { appendNumericInt(make([]byte, 0, 64), -123456789012, 2) }); n > 1 {
		t.Errorf("appendNumericInt allocates %v times per value", n)
	}
}

func TestTwosComplementDigits(t *testing.T) {
	for _, tc := range []struct {
		b      []byte
		neg    bool
		digits string
	}{
		{[]byte{0x00}, false, "0"},
		{[]byte{0xff}, true, "1"},
		{[]byte{0x80}, true, "128"},
		{[]byte{0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, false, "9223372036854775807"},
		{[]byte{0x80, 0, 0, 0, 0, 0, 0, 0}, true, "9223372036854775808"},
		{[]byte{0x00, 0x80, 0, 0, 0, 0, 0, 0, 0}, false, "9223372036854775808"},
		{[]byte{0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, true, "9223372036854775809"},
		{[]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe}, true, "2"},
	} {
		neg, digits := twosComplementDigits(tc.b)
		if neg != tc.neg || digits != tc.digits {
			t.Errorf("% x: %v %s, want %v %s", tc.b, neg, digits, tc.neg, tc.digits)
		}
	}
}

func TestPgType(t *testing.T) {
	for bq, want := range map[string]string{
		"INT64": "bigint", "FLOAT64": "double precision", "NUMERIC(12,2)": "numeric(12,2)", "BIGNUMERIC(50,20)": "numeric(50,20)",
		"STRING": "text", "BYTES": "bytea", "JSON": "jsonb", "BOOL": "boolean", "DATE": "date",
		"DATETIME": "timestamp without time zone", "TIMESTAMP": "timestamp with time zone", "TIME": "time without time zone",
	} {
		if got, err := pgType(bq); err != nil || got != want {
			t.Errorf("pgType(%s) = %q, %v; want %q", bq, got, err, want)
		}
	}
	for _, bq := range []string{"NUMERIC", "NUMERIC(2,3)", "GEOGRAPHY", "ARRAY<INT64>", ""} {
		if got, err := pgType(bq); err == nil {
			t.Errorf("pgType(%q) = %q, want an error", bq, got)
		}
	}
}
