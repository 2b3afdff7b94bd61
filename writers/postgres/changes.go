package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/tenantlake/tenantlake/lake"
	"github.com/tenantlake/tenantlake/writers"
	"github.com/tenantlake/tenantlake/writers/changes"
)

// Change tables (Config.Changes, package writers/changes): the change rows
// are staged, in the staging transaction, into a table of the staging
// schema named like the change table; the promoting transaction appends
// them to the change table in the tenant's schema (created at its first
// change, recorded in the catalog as kind "changes", so a snapshot that
// drops a table never drops its change history) and drops the staged one.
// The rows so become visible with the snapshot they lead to, or not at all.

// maxIdent is PostgreSQL's longest identifier, in bytes.
const maxIdent = 63

// changeTableDDL is the column list of a change table.
const changeTableDDL = `(
	load_id              text NOT NULL,
	previous_snapshot_id text NOT NULL,
	snapshot_id          text NOT NULL,
	snapshot_time        timestamptz NOT NULL,
	operation            text NOT NULL,
	key                  json,
	row_before           json,
	row_after            json
)`

// changeLoad is the change-table part of one load.
type changeLoad struct {
	base    *lake.Manifest // the previous live snapshot; nil: no change rows
	summary *writers.ChangeSummary
	staged  []string // staged change tables, in the order they were filled
}

// prepareChanges checks snapshot m against the previous live snapshot
// prev for change tables and finds the base to compare with; nil when the
// target keeps none.
func (w *Writer) prepareChanges(ctx context.Context, lk *lake.Lake, m *lake.Manifest, prev string) (*changeLoad, error) {
	if !w.cfg.Changes {
		return nil, nil
	}
	if err := changes.Check(m, maxIdent); err != nil {
		return nil, err
	}
	base, note, err := changes.Base(ctx, lk, m.Tenant, prev)
	if err != nil {
		return nil, err
	}
	if base != nil {
		if err := changes.CheckBase(base, m, maxIdent); err != nil {
			return nil, err
		}
	}
	return &changeLoad{base: base, summary: &writers.ChangeSummary{Note: note}}, nil
}

// checkChangeTableNames refuses snapshot m when one of its tables has the
// name of a change table tenantlake keeps in the tenant's schema live (from
// an earlier load with change tables on): that table holds the change
// history of another table, and is never replaced. It only reads, and runs
// whether or not this target keeps change tables.
func checkChangeTableNames(ctx context.Context, q querier, live string, m *lake.Manifest) error {
	names := make([]string, len(m.Tables))
	for i, t := range m.Tables {
		names[i] = t.Name
	}
	var n string
	err := q.QueryRow(ctx, `SELECT table_name FROM tenantlake.tables WHERE schema_name = $1 AND kind = $2 AND table_name = ANY($3) ORDER BY 1 LIMIT 1`, live, kindChanges, names).Scan(&n)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil
	case err != nil:
		return fmt.Errorf("list tenantlake's change tables in %s: %w", live, err)
	}
	return fmt.Errorf("%w: snapshot %s of tenant %s has a table %s, the name of tenantlake's change table %s.%s, which holds the change history of another table and is never replaced: rename the table (or drop the change table, losing that history), then load again", lake.ErrInvalid, m.SnapshotID, m.Tenant, n, live, n)
}

// changeBatch is how many change rows one COPY carries.
const changeBatch = 2000

// stageChanges fills the staged change tables of the load with the change
// rows from c.base to m, in the staging transaction.
func stageChanges(ctx context.Context, tx pgx.Tx, lk *lake.Lake, m *lake.Manifest, staging, loadID string, c *changeLoad) error {
	if c == nil || c.base == nil {
		return nil
	}
	c.summary.From, c.summary.LoadID = c.base.SnapshotID, loadID
	c.summary.Rows = map[string]int64{}
	var cur string
	var batch [][]any
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{staging, cur}, changes.Columns, pgx.CopyFromRows(batch)); err != nil {
			return fmt.Errorf("stage change rows into %s.%s: %w", staging, cur, err)
		}
		c.summary.Rows[cur] += int64(len(batch))
		batch = batch[:0]
		return nil
	}
	err := changes.Compute(ctx, lk, c.base, m, nil, loadID, func(table string, r changes.Row) error {
		name := changes.TableName(table, maxIdent)
		if name != cur {
			if err := flush(); err != nil {
				return err
			}
			cur = name
			if _, err := tx.Exec(ctx, "CREATE TABLE "+pgx.Identifier{staging, name}.Sanitize()+" "+changeTableDDL); err != nil {
				return fmt.Errorf("create staged change table %s.%s: %w", staging, name, withDetail(err))
			}
			if err := recordObject(ctx, tx, staging, name, kindTable); err != nil {
				return err
			}
			c.staged = append(c.staged, name)
		}
		batch = append(batch, []any{r.LoadID, r.Previous, r.Snapshot, r.SnapshotTime, r.Operation, r.Key, r.Before, r.After})
		if len(batch) == changeBatch {
			return flush()
		}
		return nil
	})
	if err != nil {
		return err
	}
	return flush()
}

// appendChanges appends the staged change rows to the tenant's change
// tables and drops the staged tables, in the promoting transaction.
func appendChanges(ctx context.Context, tx pgx.Tx, live, staging string, c *changeLoad) error {
	if c == nil {
		return nil
	}
	cols := make([]string, len(changes.Columns))
	for i, n := range changes.Columns {
		cols[i] = pgx.Identifier{n}.Sanitize()
	}
	list := strings.Join(cols, ", ")
	for _, name := range c.staged {
		liveID := pgx.Identifier{live, name}.Sanitize()
		oid, err := relation(ctx, tx, live, name)
		if err != nil {
			return err
		}
		if oid == 0 {
			if _, err := tx.Exec(ctx, "CREATE TABLE "+liveID+" "+changeTableDDL); err != nil {
				return fmt.Errorf("create change table %s.%s: %w", live, name, withDetail(err))
			}
			if err := recordObject(ctx, tx, live, name, kindChanges); err != nil {
				return err
			}
		} else {
			var kind string
			err := tx.QueryRow(ctx, `SELECT kind FROM tenantlake.tables WHERE schema_name = $1 AND table_name = $2`, live, name).Scan(&kind)
			if err != nil && err != pgx.ErrNoRows {
				return fmt.Errorf("change table %s.%s: %w", live, name, err)
			}
			if kind != kindChanges {
				return fmt.Errorf("%s.%s exists and is not tenantlake's change table (%w): rename or drop it, or switch off changes for this target, then load again", live, name, ErrNotOwned)
			}
		}
		if _, err := tx.Exec(ctx, "INSERT INTO "+liveID+" ("+list+") SELECT "+list+" FROM "+pgx.Identifier{staging, name}.Sanitize()); err != nil {
			return fmt.Errorf("append change rows to %s.%s: %w", live, name, withDetail(err))
		}
		if err := dropOwned(ctx, tx, staging, name, "TABLE", "staged change table"); err != nil {
			return err
		}
	}
	return nil
}
