package postgres

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/tenantlake/tenantlake/internal/pgtest"
)

// corpusColumns: source name, expected-value kind for expectedSQL, source
// type, expected manifest Parquet type, expected BigQuery type.
var corpusColumns = [][5]string{
	{"id", "int", "integer NOT NULL PRIMARY KEY", "INT32 INT(32,signed)", "INT64"},
	{"c_int2", "int", "smallint", "INT32 INT(16,signed)", "INT64"},
	{"c_int8", "int", "bigint", "INT64", "INT64"},
	{"c_real", "float4", "real", "FLOAT", "FLOAT64"},
	{"c_double", "float8", "double precision", "DOUBLE", "FLOAT64"},
	{"c_num", "text", "numeric(12,2)", "FIXED_LEN_BYTE_ARRAY(6) DECIMAL(12,2)", "NUMERIC(12,2)"},
	{"c_num_big", "text", "numeric(50,20)", "FIXED_LEN_BYTE_ARRAY(21) DECIMAL(50,20)", "BIGNUMERIC(50,20)"},
	{"c_num_neg", "text", "numeric(4,-2)", "FIXED_LEN_BYTE_ARRAY(3) DECIMAL(6,0)", "NUMERIC(6,0)"},
	{"c_num_wide", "text", "numeric(60,5)", "BYTE_ARRAY STRING", "STRING"},
	{"c_num_free", "text", "numeric", "BYTE_ARRAY STRING", "STRING"},
	{"c_money", "money", "money", "FIXED_LEN_BYTE_ARRAY(9) DECIMAL(19,2)", "NUMERIC(19,2)"},
	{"c_bool", "bool", "boolean", "BOOLEAN", "BOOL"},
	{"c_text", "text", "text", "BYTE_ARRAY STRING", "STRING"},
	{"c_varchar", "text", "varchar(10)", "BYTE_ARRAY STRING", "STRING"},
	{"c_char", "text", "char(5)", "BYTE_ARRAY STRING", "STRING"},
	{"c_citext", "text", "citext", "BYTE_ARRAY STRING", "STRING"},
	{"c_name", "text", "name", "BYTE_ARRAY STRING", "STRING"},
	{"c_enum", "text", "mood", "BYTE_ARRAY STRING", "STRING"},
	{"c_inet", "text", "inet", "BYTE_ARRAY STRING", "STRING"},
	{"c_cidr", "text", "cidr", "BYTE_ARRAY STRING", "STRING"},
	{"c_mac", "text", "macaddr", "BYTE_ARRAY STRING", "STRING"},
	{"c_bit", "text", "bit(4)", "BYTE_ARRAY STRING", "STRING"},
	{"c_varbit", "text", "bit varying", "BYTE_ARRAY STRING", "STRING"},
	{"c_xml", "text", "xml", "BYTE_ARRAY STRING", "STRING"},
	{"c_interval", "text", "interval", "BYTE_ARRAY STRING", "STRING"},
	{"c_timetz", "text", "time with time zone", "BYTE_ARRAY STRING", "STRING"},
	{"c_uuid", "text", "uuid", "BYTE_ARRAY STRING", "STRING"},
	{"c_bytea", "bytea", "bytea", "BYTE_ARRAY", "BYTES"},
	{"c_json", "text", "json", "BYTE_ARRAY JSON", "JSON"},
	{"c_jsonb", "text", "jsonb", "BYTE_ARRAY JSON", "JSON"},
	{"c_date", "text", "date", "INT32 DATE", "DATE"},
	{"c_ts", "timestamp", "timestamp without time zone", "INT64 TIMESTAMP(MICROS,false)", "DATETIME"},
	{"c_tstz", "timestamptz", "timestamp with time zone", "INT64 TIMESTAMP(MICROS,true)", "TIMESTAMP"},
	{"c_time", "time", "time without time zone", "INT64 TIME(MICROS,false)", "TIME"},
	{"c_arr", "json", "integer[]", "BYTE_ARRAY JSON", "JSON"},
	{"c_arr2", "json", "text[]", "BYTE_ARRAY JSON", "JSON"},
	{"c_tsarr", "json", "timestamp with time zone[]", "BYTE_ARRAY JSON", "JSON"},
	{"c_comp", "json", "pair", "BYTE_ARRAY JSON", "JSON"},
	{"c_dom", "text", "positive", "FIXED_LEN_BYTE_ARRAY(3) DECIMAL(5,1)", "NUMERIC(5,1)"},
}

var corpusSetup = []string{
	`CREATE EXTENSION citext`,
	`CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')`,
	`CREATE TYPE pair AS (a integer, b text, at timestamptz)`,
	`CREATE DOMAIN positive AS numeric(5,1) CHECK (VALUE > 0)`,
	`SET TimeZone = 'Asia/Kathmandu'`,
}

// corpusRows are the INSERT value lists, in corpusColumns order.
var corpusRows = []string{
	// ordinary values
	`1, 12, 1234567890123, 1.5, -0.25, 1234.56, 1.5, 1200, 1.00001, 3.14, 12.34, true,
	 'hello', 'v', 'ab', 'MiXeD', 'nm', 'happy', '192.168.0.1', '10.0.0.0/8', '08:00:2b:01:02:03',
	 B'1010', B'101', '<a>x</a>', '1 day 02:03:04.5', '12:34:56.789+05:30', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11',
	 '\x00ff10', '{"b": 1,  "a": [1, 2]}', '{"b": 1,  "a": [1, 2]}', '2024-02-29', '2024-02-29 13:14:15.123456',
	 '2024-02-29 13:14:15.123456+05:45', '13:14:15.000001', '{1,NULL,3}', '{{a,b},{c,NULL}}',
	 '{"2024-01-01 00:00:00+00"}', ROW(1, 'x y', '2024-01-01 12:00:00+01'), 1.5`,
	// every nullable column NULL
	`2` + strings.Repeat(", NULL", 38),
	// low edges
	`3, -32768, -9223372036854775808, 'NaN', '-Infinity', -9999999999.99,
	 -999999999999999999999999999999.99999999999999999999, -999900, -1e50, 'NaN', -92233720368547758.08, false,
	 E'line\nbreak \u00e9\u65e5 \t', '', 'a', '', '', 'sad', '::1', '::/0', '00:00:00:00:00:00',
	 B'0000', B'', '', '-178000000 years', '00:00:00-15:59', '00000000-0000-0000-0000-000000000000',
	 '\x', '[]', '{}', '0001-01-01', '0001-01-01 00:00:00', '0001-01-01 00:00:00+00', '00:00:00',
	 '{}', '{}', '{}', ROW(NULL, NULL, NULL), 0.1`,
	// high edges
	`4, 32767, 9223372036854775807, 3.4028235e+38, 'Infinity', 9999999999.99,
	 999999999999999999999999999999.99999999999999999999, 999900, 1e-50, 'Infinity', 92233720368547758.07, true,
	 repeat('z', 1000), '0123456789', 'abcde', repeat('Q', 10), repeat('n', 63), 'ok', '2001:db8::ff00:42:8329/64',
	 '2001:db8::/32', 'ff:ff:ff:ff:ff:ff', B'1111', B'1111111111111111111', '<?xml version="1.0"?><r/>',
	 '178000000 years', '24:00:00+15:59', 'ffffffff-ffff-ffff-ffff-ffffffffffff', '\xffffffffff', 'null', '"x"',
	 '9999-12-31', '9999-12-31 23:59:59.999999', '9999-12-31 23:59:59.999999+00', '23:59:59.999999',
	 '{-2147483648,2147483647}', '{"a\"b","ö"}', '{NULL}', ROW(-1, '', '9999-12-31 00:00:00+00'), 9999.9`,
	// -infinity for floats' sums is covered by row 3; -Infinity numeric string
	`5, 0, 0, -0, 0, -0.05, 0.00000000000000000001, 0, 0, '-Infinity', 0.01, false, '', '', '', '', '', 'ok', '0.0.0.0', '0.0.0.0/0',
	 '01:02:03:04:05:06', B'0001', B'0', '', '0', '00:00:00+00', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
	 '\x00', '0', '0', '1970-01-01', '1970-01-01 00:00:00', '1970-01-01 00:00:00+00', '12:00:00',
	 '{0}', '{}', '{}', ROW(0, 'z', NULL), 0.1`,
}

func corpusTenant(t *testing.T) (string, []string) {
	defs := make([]string, len(corpusColumns))
	for i, c := range corpusColumns {
		defs[i] = quoteIdent(c[0]) + " " + c[2]
	}
	setup := append([]string{}, corpusSetup...)
	setup = append(setup, "CREATE TABLE corpus ("+strings.Join(defs, ", ")+")")
	for _, r := range corpusRows {
		setup = append(setup, "INSERT INTO corpus VALUES ("+r+")")
	}
	return "corpus", setup
}

// TestCorpus reads every type of docs/types.md, edge values included, reads
// the part back with arrow-go and compares every value with PostgreSQL's own
// rendering of it; it also checks the manifest types and the profiles. The
// process TZ, PGTZ and the database's TimeZone are all away from UTC.
func TestCorpus(t *testing.T) {
	t.Setenv("TZ", "America/St_Johns")
	t.Setenv("PGTZ", "Asia/Kathmandu")
	saved := time.Local
	time.Local = time.FixedZone("odd", -(3*3600 + 30*60))
	t.Cleanup(func() { time.Local = saved })

	_, setup := corpusTenant(t)
	tn, dsn := newTenant(t, "acme", setup...)
	ctx := context.Background()
	conn := pgtest.Connect(t, dsn)
	mustExec(t, conn, "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET TimeZone = %L', current_database(), 'Pacific/Chatham'); END $$")

	lk := openLake(t)
	m, err := New(Options{}).Read(ctx, lk, tn)
	if err != nil {
		t.Fatal(err)
	}
	got, err := lk.Manifest(ctx, "acme", m.SnapshotID)
	if err != nil {
		t.Fatalf("committed manifest: %v", err)
	}
	tb := got.Table("corpus")
	if tb == nil || tb.Rows != int64(len(corpusRows)) {
		t.Fatalf("manifest table corpus = %+v, want %d rows", tb, len(corpusRows))
	}
	if len(tb.PrimaryKey) != 1 || tb.PrimaryKey[0] != "id" {
		t.Errorf("primary key %v, want [id]", tb.PrimaryKey)
	}
	cols := make([][3]string, len(corpusColumns))
	for i, c := range corpusColumns {
		mc := tb.Columns[i]
		if mc.Name != c[0] || mc.ParquetType != c[3] || mc.BigQueryType != c[4] {
			t.Errorf("column %d: %s %s %s, want %s %s %s", i, mc.Name, mc.ParquetType, mc.BigQueryType, c[0], c[3], c[4])
		}
		if mc.Nullable != (c[0] != "id") {
			t.Errorf("column %s: nullable %v", c[0], mc.Nullable)
		}
		cols[i] = [3]string{c[0], c[1], c[0]}
	}

	rows, schema := readTable(t, lk, tb)
	for i, f := range schema.Fields() {
		if f.Name != corpusColumns[i][0] {
			t.Errorf("parquet column %d is %s, want %s", i, f.Name, corpusColumns[i][0])
		}
	}
	checkArrowType(t, schema, "c_tstz", func(dt arrow.DataType) bool {
		ts, ok := dt.(*arrow.TimestampType)
		return ok && ts.Unit == arrow.Microsecond && ts.TimeZone == "UTC"
	})
	checkArrowType(t, schema, "c_ts", func(dt arrow.DataType) bool {
		ts, ok := dt.(*arrow.TimestampType)
		return ok && ts.Unit == arrow.Microsecond && ts.TimeZone == ""
	})
	checkArrowType(t, schema, "c_num_big", func(dt arrow.DataType) bool {
		d, ok := dt.(arrow.DecimalType)
		return ok && d.GetPrecision() == 50 && d.GetScale() == 20
	})

	want := byKey(t, expectedRows(t, dsn, "corpus", cols), "id")
	have := byKey(t, rows, "id")
	if len(have) != len(want) {
		t.Fatalf("read %d rows, PostgreSQL has %d", len(have), len(want))
	}
	for id, w := range want {
		h := have[id]
		for _, c := range corpusColumns {
			if h[c[0]] != w[c[0]] {
				t.Errorf("row %s column %s: lake %q, PostgreSQL %q", id, c[0], h[c[0]], w[c[0]])
			}
		}
	}
	checkProfiles(t, dsn, "corpus", tb)
}

func checkArrowType(t *testing.T, s *arrow.Schema, name string, ok func(arrow.DataType) bool) {
	t.Helper()
	fs, _ := s.FieldsByName(name)
	if len(fs) != 1 || !ok(fs[0].Type) {
		t.Errorf("arrow type of %s: %v", name, fs)
	}
}

// TestNumerics reads many generated values of numerics of every shape
// (small and big precision, negative scale, scale above precision,
// unconstrained) and compares them, read back with arrow-go, with
// PostgreSQL's text of each value.
func TestNumerics(t *testing.T) {
	tn, dsn := newTenant(t, "acme",
		`CREATE TABLE nums (id int PRIMARY KEY, a numeric(18,4), b numeric(38,10), c numeric(10,0), d numeric(4,-3), e numeric(3,5), f numeric(76,38), g numeric)`,
		`SELECT setseed(0.42)`,
		`INSERT INTO nums SELECT i,
			round((random() - 0.5)::numeric * 10::numeric ^ (random() * 14)::int, 4),
			round(((random() - 0.5)::numeric + random()::numeric / 1e15) * 10::numeric ^ (random() * 28)::int, 10),
			round((random() - 0.5)::numeric * 10::numeric ^ (random() * 10)::int),
			round((random() - 0.5)::numeric * 10::numeric ^ (random() * 7)::int, -3),
			round((random() - 0.5)::numeric / 500, 5),
			round(((random() - 0.5)::numeric + random()::numeric / 1e15 + random()::numeric / 1e30) * 10::numeric ^ (random() * 38)::int, 38),
			(random() - 0.5)::numeric * 10::numeric ^ (random() * 60 - 30)::int
		FROM generate_series(1, 3000) i`,
		`INSERT INTO nums VALUES (0, 0, 0, 0, 0, 0, 0, 0), (-1, -99999999999999.9999, -9999999999999999999999999999.9999999999, -9999999999, -9999000, -0.00999,
			-99999999999999999999999999999999999999.99999999999999999999999999999999999999, 'NaN'),
			(-2, 0.0001, 0.0000000001, 1, 1000, 0.00001, 0.00000000000000000000000000000000000001, '1e-1000')`,
	)
	ctx := context.Background()
	lk := openLake(t)
	m, err := New(Options{}).Read(ctx, lk, tn)
	if err != nil {
		t.Fatal(err)
	}
	tb := m.Table("nums")
	var cols [][3]string
	for _, c := range tb.Columns {
		cols = append(cols, [3]string{c.Source, "text", c.Name})
	}
	if got := tb.Columns[6].BigQueryType; got != "BIGNUMERIC(76,38)" {
		t.Errorf("numeric(76,38) is %s", got)
	}
	want := byKey(t, expectedRows(t, dsn, "nums", cols), "id")
	rows, _ := readTable(t, lk, tb)
	have := byKey(t, rows, "id")
	if len(have) != len(want) {
		t.Fatalf("%d rows, want %d", len(have), len(want))
	}
	bad := 0
	for id, w := range want {
		for k, v := range w {
			if have[id][k] != v && bad < 10 {
				bad++
				t.Errorf("row %s column %s: lake %q, PostgreSQL %q", id, k, have[id][k], v)
			}
		}
	}
	checkProfiles(t, dsn, "nums", tb)
}
