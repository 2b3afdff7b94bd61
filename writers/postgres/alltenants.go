package postgres

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// The all-tenants schema holds one combined table per table name: every
// tenant's live rows, with a first column tenant_id (text NOT NULL), the
// table partitioned by it, one partition per tenant (slices.go). The
// promoting transaction of a tenant replaces its rows in its partition
// (small tables) or swaps its partition for the one filled while staging
// (large ones), so the tenant's slice changes atomically with its
// promotion. A swap takes the combined table's advisory lock (class
// lockCombined), then its ACCESS EXCLUSIVE lock, until the promotion
// commits; tables are taken in name order. A combined table of an earlier version (not
// partitioned, indexed on tenant_id) has the tenant's rows deleted and
// inserted from its new live table (INSERT ... SELECT) instead; there only
// a load that adds a column takes the locks.
//
//   - Columns are those of the tenants' tables, in order of first
//     appearance, all nullable, with the type's name without modifiers
//     (numeric(10,2) is numeric). A tenant lacking a column has NULL there;
//     a tenant's new column is added (NULL for the others); a column is
//     never dropped, so views over the table keep working.
//   - A column whose type differs from the combined table's is never cast:
//     the tenant's slice stays as it was (a savepoint around each slice
//     keeps the rest of the promotion), and the outcome lists the table in
//     AllTenantsStale, the promotion still committing.
//   - A table the tenant no longer has loses the tenant's slice.
//   - A source column named tenant_id is source_tenant_id there.
//
// Combined tables are recorded in tenantlake.tables like every table the
// writer creates; the all-tenants views of earlier versions are dropped
// (when nothing of a user's depends on them) and replaced by tables.
// RebuildAllTenants rebuilds one tenant's slices from its live tables.

// tenantIDColumn is the column the combined tables add. A tenant's own
// column of that name is sourceTenantIDColumn there.
const (
	tenantIDColumn       = "tenant_id"
	sourceTenantIDColumn = "source_tenant_id"
)

// combinedName is the name a live column takes in a combined table.
func combinedName(col string) string {
	if col == tenantIDColumn {
		return sourceTenantIDColumn
	}
	return col
}

// allTenants is the all-tenants schema.
func (w *Writer) allTenants() schemaRef {
	return schemaRef{name: w.cfg.AllTenantsSchema, role: roleAllTenants, option: "all_tenants_schema=" + w.cfg.AllTenantsSchema}
}

// ensureAllTenants creates the all-tenants schema if missing (under the
// all-tenants lock, so two first loads do not both create it) and drops the
// all-tenants views of earlier versions that nothing else depends on (a
// view that a user's object depends on stays, and the slices of its table
// are reported stale until the user drops that object).
func (w *Writer) ensureAllTenants(ctx context.Context, tx pgx.Tx) error {
	ref := w.allTenants()
	exists, err := checkSchema(ctx, tx, ref)
	if err != nil {
		return err
	}
	var views []string
	if exists {
		if views, err = ownedObjects(ctx, tx, ref.name, kindView); err != nil {
			return err
		}
		if len(views) == 0 {
			return nil
		}
	}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, 0)`, lockAllTenants); err != nil {
		return fmt.Errorf("lock all-tenants schema: %w", err)
	}
	if err := ensureSchema(ctx, tx, ref); err != nil {
		return err
	}
	if views, err = ownedObjects(ctx, tx, ref.name, kindView); err != nil {
		return err
	}
	for _, v := range views {
		oid, err := relation(ctx, tx, ref.name, v)
		if err != nil {
			return err
		}
		if oid == 0 { // dropped by hand
			if err := forgetObject(ctx, tx, ref.name, v); err != nil {
				return err
			}
			continue
		}
		deps, err := dependents(ctx, tx, oid, "")
		if err != nil {
			return fmt.Errorf("all-tenants view %s.%s: %w", ref.name, v, err)
		}
		if len(deps) == 0 {
			if err := dropOwned(ctx, tx, ref.name, v, "VIEW", "all-tenants view"); err != nil {
				return err
			}
		}
	}
	return nil
}

// allTenantsLockTimeout bounds the wait for the combined tables' locks in
// a promotion, all tables together (PostgreSQL's lock_timeout, set to what
// is left of it before each table); once it is spent, a table whose lock
// is not free at once (allTenantsLockMin) is reported stale.
const (
	allTenantsLockTimeout = 10 * time.Second
	allTenantsLockMin     = 20 * time.Millisecond
)

// updateAllTenants replaces, in tx, tenant's slice of the combined table of
// each of tables (sorted, each once): from its live table in schema live
// when the tenant has it (has[name]), else by deleting the slice;
// pending[name], when set, is the slice's pending table (slices.go). Each
// slice is replaced under its own savepoint: the tables whose slice could
// not be replaced are returned, each with why, their slices as they were.
// An error is returned only when tx itself cannot go on.
func (w *Writer) updateAllTenants(ctx context.Context, tx pgx.Tx, tenant, live string, tables []string, has map[string]bool, pending map[string]pgx.Identifier) ([]string, error) {
	sort.Strings(tables)
	if err := forgetDroppedSlices(ctx, tx, tenant); err != nil {
		return nil, err
	}
	// A slice swap locks its combined table: a long query on it must not
	// hold the promotion (and, queued behind it, every other query on the
	// table) for long. A table not locked in time keeps the tenant's
	// previous slice, reported stale; the snapshot goes live all the same.
	// The bound is for all tables together: a query holding several of
	// them must not hold the promotion (and the tenant's live tables,
	// locked since promoteTable) that many times as long.
	var was string
	if err := tx.QueryRow(ctx, `SELECT current_setting('lock_timeout')`).Scan(&was); err != nil {
		return nil, fmt.Errorf("all-tenants tables: read lock_timeout: %w", err)
	}
	deadline := time.Now().Add(allTenantsLockTimeout)
	defer func() {
		// Restored for the rest of the promoting transaction; an error
		// here surfaces at the next statement.
		_, _ = tx.Exec(ctx, `SELECT set_config('lock_timeout', $1, true)`, was)
	}()
	var stale []string
	for i, name := range tables {
		if i > 0 && tables[i-1] == name {
			continue
		}
		wait := max(time.Until(deadline), allTenantsLockMin)
		if _, err := tx.Exec(ctx, `SELECT set_config('lock_timeout', $1, true)`, fmt.Sprintf("%dms", wait.Milliseconds())); err != nil {
			return nil, fmt.Errorf("all-tenants tables: set lock_timeout: %w", err)
		}
		sp, err := tx.Begin(ctx)
		if err != nil {
			return nil, fmt.Errorf("all-tenants table %s: %w", name, err)
		}
		if err := w.replaceSlice(ctx, sp, tenant, live, name, has[name], pending[name]); err != nil {
			if rerr := sp.Rollback(ctx); rerr != nil {
				return nil, errors.Join(fmt.Errorf("all-tenants table %s: %w", name, err), rerr)
			}
			if ctx.Err() != nil {
				return nil, fmt.Errorf("all-tenants table %s: %w", name, err)
			}
			if pe := (*pgconn.PgError)(nil); errors.As(err, &pe) && pe.Code == "55P03" { // lock_not_available
				err = fmt.Errorf("the combined table was in use (a query or another load held it) for more than %s (all the promotion's combined tables together): %w", allTenantsLockTimeout, err)
			}
			stale = append(stale, fmt.Sprintf("%s (%v)", name, err))
			continue
		}
		if err := sp.Commit(ctx); err != nil {
			return nil, fmt.Errorf("all-tenants table %s: %w", name, err)
		}
	}
	return stale, nil
}

// combinedTable returns the oid of the combined table name (0 when there
// is none), failing when a relation of that name is not a table tenantlake
// created there.
func (w *Writer) combinedTable(ctx context.Context, tx pgx.Tx, name string) (uint32, error) {
	schema := w.cfg.AllTenantsSchema
	oid, err := relation(ctx, tx, schema, name)
	if err != nil || oid == 0 {
		return 0, err
	}
	var kind string
	err = tx.QueryRow(ctx, `SELECT kind FROM tenantlake.tables WHERE schema_name = $1 AND table_name = $2`, schema, name).Scan(&kind)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("look up %s.%s: %w", schema, name, err)
	}
	switch kind {
	case kindTable:
		return oid, nil
	case kindView:
		deps, err := dependents(ctx, tx, oid, "")
		if err != nil {
			return 0, fmt.Errorf("all-tenants view %s.%s: %w", schema, name, err)
		}
		return 0, dependentsErr(fmt.Sprintf("%s.%s is an all-tenants view of an earlier tenantlake, to be replaced by a table", schema, name), deps)
	}
	return 0, fmt.Errorf("%s.%s exists and was %w; tenantlake never replaces it: rename or drop it, then load again", schema, name, ErrNotOwned)
}

// baseColumns returns the columns of relation oid in order, each type
// without its modifiers (numeric, not numeric(10,2)).
func baseColumns(ctx context.Context, tx pgx.Tx, oid uint32) ([]column, error) {
	rows, err := tx.Query(ctx, `
SELECT attname, format_type(atttypid, NULL) FROM pg_attribute
WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped ORDER BY attnum`, oid)
	if err != nil {
		return nil, fmt.Errorf("list columns: %w", err)
	}
	var out []column
	var c column
	_, err = pgx.ForEachRow(rows, []any{&c.name, &c.typ}, func() error {
		out = append(out, c)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list columns: %w", err)
	}
	return out, nil
}

// sliceColumn is one column of a tenant's slice: its live name and its
// name in the combined table.
type sliceColumn struct{ live, combined string }

// replaceSlice replaces tenant's slice of the combined table name, in tx
// (a savepoint): with the rows of live.name when present, else by deleting
// it. pending, when not nil, is a table that already holds the slice's
// rows (filled while staging, see stageSlice); it is used when it fits.
// Nothing is changed when it fails.
func (w *Writer) replaceSlice(ctx context.Context, tx pgx.Tx, tenant, live, name string, present bool, pending pgx.Identifier) error {
	schema := w.cfg.AllTenantsSchema
	combinedID := pgx.Identifier{schema, name}.Sanitize()
	oid, err := w.combinedTable(ctx, tx, name)
	if err != nil {
		return err
	}
	lock := func() error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, lockCombined, schema+"."+name); err != nil {
			return fmt.Errorf("lock %s.%s: %w", schema, name, err)
		}
		return nil
	}
	partitioned, err := isPartitioned(ctx, tx, oid)
	if err != nil {
		return err
	}
	if partitioned && present && pending == nil {
		if done, err := w.refillInPlace(ctx, tx, oid, tenant, live, name); done || err != nil {
			return err
		}
	}
	if partitioned {
		// Creating, widening and swapping partitions of this table are
		// serialized by both locks, always taken in this order. Only
		// attaching a new tenant's first partition needs no ACCESS
		// EXCLUSIVE lock (ATTACH's own blocks no query and no in-place
		// promotion, which a lock of the table and all its partitions
		// until the commit would).
		if err := lock(); err != nil {
			return err
		}
		own, err := ownPartition(ctx, tx, oid, tenant, sliceName(oid, tenant))
		if err != nil {
			return err
		}
		if !present || pending != nil || own != 0 {
			if _, err := tx.Exec(ctx, "LOCK TABLE "+combinedID+" IN ACCESS EXCLUSIVE MODE"); err != nil {
				return fmt.Errorf("lock %s.%s: %w", schema, name, err)
			}
		}
	}
	if !present {
		switch {
		case oid == 0:
			// A combined table dropped by hand is forgotten.
			if err := lock(); err != nil {
				return err
			}
			if oid, err = relation(ctx, tx, schema, name); err != nil || oid != 0 {
				return err
			}
			return forgetObject(ctx, tx, schema, name)
		case partitioned:
			return dropSlice(ctx, tx, oid, schema, name, tenant)
		}
		if _, err := tx.Exec(ctx, "DELETE FROM "+combinedID+" WHERE "+tenantIDColumn+" = $1", tenant); err != nil {
			return fmt.Errorf("delete the tenant's rows from %s.%s: %w", schema, name, err)
		}
		return nil
	}
	cols, typ, err := liveSliceColumns(ctx, tx, live, name)
	if err != nil {
		return err
	}
	if oid == 0 {
		if err := lock(); err != nil {
			return err
		}
		// Another tenant's load may have created it meanwhile.
		if oid, err = w.combinedTable(ctx, tx, name); err != nil {
			return err
		}
		if oid == 0 {
			if oid, err = w.createCombined(ctx, tx, name, cols, typ); err != nil {
				return err
			}
		}
		if partitioned, err = isPartitioned(ctx, tx, oid); err != nil {
			return err
		}
		if partitioned {
			if _, err := tx.Exec(ctx, "LOCK TABLE "+combinedID+" IN ACCESS EXCLUSIVE MODE"); err != nil {
				return fmt.Errorf("lock %s.%s: %w", schema, name, err)
			}
		}
	}
	missing := func() ([]string, error) { return missingColumns(ctx, tx, oid, cols, typ, schema+"."+name) }
	add, err := missing()
	if err != nil {
		return err
	}
	if len(add) > 0 && !partitioned {
		if err := lock(); err != nil {
			return err
		}
		if add, err = missing(); err != nil { // as another load may have left it
			return err
		}
	}
	if len(add) > 0 {
		items := make([]string, len(add))
		for i, c := range add {
			items[i] = "ADD COLUMN " + pgx.Identifier{c}.Sanitize() + " " + typ[c]
		}
		if _, err := tx.Exec(ctx, "ALTER TABLE "+combinedID+" "+strings.Join(items, ", ")); err != nil {
			return fmt.Errorf("add columns %s to %s.%s: %w", strings.Join(add, ", "), schema, name, withDetail(err))
		}
	}
	if partitioned {
		return w.swapSlice(ctx, tx, oid, tenant, live, name, cols, pending)
	}
	// A combined table of an earlier version, not partitioned: the
	// tenant's rows are replaced in place.
	dst, src := []string{tenantIDColumn}, []string{"$1::text"}
	for _, c := range cols {
		dst = append(dst, pgx.Identifier{c.combined}.Sanitize())
		src = append(src, pgx.Identifier{c.live}.Sanitize())
	}
	if _, err := tx.Exec(ctx, "DELETE FROM "+combinedID+" WHERE "+tenantIDColumn+" = $1", tenant); err != nil {
		return fmt.Errorf("delete the tenant's rows from %s.%s: %w", schema, name, err)
	}
	ins := "INSERT INTO " + combinedID + " (" + strings.Join(dst, ", ") + ") SELECT " + strings.Join(src, ", ") + " FROM " + pgx.Identifier{live, name}.Sanitize()
	if _, err := tx.Exec(ctx, ins, tenant); err != nil {
		return fmt.Errorf("insert the tenant's rows into %s.%s: %w", schema, name, withDetail(err))
	}
	return nil
}

// createCombined creates combined table name with the columns cols (types
// typ) after tenant_id, partitioned by tenant (one partition per tenant),
// and returns its oid. The caller holds its lockCombined lock.
func (w *Writer) createCombined(ctx context.Context, tx pgx.Tx, name string, cols []sliceColumn, typ map[string]string) (uint32, error) {
	schema := w.cfg.AllTenantsSchema
	defs := []string{tenantIDColumn + " text NOT NULL"}
	for _, c := range cols {
		defs = append(defs, pgx.Identifier{c.combined}.Sanitize()+" "+typ[c.combined])
	}
	stmt := "CREATE TABLE " + pgx.Identifier{schema, name}.Sanitize() + " (" + strings.Join(defs, ", ") + ") PARTITION BY LIST (" + tenantIDColumn + ")"
	if _, err := tx.Exec(ctx, stmt); err != nil {
		return 0, fmt.Errorf("create all-tenants table %s.%s: %w", schema, name, withDetail(err))
	}
	if err := recordObject(ctx, tx, schema, name, kindTable); err != nil {
		return 0, err
	}
	return relation(ctx, tx, schema, name)
}

// missingColumns returns the columns of cols (types typ) that combined
// table oid (named table) lacks, failing when one it has is of another
// type.
func missingColumns(ctx context.Context, tx pgx.Tx, oid uint32, cols []sliceColumn, typ map[string]string, table string) ([]string, error) {
	have, err := baseColumns(ctx, tx, oid)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", table, err)
	}
	got := map[string]string{}
	for _, c := range have {
		got[c.name] = c.typ
	}
	var add []string
	for _, c := range cols {
		t, ok := got[c.combined]
		switch {
		case !ok:
			add = append(add, c.combined)
		case t != typ[c.combined]:
			return nil, fmt.Errorf("column %s is %s in this tenant and %s in %s", c.live, typ[c.combined], t, table)
		}
	}
	return add, nil
}

// liveSliceColumns returns the slice columns of table schema.name (see
// sliceColumns), failing when it is missing.
func liveSliceColumns(ctx context.Context, tx pgx.Tx, schema, name string) ([]sliceColumn, map[string]string, error) {
	oid, err := relation(ctx, tx, schema, name)
	if err != nil {
		return nil, nil, err
	}
	if oid == 0 {
		return nil, nil, fmt.Errorf("table %s.%s is missing", schema, name)
	}
	cols, err := baseColumns(ctx, tx, oid)
	if err != nil {
		return nil, nil, fmt.Errorf("%s.%s: %w", schema, name, err)
	}
	return sliceColumns(cols, schema+"."+name)
}

// sliceColumns maps a tenant table's columns (base types) to their names
// in the combined table, failing when two would have the same name.
func sliceColumns(liveCols []column, table string) ([]sliceColumn, map[string]string, error) {
	cols := make([]sliceColumn, 0, len(liveCols))
	typ := map[string]string{}
	for _, c := range liveCols {
		cn := combinedName(c.name)
		if _, dup := typ[cn]; dup || cn == tenantIDColumn {
			return nil, nil, fmt.Errorf("columns %s and %s of %s would both be %s", tenantIDColumn, sourceTenantIDColumn, table, cn)
		}
		typ[cn] = c.typ
		cols = append(cols, sliceColumn{live: c.name, combined: cn})
	}
	return cols, typ, nil
}

// RebuildAllTenants replaces tenant's slice of every combined table in the
// all-tenants schema from its live tables, in one transaction under the
// tenant's lock, as a promotion does: a slice a type clash left stale is
// made right once the clash is gone (for instance after the combined
// table's column was changed or the table dropped by hand), and a combined
// table dropped by hand is created again with the tenant's rows (rebuild
// every tenant to fill it). The slices of tables the tenant no longer has
// are deleted. It fails when the tenant has no live snapshot, and names
// every table whose slice it could not replace (the others are replaced).
func (w *Writer) RebuildAllTenants(ctx context.Context, tenantID string) (err error) {
	fail := func(err error) error {
		return fmt.Errorf("postgres writer: rebuild all-tenants slices of %s: %w", tenantID, err)
	}
	liveRef, _, err := w.tenantSchemas(tenantID)
	if err != nil {
		return fail(err)
	}
	conn, err := w.connect(ctx)
	if err != nil {
		return fail(err)
	}
	defer closeConn(ctx, conn, &err)
	var stale []string
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, lockTenant, tenantID); err != nil {
			return fmt.Errorf("lock tenant: %w", err)
		}
		var schema string
		err := tx.QueryRow(ctx, `SELECT schema_name FROM tenantlake.live WHERE tenant = $1`, tenantID).Scan(&schema)
		if errors.Is(err, pgx.ErrNoRows) {
			return errors.New("no snapshot is live")
		}
		if err != nil {
			return fmt.Errorf("read live snapshot: %w", err)
		}
		if schema != liveRef.name {
			return fmt.Errorf("the live snapshot is in schema %s, not %s (schema_template=%s)", schema, liveRef.name, w.cfg.SchemaTemplate)
		}
		if err := w.ensureAllTenants(ctx, tx); err != nil {
			return err
		}
		tables, err := ownedObjects(ctx, tx, schema, kindTable)
		if err != nil {
			return err
		}
		has := map[string]bool{}
		for _, t := range tables {
			has[t] = true
		}
		combined, err := ownedObjects(ctx, tx, w.cfg.AllTenantsSchema, kindTable)
		if err != nil {
			return err
		}
		stale, err = w.updateAllTenants(ctx, tx, tenantID, schema, append(tables, combined...), has, nil)
		return err
	})
	if err != nil {
		return fail(err)
	}
	if len(stale) > 0 {
		return fail(errors.New(strings.Join(stale, "; ")))
	}
	return nil
}
