package bigquery

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"cloud.google.com/go/bigquery"
	"google.golang.org/api/iterator"

	"github.com/tenantlake/tenantlake/tenant"
)

// viewLocks serialises the rebuilds of one all-tenants dataset within a
// process ("project.dataset" → *sync.Mutex), so two tenants promoted at once
// both end up in the views: each rebuild lists the tenants after taking the
// lock. Across processes the last rebuild wins; the next promotion of any
// tenant repairs a view that missed one.
var viewLocks sync.Map

// tenantTable is one tenant's live table, for a view.
type tenantTable struct {
	tenant string
	table  *bigquery.Table
	schema bigquery.Schema
}

// rebuildAllTenants replaces, for each table name, the all-tenants view
// that unions every tenant's live table of that name with a tenant_id
// column; a name no tenant has any more loses its view.
func (w *Writer) rebuildAllTenants(ctx context.Context, names []string) error {
	mu, _ := viewLocks.LoadOrStore(w.cfg.Project+"."+w.cfg.AllTenantsDataset, &sync.Mutex{})
	mu.(*sync.Mutex).Lock()
	defer mu.(*sync.Mutex).Unlock()
	tenants, err := w.tenants(ctx)
	if err != nil {
		return err
	}
	for _, name := range names {
		var parts []tenantTable
		for _, t := range tenants {
			tb := w.client.Dataset(w.datasetName(t)).Table(name)
			md, err := tb.Metadata(ctx)
			if isNotFound(err) {
				continue
			}
			if err != nil {
				return fmt.Errorf("all-tenants view %s: read table %s.%s: %w", name, tb.DatasetID, name, err)
			}
			parts = append(parts, tenantTable{tenant: t, table: tb, schema: md.Schema})
		}
		view := w.client.Dataset(w.cfg.AllTenantsDataset).Table(name)
		if len(parts) == 0 {
			if err := w.dropView(ctx, view); err != nil {
				return fmt.Errorf("all-tenants view %s: drop: %w", name, err)
			}
			continue
		}
		if err := w.replaceView(ctx, view, unionSQL(parts)); err != nil {
			return fmt.Errorf("all-tenants view %s: %w", name, err)
		}
	}
	return nil
}

// replaceView replaces view with query: CREATE OR REPLACE VIEW, atomic;
// or, in the emulator's mode (ctas promotion), which lacks it (and DROP
// VIEW IF EXISTS, and deleting a view through the tables API), DROP VIEW
// when the view exists, then CREATE VIEW.
func (w *Writer) replaceView(ctx context.Context, view *bigquery.Table, query string) error {
	if w.cfg.Promotion != PromoteCTAS {
		return w.exec(ctx, "CREATE OR REPLACE VIEW "+tablePath(view)+" AS\n"+query)
	}
	if err := w.dropView(ctx, view); err != nil {
		return err
	}
	return w.exec(ctx, "CREATE VIEW "+tablePath(view)+" AS\n"+query)
}

// dropView drops view if it exists.
func (w *Writer) dropView(ctx context.Context, view *bigquery.Table) error {
	_, err := view.Metadata(ctx)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	return w.exec(ctx, "DROP VIEW "+tablePath(view))
}

// exec runs one statement and waits for it.
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

// tenants lists the tenants that have a dataset in the project: the
// datasets whose name fits the dataset template around a valid tenant id.
func (w *Writer) tenants(ctx context.Context) ([]string, error) {
	prefix, suffix, _ := strings.Cut(w.cfg.DatasetTemplate, TenantPlaceholder)
	var out []string
	it := w.client.Datasets(ctx)
	for {
		ds, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("list datasets of project %s: %w", w.cfg.Project, err)
		}
		id, ok := strings.CutPrefix(ds.DatasetID, prefix)
		if !ok {
			continue
		}
		if id, ok = strings.CutSuffix(id, suffix); ok && tenant.ValidateID(id) == nil {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out, nil
}

// unionSQL is the query of an all-tenants view: one SELECT per tenant,
// UNION ALL, each with tenant_id first and then the union of every tenant's
// columns in order of first appearance. A column a tenant lacks is a typed
// NULL; a column whose type differs from the first tenant's is SAFE_CAST to
// it (NULL where the value does not convert). A source column named
// tenant_id is left out: the view's tenant_id says whose row it is.
func unionSQL(parts []tenantTable) string {
	type col struct {
		name  string
		field *bigquery.FieldSchema
	}
	var cols []col
	seen := map[string]bool{}
	for _, p := range parts {
		for _, f := range p.schema {
			if f.Name == "tenant_id" || seen[f.Name] {
				continue
			}
			seen[f.Name] = true
			cols = append(cols, col{f.Name, f})
		}
	}
	selects := make([]string, 0, len(parts))
	for _, p := range parts {
		have := map[string]*bigquery.FieldSchema{}
		for _, f := range p.schema {
			have[f.Name] = f
		}
		list := []string{"'" + p.tenant + "' AS tenant_id"} // a valid tenant id needs no escaping
		for _, c := range cols {
			id := quoteIdent(c.name)
			f, ok := have[c.name]
			switch {
			case !ok:
				list = append(list, "CAST(NULL AS "+sqlType(c.field)+") AS "+id)
			case sqlType(f) != sqlType(c.field):
				list = append(list, "SAFE_CAST("+id+" AS "+sqlType(c.field)+") AS "+id)
			default:
				list = append(list, id)
			}
		}
		selects = append(selects, "SELECT "+strings.Join(list, ", ")+" FROM "+tablePath(p.table))
	}
	return strings.Join(selects, "\nUNION ALL\n")
}
