package postgres

import (
	"context"
	"fmt"
	"sort"
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

// rebuildAllTenants recreates the all-tenants schema in tx: for every table
// name found in any live tenant schema, a view that is the UNION ALL of every
// tenant's table with a tenant_id column. Columns are the union of the
// tenants' columns (in order of first appearance, tenants sorted by id); a
// tenant lacking a column gives a typed NULL; a column whose type differs
// between tenants is cast to text. The caller holds the all-tenants lock.
func rebuildAllTenants(ctx context.Context, tx pgx.Tx, schema string) error {
	rows, err := tx.Query(ctx, `
SELECT l.tenant, l.schema_name, c.relname, a.attname, format_type(a.atttypid, a.atttypmod)
FROM tenantlake.live l
JOIN pg_namespace n ON n.nspname = l.schema_name
JOIN pg_class c ON c.relnamespace = n.oid AND c.relkind IN ('r', 'p')
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
	s := pgx.Identifier{schema}.Sanitize()
	if _, err := tx.Exec(ctx, "DROP SCHEMA IF EXISTS "+s+" CASCADE; CREATE SCHEMA "+s); err != nil {
		return fmt.Errorf("all-tenants schema %s: recreate: %w", schema, err)
	}
	tables := make([]string, 0, len(parts))
	for t := range parts {
		tables = append(tables, t)
	}
	sort.Strings(tables)
	for _, t := range tables {
		if _, err := tx.Exec(ctx, viewSQL(schema, t, cols[t], parts[t])); err != nil {
			return fmt.Errorf("all-tenants schema %s: create view %s: %w", schema, t, err)
		}
	}
	return nil
}

func viewSQL(schema, table string, cols []*viewColumn, parts []*viewPart) string {
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
	return "CREATE VIEW " + pgx.Identifier{schema, table}.Sanitize() + " AS\n" + strings.Join(selects, "\nUNION ALL\n")
}

// quoteLiteral quotes s as an SQL string literal.
func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}
