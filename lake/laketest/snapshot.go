package laketest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tenantlake/tenantlake/lake"
)

// PartBytes is the content WriteParts gives part n of table in a snapshot:
// deterministic and different for every part.
func PartBytes(tenant, snapshotID, table string, n int) []byte {
	return fmt.Appendf(nil, "part %d of %s/%s/%s\n", n, tenant, snapshotID, table)
}

// WriteParts writes, without committing, a snapshot of tenant at id with
// parts[i] parts for table tables[i] (one part when parts is shorter), and
// returns the manifest that would commit it. Each part holds PartBytes and
// claims n+1 rows. The read runs on a clock one second after the id's time
// (ClockAt), so ids from any time can be written.
func WriteParts(t testing.TB, lk *lake.Lake, tenant, id string, tables []string, parts ...int) *lake.Manifest {
	t.Helper()
	_, m := StartSnapshot(t, lk, tenant, id, tables, parts...)
	return m
}

// ClockAt returns a clock for Lake.WithClock that always says one second
// after snapshot id's time: a read of that id that takes no time.
func ClockAt(t testing.TB, id string) func() time.Time {
	t.Helper()
	start, err := lake.ParseSnapshotID(id)
	if err != nil {
		t.Fatal(err)
	}
	return func() time.Time { return start.Add(time.Second) }
}

// StartSnapshot is WriteParts that also returns the Snapshot, to commit it
// or write more parts to it.
func StartSnapshot(t testing.TB, lk *lake.Lake, tenant, id string, tables []string, parts ...int) (*lake.Snapshot, *lake.Manifest) {
	t.Helper()
	ctx := context.Background()
	s, err := lk.WithClock(ClockAt(t, id)).NewSnapshot(ctx, tenant, id)
	if err != nil {
		t.Fatal(err)
	}
	start, err := lake.ParseSnapshotID(id)
	if err != nil {
		t.Fatal(err)
	}
	m := &lake.Manifest{
		FormatVersion: lake.FormatVersion,
		Tenant:        tenant,
		SnapshotID:    id,
		Source:        lake.Source{Kind: "postgres", Database: tenant, ServerVersion: "15.18", TxSnapshot: "100:100:", LSN: "0/16B3748"},
		StartedAt:     start,
		CommittedAt:   start.Add(1500 * time.Millisecond),
		ToolVersion:   "laketest",
		Skipped:       []lake.Skipped{{Source: "public.big_blobs", Reason: "excluded by the registry"}},
	}
	for i, table := range tables {
		n := 1
		if i < len(parts) {
			n = parts[i]
		}
		min, max, sum := "1", "9", "45"
		tab := lake.Table{
			Source: "public." + table,
			Name:   table,
			Columns: []lake.Column{
				{Source: "id", Name: "id", SourceType: "bigint", ParquetType: "INT64", BigQueryType: "INT64",
					Profile: lake.Profile{Min: &min, Max: &max, Sum: &sum}},
				{Source: "note", Name: "note", SourceType: "text", ParquetType: "BYTE_ARRAY STRING", BigQueryType: "STRING",
					Nullable: true, Profile: lake.Profile{Nulls: 2}},
			},
			PrimaryKey: []string{"id"},
		}
		for j := 0; j < n; j++ {
			p, err := s.CreatePart(ctx, table, j)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := p.Write(PartBytes(tenant, id, table, j)); err != nil {
				t.Fatal(err)
			}
			p.SetRows(int64(j + 1))
			if err := p.Close(); err != nil {
				t.Fatal(err)
			}
			tab.Files = append(tab.Files, p.File())
			tab.Rows += int64(j + 1)
		}
		m.Tables = append(m.Tables, tab)
	}
	return s, m
}

// WriteSnapshot writes and commits a snapshot (see WriteParts) and returns
// its manifest.
func WriteSnapshot(t testing.TB, lk *lake.Lake, tenant, id string, tables []string, parts ...int) *lake.Manifest {
	t.Helper()
	s, m := StartSnapshot(t, lk, tenant, id, tables, parts...)
	if err := s.Commit(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	return m
}
