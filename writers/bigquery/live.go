package bigquery

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/api/iterator"

	"github.com/tenantlake/tenantlake/lake"
)

// The live record of every tenant is one row of the table "live" in the
// ledger dataset: the live snapshot, its state ("live", or "promoting"
// while a load replaces the tables) and the load that wrote it. A row only
// changes by a compare-and-swap on the load id: an UPDATE whose WHERE
// names the load id the writer read (or an INSERT when no row existed),
// followed by a read that checks the row now holds this load. Of two loads
// racing for one tenant, BigQuery serialises the two DML statements and
// only one finds its expected load id; the other fails and can be retried.
//
// (Dataset labels with the dataset's etag were the first design; the
// emulator neither keeps label updates nor has etags, so that design could
// not be tested end to end here. A table works the same on both.)

const liveTable = "live"

// liveRecord is a tenant's row of the live table; zero when none.
type liveRecord struct {
	Snapshot string `bigquery:"snapshot_id"`
	State    string `bigquery:"state"`
	LoadID   string `bigquery:"load_id"`
}

// errLiveChanged: the live record is not what the load read before; another
// load changed it.
var errLiveChanged = errors.New("the live record changed under this load (a concurrent load of the same tenant); retry")

// literal quotes s as a GoogleSQL string literal. Only validated tenant ids,
// snapshot ids, load ids and states reach it.
func literal(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

func (w *Writer) liveTablePath() string {
	return tablePath(w.client.Dataset(w.cfg.LedgerDataset).Table(liveTable))
}

// readLive returns tenant's live record.
func (w *Writer) readLive(ctx context.Context, tenant string) (liveRecord, error) {
	q := w.client.Query("SELECT snapshot_id, state, load_id FROM " + w.liveTablePath() + " WHERE tenant = " + literal(tenant))
	q.Location = w.cfg.Location
	it, err := q.Read(ctx)
	if err != nil {
		return liveRecord{}, fmt.Errorf("read live record of %s: %w", tenant, err)
	}
	var recs []liveRecord
	for {
		var r liveRecord
		err := it.Next(&r)
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return liveRecord{}, fmt.Errorf("read live record of %s: %w", tenant, err)
		}
		recs = append(recs, r)
	}
	switch len(recs) {
	case 0:
		return liveRecord{}, nil
	case 1:
		if _, err := lake.ParseSnapshotID(recs[0].Snapshot); err != nil {
			return liveRecord{}, fmt.Errorf("live record of %s: %w", tenant, err)
		}
		return recs[0], nil
	}
	return liveRecord{}, fmt.Errorf("live record of %s: %d rows (two first loads raced); delete all but the one matching the live tables", tenant, len(recs))
}

// swapSQL is the DML statement that replaces tenant's live record with
// next if it is still the one written by load prevLoadID ("" when there was
// no record).
func (w *Writer) swapSQL(tenant, prevLoadID string, next liveRecord) string {
	if prevLoadID == "" {
		return "INSERT INTO " + w.liveTablePath() + " (tenant, snapshot_id, state, load_id, updated_at) SELECT " +
			strings.Join([]string{literal(tenant), literal(next.Snapshot), literal(next.State), literal(next.LoadID)}, ", ") +
			", CURRENT_TIMESTAMP() FROM UNNEST([1]) WHERE NOT EXISTS (SELECT 1 FROM " + w.liveTablePath() +
			" WHERE tenant = " + literal(tenant) + ")"
	}
	return "UPDATE " + w.liveTablePath() + " SET snapshot_id = " + literal(next.Snapshot) + ", state = " + literal(next.State) +
		", load_id = " + literal(next.LoadID) + ", updated_at = CURRENT_TIMESTAMP() WHERE tenant = " + literal(tenant) +
		" AND load_id = " + literal(prevLoadID)
}

// swapLive replaces tenant's live record with next if it is still the one
// written by load prevLoadID, and fails with errLiveChanged if not.
func (w *Writer) swapLive(ctx context.Context, tenant, prevLoadID string, next liveRecord) error {
	if err := w.exec(ctx, w.swapSQL(tenant, prevLoadID, next)); err != nil {
		return fmt.Errorf("update live record of %s: %w", tenant, err)
	}
	got, err := w.readLive(ctx, tenant)
	if err != nil {
		return err
	}
	if got != next {
		return fmt.Errorf("live record of %s: %w", tenant, errLiveChanged)
	}
	return nil
}
