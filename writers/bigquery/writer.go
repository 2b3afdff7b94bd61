package bigquery

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/bigquery"
	"golang.org/x/sync/errgroup"
	"google.golang.org/api/option"

	"github.com/tenantlake/tenantlake/lake"
	"github.com/tenantlake/tenantlake/tenant"
	"github.com/tenantlake/tenantlake/writers"
)

// Promotion modes (Config.Promotion).
const (
	// PromoteCopy promotes each staged table with a copy job, WRITE_TRUNCATE:
	// atomic per table. The default, for BigQuery.
	PromoteCopy = "copy"
	// PromoteCTAS promotes each staged table with CREATE OR REPLACE TABLE
	// ... AS SELECT, for the emulator, which has no copy jobs.
	PromoteCTAS = "ctas"
)

// TenantPlaceholder is replaced by the tenant id in Config.DatasetTemplate.
const TenantPlaceholder = writers.TenantPlaceholder

// Config says where and how a Writer loads. Zero fields take the defaults
// documented on each field.
type Config struct {
	Project  string // Google Cloud project of the datasets and jobs; required
	Location string // location of new datasets and of jobs; "" means BigQuery's default (US)

	// DatasetTemplate names each tenant's dataset; TenantPlaceholder is
	// replaced by the tenant id. Default "tenant_{tenant}".
	DatasetTemplate string
	// StagingDataset holds the staged tables of every tenant. Its tables
	// expire by themselves after StagingExpiration (the dataset's default
	// table expiration). Default "tenantlake_staging", 7 days.
	StagingDataset    string
	StagingExpiration time.Duration
	// AllTenantsDataset holds one view per table name: every tenant's table
	// with a tenant_id column. Default "all_tenants".
	AllTenantsDataset string
	// LedgerDataset holds the table "loads": one row per load outcome.
	// Default "tenantlake_ledger".
	LedgerDataset string
	// Labels are set on every dataset the writer creates and on its jobs.
	Labels map[string]string

	// Promotion is PromoteCopy (default) or PromoteCTAS.
	Promotion string
	// StreamFormat is how parts of a lake that is not on GCS are streamed
	// through the load API: StreamParquet (default, the parts as they are)
	// or StreamJSON (decoded and sent as newline-delimited JSON). Parts on
	// GCS are always loaded from their gs:// URIs as Parquet.
	StreamFormat string
	// JSONAsString keeps JSON columns as STRING in the live tables: the
	// exact text the lake holds (key order, duplicate keys, every digit of
	// a number), instead of BigQuery's JSON type (URL json_columns=string).
	// JSON is always staged as STRING, since BigQuery loads no Parquet into
	// a JSON field; by default the promotion parses it with PARSE_JSON.
	JSONAsString bool
	// Changes keeps a change table per table in each tenant's dataset
	// (URL changes=true; package writers/changes, changes.go).
	Changes bool

	// SkipProfiles and SkipSchema switch off the column-profile and schema
	// checks. Row counts are always checked.
	SkipProfiles bool
	SkipSchema   bool

	// MaxAttempts bounds the attempts at loading one table; default 3.
	MaxAttempts int
	// Parallel bounds the tables loaded and validated at once; default 4.
	Parallel int

	// Name is the target name in outcomes and the lake's ledger
	// ([A-Za-z0-9_]); default "bigquery".
	Name string

	// ClientOptions are passed to bigquery.NewClient, for instance
	// option.WithEndpoint and option.WithoutAuthentication for the emulator.
	ClientOptions []option.ClientOption
}

// check fills in cfg's defaults and checks every option: the project, the
// target name (lake.ValidateTarget), the dataset template (TenantPlaceholder
// once) and dataset names (letters, digits and _, at most 1,024 bytes), no
// two of which may name the same dataset for any tenant id, the labels
// (BigQuery's rules), the promotion mode and the stream format.
func (cfg *Config) check() error {
	if cfg.Project == "" {
		return errors.New("project is required")
	}
	if cfg.DatasetTemplate == "" {
		cfg.DatasetTemplate = "tenant_" + TenantPlaceholder
	}
	if cfg.StagingDataset == "" {
		cfg.StagingDataset = "tenantlake_staging"
	}
	if cfg.StagingExpiration == 0 {
		cfg.StagingExpiration = 7 * 24 * time.Hour
	}
	if cfg.StagingExpiration < time.Hour {
		return fmt.Errorf("staging expiration %v: BigQuery's shortest default table expiration is one hour", cfg.StagingExpiration)
	}
	if cfg.AllTenantsDataset == "" {
		cfg.AllTenantsDataset = "all_tenants"
	}
	if cfg.LedgerDataset == "" {
		cfg.LedgerDataset = "tenantlake_ledger"
	}
	if cfg.Name == "" {
		cfg.Name = "bigquery"
	}
	if err := lake.ValidateTarget(cfg.Name); err != nil {
		return fmt.Errorf("option name=%s: %w", cfg.Name, err)
	}
	if err := writers.CheckTemplate(cfg.DatasetTemplate); err != nil {
		return fmt.Errorf("option dataset_template: %w", err)
	}
	type opt struct{ key, val string }
	opts := []opt{{"dataset_template", cfg.DatasetTemplate}, {"staging_dataset", cfg.StagingDataset},
		{"all_tenants_dataset", cfg.AllTenantsDataset}, {"ledger_dataset", cfg.LedgerDataset}}
	for i, o := range opts {
		name := strings.Replace(o.val, TenantPlaceholder, "", 1)
		if msg := datasetNameChars(name, i == 0); msg != "" {
			return fmt.Errorf("option %s=%s: %s", o.key, o.val, msg)
		}
		for _, p := range opts[:i] {
			if writers.Overlap(writers.Pattern(p.val), writers.Pattern(o.val)) {
				return fmt.Errorf("options %s=%s and %s=%s can name the same dataset (for some tenant id): each dataset has one role", p.key, p.val, o.key, o.val)
			}
		}
	}
	for k, v := range cfg.Labels {
		if msg := labelChars(k, true); msg != "" {
			return fmt.Errorf("option labels: key %q: %s", k, msg)
		}
		if msg := labelChars(v, false); msg != "" {
			return fmt.Errorf("option labels: value %q of %s: %s", v, k, msg)
		}
	}
	switch cfg.Promotion {
	case "":
		cfg.Promotion = PromoteCopy
	case PromoteCopy, PromoteCTAS:
	default:
		return fmt.Errorf("option mode=%s: want %q or %q", cfg.Promotion, PromoteCopy, PromoteCTAS)
	}
	switch cfg.StreamFormat {
	case "":
		cfg.StreamFormat = StreamParquet
	case StreamParquet, StreamJSON:
	default:
		return fmt.Errorf("option stream_format=%s: want %q or %q", cfg.StreamFormat, StreamParquet, StreamJSON)
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 3
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 4
	}
	return nil
}

// datasetNameChars says what is wrong with a dataset name, or the fixed
// part of a template ("" when nothing is).
func datasetNameChars(s string, template bool) string {
	switch {
	case s == "" && !template:
		return "empty"
	case len(s) > 1024-tenant.MaxIDLength:
		return "too long for a dataset name (1,024 bytes with the tenant id)"
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return fmt.Sprintf("character %q: dataset names hold letters, digits and _ only", c)
		}
	}
	return ""
}

// labelChars says what is wrong with a label key or value under BigQuery's
// rules, limited to ASCII: at most 63 characters of a-z, 0-9, _ and -; a
// key starts with a letter.
func labelChars(s string, key bool) string {
	switch {
	case len(s) > 63:
		return "longer than 63 characters"
	case key && (s == "" || s[0] < 'a' || s[0] > 'z'):
		return "a label key starts with a lower-case letter"
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c == '_' || c == '-' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return fmt.Sprintf("character %q: labels hold a-z, 0-9, _ and - only", c)
		}
	}
	return ""
}

// labelTenant labels each tenant dataset with its tenant id.
const labelTenant = "tenantlake_tenant"

// States of a live record.
const (
	stateLive      = "live"
	statePromoting = "promoting"
)

// Writer is the BigQuery write strategy. It is safe for concurrent use.
type Writer struct {
	cfg    Config
	client *bigquery.Client

	mu      sync.Mutex
	ensured map[string]bool // datasets known to exist
}

var _ writers.Writer = (*Writer)(nil)

// New returns a Writer for cfg. It makes no request until the first load.
// Every option is checked first (check): a bad one is refused with an error
// naming it, before anything is written.
func New(ctx context.Context, cfg Config) (*Writer, error) {
	if err := cfg.check(); err != nil {
		return nil, fmt.Errorf("bigquery writer: %w", err)
	}
	client, err := bigquery.NewClient(ctx, cfg.Project, cfg.ClientOptions...)
	if err != nil {
		return nil, fmt.Errorf("bigquery writer: client for project %s: %w", cfg.Project, err)
	}
	client.Location = cfg.Location
	return &Writer{cfg: cfg, client: client, ensured: map[string]bool{}}, nil
}

// Target returns the target's name, as in outcomes and the lake's ledger.
func (w *Writer) Target() string { return w.cfg.Name }

// Close closes the BigQuery client.
func (w *Writer) Close() error { return w.client.Close() }

// datasetName is the dataset of tenant t.
func (w *Writer) datasetName(t string) string {
	return strings.ReplaceAll(w.cfg.DatasetTemplate, TenantPlaceholder, t)
}

// Live returns the live snapshot id of tenant, or "" when none is live.
func (w *Writer) Live(ctx context.Context, t string) (string, error) {
	if err := tenant.ValidateID(t); err != nil {
		return "", fmt.Errorf("bigquery writer: live: %w", err)
	}
	if err := w.ensureLedger(ctx); err != nil {
		return "", fmt.Errorf("bigquery writer: live snapshot of %s: %w", t, err)
	}
	rec, err := w.readLive(ctx, t)
	if err != nil {
		return "", fmt.Errorf("bigquery writer: %w", err)
	}
	return rec.Snapshot, nil
}

// Load loads req's snapshot from lk, as writers.Writer says: stage every
// table, validate, promote, record what is live, rebuild the all-tenants
// views, and write the ledger (to the lake and the ledger table). The
// outcome is returned with the error when the load failed. Whatever the
// outcome, its PreviousLive and Live are the live record's snapshot before
// and after the load (read first, before the manifest); only when the
// ledger cannot be read do they stay empty, and the message says the live
// snapshot is unknown. After an interrupted promotion, Live is the previous
// snapshot and the message says the tables may mix the two.
func (w *Writer) Load(ctx context.Context, lk *lake.Lake, req writers.Request) (*writers.Outcome, error) {
	if err := tenant.ValidateID(req.Tenant); err != nil {
		return nil, fmt.Errorf("bigquery writer: load: %w", err)
	}
	if _, err := lake.ParseSnapshotID(req.SnapshotID); err != nil {
		return nil, fmt.Errorf("bigquery writer: load %s: %w", req.Tenant, err)
	}
	switch req.Reason {
	case writers.ReasonScheduled, writers.ReasonManual, writers.ReasonReplay:
	default:
		return nil, fmt.Errorf("bigquery writer: load %s/%s: reason %q is not one of scheduled, manual, replay", req.Tenant, req.SnapshotID, req.Reason)
	}
	out := &writers.Outcome{
		Tenant:     req.Tenant,
		SnapshotID: req.SnapshotID,
		Target:     w.Target(),
		Reason:     req.Reason,
		RequestID:  req.RequestID,
		LoadID:     writers.NewLoadID(),
		StartedAt:  time.Now().UTC(),
		Tables:     []writers.TableResult{},
	}
	var liveKnown bool
	err := w.load(ctx, lk, req, out, &liveKnown)
	if errors.Is(err, lake.ErrCorrupt) {
		// A part differs from its manifest: like a failed validation,
		// nothing is promoted and the live tables stay as they were.
		out.Outcome = writers.OutcomeQuarantined
		out.Message = "a part does not match the manifest, nothing promoted: " + err.Error()
		out.Live = out.PreviousLive
		err = nil
	} else if err != nil {
		err = fmt.Errorf("bigquery writer: load %s/%s: %w", req.Tenant, req.SnapshotID, err)
		out.Outcome = writers.OutcomeFailed
		out.Message = err.Error()
		out.Live = out.PreviousLive
		if !liveKnown {
			// Failed before the live record was read: nothing changed.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			if id, lerr := w.Live(rctx, req.Tenant); lerr != nil {
				out.Message += "; the live snapshot is unknown: " + lerr.Error()
			} else {
				out.PreviousLive, out.Live = id, id
			}
			cancel()
		}
	}
	out.FinishedAt = time.Now().UTC()
	// The ledger is written even when ctx was cancelled: a failed load is
	// recorded too.
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if lerr := w.writeLedger(lctx, lk, out); lerr != nil {
		return out, errors.Join(err, fmt.Errorf("bigquery writer: ledger of %s/%s: %w", req.Tenant, req.SnapshotID, lerr))
	}
	return out, err
}

// load does the work of Load; *liveKnown is set once out.PreviousLive holds
// the live record read before anything else.
func (w *Writer) load(ctx context.Context, lk *lake.Lake, req writers.Request, out *writers.Outcome, liveKnown *bool) error {
	if err := w.ensureLedger(ctx); err != nil {
		return err
	}
	rec, err := w.readLive(ctx, req.Tenant)
	if err != nil {
		return err
	}
	live := rec.Snapshot
	out.PreviousLive, out.Live, *liveKnown = live, live, true
	if skip := w.skip(req, rec, out); skip {
		return nil
	}
	m, err := lk.Manifest(ctx, req.Tenant, req.SnapshotID)
	if err != nil {
		return err
	}
	if err := writers.NoteSourceChanges(ctx, lk, out, m); err != nil {
		return err
	}
	tables, err := selectTables(m, req.Tables)
	if err != nil {
		return err
	}
	ds := w.client.Dataset(w.datasetName(req.Tenant))
	if err := w.ensureDatasets(ctx, req.Tenant); err != nil {
		return err
	}
	// A load that completes an interrupted promotion reads what the
	// interrupted load recorded: the snapshot live before it.
	var interruptedLoad *writers.Outcome
	if rec.State == statePromoting {
		if interruptedLoad, err = w.interruptedLoad(ctx, lk, req.Tenant, rec); err != nil {
			return err
		}
	}
	if err := w.checkNotChangeTables(ctx, ds, m, tables); err != nil {
		return err
	}
	chg, err := w.prepareChanges(ctx, lk, m, len(req.Tables) == 0, rec, interruptedLoad, out.LoadID)
	if err != nil {
		return err
	}

	// 1. Stage and 2. validate every table.
	results := make([]writers.TableResult, len(tables))
	staged := make([]*bigquery.Table, len(tables))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(w.cfg.Parallel)
	for i, t := range tables {
		g.Go(func() error {
			st, res, err := w.stageTable(gctx, lk, m, t)
			if err != nil {
				return fmt.Errorf("table %s: %w", t.Name, err)
			}
			staged[i], results[i] = st, res
			return nil
		})
	}
	err = g.Wait()
	for _, r := range results {
		if r.Table != "" {
			out.Tables = append(out.Tables, r)
		}
	}
	if err != nil {
		return err
	}
	if failed := writers.FailedChecks(out.Tables); failed != "" {
		out.Outcome = writers.OutcomeQuarantined
		out.Message = "validation failed, nothing promoted; staged tables kept in dataset " + w.cfg.StagingDataset + ": " + failed
		out.Live = live
		return nil
	}
	if err := w.stageChanges(ctx, lk, m, req.Tables, out.LoadID, chg); err != nil {
		return err
	}

	// 3. Promote, between a compare-and-swap claim of the live record and
	// its release. A tenant's first load first claims its number.
	next := liveRecord{Snapshot: req.SnapshotID, State: statePromoting, LoadID: out.LoadID, TenantNum: rec.TenantNum}
	if rec.LoadID == "" {
		if next.TenantNum, err = w.claimTenantNum(ctx, req.Tenant); err != nil {
			return err
		}
	}
	if err := writers.StillCommitted(ctx, lk, req.Tenant, req.SnapshotID); err != nil {
		return err
	}
	if err := w.swapLive(ctx, req.Tenant, rec.LoadID, next); err != nil {
		return err
	}
	if chg != nil {
		// Recorded from here on, so that a load completing an interrupted
		// promotion finds the changes' base and ids in the lake's ledger.
		out.Changes = chg.summary
	}
	interrupted := func(err error) error {
		return fmt.Errorf("%w (promotion interrupted: the live record says %s is being promoted and the live tables may mix it with %q; loading it again completes it)", err, req.SnapshotID, live)
	}
	slices := make([]sliceTable, 0, len(tables))
	for i, t := range tables {
		schema, err := tableSchema(t)
		if err != nil {
			return interrupted(err)
		}
		ls := w.liveSchema(schema)
		jobID, err := w.promote(ctx, staged[i], ds.Table(t.Name), ls, req, t.Name, out.LoadID)
		out.Tables[i].Jobs = append(out.Tables[i].Jobs, jobID)
		if err != nil {
			return interrupted(fmt.Errorf("promote table %s: %w", t.Name, err))
		}
		slices = append(slices, sliceTable{name: t.Name, schema: ls})
	}
	if len(req.Tables) == 0 {
		owned, gone, err := ownedTables(ctx, lk, m, live, interruptedLoad)
		if err != nil {
			return interrupted(err)
		}
		if len(gone) > 0 {
			out.Message = "tables of snapshot(s) " + strings.Join(gone, ", ") + " (no longer in the lake) that this snapshot lacks were kept, if any"
		}
		dropped, err := w.dropTables(ctx, ds, m, owned)
		if err != nil {
			return interrupted(err)
		}
		for _, name := range dropped {
			slices = append(slices, sliceTable{name: name})
		}
	}
	_, err = w.appendChanges(ctx, ds, req.Tenant, chg)
	chg.noteJobs(out.Tables)
	if err != nil {
		return interrupted(err)
	}
	done := next
	done.State = stateLive
	if err := w.swapLive(ctx, req.Tenant, out.LoadID, done); err != nil {
		return interrupted(err)
	}
	out.Outcome = writers.OutcomeLoaded
	out.Live = req.SnapshotID
	if req.Reason == writers.ReasonReplay && live > req.SnapshotID {
		msg := fmt.Sprintf("replay: replaced newer live snapshot %s with %s", live, req.SnapshotID)
		if out.Message != "" {
			msg += "; " + out.Message
		}
		out.Message = msg
	}

	// 4. The tenant's slices of the combined all-tenants tables. The
	// snapshot is live whatever happens here: a slice that cannot be
	// replaced is recorded as stale, not as a failed load.
	if stale := w.updateAllTenants(ctx, req.Tenant, next.TenantNum, req.SnapshotID, out.LoadID, slices); len(stale) > 0 {
		out.AllTenantsStale = stale
		msg := "snapshot " + req.SnapshotID + " is live; these all-tenants tables still hold the tenant's previous rows (rebuild them with RebuildAllTenants, or load again): " + strings.Join(stale, "; ")
		if out.Message != "" {
			msg = out.Message + "; " + msg
		}
		out.Message = msg
	}
	return nil
}

// skip decides, before anything is loaded, whether req is a redelivery of
// the live snapshot or a stale scheduled load, and fills out if so. A
// snapshot whose promotion did not finish (state promoting) is loaded again.
func (w *Writer) skip(req writers.Request, rec liveRecord, out *writers.Outcome) bool {
	live := rec.Snapshot
	switch {
	case live == req.SnapshotID && rec.State == stateLive:
		out.Outcome = writers.OutcomeAlreadyLive
		out.Message = "snapshot " + live + " is already live"
	case live > req.SnapshotID && req.Reason != writers.ReasonReplay:
		out.Outcome = writers.OutcomeStale
		out.Message = fmt.Sprintf("live snapshot %s is newer than %s; only a replay replaces it", live, req.SnapshotID)
	default:
		return false
	}
	out.Live = live
	return true
}

// selectTables returns the manifest's tables named in names, or all of them.
func selectTables(m *lake.Manifest, names []string) ([]*lake.Table, error) {
	var out []*lake.Table
	if len(names) == 0 {
		for i := range m.Tables {
			out = append(out, &m.Tables[i])
		}
		return out, nil
	}
	for _, n := range names {
		t := m.Table(n)
		if t == nil {
			return nil, fmt.Errorf("table %q is not in the snapshot: %w", n, lake.ErrNotFound)
		}
		out = append(out, t)
	}
	return out, nil
}

// ensureDatasets creates, when missing, the tenant's dataset, the staging,
// all-tenants and ledger datasets, and the ledger's tables.
func (w *Writer) ensureDatasets(ctx context.Context, t string) error {
	if err := w.ensureDataset(ctx, w.datasetName(t), &bigquery.DatasetMetadata{Labels: w.labels(map[string]string{labelTenant: t})}); err != nil {
		return err
	}
	if err := w.ensureDataset(ctx, w.cfg.StagingDataset, &bigquery.DatasetMetadata{Labels: w.labels(nil), DefaultTableExpiration: w.cfg.StagingExpiration}); err != nil {
		return err
	}
	if err := w.ensureDataset(ctx, w.cfg.AllTenantsDataset, &bigquery.DatasetMetadata{Labels: w.labels(nil)}); err != nil {
		return err
	}
	return w.ensureLedger(ctx)
}

// ensureLedger creates, when missing, the ledger dataset and its tables.
func (w *Writer) ensureLedger(ctx context.Context) error {
	return w.ensureDataset(ctx, w.cfg.LedgerDataset, &bigquery.DatasetMetadata{Labels: w.labels(nil)})
}

// ensureDataset creates dataset name with md (in Config.Location) unless
// this writer knows it exists.
func (w *Writer) ensureDataset(ctx context.Context, name string, md *bigquery.DatasetMetadata) error {
	w.mu.Lock()
	done := w.ensured[name]
	w.mu.Unlock()
	if done {
		return nil
	}
	md.Location = w.cfg.Location
	ds := w.client.Dataset(name)
	if err := ds.Create(ctx, md); err != nil && !isAlreadyExists(err) {
		// Another load may have created it just now: BigQuery answers 409,
		// the emulator 500.
		if _, merr := ds.Metadata(ctx); merr != nil {
			return fmt.Errorf("create dataset %s: %w", name, err)
		}
	}
	if name == w.cfg.LedgerDataset {
		if err := w.ensureLedgerTables(ctx); err != nil {
			return err
		}
	}
	w.mu.Lock()
	w.ensured[name] = true
	w.mu.Unlock()
	return nil
}

// labels returns the configured labels with extra ones.
func (w *Writer) labels(extra map[string]string) map[string]string {
	l := map[string]string{}
	for k, v := range w.cfg.Labels {
		l[k] = v
	}
	for k, v := range extra {
		l[k] = v
	}
	return l
}
