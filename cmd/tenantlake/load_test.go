package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantlake/tenantlake/internal/pgtest"
	"github.com/tenantlake/tenantlake/lake"
	readerpg "github.com/tenantlake/tenantlake/readers/postgres"
	"github.com/tenantlake/tenantlake/tenant"
	"github.com/tenantlake/tenantlake/writers"
	"github.com/tenantlake/tenantlake/writers/writertest"
)

// TestLoad reads a tenant twice with the real reader, then loads with the
// command: latest, again (already-live), at the first snapshot's time
// (replay), and the latest once more with the default reason.
func TestLoad(t *testing.T) {
	ctx := context.Background()
	src, warehouse := pgtest.NewDatabase(t), pgtest.NewDatabase(t)
	lakeURL := "file://" + t.TempDir()
	exec := func(stmts ...string) {
		t.Helper()
		conn, err := pgx.Connect(ctx, src)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		for _, s := range stmts {
			if _, err := conn.Exec(ctx, s); err != nil {
				t.Fatalf("%s: %v", s, err)
			}
		}
	}
	read := func() *lake.Manifest {
		t.Helper()
		lk, err := lake.Open(ctx, lakeURL)
		if err != nil {
			t.Fatal(err)
		}
		defer lk.Close()
		m, err := readerpg.New(readerpg.Options{}).Read(ctx, lk, tenant.Tenant{ID: "acme", Connection: src})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond)
		return m
	}
	exec(`CREATE TABLE orders (id bigint PRIMARY KEY, total numeric(10,2))`, `INSERT INTO orders VALUES (1, 9.99), (2, 20)`)
	first := read()
	exec(`INSERT INTO orders VALUES (3, 1.5)`)
	second := read()

	load := func(args ...string) writers.Outcome {
		t.Helper()
		args = append([]string{"load", "--json", "--lake", lakeURL, "--target", warehouse, "--tenant", "acme"}, args...)
		var out writers.Outcome
		if err := json.Unmarshal([]byte(mustExecute(t, args...)), &out); err != nil {
			t.Fatalf("tenantlake %s: %v", strings.Join(args, " "), err)
		}
		return out
	}
	if o := load("--latest"); o.Outcome != writers.OutcomeLoaded || o.Live != second.SnapshotID || o.Reason != writers.ReasonManual {
		t.Fatalf("load --latest: %+v", o)
	}
	if o := load("--latest"); o.Outcome != writers.OutcomeAlreadyLive {
		t.Fatalf("load --latest again: %+v", o)
	}
	if o := load("--snapshot", first.SnapshotID); o.Outcome != writers.OutcomeStale || o.Live != second.SnapshotID {
		t.Fatalf("manual load of an older snapshot: %+v", o)
	}
	o := load("--at", first.StartedAt.Add(time.Millisecond/2).Format(time.RFC3339Nano))
	if o.Outcome != writers.OutcomeLoaded || o.SnapshotID != first.SnapshotID || o.Reason != writers.ReasonReplay || o.PreviousLive != second.SnapshotID {
		t.Fatalf("load --at the first snapshot: %+v", o)
	}

	conn, err := pgx.Connect(ctx, warehouse)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	var tenants string
	if err := conn.QueryRow(ctx, `SELECT count(*), string_agg(DISTINCT tenant_id, ',') FROM all_tenants.orders`).Scan(&n, &tenants); err != nil {
		t.Fatal(err)
	}
	if n != 2 || tenants != "acme" {
		t.Errorf("all_tenants.orders after the replay: %d rows of tenants %q; want 2 rows of acme", n, tenants)
	}

	human := mustExecute(t, "load", "--lake", lakeURL, "--target", warehouse, "--tenant", "acme", "--latest")
	for _, want := range []string{"acme", second.SnapshotID, "loaded", "orders", "3"} {
		if !strings.Contains(human, want) {
			t.Errorf("human output lacks %q:\n%s", want, human)
		}
	}

	// A warehouse that keeps change tables: the second snapshot's load
	// appends the row it inserted, and says so.
	changes := pgtest.NewDatabase(t) + "&changes=true"
	mustExecute(t, "load", "--lake", lakeURL, "--target", changes, "--tenant", "acme", "--snapshot", first.SnapshotID)
	human = mustExecute(t, "load", "--lake", lakeURL, "--target", changes, "--tenant", "acme", "--latest")
	if want := "change tables: 1 change rows in 1 tables, from snapshot " + first.SnapshotID; !strings.Contains(human, want) {
		t.Errorf("load with changes=true: output lacks %q:\n%s", want, human)
	}
	cconn := pgtest.Connect(t, strings.TrimSuffix(changes, "&changes=true"))
	var op, key, after string
	if err := cconn.QueryRow(ctx, `SELECT operation, key::text, row_after->>'total' FROM tenant_acme.orders_changes`).Scan(&op, &key, &after); err != nil {
		t.Fatal(err)
	}
	if op != "insert" || key != `{"id":3}` || after != "1.50" {
		t.Errorf("orders_changes: %s %s total %s; want insert {\"id\":3} total 1.50", op, key, after)
	}

	// A snapshot whose manifest disagrees with its data: quarantined, exit non-zero.
	lk, err := lake.Open(ctx, lakeURL)
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Close()
	bad, err := writertest.CommitCopy(ctx, lk, second, func(m *lake.Manifest) {
		m.Tables[0].Rows++
		m.Tables[0].Files[0].Rows++
	})
	if err != nil {
		t.Fatal(err)
	}
	human, err = execute(t, "load", "--lake", lakeURL, "--target", warehouse, "--tenant", "acme", "--snapshot", bad.SnapshotID)
	if err == nil || !strings.Contains(err.Error(), "quarantined") || !strings.Contains(human, "FAILED: rows") {
		t.Errorf("load of a tampered snapshot: error %v, output:\n%s", err, human)
	}
}

func TestLoadErrors(t *testing.T) {
	lakeURL := "file://" + t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--tenant", "acme", "--latest", "--target", "mysql://x/y"}, "unknown scheme"},
		{[]string{"--tenant", "Bad", "--latest", "--target", "postgres://x/y"}, "invalid tenant id"},
		{[]string{"--tenant", "acme", "--latest", "--snapshot", "20261121T020304.123Z", "--target", "postgres://x/y"}, "none of the others"},
		{[]string{"--tenant", "acme", "--target", "postgres://x/y"}, "at least one of the flags"},
		{[]string{"--tenant", "acme", "--latest", "--target", pgtest.NewDatabase(t)}, "no committed snapshot"},
		{[]string{"--tenant", "acme", "--latest", "--target", "postgres://x/y?all_tenants_schema=public"}, "option all_tenants_schema=public"},
		{[]string{"--tenant", "acme", "--latest", "--target", "postgres://x/y?all_tenants_schema=tenantlake"}, "option all_tenants_schema=tenantlake"},
		{[]string{"--tenant", "acme", "--latest", "--target", "postgres://x/y?name=../../x"}, "option name=../../x"},
		{[]string{"--tenant", "acme", "--latest", "--target", "postgres://x/y?name=a&name=b"}, "option name given 2 times"},
		{[]string{"--tenant", "acme", "--latest", "--target", "postgres://x/y?schema_template="}, "option schema_template: empty"},
		{[]string{"--tenant", "acme", "--latest", "--target", "postgres://x/y?profile_check=maybe"}, "option profile_check"},
		{[]string{"--tenant", "acme", "--latest", "--target", "postgres://x/y?changes=yes-please"}, "option changes"},
		{[]string{"--tenant", "acme", "--latest", "--target", "bigquery://p?changes=often"}, "changes=\"often\""},
		{[]string{"--tenant", "acme", "--latest", "--target", "postgres://x/y?staging_template=tenant_{tenant}"}, "options schema_template=tenant_{tenant} and staging_template=tenant_{tenant}"},
	} {
		_, err := execute(t, append([]string{"load", "--lake", lakeURL}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("load %s: error %v, want one containing %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}
}

// TestLoadRefusesUserSchema: all_tenants_schema=public on a warehouse whose
// public schema holds a user's table fails, naming the option, and the
// table is still there (issue 8, item 1).
func TestLoadRefusesUserSchema(t *testing.T) {
	ctx := context.Background()
	src, warehouse := pgtest.NewDatabase(t), pgtest.NewDatabase(t)
	lakeURL := "file://" + t.TempDir()
	for _, db := range []struct{ url, sql string }{
		{src, `CREATE TABLE orders (id bigint PRIMARY KEY); INSERT INTO orders VALUES (1)`},
		{warehouse, `CREATE TABLE public.user_table (id int); INSERT INTO public.user_table VALUES (7); CREATE SCHEMA analytics`},
	} {
		conn := pgtest.Connect(t, db.url)
		if _, err := conn.Exec(ctx, db.sql); err != nil {
			t.Fatal(err)
		}
	}
	lk, err := lake.Open(ctx, lakeURL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := readerpg.New(readerpg.Options{}).Read(ctx, lk, tenant.Tenant{ID: "acme", Connection: src}); err != nil {
		t.Fatal(err)
	}
	if err := lk.Close(); err != nil {
		t.Fatal(err)
	}
	for _, schema := range []string{"public", "tenantlake", "analytics"} {
		target := warehouse + "&all_tenants_schema=" + schema
		out, err := execute(t, "load", "--lake", lakeURL, "--target", target, "--tenant", "acme", "--latest")
		if err == nil || !strings.Contains(err.Error(), "all_tenants_schema="+schema) {
			t.Errorf("load with all_tenants_schema=%s: error %v, output %s; want an error naming the option", schema, err, out)
		}
	}
	var n int
	if err := pgtest.Connect(t, warehouse).QueryRow(ctx, `SELECT id FROM public.user_table`).Scan(&n); err != nil || n != 7 {
		t.Errorf("public.user_table after the refused loads: %d, %v", n, err)
	}
}

// TestLoadUnknownSnapshot: load --snapshot with an id the lake has no
// committed snapshot of (a typo, a snapshot retention deleted) fails naming
// it, older or newer than the live one, and records no load: an older one
// was reported skipped-stale (exit status 0) and a newer one failed, each
// with a ledger record of a snapshot that does not exist.
func TestLoadUnknownSnapshot(t *testing.T) {
	ctx := context.Background()
	src, warehouse := pgtest.NewDatabase(t), pgtest.NewDatabase(t)
	lakeURL := "file://" + t.TempDir()
	conn := pgtest.Connect(t, src)
	if _, err := conn.Exec(ctx, `CREATE TABLE orders (id bigint PRIMARY KEY); INSERT INTO orders VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	lk, err := lake.Open(ctx, lakeURL)
	if err != nil {
		t.Fatal(err)
	}
	m, err := readerpg.New(readerpg.Options{}).Read(ctx, lk, tenant.Tenant{ID: "acme", Connection: src})
	if err != nil {
		t.Fatal(err)
	}
	mustExecute(t, "load", "--lake", lakeURL, "--target", warehouse, "--tenant", "acme", "--latest")
	ledger := func() int {
		t.Helper()
		recs, err := lk.Ledger(ctx, "acme", "postgres")
		if err != nil {
			t.Fatal(err)
		}
		return len(recs)
	}
	before := ledger()
	for _, id := range []string{"20200101T000000.000Z", "20991231T235959.999Z"} {
		out, err := execute(t, "load", "--lake", lakeURL, "--target", warehouse, "--tenant", "acme", "--snapshot", id)
		if err == nil || !strings.Contains(err.Error(), "no committed snapshot "+id) {
			t.Errorf("load --snapshot %s: error %v, output %q; want one saying the tenant has no committed snapshot %s", id, err, out, id)
		}
	}
	if n := ledger(); n != before {
		t.Errorf("loads of snapshots that do not exist left %d ledger records in the lake", n-before)
	}
	var n int
	if err := pgtest.Connect(t, warehouse).QueryRow(ctx, `SELECT count(*) FROM tenantlake.loads WHERE snapshot_id <> $1`, m.SnapshotID).Scan(&n); err != nil || n != 0 {
		t.Errorf("tenantlake.loads holds %d loads of snapshots that do not exist (%v)", n, err)
	}
	if err := lk.Close(); err != nil {
		t.Fatal(err)
	}
}
