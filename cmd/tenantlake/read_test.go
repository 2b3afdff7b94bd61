package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/tenantlake/tenantlake/internal/pgtest"
	"github.com/tenantlake/tenantlake/lake"
)

// TestRead reads two good tenants and one whose database holds a value that
// cannot be carried (an infinite date) with --all: the good ones commit, the
// command fails naming the bad one, which commits nothing; --policy then lets
// the bad one through.
func TestRead(t *testing.T) {
	ctx := context.Background()
	dbs := map[string]string{}
	for _, id := range []string{"acme", "bad", "globex"} {
		dsn := pgtest.NewDatabase(t)
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		day := "'2024-01-01'"
		if id == "bad" {
			day = "'infinity'"
		}
		for _, s := range []string{
			`CREATE TABLE orders (id bigint PRIMARY KEY, day date)`,
			`INSERT INTO orders VALUES (1, '2024-01-02'), (2, ` + day + `)`,
		} {
			if _, err := conn.Exec(ctx, s); err != nil {
				t.Fatal(err)
			}
		}
		conn.Close(ctx)
		dbs[id] = dsn
	}
	dir := t.TempDir()
	reg := filepath.Join(dir, "tenants.yaml")
	yaml := "tenants:\n"
	for _, id := range []string{"acme", "bad", "globex"} {
		yaml += fmt.Sprintf("  - tenant_id: %s\n    connection: %q\n", id, dbs[id])
	}
	yaml += "  - tenant_id: sleepy\n    connection: postgres://nobody@127.0.0.1:1/x\n    is_active: false\n"
	if err := os.WriteFile(reg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	lakeURL := "file://" + filepath.Join(dir, "lake")
	args := []string{"read", "--registry", reg, "--lake", lakeURL}

	out, err := execute(t, append(args, "--all", "--parallel", "2", "--json")...)
	if err == nil || !strings.Contains(err.Error(), "bad") || strings.Contains(err.Error(), "acme") {
		t.Fatalf("read --all: error %v, want one naming tenant bad only", err)
	}
	var results []readResult
	if err := json.Unmarshal([]byte(out), &results); err != nil {
		t.Fatalf("--json output %q: %v", out, err)
	}
	if len(results) != 3 {
		t.Fatalf("results for %d tenants, want 3 (active ones): %s", len(results), out)
	}
	for _, r := range results {
		switch r.Tenant {
		case "bad":
			if !strings.Contains(r.Error, "orders") || !strings.Contains(r.Error, "day") || !strings.Contains(r.Error, "(id)=(2)") {
				t.Errorf("bad tenant's error %q does not name table, column and key", r.Error)
			}
		default:
			if r.Error != "" || r.Rows != 2 || r.Tables != 1 {
				t.Errorf("tenant %s: %+v", r.Tenant, r)
			}
		}
	}
	lk, err := lake.Open(ctx, lakeURL)
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Close()
	for id, want := range map[string]int{"acme": 1, "globex": 1, "bad": 0} {
		snaps, err := lk.Snapshots(ctx, id)
		if err != nil || len(snaps) != want {
			t.Errorf("tenant %s: %d committed snapshots (%v), want %d", id, len(snaps), err, want)
		}
	}

	out = mustExecute(t, append(args, "--tenant", "bad", "--policy", "public.orders.day=null")...)
	if !strings.Contains(out, "bad") {
		t.Errorf("read --tenant bad output %q", out)
	}
	snaps, err := lk.Snapshots(ctx, "bad")
	if err != nil || len(snaps) != 1 {
		t.Fatalf("bad with policy: %v %v", snaps, err)
	}
	m, err := lk.Manifest(ctx, "bad", snaps[0].SnapshotID)
	if err != nil {
		t.Fatal(err)
	}
	if c := m.Tables[0].Columns[1]; c.Profile.Nulls != 1 || !c.Nullable {
		t.Errorf("policy null: column %+v, want 1 null", c)
	}

	if _, err := execute(t, append(args, "--tenant", "acme", "--policy", "orders.day=zero")...); err == nil {
		t.Error("read with a malformed --policy succeeded")
	}
}
