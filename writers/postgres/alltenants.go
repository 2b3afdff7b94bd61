package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// tenantIDColumn is the column the all-tenants views add. A tenant's own
// column of that name appears in the views as sourceTenantIDColumn.
const (
	tenantIDColumn       = "tenant_id"
	sourceTenantIDColumn = "source_tenant_id"
)

// viewColumn is one column of an all-tenants view.
type viewColumn struct {
	name string
	typ  string // the type every tenant agrees on, or "text" when they differ
}

// viewPart is one tenant's table in an all-tenants view.
type viewPart struct {
	tenant, schema string
	cols           map[string]bool
}

// allTenants is the all-tenants schema.
func (w *Writer) allTenants() schemaRef {
	return schemaRef{name: w.cfg.AllTenantsSchema, role: roleAllTenants, option: "all_tenants_schema=" + w.cfg.AllTenantsSchema}
}

// keptView is an all-tenants view that objects of someone else's depend
// on: it is replaced in place (CREATE OR REPLACE VIEW), keeping its
// columns, so they keep working.
type keptView struct {
	cols []column // the view's columns, tenant_id first
	deps []string // what depends on it
}

// detachAllTenants makes the all-tenants views let go of the tenants'
// tables before a promotion replaces them, in tx: a view nothing else
// depends on is dropped (rebuildAllTenants creates it again); a view that
// other objects depend on is kept, its query replaced by one that returns
// no rows and reads no table, until rebuildAllTenants restores it. The
// caller holds the all-tenants lock.
func (w *Writer) detachAllTenants(ctx context.Context, tx pgx.Tx) (map[string]keptView, error) {
	ref := w.allTenants()
	if err := ensureSchema(ctx, tx, ref); err != nil {
		return nil, err
	}
	views, err := ownedObjects(ctx, tx, ref.name, kindView)
	if err != nil {
		return nil, err
	}
	kept := map[string]keptView{}
	for _, v := range views {
		oid, err := relation(ctx, tx, ref.name, v)
		if err != nil {
			return nil, err
		}
		if oid == 0 { // dropped by hand
			if err := forgetObject(ctx, tx, ref.name, v); err != nil {
				return nil, err
			}
			continue
		}
		deps, err := dependents(ctx, tx, oid, "")
		if err != nil {
			return nil, fmt.Errorf("all-tenants view %s.%s: %w", ref.name, v, err)
		}
		if len(deps) == 0 {
			if err := dropOwned(ctx, tx, ref.name, v, "VIEW", "all-tenants view"); err != nil {
				return nil, err
			}
			continue
		}
		cols, err := columns(ctx, tx, oid)
		if err != nil {
			return nil, fmt.Errorf("all-tenants view %s.%s: %w", ref.name, v, err)
		}
		items := make([]string, len(cols))
		for i, c := range cols {
			items[i] = "NULL::" + c.typ + " AS " + pgx.Identifier{c.name}.Sanitize()
		}
		stub := "CREATE OR REPLACE VIEW " + pgx.Identifier{ref.name, v}.Sanitize() + " AS SELECT " + strings.Join(items, ", ") + " WHERE false"
		if _, err := tx.Exec(ctx, stub); err != nil {
			return nil, fmt.Errorf("all-tenants view %s.%s: detach from the tenants' tables: %w", ref.name, v, withDetail(err))
		}
		kept[v] = keptView{cols: cols, deps: deps}
	}
	return kept, nil
}

// rebuildAllTenants creates, in tx, for every table name found among the
// live tenants' tables, a view in the all-tenants schema that is the
// UNION ALL of every tenant's table with a tenant_id column. Columns are the
// union of the tenants' columns (in order of first appearance, tenants
// sorted by id); a tenant lacking a column gives a typed NULL; a column
// whose type differs between tenants is cast to text. A kept view (see
// detachAllTenants) keeps its columns in their order and types, a column no
// tenant has any more being NULL, new columns added at the end; if a
// column's type would change, the promotion fails naming the objects that
// depend on the view. A kept view whose table no tenant has any more stays
// with no rows. The caller holds the all-tenants lock.
func (w *Writer) rebuildAllTenants(ctx context.Context, tx pgx.Tx, kept map[string]keptView) error {
	schema := w.cfg.AllTenantsSchema
	rows, err := tx.Query(ctx, `
SELECT l.tenant, l.schema_name, c.relname, a.attname, format_type(a.atttypid, a.atttypmod)
FROM tenantlake.live l
JOIN tenantlake.tables o ON o.schema_name = l.schema_name AND o.kind = 'table'
JOIN pg_namespace n ON n.nspname = l.schema_name
JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = o.table_name AND c.relkind IN ('r', 'p')
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY l.tenant, c.relname, a.attnum`)
	if err != nil {
		return fmt.Errorf("all-tenants schema %s: list tenant tables: %w", schema, err)
	}
	cols := map[string][]*viewColumn{} // table → columns in order
	parts := map[string][]*viewPart{}  // table → tenants, sorted
	var ten, sch, table, col, typ string
	_, err = pgx.ForEachRow(rows, []any{&ten, &sch, &table, &col, &typ}, func() error {
		ps := parts[table]
		if len(ps) == 0 || ps[len(ps)-1].tenant != ten {
			ps = append(ps, &viewPart{tenant: ten, schema: sch, cols: map[string]bool{}})
			parts[table] = ps
		}
		ps[len(ps)-1].cols[col] = true
		for _, vc := range cols[table] {
			if vc.name == col {
				if vc.typ != typ {
					vc.typ = "text"
				}
				return nil
			}
		}
		cols[table] = append(cols[table], &viewColumn{name: col, typ: typ})
		return nil
	})
	if err != nil {
		return fmt.Errorf("all-tenants schema %s: list tenant tables: %w", schema, err)
	}
	for _, t := range sortedKeys(parts) {
		k, ok := kept[t]
		if !ok {
			if _, err := tx.Exec(ctx, viewSQL("CREATE VIEW", schema, t, cols[t], parts[t])); err != nil {
				return fmt.Errorf("all-tenants schema %s: create view %s: %w", schema, t, withDetail(err))
			}
			if err := recordObject(ctx, tx, schema, t, kindView); err != nil {
				return err
			}
			continue
		}
		merged, err := keepColumns(schema, t, k, cols[t])
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, viewSQL("CREATE OR REPLACE VIEW", schema, t, merged, parts[t])); err != nil {
			return dependentsErr(fmt.Sprintf("all-tenants view %s.%s cannot be replaced in place (%v)", schema, t, withDetail(err)), k.deps)
		}
	}
	return nil
}

// keepColumns returns the columns of kept view table: its own, in order
// (after tenant_id), then the new ones of want.
func keepColumns(schema, table string, k keptView, want []*viewColumn) ([]*viewColumn, error) {
	byName := map[string]*viewColumn{}
	for _, c := range want {
		byName[c.name] = c
	}
	var out []*viewColumn
	done := map[string]bool{}
	for i, c := range k.cols {
		if i == 0 && c.name == tenantIDColumn {
			continue
		}
		name := c.name
		if name == sourceTenantIDColumn {
			name = tenantIDColumn
		}
		if wc, ok := byName[name]; ok && wc.typ != c.typ {
			return nil, dependentsErr(fmt.Sprintf("all-tenants view %s.%s: column %s would change type from %s to %s", schema, table, c.name, c.typ, wc.typ), k.deps)
		}
		out = append(out, &viewColumn{name: name, typ: c.typ})
		done[name] = true
	}
	for _, c := range want {
		if !done[c.name] {
			out = append(out, c)
		}
	}
	return out, nil
}

func viewSQL(verb, schema, table string, cols []*viewColumn, parts []*viewPart) string {
	selects := make([]string, 0, len(parts))
	for _, p := range parts {
		items := []string{quoteLiteral(p.tenant) + "::text AS " + tenantIDColumn}
		for _, c := range cols {
			alias := c.name
			if alias == tenantIDColumn {
				alias = sourceTenantIDColumn
			}
			expr := "NULL"
			if p.cols[c.name] {
				expr = pgx.Identifier{c.name}.Sanitize()
			}
			items = append(items, expr+"::"+c.typ+" AS "+pgx.Identifier{alias}.Sanitize())
		}
		selects = append(selects, "SELECT "+strings.Join(items, ", ")+" FROM "+pgx.Identifier{p.schema, table}.Sanitize())
	}
	return verb + " " + pgx.Identifier{schema, table}.Sanitize() + " AS\n" + strings.Join(selects, "\nUNION ALL\n")
}

// quoteLiteral quotes s as an SQL string literal.
func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}
