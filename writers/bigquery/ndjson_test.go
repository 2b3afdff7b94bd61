package bigquery

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"gocloud.dev/blob/memblob"

	"github.com/tenantlake/tenantlake/lake"
)

// TestJSONEncoding checks the NDJSON value of every BigQuery type against
// the form BigQuery's NEWLINE_DELIMITED_JSON load reads exactly.
func TestJSONEncoding(t *testing.T) {
	fixed := func(b ...byte) parquet.Value { return parquet.FixedLenByteArrayValue(b) }
	for _, c := range []struct {
		bqType string
		v      parquet.Value
		want   string
	}{
		{"INT64", parquet.Int64Value(math.MinInt64), `"-9223372036854775808"`},
		{"INT64", parquet.Int64Value(math.MaxInt64), `"9223372036854775807"`},
		{"INT64", parquet.Int32Value(-32768), `"-32768"`},
		{"FLOAT64", parquet.DoubleValue(1.5e-300), `1.5e-300`},
		{"FLOAT64", parquet.DoubleValue(-3.5), `-3.5`},
		{"FLOAT64", parquet.DoubleValue(math.Copysign(0, -1)), `-0`},
		{"FLOAT64", parquet.DoubleValue(math.NaN()), `"NaN"`},
		{"FLOAT64", parquet.DoubleValue(math.Inf(1)), `"Infinity"`},
		{"FLOAT64", parquet.DoubleValue(math.Inf(-1)), `"-Infinity"`},
		{"FLOAT64", parquet.FloatValue(0.1), `0.10000000149011612`}, // real, widened exactly
		{"FLOAT64", parquet.FloatValue(math.MaxFloat32), `3.4028234663852886e+38`},
		{"NUMERIC(12,2)", fixed(0xff, 0xff, 0xff, 0xff, 0xff, 0xce), `"-0.50"`},
		{"NUMERIC(12,2)", fixed(0, 0, 0, 0, 0, 0), `"0.00"`},
		{"NUMERIC(12,2)", fixed(0, 0xe8, 0xd4, 0xa5, 0x0f, 0xff), `"9999999999.99"`},
		{"NUMERIC(5,0)", fixed(0xff, 0xff, 0xff), `"-1"`},
		{"NUMERIC(9,9)", parquet.Int32Value(5), `"0.000000005"`},
		{"NUMERIC(18,3)", parquet.Int64Value(-1234567), `"-1234.567"`},
		// -123456789012345678901234567890.0123456789 as DECIMAL(40,10): 17 bytes.
		{"BIGNUMERIC(40,10)", fixed(0xfc, 0x5f, 0x36, 0xdf, 0x8a, 0x3f, 0x24, 0x0c, 0x47, 0x53, 0x43, 0xa0, 0x69, 0x73, 0xfb, 0x2a, 0xeb), `"-123456789012345678901234567890.0123456789"`},
		{"STRING", parquet.ByteArrayValue([]byte("héllo \"q\" \\ \n\t\r\x01 ✓")), `"héllo \"q\" \\ \n\t\r\u0001 ✓"`},
		{"STRING", parquet.ByteArrayValue(nil), `""`},
		{"BYTES", parquet.ByteArrayValue([]byte{0, 0xff, 0x10}), `"AP8Q"`},
		{"BYTES", parquet.ByteArrayValue([]byte{}), `""`},
		// JSON is staged as STRING: its exact text, as a JSON string.
		{"JSON", parquet.ByteArrayValue([]byte("{\"z\": 1,\n  \"a\": [1, 2.50, \"x y\"], \"a\": 1e400}")), `"{\"z\": 1,\n  \"a\": [1, 2.50, \"x y\"], \"a\": 1e400}"`},
		{"JSON", parquet.ByteArrayValue([]byte(`"just a string"`)), `"\"just a string\""`},
		{"JSON", parquet.ByteArrayValue([]byte(`null`)), `"null"`},
		{"BOOL", parquet.BooleanValue(true), `true`},
		{"BOOL", parquet.BooleanValue(false), `false`},
		{"DATE", parquet.Int32Value(-719162), `"0001-01-01"`},
		{"DATE", parquet.Int32Value(2932896), `"9999-12-31"`},
		{"DATE", parquet.Int32Value(20778), `"2026-11-21"`},
		{"DATETIME", parquet.Int64Value(-62135596800000000), `"0001-01-01 00:00:00.000000"`},
		{"DATETIME", parquet.Int64Value(253402300799999999), `"9999-12-31 23:59:59.999999"`},
		{"TIMESTAMP", parquet.Int64Value(1795207384123456), `"2026-11-20 20:43:04.123456+00:00"`},
		{"TIMESTAMP", parquet.Int64Value(-62135596800000000), `"0001-01-01 00:00:00.000000+00:00"`},
		{"TIME", parquet.Int64Value(0), `"00:00:00.000000"`},
		{"TIME", parquet.Int64Value(45296789000), `"12:34:56.789000"`},
		{"TIME", parquet.Int64Value(86399999999), `"23:59:59.999999"`},
	} {
		enc, err := jsonEncoderFor(lake.Column{Name: "c", BigQueryType: c.bqType})
		if err != nil {
			t.Fatalf("%s: %v", c.bqType, err)
		}
		got, err := enc(nil, c.v)
		if err != nil {
			t.Errorf("%s %v: %v", c.bqType, c.v, err)
			continue
		}
		if string(got) != c.want {
			t.Errorf("%s %v: got %s, want %s", c.bqType, c.v, got, c.want)
		}
		if !json.Valid(got) {
			t.Errorf("%s %v: %s is not JSON", c.bqType, c.v, got)
		}
	}
}

// TestJSONEncodingRejects checks that values BigQuery could not read back
// unchanged fail loudly.
func TestJSONEncodingRejects(t *testing.T) {
	for _, c := range []struct {
		bqType string
		v      parquet.Value
	}{
		{"STRING", parquet.ByteArrayValue([]byte{0xff, 'a'})},
		{"JSON", parquet.ByteArrayValue([]byte(`{"a":`))},
		{"TIME", parquet.Int64Value(86400000000)},
		{"INT64", parquet.DoubleValue(1)},
		{"FLOAT64", parquet.Int64Value(1)},
	} {
		enc, err := jsonEncoderFor(lake.Column{Name: "c", BigQueryType: c.bqType})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := enc(nil, c.v); err == nil {
			t.Errorf("%s %v encoded as %s, want an error", c.bqType, c.v, got)
		}
	}
	for _, bad := range []string{"GEOGRAPHY", "NUMERIC", "NUMERIC(12)"} {
		if _, err := jsonEncoderFor(lake.Column{Name: "c", BigQueryType: bad}); err == nil {
			t.Errorf("type %s accepted", bad)
		}
	}
}

// TestNDJSONPart streams a real Parquet part of several row groups,
// larger than one batch, and checks every line.
func TestNDJSONPart(t *testing.T) {
	ctx := context.Background()
	lk := lake.NewLake(memblob.OpenBucket(nil), "mem://", "")
	t.Cleanup(func() {
		if err := lk.Close(); err != nil {
			t.Error(err)
		}
	})
	type row struct {
		ID   int64   `parquet:"id"`
		Note *string `parquet:"note,optional"`
	}
	const n = 1000
	start, _ := lake.ParseSnapshotID(snap)
	s, err := lk.WithClock(func() time.Time { return start }).NewSnapshot(ctx, "acme", snap)
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.CreatePart(ctx, "notes", 0)
	if err != nil {
		t.Fatal(err)
	}
	pw := parquet.NewGenericWriter[row](p, parquet.MaxRowsPerRowGroup(300))
	for i := range n {
		r := row{ID: int64(i)}
		if i%3 != 0 {
			note := fmt.Sprintf("note %d\n", i)
			r.Note = &note
		}
		if _, err := pw.Write([]row{r}); err != nil {
			t.Fatal(err)
		}
	}
	if err := pw.Close(); err != nil {
		t.Fatal(err)
	}
	p.SetRows(n)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	tbl := &lake.Table{Name: "notes", Rows: n, Columns: []lake.Column{
		{Name: "note", BigQueryType: "STRING", Nullable: true}, // not in the part's order
		{Name: "id", BigQueryType: "INT64"},
	}, Files: []lake.File{p.File()}}

	part, err := openNDJSONPart(ctx, lk, tbl, tbl.Files[0])
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(io.Reader(part))
	i := 0
	for sc.Scan() {
		want := fmt.Sprintf(`{"note":"note %d\n","id":"%d"}`, i, i)
		if i%3 == 0 {
			want = fmt.Sprintf(`{"note":null,"id":"%d"}`, i)
		}
		if sc.Text() != want {
			t.Fatalf("line %d: %s, want %s", i, sc.Text(), want)
		}
		i++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if i != n {
		t.Errorf("%d lines, want %d", i, n)
	}
	if err := part.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
}
