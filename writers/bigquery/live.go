package bigquery

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"cloud.google.com/go/bigquery"
	"google.golang.org/api/iterator"

	"github.com/tenantlake/tenantlake/lake"
)

// The live record of a tenant is the one row of its own table in the ledger
// dataset, "live__<tenant>": the live snapshot, its state ("live", or
// "promoting" while a load replaces the tables), the load that wrote it and
// the tenant's number (tenantNum). Each tenant has its own table, so loads
// of different tenants never touch one table: BigQuery's limits on DML per
// table (2 running, 20 queued) and on table metadata updates apply to one
// tenant's loads only.
//
// The record changes only under a precondition that BigQuery enforces:
//
//   - the first load of a tenant creates the table with its row in one
//     statement, CREATE TABLE ... AS SELECT (no OR REPLACE): of two first
//     loads, the second statement fails because the table exists, so the
//     record can never hold two rows;
//   - later loads change it with UPDATE ... WHERE load_id = <the load id
//     read>: BigQuery's DML runs under snapshot isolation, and of two
//     concurrent updates of the one row one fails or, retried, no longer
//     matches its WHERE.
//
// Either way the writer reads the row back and fails with errLiveChanged
// unless it holds what this load wrote. The ledger table "loads" stays the
// append-only history of every load.

// liveTablePrefix starts the name of each tenant's live-record table.
const liveTablePrefix = "live__"

// liveRecord is a tenant's live record; zero when none.
type liveRecord struct {
	Snapshot  string `bigquery:"snapshot_id"`
	State     string `bigquery:"state"`
	LoadID    string `bigquery:"load_id"`
	TenantNum int64  `bigquery:"tenant_num"`
}

// errLiveChanged: the live record is not what the load read before; another
// load changed it.
var errLiveChanged = errors.New("the live record changed under this load (a concurrent load of the same tenant); retry")

// literal quotes s as a GoogleSQL string literal. Only validated tenant ids,
// snapshot ids, load ids and states reach it.
func literal(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// liveTable is tenant's live-record table.
func (w *Writer) liveTable(tenant string) *bigquery.Table {
	return w.client.Dataset(w.cfg.LedgerDataset).Table(liveTablePrefix + tenant)
}

// readLive returns tenant's live record, zero when its table does not
// exist. It reads the table's rows (tabledata.list), not a query.
func (w *Writer) readLive(ctx context.Context, tenant string) (liveRecord, error) {
	recs, err := readLiveRows(w.liveTable(tenant).Read(ctx))
	if isNotFound(err) {
		return w.legacyLive(ctx, tenant)
	}
	if err != nil {
		return liveRecord{}, fmt.Errorf("read live record of %s: %w", tenant, err)
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
	return liveRecord{}, fmt.Errorf("live record of %s (table %s.%s): %d rows, want one", tenant, w.cfg.LedgerDataset, liveTablePrefix+tenant, len(recs))
}

// readLiveRows reads every row of it as a live record.
func readLiveRows(it *bigquery.RowIterator) ([]liveRecord, error) {
	var recs []liveRecord
	for {
		var r liveRecord
		err := it.Next(&r)
		if errors.Is(err, iterator.Done) {
			return recs, nil
		}
		if err != nil {
			return nil, err
		}
		recs = append(recs, r)
	}
}

// legacyLiveTable is the live-record table shared by every tenant that
// versions before the per-tenant records kept in the ledger dataset.
const legacyLiveTable = "live"

// legacyLive reads tenant's row of the shared live table of earlier
// versions, so a deployment that upgrades keeps each tenant's live snapshot
// (and the stale check) until the tenant's next load creates its own
// record; zero when neither exists. The record read has no load id, so that
// next load creates the tenant's record (CREATE TABLE ... AS SELECT) and
// claims its tenant number; the shared table is never written again. Two
// rows for one tenant (two first loads that raced under the old scheme)
// fail, naming the table.
func (w *Writer) legacyLive(ctx context.Context, tenant string) (liveRecord, error) {
	tb := w.client.Dataset(w.cfg.LedgerDataset).Table(legacyLiveTable)
	if _, err := tb.Metadata(ctx); isNotFound(err) {
		return liveRecord{}, nil
	} else if err != nil {
		return liveRecord{}, fmt.Errorf("read the shared live table %s.%s: %w", w.cfg.LedgerDataset, legacyLiveTable, err)
	}
	q := w.client.Query("SELECT snapshot_id, state FROM " + tablePath(tb) + " WHERE tenant = " + literal(tenant))
	q.Location, q.Labels = w.cfg.Location, w.cfg.Labels
	it, err := q.Read(ctx)
	var recs []liveRecord
	if err == nil {
		recs, err = readLiveRows(it)
	}
	if err != nil {
		return liveRecord{}, fmt.Errorf("read %s's row of the shared live table %s.%s: %w", tenant, w.cfg.LedgerDataset, legacyLiveTable, err)
	}
	switch len(recs) {
	case 0:
		return liveRecord{}, nil
	case 1:
		if _, err := lake.ParseSnapshotID(recs[0].Snapshot); err != nil {
			return liveRecord{}, fmt.Errorf("%s's row of the shared live table %s.%s: %w", tenant, w.cfg.LedgerDataset, legacyLiveTable, err)
		}
		return liveRecord{Snapshot: recs[0].Snapshot, State: recs[0].State}, nil
	}
	return liveRecord{}, fmt.Errorf("the shared live table %s.%s of an earlier version has %d rows for tenant %s, want one: delete all but the row of the snapshot its dataset holds, then load again", w.cfg.LedgerDataset, legacyLiveTable, len(recs), tenant)
}

// swapSQL is the statement that replaces tenant's live record with next if
// it is still the one written by load prevLoadID; prevLoadID "" creates the
// record, and fails if it exists.
func (w *Writer) swapSQL(tenant, prevLoadID string, next liveRecord) string {
	path := tablePath(w.liveTable(tenant))
	if prevLoadID == "" {
		return "CREATE TABLE " + path + " AS SELECT " + literal(tenant) + " AS tenant, " + literal(next.Snapshot) + " AS snapshot_id, " +
			literal(next.State) + " AS state, " + literal(next.LoadID) + " AS load_id, " + fmt.Sprint(next.TenantNum) +
			" AS tenant_num, CURRENT_TIMESTAMP() AS updated_at"
	}
	return "UPDATE " + path + " SET snapshot_id = " + literal(next.Snapshot) + ", state = " + literal(next.State) +
		", load_id = " + literal(next.LoadID) + ", updated_at = CURRENT_TIMESTAMP() WHERE load_id = " + literal(prevLoadID)
}

// swapLive replaces tenant's live record with next if it is still the one
// written by load prevLoadID ("" when there was none), and fails with
// errLiveChanged if not.
func (w *Writer) swapLive(ctx context.Context, tenant, prevLoadID string, next liveRecord) error {
	execErr := w.exec(ctx, w.swapSQL(tenant, prevLoadID, next))
	got, err := w.readLive(ctx, tenant)
	if err != nil {
		return errors.Join(execErr, err)
	}
	if got != next {
		// A CREATE that lost the race fails; an UPDATE that lost it
		// changes no row. Both leave another load's record.
		return fmt.Errorf("live record of %s: %w", tenant, errLiveChanged)
	}
	if prevLoadID == "" {
		// The record's table must outlive any default expiration of the
		// ledger dataset.
		return w.clearExpiration(ctx, w.liveTable(tenant))
	}
	return nil
}

// tenantNumPrefix starts the names of the tables that claim tenant numbers
// in the ledger dataset: "tenant_num_00042" belongs to the tenant named in
// its labels and description.
const tenantNumPrefix = "tenant_num_"

// maxTenants is the number of tenant numbers: BigQuery's integer-range
// partitioning allows 10,000 partitions per table, one per tenant in the
// all-tenants tables.
const maxTenants = 10000

// tenantNumTable is the table that claims tenant number n.
func (w *Writer) tenantNumTable(n int64) *bigquery.Table {
	return w.client.Dataset(w.cfg.LedgerDataset).Table(fmt.Sprintf("%s%05d", tenantNumPrefix, n))
}

// claimTenantNum gives tenant a number of its own, in 0..maxTenants-1, for
// its partition of the all-tenants tables: it creates the claim table of
// the lowest free number, which fails (409) if another tenant created it
// first, and then tries the next. Claims are made in order, so the claimed
// numbers are 0..k-1 and the first free one is found by a binary search on
// the claim tables' existence. A number claimed by a load that stopped
// before recording it in the live record stays unused.
func (w *Writer) claimTenantNum(ctx context.Context, tenant string) (int64, error) {
	exists := func(n int64) (bool, error) {
		_, err := w.tenantNumTable(n).Metadata(ctx)
		if isNotFound(err) {
			return false, nil
		}
		return err == nil, err
	}
	var searchErr error
	first := int64(sort.Search(maxTenants, func(i int) bool {
		if searchErr != nil {
			return true
		}
		ok, err := exists(int64(i))
		searchErr = err
		return !ok
	}))
	if searchErr != nil {
		return 0, fmt.Errorf("tenant number of %s: look up claims: %w", tenant, searchErr)
	}
	for n := first; n < maxTenants; n++ {
		err := w.tenantNumTable(n).Create(ctx, &bigquery.TableMetadata{
			Description: "tenantlake: tenant number " + fmt.Sprint(n) + " belongs to tenant " + tenant,
			Labels:      w.labels(map[string]string{labelTenant: tenant}),
		})
		if err == nil {
			return n, nil
		}
		if !isAlreadyExists(err) {
			return 0, fmt.Errorf("tenant number of %s: claim %d: %w", tenant, n, err)
		}
	}
	return 0, fmt.Errorf("tenant number of %s: all %d numbers are taken: the all-tenants tables hold at most %d tenants (one integer-range partition each)", tenant, maxTenants, maxTenants)
}
