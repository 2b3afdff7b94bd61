package postgres

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/tenantlake/tenantlake/lake"
)

// A combined all-tenants table created by this version is partitioned by
// tenant (PARTITION BY LIST (tenant_id)): each tenant's slice is one
// partition, a table in the control schema named slice_<combined table's
// oid>_<tenant> and recorded in tenantlake.tables. A promotion swaps the
// tenant's partition whole, in its transaction: the old partition is
// dropped and the new one attached, metadata changes only, with no DELETE
// (so no dead rows to vacuum) and no index to maintain; queries that filter
// on tenant_id read the tenant's partition only. The new partition is
// filled while the snapshot is staged, by a second COPY of the same rows
// over a second connection, side by side with the staging COPY (stage): it
// waits in the staging schema as a pending slice until the promotion
// attaches it. When it is missing (that connection failed, a rebuild), the
// tenant's partition stays and its rows are replaced in place from the new
// live table (DELETE and INSERT ... SELECT), so that a REPEATABLE READ
// transaction older than the promotion still sees the old rows; only a
// tenant's first slice is then a new table filled by INSERT ... SELECT.
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
  AND NOT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = t.table_name)`, controlSchema)
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
	combinedID := pgx.Identifier{schema, name}.Sanitize()
	final := sliceName(parent, tenant)
	finalID := pgx.Identifier{controlSchema, final}.Sanitize()
	add, fits, err := w.pendingFits(ctx, tx, parent, name, pending)
	if err != nil {
		return err
	}
	fill := func(id string) error {
		dst, src := []string{tenantIDColumn}, []string{"$1::text"}
		for _, c := range cols {
			dst = append(dst, pgx.Identifier{c.combined}.Sanitize())
			src = append(src, pgx.Identifier{c.live}.Sanitize())
		}
		ins := "INSERT INTO " + id + " (" + strings.Join(dst, ", ") + ") SELECT " + strings.Join(src, ", ") + " FROM " + pgx.Identifier{live, name}.Sanitize()
		if _, err := tx.Exec(ctx, ins, tenant); err != nil {
			return fmt.Errorf("fill the tenant's partition of %s.%s: %w", schema, name, withDetail(err))
		}
		return nil
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
		if _, err := tx.Exec(ctx, "DELETE FROM "+finalID); err != nil {
			return fmt.Errorf("delete the tenant's rows from its partition of %s.%s: %w", schema, name, withDetail(err))
		}
		return fill(finalID)
	}
	if err := dropSlice(ctx, tx, parent, schema, name, tenant); err != nil {
		return err
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
		stmt := "CREATE TABLE " + finalID + " (LIKE " + combinedID + ", CONSTRAINT " + sliceCheck + " CHECK (" + tenantIDColumn + " = " + quoteLiteral(tenant) + "))"
		if _, err := tx.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("create the tenant's partition of %s.%s: %w", schema, name, withDetail(err))
		}
		if err := recordObject(ctx, tx, controlSchema, final, kindTable); err != nil {
			return err
		}
		if err := fill(finalID); err != nil {
			return err
		}
	}
	if err := inheritConstraints(ctx, tx, parent, finalID); err != nil {
		return fmt.Errorf("the tenant's partition of %s.%s: %w", schema, name, err)
	}
	for _, stmt := range []string{
		"ALTER TABLE " + combinedID + " ATTACH PARTITION " + finalID + " FOR VALUES IN (" + quoteLiteral(tenant) + ")",
		"ALTER TABLE " + finalID + " DROP CONSTRAINT " + sliceCheck + ", ALTER COLUMN " + tenantIDColumn + " DROP DEFAULT",
	} {
		if _, err := tx.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("attach the tenant's partition to %s.%s: %w", schema, name, withDetail(err))
		}
	}
	return nil
}

// ownPartition returns the oid of tenant's partition of partitioned table
// parent when it is tenantlake's (the table final in the control schema,
// recorded in the catalog), else 0.
func ownPartition(ctx context.Context, tx pgx.Tx, parent uint32, tenant, final string) (uint32, error) {
	var oid uint32
	err := tx.QueryRow(ctx, `
SELECT c.oid FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN tenantlake.tables t ON t.schema_name = n.nspname AND t.table_name = c.relname AND t.kind = $5
WHERE i.inhparent = $1 AND n.nspname = $3 AND c.relname = $4
  AND pg_get_expr(c.relpartbound, c.oid) = 'FOR VALUES IN (' || quote_literal($2::text) || ')'`,
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
