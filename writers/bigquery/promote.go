package bigquery

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"cloud.google.com/go/bigquery"

	"github.com/tenantlake/tenantlake/lake"
	"github.com/tenantlake/tenantlake/writers"
)

// promote replaces live table dst with staged table src, atomically per
// table, and returns the job id: a copy job with WRITE_TRUNCATE (PromoteCopy,
// for a table without JSON to parse) or one statement, CREATE OR REPLACE
// TABLE dst (columns) AS SELECT ... FROM src (promoteSQL; PromoteCTAS, and
// with PromoteCopy every table with a JSON column, which a copy cannot
// turn from the staged STRING into JSON). live is the live table's schema.
// The live table then carries no expiration (clearExpiration), whatever
// the staged table or the dataset's default had.
func (w *Writer) promote(ctx context.Context, src, dst *bigquery.Table, live bigquery.Schema, req writers.Request, table, loadID string) (string, error) {
	id := promoteJobID(w.cfg.Project+"."+dst.DatasetID, req.Tenant, req.SnapshotID, table, loadID)
	_, _, err := w.runJob(ctx, id, func(ctx context.Context) (*bigquery.Job, error) {
		if w.cfg.Promotion == PromoteCTAS || hasJSON(live) {
			q := w.client.Query(promoteSQL(src, dst, live))
			q.JobID, q.Location, q.Labels = id, w.cfg.Location, w.cfg.Labels
			return q.Run(ctx)
		}
		c := dst.CopierFrom(src)
		c.CopyConfig = copyConfig(src, dst, w.cfg.Labels)
		c.JobID, c.Location = id, w.cfg.Location
		return c.Run(ctx)
	})
	if err != nil {
		return id, err
	}
	return id, w.clearExpiration(ctx, dst)
}

// liveSchema is the schema of a live table made from a manifest schema:
// itself, or with JSON kept as STRING (Config.JSONAsString).
func (w *Writer) liveSchema(schema bigquery.Schema) bigquery.Schema {
	if w.cfg.JSONAsString {
		return stagedSchema(schema)
	}
	return schema
}

// promoteSQL is the statement that replaces live table dst with staged
// table src in one step: the manifest's columns, types and modes, each JSON
// column parsed from its staged text with PARSE_JSON (wide_number_mode
// 'exact', the default; validation has counted the values it refuses).
func promoteSQL(src, dst *bigquery.Table, live bigquery.Schema) string {
	sel := make([]string, len(live))
	for i, f := range live {
		col := quoteIdent(f.Name)
		sel[i] = col
		if f.Type == bigquery.JSONFieldType {
			sel[i] = "PARSE_JSON(" + col + ", wide_number_mode => 'exact') AS " + col
		}
	}
	return fmt.Sprintf("CREATE OR REPLACE TABLE %s (%s) AS SELECT %s FROM %s", tablePath(dst), columnDefs(live), strings.Join(sel, ", "), tablePath(src))
}

// clearExpiration makes sure live table dst carries no expiration: it
// reads the table's metadata and, if an expiration is set (a copy job may
// carry the staged table's, a dataset may have a default), removes it
// under the etag it read, then reads it again to check. A live table that
// keeps an expiration fails the promotion.
func (w *Writer) clearExpiration(ctx context.Context, dst *bigquery.Table) error {
	md, err := dst.Metadata(ctx)
	if err != nil {
		return fmt.Errorf("read live table %s.%s: %w", dst.DatasetID, dst.TableID, err)
	}
	if md.ExpirationTime.IsZero() {
		return nil
	}
	if _, err := dst.Update(ctx, bigquery.TableMetadataToUpdate{ExpirationTime: bigquery.NeverExpire}, md.ETag); err != nil {
		return fmt.Errorf("clear the expiration (%s) of live table %s.%s: %w", md.ExpirationTime.UTC().Format(time.RFC3339), dst.DatasetID, dst.TableID, err)
	}
	if md, err = dst.Metadata(ctx); err != nil {
		return fmt.Errorf("read live table %s.%s: %w", dst.DatasetID, dst.TableID, err)
	}
	if !md.ExpirationTime.IsZero() {
		return fmt.Errorf("live table %s.%s still expires at %s after its expiration was cleared", dst.DatasetID, dst.TableID, md.ExpirationTime.UTC().Format(time.RFC3339))
	}
	return nil
}

// ownedTables returns the names of the live tables of a tenant that a full
// load of m may drop: the tables of the snapshots whose loads made them,
// that is of the snapshot live before (previous) and, when the load
// completes an interrupted promotion, of the one live before that
// (interrupted's PreviousLive), less m's own. Tables of a user's, or of a
// snapshot whose manifest retention deleted, are never named; the second
// result says which manifests were gone.
func ownedTables(ctx context.Context, lk *lake.Lake, m *lake.Manifest, previous string, interrupted *writers.Outcome) ([]string, []string, error) {
	ids := []string{previous}
	if interrupted != nil && interrupted.PreviousLive != previous {
		ids = append(ids, interrupted.PreviousLive)
	}
	var names, gone []string
	seen := map[string]bool{}
	for _, id := range ids {
		if id == "" || id == m.SnapshotID {
			continue
		}
		pm, err := lk.Manifest(ctx, m.Tenant, id)
		if errors.Is(err, lake.ErrNotFound) {
			gone = append(gone, id)
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("manifest of the previous live snapshot %s: %w", id, err)
		}
		for _, t := range pm.Tables {
			if m.Table(t.Name) == nil && !seen[t.Name] {
				seen[t.Name] = true
				names = append(names, t.Name)
			}
		}
	}
	return names, gone, nil
}

// dropTables deletes the tenant's live tables names (ownedTables), so
// that a full load (or replay) leaves no table of an earlier snapshot
// that m does not have. A table already gone is skipped. It returns the
// names it dropped.
func (w *Writer) dropTables(ctx context.Context, ds *bigquery.Dataset, m *lake.Manifest, names []string) ([]string, error) {
	var dropped []string
	for _, name := range names {
		err := ds.Table(name).Delete(ctx)
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return dropped, fmt.Errorf("drop table %s.%s, not in snapshot %s: %w", ds.DatasetID, name, m.SnapshotID, err)
		}
		dropped = append(dropped, name)
	}
	return dropped, nil
}
