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
//     recreated, every table created from the manifest's schema and filled
//     with COPY FROM, streamed from the lake's Parquet parts.
//  3. The staged tables are validated against the manifest: row counts
//     always; column profiles and schema unless switched off in Config.
//     On a failure the load is quarantined: nothing live changes and the
//     staging schema stays for inspection until the tenant's next load.
//  4. One transaction promotes the whole snapshot: the live schema
//     (tenant_<id>) is dropped, the staging schema renamed to it, the
//     tenantlake.live row compared-and-swapped, the all-tenants views rebuilt
//     (serialised across tenants by an advisory lock) and the ledger row
//     written. Analysts see the old snapshot or the new one, never a mix.
//  5. Every load, whatever its outcome, has a row in tenantlake.loads and a
//     record in the lake's ledger.
//
// The tenant and all-tenants schemas belong to tenantlake: objects created in
// them by hand are dropped at the next promotion, and so are grants on them
// (a promotion replaces the schemas): give analysts access with ALTER DEFAULT
// PRIVILEGES for the role that loads, which new schemas' tables inherit, or
// grant again after each load.
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
	// (letters, digits and _). Default "postgres".
	Name string
	// SchemaTemplate names each tenant's live schema; "{tenant}" is replaced
	// by the tenant id. Default "tenant_{tenant}".
	SchemaTemplate string
	// StagingTemplate names each tenant's staging schema. Default
	// "tenantlake_staging_{tenant}".
	StagingTemplate string
	// AllTenantsSchema holds the views over every tenant. Default "all_tenants".
	AllTenantsSchema string
	// SkipProfile and SkipSchema switch off the column profile and schema
	// checks. Row counts are always checked.
	SkipProfile bool
	SkipSchema  bool
}

// controlSchema holds the live-snapshot record and the ledger.
const controlSchema = "tenantlake"

// Advisory lock classes (the first key of pg_advisory_lock(int, int)).
const (
	lockTenant     = 0x7e1a0001 // second key: hashtext(tenant id)
	lockAllTenants = 0x7e1a0002 // second key: 0; also guards setup
)

// Writer loads snapshots into a PostgreSQL warehouse. It is safe for
// concurrent use: each Load and Live call uses its own connection.
type Writer struct {
	cfg  Config
	conn *pgx.ConnConfig
}

var _ writers.Writer = (*Writer)(nil)

// New connects to the warehouse and creates the control schema (tenantlake,
// with the live and loads tables) if missing.
func New(ctx context.Context, cfg Config) (*Writer, error) {
	if cfg.Name == "" {
		cfg.Name = "postgres"
	}
	if cfg.SchemaTemplate == "" {
		cfg.SchemaTemplate = "tenant_{tenant}"
	}
	if cfg.StagingTemplate == "" {
		cfg.StagingTemplate = "tenantlake_staging_{tenant}"
	}
	if cfg.AllTenantsSchema == "" {
		cfg.AllTenantsSchema = "all_tenants"
	}
	for _, tpl := range []string{cfg.SchemaTemplate, cfg.StagingTemplate} {
		if !strings.Contains(tpl, "{tenant}") {
			return nil, fmt.Errorf("postgres writer: schema template %q lacks {tenant}", tpl)
		}
	}
	if cfg.SchemaTemplate == cfg.StagingTemplate {
		return nil, fmt.Errorf("postgres writer: live and staging schema templates are both %q", cfg.SchemaTemplate)
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
CREATE INDEX IF NOT EXISTS loads_tenant ON tenantlake.loads (tenant, started_at);`)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres writer: create control schema %s: %w", controlSchema, err)
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

// checkSchemaName refuses a tenant schema name that PostgreSQL would
// truncate or that names a schema a promotion must never drop.
func (w *Writer) checkSchemaName(name string) error {
	switch {
	case len(name) > 63:
		return fmt.Errorf("schema name %q is longer than PostgreSQL's 63 bytes", name)
	case name == controlSchema, name == w.cfg.AllTenantsSchema, name == "public", name == "information_schema", strings.HasPrefix(name, "pg_"):
		return fmt.Errorf("schema name %q is reserved: choose another schema template", name)
	}
	return nil
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
// recorded in both ledgers like every other outcome. Should only the lake's
// ledger record fail to be written, the Outcome still says what happened and
// the error says the record is missing; retrying is harmless (already-live).
func (w *Writer) Load(ctx context.Context, lk *lake.Lake, req writers.Request) (*writers.Outcome, error) {
	out := &writers.Outcome{
		Tenant: req.Tenant, SnapshotID: req.SnapshotID, Target: w.Target(), Reason: req.Reason,
		RequestID: req.RequestID, LoadID: writers.NewLoadID(), StartedAt: time.Now().UTC(), Tables: []writers.TableResult{},
	}
	if err := checkRequest(req); err != nil {
		return nil, fmt.Errorf("postgres writer: load %s/%s: %w", req.Tenant, req.SnapshotID, err)
	}
	recorded, err := w.load(ctx, lk, req, out)
	if errors.Is(err, lake.ErrCorrupt) {
		// A part differs from its manifest: like a failed validation,
		// nothing is promoted and the live schema stays as it was (the
		// staging transaction rolled back).
		out.Outcome, out.Live = writers.OutcomeQuarantined, out.PreviousLive
		out.Message = "a part does not match the manifest, nothing promoted: " + err.Error()
		err = nil
	} else if err != nil {
		err = fmt.Errorf("postgres writer: load %s/%s: %w", req.Tenant, req.SnapshotID, err)
		out.Outcome, out.Message, out.Live = writers.OutcomeFailed, err.Error(), out.PreviousLive
	}
	out.FinishedAt = time.Now().UTC()
	// The ledgers are written even when ctx is cancelled.
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
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
		return fmt.Errorf("a table subset (%s) cannot be loaded: the PostgreSQL warehouse promotes whole snapshots", strings.Join(req.Tables, ", "))
	}
	return nil
}

// load does the work of Load. recorded says the ledger row was written in
// the promotion transaction.
func (w *Writer) load(ctx context.Context, lk *lake.Lake, req writers.Request, out *writers.Outcome) (recorded bool, err error) {
	liveName, stagingName := w.LiveSchema(req.Tenant), w.stagingSchema(req.Tenant)
	for _, s := range []string{liveName, stagingName} {
		if err := w.checkSchemaName(s); err != nil {
			return false, err
		}
	}
	m, err := lk.Manifest(ctx, req.Tenant, req.SnapshotID)
	if err != nil {
		return false, err
	}
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
	out.PreviousLive, out.Live = prev, prev
	switch {
	case prev == req.SnapshotID:
		out.Outcome, out.Message = writers.OutcomeAlreadyLive, "snapshot "+prev+" is already live"
		return false, nil
	case prev > req.SnapshotID && req.Reason != writers.ReasonReplay:
		out.Outcome = writers.OutcomeStale
		out.Message = fmt.Sprintf("live snapshot %s is newer than %s; a %s load never replaces it (use reason replay)", prev, req.SnapshotID, req.Reason)
		return false, nil
	}

	t0 := time.Now()
	results, err := w.stage(ctx, conn, lk, m, stagingName)
	if err != nil {
		return false, err
	}
	out.Tables = results
	t1 := time.Now()
	ok, err := w.validate(ctx, conn, m, stagingName, out.Tables)
	if err != nil {
		return false, err
	}
	slog.Debug("postgres writer: staged and validated", "tenant", req.Tenant, "snapshot", req.SnapshotID,
		"stage", t1.Sub(t0), "validate", time.Since(t1), "ok", ok)
	if !ok {
		out.Outcome = writers.OutcomeQuarantined
		out.Message = "validation failed (" + writers.FailedChecks(out.Tables) + "); nothing promoted; staged tables kept in schema " + stagingName
		return false, nil
	}
	if err := w.promote(ctx, conn, req, out, liveName, stagingName); err != nil {
		return false, err
	}
	return true, nil
}

// stage recreates the staging schema and fills it, in one transaction.
func (w *Writer) stage(ctx context.Context, conn *pgx.Conn, lk *lake.Lake, m *lake.Manifest, staging string) ([]writers.TableResult, error) {
	var results []writers.TableResult
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		schema := pgx.Identifier{staging}.Sanitize()
		if _, err := tx.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE"); err != nil {
			return fmt.Errorf("drop staging schema %s: %w", staging, err)
		}
		if _, err := tx.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
			return fmt.Errorf("create staging schema %s: %w", staging, err)
		}
		for i := range m.Tables {
			t := &m.Tables[i]
			res, err := stageTable(ctx, tx, lk, t, staging)
			if err != nil {
				return fmt.Errorf("table %s: %w", t.Name, err)
			}
			results = append(results, res)
		}
		return nil
	})
	return results, err
}

func stageTable(ctx context.Context, tx pgx.Tx, lk *lake.Lake, t *lake.Table, staging string) (writers.TableResult, error) {
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
	tag, err := tx.Conn().PgConn().CopyFrom(ctx, src, copySQL)
	readErr, closeErr := src.finish()
	if readErr != nil {
		// The server's error only says the copy was aborted; say why.
		err = readErr
	}
	if err = errors.Join(err, closeErr); err != nil {
		return res, fmt.Errorf("copy from lake: %w", err)
	}
	res.LakeRows = src.rows.LakeRows()
	res.TargetRows = tag.RowsAffected()
	return res, nil
}

// promote makes the staged snapshot live in one transaction.
func (w *Writer) promote(ctx context.Context, conn *pgx.Conn, req writers.Request, out *writers.Outcome, liveName, stagingName string) error {
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		// Promotions of all tenants queue here, so each all-tenants rebuild
		// sees every other promotion committed.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, 0)`, lockAllTenants); err != nil {
			return fmt.Errorf("lock all-tenants schema: %w", err)
		}
		var cur string
		err := tx.QueryRow(ctx, `SELECT snapshot_id FROM tenantlake.live WHERE tenant = $1 FOR UPDATE`, req.Tenant).Scan(&cur)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("read live snapshot: %w", err)
		}
		if cur != out.PreviousLive {
			return fmt.Errorf("live snapshot changed from %q to %q during the load; retry", out.PreviousLive, cur)
		}
		if _, err := tx.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{liveName}.Sanitize()+" CASCADE"); err != nil {
			return fmt.Errorf("drop live schema %s: %w", liveName, err)
		}
		if _, err := tx.Exec(ctx, "ALTER SCHEMA "+pgx.Identifier{stagingName}.Sanitize()+" RENAME TO "+pgx.Identifier{liveName}.Sanitize()); err != nil {
			return fmt.Errorf("rename schema %s to %s: %w", stagingName, liveName, err)
		}
		_, err = tx.Exec(ctx, `
INSERT INTO tenantlake.live (tenant, snapshot_id, schema_name, load_id, reason, updated_at)
VALUES ($1, $2, $3, $4, $5, now())
ON CONFLICT (tenant) DO UPDATE SET snapshot_id = $2, schema_name = $3, load_id = $4, reason = $5, updated_at = now()`,
			req.Tenant, req.SnapshotID, liveName, out.LoadID, req.Reason)
		if err != nil {
			return fmt.Errorf("record live snapshot: %w", err)
		}
		if err := rebuildAllTenants(ctx, tx, w.cfg.AllTenantsSchema); err != nil {
			return err
		}
		out.Outcome, out.Live = writers.OutcomeLoaded, req.SnapshotID
		if req.Reason == writers.ReasonReplay && out.PreviousLive > req.SnapshotID {
			out.Message = fmt.Sprintf("replay: replaced newer live snapshot %s on purpose", out.PreviousLive)
		}
		out.FinishedAt = time.Now().UTC()
		return w.writeLedger(ctx, tx, out)
	})
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
