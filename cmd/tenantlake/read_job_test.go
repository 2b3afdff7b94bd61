package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tenantlake/tenantlake/internal/pgtest"
	"github.com/tenantlake/tenantlake/lake"
)

// TestReadWorkers: `tenantlake read --tenant T --workers 4` (the binary)
// reads the tenant with four read-job processes in one snapshot: one
// committed snapshot with every row, each range's completion record merged.
func TestReadWorkers(t *testing.T) {
	bin := filepath.Join(binaries(t), "tenantlake")
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	conn := pgtest.Connect(t, dsn)
	const n = 300000
	if _, err := conn.Exec(ctx, fmt.Sprintf(`CREATE TABLE a (id int PRIMARY KEY, bal bigint NOT NULL, pad text);
INSERT INTO a SELECT i, 10, repeat('p', 80) FROM generate_series(1, %d) i;
CREATE TABLE b (id int PRIMARY KEY, note text);
INSERT INTO b SELECT i, md5(i::text) FROM generate_series(1, 1000) i`, n)); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	reg := filepath.Join(dir, "tenants.yaml")
	if err := os.WriteFile(reg, []byte(fmt.Sprintf("tenants:\n  - tenant_id: acme\n    connection: %q\n", dsn)), 0o600); err != nil {
		t.Fatal(err)
	}
	lakeURL := "file://" + filepath.Join(dir, "lake")
	cmd := exec.Command(bin, "--lake", lakeURL, "--registry", reg, "--json", "read", "--tenant", "acme", "--workers", "4", "--connections", "1")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("read --workers 4: %v\n%s", err, stderr.String())
	}
	var res []readResult
	if err := json.Unmarshal(out, &res); err != nil || len(res) != 1 {
		t.Fatalf("output %q: %v", out, err)
	}
	if res[0].Rows != n+1000 || res[0].Tables != 2 {
		t.Errorf("result %+v, want %d rows in 2 tables", res[0], n+1000)
	}
	lk, err := lake.OpenExisting(ctx, lakeURL)
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Close()
	snaps, err := lk.Snapshots(ctx, "acme")
	if err != nil || len(snaps) != 1 || snaps[0].SnapshotID != res[0].SnapshotID {
		t.Fatalf("snapshots %v, %v", snaps, err)
	}
	m, err := lk.Manifest(ctx, "acme", res[0].SnapshotID)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Table("a"); got.Rows != n || *got.Columns[1].Profile.Sum != fmt.Sprint(10*n) {
		t.Errorf("table a: %d rows, bal sum %s", got.Rows, *got.Columns[1].Profile.Sum)
	}
	// Which process read which range is the reader's tests' concern
	// (readers/postgres TestDistributedConsistency); here every range has
	// its completion record.
	files, _ := filepath.Glob(filepath.Join(dir, "lake", lake.SnapshotPrefix("acme", m.SnapshotID), "_read", "done.*.json"))
	if len(files) != 3 { // a: 2 ranges of 32 MiB, b: 1
		t.Errorf("%d completion records, want 3", len(files))
	}
	if !strings.Contains(stderr.String(), "local-") {
		t.Errorf("stderr does not name the local execution:\n%s", stderr.String())
	}
}
