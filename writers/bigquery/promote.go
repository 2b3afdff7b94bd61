package bigquery

import (
	"context"
	"errors"
	"fmt"

	"cloud.google.com/go/bigquery"
	"google.golang.org/api/iterator"

	"github.com/tenantlake/tenantlake/lake"
	"github.com/tenantlake/tenantlake/writers"
)

// promote replaces live table dst with staged table src, atomically per
// table: a copy job with WRITE_TRUNCATE (PromoteCopy) or one CREATE OR
// REPLACE TABLE ... AS SELECT query (PromoteCTAS). It returns the job id.
func (w *Writer) promote(ctx context.Context, src, dst *bigquery.Table, req writers.Request, table, loadID string) (string, error) {
	id := promoteJobID(w.cfg.Project+"."+dst.DatasetID, req.Tenant, req.SnapshotID, table, loadID)
	_, _, err := w.runJob(ctx, id, func(ctx context.Context) (*bigquery.Job, error) {
		if w.cfg.Promotion == PromoteCTAS {
			q := w.client.Query(ctasSQL(src, dst))
			q.JobID, q.Location, q.Labels = id, w.cfg.Location, w.cfg.Labels
			return q.Run(ctx)
		}
		c := dst.CopierFrom(src)
		c.CopyConfig = copyConfig(src, dst, w.cfg.Labels)
		c.JobID, c.Location = id, w.cfg.Location
		return c.Run(ctx)
	})
	return id, err
}

// dropOtherTables deletes the live tables of a tenant that are not in
// snapshot m, so that a full load (or replay) leaves exactly m's tables. It
// returns the names it dropped.
func (w *Writer) dropOtherTables(ctx context.Context, ds *bigquery.Dataset, m *lake.Manifest) ([]string, error) {
	var dropped []string
	it := ds.Tables(ctx)
	for {
		t, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return dropped, fmt.Errorf("list tables of dataset %s: %w", ds.DatasetID, err)
		}
		if m.Table(t.TableID) != nil {
			continue
		}
		if err := t.Delete(ctx); err != nil && !isNotFound(err) {
			return dropped, fmt.Errorf("drop table %s.%s, not in snapshot %s: %w", ds.DatasetID, t.TableID, m.SnapshotID, err)
		}
		dropped = append(dropped, t.TableID)
	}
	return dropped, nil
}
