package writertest

import (
	"math"
	"math/big"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

func TestCanonical(t *testing.T) {
	ts := time.Date(2026, 11, 21, 2, 3, 4, 123456000, time.FixedZone("x", 5*3600+1800))
	for _, tc := range []struct {
		bq   string
		v    any
		want string
	}{
		{"INT64", int64(-9223372036854775808), "-9223372036854775808"},
		{"INT64", int16(7), "7"},
		{"FLOAT64", float32(0.1), "0.10000000149011612"},
		{"FLOAT64", math.Inf(-1), "-Inf"},
		{"FLOAT64", math.NaN(), "NaN"},
		{"NUMERIC(12,2)", big.NewRat(3, 2), "1.5"},
		{"NUMERIC(12,2)", pgtype.Numeric{Int: big.NewInt(150), Exp: -2, Valid: true}, "1.5"},
		{"BIGNUMERIC(40,0)", pgtype.Numeric{Int: big.NewInt(12), Exp: 3, Valid: true}, "12000"},
		{"NUMERIC(5,2)", pgtype.Numeric{Int: big.NewInt(0), Exp: -2, Valid: true}, "0"},
		{"STRING", "héllo", "héllo"},
		{"BYTES", []byte{0, 0xff}, "00ff"},
		{"JSON", `{"b": 1, "a": [1.50, "<x>"]}`, `{"a":[1.5,"<x>"],"b":1}`},
		{"JSON", `[1e3, 25e-1, -0.0, 12345678901234567890.10]`, `[1000,2.5,0,12345678901234567890.1]`},
		{"JSON", `null`, `null`},
		{"BOOL", true, "true"},
		{"DATE", time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), "0001-01-01"},
		{"DATETIME", ts, "2026-11-21T02:03:04.123456"},
		{"TIMESTAMP", ts, "2026-11-20T20:33:04.123456Z"},
		{"TIME", 23*time.Hour + 59*time.Minute + 59*time.Second + 999999*time.Microsecond, "23:59:59.999999"},
		{"TIME", pgtype.Time{Microseconds: 45296789000, Valid: true}, "12:34:56.789000"},
	} {
		got, ok, err := Canonical(tc.bq, tc.v)
		if err != nil || !ok || got != tc.want {
			t.Errorf("Canonical(%s, %#v) = %q, %v, %v; want %q", tc.bq, tc.v, got, ok, err, tc.want)
		}
	}
	if _, ok, err := Canonical("STRING", nil); ok || err != nil {
		t.Errorf("Canonical of nil: ok %v, err %v; want NULL", ok, err)
	}
	for _, bad := range []struct {
		bq string
		v  any
	}{{"INT64", "1"}, {"DATE", "2026-01-01"}, {"JSON", "{"}, {"GEOGRAPHY", "POINT(1 1)"}} {
		if got, _, err := Canonical(bad.bq, bad.v); err == nil {
			t.Errorf("Canonical(%s, %#v) = %q, want an error", bad.bq, bad.v, got)
		}
	}
}
