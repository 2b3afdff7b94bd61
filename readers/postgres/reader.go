package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/parquet-go/parquet-go"
	"golang.org/x/sync/errgroup"

	"github.com/tenantlake/tenantlake/lake"
	"github.com/tenantlake/tenantlake/readers"
	"github.com/tenantlake/tenantlake/tenant"
)

// Policy says what to do with a column's values that its Parquet type cannot
// carry exactly (docs/types.md). The zero value fails the read.
type Policy string

const (
	// PolicyFail fails the read, naming tenant, table, column and row key.
	PolicyFail Policy = ""
	// PolicyNull writes NULL instead of such a value; the column becomes
	// nullable and its manifest entry says "null".
	PolicyNull Policy = "null"
	// PolicyString carries the whole column as PostgreSQL's text output
	// (BigQuery STRING), so every value fits; arrays (with their bounds) and
	// composites too.
	PolicyString Policy = "string"
)

// ErrPolicy is wrapped by the error of a read with a policy (Options.Policies)
// that matches no column: a typo must not pass silently.
var ErrPolicy = errors.New("policy matches no column")

// Options configure a Reader. The zero value is usable.
type Options struct {
	// Parallel is the number of connections reading at once, each in the same
	// snapshot. Zero means 2.
	Parallel int
	// RowGroupBytes bounds a row group by the bytes of the values received
	// from PostgreSQL. Zero means 16 MiB.
	RowGroupBytes int64
	// PartBytes bounds a part the same way; a range bigger than this is
	// written as several parts. Zero means 1 GiB.
	PartBytes int64
	// SplitBytes: a table (or leaf partition) larger than this on disk is
	// split into ctid ranges of about this size, read in parallel. Zero means
	// 32 MiB; negative never splits.
	SplitBytes int64
	// Policies maps "schema.table.column" (source names, unquoted) to a
	// Policy for that column. A policy whose table is selected but has no
	// such column, or whose table does not exist, fails the read with
	// ErrPolicy; one whose table exists but is not read (the tenant's
	// patterns leave it out) is ignored.
	Policies map[string]Policy
	// Progress, if set, is called from the reading goroutines, concurrently,
	// with the rows and bytes read since its last call.
	Progress func(rows, bytes int64)
	// Views also reads views and materialized views, as tables. A view is
	// read as one range; a bad value in it is named by its row number.
	Views bool
	// ToolVersion is recorded in the manifest.
	ToolVersion string
	// LockTimeout bounds each wait for a table lock (PostgreSQL's
	// lock_timeout, in every session of the read): the ACCESS SHARE locks
	// the read takes on its tables, and the workers' reads behind a waiting
	// ACCESS EXCLUSIVE request. A wait that times out is retried after a
	// pause (half the timeout, doubling), LockAttempts times in all; then the
	// read fails with ErrLockTimeout, naming the table and the blocking locks
	// (pid, mode, user, application, state; never a query's text). Each
	// retry is logged. Zero means 5s.
	LockTimeout time.Duration
	// LockAttempts is the number of lock waits before the read fails. Zero
	// means 4.
	LockAttempts int
	// LogInterval: while a read runs, Logger gets a line this often with the
	// tenant, the phase, the tables being read and the rows and bytes read so
	// far. Zero means 30s; negative means never.
	LogInterval time.Duration
	// Logger receives the periodic and lock-wait lines. Nil means
	// slog.Default().
	Logger *slog.Logger
	// PollInterval: how often the tasks of a distributed read (ReadTask)
	// look at the lake's records (the plan, the ranges done). Zero means 1s.
	PollInterval time.Duration
	// PlanWait: how long a worker task of a distributed read waits for its
	// execution's plan (or, once a snapshot is abandoned, for a newer one)
	// before it ends having done nothing. Zero means 10 minutes.
	PlanWait time.Duration
}

// Reader is the PostgreSQL read strategy. It is safe for concurrent use:
// each Read uses its own connections.
type Reader struct {
	opts Options
	// importSnapshot, set by tests only, makes Read import this exported
	// snapshot instead of exporting its own.
	importSnapshot string
	// beforeCommit, set by tests only, is called by a distributed read's
	// coordinator once every range is done, before its exporting
	// transaction ends.
	beforeCommit func(exported string)
}

var _ readers.Reader = (*Reader)(nil)

// New returns a Reader with opts, defaults filled in.
func New(opts Options) *Reader {
	if opts.Parallel <= 0 {
		opts.Parallel = 2
	}
	if opts.RowGroupBytes <= 0 {
		opts.RowGroupBytes = 16 << 20
	}
	if opts.PartBytes <= 0 {
		opts.PartBytes = 1 << 30
	}
	if opts.SplitBytes == 0 {
		opts.SplitBytes = 32 << 20
	}
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = 5 * time.Second
	}
	if opts.LockTimeout < time.Millisecond {
		opts.LockTimeout = time.Millisecond // lock_timeout's unit
	}
	if opts.LockAttempts <= 0 {
		opts.LockAttempts = 4
	}
	if opts.LogInterval == 0 {
		opts.LogInterval = 30 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Reader{opts: opts}
}

// sessionSettings fix every setting that changes PostgreSQL's text output,
// so results never depend on the server's, the role's, the database's or the
// process's defaults (PGTZ, PGOPTIONS, TZ, DateStyle, ...). They are SET after
// connecting, which overrides all of those. A long read must not be cut by
// a role's statement or idle-in-transaction timeout (the exporting
// transaction idles while the workers read). Like pg_dump, row_security is
// off: a table whose row-level security would hide rows from the role fails
// the read instead of being read in part. connect adds lock_timeout
// (Options.LockTimeout).
const sessionSettings = `SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres';
SET extra_float_digits = 1; SET bytea_output = 'hex'; SET client_encoding = 'UTF8';
SET statement_timeout = 0; SET idle_in_transaction_session_timeout = 0; SET row_security = off`

// connect opens one connection to the tenant's database.
func (r *Reader) connect(ctx context.Context, t tenant.Tenant) (*pgx.Conn, error) {
	// ConnConfig's errors never hold a password or a secret file's content.
	cfg, err := t.ConnConfig()
	if err != nil {
		return nil, err
	}
	if _, ok := cfg.RuntimeParams["application_name"]; !ok {
		cfg.RuntimeParams["application_name"] = "tenantlake"
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	settings := fmt.Sprintf("%s; SET lock_timeout = %d", sessionSettings, r.opts.LockTimeout.Milliseconds())
	if _, err := conn.Exec(ctx, settings); err != nil {
		conn.Close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("session settings: %w", err)
	}
	return conn, nil
}

// Read reads every selected table of t in one snapshot and commits it to lk.
// See readers.Reader for the contract.
func (r *Reader) Read(ctx context.Context, lk *lake.Lake, t tenant.Tenant) (*lake.Manifest, error) {
	m, err := r.read(ctx, lk, t)
	if err != nil {
		return nil, fmt.Errorf("postgres reader: tenant %s: %w", t.ID, err)
	}
	return m, nil
}

func (r *Reader) read(ctx context.Context, lk *lake.Lake, t tenant.Tenant) (*lake.Manifest, error) {
	tr := &tracker{phase: "connecting"}
	if r.opts.LogInterval > 0 {
		stop := make(chan struct{})
		defer close(stop)
		go tr.logEvery(r.opts.Logger, r.opts.LogInterval, t.ID, stop)
	}
	s, err := r.begin(ctx, lk, t, tr)
	if err != nil {
		return nil, err
	}
	defer s.conn.Close(context.WithoutCancel(ctx))
	id := s.snap.ID()
	tr.setPhase("reading")
	if err := r.readTables(ctx, t, s.snap, s.exported, s.tables, tr); err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", id, err)
	}
	return r.commit(ctx, s)
}

// session is the exporting transaction of a read, its snapshot claimed on
// the lake and its tables planned.
type session struct {
	conn     *pgx.Conn
	exported string // pg_export_snapshot()
	m        *lake.Manifest
	tables   []*table
	snap     *lake.Snapshot
}

// begin opens the exporting transaction, exports its snapshot, plans the
// tables and their ranges, locks them, and claims the snapshot id on the
// lake. The caller closes s.conn.
func (r *Reader) begin(ctx context.Context, lk *lake.Lake, t tenant.Tenant, tr *tracker) (_ *session, err error) {
	if err := tenant.ValidateID(t.ID); err != nil {
		return nil, err
	}
	conn, err := r.connect(ctx, t)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			conn.Close(context.WithoutCancel(ctx))
		}
	}()

	if _, err := conn.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	exportSQL := "pg_export_snapshot()"
	if r.importSnapshot != "" { // tests: read the snapshot another read exported
		if _, err := conn.Exec(ctx, "SET TRANSACTION SNAPSHOT "+quoteLiteral(r.importSnapshot)); err != nil {
			return nil, fmt.Errorf("import snapshot: %w", err)
		}
		exportSQL = quoteLiteral(r.importSnapshot)
	}
	var (
		exported   string
		src        = lake.Source{Kind: "postgres"}
		started    time.Time
		moneyScale int32
	)
	err = conn.QueryRow(ctx, `
SELECT `+exportSQL+`, pg_current_snapshot()::text,
       (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END)::text,
       current_setting('server_version'), current_database(), now(),
       scale(1::numeric::money::numeric)`).Scan(
		&exported, &src.TxSnapshot, &src.LSN, &src.ServerVersion, &src.Database, &started, &moneyScale)
	if err != nil {
		return nil, fmt.Errorf("start snapshot: %w", err)
	}
	started = started.UTC().Truncate(time.Millisecond)
	id := lake.SnapshotID(started)

	m := &lake.Manifest{
		FormatVersion: lake.FormatVersion,
		Tenant:        t.ID,
		SnapshotID:    id,
		Source:        src,
		StartedAt:     started,
		ToolVersion:   r.opts.ToolVersion,
		RequestID:     readers.RequestID(ctx),
	}
	tr.setPhase("listing tables")
	prev, err := previousManifest(ctx, lk, t.ID)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", id, err)
	}
	tables, err := r.plan(ctx, conn, t, m, moneyScale, prev)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", id, err)
	}
	// Like pg_dump: hold ACCESS SHARE locks until the end, so no table read
	// can be dropped or altered under the workers (LOCK refuses materialized
	// views). Nothing before this waits for a table lock.
	tr.setPhase("locking tables")
	var names []string
	var oids []uint32
	for _, tb := range tables {
		if tb.relkind != 'm' {
			names = append(names, tb.sql())
			oids = append(oids, tb.oid)
		}
	}
	if len(names) > 0 {
		err := r.withLockRetry(ctx, conn, t.ID, "lock tables", oids, func() error {
			_, err := conn.Exec(ctx, "LOCK TABLE "+strings.Join(names, ", ")+" IN ACCESS SHARE MODE")
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("snapshot %s: lock tables: %w", id, err)
		}
	}
	tr.setPhase("planning ranges")
	for _, tb := range tables {
		err := r.withLockRetry(ctx, conn, t.ID, "table "+tb.source(), []uint32{tb.oid}, func() error {
			return planRanges(ctx, conn, tb, r.opts.SplitBytes)
		})
		if err != nil {
			return nil, fmt.Errorf("snapshot %s: table %s: %w", id, tb.source(), err)
		}
	}
	// Another read of the tenant may have taken this millisecond: the
	// snapshot then gets the next free one.
	snap, err := lk.ClaimSnapshot(ctx, t.ID, started)
	if err != nil {
		return nil, err
	}
	m.SnapshotID = snap.ID()
	return &session{conn: conn, exported: exported, m: m, tables: tables, snap: snap}, nil
}

// commit ends the exporting transaction, once every range is read, and
// commits the manifest of s's tables.
func (r *Reader) commit(ctx context.Context, s *session) (*lake.Manifest, error) {
	id := s.snap.ID()
	for _, tb := range s.tables {
		s.m.Tables = append(s.m.Tables, tb.manifest())
	}
	// The exporting transaction stays open until every worker is done.
	if _, err := s.conn.Exec(ctx, "COMMIT"); err != nil {
		return nil, fmt.Errorf("snapshot %s: end transaction: %w", id, err)
	}
	s.m.CommittedAt = time.Now().UTC()
	if err := s.snap.Commit(ctx, s.m); err != nil {
		return nil, err
	}
	return s.m, nil
}

// plan lists, selects, names and describes the tables (catalog reads only,
// which wait for no table lock). Skipped tables go to m.Skipped. Every
// policy must name a column of a selected table (see checkPolicies).
// Destination names are kept from prev, the tenant's previous snapshot, when
// not nil (see stableNames).
func (r *Reader) plan(ctx context.Context, conn *pgx.Conn, t tenant.Tenant, m *lake.Manifest, moneyScale int32, prev *lake.Manifest) ([]*table, error) {
	all, err := listTables(ctx, conn, r.opts.Views)
	if err != nil {
		return nil, err
	}
	prevTables := map[string]*lake.Table{}
	if prev != nil {
		for i := range prev.Tables {
			prevTables[prev.Tables[i].Source] = &prev.Tables[i]
		}
	}
	var (
		tables   []*table
		selected []*table // with the tables skipped for having no columns
		matched  = map[string]bool{}
	)
	for _, tb := range all {
		if !t.Selects(tb.schema, tb.relname) {
			continue
		}
		if err := describe(ctx, conn, tb, r.opts.Policies); err != nil {
			return nil, fmt.Errorf("table %s: %w", tb.source(), err)
		}
		selected = append(selected, tb)
		for _, c := range tb.cols {
			key := tb.schema + "." + tb.relname + "." + c.source
			if _, ok := r.opts.Policies[key]; ok {
				matched[key] = true
			}
		}
		if len(tb.cols) == 0 {
			m.Skipped = append(m.Skipped, lake.Skipped{Source: tb.source(), Reason: "table has no columns"})
			continue
		}
		for _, c := range tb.cols {
			if c.kind == kMoney && moneyScale != 2 {
				return nil, fmt.Errorf("table %s: column %s: money has %d fraction digits under this lc_monetary; tenantlake carries money as DECIMAL(19,2) only (set a \"string\" policy for the column)", tb.source(), c.source, moneyScale)
			}
		}
		// Column names: kept from the previous snapshot of this table.
		if pt := prevTables[tb.source()]; pt != nil {
			prevCols := make(map[string]string, len(pt.Columns))
			for _, c := range pt.Columns {
				prevCols[c.Source] = c.Name
			}
			srcs := make([]string, len(tb.cols))
			for i := range tb.cols {
				srcs[i] = tb.cols[i].source
			}
			for i, n := range stableNames(srcs, srcs, prevCols) {
				tb.cols[i].name = n
			}
		}
		tb.pschema = parquetSchema(tb)
		tb.profiles = make([]profile, len(tb.cols))
		tables = append(tables, tb)
	}
	if err := r.checkPolicies(ctx, conn, t.ID, selected, matched); err != nil {
		return nil, err
	}
	// Destination table names: "table" for schema public, else
	// "schema_table", made unique in source order; kept from the previous
	// snapshot.
	keys := make([]string, len(tables))
	srcs := make([]string, len(tables))
	for i, tb := range tables {
		keys[i] = tb.source()
		srcs[i] = tb.relname
		if tb.schema != "public" {
			srcs[i] = tb.schema + "_" + tb.relname
		}
	}
	prevNames := make(map[string]string, len(prevTables))
	for src, pt := range prevTables {
		prevNames[src] = pt.Name
	}
	for i, n := range stableNames(keys, srcs, prevNames) {
		tables[i].name = n
	}
	return tables, nil
}

// checkPolicies fails when a policy (Options.Policies) matched no column of
// a selected table (matched holds the keys that did): its table is selected
// but has no such column, or the database has no such table at all. A
// policy naming a table that exists but is not read (left out by the
// tenant's include and exclude patterns, a view without Options.Views, or
// not readable by the role) is not an error: one set of policies serves
// tenants with different patterns. The error wraps ErrPolicy and names
// every policy that failed, and why.
func (r *Reader) checkPolicies(ctx context.Context, conn *pgx.Conn, tenantID string, selected []*table, matched map[string]bool) error {
	var bad []string
	keys := make([]string, 0, len(r.opts.Policies))
	for k := range r.opts.Policies {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		if matched[key] {
			continue
		}
		var in *table
		for _, tb := range selected {
			if strings.HasPrefix(key, tb.schema+"."+tb.relname+".") {
				in = tb
				break
			}
		}
		if in != nil {
			bad = append(bad, fmt.Sprintf("policy %q: table %s has no column %q", key, in.source(), key[len(in.schema)+len(in.relname)+2:]))
			continue
		}
		var exists bool
		err := conn.QueryRow(ctx, `
SELECT EXISTS (
    SELECT FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND starts_with($1, n.nspname || '.' || c.relname || '.'))`, key).Scan(&exists)
		if err != nil {
			return fmt.Errorf("policy %q: %w", key, err)
		}
		if exists {
			r.opts.Logger.Info("postgres reader: a policy names a table this tenant does not read", "tenant", tenantID, "policy", key)
			continue
		}
		tableName := key
		if i := strings.LastIndexByte(key, '.'); i > 0 {
			tableName = key[:i]
		}
		bad = append(bad, fmt.Sprintf("policy %q: the database has no table %s", key, tableName))
	}
	if len(bad) > 0 {
		return fmt.Errorf("%w: %s", ErrPolicy, strings.Join(bad, "; "))
	}
	return nil
}

// previousManifest returns the manifest of the tenant's newest committed
// snapshot, whose destination names a new snapshot keeps, or nil when there
// is none. A manifest that cannot be read fails the read: names derived
// without it could silently change a destination's meaning.
func previousManifest(ctx context.Context, lk *lake.Lake, tenantID string) (*lake.Manifest, error) {
	latest, err := lk.Latest(ctx, tenantID)
	if errors.Is(err, lake.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("previous snapshot, for destination names: %w", err)
	}
	m, err := lk.Manifest(ctx, tenantID, latest.SnapshotID)
	if err != nil {
		return nil, fmt.Errorf("previous snapshot %s, for destination names: %w", latest.SnapshotID, err)
	}
	return m, nil
}

// task is one range of one table.
type task struct {
	tb *table
	rg int // index in tb.ranges
}

// readTables reads every range of every table with r.opts.Parallel workers,
// each in its own connection that imports the exported snapshot.
func (r *Reader) readTables(ctx context.Context, t tenant.Tenant, snap *lake.Snapshot, exported string, tables []*table, tr *tracker) error {
	var tasks []task
	for _, tb := range tables {
		for i := range tb.ranges {
			tasks = append(tasks, task{tb, i})
		}
	}
	// Largest first, so a big table's ranges do not trail at the end.
	sort.SliceStable(tasks, func(i, j int) bool {
		return tasks[i].tb.ranges[tasks[i].rg].size > tasks[j].tb.ranges[tasks[j].rg].size
	})
	workers := min(r.opts.Parallel, len(tasks))
	g, gctx := errgroup.WithContext(ctx)
	queue := make(chan task)
	g.Go(func() error {
		defer close(queue)
		for _, tk := range tasks {
			select {
			case queue <- tk:
			case <-gctx.Done():
				return nil
			}
		}
		return nil
	})
	for range workers {
		g.Go(func() error {
			conn, err := r.connect(gctx, t)
			if err != nil {
				return err
			}
			defer conn.Close(context.WithoutCancel(gctx))
			// SET TRANSACTION SNAPSHOT must come first in the transaction.
			if _, err := conn.Exec(gctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); err != nil {
				return fmt.Errorf("worker begin: %w", err)
			}
			if _, err := conn.Exec(gctx, "SET TRANSACTION SNAPSHOT "+quoteLiteral(exported)); err != nil {
				return fmt.Errorf("worker import snapshot: %w", err)
			}
			for tk := range queue {
				// A worker's SELECT waits for its ACCESS SHARE lock only
				// behind an ACCESS EXCLUSIVE request queued after the
				// exporting transaction's lock, which waits for this read
				// to end: bounded by lock_timeout, or it would never end.
				tr.reading(tk.tb.source(), 1)
				err := r.withLockRetry(gctx, conn, t.ID, "table "+tk.tb.source(), []uint32{tk.tb.oid}, func() error {
					res, err := r.readRange(gctx, conn, snap, tk, tr, nil)
					if err == nil {
						tk.tb.add(res)
					}
					return err
				})
				tr.reading(tk.tb.source(), -1)
				if err != nil {
					return fmt.Errorf("table %s: %w", tk.tb.source(), err)
				}
			}
			if _, err := conn.Exec(gctx, "COMMIT"); err != nil {
				return fmt.Errorf("worker end transaction: %w", err)
			}
			return nil
		})
	}
	return g.Wait()
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// A batch of rows handed to the Parquet writer at once ends at batchRows
// rows or batchBytes bytes received, whichever comes first; pipelineDepth
// batches are in flight between the receiving and the encoding goroutine of
// a range.
const (
	batchRows     = 1024
	batchBytes    = 1 << 20
	pipelineDepth = 3
)

// batch is rows converted from PostgreSQL, waiting to be encoded, column by
// column: cols[i][:n] are column i's values. Byte values point into arena.
type batch struct {
	cols  [][]parquet.Value
	n     int
	arena []byte
	raw   int64 // bytes received from PostgreSQL
}

// rangeResult is what one range of a table wrote: its parts, their rows and
// the profile figures of its rows.
type rangeResult struct {
	files    []lake.File
	rows     int64
	profiles []profile
}

// add merges a range's result into the table's.
func (tb *table) add(res *rangeResult) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	tb.files = append(tb.files, res.files...)
	tb.rows += res.rows
	for i := range res.profiles {
		tb.profiles[i].merge(&res.profiles[i])
	}
}

// readRange streams one range of a table into parts: this goroutine receives
// and converts rows, another encodes and uploads them, so the two overlap.
// number gives the part number of the range's j-th part (nil: the table's
// next free number).
func (r *Reader) readRange(ctx context.Context, conn *pgx.Conn, snap *lake.Snapshot, tk task, tr *tracker, number func(j int) (int, error)) (*rangeResult, error) {
	tb := tk.tb
	rg := tb.ranges[tk.rg]
	exprs := make([]string, 0, len(tb.cols)+1)
	formats := make([]int16, 0, len(tb.cols)+1)
	for i := range tb.cols {
		exprs = append(exprs, tb.cols[i].selectExpr())
		f := int16(0)
		if tb.cols[i].binaryResult() {
			f = 1
		}
		formats = append(formats, f)
	}
	if tb.useCtid {
		exprs = append(exprs, "ctid")
		formats = append(formats, 1)
	}
	sql := "SELECT " + strings.Join(exprs, ", ") + " FROM " + rg.from() + rg.where()

	free := make(chan *batch, pipelineDepth)
	full := make(chan *batch, pipelineDepth)
	for range pipelineDepth {
		b := &batch{cols: make([][]parquet.Value, len(tb.cols))}
		for i := range b.cols {
			b.cols[i] = make([]parquet.Value, batchRows)
		}
		free <- b
	}
	pw := &partWriter{snap: snap, tb: tb, opts: &r.opts, always: tk.rg == 0, number: number}
	var (
		writeErr  error
		writeDone = make(chan struct{})
		failed    atomic.Bool
	)
	go func() {
		defer close(writeDone)
		for b := range full {
			if writeErr == nil {
				if writeErr = pw.write(ctx, b.cols, b.n, b.raw); writeErr != nil {
					failed.Store(true)
				} else {
					tr.rows.Add(int64(b.n))
					tr.bytes.Add(b.raw)
					if r.opts.Progress != nil {
						r.opts.Progress(int64(b.n), b.raw)
					}
				}
			}
			b.n, b.raw, b.arena = 0, 0, b.arena[:0]
			free <- b
		}
	}()

	profiles := make([]profile, len(tb.cols))
	readErr := r.receive(ctx, conn, tb, sql, formats, profiles, free, full, &failed)
	close(full)
	<-writeDone
	err := writeErr // a write error stops the receiving, so it comes first
	if err == nil {
		err = readErr
	}
	if err == nil {
		err = pw.finish(ctx)
	}
	if err != nil {
		pw.abort()
		return nil, err
	}
	return &rangeResult{files: pw.files, rows: pw.total, profiles: profiles}, nil
}

// receive runs the query and converts its rows into batches taken from free
// and sent to full, until the rows end, a value is bad, or failed is set by
// the encoding goroutine.
func (r *Reader) receive(ctx context.Context, conn *pgx.Conn, tb *table, sql string, formats []int16,
	profiles []profile, free <-chan *batch, full chan<- *batch, failed *atomic.Bool) error {
	rr := conn.PgConn().ExecParams(ctx, sql, nil, nil, nil, formats)
	b := <-free
	var (
		rowErr error
		rowNum int64
	)
rows:
	for rr.NextRow() {
		rowNum++
		vals := rr.Values()
		n := b.n
		for i := range tb.cols {
			c := &tb.cols[i]
			raw := vals[i]
			b.raw += int64(len(raw))
			if raw == nil {
				if !c.nullable {
					rowErr = fmt.Errorf("column %s: NULL in a NOT NULL column, row %s", c.source, rowKey(tb, vals, rowNum))
					break rows
				}
				profiles[i].nulls++
				b.cols[i][n] = parquet.NullValue().Level(0, 0, i)
				continue
			}
			v, err := c.convert(raw, &profiles[i], &b.arena)
			if err != nil {
				var bad *badValue
				if errors.As(err, &bad) && c.policy == PolicyNull {
					profiles[i].nulls++
					b.cols[i][n] = parquet.NullValue().Level(0, 0, i)
					continue
				}
				rowErr = fmt.Errorf("column %s: row %s: %w", c.source, rowKey(tb, vals, rowNum), err)
				break rows
			}
			def := 0
			if c.nullable {
				def = 1
			}
			b.cols[i][n] = v.Level(0, def, i)
		}
		b.n++
		if b.n == batchRows || b.raw >= batchBytes {
			if failed.Load() {
				rowErr = errors.New("stopped: writing failed")
				break
			}
			full <- b
			b = <-free
		}
	}
	if rowErr != nil {
		// Stop the query: closing the connection is the sure way; the worker
		// fails and its transaction with it.
		conn.PgConn().Close(context.WithoutCancel(ctx))
		return rowErr
	}
	if _, err := rr.Close(); err != nil {
		return fmt.Errorf("query: %w", err)
	}
	if b.n > 0 {
		full <- b
	}
	return nil
}

// rowKey renders a row's primary key, or its ctid, or (views) its number in
// the range, for error messages.
func rowKey(tb *table, vals [][]byte, rowNum int64) string {
	if len(tb.key) == 0 && !tb.useCtid {
		return fmt.Sprintf("number %d of the view", rowNum)
	}
	if tb.useCtid {
		raw := vals[len(tb.cols)]
		if len(raw) == 6 {
			return fmt.Sprintf("ctid=(%d,%d)", uint32(raw[0])<<24|uint32(raw[1])<<16|uint32(raw[2])<<8|uint32(raw[3]), uint16(raw[4])<<8|uint16(raw[5]))
		}
		return "ctid=?"
	}
	names := make([]string, len(tb.key))
	values := make([]string, len(tb.key))
	for i, k := range tb.key {
		names[i] = tb.cols[k].source
		values[i] = tb.cols[k].display(vals[k])
	}
	return "(" + strings.Join(names, ", ") + ")=(" + strings.Join(values, ", ") + ")"
}

// manifest describes the table for the snapshot's manifest; call it once
// every range is read.
func (tb *table) manifest() lake.Table {
	out := lake.Table{Source: tb.source(), Name: tb.name, Rows: tb.rows}
	for i := range tb.cols {
		c := &tb.cols[i]
		out.Columns = append(out.Columns, lake.Column{
			Source:       c.source,
			Name:         c.name,
			SourceType:   c.sourceType,
			ParquetType:  c.parquetType(),
			BigQueryType: c.bigQueryType(),
			Nullable:     c.nullable,
			Profile:      tb.profiles[i].manifest(c),
			Policy:       string(c.policy),
		})
	}
	for _, k := range tb.key {
		out.PrimaryKey = append(out.PrimaryKey, tb.cols[k].name)
	}
	files := append([]lake.File(nil), tb.files...)
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	out.Files = files
	return out
}
