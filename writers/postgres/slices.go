package postgres

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tenantlake/tenantlake/lake"
)

// A combined all-tenants table created by this version is partitioned by
// tenant (PARTITION BY LIST (tenant_id)): each tenant's slice is one
// partition, a table in the control schema named slice_<combined table's
// oid>_<tenant> and recorded in tenantlake.tables. A slice is replaced in
// the tenant's promotion in one of two ways:
//
//   - In place, for a table of at most inPlaceRows rows: DELETE and
//     INSERT ... SELECT from the new live table into the tenant's
//     partition, which locks no combined table, so that the promotions of
//     many tenants run side by side (prepareSlices makes the combined
//     table, its new columns and the tenant's partition beforehand, in
//     short transactions of their own). An analyst's REPEATABLE READ
//     transaction older than the promotion still sees the old rows.
//   - Swapped, for a larger table: the new partition is filled while the
//     snapshot is staged, by a second COPY of the same rows over a second
//     connection, side by side with the staging COPY (stage), and waits in
//     the staging schema as a pending slice; the promotion drops the old
//     partition and attaches the new one, metadata changes only, with no
//     DELETE (so no dead rows to vacuum) and no index to maintain. It locks
//     the combined table until the promotion commits. When the pending
//     slice is missing (that connection failed, a rebuild), the slice is
//     replaced in place instead.
//
// Queries that filter on tenant_id read the tenant's partition only.
//
// Analysts query the combined table as before; a view over it keeps
// working (it reads the partitioned table, whatever its partitions). A
// partition that a user's object depends on (a view over the partition
// itself) is never dropped: its rows are replaced in place instead. A
// partition for the tenant that tenantlake did not create is never
// touched: that tenant's slice is reported stale, naming it.
//
// A combined table of an earlier version (not partitioned) stays as it
// is, and its slices are still replaced in place (DELETE and INSERT ...
// SELECT); to have it partitioned, drop it and rebuild every tenant's
// slice (RebuildAllTenants), or let the next loads of every tenant fill it.

// isPartitioned says whether relation oid is a partitioned table.
func isPartitioned(ctx context.Context, q querier, oid uint32) (bool, error) {
	if oid == 0 {
		return false, nil
	}
	var p bool
	if err := q.QueryRow(ctx, `SELECT relkind = 'p' FROM pg_class WHERE oid = $1`, oid).Scan(&p); err != nil {
		return false, fmt.Errorf("look up relation %d: %w", oid, err)
	}
	return p, nil
}

// sliceName is the name, in the control schema, of tenant's partition of
// the combined table whose oid is parent; distinct for every (parent,
// tenant), at most 63 bytes.
func sliceName(parent uint32, tenant string) string {
	prefix := fmt.Sprintf("slice_%d_", parent)
	if len(prefix)+len(tenant) <= 63 {
		return prefix + tenant
	}
	h := fnv.New32a()
	h.Write([]byte(tenant))
	return fmt.Sprintf("%s%s_%08x", prefix, tenant[:63-len(prefix)-9], h.Sum32())
}

// forgetDroppedSlices forgets tenant's slices that are no longer there
// (their combined table was dropped by hand, and its partitions with it),
// hashed names (long tenant ids) included.
func forgetDroppedSlices(ctx context.Context, tx pgx.Tx, tenant string) error {
	rows, err := tx.Query(ctx, `
SELECT t.table_name FROM tenantlake.tables t WHERE t.schema_name = $1 AND t.table_name LIKE 'slice\_%'
  AND (t.table_name LIKE '%\_' || $2 OR length(t.table_name) = 63) -- the tenant's, and hashed ones; sliceName decides
  AND NOT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = t.table_name)`, controlSchema, tenant)
	if err != nil {
		return fmt.Errorf("forget the dropped all-tenants slices of %s: %w", tenant, err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("forget the dropped all-tenants slices of %s: %w", tenant, err)
	}
	for _, name := range names {
		num, _, ok := strings.Cut(strings.TrimPrefix(name, "slice_"), "_")
		parent, err := strconv.ParseUint(num, 10, 32)
		if !ok || err != nil || sliceName(uint32(parent), tenant) != name {
			continue
		}
		if err := forgetObject(ctx, tx, controlSchema, name); err != nil {
			return err
		}
	}
	return nil
}

// quoteLiteral quotes s as an SQL string literal (standard_conforming_strings
// on; tenant ids hold a-z, 0-9 and _ only anyway).
func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// sliceCheck names the constraint a new slice carries until it is
// attached: with it, ATTACH PARTITION need not scan the rows.
const sliceCheck = "tenantlake_slice"

// dropSlice drops tenant's partitions of partitioned combined table parent
// (schema.name), failing, with nothing dropped, when one was not created by
// tenantlake or a user's object depends on it.
func dropSlice(ctx context.Context, tx pgx.Tx, parent uint32, schema, name, tenant string) error {
	rows, err := tx.Query(ctx, `
SELECT c.oid, n.nspname, c.relname FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE i.inhparent = $1 AND pg_get_expr(c.relpartbound, c.oid) = 'FOR VALUES IN (' || quote_literal($2::text) || ')'`, parent, tenant)
	if err != nil {
		return fmt.Errorf("list the partitions of %s.%s: %w", schema, name, err)
	}
	type part struct {
		oid          uint32
		schema, name string
	}
	var parts []part
	var p part
	if _, err := pgx.ForEachRow(rows, []any{&p.oid, &p.schema, &p.name}, func() error {
		parts = append(parts, p)
		return nil
	}); err != nil {
		return fmt.Errorf("list the partitions of %s.%s: %w", schema, name, err)
	}
	for _, p := range parts {
		if err := dropRecorded(ctx, tx, p.oid, p.schema, p.name, fmt.Sprintf("partition of %s.%s for tenant %s", schema, name, tenant)); err != nil {
			return err
		}
	}
	return nil
}

// dropRecorded drops relation oid (schema.name), which must be recorded as
// tenantlake's table and have no dependent objects, and forgets it.
func dropRecorded(ctx context.Context, tx pgx.Tx, oid uint32, schema, name, desc string) error {
	var recorded bool
	err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM tenantlake.tables WHERE schema_name = $1 AND table_name = $2 AND kind = $3)`, schema, name, kindTable).Scan(&recorded)
	if err != nil {
		return fmt.Errorf("look up %s.%s: %w", schema, name, err)
	}
	if !recorded {
		return fmt.Errorf("%s %s.%s exists and was %w; tenantlake never drops it: drop or detach it, then load again", desc, schema, name, ErrNotOwned)
	}
	deps, err := dependents(ctx, tx, oid, "")
	if err != nil {
		return fmt.Errorf("%s %s.%s: %w", desc, schema, name, err)
	}
	if len(deps) > 0 {
		return dependentsErr(fmt.Sprintf("%s %s.%s must be dropped", desc, schema, name), deps)
	}
	if _, err := tx.Exec(ctx, "DROP TABLE "+pgx.Identifier{schema, name}.Sanitize()); err != nil {
		return fmt.Errorf("drop %s %s.%s: %w", desc, schema, name, withDetail(err))
	}
	return forgetObject(ctx, tx, schema, name)
}

// inPlaceRows: a table of at most this many rows (in its manifest) has no
// pending slice. Its slice is replaced in place at the promotion (DELETE
// and INSERT ... SELECT into the tenant's partition, refillInPlace), which
// locks no combined table, so that the promotions of many tenants do not
// wait for each other; the partition a tenant lacks is made before its
// promotion, in a short transaction of its own (prepareSlices). A larger
// table has its slice filled while it is staged and swapped whole. A
// variable for the tests (export_test.go).
var inPlaceRows int64 = 100_000

// refillInPlace replaces tenant's rows in its partition of partitioned
// combined table parent (name) with those of live.name, without locking
// the combined table, when the partition is tenantlake's and the combined
// table has every column of live.name; it says whether it did. Otherwise
// (or when the DELETE or INSERT fails, as under a user's publication of
// deletes without a replica identity: the savepoint leaves nothing
// changed) the caller takes the combined table's locks (swapSlice).
func (w *Writer) refillInPlace(ctx context.Context, tx pgx.Tx, parent uint32, tenant, live, name string) (bool, error) {
	final := sliceName(parent, tenant)
	own, err := ownPartition(ctx, tx, parent, tenant, final)
	if err != nil || own == 0 {
		return false, err
	}
	cols, typ, err := liveSliceColumns(ctx, tx, live, name)
	if err != nil {
		return false, err
	}
	add, err := missingColumns(ctx, tx, parent, cols, typ, w.cfg.AllTenantsSchema+"."+name)
	if err != nil || len(add) > 0 {
		return false, err
	}
	// The combined table before its partition, as the swaps take them
	// (LOCK TABLE of the combined table locks its partitions): inserting
	// into a partition locks its table too, and in the other order two
	// promotions could deadlock.
	if _, err := tx.Exec(ctx, "LOCK TABLE ONLY "+pgx.Identifier{w.cfg.AllTenantsSchema, name}.Sanitize()+" IN ACCESS SHARE MODE"); err != nil {
		return false, fmt.Errorf("lock %s.%s: %w", w.cfg.AllTenantsSchema, name, err)
	}
	return w.replaceRows(ctx, tx, final, tenant, live, name, cols)
}

// replaceRows replaces the rows of tenant's partition final (in the
// control schema) of combined table name with those of live.name, under a
// savepoint; it says whether it did. Its failure (a user's publication of
// deletes, a trigger) leaves the partition as it was, for the caller to
// swap instead; only a failure of tx itself is returned.
func (w *Writer) replaceRows(ctx context.Context, tx pgx.Tx, final, tenant, live, name string, cols []sliceColumn) (bool, error) {
	sp, err := tx.Begin(ctx)
	if err != nil {
		return false, err
	}
	finalID := pgx.Identifier{controlSchema, final}.Sanitize()
	_, err = sp.Exec(ctx, "DELETE FROM "+finalID)
	if err == nil {
		err = w.fillSlice(ctx, sp, finalID, tenant, live, name, cols)
	}
	if err != nil {
		slog.Debug("postgres writer: all-tenants slice not replaced in place", "tenant", tenant, "table", name, "err", err)
		return false, sp.Rollback(ctx)
	}
	return true, sp.Commit(ctx)
}

// fillSlice inserts the rows of live.name, with tenant_id tenant, into
// table id (a partition of combined table name).
func (w *Writer) fillSlice(ctx context.Context, tx pgx.Tx, id, tenant, live, name string, cols []sliceColumn) error {
	dst, src := []string{tenantIDColumn}, []string{"$1::text"}
	for _, c := range cols {
		dst = append(dst, pgx.Identifier{c.combined}.Sanitize())
		src = append(src, pgx.Identifier{c.live}.Sanitize())
	}
	ins := "INSERT INTO " + id + " (" + strings.Join(dst, ", ") + ") SELECT " + strings.Join(src, ", ") + " FROM " + pgx.Identifier{live, name}.Sanitize()
	if _, err := tx.Exec(ctx, ins, tenant); err != nil {
		return fmt.Errorf("fill the tenant's partition of %s.%s: %w", w.cfg.AllTenantsSchema, name, withDetail(err))
	}
	return nil
}

// swapSlice makes a new partition tenant's slice of partitioned combined
// table parent (name), whose columns already include cols: the pending
// slice when there is one that fits, the tenant's old partition dropped.
// Without one, or when a user's object (a view) depends on the tenant's
// partition, that partition, when tenantlake made it, keeps its place and
// its rows are replaced in place from live.name (DELETE and INSERT ...
// SELECT): the user's view keeps working, and an analyst's REPEATABLE READ
// transaction older than the promotion still sees the old rows, which a
// new table filled by INSERT would hide from it. Only a tenant without a
// partition yet gets a new table filled that way. The caller holds the
// table's locks.
func (w *Writer) swapSlice(ctx context.Context, tx pgx.Tx, parent uint32, tenant, live, name string, cols []sliceColumn, pending pgx.Identifier) error {
	schema := w.cfg.AllTenantsSchema
	final := sliceName(parent, tenant)
	finalID := pgx.Identifier{controlSchema, final}.Sanitize()
	add, fits, err := w.pendingFits(ctx, tx, parent, name, pending)
	if err != nil {
		return err
	}
	own, err := ownPartition(ctx, tx, parent, tenant, final)
	if err != nil {
		return err
	}
	inPlace := own != 0 && !fits
	if own != 0 && fits { // a user's view over the partition itself keeps it
		deps, err := dependents(ctx, tx, own, "")
		if err != nil {
			return fmt.Errorf("tenant %s's partition of %s.%s: %w", tenant, schema, name, err)
		}
		inPlace = len(deps) > 0
	}
	if inPlace {
		if done, err := w.replaceRows(ctx, tx, final, tenant, live, name, cols); done || err != nil {
			return err
		}
	}
	if own != 0 || fits { // else a new tenant's first partition: nothing to drop (a partition of the tenant's that is not tenantlake's fails the ATTACH)
		if err := dropSlice(ctx, tx, parent, schema, name, tenant); err != nil {
			return err
		}
	}
	if oid, err := relation(ctx, tx, controlSchema, final); err != nil {
		return err
	} else if oid != 0 { // detached by hand, say
		if err := dropRecorded(ctx, tx, oid, controlSchema, final, "all-tenants slice"); err != nil {
			return err
		}
	}
	if fits {
		if err := movePending(ctx, tx, pending, final, add); err != nil {
			return err
		}
	} else {
		if err := w.createSlice(ctx, tx, name, tenant, final); err != nil {
			return err
		}
		if err := w.fillSlice(ctx, tx, finalID, tenant, live, name, cols); err != nil {
			return err
		}
	}
	return w.attachSlice(ctx, tx, parent, name, tenant, final)
}

// createSlice creates table final in the control schema, tenant's new
// partition of combined table name, empty and not attached yet.
func (w *Writer) createSlice(ctx context.Context, tx pgx.Tx, name, tenant, final string) error {
	stmt := "CREATE TABLE " + pgx.Identifier{controlSchema, final}.Sanitize() + " (LIKE " + pgx.Identifier{w.cfg.AllTenantsSchema, name}.Sanitize() +
		", CONSTRAINT " + sliceCheck + " CHECK (" + tenantIDColumn + " = " + quoteLiteral(tenant) + "))"
	if _, err := tx.Exec(ctx, stmt); err != nil {
		return fmt.Errorf("create the tenant's partition of %s.%s: %w", w.cfg.AllTenantsSchema, name, withDetail(err))
	}
	return recordObject(ctx, tx, controlSchema, final, kindTable)
}

// attachSlice attaches table final of the control schema (a new slice or
// a moved pending one) as tenant's partition of combined table parent
// (name).
func (w *Writer) attachSlice(ctx context.Context, tx pgx.Tx, parent uint32, name, tenant, final string) error {
	combinedID := pgx.Identifier{w.cfg.AllTenantsSchema, name}.Sanitize()
	finalID := pgx.Identifier{controlSchema, final}.Sanitize()
	if err := inheritConstraints(ctx, tx, parent, finalID); err != nil {
		return fmt.Errorf("the tenant's partition of %s.%s: %w", w.cfg.AllTenantsSchema, name, err)
	}
	for _, stmt := range []string{
		"ALTER TABLE " + combinedID + " ATTACH PARTITION " + finalID + " FOR VALUES IN (" + quoteLiteral(tenant) + ")",
		"ALTER TABLE " + finalID + " DROP CONSTRAINT " + sliceCheck + ", ALTER COLUMN " + tenantIDColumn + " DROP DEFAULT",
	} {
		if _, err := tx.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("attach the tenant's partition to %s.%s: %w", w.cfg.AllTenantsSchema, name, withDetail(err))
		}
	}
	return nil
}

// prepareSlices makes, ahead of tenant's promotion, what its in-place
// slices need (refillInPlace) and only DDL can give: for each table of
// tables (staged in schema staging without a pending slice), the
// partitioned combined table when there is none yet (empty), the columns
// of the staged table it lacks, and the tenant's partition (empty), each
// table in a short transaction of its own. Those take the combined table's
// lockCombined lock and the locks of their DDL (ATTACH PARTITION's does
// not block queries or the other tenants' in-place promotions; ADD COLUMN
// does, briefly), waiting for them allTenantsLockTimeout in all. The
// promotion then takes no lock of the combined tables, so promotions of
// many tenants run side by side. An empty table or partition of a tenant
// whose snapshot is not live yet shows just that: no rows. What fails
// here is left to the promotion, which does the same under its locks and
// reports what it cannot.
func (w *Writer) prepareSlices(ctx context.Context, conn *pgx.Conn, tenant, staging string, tables []string) {
	schema := w.cfg.AllTenantsSchema
	// The combined tables: missing (oid 0), or partitioned, and lacking a
	// column of the staged table or the tenant's partition (looked up by
	// its name: deparsing every partition's bound would cost O(tenants)).
	type combined struct {
		name    string
		oid     uint32
		part    bool
		missing bool
	}
	rows, err := conn.Query(ctx, `
SELECT t.name, coalesce(c.oid, 0), coalesce(c.relkind = 'p', false),
  c.oid IS NOT NULL AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = s.oid AND a.attnum > 0 AND NOT a.attisdropped
    AND NOT EXISTS (SELECT 1 FROM pg_attribute b WHERE b.attrelid = c.oid AND b.attnum > 0 AND NOT b.attisdropped
                    AND b.attname = CASE WHEN a.attname = $4 THEN $5 ELSE a.attname END))
FROM unnest($1::text[]) AS t(name)
JOIN pg_namespace sn ON sn.nspname = $3
JOIN pg_class s ON s.relnamespace = sn.oid AND s.relname = t.name
LEFT JOIN pg_namespace n ON n.nspname = $2
LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = t.name
ORDER BY 1`, tables, schema, staging, tenantIDColumn, sourceTenantIDColumn)
	if err != nil {
		slog.Debug("postgres writer: all-tenants tables left to the promotion", "tenant", tenant, "err", err)
		return
	}
	var all []combined
	var c combined
	if _, err := pgx.ForEachRow(rows, []any{&c.name, &c.oid, &c.part, &c.missing}, func() error {
		all = append(all, c)
		return nil
	}); err != nil {
		slog.Debug("postgres writer: all-tenants tables left to the promotion", "tenant", tenant, "err", err)
		return
	}
	var finals []string
	for _, c := range all {
		if c.part {
			finals = append(finals, sliceName(c.oid, tenant))
		}
	}
	rows, err = conn.Query(ctx, `
SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_inherits i ON i.inhrelid = c.oid
WHERE n.nspname = $1 AND c.relname = ANY($2::text[])`, controlSchema, finals)
	if err != nil {
		slog.Debug("postgres writer: all-tenants tables left to the promotion", "tenant", tenant, "err", err)
		return
	}
	attached, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		slog.Debug("postgres writer: all-tenants tables left to the promotion", "tenant", tenant, "err", err)
		return
	}
	var names []string
	for _, c := range all {
		if c.oid == 0 || (c.part && (c.missing || !slices.Contains(attached, sliceName(c.oid, tenant)))) {
			names = append(names, c.name)
		}
	}
	deadline := time.Now().Add(allTenantsLockTimeout)
	for _, name := range names {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			wait := max(time.Until(deadline), allTenantsLockMin)
			if _, err := tx.Exec(ctx, `SELECT set_config('lock_timeout', $1, true)`, fmt.Sprintf("%dms", wait.Milliseconds())); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, lockCombined, schema+"."+name); err != nil {
				return err
			}
			cols, typ, err := liveSliceColumns(ctx, tx, staging, name)
			if err != nil {
				return err
			}
			parent, err := w.combinedTable(ctx, tx, name)
			if err != nil {
				return err
			}
			if parent == 0 {
				var made bool
				if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM tenantlake.schemas s JOIN pg_namespace n ON n.nspname = s.schema_name WHERE s.schema_name = $1)`, schema).Scan(&made); err != nil || !made {
					return err // made by the first promotion (ensureAllTenants)
				}
				if parent, err = w.createCombined(ctx, tx, name, cols, typ); err != nil {
					return err
				}
			}
			if p, err := isPartitioned(ctx, tx, parent); err != nil || !p {
				return err
			}
			add, err := missingColumns(ctx, tx, parent, cols, typ, schema+"."+name)
			if err != nil {
				return err
			}
			if len(add) > 0 {
				items := make([]string, len(add))
				for i, c := range add {
					items[i] = "ADD COLUMN " + pgx.Identifier{c}.Sanitize() + " " + typ[c]
				}
				if _, err := tx.Exec(ctx, "ALTER TABLE "+pgx.Identifier{schema, name}.Sanitize()+" "+strings.Join(items, ", ")); err != nil {
					return fmt.Errorf("add columns to %s.%s: %w", schema, name, withDetail(err))
				}
			}
			final := sliceName(parent, tenant)
			if own, err := ownPartition(ctx, tx, parent, tenant, final); err != nil || own != 0 {
				return err
			}
			if oid, err := relation(ctx, tx, controlSchema, final); err != nil || oid != 0 {
				return err // a table of that name (detached by hand): the promotion's business
			}
			if err := w.createSlice(ctx, tx, name, tenant, final); err != nil {
				return err
			}
			return w.attachSlice(ctx, tx, parent, name, tenant, final)
		})
		if err != nil {
			slog.Debug("postgres writer: all-tenants table left to the promotion", "tenant", tenant, "table", name, "err", err)
		}
	}
}

// ownPartition returns the oid of tenant's partition of partitioned table
// parent when it is tenantlake's (the table final in the control schema,
// recorded in the catalog), else 0.
func ownPartition(ctx context.Context, tx pgx.Tx, parent uint32, tenant, final string) (uint32, error) {
	var oid uint32
	err := tx.QueryRow(ctx, `
WITH p AS MATERIALIZED ( -- by name first: deparsing every partition's bound costs O(tenants)
  SELECT c.oid, c.relpartbound FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_inherits i ON i.inhrelid = c.oid AND i.inhparent = $1
  JOIN tenantlake.tables t ON t.schema_name = n.nspname AND t.table_name = c.relname AND t.kind = $5
  WHERE n.nspname = $3 AND c.relname = $4)
SELECT oid FROM p WHERE pg_get_expr(relpartbound, oid) = 'FOR VALUES IN (' || quote_literal($2::text) || ')'`,
		parent, tenant, controlSchema, final, kindTable).Scan(&oid)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("look up tenant %s's partition %s.%s: %w", tenant, controlSchema, final, err)
	}
	return oid, nil
}

// inheritConstraints gives new partition id the NOT NULL and CHECK
// constraints of partitioned table parent (a user's primary key or CHECK
// on the combined table), which ATTACH PARTITION requires it to have.
func inheritConstraints(ctx context.Context, tx pgx.Tx, parent uint32, id string) error {
	rows, err := tx.Query(ctx, `
SELECT 'ALTER COLUMN ' || quote_ident(attname) || ' SET NOT NULL' FROM pg_attribute
WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped AND attnotnull AND attname <> $2
UNION ALL
SELECT 'ADD CONSTRAINT ' || quote_ident(conname) || ' ' || pg_get_constraintdef(oid) FROM pg_constraint
WHERE conrelid = $1 AND contype = 'c' AND NOT connoinherit`, parent, tenantIDColumn)
	if err != nil {
		return fmt.Errorf("list the constraints of the combined table: %w", err)
	}
	items, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("list the constraints of the combined table: %w", err)
	}
	if len(items) == 0 {
		return nil
	}
	if _, err := tx.Exec(ctx, "ALTER TABLE "+id+" "+strings.Join(items, ", ")); err != nil {
		return fmt.Errorf("add the combined table's constraints: %w", withDetail(err))
	}
	return nil
}

// pendingFits says whether the pending slice exists and its columns fit
// the combined table (parent, name), with the ALTER TABLE items that add
// the combined table's columns it lacks.
func (w *Writer) pendingFits(ctx context.Context, tx pgx.Tx, parent uint32, name string, pending pgx.Identifier) ([]string, bool, error) {
	if pending == nil {
		return nil, false, nil
	}
	poid, err := relation(ctx, tx, pending[0], pending[1])
	if err != nil || poid == 0 {
		return nil, false, err
	}
	have, err := baseColumns(ctx, tx, poid)
	if err != nil {
		return nil, false, fmt.Errorf("%s.%s: %w", pending[0], pending[1], err)
	}
	want, err := baseColumns(ctx, tx, parent)
	if err != nil {
		return nil, false, fmt.Errorf("%s.%s: %w", w.cfg.AllTenantsSchema, name, err)
	}
	got := map[string]string{}
	for _, c := range have {
		got[c.name] = c.typ
	}
	wanted := map[string]bool{}
	var add []string
	for _, c := range want {
		wanted[c.name] = true
		t, ok := got[c.name]
		switch {
		case !ok:
			add = append(add, "ADD COLUMN "+pgx.Identifier{c.name}.Sanitize()+" "+c.typ)
		case t != c.typ:
			return nil, false, nil
		}
	}
	for _, c := range have {
		if !wanted[c.name] {
			return nil, false, nil
		}
	}
	return add, true, nil
}

// movePending moves the pending slice to the control schema as final,
// adding the columns add (from pendingFits).
func movePending(ctx context.Context, tx pgx.Tx, pending pgx.Identifier, final string, add []string) error {
	pendingID := pending.Sanitize()
	stmts := []string{}
	if len(add) > 0 {
		stmts = append(stmts, "ALTER TABLE "+pendingID+" "+strings.Join(add, ", "))
	}
	stmts = append(stmts,
		"ALTER TABLE "+pendingID+" RENAME TO "+pgx.Identifier{final}.Sanitize(),
		"ALTER TABLE "+pgx.Identifier{pending[0], final}.Sanitize()+" SET SCHEMA "+pgx.Identifier{controlSchema}.Sanitize())
	for _, stmt := range stmts {
		if _, err := tx.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("move the pending slice %s.%s: %w", pending[0], pending[1], withDetail(err))
		}
	}
	if err := forgetObject(ctx, tx, pending[0], pending[1]); err != nil {
		return err
	}
	return recordObject(ctx, tx, controlSchema, final, kindTable)
}

// pendingSlice is the table, in the staging schema, that is filled while a
// table is staged and becomes the tenant's partition of the combined table
// at the promotion.
type pendingSlice struct {
	id         pgx.Identifier
	create     string // CREATE TABLE
	copy       string // COPY ... FROM STDIN
	stagedRows int64  // rows the COPY wrote
}

// newPendingSlice plans the pending slice of m.Tables[i] of tenant in
// schema staging; nil when the table's columns cannot form a slice (the
// promotion then reports why).
func newPendingSlice(m *lake.Manifest, i int, tenant, staging string) *pendingSlice {
	taken := map[string]bool{}
	for _, t := range m.Tables {
		taken[t.Name] = true
	}
	name := fmt.Sprintf("%s%d", pendingPrefix, i)
	for taken[name] {
		name += "$"
	}
	t := &m.Tables[i]
	lit := quoteLiteral(tenant)
	defs := []string{tenantIDColumn + " text NOT NULL DEFAULT " + lit + " CONSTRAINT " + sliceCheck + " CHECK (" + tenantIDColumn + " = " + lit + ")"}
	names := make([]string, 0, len(t.Columns))
	seen := map[string]bool{}
	for _, c := range t.Columns {
		typ, err := pgType(c.BigQueryType)
		if err != nil {
			return nil
		}
		base, _, _ := strings.Cut(typ, "(")
		cn := combinedName(c.Name)
		if seen[cn] || cn == tenantIDColumn {
			return nil
		}
		seen[cn] = true
		col := pgx.Identifier{cn}.Sanitize()
		defs = append(defs, col+" "+base)
		names = append(names, col)
	}
	id := pgx.Identifier{staging, name}
	return &pendingSlice{
		id:     id,
		create: "CREATE TABLE " + id.Sanitize() + " (" + strings.Join(defs, ", ") + ")",
		copy:   "COPY " + id.Sanitize() + " (" + strings.Join(names, ", ") + ") FROM STDIN WITH (FORMAT binary, FREEZE)",
	}
}

// pendingPrefix starts the names of pending slices in a staging schema.
const pendingPrefix = "tenantlake$slice$"

// dropStaged drops staged table schema.name (see dropOwned); a pending
// slice first loses the constraint and default it was made with, which
// are tenantlake's and would otherwise count as others' objects.
func dropStaged(ctx context.Context, tx pgx.Tx, schema, name, desc string) error {
	if strings.HasPrefix(name, pendingPrefix) {
		var hasDefault bool
		err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relname = $2 AND a.attname = $3 AND a.atthasdef)`, schema, name, tenantIDColumn).Scan(&hasDefault)
		if err != nil {
			return fmt.Errorf("look up %s.%s: %w", schema, name, err)
		}
		id := pgx.Identifier{schema, name}.Sanitize()
		stmts := []string{"ALTER TABLE IF EXISTS " + id + " DROP CONSTRAINT IF EXISTS " + sliceCheck}
		if hasDefault {
			stmts = append(stmts, "ALTER TABLE "+id+" ALTER COLUMN "+tenantIDColumn+" DROP DEFAULT")
		}
		for _, stmt := range stmts {
			if _, err := tx.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("%s %s.%s: %w", desc, schema, name, withDetail(err))
			}
		}
	}
	return dropOwned(ctx, tx, schema, name, "TABLE", desc)
}

// errPendingStopped stops a pending slice's COPY when the staging COPY
// has stopped.
var errPendingStopped = errors.New("the staging copy stopped")
