package postgres

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// What tenantlake owns in a warehouse is recorded in its own catalog, in the
// same transaction that creates each object:
//
//   - tenantlake.schemas: every schema it created, with its role (control,
//     tenant, staging, all_tenants) and, for tenant and staging schemas, the
//     tenant;
//   - tenantlake.tables: every table and view it created in those schemas.
//
// The writer drops or replaces only objects listed there, and never with
// CASCADE: anything else in a warehouse, including objects in tenantlake's
// own schemas, is left alone, and an object of someone else's that stands in
// the way (a schema of the same name, a view over a table that must go)
// fails the load with an error that names it, with nothing changed.

// Roles of the schemas in tenantlake.schemas.
const (
	roleControl    = "control"
	roleTenant     = "tenant"
	roleStaging    = "staging"
	roleAllTenants = "all_tenants"
)

// Kinds of the objects in tenantlake.tables.
const (
	kindTable   = "table"
	kindView    = "view"
	kindChanges = "changes" // a change table (changes.go)
)

// catalogSQL creates the catalog tables; it runs in setup after the control
// schema exists.
const catalogSQL = `
CREATE TABLE IF NOT EXISTS tenantlake.schemas (
	schema_name text PRIMARY KEY,
	role        text NOT NULL CHECK (role IN ('control', 'tenant', 'staging', 'all_tenants')),
	tenant      text NOT NULL DEFAULT '',
	created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS tenantlake.tables (
	schema_name text NOT NULL REFERENCES tenantlake.schemas,
	table_name  text NOT NULL,
	kind        text NOT NULL,
	PRIMARY KEY (schema_name, table_name)
);
-- Catalogs made before change tables allowed only tables and views.
DO $$ BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = 'tenantlake.tables'::regclass AND conname = 'tables_kinds') THEN
		ALTER TABLE tenantlake.tables DROP CONSTRAINT IF EXISTS tables_kind_check;
		ALTER TABLE tenantlake.tables ADD CONSTRAINT tables_kinds CHECK (kind IN ('table', 'view', 'changes'));
	END IF;
END $$;
INSERT INTO tenantlake.schemas (schema_name, role) VALUES ('tenantlake', 'control') ON CONFLICT DO NOTHING;`

// schemaRef is a schema the writer needs, and the option that named it
// (for errors).
type schemaRef struct {
	name, role, tenant string
	option             string // e.g. "schema_template=tenant_{tenant}"
}

// ErrNotOwned is matched (errors.Is) by the errors of loads refused because
// an object in the way was not created by tenantlake, or has dependent
// objects that tenantlake did not create.
var ErrNotOwned = errors.New("not created by tenantlake")

// checkSchema says whether schema s exists, and fails unless it is missing
// or recorded as tenantlake's with the same role and tenant. It only reads.
func checkSchema(ctx context.Context, q querier, s schemaRef) (exists bool, err error) {
	var role, tenantID string
	err = q.QueryRow(ctx, `
SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1),
       coalesce((SELECT role FROM tenantlake.schemas WHERE schema_name = $1), ''),
       coalesce((SELECT tenant FROM tenantlake.schemas WHERE schema_name = $1), '')`, s.name).Scan(&exists, &role, &tenantID)
	if err != nil {
		return false, fmt.Errorf("look up schema %s: %w", s.name, err)
	}
	switch {
	case role == "" && exists:
		return true, fmt.Errorf("%s: schema %q exists and was %w; tenantlake never drops or replaces a schema it did not create: choose another name", s.option, s.name, ErrNotOwned)
	case role != "" && (role != s.role || tenantID != s.tenant):
		what := "the " + role + " schema"
		if tenantID != "" {
			what += " of tenant " + tenantID
		}
		return exists, fmt.Errorf("%s: schema %q is tenantlake's %s, not the %s schema%s: two options or templates collide", s.option, s.name, what, s.role, ofTenant(s.tenant))
	}
	return exists, nil
}

func ofTenant(t string) string {
	if t == "" {
		return ""
	}
	return " of tenant " + t
}

// ensureSchema creates schema s, and records it, unless it exists; it fails
// as checkSchema does.
func ensureSchema(ctx context.Context, tx pgx.Tx, s schemaRef) error {
	exists, err := checkSchema(ctx, tx, s)
	if err != nil || exists {
		return err
	}
	if _, err := tx.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{s.name}.Sanitize()); err != nil {
		return fmt.Errorf("create schema %s: %w", s.name, err)
	}
	_, err = tx.Exec(ctx, `
INSERT INTO tenantlake.schemas (schema_name, role, tenant) VALUES ($1, $2, $3)
ON CONFLICT (schema_name) DO UPDATE SET created_at = now()`, s.name, s.role, s.tenant)
	if err != nil {
		return fmt.Errorf("record schema %s: %w", s.name, err)
	}
	return nil
}

// ownedObjects returns the names of the objects of kind that tenantlake
// recorded in schema, sorted.
func ownedObjects(ctx context.Context, q pgx.Tx, schema, kind string) ([]string, error) {
	rows, err := q.Query(ctx, `SELECT table_name FROM tenantlake.tables WHERE schema_name = $1 AND kind = $2 ORDER BY 1`, schema, kind)
	if err != nil {
		return nil, fmt.Errorf("list tenantlake's %ss in %s: %w", kind, schema, err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list tenantlake's %ss in %s: %w", kind, schema, err)
	}
	return names, nil
}

// recordObject records that tenantlake created schema.name.
func recordObject(ctx context.Context, tx pgx.Tx, schema, name, kind string) error {
	_, err := tx.Exec(ctx, `INSERT INTO tenantlake.tables (schema_name, table_name, kind) VALUES ($1, $2, $3)
ON CONFLICT (schema_name, table_name) DO UPDATE SET kind = $3`, schema, name, kind)
	if err != nil {
		return fmt.Errorf("record %s %s.%s: %w", kind, schema, name, err)
	}
	return nil
}

// forgetObject removes schema.name from the record.
func forgetObject(ctx context.Context, tx pgx.Tx, schema, name string) error {
	if _, err := tx.Exec(ctx, `DELETE FROM tenantlake.tables WHERE schema_name = $1 AND table_name = $2`, schema, name); err != nil {
		return fmt.Errorf("forget %s.%s: %w", schema, name, err)
	}
	return nil
}

// relation returns the oid of relation schema.name, or 0 when there is none.
func relation(ctx context.Context, q querier, schema, name string) (uint32, error) {
	var oid uint32
	err := q.QueryRow(ctx, `SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2`, schema, name).Scan(&oid)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("look up %s.%s: %w", schema, name, err)
	}
	return oid, nil
}

// dependents describes the objects that depend on relation oid (on its
// column col, unless col is "") other than
// its own parts (row type, TOAST table, a view's rule): views and
// materialized views over it, indexes, constraints, foreign keys, triggers,
// rules, policies, column defaults, statistics, child tables, and objects
// that use its row type. tenantlake creates none of these on its tables
// and views, so each one is someone else's. Not counted either: the
// clones that PostgreSQL makes on a partition of an index, constraint or
// trigger of its partitioned table, and the constraints it inherits (a
// user's index, primary key or CHECK on a combined all-tenants table):
// they belong to the partitioned table's object, which
// stays, and go with the partition.
func dependents(ctx context.Context, q pgx.Tx, oid uint32, col string) ([]string, error) {
	rows, err := q.Query(ctx, `
SELECT DISTINCT CASE
	WHEN d.classid = 'pg_rewrite'::regclass THEN
		(SELECT CASE c.relkind WHEN 'v' THEN 'view ' WHEN 'm' THEN 'materialized view ' ELSE 'rule on ' END
		        || quote_ident(n.nspname) || '.' || quote_ident(c.relname)
		 FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class JOIN pg_namespace n ON n.oid = c.relnamespace WHERE r.oid = d.objid)
	ELSE (SELECT o.type || ' ' || o.identity FROM pg_identify_object(d.classid, d.objid, 0) o) END
FROM pg_depend d
WHERE d.deptype <> 'i' AND NOT (d.classid = 'pg_rewrite'::regclass AND d.objid IN (SELECT oid FROM pg_rewrite WHERE ev_class = $1))
  AND NOT EXISTS (SELECT 1 FROM pg_depend p WHERE p.classid = d.classid AND p.objid = d.objid AND p.deptype = 'P')
  AND NOT (d.classid = 'pg_constraint'::regclass AND d.objid IN (SELECT oid FROM pg_constraint WHERE conrelid = $1 AND coninhcount > 0))
  AND ((d.refclassid = 'pg_class'::regclass AND d.refobjid = $1
         AND ($2::text = '' OR d.refobjsubid = (SELECT attnum FROM pg_attribute WHERE attrelid = $1 AND attname::text = $2::text)))
    OR ($2::text = '' AND d.refclassid = 'pg_type'::regclass AND d.refobjid IN
        (SELECT oid FROM pg_type WHERE typrelid = $1 UNION SELECT typarray FROM pg_type WHERE typrelid = $1)))
ORDER BY 1`, oid, col)
	if err != nil {
		return nil, fmt.Errorf("list dependent objects: %w", err)
	}
	deps, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list dependent objects: %w", err)
	}
	return deps, nil
}

// dependentsErr is the error of a load refused because of deps.
func dependentsErr(what string, deps []string) error {
	return fmt.Errorf("%s, and these objects that were %w depend on it: %s; tenantlake never drops them (drop or change them, then load again)",
		what, ErrNotOwned, strings.Join(deps, ", "))
}

// column is one column of a relation.
type column struct {
	name    string
	typ     string // format_type
	notNull bool
}

// columns returns the columns of relation oid in order.
func columns(ctx context.Context, q pgx.Tx, oid uint32) ([]column, error) {
	rows, err := q.Query(ctx, `
SELECT attname, format_type(atttypid, atttypmod), attnotnull FROM pg_attribute
WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped ORDER BY attnum`, oid)
	if err != nil {
		return nil, fmt.Errorf("list columns: %w", err)
	}
	var out []column
	var c column
	_, err = pgx.ForEachRow(rows, []any{&c.name, &c.typ, &c.notNull}, func() error {
		out = append(out, c)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list columns: %w", err)
	}
	return out, nil
}

// withDetail adds a PostgreSQL error's detail (which names, for instance,
// the objects that depend on one being dropped) to err.
func withDetail(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Detail != "" {
		return fmt.Errorf("%w (%s)", err, strings.ReplaceAll(pe.Detail, "\n", "; "))
	}
	return err
}

// sortedKeys returns the keys of m, sorted.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
