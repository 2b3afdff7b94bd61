package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/tenantlake/tenantlake/lake"
	"github.com/tenantlake/tenantlake/writers"
)

// stage creates the staging schema if missing and drops the tables an
// earlier load of the tenant staged there (one transaction), then creates
// and fills the snapshot's tables (a second transaction). Side by side,
// over a second connection and in a transaction of its own, it fills each
// table's pending slice of the combined all-tenants table (slices.go) from
// the same COPY data: pending maps the tables whose slice is ready to
// their pending table. When that connection fails, pending is empty and
// the promotion fills the slices itself; the staging goes on.
func (w *Writer) stage(ctx context.Context, conn *pgx.Conn, lk *lake.Lake, m *lake.Manifest, staging schemaRef, loadID string, chg *changeLoad) (results []writers.TableResult, pending map[string]pgx.Identifier, err error) {
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if err := ensureSchema(ctx, tx, staging); err != nil {
			return err
		}
		old, err := ownedObjects(ctx, tx, staging.name, kindTable)
		if err != nil {
			return err
		}
		for _, name := range old {
			if err := dropStaged(ctx, tx, staging.name, name, "staged table"); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	slices := w.beginSlices(ctx, m)
	defer slices.end(ctx)
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		for i := range m.Tables {
			t := &m.Tables[i]
			ps := slices.prepare(ctx, m, i, staging.name)
			res, err := stageTable(ctx, tx, lk, t, staging.name, slices.tx, ps)
			if err != nil {
				return fmt.Errorf("table %s: %w", t.Name, err)
			}
			if err := recordObject(ctx, tx, staging.name, t.Name, kindTable); err != nil {
				return err
			}
			slices.staged(ctx, t, ps, res.TargetRows)
			results = append(results, res)
		}
		// Committed before the staged tables are: should the staging
		// commit fail, the pending slices are dropped by the next load.
		slices.commit(ctx)
		return stageChanges(ctx, tx, lk, m, staging.name, loadID, chg)
	})
	if err != nil {
		return nil, nil, err
	}
	return results, slices.pending, nil
}

// slicesTx is the transaction, on a connection of its own, that fills the
// pending slices while the snapshot is staged. Any failure of it only
// rolls it back: tx is then nil, pending empty, and the staging goes on.
type slicesTx struct {
	conn    *pgx.Conn
	tx      pgx.Tx
	pending map[string]pgx.Identifier
}

// beginSlices opens it when a table of m has more than inPlaceRows rows
// (the others' slices are replaced in place at the promotion).
func (w *Writer) beginSlices(ctx context.Context, m *lake.Manifest) *slicesTx {
	s := &slicesTx{pending: map[string]pgx.Identifier{}}
	if !slices.ContainsFunc(m.Tables, func(t lake.Table) bool { return t.Rows > inPlaceRows }) {
		return s
	}
	conn, err := w.connect(ctx)
	if err != nil {
		slog.Warn("postgres writer: all-tenants slices will be filled at the promotion", "tenant", m.Tenant, "err", err)
		return s
	}
	s.conn = conn
	if s.tx, err = conn.Begin(ctx); err != nil {
		s.fail(ctx, err)
	}
	return s
}

// fail gives up the pending slices.
func (s *slicesTx) fail(ctx context.Context, err error) {
	if !errors.Is(err, errPendingStopped) && ctx.Err() == nil {
		slog.Warn("postgres writer: all-tenants slices will be filled at the promotion", "err", err)
	}
	if s.tx != nil {
		_ = s.tx.Rollback(ctx) // the connection is closed anyway by end
		s.tx = nil
	}
	s.pending = map[string]pgx.Identifier{}
}

// prepare creates the pending slice of m.Tables[i]; nil when there is none.
func (s *slicesTx) prepare(ctx context.Context, m *lake.Manifest, i int, staging string) *pendingSlice {
	if s.tx == nil {
		return nil
	}
	if m.Tables[i].Rows <= inPlaceRows {
		return nil
	}
	ps := newPendingSlice(m, i, m.Tenant, staging)
	if ps == nil {
		return nil
	}
	if _, err := s.tx.Exec(ctx, ps.create); err != nil {
		s.fail(ctx, fmt.Errorf("create pending slice %s: %w", ps.id.Sanitize(), err))
		return nil
	}
	return ps
}

// staged records ps once its table is staged with rows rows.
func (s *slicesTx) staged(ctx context.Context, t *lake.Table, ps *pendingSlice, rows int64) {
	if ps == nil || s.tx == nil {
		return
	}
	if ps.stagedRows != rows {
		s.fail(ctx, fmt.Errorf("pending slice %s: %d rows, the staged table %d", ps.id.Sanitize(), ps.stagedRows, rows))
		return
	}
	if err := recordObject(ctx, s.tx, ps.id[0], ps.id[1], kindTable); err != nil {
		s.fail(ctx, err)
		return
	}
	s.pending[t.Name] = ps.id
}

func (s *slicesTx) commit(ctx context.Context) {
	if s.tx == nil {
		return
	}
	if err := s.tx.Commit(ctx); err != nil {
		s.tx = nil
		s.fail(ctx, err)
		return
	}
	s.tx = nil
}

// end rolls back what is not committed and closes the connection.
func (s *slicesTx) end(ctx context.Context) {
	if s.tx != nil {
		_ = s.tx.Rollback(ctx)
		s.tx = nil
	}
	if s.conn != nil {
		var err error
		closeConn(ctx, s.conn, &err)
	}
}

// dropOwned drops tenantlake's relation schema.name (what is "TABLE" or
// "VIEW") without CASCADE, and forgets it; objects of someone else's that
// depend on it fail the drop, naming them.
func dropOwned(ctx context.Context, tx pgx.Tx, schema, name, what, desc string) error {
	oid, err := relation(ctx, tx, schema, name)
	if err != nil {
		return err
	}
	if oid != 0 {
		deps, err := dependents(ctx, tx, oid, "")
		if err != nil {
			return fmt.Errorf("%s %s.%s: %w", desc, schema, name, err)
		}
		if len(deps) > 0 {
			return dependentsErr(fmt.Sprintf("%s %s.%s must be dropped", desc, schema, name), deps)
		}
		if _, err := tx.Exec(ctx, "DROP "+what+" "+pgx.Identifier{schema, name}.Sanitize()); err != nil {
			return fmt.Errorf("drop %s %s.%s: %w", desc, schema, name, withDetail(err))
		}
	}
	return forgetObject(ctx, tx, schema, name)
}

// promote makes the staged snapshot live in one transaction: each staged
// table replaces its live table (promoteTable), live tables that are not in
// the snapshot are dropped, the live record is compared and swapped, the
// tenant's slices of the combined all-tenants tables are replaced
// (updateAllTenants; a slice that cannot be is listed in
// out.AllTenantsStale and the promotion still commits), the staged change
// rows are appended to the change tables (appendChanges), the staging schema
// is dropped when empty, and the ledger row is written.
func (w *Writer) promote(ctx context.Context, conn *pgx.Conn, lk *lake.Lake, req writers.Request, out *writers.Outcome, m *lake.Manifest, live, staging schemaRef, pending map[string]pgx.Identifier, chg *changeLoad) error {
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		var cur string
		err := tx.QueryRow(ctx, `SELECT snapshot_id FROM tenantlake.live WHERE tenant = $1 FOR UPDATE`, req.Tenant).Scan(&cur)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("read live snapshot: %w", err)
		}
		if cur != out.PreviousLive {
			return fmt.Errorf("live snapshot changed from %q to %q during the load; retry", out.PreviousLive, cur)
		}
		if err := ensureSchema(ctx, tx, live); err != nil {
			return err
		}
		// Before the tenant's tables are replaced: the all-tenants views
		// of earlier versions, which read them, go.
		if err := w.ensureAllTenants(ctx, tx); err != nil {
			return err
		}
		owned, err := ownedObjects(ctx, tx, live.name, kindTable)
		if err != nil {
			return err
		}
		inSnapshot := map[string]bool{}
		for _, t := range m.Tables {
			inSnapshot[t.Name] = true
			if err := promoteTable(ctx, tx, live.name, staging.name, t.Name, contains(owned, t.Name)); err != nil {
				return fmt.Errorf("promote table %s: %w", t.Name, err)
			}
		}
		for _, name := range owned {
			if inSnapshot[name] {
				continue
			}
			if err := dropOwned(ctx, tx, live.name, name, "TABLE", "table (not in snapshot "+req.SnapshotID+")"); err != nil {
				return err
			}
		}
		_, err = tx.Exec(ctx, `
INSERT INTO tenantlake.live (tenant, snapshot_id, schema_name, load_id, reason, updated_at)
VALUES ($1, $2, $3, $4, $5, now())
ON CONFLICT (tenant) DO UPDATE SET snapshot_id = $2, schema_name = $3, load_id = $4, reason = $5, updated_at = now()`,
			req.Tenant, req.SnapshotID, live.name, out.LoadID, req.Reason)
		if err != nil {
			return fmt.Errorf("record live snapshot: %w", err)
		}
		combined, err := ownedObjects(ctx, tx, w.cfg.AllTenantsSchema, kindTable)
		if err != nil {
			return err
		}
		t0 := time.Now()
		stale, err := w.updateAllTenants(ctx, tx, req.Tenant, live.name, append(sortedKeys(inSnapshot), combined...), inSnapshot, pending)
		if err != nil {
			return err
		}
		// The pending slices not attached (a type clash, an all-tenants
		// table of an earlier version) go.
		for _, id := range sortedKeys(pending) {
			if err := dropStaged(ctx, tx, pending[id][0], pending[id][1], "pending all-tenants slice"); err != nil {
				return err
			}
		}
		slog.Debug("postgres writer: all-tenants slices replaced", "tenant", req.Tenant, "snapshot", req.SnapshotID, "all_tenants", time.Since(t0))
		if err := appendChanges(ctx, tx, live.name, staging.name, chg); err != nil {
			return err
		}
		if err := dropIfEmpty(ctx, tx, staging.name); err != nil {
			return err
		}
		out.Outcome, out.Live = writers.OutcomeLoaded, req.SnapshotID
		if chg != nil {
			out.Changes = chg.summary
		}
		if req.Reason == writers.ReasonReplay && out.PreviousLive > req.SnapshotID {
			out.Message = fmt.Sprintf("replay: replaced newer live snapshot %s on purpose", out.PreviousLive)
		}
		if len(stale) > 0 {
			out.AllTenantsStale = stale
			msg := "snapshot " + req.SnapshotID + " is live; these all-tenants tables still hold the tenant's previous rows (rebuild them with RebuildAllTenants, or load a newer snapshot: loading this one again is already-live): " + strings.Join(stale, "; ")
			if out.Message != "" {
				msg = out.Message + "; " + msg
			}
			out.Message = msg
		}
		// Last before the commit: a snapshot gc deleted meanwhile must
		// not become live.
		if err := writers.StillCommitted(ctx, lk, req.Tenant, req.SnapshotID); err != nil {
			return err
		}
		out.FinishedAt = time.Now().UTC()
		return w.writeLedger(ctx, tx, out)
	})
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// promoteTable replaces live table live.name with staged table
// staging.name (owned says live.name is tenantlake's):
//
//   - no live table: the staged table moves into the live schema;
//   - a live table exactly as tenantlake made it (nothing depends on it,
//     no grant, comment, owner or option changed by hand): it is dropped
//     and the staged table moves in its place, with no copy of the rows;
//   - otherwise (a user's view over it, an index, a trigger, a grant...):
//     its rows are replaced in place (TRUNCATE, columns changed to the
//     snapshot's with ALTER TABLE, INSERT ... SELECT), so everything
//     attached to it stays. A change that would break a dependent object
//     (a column it uses dropped or retyped, a foreign key to it) fails.
//
// A relation of that name that tenantlake did not create is never replaced.
func promoteTable(ctx context.Context, tx pgx.Tx, live, staging, name string, owned bool) error {
	liveOID, err := relation(ctx, tx, live, name)
	if err != nil {
		return err
	}
	stagedOID, err := relation(ctx, tx, staging, name)
	if err != nil {
		return err
	}
	if stagedOID == 0 {
		return fmt.Errorf("staged table %s.%s is missing", staging, name)
	}
	liveID := pgx.Identifier{live, name}.Sanitize()
	switch {
	case liveOID != 0 && !owned:
		return fmt.Errorf("%s.%s exists and was %w; tenantlake never replaces it: rename or drop it, then load again", live, name, ErrNotOwned)
	case liveOID != 0:
		if _, err := tx.Exec(ctx, "LOCK TABLE "+liveID+" IN ACCESS EXCLUSIVE MODE"); err != nil {
			return fmt.Errorf("lock %s.%s: %w", live, name, err)
		}
		asMade, err := untouched(ctx, tx, liveOID, stagedOID)
		if err != nil {
			return fmt.Errorf("%s.%s: %w", live, name, err)
		}
		if !asMade {
			return replaceRows(ctx, tx, live, staging, name, liveOID, stagedOID)
		}
		if _, err := tx.Exec(ctx, "DROP TABLE "+liveID); err != nil {
			return fmt.Errorf("drop %s.%s: %w", live, name, withDetail(err))
		}
		if err := forgetObject(ctx, tx, live, name); err != nil {
			return err
		}
	}
	if _, err := tx.Exec(ctx, "ALTER TABLE "+pgx.Identifier{staging, name}.Sanitize()+" SET SCHEMA "+pgx.Identifier{live}.Sanitize()); err != nil {
		return fmt.Errorf("move %s.%s to schema %s: %w", staging, name, live, withDetail(err))
	}
	if _, err := tx.Exec(ctx, `DELETE FROM tenantlake.tables WHERE schema_name = $1 AND table_name = $2`, live, name); err != nil {
		return fmt.Errorf("record %s.%s: %w", live, name, err)
	}
	if _, err := tx.Exec(ctx, `UPDATE tenantlake.tables SET schema_name = $1 WHERE schema_name = $2 AND table_name = $3`, live, staging, name); err != nil {
		return fmt.Errorf("record %s.%s: %w", live, name, err)
	}
	return nil
}

// untouched says whether live table liveOID is as tenantlake made it, so
// that dropping it loses nothing: no object depends on it, it is no
// partition or child of a user's table, and its owner, grants, comments,
// row security and storage options are those of the staged table that
// replaces it.
func untouched(ctx context.Context, tx pgx.Tx, liveOID, stagedOID uint32) (bool, error) {
	deps, err := dependents(ctx, tx, liveOID, "")
	if err != nil {
		return false, err
	}
	if len(deps) > 0 {
		return false, nil
	}
	var changed bool
	err = tx.QueryRow(ctx, `
SELECT l.relowner <> s.relowner OR l.relacl IS DISTINCT FROM s.relacl
    OR l.relrowsecurity OR l.relforcerowsecurity OR l.reloptions IS NOT NULL
    OR EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = l.oid) -- attached by hand to a user's partitioned or parent table
    OR EXISTS (SELECT 1 FROM pg_description WHERE classoid = 'pg_class'::regclass AND objoid = l.oid)
    OR EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = l.oid AND attnum > 0 AND attacl IS NOT NULL)
    OR EXISTS (SELECT 1 FROM pg_seclabel WHERE classoid = 'pg_class'::regclass AND objoid = l.oid)
FROM pg_class l, pg_class s WHERE l.oid = $1 AND s.oid = $2`, liveOID, stagedOID).Scan(&changed)
	if err != nil {
		return false, fmt.Errorf("compare with the staged table: %w", err)
	}
	return !changed, nil
}

// replaceRows replaces the rows of live.name with those of staging.name
// inside the live table, first changing its columns to the staged table's
// (order aside), then drops the staged table.
func replaceRows(ctx context.Context, tx pgx.Tx, live, staging, name string, liveOID, stagedOID uint32) error {
	liveCols, err := columns(ctx, tx, liveOID)
	if err != nil {
		return fmt.Errorf("%s.%s: %w", live, name, err)
	}
	stagedCols, err := columns(ctx, tx, stagedOID)
	if err != nil {
		return fmt.Errorf("%s.%s: %w", staging, name, err)
	}
	liveID, stagedID := pgx.Identifier{live, name}.Sanitize(), pgx.Identifier{staging, name}.Sanitize()
	exec := func(what, sql string) error {
		if _, err := tx.Exec(ctx, sql); err != nil {
			return fmt.Errorf("keeping the objects attached to %s.%s, %s: %w", live, name, what, withDetail(err))
		}
		return nil
	}
	if err := exec("empty it", "TRUNCATE "+liveID); err != nil {
		return err
	}
	want := map[string]column{}
	for _, c := range stagedCols {
		want[c.name] = c
	}
	have := map[string]column{}
	for _, c := range liveCols {
		have[c.name] = c
		col := pgx.Identifier{c.name}.Sanitize()
		s, ok := want[c.name]
		switch {
		case !ok:
			// Dropping a column silently drops the indexes and
			// statistics on it: refuse when anything uses it.
			deps, err := dependents(ctx, tx, liveOID, c.name)
			if err != nil {
				return fmt.Errorf("%s.%s column %s: %w", live, name, c.name, err)
			}
			if len(deps) > 0 {
				return dependentsErr(fmt.Sprintf("column %s of %s.%s is not in the snapshot", c.name, live, name), deps)
			}
			if err := exec("drop column "+c.name+" (not in the snapshot)", "ALTER TABLE "+liveID+" DROP COLUMN "+col); err != nil {
				return err
			}
			continue
		case s.typ != c.typ:
			if err := exec("change column "+c.name+" from "+c.typ+" to "+s.typ, "ALTER TABLE "+liveID+" ALTER COLUMN "+col+" TYPE "+s.typ+" USING NULL"); err != nil {
				return err
			}
		}
		if s.notNull != c.notNull {
			set := "DROP NOT NULL"
			if s.notNull {
				set = "SET NOT NULL"
			}
			if err := exec("column "+c.name+" "+strings.ToLower(set), "ALTER TABLE "+liveID+" ALTER COLUMN "+col+" "+set); err != nil {
				return err
			}
		}
	}
	names := make([]string, 0, len(stagedCols))
	for _, c := range stagedCols {
		col := pgx.Identifier{c.name}.Sanitize()
		names = append(names, col)
		if _, ok := have[c.name]; ok {
			continue
		}
		def := col + " " + c.typ
		if c.notNull {
			def += " NOT NULL"
		}
		if err := exec("add column "+c.name, "ALTER TABLE "+liveID+" ADD COLUMN "+def); err != nil {
			return err
		}
	}
	list := strings.Join(names, ", ")
	if err := exec("copy the staged rows in", "INSERT INTO "+liveID+" ("+list+") SELECT "+list+" FROM "+stagedID); err != nil {
		return err
	}
	if err := exec("drop the staged table", "DROP TABLE "+stagedID); err != nil {
		return err
	}
	return forgetObject(ctx, tx, staging, name)
}

// dropIfEmpty drops staging schema s once it holds nothing, and forgets
// it; a schema that still holds something (a user's object) stays.
func dropIfEmpty(ctx context.Context, tx pgx.Tx, s string) error {
	var n int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM tenantlake.tables WHERE schema_name = $1`, s).Scan(&n); err != nil {
		return fmt.Errorf("staging schema %s: %w", s, err)
	}
	if n > 0 {
		return nil
	}
	sp, err := tx.Begin(ctx)
	if err != nil {
		return fmt.Errorf("staging schema %s: %w", s, err)
	}
	if _, err := sp.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{s}.Sanitize()); err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "2BP01" { // dependent_objects_still_exist: not empty
			if rerr := sp.Rollback(ctx); rerr != nil {
				return fmt.Errorf("staging schema %s: %w", s, rerr)
			}
			return nil
		}
		return errors.Join(fmt.Errorf("drop staging schema %s: %w", s, err), sp.Rollback(ctx))
	}
	if _, err := sp.Exec(ctx, `DELETE FROM tenantlake.schemas WHERE schema_name = $1`, s); err != nil {
		return errors.Join(fmt.Errorf("forget staging schema %s: %w", s, err), sp.Rollback(ctx))
	}
	if err := sp.Commit(ctx); err != nil {
		return fmt.Errorf("staging schema %s: %w", s, err)
	}
	return nil
}
