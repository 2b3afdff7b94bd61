package bigquery

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"cloud.google.com/go/bigquery"
	"google.golang.org/api/iterator"

	"github.com/tenantlake/tenantlake/lake"
	"github.com/tenantlake/tenantlake/writers"
)

// The all-tenants dataset holds one combined table per table name: every
// tenant's live rows with two columns first, tenant_id (STRING) and
// tenant_num (INT64, the tenant's number from claimTenantNum). The table is
// integer-range partitioned on tenant_num, one partition per tenant (0 to
// 9,999), so a promotion replaces one tenant's slice atomically and never
// touches another's:
//
//   - PromoteCopy (BigQuery): one query job per table, SELECT from the
//     tenant's live table into the partition decorator "table$<num>" with
//     WRITE_TRUNCATE and the schema update options ALLOW_FIELD_ADDITION and
//     ALLOW_FIELD_RELAXATION (a tenant's new column is added, NULL for the
//     others); a table the tenant no longer has loses its partition
//     (tables.delete on the decorator). Loads of different tenants write
//     different partitions and run side by side.
//   - PromoteCTAS (the emulator, which accepts partition decorators but
//     writes nothing to them): one transaction per table, DELETE the
//     tenant's rows, then INSERT its live rows; new columns first rebuild
//     the table with them, through a copy (the emulator has no ALTER TABLE). Serialised
//     within a process; the emulator runs one process.
//
// A column a tenant lacks is NULL in its slice. A column whose type differs
// from the combined table's fails that table's slice, naming the column, and
// the slice stays as it was (stale, said in the outcome): values are never
// cast. A source column named tenant_id or tenant_num is carried as
// source_tenant_id or source_tenant_num. Every column of a combined table
// is NULLABLE, and decimals carry no precision or scale (tenants may
// differ). RebuildAllTenants rebuilds one tenant's slices from its live
// tables.

// The columns the combined tables add, and the names a source column of
// the same name takes there.
const (
	colTenantID  = "tenant_id"
	colTenantNum = "tenant_num"
)

// combinedName is the name a live column takes in a combined table.
func combinedName(col string) string {
	if col == colTenantID || col == colTenantNum {
		return "source_" + col
	}
	return col
}

// combinedLocks serialises, in PromoteCTAS mode, the changes of one
// combined table within a process ("project.dataset.table" → *sync.Mutex).
var combinedLocks sync.Map

// sliceTable is one table of a tenant for the all-tenants update: its name
// and live schema; a nil schema means the tenant no longer has the table.
type sliceTable struct {
	name   string
	schema bigquery.Schema
}

// updateAllTenants replaces tenant's slice of the combined table of each of
// tables. It returns the tables whose slice it could not replace and why,
// one line each; the live tables are never changed here.
func (w *Writer) updateAllTenants(ctx context.Context, tenant string, num int64, snapshotID, loadID string, tables []sliceTable) []string {
	var stale []string
	for _, t := range tables {
		if err := w.replaceSlice(ctx, tenant, num, snapshotID, loadID, t); err != nil {
			stale = append(stale, fmt.Sprintf("%s (%v)", t.name, err))
		}
	}
	return stale
}

// replaceSlice replaces tenant's slice of one combined table.
func (w *Writer) replaceSlice(ctx context.Context, tenant string, num int64, snapshotID, loadID string, t sliceTable) error {
	combined := w.client.Dataset(w.cfg.AllTenantsDataset).Table(t.name)
	if w.cfg.Promotion == PromoteCTAS {
		mu, _ := combinedLocks.LoadOrStore(w.cfg.Project+"."+w.cfg.AllTenantsDataset+"."+t.name, &sync.Mutex{})
		mu.(*sync.Mutex).Lock()
		defer mu.(*sync.Mutex).Unlock()
	}
	md, err := w.combinedMetadata(ctx, combined, t.schema)
	if err != nil {
		return err
	}
	if md == nil { // no combined table and nothing to put in it
		return nil
	}
	if t.schema == nil {
		if w.cfg.Promotion == PromoteCTAS {
			return w.exec(ctx, "DELETE FROM "+tablePath(combined)+" WHERE tenant_id = "+literal(tenant))
		}
		err := w.client.Dataset(w.cfg.AllTenantsDataset).Table(fmt.Sprintf("%s$%d", t.name, num)).Delete(ctx)
		if err != nil && !isNotFound(err) {
			return fmt.Errorf("delete partition %d of %s.%s: %w", num, w.cfg.AllTenantsDataset, t.name, err)
		}
		return nil
	}
	cols, added, err := sliceColumns(md.Schema, t.schema)
	if err != nil {
		return err
	}
	live := w.client.Dataset(w.datasetName(tenant)).Table(t.name)
	sel := sliceSelect(tenant, num, cols, live)
	if w.cfg.Promotion != PromoteCTAS {
		id := withHash(fmt.Sprintf("tenantlake_alltenants_%s_%s_%s_%s", tenant, lake.ShortSnapshotID(snapshotID), t.name, loadID),
			w.cfg.Project, w.cfg.AllTenantsDataset, tenant, snapshotID, t.name, loadID)
		_, _, err := w.runJob(ctx, id, func(ctx context.Context) (*bigquery.Job, error) {
			q := w.client.Query(sel)
			q.QueryConfig = sliceQueryConfig(sel, w.client.Dataset(w.cfg.AllTenantsDataset).Table(fmt.Sprintf("%s$%d", t.name, num)), w.cfg.Labels)
			q.JobID, q.Location = id, w.cfg.Location
			return q.Run(ctx)
		})
		return err
	}
	if len(added) > 0 {
		// The emulator keeps no schema change made through the API, has no
		// ALTER TABLE, and drops a table before its CREATE OR REPLACE reads
		// it: the table is rebuilt with the new columns through a copy.
		list := []string{"*"}
		for _, f := range added {
			list = append(list, "CAST(NULL AS "+sqlType(f)+") AS "+quoteIdent(f.Name))
		}
		tmp := tablePath(w.client.Dataset(w.cfg.AllTenantsDataset).Table(t.name + "__tenantlake_rebuild"))
		for _, stmt := range []string{
			"CREATE OR REPLACE TABLE " + tmp + " AS SELECT " + strings.Join(list, ", ") + " FROM " + tablePath(combined),
			"DROP TABLE " + tablePath(combined),
			"CREATE TABLE " + tablePath(combined) + " AS SELECT * FROM " + tmp,
			"DROP TABLE " + tmp,
		} {
			if err := w.exec(ctx, stmt); err != nil {
				return fmt.Errorf("add columns to %s.%s: %s: %w", w.cfg.AllTenantsDataset, t.name, stmt, err)
			}
		}
	}
	names := []string{colTenantID, colTenantNum}
	for _, c := range cols {
		names = append(names, quoteIdent(c.name))
	}
	return w.exec(ctx, "BEGIN TRANSACTION;\nDELETE FROM "+tablePath(combined)+" WHERE tenant_id = "+literal(tenant)+
		";\nINSERT INTO "+tablePath(combined)+" ("+strings.Join(names, ", ")+")\n"+sel+";\nCOMMIT TRANSACTION;")
}

// sliceQueryConfig is the configuration of the query job that replaces one
// tenant's partition dst ("table$<num>") of a combined table with sel.
func sliceQueryConfig(sel string, dst *bigquery.Table, labels map[string]string) bigquery.QueryConfig {
	return bigquery.QueryConfig{
		Q:                   sel,
		Dst:                 dst,
		CreateDisposition:   bigquery.CreateNever,
		WriteDisposition:    bigquery.WriteTruncate,
		SchemaUpdateOptions: []string{"ALLOW_FIELD_ADDITION", "ALLOW_FIELD_RELAXATION"},
		Labels:              labels,
	}
}

// combinedMetadata returns the metadata of combined table t, creating it
// (partitioned, with schema's columns) when missing and schema is not nil;
// nil when it is missing and schema is nil. An all-tenants view of the
// same name, from tenantlake before combined tables, is dropped first.
func (w *Writer) combinedMetadata(ctx context.Context, t *bigquery.Table, schema bigquery.Schema) (*bigquery.TableMetadata, error) {
	md, err := t.Metadata(ctx)
	if err == nil && md.Type == bigquery.ViewTable {
		if err := w.exec(ctx, "DROP VIEW "+tablePath(t)); err != nil {
			return nil, fmt.Errorf("drop the all-tenants view %s.%s (replaced by a combined table): %w", t.DatasetID, t.TableID, err)
		}
		md, err = t.Metadata(ctx)
	}
	if err == nil {
		return md, nil
	}
	if !isNotFound(err) {
		return nil, fmt.Errorf("read combined table %s.%s: %w", t.DatasetID, t.TableID, err)
	}
	if schema == nil {
		return nil, nil
	}
	cs := bigquery.Schema{
		{Name: colTenantID, Type: bigquery.StringFieldType, Required: true},
		{Name: colTenantNum, Type: bigquery.IntegerFieldType, Required: true},
	}
	for _, f := range schema {
		cs = append(cs, combinedField(f))
	}
	if w.cfg.Promotion == PromoteCTAS {
		// The emulator takes FLOAT, the API's name for FLOAT64, as a
		// 32-bit float in SQL, and keeps no partitioning: DDL it reads.
		err = w.exec(ctx, "CREATE TABLE IF NOT EXISTS "+tablePath(t)+" ("+columnDefs(cs)+")")
	} else {
		err = t.Create(ctx, &bigquery.TableMetadata{
			Schema:            cs,
			RangePartitioning: &bigquery.RangePartitioning{Field: colTenantNum, Range: &bigquery.RangePartitioningRange{Start: 0, End: maxTenants, Interval: 1}},
			Labels:            w.labels(nil),
			Description:       "tenantlake: every tenant's live rows of table " + t.TableID + ", one partition per tenant (tenant_num)",
		})
	}
	if err != nil && !isAlreadyExists(err) {
		return nil, fmt.Errorf("create combined table %s.%s: %w", t.DatasetID, t.TableID, err)
	}
	if md, err = t.Metadata(ctx); err != nil {
		return nil, fmt.Errorf("read combined table %s.%s: %w", t.DatasetID, t.TableID, err)
	}
	return md, nil
}

// combinedField is a live field as a combined table holds it: renamed if
// it is tenant_id or tenant_num, NULLABLE, a decimal without parameters.
func combinedField(f *bigquery.FieldSchema) *bigquery.FieldSchema {
	c := *f
	c.Name = combinedName(f.Name)
	c.Required = false
	c.Precision, c.Scale = 0, 0
	return &c
}

// sliceColumn is one column of a slice: its name in the combined table, and
// the live column it comes from ("" for a typed NULL of typ).
type sliceColumn struct {
	name, from string
	typ        string
}

// sliceColumns matches a tenant's live schema with a combined table's:
// every combined column in order (the live column, or a typed NULL where
// the tenant lacks it), then the tenant's new columns, which it returns as
// added too. A column whose type differs is an error naming it.
func sliceColumns(combined, live bigquery.Schema) ([]sliceColumn, []*bigquery.FieldSchema, error) {
	byName := map[string]*bigquery.FieldSchema{}
	for _, f := range live {
		byName[combinedName(f.Name)] = f
	}
	var cols []sliceColumn
	seen := map[string]bool{}
	for _, f := range combined {
		if f.Name == colTenantID || f.Name == colTenantNum {
			continue
		}
		seen[f.Name] = true
		lf, ok := byName[f.Name]
		switch {
		case !ok:
			cols = append(cols, sliceColumn{name: f.Name, typ: sqlType(f)})
		case sqlType(lf) != sqlType(f):
			return nil, nil, fmt.Errorf("column %s is %s in this tenant and %s in the combined table; values are never cast: rename the column or rebuild the combined table", f.Name, sqlType(lf), sqlType(f))
		default:
			cols = append(cols, sliceColumn{name: f.Name, from: lf.Name})
		}
	}
	var added []*bigquery.FieldSchema
	for _, lf := range live {
		if name := combinedName(lf.Name); !seen[name] {
			cols = append(cols, sliceColumn{name: name, from: lf.Name})
			added = append(added, combinedField(lf))
		}
	}
	return cols, added, nil
}

// sliceSelect is the query of one tenant's slice: tenant_id and tenant_num,
// then cols from live table t.
func sliceSelect(tenant string, num int64, cols []sliceColumn, t *bigquery.Table) string {
	list := []string{literal(tenant) + " AS tenant_id", fmt.Sprint(num) + " AS tenant_num"}
	for _, c := range cols {
		if c.from == "" {
			list = append(list, "CAST(NULL AS "+c.typ+") AS "+quoteIdent(c.name))
		} else {
			list = append(list, quoteIdent(c.from)+" AS "+quoteIdent(c.name))
		}
	}
	return "SELECT " + strings.Join(list, ", ") + " FROM " + tablePath(t)
}

// RebuildAllTenants replaces tenant's slice of every combined table in the
// all-tenants dataset from its live tables, as a promotion does: a slice
// that a failed update left stale is made right, and a combined table
// dropped by hand gets the tenant's rows back (run it for every tenant to
// rebuild one completely). It fails when the tenant has no live snapshot,
// and names every table whose slice it could not replace.
func (w *Writer) RebuildAllTenants(ctx context.Context, tenant string) error {
	rec, err := w.readLive(ctx, tenant)
	if err != nil {
		return fmt.Errorf("bigquery writer: rebuild all-tenants slices of %s: %w", tenant, err)
	}
	if rec.Snapshot == "" || rec.State != stateLive {
		return fmt.Errorf("bigquery writer: rebuild all-tenants slices of %s: no snapshot is live (state %q)", tenant, rec.State)
	}
	var tables []sliceTable
	have := map[string]bool{}
	it := w.client.Dataset(w.datasetName(tenant)).Tables(ctx)
	for {
		t, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return fmt.Errorf("bigquery writer: list tables of %s: %w", w.datasetName(tenant), err)
		}
		md, err := t.Metadata(ctx)
		if err != nil {
			return fmt.Errorf("bigquery writer: read table %s.%s: %w", t.DatasetID, t.TableID, err)
		}
		tables = append(tables, sliceTable{name: t.TableID, schema: md.Schema})
		have[t.TableID] = true
	}
	it = w.client.Dataset(w.cfg.AllTenantsDataset).Tables(ctx)
	for {
		t, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return fmt.Errorf("bigquery writer: list tables of %s: %w", w.cfg.AllTenantsDataset, err)
		}
		if !have[t.TableID] {
			tables = append(tables, sliceTable{name: t.TableID})
		}
	}
	if stale := w.updateAllTenants(ctx, tenant, rec.TenantNum, rec.Snapshot, writers.NewLoadID(), tables); len(stale) > 0 {
		return fmt.Errorf("bigquery writer: rebuild all-tenants slices of %s: %s", tenant, strings.Join(stale, "; "))
	}
	return nil
}

// exec runs one statement (or script) and waits for it.
func (w *Writer) exec(ctx context.Context, sql string) error {
	q := w.client.Query(sql)
	q.Location, q.Labels = w.cfg.Location, w.cfg.Labels
	job, err := q.Run(ctx)
	if err != nil {
		return err
	}
	status, err := job.Wait(ctx)
	if err != nil {
		return err
	}
	return status.Err()
}
