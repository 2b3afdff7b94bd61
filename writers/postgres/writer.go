// Package postgres is the PostgreSQL warehouse write strategy: it loads a
// committed lake snapshot into one schema per tenant of a warehouse database.
//
// # How a load runs
//
//  1. Under a per-tenant advisory lock (loads of one tenant queue; loads of
//     different tenants run side by side), the live snapshot is read from
//     tenantlake.live: the same snapshot is already-live; a scheduled or
//     manual load of an older one is skipped-stale; a replay goes on.
//  2. In one transaction the staging schema (tenantlake_staging_<id>) is
//     created if missing and the tables an earlier load staged there
//     dropped; in a second, every table is created from the manifest's
//     schema and filled with COPY FROM, streamed from the lake's Parquet
//     parts (decoded and encoded in a goroutine of its own). Side by side,
//     over a second connection, the same COPY data fills the pending slice
//     of its combined all-tenants table of each table of more than 100,000
//     rows (slices.go), in the staging schema. With change tables on (Config.Changes), the change
//     rows from the live snapshot to this one are staged in the second
//     transaction too (changes.go).
//  3. The staged tables are validated against the manifest: row counts
//     always; column profiles and schema unless switched off in Config.
//     On a failure the load is quarantined: nothing live changes and the
//     staged tables stay for inspection until the tenant's next load.
//  4. One transaction promotes the whole snapshot: each staged table
//     replaces its live table in the tenant's schema (tenant_<id>), the live
//     tables that are not in the snapshot are dropped, the tenantlake.live
//     row is compared-and-swapped, the tenant's slices of the combined
//     all-tenants tables are replaced (alltenants.go, slices.go: each
//     combined table is partitioned by tenant; a small table's rows are
//     replaced in the tenant's partition, which locks no combined table,
//     its partition made beforehand in a short transaction; a large one's
//     partition is dropped and the pending slice attached in its place,
//     metadata only, which locks the combined table until the promotion
//     commits, so promotions of tenants sharing it, and queries on it,
//     wait for each other that long; each table under a savepoint; a
//     combined table of an earlier version, not partitioned, has the
//     tenant's rows deleted and inserted again), the change rows
//     are appended to the change tables, the emptied staging schema is
//     dropped and the ledger row written.
//     Analysts see the old snapshot or the new one, never a mix, in the
//     tenant's schema and in the all-tenants tables. A slice that cannot
//     be replaced (a column whose type differs from the combined table's)
//     stays as it was, listed in the outcome's AllTenantsStale; the
//     snapshot is live, the outcome loaded.
//  5. Every load, whatever its outcome, has a row in tenantlake.loads and a
//     record in the lake's ledger, both stating the live snapshot before and
//     after the load as tenantlake.live holds it.
//
// # What the writer drops, and what it never drops
//
// The writer records every schema, table and view it creates in its own
// catalog (tenantlake.schemas, with each schema's role and tenant, and
// tenantlake.tables), in the transaction that creates it, and drops or
// replaces only what is recorded there, never with CASCADE. Anything else is
// left alone, in any schema:
//
//   - A schema named by an option or template that exists and is not
//     tenantlake's (public, a user's schema) is refused before anything is
//     written, naming the option; so are names that are reserved (public,
//     tenantlake, information_schema, pg_*) or that two options could both
//     produce (New checks the templates for every possible tenant id).
//   - A user's table, view or other object in a tenant, staging or
//     all-tenants schema is kept; a user's relation with the name of one of
//     the snapshot's tables fails the promotion, naming it.
//   - A tenant table that nothing else uses is replaced by the staged one
//     (no copy). A tenant table that a user's object is attached to (a view
//     or materialized view over it, in any schema; an index, trigger,
//     policy or foreign key; a grant, comment or owner changed by hand) is
//     kept and its rows replaced in place (TRUNCATE, ALTER TABLE to the
//     snapshot's columns, INSERT ... SELECT), so the object keeps working
//     and sees the new snapshot. If the new snapshot drops or retypes a
//     column such an object uses, drops the table, or the table is the
//     target of a foreign key, the promotion fails naming the objects, and
//     the old snapshot stays live.
//   - A combined all-tenants table is never dropped or rebuilt: only the
//     tenant's partition (its rows) changes, columns are only added, so a
//     user's view over it keeps working and sees the new rows. The
//     partitions are tenantlake's tables in the control schema
//     (tenantlake.slice_<oid>_<tenant>); one that a user's object depends
//     on keeps its place, its rows replaced in place; one for the tenant
//     that tenantlake did not create is never dropped: that slice is
//     reported stale, naming it. A combined table
//     of an earlier version (not partitioned) is kept as it is, its
//     slices replaced in place; dropping it by hand and rebuilding every
//     tenant (RebuildAllTenants) makes it partitioned. An all-tenants view of an earlier version is
//     dropped and replaced by a table, unless a user's object depends on
//     it: then it stays, and its table's slices are reported stale, naming
//     the object, until the user drops it.
//
// The rows and columns of tenantlake's tables are the snapshot's: rows or
// columns added to them by hand are replaced at the next load (a column
// that an index or view uses is refused instead). Grants made on a tenant
// table and its schema stay.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/tenantlake/tenantlake/lake"
	"github.com/tenantlake/tenantlake/tenant"
	"github.com/tenantlake/tenantlake/writers"
)

// Config configures a warehouse target. Zero values take the defaults.
type Config struct {
	// URL is the warehouse database's connection URL (postgres://...).
	URL string
	// Name is the target's name in outcomes and in the lake's ledger
	// (option name; lake.ValidateTarget: letters, digits and _, not
	// starting with a digit). Default "postgres".
	Name string
	// SchemaTemplate names each tenant's live schema (option
	// schema_template); writers.TenantPlaceholder, once, is replaced by the
	// tenant id. Default "tenant_{tenant}".
	SchemaTemplate string
	// StagingTemplate names each tenant's staging schema (option
	// staging_template). Default "tenantlake_staging_{tenant}".
	StagingTemplate string
	// AllTenantsSchema holds the combined tables of every tenant's rows
	// (option all_tenants_schema). Default "all_tenants".
	//
	// Templates and names hold letters, digits and _ only. New refuses a
	// reserved name (public, tenantlake, information_schema, pg_*), a
	// template that can produce one, and two that can produce the same
	// name; a schema that exists and is not tenantlake's is refused too.
	AllTenantsSchema string
	// SkipProfile and SkipSchema switch off the column profile and schema
	// checks. Row counts are always checked.
	SkipProfile bool
	SkipSchema  bool
	// Changes keeps a change table per table in each tenant's schema
	// (option changes=true; package writers/changes, changes.go).
	Changes bool
}

// controlSchema holds the live-snapshot record and the ledger.
const controlSchema = "tenantlake"

// Advisory lock classes (the first key of pg_advisory_lock(int, int)).
const (
	lockTenant     = 0x7e1a0001 // second key: hashtext(tenant id)
	lockAllTenants = 0x7e1a0002 // second key: 0; guards setup and the all-tenants schema's creation
	lockCombined   = 0x7e1a0003 // second key: hashtext("schema.table"); creating or widening a combined table
)

// Writer loads snapshots into a PostgreSQL warehouse. It is safe for
// concurrent use: each Load and Live call uses its own connection.
type Writer struct {
	cfg  Config
	conn *pgx.ConnConfig
}

var _ writers.Writer = (*Writer)(nil)

// New checks cfg, connects to the warehouse and creates the control schema
// (tenantlake, with the live, loads, schemas and tables tables) if missing.
// A bad option, or an all-tenants schema that exists and is not
// tenantlake's, is refused with an error naming the option, and nothing is
// written.
func New(ctx context.Context, cfg Config) (*Writer, error) {
	if err := cfg.resolve(); err != nil {
		return nil, fmt.Errorf("postgres writer: %w", err)
	}
	ccfg, err := pgx.ParseConfig(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("postgres writer: warehouse URL: %w", err)
	}
	// Profile figures are compared in these settings (see validate.go).
	ccfg.RuntimeParams["timezone"] = "UTC"
	ccfg.RuntimeParams["datestyle"] = "ISO, YMD"
	ccfg.RuntimeParams["extra_float_digits"] = "1"
	ccfg.RuntimeParams["application_name"] = "tenantlake"
	w := &Writer{cfg: cfg, conn: ccfg}
	if err := w.setup(ctx); err != nil {
		return nil, err
	}
	return w, nil
}

// reservedSchemas are never a schema tenantlake may create or drop.
var reservedSchemas = []writers.Pattern{controlSchema, "public", "information_schema", "pg_*"}

// resolve fills in cfg's defaults and checks every option, naming it in
// errors.
func (cfg *Config) resolve() error {
	if cfg.Name == "" {
		cfg.Name = "postgres"
	}
	if cfg.SchemaTemplate == "" {
		cfg.SchemaTemplate = "tenant_" + writers.TenantPlaceholder
	}
	if cfg.StagingTemplate == "" {
		cfg.StagingTemplate = "tenantlake_staging_" + writers.TenantPlaceholder
	}
	if cfg.AllTenantsSchema == "" {
		cfg.AllTenantsSchema = "all_tenants"
	}
	if err := lake.ValidateTarget(cfg.Name); err != nil {
		return fmt.Errorf("option name=%s: %w", cfg.Name, err)
	}
	type opt struct{ key, val string }
	opts := []opt{{"schema_template", cfg.SchemaTemplate}, {"staging_template", cfg.StagingTemplate}, {"all_tenants_schema", cfg.AllTenantsSchema}}
	for i, o := range opts {
		fixed := o.val
		if i < 2 {
			if err := writers.CheckTemplate(o.val); err != nil {
				return fmt.Errorf("option %s: %w", o.key, err)
			}
			fixed = strings.Replace(o.val, writers.TenantPlaceholder, "", 1)
		}
		if msg := schemaNameChars(fixed, i < 2); msg != "" {
			return fmt.Errorf("option %s=%s: %s", o.key, o.val, msg)
		}
		for _, r := range reservedSchemas {
			if writers.Overlap(writers.Pattern(o.val), r) {
				what := "is"
				if i < 2 {
					what = "can be, for some tenant id,"
				}
				return fmt.Errorf("option %s=%s: the schema name %s the reserved %s: tenantlake never uses public, tenantlake, information_schema or pg_* schemas", o.key, o.val, what, r)
			}
		}
		for _, p := range opts[:i] {
			if writers.Overlap(writers.Pattern(p.val), writers.Pattern(o.val)) {
				return fmt.Errorf("options %s=%s and %s=%s can give two schemas the same name (for some tenant ids): each schema has one role", p.key, p.val, o.key, o.val)
			}
		}
	}
	return nil
}

// schemaNameChars says what is wrong with the fixed part of a schema name
// or template ("" when nothing is).
func schemaNameChars(s string, template bool) string {
	switch {
	case len(s) > 63 || template && len(s) > 62:
		return "longer than PostgreSQL's 63 bytes for a schema name"
	case s == "" && !template:
		return "empty"
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return fmt.Sprintf("character %q: schema names and templates hold letters, digits and _ only", c)
		}
	}
	return ""
}

// connect opens a connection to the warehouse; the caller closes it with
// closeConn.
func (w *Writer) connect(ctx context.Context) (*pgx.Conn, error) {
	c, err := pgx.ConnectConfig(ctx, w.conn)
	if err != nil {
		return nil, fmt.Errorf("connect to warehouse: %w", err)
	}
	return c, nil
}

// closeConn closes c, even when ctx is already cancelled, and adds a close
// error to *err.
func closeConn(ctx context.Context, c *pgx.Conn, err *error) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if cerr := c.Close(cctx); cerr != nil {
		*err = errors.Join(*err, fmt.Errorf("close warehouse connection: %w", cerr))
	}
}

func (w *Writer) setup(ctx context.Context) (err error) {
	conn, err := w.connect(ctx)
	if err != nil {
		return fmt.Errorf("postgres writer: %w", err)
	}
	defer closeConn(ctx, conn, &err)
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, 0)`, lockAllTenants); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `
CREATE SCHEMA IF NOT EXISTS tenantlake;
CREATE TABLE IF NOT EXISTS tenantlake.live (
	tenant      text PRIMARY KEY,
	snapshot_id text NOT NULL,
	schema_name text NOT NULL,
	load_id     text NOT NULL,
	reason      text NOT NULL,
	updated_at  timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS tenantlake.loads (
	load_id       text PRIMARY KEY,
	tenant        text NOT NULL,
	snapshot_id   text NOT NULL,
	target        text NOT NULL,
	reason        text NOT NULL,
	outcome       text NOT NULL,
	previous_live text,
	live          text,
	started_at    timestamptz NOT NULL,
	finished_at   timestamptz NOT NULL,
	record        jsonb NOT NULL
);
CREATE INDEX IF NOT EXISTS loads_tenant ON tenantlake.loads (tenant, started_at);`+catalogSQL)
		if err != nil {
			return fmt.Errorf("create control schema %s: %w", controlSchema, err)
		}
		// Refused here, the control schema's creation is rolled back too.
		_, err = checkSchema(ctx, tx, w.allTenants())
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres writer: %w", err)
	}
	return nil
}

// Target returns the target's name (Config.Name).
func (w *Writer) Target() string { return w.cfg.Name }

// Close releases nothing: connections live only as long as each call.
func (w *Writer) Close() error { return nil }

// LiveSchema returns the schema holding tenant's live tables.
func (w *Writer) LiveSchema(tenantID string) string {
	return strings.ReplaceAll(w.cfg.SchemaTemplate, "{tenant}", tenantID)
}

func (w *Writer) stagingSchema(tenantID string) string {
	return strings.ReplaceAll(w.cfg.StagingTemplate, "{tenant}", tenantID)
}

// tenantSchemas returns tenant's live and staging schemas, failing when a
// name is longer than PostgreSQL allows (it would be truncated).
func (w *Writer) tenantSchemas(tenantID string) (live, staging schemaRef, err error) {
	live = schemaRef{name: w.LiveSchema(tenantID), role: roleTenant, tenant: tenantID, option: "schema_template=" + w.cfg.SchemaTemplate}
	staging = schemaRef{name: w.stagingSchema(tenantID), role: roleStaging, tenant: tenantID, option: "staging_template=" + w.cfg.StagingTemplate}
	for _, s := range []schemaRef{live, staging} {
		if len(s.name) > 63 {
			return live, staging, fmt.Errorf("%s: schema name %q is longer than PostgreSQL's 63 bytes", s.option, s.name)
		}
	}
	return live, staging, nil
}

// Live returns the live snapshot id of tenant, or "" when none is live.
func (w *Writer) Live(ctx context.Context, tenantID string) (id string, err error) {
	if err := tenant.ValidateID(tenantID); err != nil {
		return "", fmt.Errorf("postgres writer: live: %w", err)
	}
	conn, err := w.connect(ctx)
	if err != nil {
		return "", fmt.Errorf("postgres writer: live snapshot of %s: %w", tenantID, err)
	}
	defer closeConn(ctx, conn, &err)
	return live(ctx, conn, tenantID)
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func live(ctx context.Context, q querier, tenantID string) (string, error) {
	var id string
	err := q.QueryRow(ctx, `SELECT snapshot_id FROM tenantlake.live WHERE tenant = $1`, tenantID).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("postgres writer: live snapshot of %s: %w", tenantID, err)
	}
	return id, nil
}

// Load loads req's snapshot, following the contract of writers.Writer.
//
// A malformed request (tenant id, snapshot id, reason) or one with a table
// subset (this target promotes whole snapshots only) is refused with an error
// and a nil Outcome. Any other error comes with an Outcome saying failed,
// recorded in both ledgers like every other outcome. Whatever the outcome,
// its PreviousLive and Live are what tenantlake.live held before and after
// the load; only when the warehouse cannot be reached to read it do they
// stay empty, and the message says the live snapshot is unknown. Should only
// the lake's ledger record fail to be written, the Outcome still says what
// happened and the error says the record is missing; retrying is harmless
// (already-live).
func (w *Writer) Load(ctx context.Context, lk *lake.Lake, req writers.Request) (*writers.Outcome, error) {
	out := &writers.Outcome{
		Tenant: req.Tenant, SnapshotID: req.SnapshotID, Target: w.Target(), Reason: req.Reason,
		RequestID: req.RequestID, LoadID: writers.NewLoadID(), StartedAt: time.Now().UTC(), Tables: []writers.TableResult{},
	}
	if err := checkRequest(req); err != nil {
		return nil, fmt.Errorf("postgres writer: load %s/%s: %w", req.Tenant, req.SnapshotID, err)
	}
	var liveKnown bool
	recorded, err := w.load(ctx, lk, req, out, &liveKnown)
	if errors.Is(err, lake.ErrCorrupt) {
		// A part differs from its manifest: like a failed validation,
		// nothing is promoted and the live schema stays as it was (the
		// staging transaction rolled back).
		out.Outcome, out.Live = writers.OutcomeQuarantined, out.PreviousLive
		out.Message = "a part does not match the manifest, nothing promoted: " + err.Error()
		err = nil
	}
	// The ledgers are written even when ctx is cancelled.
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err != nil {
		err = fmt.Errorf("postgres writer: load %s/%s: %w", req.Tenant, req.SnapshotID, err)
		out.Outcome, out.Message, out.Live = writers.OutcomeFailed, err.Error(), out.PreviousLive
		if !liveKnown {
			// Failed before the live snapshot was read: nothing changed,
			// so what is live now was live before.
			if id, lerr := w.Live(lctx, req.Tenant); lerr != nil {
				out.Message += "; the live snapshot is unknown: " + lerr.Error()
			} else {
				out.PreviousLive, out.Live = id, id
			}
		}
	}
	out.FinishedAt = time.Now().UTC()
	if !recorded {
		if lerr := w.writeLedgerRow(lctx, out); lerr != nil {
			err = errors.Join(err, lerr)
		}
	}
	if lerr := lk.WriteLedger(lctx, out.Tenant, out.Target, out.SnapshotID, out.LoadID, out); lerr != nil {
		err = errors.Join(err, fmt.Errorf("postgres writer: load %s/%s: %s: %w", req.Tenant, req.SnapshotID, out.Outcome, lerr))
	}
	return out, err
}

func checkRequest(req writers.Request) error {
	if err := tenant.ValidateID(req.Tenant); err != nil {
		return err
	}
	if _, err := lake.ParseSnapshotID(req.SnapshotID); err != nil {
		return err
	}
	switch req.Reason {
	case writers.ReasonScheduled, writers.ReasonManual, writers.ReasonReplay:
	default:
		return fmt.Errorf("reason %q: want %s, %s or %s", req.Reason, writers.ReasonScheduled, writers.ReasonManual, writers.ReasonReplay)
	}
	if len(req.Tables) > 0 {
		return fmt.Errorf("%w: a table subset (%s) cannot be loaded: the PostgreSQL warehouse promotes whole snapshots", lake.ErrInvalid, strings.Join(req.Tables, ", "))
	}
	return nil
}

// load does the work of Load. recorded says the ledger row was written in
// the promotion transaction; *liveKnown is set once out.PreviousLive holds
// the live snapshot read under the tenant's lock.
func (w *Writer) load(ctx context.Context, lk *lake.Lake, req writers.Request, out *writers.Outcome, liveKnown *bool) (recorded bool, err error) {
	// The tenant lock is a session lock: closing the connection releases it.
	conn, err := w.connect(ctx)
	if err != nil {
		return false, err
	}
	defer func() {
		var cerr error
		closeConn(ctx, conn, &cerr)
		if cerr != nil && err == nil {
			// What the load did is committed (or recorded as not done);
			// a failed close changes none of it.
			slog.Warn("postgres writer: after the load", "tenant", req.Tenant, "snapshot", req.SnapshotID, "err", cerr)
		} else if cerr != nil {
			err = errors.Join(err, cerr)
		}
	}()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1, hashtext($2))`, lockTenant, req.Tenant); err != nil {
		return false, fmt.Errorf("lock tenant: %w", err)
	}
	prev, err := live(ctx, conn, req.Tenant)
	if err != nil {
		return false, err
	}
	out.PreviousLive, out.Live, *liveKnown = prev, prev, true
	switch {
	case prev == req.SnapshotID:
		out.Outcome, out.Message = writers.OutcomeAlreadyLive, "snapshot "+prev+" is already live"
		return false, nil
	case prev > req.SnapshotID && req.Reason != writers.ReasonReplay:
		out.Outcome = writers.OutcomeStale
		out.Message = fmt.Sprintf("live snapshot %s is newer than %s; a %s load never replaces it (use reason replay)", prev, req.SnapshotID, req.Reason)
		return false, nil
	}
	// Every schema the load may change is checked before anything is written.
	liveRef, stagingRef, err := w.tenantSchemas(req.Tenant)
	if err != nil {
		return false, err
	}
	for _, s := range []schemaRef{liveRef, stagingRef, w.allTenants()} {
		if _, err := checkSchema(ctx, conn, s); err != nil {
			return false, err
		}
	}
	m, err := lk.Manifest(ctx, req.Tenant, req.SnapshotID)
	if err != nil {
		return false, err
	}
	if err := writers.NoteSourceChanges(ctx, lk, out, m); err != nil {
		return false, err
	}
	if err := checkChangeTableNames(ctx, conn, liveRef.name, m); err != nil {
		return false, err
	}
	chg, err := w.prepareChanges(ctx, lk, m, prev)
	if err != nil {
		return false, err
	}

	t0 := time.Now()
	results, pending, err := w.stage(ctx, conn, lk, m, stagingRef, out.LoadID, chg)
	if err != nil {
		return false, err
	}
	out.Tables = results
	t1 := time.Now()
	ok, err := w.validate(ctx, conn, m, stagingRef.name, out.Tables)
	if err != nil {
		return false, err
	}
	slog.Debug("postgres writer: staged and validated", "tenant", req.Tenant, "snapshot", req.SnapshotID,
		"stage", t1.Sub(t0), "validate", time.Since(t1), "ok", ok)
	if !ok {
		out.Outcome = writers.OutcomeQuarantined
		out.Message = "validation failed (" + writers.FailedChecks(out.Tables) + "); nothing promoted; staged tables kept in schema " + stagingRef.name
		return false, nil
	}
	t2 := time.Now()
	var inPlace []string
	for _, t := range m.Tables {
		if pending[t.Name] == nil {
			inPlace = append(inPlace, t.Name)
		}
	}
	w.prepareSlices(ctx, conn, req.Tenant, stagingRef.name, inPlace)
	if err := w.promote(ctx, conn, lk, req, out, m, liveRef, stagingRef, pending, chg); err != nil {
		return false, err
	}
	slog.Debug("postgres writer: promoted", "tenant", req.Tenant, "snapshot", req.SnapshotID, "promote", time.Since(t2))
	return true, nil
}

// stageTable creates and fills staged table t in tx. With ps, it fills
// pending slice ps in stx from the same COPY data, side by side (a failed
// pending COPY only rolls stx back, see slicesTx).
func stageTable(ctx context.Context, tx pgx.Tx, lk *lake.Lake, t *lake.Table, staging string, stx pgx.Tx, ps *pendingSlice) (writers.TableResult, error) {
	res := writers.TableResult{Table: t.Name, SourceRows: t.Rows, Checks: []writers.Check{}}
	defs := make([]string, 0, len(t.Columns))
	names := make([]string, 0, len(t.Columns))
	for _, c := range t.Columns {
		typ, err := pgType(c.BigQueryType)
		if err != nil {
			return res, fmt.Errorf("column %s: %w", c.Name, err)
		}
		def := pgx.Identifier{c.Name}.Sanitize() + " " + typ
		if !c.Nullable {
			def += " NOT NULL"
		}
		defs = append(defs, def)
		names = append(names, c.Name)
	}
	if _, err := tx.Exec(ctx, "CREATE TABLE "+pgx.Identifier{staging, t.Name}.Sanitize()+" ("+strings.Join(defs, ", ")+")"); err != nil {
		return res, fmt.Errorf("create staging table: %w", err)
	}
	src, err := newPartSource(ctx, lk, t)
	if err != nil {
		return res, err
	}
	cols := make([]string, len(names))
	for i, n := range names {
		cols[i] = pgx.Identifier{n}.Sanitize()
	}
	// FREEZE: the table was created in this transaction, so its rows can be
	// written frozen, sparing the validation scan from setting hint bits.
	copySQL := "COPY " + pgx.Identifier{staging, t.Name}.Sanitize() + " (" + strings.Join(cols, ", ") + ") FROM STDIN WITH (FORMAT binary, FREEZE)"
	readers := 1
	if ps != nil && stx != nil {
		readers = 2
	}
	tee := newCopyTee(src, readers)
	var sliceErr error
	var sliceDone chan struct{}
	if readers == 2 {
		sliceDone = make(chan struct{})
		go func() {
			defer close(sliceDone)
			r := tee.outs[1]
			tag, err := stx.Conn().PgConn().CopyFrom(ctx, r, ps.copy)
			r.stop()
			sliceErr, ps.stagedRows = err, tag.RowsAffected()
		}()
	}
	tag, err := tx.Conn().PgConn().CopyFrom(ctx, tee.outs[0], copySQL)
	if err != nil {
		// The staging failed: the pending slice must not end whole.
		for _, r := range tee.outs {
			r.stop()
		}
	}
	tee.outs[0].stop()
	if sliceDone != nil {
		<-sliceDone
	}
	readErr := tee.wait()
	closeErr := src.finish()
	if readErr != nil {
		// The server's error only says the copy was aborted; say why.
		err = readErr
	}
	if err = errors.Join(err, closeErr); err != nil {
		return res, fmt.Errorf("copy from lake: %w", err)
	}
	if sliceErr != nil {
		ps.stagedRows = -1 // slicesTx.staged gives the slices up
	}
	res.LakeRows = src.rows.LakeRows()
	res.TargetRows = tag.RowsAffected()
	return res, nil
}

type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// writeLedgerRow inserts out into tenantlake.loads over a new connection.
func (w *Writer) writeLedgerRow(ctx context.Context, out *writers.Outcome) (err error) {
	conn, err := w.connect(ctx)
	if err != nil {
		return fmt.Errorf("postgres writer: write ledger row %s: %w", out.LoadID, err)
	}
	defer closeConn(ctx, conn, &err)
	return w.writeLedger(ctx, conn, out)
}

// writeLedger inserts out into tenantlake.loads.
func (w *Writer) writeLedger(ctx context.Context, db execer, out *writers.Outcome) error {
	_, err := db.Exec(ctx, `
INSERT INTO tenantlake.loads (load_id, tenant, snapshot_id, target, reason, outcome, previous_live, live, started_at, finished_at, record)
VALUES ($1, $2, $3, $4, $5, $6, NULLIF($7, ''), NULLIF($8, ''), $9, $10, $11)`,
		out.LoadID, out.Tenant, out.SnapshotID, out.Target, out.Reason, out.Outcome, out.PreviousLive, out.Live, out.StartedAt, out.FinishedAt, out)
	if err != nil {
		return fmt.Errorf("postgres writer: write ledger row %s: %w", out.LoadID, err)
	}
	return nil
}
