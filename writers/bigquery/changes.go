package bigquery

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"cloud.google.com/go/bigquery"

	"github.com/tenantlake/tenantlake/lake"
	"github.com/tenantlake/tenantlake/writers"
	"github.com/tenantlake/tenantlake/writers/changes"
)

// Change tables (Config.Changes, package writers/changes). Before the live
// record is claimed, the change rows from the previous live snapshot are
// computed from the lake, written as newline-delimited JSON to temporary
// files and loaded into one staging table per change table. After the
// tables are promoted, and before the live record says live, each staged
// change table is appended to the tenant's "<table>_changes" (a copy job,
// WRITE_APPEND; with mode=ctas an INSERT ... SELECT).
//
// An append job's id is derived from the tenant, the table and the load
// whose promotion the rows belong to, so it runs once: a load that
// completes an interrupted promotion of the same snapshot appends under the
// interrupted load's ids (found in the lake's ledger, ChangeSummary.LoadID)
// and so attaches to any append that already ran, never doubling rows. A
// change table carries the label tenantlake_changes=true, no expiration,
// and is kept when a snapshot drops its table.

// labelChanges marks change tables.
const labelChanges = "tenantlake_changes"

// changeSchema is the change tables' schema: writers/changes.Columns.
var changeSchema = bigquery.Schema{
	{Name: "load_id", Type: bigquery.StringFieldType, Required: true},
	{Name: "previous_snapshot_id", Type: bigquery.StringFieldType, Required: true},
	{Name: "snapshot_id", Type: bigquery.StringFieldType, Required: true},
	{Name: "snapshot_time", Type: bigquery.TimestampFieldType, Required: true},
	{Name: "operation", Type: bigquery.StringFieldType, Required: true},
	{Name: "key", Type: bigquery.StringFieldType},
	{Name: "row_before", Type: bigquery.StringFieldType},
	{Name: "row_after", Type: bigquery.StringFieldType},
}

// changeLoad is the change-table part of one load.
type changeLoad struct {
	base    *lake.Manifest
	summary *writers.ChangeSummary
	staged  []stagedChanges
}

type stagedChanges struct {
	source string          // the table whose changes they are
	name   string          // the change table
	table  *bigquery.Table // its staged rows
	jobIDs []string        // the load job, then the append job
}

// prepareChanges finds what a load's changes are computed from: the
// previous live snapshot, or, when the load completes an interrupted
// promotion of the same snapshot, what that promotion's load (interrupted,
// from the lake's ledger; nil when it left no record) recorded. full says
// the load is of the whole snapshot (it drops the tables m lacks). nil when
// the target keeps no change tables.
func (w *Writer) prepareChanges(ctx context.Context, lk *lake.Lake, m *lake.Manifest, full bool, rec liveRecord, interrupted *writers.Outcome, loadID string) (*changeLoad, error) {
	if !w.cfg.Changes {
		return nil, nil
	}
	if err := changes.Check(m, maxName); err != nil {
		return nil, err
	}
	from, origin := rec.Snapshot, loadID
	if rec.State == statePromoting {
		var prev *writers.ChangeSummary
		if interrupted != nil {
			prev = interrupted.Changes
		}
		switch {
		case rec.Snapshot != m.SnapshotID:
			return &changeLoad{summary: &writers.ChangeSummary{Note: fmt.Sprintf("the promotion of %s by load %s was interrupted, so the live tables mixed two snapshots: no change rows", rec.Snapshot, rec.LoadID)}}, nil
		case prev != nil && prev.From == "" && prev.Note != "":
			return &changeLoad{summary: &writers.ChangeSummary{Note: prev.Note}}, nil
		case prev == nil || prev.From == "" || prev.LoadID == "":
			return &changeLoad{summary: &writers.ChangeSummary{Note: fmt.Sprintf("the promotion of %s by load %s was interrupted and left no record of its changes' base: no change rows", rec.Snapshot, rec.LoadID)}}, nil
		}
		from, origin = prev.From, prev.LoadID
	}
	base, note, err := changes.Base(ctx, lk, m.Tenant, from)
	if err != nil {
		return nil, err
	}
	if base != nil && full {
		if err := changes.CheckBase(base, m, maxName); err != nil {
			return nil, err
		}
	}
	return &changeLoad{base: base, summary: &writers.ChangeSummary{LoadID: origin, Note: note}}, nil
}

// interruptedLoad returns the lake ledger's record of the load that
// claimed rec (a promotion it did not finish), nil when it left none.
func (w *Writer) interruptedLoad(ctx context.Context, lk *lake.Lake, tenant string, rec liveRecord) (*writers.Outcome, error) {
	recs, err := lk.LedgerOf(ctx, tenant, w.Target(), rec.Snapshot)
	if err != nil {
		return nil, fmt.Errorf("ledger of the interrupted load %s: %w", rec.LoadID, err)
	}
	for _, r := range recs {
		var out writers.Outcome
		if err := json.Unmarshal(r, &out); err != nil {
			return nil, fmt.Errorf("ledger of %s/%s: %w: %v", tenant, rec.Snapshot, lake.ErrCorrupt, err)
		}
		if out.LoadID == rec.LoadID {
			return &out, nil
		}
	}
	return nil, nil
}

// changeRow is one change row as newline-delimited JSON.
type changeRow struct {
	LoadID   string  `json:"load_id"`
	Previous string  `json:"previous_snapshot_id"`
	Snapshot string  `json:"snapshot_id"`
	Time     string  `json:"snapshot_time"`
	Op       string  `json:"operation"`
	Key      *string `json:"key"`
	Before   *string `json:"row_before"`
	After    *string `json:"row_after"`
}

func text(b []byte) *string {
	if b == nil {
		return nil
	}
	s := string(b)
	return &s
}

// stageChanges computes the change rows from c.base to m (tables: the
// snapshot's tables this load promotes, all when nil) and loads them into
// staging tables, one per change table.
func (w *Writer) stageChanges(ctx context.Context, lk *lake.Lake, m *lake.Manifest, tables []string, loadID string, c *changeLoad) (err error) {
	if c == nil || c.base == nil {
		return nil
	}
	c.summary.From, c.summary.Rows = c.base.SnapshotID, map[string]int64{}
	type spill struct {
		source, name string
		f            *os.File
		buf          *bufio.Writer
	}
	var files []*spill
	defer func() {
		for _, s := range files {
			err = errors.Join(err, s.f.Close(), os.Remove(s.f.Name()))
		}
	}()
	var cur *spill
	err = changes.Compute(ctx, lk, c.base, m, tables, c.summary.LoadID, func(table string, r changes.Row) error {
		name := changes.TableName(table, maxName)
		if cur == nil || cur.name != name {
			f, err := os.CreateTemp("", "tenantlake-changes-*.ndjson")
			if err != nil {
				return fmt.Errorf("change rows of %s: %w", table, err)
			}
			cur = &spill{source: table, name: name, f: f, buf: bufio.NewWriterSize(f, 1<<20)}
			files = append(files, cur)
		}
		line, err := json.Marshal(changeRow{LoadID: r.LoadID, Previous: r.Previous, Snapshot: r.Snapshot,
			Time: r.SnapshotTime.UTC().Format(time.RFC3339Nano), Op: r.Operation, Key: text(r.Key), Before: text(r.Before), After: text(r.After)})
		if err != nil {
			return err
		}
		c.summary.Rows[name]++
		if _, err := cur.buf.Write(append(line, '\n')); err != nil {
			return fmt.Errorf("change rows of %s: %w", table, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	ds := w.client.Dataset(w.datasetName(m.Tenant))
	for _, s := range files {
		// A user's table in the way fails the load before anything is
		// promoted.
		if err := w.checkChangeTable(ctx, ds.Table(s.name)); err != nil && !errors.Is(err, errNoTable) {
			return err
		}
		if err := s.buf.Flush(); err != nil {
			return fmt.Errorf("change rows for %s: %w", s.name, err)
		}
		st, ids, err := w.loadChanges(ctx, m, s.name, loadID, s.f)
		if err != nil {
			return fmt.Errorf("stage change rows for %s: %w", s.name, err)
		}
		c.staged = append(c.staged, stagedChanges{source: s.source, name: s.name, table: st, jobIDs: ids})
	}
	return nil
}

// loadChanges loads the change rows in f into a staging table of this load.
func (w *Writer) loadChanges(ctx context.Context, m *lake.Manifest, name, loadID string, f *os.File) (*bigquery.Table, []string, error) {
	st := w.client.Dataset(w.cfg.StagingDataset).Table(withHash(fmt.Sprintf("%s__%s__%s", m.Tenant, loadID, name), m.Tenant, loadID, name))
	if err := st.Create(ctx, &bigquery.TableMetadata{Schema: changeSchema}); err != nil && !isAlreadyExists(err) {
		return nil, nil, fmt.Errorf("create staging table %s.%s: %w", st.DatasetID, st.TableID, err)
	}
	id := withHash(fmt.Sprintf("tenantlake_changes_%s_%s_%s", m.Tenant, loadID, name), w.cfg.Project, m.Tenant, loadID, name)
	_, _, err := w.runJob(ctx, id, func(ctx context.Context) (*bigquery.Job, error) {
		if _, err := f.Seek(0, 0); err != nil {
			return nil, err
		}
		src := bigquery.NewReaderSource(f)
		configureJSON(&src.FileConfig, changeSchema)
		l := st.LoaderFrom(src)
		l.LoadConfig = loadConfig(src, st, true, w.cfg.Labels)
		l.JobID, l.Location = id, w.cfg.Location
		return l.Run(ctx)
	})
	return st, []string{id}, err
}

// appendChanges appends each staged change table to the tenant's change
// table in dataset ds, creating it (labelled, without expiration) at its
// first rows; a change table that exists was checked to be one when the
// rows were staged (stageChanges). It returns the append jobs' ids, and
// adds each to its staged table's jobIDs.
func (w *Writer) appendChanges(ctx context.Context, ds *bigquery.Dataset, tenant string, c *changeLoad) ([]string, error) {
	if c == nil {
		return nil, nil
	}
	var ids []string
	for i := range c.staged {
		s := &c.staged[i]
		dst := ds.Table(s.name)
		err := dst.Create(ctx, &bigquery.TableMetadata{
			Schema:      changeSchema,
			Description: "tenantlake: the rows each load of tenant " + tenant + " changed in table " + s.source,
			Labels:      w.labels(map[string]string{labelTenant: tenant, labelChanges: "true"}),
		})
		if err != nil && !isAlreadyExists(err) {
			return ids, fmt.Errorf("create change table %s.%s: %w", ds.DatasetID, s.name, err)
		}
		if err == nil {
			if err := w.clearExpiration(ctx, dst); err != nil {
				return ids, err
			}
		}
		id := withHash(fmt.Sprintf("tenantlake_append_%s_%s_%s", tenant, c.summary.LoadID, s.name), w.cfg.Project, ds.DatasetID, tenant, c.summary.LoadID, s.name)
		ids = append(ids, id)
		s.jobIDs = append(s.jobIDs, id)
		_, _, err = w.runJob(ctx, id, func(ctx context.Context) (*bigquery.Job, error) {
			if w.cfg.Promotion == PromoteCTAS {
				q := w.client.Query(appendSQL(s.table, dst))
				q.JobID, q.Location, q.Labels = id, w.cfg.Location, w.cfg.Labels
				return q.Run(ctx)
			}
			cp := dst.CopierFrom(s.table)
			cp.CopyConfig = appendConfig(s.table, dst, w.cfg.Labels)
			cp.JobID, cp.Location = id, w.cfg.Location
			return cp.Run(ctx)
		})
		if err != nil {
			return ids, fmt.Errorf("append change rows to %s.%s: %w", ds.DatasetID, s.name, err)
		}
	}
	return ids, nil
}

// checkNotChangeTables refuses tables of which one has the name of a change
// table in the tenant's dataset ds (labelled tenantlake_changes=true, from
// a load with change tables on): promoting it would replace a table's
// change history. Only names ending in changes.Suffix are looked up. It
// runs whether or not this target keeps change tables.
func (w *Writer) checkNotChangeTables(ctx context.Context, ds *bigquery.Dataset, m *lake.Manifest, tables []*lake.Table) error {
	for _, t := range tables {
		if !strings.HasSuffix(t.Name, changes.Suffix) {
			continue
		}
		err := w.checkChangeTable(ctx, ds.Table(t.Name))
		if err == nil {
			return fmt.Errorf("%w: snapshot %s of tenant %s has a table %s, the name of tenantlake's change table %s.%s, which holds the change history of another table and is never replaced: rename the table (or drop the change table, losing that history), then load again", lake.ErrInvalid, m.SnapshotID, m.Tenant, t.Name, ds.DatasetID, t.Name)
		}
		if !errors.Is(err, errNoTable) && !errors.Is(err, errNotChangeTable) {
			return err
		}
	}
	return nil
}

// noteJobs adds the jobs of each staged change table to the result of
// the table whose changes it holds.
func (c *changeLoad) noteJobs(tables []writers.TableResult) {
	if c == nil {
		return
	}
	for _, s := range c.staged {
		for i := range tables {
			if tables[i].Table == s.source {
				tables[i].Jobs = append(tables[i].Jobs, s.jobIDs...)
			}
		}
	}
}

// errNoTable: the change table does not exist yet.
var errNoTable = errors.New("no such table")

// errNotChangeTable: a table of a change table's name is not one.
var errNotChangeTable = errors.New("is not tenantlake's change table")

// checkChangeTable fails unless dst carries the change-table label (or
// does not exist: errNoTable): a user's table of that name is never
// appended to.
func (w *Writer) checkChangeTable(ctx context.Context, dst *bigquery.Table) error {
	md, err := dst.Metadata(ctx)
	if isNotFound(err) {
		return errNoTable
	}
	if err != nil {
		return fmt.Errorf("read change table %s.%s: %w", dst.DatasetID, dst.TableID, err)
	}
	if md.Labels[labelChanges] != "true" {
		return fmt.Errorf("%s.%s exists and %w (no label %s=true): rename or drop it, or switch off changes for this target, then load again", dst.DatasetID, dst.TableID, errNotChangeTable, labelChanges)
	}
	return nil
}

// appendSQL appends the rows of src to change table dst (mode=ctas).
func appendSQL(src, dst *bigquery.Table) string {
	cols := make([]string, len(changeSchema))
	for i, f := range changeSchema {
		cols[i] = quoteIdent(f.Name)
	}
	list := strings.Join(cols, ", ")
	return fmt.Sprintf("INSERT INTO %s (%s) SELECT %s FROM %s", tablePath(dst), list, list, tablePath(src))
}

// appendConfig is the copy job that appends staged change rows to a change
// table: WRITE_APPEND, into the table created before (CREATE_NEVER).
func appendConfig(src, dst *bigquery.Table, labels map[string]string) bigquery.CopyConfig {
	return bigquery.CopyConfig{
		Srcs:              []*bigquery.Table{src},
		Dst:               dst,
		CreateDisposition: bigquery.CreateNever,
		WriteDisposition:  bigquery.WriteAppend,
		Labels:            labels,
	}
}
