package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tenantlake/tenantlake/diff"
	"github.com/tenantlake/tenantlake/internal/pgtest"
	"github.com/tenantlake/tenantlake/ops"
)

// TestDiffCommand reads a tenant twice with `tenantlake read` and compares
// the snapshots with `tenantlake diff`: by id and by time, as a table, as
// JSON and row by row, and refuses bad references naming the flag.
func TestDiffCommand(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	conn := pgtest.Connect(t, dsn)
	exec := func(sql string) {
		t.Helper()
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	exec(`CREATE TABLE invoices (id bigint PRIMARY KEY, amount numeric(12,2) NOT NULL, memo text)`)
	exec(`CREATE TABLE log (line text)`)
	exec(`INSERT INTO invoices SELECT g, g * 1.25, 'memo ' || g FROM generate_series(1, 40) g`)
	exec(`INSERT INTO log VALUES ('a'), ('a'), ('b')`)
	dir := t.TempDir()
	reg := filepath.Join(dir, "tenants.yaml")
	if err := os.WriteFile(reg, []byte(fmt.Sprintf("tenants:\n  - tenant_id: acme\n    connection: %q\n", dsn)), 0o600); err != nil {
		t.Fatal(err)
	}
	lakeURL := "file://" + filepath.Join(dir, "lake")
	mustExecute(t, "read", "--registry", reg, "--lake", lakeURL, "--tenant", "acme")
	exec(`UPDATE invoices SET memo = NULL WHERE id = 3`)
	exec(`DELETE FROM invoices WHERE id = 40`)
	exec(`INSERT INTO invoices VALUES (41, 1, '<b>x</b>')`)
	exec(`INSERT INTO log VALUES ('a')`)
	exec(`ALTER TABLE invoices ADD COLUMN paid boolean`)
	mustExecute(t, "read", "--registry", reg, "--lake", lakeURL, "--tenant", "acme")

	var snaps []ops.Summary
	if err := json.Unmarshal([]byte(mustExecute(t, "snapshots", "--lake", lakeURL, "--tenant", "acme", "--json")), &snaps); err != nil {
		t.Fatal(err)
	}
	newer, older := snaps[0].SnapshotID, snaps[1].SnapshotID

	var res diff.Result
	out := mustExecute(t, "diff", "--lake", lakeURL, "--tenant", "acme", "--from", older, "--to", newer, "--json")
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	if res.From != older || res.To != newer || len(res.Tables) != 2 {
		t.Fatalf("diff --json: %s", out)
	}
	inv, lg := res.Tables[0], res.Tables[1]
	if inv.Table != "invoices" || inv.Inserted != 1 || inv.Deleted != 1 || inv.Updated != 1 || len(inv.ColumnsAdded) != 1 || inv.ColumnsAdded[0].Name != "paid" {
		t.Errorf("invoices: %+v", inv)
	}
	if lg.Table != "log" || lg.Compare != diff.CompareRows || lg.Inserted != 1 || lg.Deleted != 0 {
		t.Errorf("log: %+v", lg)
	}

	// By time: the newer snapshot's id as a time, and a date after both.
	out = mustExecute(t, "diff", "--lake", lakeURL, "--tenant", "acme", "--from", older, "--to", "2999-01-01", "--table", "invoices")
	for _, want := range []string{"tenant acme: " + older + " → " + newer, "+paid"} {
		if !strings.Contains(out, want) {
			t.Errorf("diff: output lacks %q:\n%s", want, out)
		}
	}
	if !containsFields(out, "invoices", "changed", "key", "(id)", "40", "40", "1", "1", "1", "+paid") {
		t.Errorf("diff: table line wrong:\n%s", out)
	}
	out = mustExecute(t, "diff", "--lake", lakeURL, "--tenant", "acme", "--from", newer, "--to", newer)
	if !strings.Contains(out, "no differences") {
		t.Errorf("diff of a snapshot with itself:\n%s", out)
	}

	// --rows: JSON lines on stdout, the summary on stderr.
	r := runCLI(t, nil, "diff", "--lake", lakeURL, "--tenant", "acme", "--from", older, "--to", newer, "--rows", "--table", "invoices")
	if r.code != 0 {
		t.Fatalf("diff --rows: exit %d\n%s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	want := []string{
		`{"table":"invoices","op":"update","key":{"id":3},"before":{"id":3,"amount":"3.75","memo":"memo 3"},"after":{"id":3,"amount":"3.75","memo":null,"paid":null}}`,
		`{"table":"invoices","op":"insert","key":{"id":41},"after":{"id":41,"amount":"1.00","memo":"\u003cb\u003ex\u003c/b\u003e","paid":null}}`, // HTML-safe JSON: \u003c for <
		`{"table":"invoices","op":"delete","key":{"id":40},"before":{"id":40,"amount":"50.00","memo":"memo 40"}}`,
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("diff --rows: stdout\n%s\nwant\n%s", r.stdout, strings.Join(want, "\n"))
	}
	if !strings.Contains(r.stderr, "invoices") || !strings.Contains(r.stderr, "changed") {
		t.Errorf("diff --rows: summary not on stderr:\n%s", r.stderr)
	}

	// Bad references are the request's fault, named.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--from", "yesterday", "--to", newer}, "from: "},
		{[]string{"--from", older, "--to", "20000101T000000.000Z"}, "to: tenant acme has no committed snapshot 20000101T000000.000Z"},
		{[]string{"--from", "1999-01-01", "--to", newer}, "from: tenant acme has no snapshot at or before 1999-01-01T23:59"},
		{[]string{"--from", older, "--to", newer, "--table", "nosuch"}, `has table "nosuch"`},
		{[]string{"--from", older, "--to", newer, "--table", "log", "--table", "log"}, `"log" is listed twice`},
	} {
		_, err := execute(t, append([]string{"diff", "--lake", lakeURL, "--tenant", "acme"}, c.args...)...)
		if !errors.Is(err, ops.ErrRejected) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("diff %v: %v, want a rejection containing %q", c.args, err, c.want)
		}
	}
	if _, err := execute(t, "diff", "--lake", lakeURL, "--tenant", "ACME", "--from", older, "--to", newer); err == nil || !strings.Contains(err.Error(), "--tenant") {
		t.Errorf("diff --tenant ACME: %v", err)
	}
}
