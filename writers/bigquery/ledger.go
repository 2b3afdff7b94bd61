package bigquery

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"cloud.google.com/go/bigquery"

	"github.com/tenantlake/tenantlake/lake"
	"github.com/tenantlake/tenantlake/writers"
)

// ledgerTable is the table of load outcomes in Config.LedgerDataset, beside
// the tenants' live records (live.go): append-only, one row per load, added
// by a streaming insert (never DML).
const ledgerTable = "loads"

// ledgerRow is one load outcome in the ledger table. Tables holds the
// per-table results (rows at source, in the lake and in the warehouse,
// checks, job ids) as JSON text.
type ledgerRow struct {
	Tenant       string    `bigquery:"tenant"`
	SnapshotID   string    `bigquery:"snapshot_id"`
	Target       string    `bigquery:"target"`
	Reason       string    `bigquery:"reason"`
	RequestID    string    `bigquery:"request_id"`
	LoadID       string    `bigquery:"load_id"`
	Outcome      string    `bigquery:"outcome"`
	Message      string    `bigquery:"message"`
	PreviousLive string    `bigquery:"previous_live"`
	Live         string    `bigquery:"live"`
	Tables       string    `bigquery:"tables"`
	StartedAt    time.Time `bigquery:"started_at"`
	FinishedAt   time.Time `bigquery:"finished_at"`
}

func (w *Writer) ensureLedgerTables(ctx context.Context) error {
	schema, err := bigquery.InferSchema(ledgerRow{})
	if err != nil {
		return fmt.Errorf("ledger table schema: %w", err)
	}
	t := w.client.Dataset(w.cfg.LedgerDataset).Table(ledgerTable)
	if err := t.Create(ctx, &bigquery.TableMetadata{Schema: schema}); err != nil && !isAlreadyExists(err) {
		if _, merr := t.Metadata(ctx); merr != nil { // created by another load just now (emulator: 500)
			return fmt.Errorf("create table %s.%s: %w", w.cfg.LedgerDataset, ledgerTable, err)
		}
	}
	return nil
}

// writeLedger records out in the lake (write-once, one object per load) and
// as a row of the ledger table (insert id: the load id, so a retried insert
// is not counted twice).
func (w *Writer) writeLedger(ctx context.Context, lk *lake.Lake, out *writers.Outcome) error {
	if err := lk.WriteLedger(ctx, out.Tenant, out.Target, out.SnapshotID, out.LoadID, out); err != nil {
		return err
	}
	if err := w.ensureDatasets(ctx, out.Tenant); err != nil {
		return err
	}
	tables, err := json.Marshal(out.Tables)
	if err != nil {
		return fmt.Errorf("encode table results: %w", err)
	}
	row := &ledgerRow{
		Tenant: out.Tenant, SnapshotID: out.SnapshotID, Target: out.Target, Reason: out.Reason,
		RequestID: out.RequestID, LoadID: out.LoadID, Outcome: out.Outcome, Message: out.Message,
		PreviousLive: out.PreviousLive, Live: out.Live, Tables: string(tables),
		StartedAt: out.StartedAt, FinishedAt: out.FinishedAt,
	}
	ins := w.client.Dataset(w.cfg.LedgerDataset).Table(ledgerTable).Inserter()
	if err := ins.Put(ctx, &bigquery.StructSaver{Struct: row, InsertID: out.LoadID}); err != nil {
		return fmt.Errorf("insert into %s.%s: %w", w.cfg.LedgerDataset, ledgerTable, err)
	}
	return nil
}
